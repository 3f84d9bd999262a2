"""The small HTTP-over-unix-socket client ``smppgw send`` and ``smppgw status`` share: where
the socket is (``--socket`` or the config), one JSON request, and one clear line when the
daemon cannot be reached. No retries and no state beyond one session.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import tomllib
from pathlib import Path
from types import TracebackType
from typing import Final

import aiohttp

from smppgw.config import DEFAULT_SUBMIT_SOCKET, format_problem, load_config
from smppgw.errors import ConfigError

__all__ = [
    "EXIT_UNREACHABLE",
    "ClientError",
    "LocalClient",
    "add_socket_arguments",
    "error_line",
    "socket_path",
]

#: Exit code when the daemon cannot be reached or answers something unusable.
EXIT_UNREACHABLE: Final = 2
# The host part is required by HTTP but means nothing on a unix socket.
_BASE_URL: Final = "http://localhost"


class ClientError(Exception):
    """A problem the command reports as one line and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_UNREACHABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_socket_arguments(parser: argparse.ArgumentParser) -> None:
    """``--socket PATH`` and ``-c FILE``; --socket wins when both are given."""
    parser.add_argument(
        "--socket", type=Path, metavar="PATH",
        help=f"the daemon's submit socket (default: from -c, else {DEFAULT_SUBMIT_SOCKET})",
    )
    parser.add_argument(
        "-c", "--config", type=Path, metavar="FILE",
        help="read gateway.submit_socket from this smppgw config file",
    )


def socket_path(args: argparse.Namespace) -> Path:
    """The socket to talk to: --socket, else the config's gateway.submit_socket, else the
    default. Raises ClientError when the config cannot be read at all."""
    if args.socket is not None:
        return Path(args.socket)
    if args.config is None:
        return DEFAULT_SUBMIT_SOCKET
    config_file = Path(args.config)
    try:
        return load_config(config_file).gateway.submit_socket
    except ConfigError as exc:
        fatal = [p for p in exc.problems if p.path in ("", "gateway", "gateway.submit_socket")]
        if fatal:
            raise ClientError(
                "\n".join(format_problem(config_file, p) for p in fatal)
            ) from None
    # Problems elsewhere, typically provider credentials only the service can read
    # ($CREDENTIALS_DIRECTORY, *_env variables): the socket path itself is still known.
    return _socket_from_toml(config_file)


def _socket_from_toml(config_file: Path) -> Path:
    with config_file.open("rb") as f:
        data = tomllib.load(f)
    gateway = data.get("gateway")
    value = gateway.get("submit_socket") if isinstance(gateway, dict) else None
    if not isinstance(value, str) or not value:
        return DEFAULT_SUBMIT_SOCKET
    path = Path(value)
    # Relative paths resolve against the config file's directory, as smppgw.config does.
    return path if path.is_absolute() else config_file.absolute().parent / path


class LocalClient:
    """One aiohttp session over the unix socket at ``path``; use as ``async with``."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LocalClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(self.path)),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, json: object = None,
        params: dict[str, str] | None = None, timeout: float | None = None,
    ) -> tuple[int, object]:
        """(HTTP status, parsed JSON body). Raises ClientError for anything that is not an
        answer in JSON: no socket, refused, permission denied, timeout, a non-JSON body."""
        if self._session is None:
            raise RuntimeError("LocalClient is used outside 'async with'")
        where = f"cannot reach smppgw at {self.path}"
        request_timeout = aiohttp.ClientTimeout(total=timeout or self._timeout)
        try:
            async with self._session.request(
                method, _BASE_URL + path, json=json, params=params, timeout=request_timeout,
            ) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    raise ClientError(
                        f"{where}: it answered HTTP {status} without a JSON body"
                    ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ClientError(f"{where}: {_unreachable_reason(self.path, exc.os_error)}") from None
        except TimeoutError:
            raise ClientError(f"{where}: no answer within {request_timeout.total:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ClientError(f"{where}: {exc or type(exc).__name__}") from None
        return status, body


def _unreachable_reason(path: Path, error: OSError) -> str:
    """Why connecting to ``path`` failed, in the operator's terms. connect(2) answers
    ECONNREFUSED both for a regular file or directory and for a socket file nobody listens on;
    the path's type tells the two apart."""
    if error.errno == errno.ECONNREFUSED:
        try:
            is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError:
            is_socket = True  # gone meanwhile: report the refusal as it came
        if not is_socket:
            return ("not a socket (--socket, or gateway.submit_socket in -c FILE, names the "
                    "daemon's submit socket)")
        return ("connection refused: no smppgw is listening on it (not running, or a socket "
                "file left by one that stopped)")
    return error.strerror or str(error) or type(error).__name__


def error_line(body: object) -> str:
    """``code: field: message`` from our JSON error body, or the body itself when it has no
    error object (an answer from something that is not smppgw)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        parts = [str(error.get("code") or "error")]
        if error.get("field"):
            parts.append(str(error["field"]))
        parts.append(str(error.get("message") or ""))
        return ": ".join(parts)
    return str(body)
