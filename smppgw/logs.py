"""Structured logging to stderr: one ``key=value`` line per record, journald adds the time.

``log.info("bound", extra={"kv": {"host": h}})`` renders ``level=info logger=smppgw.pool.slot
msg=bound host=h``. Values are quoted when they hold spaces; secrets never reach here because
config values are Secret objects whose str() is masked. When stderr is the journal, each line
starts with a ``<N>`` syslog priority so ``journalctl -p warning`` filters by level.

Lines a peer or a fault can repeat without bound (throttling, malformed PDUs, a full disk,
a failing worker) go through ``ThrottleLog``: the first at once, then one summary per period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def syslog_priority(levelno: int) -> int:
    """The syslog priority journald files a record of ``levelno`` under: 3 (err) for error and
    critical, 4 (warning), 6 (info), 7 (debug)."""
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def stream_is_journal(
    stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether ``stream`` (stderr by default) is systemd's journal stream.

    systemd sets ``JOURNAL_STREAM=DEVICE:INODE`` for a service whose stdout or stderr goes to
    the journal; systemd.exec(5) asks programs to compare it with the stream's own fstat(),
    because the variable is inherited by children whose stderr may have been redirected to a
    file, where ``<N>`` prefixes would only be noise.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM")
    if not value:
        return False
    device, _, inode = value.partition(":")
    try:
        fd = (sys.stderr if stream is None else stream).fileno()
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (AttributeError, OSError, ValueError):
        # No real file behind the stream (captured, closed) or a malformed variable.
        return False


def print_error(text: str, *, level: int = logging.ERROR, stream: TextIO | None = None) -> None:
    """One line for a human on stderr, outside logging (start errors, config problems).

    Under journald the line carries its priority like the log lines do, so the reason a
    daemon refused to start shows up in ``journalctl -u smppgw -p err``.
    """
    out = sys.stderr if stream is None else stream
    prefix = f"<{syslog_priority(level)}>" if stream_is_journal(out) else ""
    print(f"{prefix}{text}", file=out)


class KeyValueFormatter(logging.Formatter):
    """``level=… logger=… msg=… k=v …``; adds ``time=`` only when not under journald.

    ``syslog_prefix`` starts each line with ``<N>``, the syslog priority of its level, which
    journald strips and files the line under (SyslogLevelPrefix=yes, its default). A record is
    always one line (newlines in values are escaped), so the prefix covers all of it.
    """

    def __init__(self, *, with_time: bool, syslog_prefix: bool = False) -> None:
        super().__init__()
        self.with_time = with_time
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        line = self._format_fields(record)
        if self.syslog_prefix:
            return f"<{syslog_priority(record.levelno)}>{line}"
        return line

    def _format_fields(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append(f"time={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"logger={record.name}")
        prefix = getattr(record, "bind", None)
        if prefix:
            parts.append(f"bind={prefix}")
        parts.append(f"msg={_quote(record.getMessage())}")
        kv = getattr(record, "kv", None)
        if isinstance(kv, Mapping):
            parts.extend(f"{key}={_quote(value)}" for key, value in kv.items())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in ("kv", "bind"):
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


class BindLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every record with the bind it concerns (``bind=wavy#2``)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("bind", self.extra["bind"] if self.extra else None)
        kwargs["extra"] = extra
        return msg, kwargs


#: aiohttp writes one INFO line per HTTP request here; see set_log_level.
ACCESS_LOGGER = "aiohttp.access"


def set_log_level(level: str) -> None:
    """Set the daemon's log level (``debug``, ``info``, ``warning``, ``error``), at start and
    when a reload changes ``gateway.log_level``.

    The API's per-request access lines (``aiohttp.access``) are shown only at ``debug``: at
    the default level every submit and every long-poll would add a line, burying the binds'
    events; with that logger above INFO aiohttp does not even format them. Setting the root
    level alone would leave the access lines where the previous level put them.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    access_level = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger(ACCESS_LOGGER).setLevel(access_level)


def setup_logging(level: str = "info") -> None:
    """Configure the root logger once for the daemon; idempotent across reloads."""
    root = logging.getLogger()
    under_journald = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    handler = next((h for h in root.handlers if getattr(h, "_smppgw", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._smppgw = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    handler.setFormatter(KeyValueFormatter(with_time=not under_journald,
                                           syslog_prefix=stream_is_journal(stream)))
    set_log_level(level)


class ThrottleLog:
    """When to log one kind of repeated event; pure, the caller passes ``now``.

    A throttling SMSC can answer ESME_RTHROTTLED to every PDU for minutes, a broken one can
    send malformed PDUs as fast as the link carries them, a full disk fails every write: one
    line each would flood the journal exactly when the operator needs it. So the first event
    after a quiet period is logged at once and opens a period of ``interval`` seconds; the
    events that follow are only counted (an increment on the hot path), and the caller asks
    ``summary`` at the end of each period. A period with no event ends the streak: the next
    event is logged at once again.
    """

    __slots__ = ("_period_start", "counted", "interval")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._period_start: float | None = None
        self.counted = 0

    def note(self, now: float) -> float | None:
        """Record one event. When it opens a period, return the instant at which to call
        ``summary`` (and log this event now); otherwise it is counted: None."""
        if self._period_start is None:
            self._period_start = now
            return now + self.interval
        self.counted += 1
        return None

    def summary(self, now: float) -> tuple[int, float] | None:
        """End the current period: (events counted, seconds covered) and a new period starts
        at ``now`` (call again at ``now + interval``); None when nothing was counted, which
        ends the streak."""
        start = self._period_start
        if start is None or not self.counted:
            self._period_start = None
            return None
        counted = (self.counted, now - start)
        self._period_start = now
        self.counted = 0
        return counted


Summary = Callable[[int, float], None]


class RepeatedLog:
    """A ThrottleLog driven by an event loop's timer: the owner logs the first event of a
    streak when ``note`` returns True, and ``on_summary(count, period)`` is called at
    the end of each period that counted more. One per kind of line and per thing it concerns
    (a bind, the store); ``close`` says what the current period counted and stops the timer.
    """

    __slots__ = ("_closed", "_log", "_loop", "_on_summary", "_timer")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, on_summary: Summary
    ) -> None:
        self._loop = loop
        self._log = ThrottleLog(interval)
        self._on_summary = on_summary
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def interval(self) -> float:
        return self._log.interval

    @property
    def summary_at(self) -> float | None:
        """When the next summary is due (loop time), None outside a streak."""
        return self._timer.when() if self._timer is not None else None

    def note(self) -> bool:
        """Count one event; True when it opens a streak and the caller should log it now."""
        summary_at = self._log.note(self._loop.time())
        if summary_at is None:
            return False
        if not self._closed:
            self._timer = self._loop.call_at(summary_at, self.summarize)
        return True

    def summarize(self) -> None:
        """End the current period now (the timer calls this; tests may too): one summary when
        it counted events, and the next period is timed; else the streak ends quietly."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._loop.time()
        counted = self._log.summary(now)
        if counted is None:
            return
        self._on_summary(*counted)
        if not self._closed:
            self._timer = self._loop.call_at(now + self._log.interval, self.summarize)

    def end(self) -> None:
        """The condition is over and the owner says so in its own line, with the totals:
        drop what the current period counted and end the streak, so the next event is
        logged at once again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._loop.time()
        while self._log.summary(now) is not None:
            pass

    def close(self) -> None:
        """Say now what the current period counted rather than lose it, and stop timing."""
        self._closed = True
        if self._timer is not None:
            self.summarize()
