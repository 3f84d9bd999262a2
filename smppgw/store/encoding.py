"""How the store's values are written in columns, the same for both backends: JSON text for
TLVs, answers, payloads and receipts; integer unix milliseconds for instants; UTC ISO 8601 for
event times. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from json import encoder as _json_encoder
from typing import Any, Final, Protocol, cast

from smppgw.store.models import (
    RECEIPT_OUTCOMES,
    ReceiptOutcomeName,
    ReceiptRecord,
    StoreError,
    Tlvs,
)

__all__ = [
    "TRACKING_ID",
    "Row",
    "dumps",
    "iso",
    "json_str",
    "load_object",
    "ms",
    "new_tracking_id",
    "receipt_from_json",
    "receipt_to_json",
    "tlvs_from_json",
    "tlvs_to_json",
    "wall",
]

class Row(Protocol):
    """A result row, by column position: a sqlite3 tuple or an asyncpg Record."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


#: A tracking id: 32 lower-case hex characters.
TRACKING_ID: Final = re.compile(r"[0-9a-f]{32}")

def new_tracking_id(wall_seconds: float) -> str:
    """A new tracking id: 32 lower-case hex characters, the first 12 the creation time in unix
    milliseconds, the other 20 random (80 bits). Ids that grow with time land at the right edge
    of every index keyed by them (messages, segments, events), so a commit dirties a few pages
    instead of one per message: in the store benchmark, half the writer's CPU."""
    return f"{ms(wall_seconds) & 0xFFFF_FFFF_FFFF:012x}{secrets.token_hex(10)}"


def _unserializable(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Compact separators, UTF-8 kept as is. The C encoder called directly: json.dumps with options
# builds a new JSONEncoder per call, and JSONEncoder.encode adds two Python-level calls.
def _iterencoder() -> Callable[[object, int], Any]:
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is not None:
        return cast(Callable[[object, int], Any], make(
            None, _unserializable, _json_encoder.encode_basestring, None, ":", ",", False,
            False, True))
    fallback = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    return lambda value, _level: fallback.iterencode(value)


_ITERENCODE: Final = _iterencoder()

#: A str as a JSON string literal (quotes and escapes), for JSON built from pieces.
json_str: Final[Callable[[str], str]] = _json_encoder.encode_basestring


def dumps(value: object) -> str:
    """Compact JSON, non-ASCII kept as is (the same text as
    ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``)."""
    return "".join(_ITERENCODE(value, 0))


def load_object(text: str | None) -> dict[str, object]:
    """A JSON object from a column; {} for NULL or an empty string."""
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"expected a JSON object in the store, found {type(value).__name__}")
    return cast(dict[str, object], value)


@functools.lru_cache(maxsize=1024)
def tlvs_to_json(tlvs: Tlvs) -> str:
    """``[[tag, "hex"], ...]`` in wire order (duplicates and order survive). Cached: most
    messages carry the same few sets (a provider's defaults, a SAR header's shape)."""
    if not tlvs:
        return "[]"
    return dumps([[tag, value.hex()] for tag, value in tlvs])


@functools.lru_cache(maxsize=1024)
def tlvs_from_json(text: str) -> Tlvs:
    if text == "[]":
        return ()
    return tuple((int(tag), bytes.fromhex(value)) for tag, value in json.loads(text))


def ms(wall_seconds: float) -> int:
    """Unix seconds → integer unix milliseconds (the ``*_unix_ms`` columns)."""
    return round(wall_seconds * 1000)


def wall(unix_ms: int) -> float:
    return unix_ms / 1000.0


def iso(unix_ms: int) -> str:
    """UTC ISO 8601 with milliseconds and a Z, the events API's ``at``."""
    stamp = datetime.fromtimestamp(unix_ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def receipt_to_json(r: ReceiptRecord) -> str:
    """The whole ReceiptRecord, as a parked receipt keeps it until its part is known."""
    return dumps({
        "provider": r.provider, "message_id": r.message_id, "message_keys": list(r.keys),
        "stat": r.stat, "err": r.err, "outcome": r.outcome, "final": r.final,
        "details": dict(r.details), "bind": r.bind, "account": r.account,
    })


def receipt_from_json(text: str) -> ReceiptRecord:
    doc = load_object(text)
    details = doc.get("details")
    keys = doc.get("message_keys")
    outcome = str(doc.get("outcome", "unknown"))
    bind = doc.get("bind")
    account = doc.get("account")
    return ReceiptRecord(
        provider=str(doc["provider"]), message_id=str(doc["message_id"]),
        stat=str(doc.get("stat", "")), err=str(doc.get("err", "")),
        outcome=cast(ReceiptOutcomeName, outcome if outcome in RECEIPT_OUTCOMES else "unknown"),
        final=bool(doc.get("final", False)),
        message_keys=tuple(str(k) for k in keys) if isinstance(keys, list) else (),
        details=cast(dict[str, object], details) if isinstance(details, dict) else {},
        bind=str(bind) if bind is not None else None,
        account=str(account) if account is not None else None,
    )
