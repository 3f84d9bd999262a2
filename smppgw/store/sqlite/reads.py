"""The SQLite reads: each runs on the reader thread inside one snapshot (BEGIN … COMMIT), on a
query-only connection, so it sees committed data and never waits for the writer (WAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

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
from smppgw.store.sqlite.bulk import in_list
from smppgw.store.sqlite.writer import read_last_cursor
from smppgw.store.views import message_view, queue_stats, row_event

__all__ = [
    "MAX_EVENTS_PER_READ",
    "read_counts",
    "read_events",
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

_EVENT_COLUMNS: Final = "cursor, type, at_utc, tracking_id, client_id, state, payload"


def read_events(conn: sqlite3.Connection, cursor: int, limit: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?",
        (cursor, limit)).fetchall()
    return [row_event(r) for r in rows]


# The columns views.message_view reads, in its order.
_MESSAGE_COLUMNS: Final = (
    "m.tracking_id, m.client_id, m.provider, m.source, m.destination, m.text, m.flash,"
    " m.data_coding, m.encoding, m.esm_class, m.registered_delivery, m.tlvs, m.state, m.parts,"
    " m.attempts, m.last_error, m.created_unix_ms, m.updated_unix_ms, m.valid_until_unix_ms,"
    " m.answer, m.request, m.retry_of,"
    " (SELECT r.tracking_id FROM messages AS r WHERE r.retry_of = m.tracking_id)"
)
_MESSAGE_SQL: Final = f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.{{where}} = ?"
_SEGMENT_COLUMNS: Final = (
    "part_index, state, short_message, esm_class, data_coding, tlvs,"
    " smsc_message_id, submit_status, submitted_unix_ms, resp_unix_ms, attempts,"
    " next_attempt_unix_ms, last_error, bind, receipt_stat, receipt_err,"
    " receipt_unix_ms, receipt"
)


def _read_view(conn: sqlite3.Connection, where: str, value: str) -> MessageView | None:
    m = conn.execute(_MESSAGE_SQL.format(where=where), (value,)).fetchone()
    if m is None:
        return None
    return _views(conn, [m])[0]


def _views(conn: sqlite3.Connection, messages: Sequence[Row]) -> list[MessageView]:
    """The views of ``messages`` (rows of _MESSAGE_COLUMNS): their parts, events and notes
    read with one statement each, whatever their number."""
    ids = [m[0] for m in messages]
    segments: dict[str, list[Row]] = {i: [] for i in ids}
    events: dict[str, list[Row]] = {i: [] for i in ids}
    notes: dict[str, list[Row]] = {i: [] for i in ids}
    for piece, marks in in_list(ids):
        for r in conn.execute(f"SELECT tracking_id, {_SEGMENT_COLUMNS} FROM segments"
                              f" WHERE tracking_id IN ({marks}) ORDER BY part_index", piece):
            segments[r[0]].append(r[1:])
        for r in conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events"
                              f" WHERE tracking_id IN ({marks}) ORDER BY cursor", piece):
            events[r[3]].append(r)
        for r in conn.execute("SELECT tracking_id, at_unix_ms, kind, part_index, detail"
                              f" FROM message_notes WHERE tracking_id IN ({marks})"
                              " ORDER BY note_id", piece):
            notes[r[0]].append(r[1:])
    return [message_view(m, segments[m[0]], events[m[0]], notes[m[0]]) for m in messages]


# The walks of search.Plan: each yields (created, tracking_id) newest first, through the index
# named (INDEXED BY: the plan is ours, whatever the planner's statistics say).
_WALKS: Final[Mapping[Source, str]] = {
    "created": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
               " INDEXED BY messages_created WHERE 1",
    "provider": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                " INDEXED BY messages_provider WHERE provider = :drive",
    "destination": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                   " INDEXED BY messages_destination"
                   " WHERE destination >= :drive AND destination < :drive_end",
    "undelivered": "SELECT created_unix_ms AS c, tracking_id AS t FROM messages"
                   " INDEXED BY messages_undelivered WHERE undelivered_state = :drive",
    "unsent": "SELECT DISTINCT created_unix_ms AS c, tracking_id AS t FROM segments"
              " INDEXED BY segments_unsent WHERE state IN ('queued', 'sending')",
}


def walk_sql(p: Plan, *, ordered: bool = True) -> tuple[str, dict[str, object]]:
    """The walk of ``p`` as one SELECT (the ``scan`` of read_message_page) and its
    parameters; without ``ordered``, its rows in index order, unlimited (to count them)."""
    sql = _WALKS[p.source]
    params: dict[str, object] = {"scan_limit": p.scan_limit}
    if p.drive:
        params["drive"] = p.drive[0]
    if len(p.drive) > 1:
        params["drive_end"] = p.drive[1]
    if p.since_unix_ms is not None:
        sql += " AND created_unix_ms >= :since"
        params["since"] = p.since_unix_ms
    if p.until_unix_ms is not None:
        sql += " AND created_unix_ms < :until"
        params["until"] = p.until_unix_ms
    if p.after is not None:
        # The first term bounds the index range; the second drops the rows at the boundary
        # instant up to and including the cursor.
        sql += (" AND created_unix_ms <= :after_c"
                " AND (created_unix_ms < :after_c OR tracking_id < :after_t)")
        params["after_c"], params["after_t"] = p.after.created_unix_ms, p.after.tracking_id
    if not ordered:
        return sql, params
    return sql + " ORDER BY c DESC, t DESC LIMIT :scan_limit", params


def read_message_page(conn: sqlite3.Connection, query: MessageQuery) -> MessagePage:
    """One page of the list (search.py): the walk, the filters left, and the views."""
    p = plan(query)
    if p.source == "destination" and _prefix_is_dense(conn, p):
        p = plan(query, dense_prefix=True)
    walk, params = walk_sql(p)
    where = []
    if p.state is not None:
        where.append("m.state = :state")
        params["state"] = p.state
    if p.provider is not None:
        where.append("m.provider = :provider")
        params["provider"] = p.provider
    if p.to_range is not None:
        where.append("m.destination >= :to_lo AND m.destination < :to_hi")
        params["to_lo"], params["to_hi"] = p.to_range
    params["page"] = p.limit + 1
    rows = conn.execute(
        f"WITH scan AS MATERIALIZED ({walk})"
        f" SELECT {_MESSAGE_COLUMNS}, scan.c FROM scan"
        " JOIN messages AS m ON m.tracking_id = scan.t"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY scan.c DESC, scan.t DESC LIMIT :page", params).fetchall()
    found = [PageKey(r[-1], r[0]) for r in rows]
    scanned, last = 0, None
    if len(rows) <= p.limit:
        # Short page: did the walk stop at its limit, and where? (index-only, once more)
        edge = conn.execute(
            f"WITH scan AS MATERIALIZED ({walk})"
            " SELECT (SELECT COUNT(*) FROM scan), c, t FROM scan ORDER BY c, t LIMIT 1",
            params).fetchone()
        if edge is not None:
            scanned, last = edge[0], PageKey(edge[1], edge[2])
    views = _views(conn, [r[:-1] for r in rows[:p.limit]])
    return MessagePage(tuple(views), next_key(found, p.limit, scanned, last, p.scan_limit))


def _prefix_is_dense(conn: sqlite3.Connection, p: Plan) -> bool:
    """More messages to the prefix (from the page's position on) than a walk examines?
    Counted on the destination index, at most scan_limit + 1 entries."""
    walk, params = walk_sql(p, ordered=False)
    (count,) = conn.execute(f"SELECT COUNT(*) FROM ({walk} LIMIT :probe)",
                            {**params, "probe": p.scan_limit + 1}).fetchone()
    return bool(count > p.scan_limit)


def read_provider_pauses(conn: sqlite3.Connection) -> dict[str, ProviderPause]:
    return {provider: ProviderPause(provider, wall(since)) for provider, since in conn.execute(
        "SELECT provider, paused_unix_ms FROM provider_pauses ORDER BY provider")}


def read_message(conn: sqlite3.Connection, tracking_id: str) -> MessageView | None:
    return _read_view(conn, "tracking_id", tracking_id)


def read_messages_by_client_id(conn: sqlite3.Connection, client_id: str) -> list[MessageView]:
    view = _read_view(conn, "client_id", client_id)
    return [] if view is None else [view]


def read_tracking_id(conn: sqlite3.Connection, client_id: str) -> str | None:
    row = conn.execute(
        "SELECT tracking_id FROM messages WHERE client_id = ?", (client_id,)).fetchone()
    return None if row is None else str(row[0])


def read_webhook_position(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT cursor FROM webhook_positions WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


# Reads the unsent parts only (the queue), whatever the history: without statistics the planner
# would rather walk a full index that happens to lead with provider.
QUEUE_STATS_SQL: Final = (
    "SELECT provider, state, COUNT(*), MIN(created_unix_ms) FROM segments"
    " INDEXED BY segments_unsent WHERE state IN ('queued', 'sending') GROUP BY provider, state"
)


def read_queue_stats(conn: sqlite3.Connection, now_wall: float) -> dict[str, QueueStats]:
    return queue_stats(conn.execute(QUEUE_STATS_SQL).fetchall(), now_wall)


def read_counts(conn: sqlite3.Connection) -> StoreCounts:
    """Scans indexes: meant for status and periodic metrics, not per request."""
    messages = dict(conn.execute("SELECT state, COUNT(*) FROM messages GROUP BY state"))
    segments = dict(conn.execute("SELECT state, COUNT(*) FROM segments GROUP BY state"))
    (unmatched,) = conn.execute(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
    (mo_parts,) = conn.execute("SELECT COUNT(*) FROM mo_parts").fetchone()
    (mo_messages,) = conn.execute("SELECT COUNT(*) FROM mo_messages").fetchone()
    return StoreCounts(messages, segments, read_last_cursor(conn), unmatched, mo_parts,
                       mo_messages)


def read_unmatched_receipt_count(conn: sqlite3.Connection) -> int:
    (n,) = conn.execute("SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
    return int(n)


def read_unmatched_receipts(
    conn: sqlite3.Connection, stale_before_wall: float
) -> dict[str, UnmatchedReceipts]:
    # The open ones only, through the partial index unmatched_receipts_open.
    return {
        provider: UnmatchedReceipts(int(pending), int(stale), wall(int(oldest)))
        for provider, pending, stale, oldest in conn.execute(
            "SELECT provider, COUNT(*), SUM(received_unix_ms < ?), MIN(received_unix_ms)"
            " FROM unmatched_receipts WHERE matched = 0 GROUP BY provider",
            (ms(stale_before_wall),))
    }


# The messages failover may move: queued, none of their parts claimed or sent.
QUEUED_MESSAGES_SQL: Final = (
    "SELECT tracking_id, client_id, provider, source, destination, text, flash, encoding,"
    " registered_delivery, tlvs, valid_until_unix_ms FROM messages AS m"
    " WHERE provider = ? AND state = 'queued' AND NOT EXISTS (SELECT 1 FROM segments AS s"
    "       WHERE s.tracking_id = m.tracking_id AND s.state <> 'queued')"
    " ORDER BY created_unix_ms, tracking_id LIMIT ?")


def read_queued_messages(conn: sqlite3.Connection, provider: str, limit: int
                         ) -> list[QueuedMessage]:
    return [QueuedMessage(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8],
                          tlvs_from_json(r[9]), wall(r[10]) if r[10] is not None else None)
            for r in conn.execute(QUEUED_MESSAGES_SQL, (provider, limit))]
