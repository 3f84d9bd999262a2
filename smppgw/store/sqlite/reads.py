"""The SQLite reads: each runs on the reader thread inside one snapshot (BEGIN … COMMIT), on a
query-only connection, so it sees committed data and never waits for the writer (WAL).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from smppgw.store.encoding import tlvs_from_json, wall
from smppgw.store.models import Event, MessageView, QueuedMessage, QueueStats, StoreCounts
from smppgw.store.sqlite.writer import read_last_cursor
from smppgw.store.views import message_view, queue_stats, row_event

__all__ = [
    "MAX_EVENTS_PER_READ",
    "read_counts",
    "read_events",
    "read_message",
    "read_messages_by_client_id",
    "read_queue_stats",
    "read_queued_messages",
    "read_tracking_id",
    "read_unmatched_receipt_count",
    "read_webhook_position",
]

MAX_EVENTS_PER_READ: Final = 10_000

_EVENT_COLUMNS: Final = "cursor, type, at_utc, tracking_id, client_id, state, payload"


def read_events(conn: sqlite3.Connection, cursor: int, limit: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?",
        (cursor, limit)).fetchall()
    return [row_event(r) for r in rows]


_MESSAGE_SQL: Final = (
    "SELECT tracking_id, client_id, provider, source, destination, text, flash,"
    " data_coding, encoding, esm_class, registered_delivery, tlvs, state, parts, attempts,"
    " last_error, created_unix_ms, updated_unix_ms, valid_until_unix_ms, answer"
    " FROM messages WHERE {where} = ?"
)
_SEGMENTS_SQL: Final = (
    "SELECT part_index, state, short_message, esm_class, data_coding, tlvs,"
    " smsc_message_id, submit_status, submitted_unix_ms, resp_unix_ms, attempts,"
    " next_attempt_unix_ms, last_error, bind, receipt_stat, receipt_err,"
    " receipt_unix_ms, receipt FROM segments WHERE tracking_id = ? ORDER BY part_index"
)


def _read_view(conn: sqlite3.Connection, where: str, value: str) -> MessageView | None:
    m = conn.execute(_MESSAGE_SQL.format(where=where), (value,)).fetchone()
    if m is None:
        return None
    tracking_id = m[0]
    return message_view(
        m, conn.execute(_SEGMENTS_SQL, (tracking_id,)).fetchall(),
        conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE tracking_id = ?"
                     " ORDER BY cursor", (tracking_id,)).fetchall(),
        conn.execute("SELECT at_unix_ms, kind, part_index, detail FROM message_notes"
                     " WHERE tracking_id = ? ORDER BY note_id", (tracking_id,)).fetchall())


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


QUEUE_STATS_SQL: Final = (
    "SELECT provider, state, COUNT(*), MIN(created_unix_ms) FROM segments"
    " WHERE state IN ('queued', 'sending') GROUP BY provider, state"
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
