"""smppgw: an SMPP 3.4 gateway daemon (TLS binds, durable queue, local submit API, metrics)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smppgw")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
