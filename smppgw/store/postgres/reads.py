"""The PostgreSQL reads: each on a pooled connection; a read of several statements runs in one
read-only REPEATABLE READ transaction, so it sees one snapshot of committed data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from smppgw.store.encoding import Row, ms, tlvs_from_json, wall
from smppgw.store.models import (
    Event,
    MessagePage,
    MessageQuery,
    MessageView,
    PageKey,
    ProviderPause,
    QueuedMessage,
    QueueStats,
    StoreCounts,
    UnmatchedReceipts,
)
from smppgw.store.search import Plan, Source, next_key, plan
from smppgw.store.views import message_view, queue_stats, row_event

__all__ = [
    "MAX_EVENTS_PER_READ",
    "Connection",
    "page_sql",
    "read_counts",
    "read_events",
    "read_last_cursor",
    "read_message",
    "read_message_page",
    "read_messages_by_client_id",
    "read_provider_pauses",
    "read_queue_stats",
    "read_queued_messages",
    "read_tracking_id",
    "read_unmatched_receipt_count",
    "read_unmatched_receipts",
    "read_webhook_position",
    "walk_sql",
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


# The columns views.message_view reads, in its order: a message's own, then its retry's id.
_OWN_COLUMNS: Final = (
    "m.tracking_id, m.client_id, m.provider, m.source, m.destination, m.text, m.flash,"
    " m.data_coding, m.encoding, m.esm_class, m.registered_delivery, m.tlvs, m.state, m.parts,"
    " m.attempts, m.last_error, m.created_unix_ms, m.updated_unix_ms, m.valid_until_unix_ms,"
    " m.answer, m.request, m.retry_of"
)
_RETRIED_AS: Final = "(SELECT r.tracking_id FROM messages AS r WHERE r.retry_of = m.tracking_id)"
_MESSAGE_COLUMNS: Final = f"{_OWN_COLUMNS}, {_RETRIED_AS}"
_MESSAGE_SQL: Final = f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.{{where}} = $1"
_SEGMENT_COLUMNS: Final = (
    "part_index, state, short_message, esm_class, data_coding, tlvs,"
    " smsc_message_id, submit_status, submitted_unix_ms, resp_unix_ms, attempts,"
    " next_attempt_unix_ms, last_error, bind, receipt_stat, receipt_err,"
    " receipt_unix_ms, receipt"
)


async def _read_view(conn: Connection, where: str, value: str) -> MessageView | None:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        m = await conn.fetchrow(_MESSAGE_SQL.format(where=where), value)
        if m is None:
            return None
        return (await _views(conn, [m]))[0]


async def _views(conn: Connection, messages: Sequence[Row]) -> list[MessageView]:
    """The views of ``messages`` (rows of _MESSAGE_COLUMNS): their parts, events and notes
    read with one statement each, whatever their number (inside the caller's snapshot)."""
    ids = [m[0] for m in messages]
    segments: dict[str, list[Row]] = {i: [] for i in ids}
    events: dict[str, list[Row]] = {i: [] for i in ids}
    notes: dict[str, list[Row]] = {i: [] for i in ids}
    for r in await conn.fetch(f"SELECT tracking_id, {_SEGMENT_COLUMNS} FROM segments"
                              " WHERE tracking_id = ANY($1::text[]) ORDER BY part_index", ids):
        segments[r[0]].append(tuple(r)[1:])
    for r in await conn.fetch(f"SELECT {_EVENT_COLUMNS} FROM events"
                              " WHERE tracking_id = ANY($1::text[]) ORDER BY cursor", ids):
        events[r[3]].append(r)
    for r in await conn.fetch("SELECT tracking_id, at_unix_ms, kind, part_index, detail"
                              " FROM message_notes WHERE tracking_id = ANY($1::text[])"
                              " ORDER BY note_id", ids):
        notes[r[0]].append(tuple(r)[1:])
    return [message_view(m, segments[m[0]], events[m[0]], notes[m[0]]) for m in messages]


async def read_message(conn: Connection, tracking_id: str) -> MessageView | None:
    return await _read_view(conn, "tracking_id", tracking_id)


async def read_messages_by_client_id(
    conn: Connection, client_id: str
) -> list[MessageView]:
    view = await _read_view(conn, "client_id", client_id)
    return [] if view is None else [view]


# The walks of search.Plan: each yields (created, tracking_id) newest first; the planner takes
# the index that gives that order for the walk's key (the one named in the comment).
_WALKS: Final[Mapping[Source, str]] = {
    # messages_created
    "created": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages WHERE true",
    # messages_provider
    "provider": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                " WHERE provider = $1",
    # messages_destination
    "destination": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                   ' WHERE destination COLLATE "C" >= $1 AND destination COLLATE "C" < $2',
    # messages_undelivered
    "undelivered": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                   " WHERE undelivered_state = $1 AND undelivered_state IS NOT NULL",
    # segments_unsent
    "unsent": "SELECT DISTINCT created_unix_ms AS c, tracking_id AS t FROM segments"
              " WHERE state IN ('queued', 'sending')",
}


def walk_sql(p: Plan, *, ordered: bool = True) -> tuple[str, list[object]]:
    """The walk of ``p`` as one SELECT (the ``scan`` of read_message_page) and its
    parameters, numbered from $1; without ``ordered``, its rows in no order, unlimited (to
    count them)."""
    sql = _WALKS[p.source]
    params: list[object] = list(p.drive)

    def param(value: object, cast_to: str) -> str:
        params.append(value)
        return f"${len(params)}::{cast_to}"

    if p.since_unix_ms is not None:
        sql += f" AND created_unix_ms >= {param(p.since_unix_ms, 'bigint')}"
    if p.until_unix_ms is not None:
        sql += f" AND created_unix_ms < {param(p.until_unix_ms, 'bigint')}"
    if p.after is not None:
        # A row comparison: the index range starts right after the cursor.
        created = param(p.after.created_unix_ms, "bigint")
        tracking_id = param(p.after.tracking_id, "text")
        sql += f" AND (created_unix_ms, tracking_id) < ({created}, {tracking_id})"
    if not ordered:
        return sql, params
    return sql + f" ORDER BY c DESC, t DESC LIMIT {param(p.scan_limit, 'int')}", params


def page_sql(p: Plan) -> tuple[str, list[object]]:
    """The page of ``p``: the walk's rows in its (index) order, each message fetched by its
    key (LATERAL with OFFSET 0: a fence, so the planner cannot turn the filters into a scan
    of the table), the page taken as the matches come: no sort, and no more of the walk than
    the page needs. Rows: views.message_view's columns, then the walk's created."""
    walk, params = walk_sql(p)
    where: list[str] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    if p.state is not None:
        where.append(f"m.state = {param(p.state)}")
    if p.provider is not None:
        where.append(f"m.provider = {param(p.provider)}")
    if p.to_range is not None:
        where.append(f'm.destination COLLATE "C" >= {param(p.to_range[0])}'
                     f' AND m.destination COLLATE "C" < {param(p.to_range[1])}')
    limit = param(p.limit + 1)
    return (f"SELECT m.*, {_RETRIED_AS}, s.c FROM ({walk}) AS s"
            f" CROSS JOIN LATERAL (SELECT {_OWN_COLUMNS} FROM messages AS m"
            " WHERE m.tracking_id = s.t OFFSET 0) AS m"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY s.c DESC, s.t DESC LIMIT {limit}::int", params)


async def read_message_page(conn: Connection, query: MessageQuery) -> MessagePage:
    """One page of the list (search.py): the walk, the filters left, and the views, in one
    snapshot."""
    p = plan(query)
    if p.source == "destination" and await _prefix_is_dense(conn, p):
        p = plan(query, dense_prefix=True)
    sql, params = page_sql(p)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(sql, *params)
        found = [PageKey(r[-1], r[0]) for r in rows]
        scanned, last = 0, None
        if len(rows) <= p.limit:
            # Short page: did the walk stop at its limit, and where? (index-only, once more)
            walk, walk_params = walk_sql(p)
            edge = await conn.fetchrow(
                f"WITH scan AS MATERIALIZED ({walk})"
                " SELECT (SELECT COUNT(*) FROM scan), c, t FROM scan ORDER BY c, t LIMIT 1",
                *walk_params)
            if edge is not None:
                scanned, last = int(edge[0]), PageKey(edge[1], edge[2])
        views = await _views(conn, [tuple(r)[:-1] for r in rows[:p.limit]])
    return MessagePage(tuple(views), next_key(found, p.limit, scanned, last, p.scan_limit))


async def _prefix_is_dense(conn: Connection, p: Plan) -> bool:
    """More messages to the prefix (from the page's position on) than a walk examines?
    Counted on the destination index, at most scan_limit + 1 entries."""
    walk, params = walk_sql(p, ordered=False)
    count = await conn.fetchval(
        f"SELECT COUNT(*) FROM ({walk} LIMIT ${len(params) + 1}::int) AS probe",
        *params, p.scan_limit + 1)
    return bool(count > p.scan_limit)


async def read_provider_pauses(conn: Connection) -> dict[str, ProviderPause]:
    return {r[0]: ProviderPause(r[0], wall(r[1])) for r in await conn.fetch(
        "SELECT provider, paused_unix_ms FROM provider_pauses ORDER BY provider")}


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


async def read_unmatched_receipts(
    conn: Connection, stale_before_wall: float
) -> dict[str, UnmatchedReceipts]:
    # The open ones only, through the partial index unmatched_receipts_open.
    return {
        r[0]: UnmatchedReceipts(int(r[1]), int(r[2]), wall(int(r[3])))
        for r in await conn.fetch(
            "SELECT provider, COUNT(*), COUNT(*) FILTER (WHERE received_unix_ms < $1),"
            " MIN(received_unix_ms) FROM unmatched_receipts WHERE matched = 0"
            " GROUP BY provider", ms(stale_before_wall))
    }


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
