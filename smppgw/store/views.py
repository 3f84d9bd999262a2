"""Rows → the values the store answers with (events, message views, queue statistics), the
same for both backends: their reads select the same columns in the same order. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

from smppgw.store.encoding import Row, iso, load_object, tlvs_from_json, wall
from smppgw.store.models import (
    Event,
    EventType,
    HistoryEntry,
    MessageState,
    MessageView,
    QueueStats,
    SegmentState,
    SegmentView,
)

__all__ = ["message_view", "queue_stats", "row_event", "segment_view"]


def row_event(r: Row) -> Event:
    return Event(
        cursor=cast(int, r[0]), type=cast(EventType, r[1]), at=cast(str, r[2]),
        tracking_id=cast("str | None", r[3]), client_id=cast("str | None", r[4]),
        state=cast("str | None", r[5]), payload=load_object(cast(str, r[6])),
    )


def segment_view(s: Row) -> SegmentView:
    def opt_wall(value: object) -> float | None:
        return wall(cast(int, value)) if value is not None else None

    return SegmentView(
        part_index=cast(int, s[0]), state=cast(SegmentState, s[1]),
        short_message=bytes(cast(bytes, s[2])), esm_class=cast(int, s[3]),
        data_coding=cast(int, s[4]), tlvs=tlvs_from_json(cast(str, s[5])),
        smsc_message_id=cast("str | None", s[6]), submit_status=cast("str | None", s[7]),
        submitted_wall=opt_wall(s[8]), resp_wall=opt_wall(s[9]), attempts=cast(int, s[10]),
        next_attempt_wall=wall(cast(int, s[11])), last_error=cast("str | None", s[12]),
        bind=cast("str | None", s[13]), receipt_stat=cast("str | None", s[14]),
        receipt_err=cast("str | None", s[15]), receipt_wall=opt_wall(s[16]),
        receipt=load_object(cast(str, s[17])) if s[17] is not None else None,
    )


def message_view(
    m: Row, segments: Sequence[Row],
    events: Sequence[Row], notes: Sequence[Row],
) -> MessageView:
    """A message from its row, its parts, its events and its notes (rows in the column orders
    of the SELECTs above, the same on both backends)."""
    entries: list[tuple[str, int, HistoryEntry]] = []
    for r in events:
        event = row_event(r)
        entries.append((event.at, 0, HistoryEntry(event.at, event.type, event.state,
                                                   event.payload, event.cursor)))
    for note in notes:
        at = iso(cast(int, note[0]))
        entries.append((at, 1, HistoryEntry(at, cast(str, note[1]), None,
                                            {"part": note[2],
                                             **load_object(cast(str, note[3]))})))
    # Stable: events before notes of the same instant, each in its own order.
    entries.sort(key=lambda e: (e[0], e[1]))
    return MessageView(
        tracking_id=cast(str, m[0]), client_id=cast("str | None", m[1]),
        provider=cast(str, m[2]), source=cast(str, m[3]), destination=cast(str, m[4]),
        text=cast(str, m[5]), flash=bool(m[6]), data_coding=cast(int, m[7]),
        encoding=cast(str, m[8]), esm_class=cast(int, m[9]),
        registered_delivery=cast(int, m[10]), tlvs=tlvs_from_json(cast(str, m[11])),
        state=cast(MessageState, m[12]),
        parts=cast(int, m[13]), attempts=cast(int, m[14]),
        last_error=cast("str | None", m[15]), created_wall=wall(cast(int, m[16])),
        updated_wall=wall(cast(int, m[17])),
        valid_until_wall=wall(cast(int, m[18])) if m[18] is not None else None,
        answer=load_object(cast(str, m[19])), segments=tuple(segment_view(s) for s in segments),
        history=tuple(e[2] for e in entries),
        request=load_object(cast(str, m[20])) if m[20] is not None else None,
        retry_of=cast("str | None", m[21]), retried_as=cast("str | None", m[22]),
    )


def queue_stats(
    rows: Sequence[Row], now_wall: float
) -> dict[str, QueueStats]:
    """Per provider from (provider, state, count, oldest created_unix_ms) rows."""
    stats: dict[str, QueueStats] = {}
    for row in rows:
        name, state, count, oldest = cast(str, row[0]), row[1], row[2], row[3]
        entry = stats.get(name) or QueueStats(name, 0, 0, 0.0)
        age = max(0.0, now_wall - wall(cast(int, oldest)))
        if state == "queued":
            entry = replace(entry, queued=cast(int, count), oldest_queued_age=age)
        else:
            entry = replace(entry, sending=cast(int, count))
        stats[name] = replace(entry, oldest_unsent_age=max(entry.oldest_unsent_age, age))
    return stats
