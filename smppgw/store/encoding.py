"""How the store's values are written in columns, the same for both backends: JSON text for
TLVs, answers, payloads and receipts; integer unix milliseconds for instants; UTC ISO 8601 for
event times. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Final, Protocol, cast

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
    "load_object",
    "ms",
    "receipt_from_json",
    "receipt_to_json",
    "tlvs_from_json",
    "tlvs_to_json",
    "wall",
]

class Row(Protocol):
    """A result row, by column position: a sqlite3 tuple or an asyncpg Record."""

    def __getitem__(self, index: int, /) -> object: ...

    def __len__(self) -> int: ...


#: A tracking id: 32 lower-case hex characters.
TRACKING_ID: Final = re.compile(r"[0-9a-f]{32}")

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: object) -> str:
    """Compact JSON. One encoder built once: json.dumps with options builds a new one per call."""
    return _ENCODER.encode(value)


def load_object(text: str | None) -> dict[str, object]:
    """A JSON object from a column; {} for NULL or an empty string."""
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"expected a JSON object in the store, found {type(value).__name__}")
    return cast(dict[str, object], value)


def tlvs_to_json(tlvs: Tlvs) -> str:
    """``[[tag, "hex"], ...]`` in wire order (duplicates and order survive)."""
    if not tlvs:
        return "[]"
    return dumps([[tag, value.hex()] for tag, value in tlvs])


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
        "details": dict(r.details), "bind": r.bind,
    })


def receipt_from_json(text: str) -> ReceiptRecord:
    doc = load_object(text)
    details = doc.get("details")
    keys = doc.get("message_keys")
    outcome = str(doc.get("outcome", "unknown"))
    bind = doc.get("bind")
    return ReceiptRecord(
        provider=str(doc["provider"]), message_id=str(doc["message_id"]),
        stat=str(doc.get("stat", "")), err=str(doc.get("err", "")),
        outcome=cast(ReceiptOutcomeName, outcome if outcome in RECEIPT_OUTCOMES else "unknown"),
        final=bool(doc.get("final", False)),
        message_keys=tuple(str(k) for k in keys) if isinstance(keys, list) else (),
        details=cast(dict[str, object], details) if isinstance(details, dict) else {},
        bind=str(bind) if bind is not None else None,
    )
