"""The systemd service protocols smppgw speaks: sd_notify (READY/STATUS/WATCHDOG/STOPPING/
RELOADING), the watchdog interval, and socket activation ($LISTEN_FDS). Standard library only.

Everything is a no-op when not started by systemd, so the daemon calls it unconditionally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

__all__ = [
    "SD_LISTEN_FDS_START",
    "Notifier",
    "listen_fds",
    "listen_fds_with_names",
    "notify",
    "watchdog_interval",
    "watchdog_loop",
]

log = logging.getLogger(__name__)

# sd_listen_fds(3): passed descriptors start right after stdin, stdout and stderr.
SD_LISTEN_FDS_START = 3

Environ = MutableMapping[str, str]


def _socket_address(value: str | None) -> str | None:
    """$NOTIFY_SOCKET as an AF_UNIX address: a path, or "@name" for the abstract namespace.

    Other forms (``vsock:``, used only inside VMs) are not supported and give None.
    """
    if not value:
        return None
    if value[0] == "@":
        return "\0" + value[1:]
    if value[0] == "/":
        return value
    return None


def _send(address: str, message: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))


def notify(message: str, *, environ: Environ | None = None) -> bool:
    """Send one sd_notify datagram (``"READY=1"``, ``"STATUS=..."``, several lines allowed).

    Returns False when not under systemd ($NOTIFY_SOCKET unset or unsupported). A send error
    is logged and returns False instead of raising: the daemon must not die because systemd
    went away, and a missed WATCHDOG=1 is what systemd itself will act on.
    """
    return Notifier(environ).send(message)


def _monotonic_usec() -> int:
    # The same clock systemd uses for MONOTONIC_USEC (CLOCK_MONOTONIC, not BOOTTIME).
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """The daemon's handle on sd_notify; reads $NOTIFY_SOCKET once, at construction.

    Each method sends one datagram and returns whether it went out; all are no-ops (False)
    outside systemd. ``Type=notify`` services call ``ready()`` once the store is open and the
    submit socket listens, ``status()`` whenever bind health changes, and ``watchdog()`` every
    :func:`watchdog_interval` seconds.
    """

    __slots__ = ("_address",)

    def __init__(self, environ: Environ | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET"))

    def __repr__(self) -> str:
        return f"<Notifier {'on' if self._address else 'off'}>"

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, message: str) -> bool:
        """Send raw sd_notify lines; see :func:`notify` for the error policy."""
        if self._address is None:
            return False
        try:
            _send(self._address, message)
        except OSError as exc:
            log.warning("sd_notify failed", extra={"kv": {"error": exc.strerror or str(exc)}})
            return False
        return True

    def ready(self) -> bool:
        """Startup (or a reload) finished: systemd marks the unit active."""
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status`` (e.g. ``binds wavy 4/4 qikberry 5/6``)."""
        return self.send("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        """Keep-alive for ``WatchdogSec=``; send only from a loop that is actually healthy."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began: systemd waits for exit up to ``TimeoutStopSec=``."""
        message = "STOPPING=1"
        if status:
            message += "\nSTATUS=" + " ".join(status.split())
        return self.send(message)

    def reloading(self) -> bool:
        """A reload (SIGHUP) began; call :meth:`ready` when it is done.

        MONOTONIC_USEC is required by ``Type=notify-reload`` (systemd 253+) to tell this reload
        from an older one; plain ``Type=notify`` ignores it.
        """
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={_monotonic_usec()}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd gives up on a start or stop in progress."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")


def watchdog_interval(environ: Environ | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings, or None when no watchdog is asked for.

    Half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, so one late ping is not
    fatal. $WATCHDOG_PID, when set, must be this process: otherwise the watchdog is meant
    for another process (a parent that exec'd us without clearing it) and this returns None.
    """
    env = os.environ if environ is None else environ
    pid_text = env.get("WATCHDOG_PID")
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000


async def watchdog_loop(
    notifier: Notifier, interval: float, healthy: Callable[[], bool] | None = None
) -> None:
    """Ping WATCHDOG=1 every ``interval`` seconds until cancelled.

    Runs as a task on the daemon's loop, so a blocked loop stops the pings and systemd restarts
    the service, which is the point of the watchdog. ``healthy`` (cheap, synchronous) can veto
    a ping, e.g. when the store's writer thread stopped committing.
    """
    while True:
        if healthy is None or healthy():
            notifier.watchdog()
        await asyncio.sleep(interval)


def _unset_listen_environment(env: Environ) -> None:
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)


def listen_fds_with_names(
    environ: Environ | None = None, *, unset_environment: bool = True
) -> list[tuple[str, socket.socket]]:
    """Sockets passed by systemd socket activation, with their ``FileDescriptorName=``.

    Implements sd_listen_fds_with_names(3): $LISTEN_PID must be this process, $LISTEN_FDS
    descriptors start at fd 3, $LISTEN_FDNAMES holds colon-separated names ("unknown" where
    missing). Each descriptor gets FD_CLOEXEC so no child inherits it. The variables are
    removed afterwards (unless ``unset_environment`` is False) so a child process cannot take
    them for its own; call this once. An fd that is not a socket (``ListenFIFO=``) raises
    OSError, since smppgw's units pass sockets only.
    """
    env = os.environ if environ is None else environ
    try:
        pid_text = env.get("LISTEN_PID")
        count_text = env.get("LISTEN_FDS")
        if not pid_text or not count_text:
            return []
        try:
            if int(pid_text) != os.getpid():
                return []
            count = int(count_text)
        except ValueError:
            return []
        if count <= 0:
            return []
        names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
        names += ["unknown"] * (count - len(names))
        result: list[tuple[str, socket.socket]] = []
        for index in range(count):
            fd = SD_LISTEN_FDS_START + index
            os.set_inheritable(fd, False)
            result.append((names[index], socket.socket(fileno=fd)))
        return result
    finally:
        if unset_environment:
            _unset_listen_environment(env)


def listen_fds(
    environ: Environ | None = None, *, unset_environment: bool = True
) -> list[socket.socket]:
    """The sockets of :func:`listen_fds_with_names`, in order; [] when not socket-activated."""
    return [sock for _, sock in listen_fds_with_names(environ, unset_environment=unset_environment)]
