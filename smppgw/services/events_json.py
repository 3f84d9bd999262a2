"""The JSON shape of one event, shared by ``GET /v1/events`` and the webhook pusher.

One function so both doors always show the same event; pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from smppgw.store import Event

__all__ = ["encode_events", "event_json"]

# Compact and UTF-8 as is: webhook receivers verify the HMAC over these exact bytes.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def event_json(event: Event) -> dict[str, object]:
    """``cursor``, ``type``, ``at`` (UTC ISO 8601) and, for message events, ``tracking_id``,
    ``id`` (the client id) and ``state``, followed by the event's payload (for ``mo``:
    ``from``, ``to``, ``text``, ``provider``). The base fields win over payload keys, so a
    payload can never fake a cursor."""
    return event.as_dict()


def encode_events(events: Iterable[Event]) -> bytes:
    """``{"events": [...]}`` as UTF-8 bytes: the body of one webhook POST."""
    return _ENCODER.encode({"events": [event_json(e) for e in events]}).encode("utf-8")
