"""Structured logging to stderr: one ``key=value`` line per record, journald adds the time.

``log.info("bound", extra={"kv": {"host": h}})`` renders ``level=info logger=smppgw.pool
msg=bound host=h``. Values are quoted when they hold spaces; secrets never reach here because
config values are Secret objects whose str() is masked.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """``level=… logger=… msg=… k=v …``; adds ``time=`` only when not under journald."""

    def __init__(self, *, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
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


def setup_logging(level: str = "info") -> None:
    """Configure the root logger once for the daemon; idempotent across reloads."""
    root = logging.getLogger()
    under_journald = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    handler = next((h for h in root.handlers if getattr(h, "_smppgw", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._smppgw = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(KeyValueFormatter(with_time=not under_journald))
    root.setLevel(level.upper())
