"""The PostgreSQL reads: each on a pooled connection; a read of several statements runs in one
read-only REPEATABLE READ transaction, so it sees one snapshot of committed data.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from smppgw.store.encoding import tlvs_from_json, wall
from smppgw.store.models import Event, MessageView, QueuedMessage, QueueStats, StoreCounts
from smppgw.store.views import message_view, queue_stats, row_event

__all__ = [
    "MAX_EVENTS_PER_READ",
    "Connection",
    "read_counts",
    "read_events",
    "read_last_cursor",
    "read_message",
    "read_messages_by_client_id",
    "read_queue_stats",
    "read_queued_messages",
    "read_tracking_id",
    "read_unmatched_receipt_count",
    "read_webhook_position",
]

MAX_EVENTS_PER_READ: Final = 10_000

#: A connection of its own or one lent by the pool.
Connection: TypeAlias = "asyncpg.Connection | PoolConnectionProxy"

_EVENT_COLUMNS: Final = "cursor, type, at_utc, tracking_id, client_id, state, payload"


async def read_last_cursor(conn: Connection) -> int:
    """The last cursor given to a committed event (event_counter is bumped in the same
    transaction as the events it numbers)."""
    return int(await conn.fetchval("SELECT last FROM event_counter WHERE id = 1"))


async def read_events(conn: Connection, cursor: int, limit: int) -> list[Event]:
    rows = await conn.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE cursor > $1 ORDER BY cursor LIMIT $2",
        cursor, limit)
    return [row_event(r) for r in rows]


_MESSAGE_SQL: Final = (
    "SELECT tracking_id, client_id, provider, source, destination, text, flash,"
    " data_coding, encoding, esm_class, registered_delivery, tlvs, state, parts, attempts,"
    " last_error, created_unix_ms, updated_unix_ms, valid_until_unix_ms, answer"
    " FROM messages WHERE {where} = $1"
)
_SEGMENTS_SQL: Final = (
    "SELECT part_index, state, short_message, esm_class, data_coding, tlvs,"
    " smsc_message_id, submit_status, submitted_unix_ms, resp_unix_ms, attempts,"
    " next_attempt_unix_ms, last_error, bind, receipt_stat, receipt_err,"
    " receipt_unix_ms, receipt FROM segments WHERE tracking_id = $1 ORDER BY part_index"
)


async def _read_view(conn: Connection, where: str, value: str) -> MessageView | None:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        m = await conn.fetchrow(_MESSAGE_SQL.format(where=where), value)
        if m is None:
            return None
        tracking_id = m[0]
        return message_view(
            m, await conn.fetch(_SEGMENTS_SQL, tracking_id),
            await conn.fetch(f"SELECT {_EVENT_COLUMNS} FROM events WHERE tracking_id = $1"
                             " ORDER BY cursor", tracking_id),
            await conn.fetch("SELECT at_unix_ms, kind, part_index, detail FROM message_notes"
                             " WHERE tracking_id = $1 ORDER BY note_id", tracking_id))


async def read_message(conn: Connection, tracking_id: str) -> MessageView | None:
    return await _read_view(conn, "tracking_id", tracking_id)


async def read_messages_by_client_id(
    conn: Connection, client_id: str
) -> list[MessageView]:
    view = await _read_view(conn, "client_id", client_id)
    return [] if view is None else [view]


async def read_tracking_id(conn: Connection, client_id: str) -> str | None:
    value = await conn.fetchval("SELECT tracking_id FROM messages WHERE client_id = $1",
                                client_id)
    return None if value is None else str(value)


async def read_webhook_position(conn: Connection, name: str) -> int:
    value = await conn.fetchval("SELECT cursor FROM webhook_positions WHERE name = $1", name)
    return 0 if value is None else int(value)


async def read_queue_stats(conn: Connection, now_wall: float) -> dict[str, QueueStats]:
    rows = await conn.fetch(
        "SELECT provider, state, COUNT(*), MIN(created_unix_ms) FROM segments"
        " WHERE state IN ('queued', 'sending') GROUP BY provider, state")
    return queue_stats(rows, now_wall)


async def read_counts(conn: Connection) -> StoreCounts:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        messages = {r[0]: r[1] for r in await conn.fetch(
            "SELECT state, COUNT(*) FROM messages GROUP BY state")}
        segments = {r[0]: r[1] for r in await conn.fetch(
            "SELECT state, COUNT(*) FROM segments GROUP BY state")}
        unmatched = await conn.fetchval(
            "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0")
        mo_parts = await conn.fetchval("SELECT COUNT(*) FROM mo_parts")
        mo_messages = await conn.fetchval("SELECT COUNT(*) FROM mo_messages")
        last = await read_last_cursor(conn)
    return StoreCounts(messages, segments, last, int(unmatched), int(mo_parts),
                       int(mo_messages))


async def read_unmatched_receipt_count(conn: Connection) -> int:
    return int(await conn.fetchval(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0"))


async def read_queued_messages(conn: Connection, provider: str, limit: int
                               ) -> list[QueuedMessage]:
    """The messages failover may move: queued, none of their parts claimed or sent."""
    rows = await conn.fetch(
        "SELECT tracking_id, client_id, provider, source, destination, text, flash, encoding,"
        " registered_delivery, tlvs, valid_until_unix_ms FROM messages AS m"
        " WHERE provider = $1 AND state = 'queued' AND NOT EXISTS (SELECT 1 FROM segments AS s"
        "       WHERE s.tracking_id = m.tracking_id AND s.state <> 'queued')"
        " ORDER BY created_unix_ms, tracking_id LIMIT $2", provider, limit)
    return [QueuedMessage(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8],
                          tlvs_from_json(r[9]), wall(r[10]) if r[10] is not None else None)
            for r in rows]
