"""smppgw: an SMPP 3.4 gateway daemon (TLS binds, durable queue, local submit API, metrics).

Kept import-free on purpose: ``smppgw.smpp`` (the protocol core) must load without pulling
in I/O modules, and everything below this package imports it.
"""
