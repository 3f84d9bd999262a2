"""The durable queue and event log: SQLite in WAL mode under state_dir, one writer thread that
commits queued write commands in groups, one reader thread, and an asyncio API over both.
Nothing here blocks the event loop; nothing here knows SMPP PDUs, sockets or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar, cast

from smppgw.store.models import (
    FINAL_MESSAGE_STATES,
    RECEIPT_OUTCOMES,
    AcceptResult,
    Event,
    EventType,
    HistoryEntry,
    MessageState,
    MessageView,
    MoMessage,
    MoPart,
    MoPartResult,
    MoRecord,
    NewMessage,
    PurgeReport,
    QueueStats,
    ReceiptOutcomeName,
    ReceiptRecord,
    ReceiptResult,
    RecoveryReport,
    SegmentState,
    SegmentToSend,
    SegmentView,
    StoreClosedError,
    StoreCounts,
    StoredMoPart,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
    StoreWriteError,
    SubmitOutcome,
    SubmitRecorded,
    Tlvs,
    WriteFailure,
    WriteFailureReason,
)
from smppgw.store.schema import MIGRATIONS, migrate

__all__ = ["DB_FILENAME", "LOCK_FILENAME", "Store", "derive_message_state"]

# Theory of operation
# -------------------
# Durability. "Accepted" means committed and fsynced (DESIGN.md "Delivery guarantees"). The
# database runs ``journal_mode=WAL`` with ``synchronous=FULL``: in WAL mode FULL fsyncs the WAL
# at every commit, while NORMAL only syncs at checkpoints, so a power loss could drop the last
# committed transactions, i.e. messages already answered ``accepted`` and receipts already
# acknowledged with deliver_sm_resp. The one exception is a group made only of claims
# (``claim_segments``): losing a claim is harmless (see recovery), so such a group commits with
# NORMAL, and the next durable commit's fsync of the WAL covers its frames anyway.
#
# Group commit. Every write is a small function run on the writer thread inside a transaction.
# The thread takes everything queued (up to ``max_group`` commands), runs them in one
# ``BEGIN IMMEDIATE … COMMIT`` (one fsync), each under its own SAVEPOINT so a command that
# raises rolls back alone and the rest commit, then resolves all their futures with one
# ``loop.call_soon_threadsafe``. Under load a commit carries hundreds of commands, so the cost of
# an fsync is shared; alone, a command commits at once. A caller cancelled while waiting loses
# only its wait: the command still commits.
#
# Dispatch. Claiming parts is a write: ``claim_segments`` marks the oldest due queued parts of a
# provider 'sending' and returns them with everything a submit_sm needs; the dispatcher reports
# each with ``record_submit_results``. Claims are batched by the caller (hundreds per call), so
# the database stays the only queue: nothing is lost between an accept and a claim, the
# dispatcher needs no copy of the queue in memory, retries are just next_attempt_unix_ms, and
# the cost is one grouped, fsync-free UPDATE per batch. (An in-memory queue fed by
# accept_messages would save that UPDATE but duplicate the queue's state in two places; the
# store's benchmark shows the full life of a message at several thousand per second without it.)
#
# Message state. A message's state is derived from its parts by ``derive_message_state`` and
# only ever moves forward; once final (delivered, undeliverable, expired, rejected, failed) it
# never changes, and later results or receipts are recorded on the part and in the event log.
#
# Recovery rule (at-least-once). At start, before dispatching, ``recover()`` puts every part left
# 'sending' back to 'queued'. Such a part was claimed by the previous run and either never sent,
# or sent without its submit_sm_resp recorded; it is sent again, so a duplicate can only come from
# a submit whose response was lost with the process or the connection.
#
# Reads go to a second connection on a reader thread; WAL lets them run while the writer
# commits, and each read sees only committed data.
#
# A full disk (or an I/O error) is an outage, not a crash. SQLite refuses the statement or the
# COMMIT with SQLITE_FULL / SQLITE_IOERR; the group is rolled back, so nothing of it is stored,
# and its callers get StoreWriteError naming the cause. The writer thread goes on. The store
# then reports ``write_failure`` (what, since when, how many writes refused) until a group that
# changed rows commits again, which the callers' own retries or ``probe_write`` bring about
# once space returns; ``on_write_health`` hears both moves, on the loop. Reads keep working.

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILENAME: Final = "smppgw.db"
LOCK_FILENAME: Final = "smppgw.lock"

_MAX_EVENTS_PER_READ: Final = 10_000
# The name probe_write uses for its transient row; the daemon names webhooks "webhook<N>".
_PROBE_NAME: Final = "\x00write probe"


# --- the message state rule ----------------------------------------------------------------------

# How far a part has come. Only forward moves are applied, so a late or reordered receipt
# (ACCEPTD after DELIVRD) never moves a part back.
_RANK: Final[Mapping[str, int]] = {
    "queued": 0, "sending": 0, "submitted": 1, "accepted": 2,
    "delivered": 3, "undeliverable": 3, "expired": 3, "rejected": 3, "failed": 3,
}
# When every part is final and not all were delivered, the message takes the first of these
# that any part has: the most definite refusal wins, whatever the part order.
_FINAL_PRECEDENCE: Final = ("failed", "rejected", "undeliverable", "expired")
_RECEIPT_SEGMENT_STATE: Final[Mapping[str, SegmentState]] = {
    "accepted": "accepted", "delivered": "delivered", "undeliverable": "undeliverable",
    "expired": "expired", "rejected": "rejected",
}


def derive_message_state(segment_states: Iterable[str]) -> MessageState:
    """The state of a message from the states of all its parts.

    - any part 'failed' (the SMSC refused it permanently) → 'failed' at once;
    - every part final: all 'delivered' → 'delivered', else the first of rejected,
      undeliverable, expired that some part has (a multi-part message is delivered only when
      every part is);
    - otherwise the least advanced part decides: some part queued or sending → 'queued',
      some part only submitted → 'submitted', else (all accepted or final) → 'accepted'.
    """
    states = list(segment_states)
    if not states:
        return "queued"
    if "failed" in states:
        return "failed"
    ranks = [_RANK[s] for s in states]
    if min(ranks) == 3:
        for final in _FINAL_PRECEDENCE:
            if final in states:
                return cast(MessageState, final)
        return "delivered"
    least = min(ranks)
    if least == 0:
        return "queued"
    if least == 1:
        return "submitted"
    return "accepted"


# --- encoding helpers ----------------------------------------------------------------------------


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(value: object) -> str:
    # One encoder built once: json.dumps with options builds a new one per call.
    return _ENCODER.encode(value)


def _load_object(text: str | None) -> dict[str, object]:
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"expected a JSON object in the store, found {type(value).__name__}")
    return cast(dict[str, object], value)


def _tlvs_to_json(tlvs: Tlvs) -> str:
    return _dumps([[tag, value.hex()] for tag, value in tlvs])


def _tlvs_from_json(text: str) -> Tlvs:
    return tuple((int(tag), bytes.fromhex(value)) for tag, value in json.loads(text))


def _ms(wall: float) -> int:
    return round(wall * 1000)


def _wall(ms: int) -> float:
    return ms / 1000.0


def _iso(ms: int) -> str:
    """UTC ISO 8601 with milliseconds and a Z, the events API's ``at``."""
    stamp = datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


_TRACKING_ID: Final = re.compile(r"[0-9a-f]{32}")
_IN_CHUNK: Final = 500   # values per IN (...) list, far below SQLite's variable limit


# --- the writer side -----------------------------------------------------------------------------


class _Tx:
    """One group's transaction as the write commands see it: the connection, the group's
    clock reading, and the event appender (which tracks the last cursor written)."""

    __slots__ = ("conn", "last_cursor", "now_iso", "now_ms")

    def __init__(self, conn: sqlite3.Connection, now_ms: int, last_cursor: int) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.now_iso = _iso(now_ms)
        self.last_cursor = last_cursor

    def event(
        self, type_: EventType, tracking_id: str | None, client_id: str | None,
        state: str | None, payload: Mapping[str, object],
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO events (type, at_utc, tracking_id, client_id, state, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (type_, self.now_iso, tracking_id, client_id, state, _dumps(payload)),
        )
        cursor = cast(int, cur.lastrowid)   # always set by an INSERT into a rowid table
        self.last_cursor = cursor
        return cursor

    def events(self, rows: Sequence[tuple[object, ...]]) -> None:
        """Append many events: rows of (type, at_utc, tracking_id, client_id, state, payload
        JSON text)."""
        self.conn.executemany(
            "INSERT INTO events (type, at_utc, tracking_id, client_id, state, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        (self.last_cursor,) = self.conn.execute("SELECT last_insert_rowid()").fetchone()

    def note(
        self, tracking_id: str, part_index: int | None, kind: str, detail: Mapping[str, object],
    ) -> None:
        self.conn.execute(
            "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (tracking_id, part_index, self.now_ms, kind, _dumps(detail)),
        )


class _Command:
    __slots__ = ("durable", "fn", "future")

    def __init__(
        self, fn: Callable[[_Tx], object], future: asyncio.Future[object], durable: bool
    ) -> None:
        self.fn = fn
        self.future = future
        self.durable = durable


_Delivery = tuple[asyncio.Future[object], object, bool]   # future, value or exception, ok


def _configure(conn: sqlite3.Connection, busy_timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot put the database in WAL mode (got {mode!r})")
    # See the theory of operation: FULL, not NORMAL, is what makes "accepted" survive power loss.
    conn.execute("PRAGMA synchronous = FULL")
    # F_FULLFSYNC on macOS (a plain fsync there does not reach the platter); no-op elsewhere.
    conn.execute("PRAGMA fullfsync = ON")
    conn.execute("PRAGMA checkpoint_fullfsync = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")   # KiB


# --- write commands: each runs on the writer thread inside the group's transaction --------------


def _known(
    conn: sqlite3.Connection, column: str, values: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """value → (tracking_id, answer) for the messages whose ``column`` is among ``values``."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start:start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        # column is one of two names from this module, never input.
        for value, tracking_id, answer in conn.execute(
                f"SELECT {column}, tracking_id, answer FROM messages"
                f" WHERE {column} IN ({marks})", chunk):
            found[value] = (tracking_id, answer)
    return found


def _accept(tx: _Tx, messages: Sequence[NewMessage]) -> list[AcceptResult]:
    """Whole-batch statements (two lookups, three executemany) rather than per message: this
    is the hot path of every API request."""
    conn = tx.conn
    now = tx.now_ms
    by_client = _known(conn, "client_id",
                       list({m.client_id for m in messages if m.client_id is not None}))
    taken = _known(conn, "tracking_id", list({m.tracking_id for m in messages}))
    results: list[AcceptResult] = []
    message_rows: list[tuple[object, ...]] = []
    segment_rows: list[tuple[object, ...]] = []
    event_rows: list[tuple[object, ...]] = []
    for m in messages:
        if m.client_id is not None and m.client_id in by_client:
            tracking_id, answer_json = by_client[m.client_id]
            results.append(AcceptResult(tracking_id, m.client_id, _load_object(answer_json),
                                        duplicate=True))
            continue
        problem = None
        if not _TRACKING_ID.fullmatch(m.tracking_id):
            problem = "tracking_id must be 32 lower-case hex characters"
        elif not m.segments:
            problem = "a message needs at least one segment"
        elif m.tracking_id in taken:
            problem = f"tracking_id {m.tracking_id} is already in use"
        if problem is not None:
            results.append(AcceptResult(m.tracking_id, m.client_id, {}, error=problem))
            continue
        parts = len(m.segments)
        answer: Mapping[str, object] = (
            m.answer if m.answer is not None else
            {"tracking_id": m.tracking_id, "accepted": True, "segments": parts,
             "data_coding": m.data_coding}
        )
        answer_json = _dumps(answer)
        # Later messages of this batch see this one: same client id → duplicate.
        taken[m.tracking_id] = (m.tracking_id, answer_json)
        if m.client_id is not None:
            by_client[m.client_id] = (m.tracking_id, answer_json)
        message_rows.append((
            m.tracking_id, m.client_id, m.provider, m.source, m.destination, m.text,
            int(m.flash), m.data_coding, m.encoding, m.esm_class, m.registered_delivery,
            _tlvs_to_json(m.tlvs), now, now,
            _ms(m.valid_until_wall) if m.valid_until_wall is not None else None,
            parts, answer_json))
        segment_rows.extend(
            (m.tracking_id, i, m.provider, s.short_message, s.esm_class, s.data_coding,
             _tlvs_to_json(s.tlvs), now, now)
            for i, s in enumerate(m.segments))
        event_rows.append(("state", tx.now_iso, m.tracking_id, m.client_id, "queued",
                           f'{{"segments":{parts}}}'))
        results.append(AcceptResult(m.tracking_id, m.client_id, answer))
    if message_rows:
        conn.executemany(
            "INSERT INTO messages (tracking_id, client_id, provider, source, destination,"
            " text, flash, data_coding, encoding, esm_class, registered_delivery, tlvs,"
            " created_unix_ms, updated_unix_ms, valid_until_unix_ms, state, parts, answer)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            message_rows)
        conn.executemany(
            "INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,"
            " data_coding, tlvs, state, created_unix_ms, next_attempt_unix_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)", segment_rows)
        tx.events(event_rows)
    return results


_CLAIM_SQL: Final = """
    SELECT s.segment_id, s.tracking_id, s.part_index, s.short_message, s.esm_class,
           s.data_coding, s.tlvs, s.attempts, m.client_id, m.parts, m.source, m.destination,
           m.registered_delivery, m.tlvs, m.flash, m.valid_until_unix_ms
      FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id
     WHERE s.state = 'queued' AND s.provider = ? AND s.next_attempt_unix_ms <= ?
       AND (m.valid_until_unix_ms IS NULL OR m.valid_until_unix_ms > ?)
     ORDER BY s.next_attempt_unix_ms, s.segment_id
     LIMIT ?
"""


def _claim(tx: _Tx, provider: str, limit: int, now_ms: int) -> list[SegmentToSend]:
    rows = tx.conn.execute(_CLAIM_SQL, (provider, now_ms, now_ms, limit)).fetchall()
    if not rows:
        return []
    tx.conn.executemany(
        "UPDATE segments SET state = 'sending' WHERE segment_id = ?", [(r[0],) for r in rows]
    )
    return [
        SegmentToSend(
            segment_id=r[0], tracking_id=r[1], client_id=r[8], provider=provider,
            part_index=r[2], parts=r[9], source=r[10], destination=r[11],
            short_message=r[3], esm_class=r[4], data_coding=r[5],
            registered_delivery=r[12], tlvs=_tlvs_from_json(r[13]) + _tlvs_from_json(r[6]),
            flash=bool(r[14]), valid_until_wall=_wall(r[15]) if r[15] is not None else None,
            attempts=r[7],
        )
        for r in rows
    ]


_Derived = tuple[MessageState, MessageState, "str | None", int]


def _derive(tx: _Tx, tracking_id: str) -> _Derived:
    """(current state, state its parts say, client id, parts), in one statement. A message in a
    final state keeps it: late results and receipts update its parts, not its state."""
    rows = tx.conn.execute(
        "SELECT m.state, m.client_id, m.parts, s.state FROM messages AS m"
        " JOIN segments AS s ON s.tracking_id = m.tracking_id WHERE m.tracking_id = ?",
        (tracking_id,)).fetchall()
    current = cast(MessageState, rows[0][0])
    if current in FINAL_MESSAGE_STATES:
        return current, current, rows[0][1], rows[0][2]
    return current, derive_message_state(r[3] for r in rows), rows[0][1], rows[0][2]


def _update_message(
    tx: _Tx, tracking_id: str, derived: _Derived, payload: Mapping[str, object], *,
    attempt: bool = False, last_error: str | None = None,
) -> MessageState:
    """Write the message row once (state, attempts, last error) and, when the state changed,
    append its 'state' event with ``payload`` and the previous state."""
    current, new, client_id, _parts = derived
    if new == current and not attempt and last_error is None:
        return new
    tx.conn.execute(
        "UPDATE messages SET state = ?, updated_unix_ms = ?, attempts = attempts + ?,"
        " last_error = COALESCE(?, last_error) WHERE tracking_id = ?",
        (new, tx.now_ms, int(attempt), last_error, tracking_id))
    if new != current:
        tx.event("state", tracking_id, client_id, new, {"previous": current, **payload})
    return new


def _record_submit_results(
    tx: _Tx, outcomes: Sequence[SubmitOutcome]
) -> list[SubmitRecorded | None]:
    conn = tx.conn
    out: list[SubmitRecorded | None] = []
    for o in outcomes:
        row = conn.execute(
            "SELECT tracking_id, part_index, state, provider FROM segments WHERE segment_id = ?",
            (o.segment_id,),
        ).fetchone()
        if row is None:
            log.warning("submit outcome for unknown segment_id=%s ignored", o.segment_id)
            out.append(None)
            continue
        tracking_id, part_index, seg_state, provider = row
        sent_ms = _ms(o.sent_at_wall) if o.sent_at_wall is not None else tx.now_ms
        # A part may have left 'sending' meanwhile: its message expired or another part
        # failed. The result is still recorded; only a waiting part changes state.
        waiting = seg_state in ("queued", "sending")
        if o.kind == "released":
            if waiting:
                retry_ms = _ms(o.retry_at_wall) if o.retry_at_wall is not None else tx.now_ms
                conn.execute(
                    "UPDATE segments SET state = 'queued', next_attempt_unix_ms = ?"
                    " WHERE segment_id = ?", (retry_ms, o.segment_id))
            out.append(SubmitRecorded(_derive(tx, tracking_id)[0]))
        elif o.kind == "ok":
            smsc_id = o.smsc_message_id or ""
            # An empty id (seen from broken SMSCs) gets no key: it must not match receipts.
            key = (o.smsc_message_key or smsc_id) or None
            conn.execute(
                "UPDATE segments SET state = ?, smsc_message_id = ?, smsc_message_key = ?,"
                " submit_status = ?, submitted_unix_ms = ?, resp_unix_ms = ?,"
                " attempts = attempts + 1, bind = ?, last_error = NULL WHERE segment_id = ?",
                ("submitted" if waiting else seg_state, smsc_id, key,
                 o.status_name or "ESME_ROK", sent_ms, tx.now_ms, o.bind, o.segment_id),
            )
            derived = _derive(tx, tracking_id)
            state = _update_message(tx, tracking_id, derived, {"part": part_index}, attempt=True)
            # The last part accepted moves the message on from 'queued' (to 'submitted', or
            # further when its other parts' receipts came first): its submit answer is ROK.
            answered = 0 if derived[0] == "queued" and state not in ("queued", "failed") else None
            if key is not None:
                state = _match_parked(tx, o.segment_id, provider, key) or state
            out.append(SubmitRecorded(state, answered))
        elif o.kind == "transient":
            retry_ms = _ms(o.retry_at_wall) if o.retry_at_wall is not None else tx.now_ms
            error = _error_text(o)
            conn.execute(
                "UPDATE segments SET state = ?, next_attempt_unix_ms = ?, submit_status = ?,"
                " submitted_unix_ms = ?, resp_unix_ms = ?, attempts = attempts + 1, bind = ?,"
                " last_error = ? WHERE segment_id = ?",
                ("queued" if waiting else seg_state, retry_ms, o.status_name, sent_ms,
                 tx.now_ms, o.bind, error, o.segment_id),
            )
            tx.note(tracking_id, part_index, "retry",
                    {"status": o.status_name, "command_status": o.command_status,
                     "error": o.error, "bind": o.bind, "retry_at": _iso(retry_ms)})
            out.append(SubmitRecorded(_update_message(
                tx, tracking_id, _derive(tx, tracking_id), {}, attempt=True,
                last_error=error)))
        else:  # permanent
            status = o.status_name or "permanent failure"
            error = _error_text(o)
            conn.execute(
                "UPDATE segments SET state = 'failed', submit_status = ?, submitted_unix_ms = ?,"
                " resp_unix_ms = ?, attempts = attempts + 1, bind = ?, last_error = ?"
                " WHERE segment_id = ?",
                (o.status_name, sent_ms, tx.now_ms, o.bind, error, o.segment_id),
            )
            # A concatenated message missing a part is useless: the parts still waiting are
            # not sent. Parts already in flight keep whatever their results say.
            cancelled = conn.execute(
                "UPDATE segments SET state = 'failed', last_error = ?"
                " WHERE tracking_id = ? AND state = 'queued'",
                (f"cancelled: part {part_index} refused ({status})", tracking_id),
            ).rowcount
            if cancelled:
                tx.note(tracking_id, part_index, "cancelled",
                        {"parts": cancelled, "because": status})
            derived = _derive(tx, tracking_id)
            state = _update_message(
                tx, tracking_id, derived,
                {"part": part_index, "error": status, "command_status": o.command_status,
                 "detail": o.error},
                attempt=True, last_error=error)
            refused = (derived[0] not in FINAL_MESSAGE_STATES and state == "failed"
                       and o.command_status is not None)
            out.append(SubmitRecorded(state, o.command_status if refused else None))
    return out


def _error_text(o: SubmitOutcome) -> str:
    parts = [p for p in (o.status_name, o.error) if p]
    if o.command_status is not None and o.status_name is None:
        parts.insert(0, f"command_status=0x{o.command_status:08x}")
    return ": ".join(parts) or o.kind


def _receipt_from_json(text: str) -> ReceiptRecord:
    doc = _load_object(text)
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


def _receipt_to_json(r: ReceiptRecord) -> str:
    return _dumps({
        "provider": r.provider, "message_id": r.message_id, "message_keys": list(r.keys),
        "stat": r.stat, "err": r.err, "outcome": r.outcome, "final": r.final,
        "details": dict(r.details), "bind": r.bind,
    })


_SegmentRow = tuple[int, str, int, str, "str | None"]   # id, tracking id, part, state, receipt


def _segment_row(tx: _Tx, segment_id: int) -> _SegmentRow:
    row = tx.conn.execute(
        "SELECT segment_id, tracking_id, part_index, state, receipt FROM segments"
        " WHERE segment_id = ?", (segment_id,)).fetchone()
    return cast(_SegmentRow, tuple(row))


def _find_segment(tx: _Tx, provider: str, keys: Iterable[str]) -> _SegmentRow | None:
    """The part a receipt is about: first key that hits wins; the newest part on a tie (an
    SMSC that reuses ids reuses old ones)."""
    for key in keys:
        row = tx.conn.execute(
            "SELECT segment_id, tracking_id, part_index, state, receipt FROM segments"
            " WHERE provider = ? AND smsc_message_key = ? ORDER BY segment_id DESC LIMIT 1",
            (provider, key)).fetchone()
        if row is not None:
            return cast(_SegmentRow, tuple(row))
    return None


def _apply_receipt(tx: _Tx, segment: _SegmentRow, r: ReceiptRecord) -> ReceiptResult:
    segment_id, tracking_id, part_index, seg_state, previous = segment
    document = _dumps({
        "message_id": r.message_id, "stat": r.stat, "err": r.err, "outcome": r.outcome,
        "final": r.final, "bind": r.bind, "details": dict(r.details),
    })
    if document == previous:
        # The SMSC resent a receipt whose deliver_sm_resp it did not get: already applied.
        return ReceiptResult(True, tracking_id, part_index, _derive(tx, tracking_id)[0],
                             duplicate=True)
    new_seg_state = seg_state
    target = _RECEIPT_SEGMENT_STATE.get(r.outcome)
    if target is not None and _RANK[seg_state] < 3 and _RANK[target] > _RANK[seg_state]:
        new_seg_state = target
    tx.conn.execute(
        "UPDATE segments SET state = ?, receipt_stat = ?, receipt_err = ?, receipt_unix_ms = ?,"
        " receipt = ? WHERE segment_id = ?",
        (new_seg_state, r.stat, r.err, tx.now_ms, document, segment_id),
    )
    derived = _derive(tx, tracking_id)
    _current, new, client_id, parts = derived
    tx.event("receipt", tracking_id, client_id, new, {
        "part": part_index, "parts": parts, "provider": r.provider,
        "message_id": r.message_id, "stat": r.stat, "err": r.err, "outcome": r.outcome,
        "final": r.final, "receipt": dict(r.details),
    })
    _update_message(tx, tracking_id, derived,
                    {"part": part_index, "stat": r.stat, "err": r.err})
    return ReceiptResult(True, tracking_id, part_index, new)


def _record_receipts(tx: _Tx, receipts: Sequence[ReceiptRecord]) -> list[ReceiptResult]:
    conn = tx.conn
    results: list[ReceiptResult] = []
    for r in receipts:
        segment = _find_segment(tx, r.provider, r.keys)
        if segment is not None:
            results.append(_apply_receipt(tx, segment, r))
            continue
        # Not (yet) known: the submit_sm_resp may still be on its way, or in another group of
        # this commit. Park it under every lookup key; record_submit_results picks it up.
        receipt_id = conn.execute(
            "INSERT INTO unmatched_receipts (provider, message_id, message_key, receipt,"
            " received_unix_ms) VALUES (?, ?, ?, ?, ?)",
            (r.provider, r.message_id, r.keys[0], _receipt_to_json(r), tx.now_ms),
        ).lastrowid
        conn.executemany(
            "INSERT INTO unmatched_receipt_keys (provider, message_key, receipt_id)"
            " VALUES (?, ?, ?)", [(r.provider, k, receipt_id) for k in dict.fromkeys(r.keys)],
        )
        results.append(ReceiptResult(False))
    return results


def _match_parked(tx: _Tx, segment_id: int, provider: str, key: str) -> MessageState | None:
    """Apply receipts parked under ``key`` to the segment just submitted, oldest first."""
    rows = tx.conn.execute(
        "SELECT u.receipt_id, u.receipt FROM unmatched_receipt_keys AS k"
        " JOIN unmatched_receipts AS u ON u.receipt_id = k.receipt_id"
        " WHERE k.provider = ? AND k.message_key = ? AND u.matched = 0"
        " ORDER BY u.receipt_id", (provider, key),
    ).fetchall()
    state: MessageState | None = None
    for receipt_id, text in rows:
        state = _apply_receipt(tx, _segment_row(tx, segment_id),
                               _receipt_from_json(text)).message_state
        tx.conn.execute(
            "UPDATE unmatched_receipts SET matched = 1, matched_unix_ms = ? WHERE receipt_id = ?",
            (tx.now_ms, receipt_id))
        tx.conn.execute("DELETE FROM unmatched_receipt_keys WHERE receipt_id = ?", (receipt_id,))
    return state


def _mo_group(tx: _Tx, p: MoPart) -> tuple[StoredMoPart, ...]:
    rows = tx.conn.execute(
        "SELECT part_id, provider, source, destination, reference, total, seq, data_coding,"
        " payload, received_unix_ms FROM mo_parts WHERE provider = ? AND source = ?"
        " AND destination = ? AND reference = ? AND total = ? ORDER BY seq",
        (p.provider, p.source, p.destination, p.reference, p.total),
    ).fetchall()
    return tuple(_stored_mo_part(r) for r in rows)


def _stored_mo_part(r: Sequence[object]) -> StoredMoPart:
    return StoredMoPart(
        part_id=cast(int, r[0]), provider=cast(str, r[1]), source=cast(str, r[2]),
        destination=cast(str, r[3]), reference=cast(int, r[4]), total=cast(int, r[5]),
        seq=cast(int, r[6]), data_coding=cast(int, r[7]), payload=cast(bytes, r[8]),
        received_wall=_wall(cast(int, r[9])),
    )


def _is_complete(parts: Sequence[StoredMoPart]) -> bool:
    if not parts:
        return False
    total = parts[0].total
    return {p.seq for p in parts} >= set(range(1, total + 1))


def _record_mo_part(tx: _Tx, p: MoPart) -> MoPartResult:
    cur = tx.conn.execute(
        "INSERT OR IGNORE INTO mo_parts (provider, source, destination, reference, total, seq,"
        " data_coding, payload, bind, received_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (p.provider, p.source, p.destination, p.reference, p.total, p.seq, p.data_coding,
         p.payload, p.bind, tx.now_ms),
    )
    duplicate = cur.rowcount == 0
    parts = _mo_group(tx, p)
    part_id = next(q.part_id for q in parts if q.seq == p.seq)
    return MoPartResult(part_id, duplicate, _is_complete(parts), parts)


def _record_mo_message(tx: _Tx, m: MoMessage, consumed: Sequence[int]) -> MoRecord:
    mo_id = cast(int, tx.conn.execute(
        "INSERT INTO mo_messages (provider, source, destination, text, data_coding, parts, bind,"
        " received_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (m.provider, m.source, m.destination, m.text, m.data_coding, m.parts, m.bind,
         tx.now_ms),
    ).lastrowid)
    tx.conn.executemany("DELETE FROM mo_parts WHERE part_id = ?", [(i,) for i in consumed])
    cursor = tx.event("mo", None, None, None, {
        "from": m.source, "to": m.destination, "text": m.text, "provider": m.provider,
        "mo_id": mo_id, "parts": m.parts, "data_coding": m.data_coding,
    })
    return MoRecord(mo_id, cursor)


def _expire(tx: _Tx, now_ms: int, limit: int) -> list[str]:
    rows = tx.conn.execute(
        "SELECT tracking_id, client_id FROM messages AS m WHERE state = 'queued'"
        " AND valid_until_unix_ms IS NOT NULL AND valid_until_unix_ms <= ?"
        # A part in flight decides for itself: ok → the message goes on; transient → it is
        # queued again and the next call expires the message.
        " AND NOT EXISTS (SELECT 1 FROM segments AS s"
        "                 WHERE s.tracking_id = m.tracking_id AND s.state = 'sending')"
        " ORDER BY valid_until_unix_ms LIMIT ?", (now_ms, limit),
    ).fetchall()
    reason = "validity period passed before submission"
    for tracking_id, client_id in rows:
        tx.conn.execute(
            "UPDATE segments SET state = 'expired', last_error = ?"
            " WHERE tracking_id = ? AND state = 'queued'", (reason, tracking_id))
        _update_message(tx, tracking_id, ("queued", "expired", client_id, 0),
                        {"reason": reason}, last_error=reason)
    return [r[0] for r in rows]


_FINAL_STATES_SQL: Final = "('delivered', 'undeliverable', 'expired', 'rejected', 'failed')"


def _purge(tx: _Tx, cutoff_ms: int, limit: int) -> PurgeReport:
    """Oldest first, in rowid order, at most ``limit`` rows of each kind per call, so one call
    never holds the writer for long."""
    conn = tx.conn
    doomed = [r[0] for r in conn.execute(
        "SELECT tracking_id FROM messages WHERE created_unix_ms < ? AND updated_unix_ms < ?"
        f" AND state IN {_FINAL_STATES_SQL} ORDER BY rowid LIMIT ?",
        (cutoff_ms, cutoff_ms, limit))]
    rows = [(t,) for t in doomed]
    conn.executemany("DELETE FROM segments WHERE tracking_id = ?", rows)
    conn.executemany("DELETE FROM message_notes WHERE tracking_id = ?", rows)
    conn.executemany("DELETE FROM messages WHERE tracking_id = ?", rows)
    # sqlite_sequence keeps the highest cursor, so deleting events never lets one be reused.
    events = conn.execute(
        "DELETE FROM events WHERE cursor IN (SELECT cursor FROM events WHERE at_utc < ?"
        " ORDER BY cursor LIMIT ?)", (_iso(cutoff_ms), limit)).rowcount
    receipts = conn.execute(
        "DELETE FROM unmatched_receipts WHERE receipt_id IN (SELECT receipt_id FROM"
        " unmatched_receipts WHERE matched = 1 AND received_unix_ms < ? ORDER BY receipt_id"
        " LIMIT ?)", (cutoff_ms, limit)).rowcount
    mo = conn.execute(
        "DELETE FROM mo_messages WHERE mo_id IN (SELECT mo_id FROM mo_messages"
        " WHERE received_unix_ms < ? ORDER BY mo_id LIMIT ?)", (cutoff_ms, limit)).rowcount
    return PurgeReport(len(doomed), events, receipts, mo)


def _requeue_sending(tx: _Tx, provider: str, reason: str) -> int:
    conn = tx.conn
    conn.execute(
        "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
        " SELECT tracking_id, part_index, ?, 'requeued', ?"
        " FROM segments WHERE state = 'sending' AND provider = ?",
        (tx.now_ms, _dumps({"reason": reason}), provider))
    return int(conn.execute(
        "UPDATE segments SET state = 'queued' WHERE state = 'sending' AND provider = ?",
        (provider,)).rowcount)


def _recover(tx: _Tx) -> tuple[int, int, int, list[StoredMoPart]]:
    conn = tx.conn
    conn.execute(
        "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
        " SELECT tracking_id, part_index, ?, 'requeued',"
        " '{\"reason\":\"sent or claimed without a recorded response before restart\"}'"
        " FROM segments WHERE state = 'sending'", (tx.now_ms,))
    requeued = conn.execute(
        "UPDATE segments SET state = 'queued' WHERE state = 'sending'").rowcount
    (unmatched,) = conn.execute(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
    (queued,) = conn.execute("SELECT COUNT(*) FROM segments WHERE state = 'queued'").fetchone()
    rows = conn.execute(
        "SELECT part_id, provider, source, destination, reference, total, seq, data_coding,"
        " payload, received_unix_ms FROM mo_parts"
        " ORDER BY provider, source, destination, reference, total, seq").fetchall()
    return requeued, unmatched, queued, [_stored_mo_part(r) for r in rows]


# --- the store -----------------------------------------------------------------------------------


class Store:
    """The gateway's durable queue, receipt correlation, MO storage and event log.

    Create with ``await Store.open(state_dir)``; the store belongs to the event loop that
    opened it. Every write method returns once its data is committed (and fsynced, except
    claims); every read runs on the reader thread. Close with ``await store.close()`` (or
    ``async with``), which commits whatever is queued and releases the state dir lock.
    """

    def __init__(
        self, state_dir: Path, lock_fd: int, loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float], busy_timeout: float, max_group: int,
        migrations: tuple[tuple[str, ...], ...],
    ) -> None:
        """Internal: use ``Store.open``."""
        self.state_dir = state_dir
        self.db_path = state_dir / DB_FILENAME
        self.lock_path = state_dir / LOCK_FILENAME
        self._lock_fd: int | None = lock_fd
        self._loop = loop
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._max_group = max_group
        self._migrations = migrations
        self._queue: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._closed = False
        self._writer_failed: BaseException | None = None
        self._writer_done: asyncio.Future[None] = loop.create_future()
        self._writer = threading.Thread(
            target=self._writer_main, name=f"smppgw-store-writer:{state_dir.name}", daemon=True)
        self._reader = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"smppgw-store-reader:{state_dir.name}",
            initializer=self._reader_init)
        self._read_conn: sqlite3.Connection | None = None
        self._last_cursor = 0
        self._new_events = asyncio.Event()
        self._commit_count = 0
        self._command_count = 0
        self._sync_full = True
        self._on_commit: Callable[[int, float], None] | None = None
        self._on_write_health: Callable[[WriteFailure | None], None] | None = None
        self._write_failure: WriteFailure | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._reader_shut = False
        #: user_version found at open (0: a new file); SCHEMA_VERSION after migration.
        self.schema_migrated_from = 0

    # --- life cycle ------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, state_dir: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0, max_group: int = 4096,
        migrations: tuple[tuple[str, ...], ...] = MIGRATIONS,
        on_commit: Callable[[int, float], None] | None = None,
        on_write_health: Callable[[WriteFailure | None], None] | None = None,
    ) -> Store:
        """Lock ``state_dir``, open (create, migrate) its database, start the threads.

        ``clock`` gives wall-clock unix seconds for created/updated/event times. Raises
        StoreLockedError when another store holds the directory, StoreSchemaError when the file
        is from a newer smppgw. ``migrations`` exists for the migration tests. ``on_commit``
        is called on the writer thread after each group commit with the number of commands in
        the group and the seconds the transaction took (for metrics; it must be thread-safe).
        ``on_write_health`` is called on the loop with the WriteFailure each time the disk
        refuses a write, and with None when a write succeeds again (see write_failure).
        """
        path = Path(state_dir)
        try:
            path.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the state directory {path}: {exc.strerror}") from exc
        lock_fd = _take_lock(path / LOCK_FILENAME)
        store = cls(path, lock_fd, asyncio.get_running_loop(), clock, busy_timeout, max_group,
                    migrations)
        store._on_commit = on_commit
        store._on_write_health = on_write_health
        store._writer.start()
        try:
            await store._ready
        except BaseException:
            store._closed = True
            store._queue.put(None)
            await asyncio.shield(store._writer_done)
            store._reader.shutdown(wait=False)
            store._release_lock()
            raise
        return store

    async def close(self) -> None:
        """Commit everything queued, stop the threads, release the lock. Idempotent."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        await asyncio.shield(self._writer_done)
        if not self._reader_shut:
            self._reader_shut = True
            if self._read_conn is not None:
                await self._loop.run_in_executor(self._reader, self._reader_close)
            await asyncio.to_thread(self._reader.shutdown, True)
        self._release_lock()
        self._wake_event_waiters()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def flush(self) -> None:
        """Return once every write queued before this call is committed and fsynced."""
        await self._write(lambda tx: None)

    @property
    def write_failure(self) -> WriteFailure | None:
        """Why the disk refuses writes now (full, I/O error), or None while it takes them.
        Set by the first refused write, cleared by the next group that changes rows and
        commits."""
        return self._write_failure

    async def wait_writable(self) -> None:
        """Return at once while the store writes, else once a write succeeded again."""
        await self._writable.wait()

    async def probe_write(self) -> None:
        """A real write that leaves nothing behind: a row written and removed in one
        transaction, so its pages go to the disk. While ``write_failure`` is set, calling
        this now and then notices that space returned even when nothing else writes."""
        def probe(tx: _Tx) -> None:
            tx.conn.execute(
                "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES (?, 0, ?)",
                (_PROBE_NAME, tx.now_ms))
            tx.conn.execute("DELETE FROM webhook_positions WHERE name = ?", (_PROBE_NAME,))
        await self._write(probe)

    async def wait_stopped(self) -> BaseException | None:
        """Return once the writer thread has ended, by ``close()`` or by a fault: the fault,
        or None. For the daemon, which cannot work without its store."""
        await asyncio.shield(self._writer_done)
        return self._writer_failed

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # closing the descriptor drops the flock
            self._lock_fd = None

    # --- observation -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_cursor(self) -> int:
        """Cursor of the newest committed event (0 when none yet)."""
        return self._last_cursor

    @property
    def commit_count(self) -> int:
        """Transactions committed by the writer since open: with group commit, far fewer
        than write calls under load."""
        return self._commit_count

    @property
    def command_count(self) -> int:
        """Write commands completed (committed or failed) since open."""
        return self._command_count

    @property
    def pending_writes(self) -> int:
        """Write commands queued for the writer thread and not yet taken."""
        return self._queue.qsize()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<Store {self.db_path} {state} last_cursor={self._last_cursor}"
                f" commits={self._commit_count} commands={self._command_count}"
                f" pending={self.pending_writes}>")

    # --- writes ----------------------------------------------------------------------------------

    async def accept_messages(self, messages: Sequence[NewMessage]) -> list[AcceptResult]:
        """Store new messages, queued, in one transaction; results in input order.

        A known client id answers its first answer (``duplicate``) and stores nothing. Each
        stored message gets its segments queued and a 'state' event (queued). Returns once
        committed and fsynced: only then may the API answer ``accepted``.
        """
        batch = tuple(messages)
        return await self._write(lambda tx: _accept(tx, batch))

    async def claim_segments(
        self, provider: str, limit: int, now_wall: float | None = None
    ) -> list[SegmentToSend]:
        """Mark up to ``limit`` due queued parts of ``provider`` 'sending' and return them,
        oldest due first (parts of one message in order).

        Parts of messages past their validity are left for ``expire_messages``. The claim is
        committed without an fsync of its own: a lost claim only means the part is queued
        again, which ``recover`` does for every claim anyway.
        """
        if limit <= 0:
            return []
        now_ms = _ms(self._clock() if now_wall is None else now_wall)
        return await self._write(lambda tx: _claim(tx, provider, limit, now_ms), durable=False)

    async def record_submit_results(
        self, outcomes: Sequence[SubmitOutcome]
    ) -> list[MessageState | None]:
        """Apply submit_sm_resp outcomes (see SubmitOutcome); returns each message's state
        after its outcome, None for an unknown segment id (logged, skipped).

        ``ok`` marks the part submitted (the message 'submitted' once all parts are, with a
        'state' event) and applies any receipt parked under its message id key. ``transient``
        queues the part again at ``retry_at_wall`` with a 'retry' note. ``permanent`` fails
        the part, cancels the message's parts not yet sent, and moves the message to 'failed'
        with the status name in the event.
        """
        recorded = await self.apply_submit_results(outcomes)
        return [r.state if r is not None else None for r in recorded]

    async def apply_submit_results(
        self, outcomes: Sequence[SubmitOutcome]
    ) -> list[SubmitRecorded | None]:
        """record_submit_results, telling also which outcome gave its message its submit
        answer (SubmitRecorded.answered), for counting answered messages exactly once."""
        batch = tuple(outcomes)
        return await self._write(lambda tx: _record_submit_results(tx, batch))

    async def record_receipts(self, receipts: Sequence[ReceiptRecord]) -> list[ReceiptResult]:
        """Correlate receipts by (provider, message id key) across all binds of the provider.

        A matched receipt updates its part (only forward: accepted < final), appends a
        'receipt' event and, when the message state changes (``derive_message_state``), a
        'state' event. An unmatched one is parked, never dropped, and applied when its submit
        result is recorded. Returns once committed: then, and only then, answer deliver_sm_resp.
        """
        batch = tuple(receipts)
        return await self._write(lambda tx: _record_receipts(tx, batch))

    async def record_mo_part(self, part: MoPart) -> MoPartResult:
        """Store one part of a concatenated MO so it survives a crash before reassembly.

        Acknowledge the deliver_sm after this returns. When ``complete``, reassemble
        ``parts`` and call ``record_mo_message`` with their ids.
        """
        return await self._write(lambda tx: _record_mo_part(tx, part))

    async def record_mo_message(
        self, message: MoMessage, consumed_part_ids: Sequence[int] = ()
    ) -> MoRecord:
        """Store a complete MO, delete the parts it was built from, append its 'mo' event;
        all in one transaction, so a part is never both pending and delivered."""
        consumed = tuple(consumed_part_ids)
        return await self._write(lambda tx: _record_mo_message(tx, message, consumed))

    async def expire_messages(self, now_wall: float | None = None, limit: int = 10_000) -> int:
        """Messages still 'queued' past their validity, with no part in flight, become
        'expired' (their waiting parts too) with a 'state' event. Call it every few seconds:
        returns how many, so call again at once while it returns ``limit``."""
        now_ms = _ms(self._clock() if now_wall is None else now_wall)
        return len(await self._write(lambda tx: _expire(tx, now_ms, limit)))

    async def set_webhook_position(self, name: str, cursor: int) -> None:
        """Remember the last event cursor webhook ``name`` acknowledged (never moves back)."""
        def command(tx: _Tx) -> None:
            tx.conn.execute(
                "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET cursor = MAX(cursor, excluded.cursor),"
                " updated_unix_ms = excluded.updated_unix_ms", (name, cursor, tx.now_ms))
        await self._write(command)

    async def purge(self, older_than_wall: float, limit: int = 10_000) -> PurgeReport:
        """Retention: delete final messages (with parts and notes), events, matched parked
        receipts and MO messages older than ``older_than_wall``, at most ``limit`` of each.

        Queued and in-flight messages, receipts never matched and incomplete MO parts are
        kept whatever their age. A purged client id is forgotten (the same id is then a new
        message), and a consumer resuming from a purged cursor gets the oldest events still
        kept: choose the retention longer than clients retry and consumers lag. Call again
        while any count equals ``limit``.
        """
        cutoff_ms = _ms(older_than_wall)
        return await self._write(lambda tx: _purge(tx, cutoff_ms, limit))

    async def recover(self) -> RecoveryReport:
        """Run once after open, before dispatching: parts left 'sending' by the previous run
        are queued again (at-least-once; see the theory of operation). Reports what it found."""
        requeued, unmatched, queued, mo_parts = await self._write(_recover)
        groups: dict[tuple[str, str, str, int, int], list[StoredMoPart]] = {}
        for p in mo_parts:
            groups.setdefault((p.provider, p.source, p.destination, p.reference, p.total),
                              []).append(p)
        complete = tuple(tuple(g) for g in groups.values() if _is_complete(g))
        if requeued:
            log.warning("recovery: %d part(s) were sending at shutdown and are queued again",
                        requeued)
        log.info("recovery: queued=%d unmatched_receipts=%d complete_mo_groups=%d",
                 queued, unmatched, len(complete))
        return RecoveryReport(requeued, unmatched, queued, complete)

    async def requeue_sending(self, provider: str, reason: str) -> int:
        """Queue again the parts of ``provider`` left 'sending' (at-least-once), as recovery
        does at start: for a provider whose dispatcher was stopped by a reload, whose answers
        can no longer be recorded. Returns how many."""
        count = await self._write(lambda tx: _requeue_sending(tx, provider, reason))
        if count:
            log.warning("%d part(s) of %s were sending and are queued again", count, provider)
        return count

    # --- reads -----------------------------------------------------------------------------------

    async def get_message(self, tracking_id: str) -> MessageView | None:
        """A message with its parts and history (events and notes, oldest first)."""
        return await self._read(lambda conn: _read_message(conn, tracking_id))

    async def get_tracking_id(self, client_id: str) -> str | None:
        """The tracking id stored under an application's client id."""
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT tracking_id FROM messages WHERE client_id = ?", (client_id,)).fetchone()
            return None if row is None else str(row[0])
        return await self._read(query)

    async def events_after(self, cursor: int, limit: int = 1000) -> list[Event]:
        """Events with a cursor greater than ``cursor``, in commit order, at most ``limit``.
        Resuming from the last cursor seen misses nothing: cursors only grow."""
        limit = max(1, min(limit, _MAX_EVENTS_PER_READ))
        return await self._read(lambda conn: _read_events(conn, cursor, limit))

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        """Wait until an event newer than ``after`` is committed, at most ``timeout`` seconds.

        True when there is one (possibly at once), False on timeout or close. Woken by the
        commit itself, so a long-poll answers as soon as the data is readable.
        """
        if self._last_cursor > after:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while self._last_cursor <= after and not self._closed:
            generation = self._new_events
            try:
                async with asyncio.timeout_at(deadline):
                    await generation.wait()
            except TimeoutError:
                break
        return self._last_cursor > after

    async def get_webhook_position(self, name: str) -> int:
        """The last cursor webhook ``name`` acknowledged; 0 when it never did."""
        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT cursor FROM webhook_positions WHERE name = ?", (name,)).fetchone()
            return 0 if row is None else int(row[0])
        return await self._read(query)

    async def queue_stats(self, now_wall: float | None = None) -> dict[str, QueueStats]:
        """Per provider: parts queued and sending, and the age in seconds of the oldest
        queued part (0 when none). For the queue depth metrics and ``smppgw status``."""
        now = self._clock() if now_wall is None else now_wall

        def query(conn: sqlite3.Connection) -> dict[str, QueueStats]:
            rows = conn.execute(
                "SELECT provider, state, COUNT(*), MIN(created_unix_ms) FROM segments"
                " WHERE state IN ('queued', 'sending') GROUP BY provider, state").fetchall()
            stats: dict[str, QueueStats] = {}
            for provider, state, count, oldest in rows:
                entry = stats.get(provider) or QueueStats(provider, 0, 0, 0.0)
                age = max(0.0, now - _wall(oldest))
                if state == "queued":
                    entry = replace(entry, queued=count, oldest_queued_age=age)
                else:
                    entry = replace(entry, sending=count)
                stats[provider] = replace(
                    entry, oldest_unsent_age=max(entry.oldest_unsent_age, age))
            return stats
        return await self._read(query)

    async def counts(self) -> StoreCounts:
        """Messages and parts by state and the other table sizes. Scans indexes: meant for
        status and periodic metrics, not per request."""
        def query(conn: sqlite3.Connection) -> StoreCounts:
            messages = dict(conn.execute(
                "SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall())
            segments = dict(conn.execute(
                "SELECT state, COUNT(*) FROM segments GROUP BY state").fetchall())
            (unmatched,) = conn.execute(
                "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
            (mo_parts,) = conn.execute("SELECT COUNT(*) FROM mo_parts").fetchone()
            (mo_messages,) = conn.execute("SELECT COUNT(*) FROM mo_messages").fetchone()
            return StoreCounts(messages, segments, _read_last_cursor(conn), unmatched,
                               mo_parts, mo_messages)
        return await self._read(query)

    async def unmatched_receipt_count(self) -> int:
        """Receipts parked without a matching part (never dropped)."""
        def query(conn: sqlite3.Connection) -> int:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
            return int(n)
        return await self._read(query)

    # --- machinery -------------------------------------------------------------------------------

    async def _write(self, fn: Callable[[_Tx], T], *, durable: bool = True) -> T:
        """Queue ``fn`` for the writer thread and wait until its group committed."""
        if self._closed:
            raise StoreClosedError(f"store {self.db_path} is closed")
        future: asyncio.Future[object] = self._loop.create_future()
        self._queue.put(_Command(fn, future, durable))
        return cast(T, await future)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosedError(f"store {self.db_path} is closed")
        return await self._loop.run_in_executor(self._reader, self._run_read, fn)

    def _reader_init(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        self._read_conn = conn

    def _reader_close(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn
        if conn is None:
            raise StoreClosedError(f"store {self.db_path} is closed")
        conn.execute("BEGIN")   # one snapshot for all the statements of this read
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc
        finally:
            conn.execute("COMMIT")

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):   # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _writer_main(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            try:
                conn = sqlite3.connect(self.db_path, isolation_level=None,
                                       check_same_thread=False)
                _configure(conn, self._busy_timeout)
                try:
                    before, _after = migrate(conn, self._migrations)
                except sqlite3.DatabaseError as exc:
                    raise StoreSchemaError(f"{self.db_path}: {exc}") from exc
                last_cursor = _read_last_cursor(conn)
            except BaseException as exc:
                if not isinstance(exc, StoreError):
                    exc = StoreError(f"cannot open {self.db_path}: {exc}")
                self._post(_set_future_exception, self._ready, exc)
                return
            self.schema_migrated_from = before
            self._post(self._on_ready, last_cursor)
            self._writer_loop(conn, last_cursor)
        except BaseException as exc:
            self._writer_failed = exc
            log.critical("store writer thread died: %r", exc)
            raise
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA optimize")
                conn.close()
            self._post(self._on_writer_exit)

    def _on_ready(self, last_cursor: int) -> None:
        self._last_cursor = last_cursor
        if not self._ready.done():
            self._ready.set_result(None)

    def _on_writer_exit(self) -> None:
        self._closed = True
        # Whatever is still queued (writer died) fails instead of waiting forever.
        while True:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                break
            if command is not None and not command.future.done():
                command.future.set_exception(StoreClosedError(
                    f"store {self.db_path} writer stopped: {self._writer_failed!r}"))
        if not self._writer_done.done():
            self._writer_done.set_result(None)
        self._wake_event_waiters()

    def _writer_loop(self, conn: sqlite3.Connection, last_cursor: int) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self._max_group:
                try:
                    command = self._queue.get_nowait()
                except queue.Empty:
                    break
                if command is None:
                    stop = True
                    break
                group.append(command)
            try:
                last_cursor = self._run_group(conn, group, last_cursor)
            except Exception as exc:
                # Not SQLite's refusal (handled inside): a fault of ours. The group fails,
                # the writer goes on with the next one.
                log.error("store writer: a group failed unexpectedly", exc_info=exc)
                error = StoreError(f"write failed unexpectedly: {exc!r}")
                self._post(self._deliver, [(c.future, error, False) for c in group],
                           last_cursor, False, False)
            if stop:
                return

    def _run_group(
        self, conn: sqlite3.Connection, group: list[_Command], last_cursor: int
    ) -> int:
        durable = any(c.durable for c in group)
        tx = _Tx(conn, _ms(self._clock()), last_cursor)
        started = time.perf_counter()
        single = len(group) == 1
        deliveries: list[_Delivery] = []
        committed = False
        changes_before = conn.total_changes
        try:
            if durable != self._sync_full:
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._sync_full = durable
            conn.execute("BEGIN IMMEDIATE")
            failed = False
            for command in group:
                mark = tx.last_cursor
                if not single:
                    conn.execute("SAVEPOINT command")
                try:
                    value = command.fn(tx)
                except Exception as exc:
                    tx.last_cursor = mark
                    if single:
                        failed = True
                    else:
                        conn.execute("ROLLBACK TO command")
                        conn.execute("RELEASE command")
                    deliveries.append((command.future, _as_store_error(exc), False))
                else:
                    if not single:
                        conn.execute("RELEASE command")
                    deliveries.append((command.future, value, True))
            if failed:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
                committed = True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            error = _as_store_error(
                exc, "commit failed, nothing of this group was stored")
            deliveries = [(c.future, error, False) for c in group]
            tx.last_cursor = last_cursor
            committed = False
        if committed and self._on_commit is not None:
            with contextlib.suppress(Exception):  # a metrics fault must not stop the writer
                self._on_commit(len(group), time.perf_counter() - started)
        changed = committed and conn.total_changes != changes_before
        self._post(self._deliver, deliveries, tx.last_cursor if committed else last_cursor,
                   committed, changed)
        return tx.last_cursor if committed else last_cursor

    def _deliver(
        self, deliveries: list[_Delivery], last_cursor: int, committed: bool, changed: bool,
    ) -> None:
        """On the loop: count, publish the new cursor and the write health, resolve every
        waiter of the group."""
        if committed:
            self._commit_count += 1
        self._command_count += len(deliveries)
        if last_cursor > self._last_cursor:
            self._last_cursor = last_cursor
            self._wake_event_waiters()
        refused = next((value for _, value, ok in deliveries
                        if not ok and isinstance(value, StoreWriteError)), None)
        if refused is not None:
            self._note_write_refused(refused)
        elif changed and self._write_failure is not None:
            self._note_writable()
        for future, value, ok in deliveries:
            if future.done():   # the caller was cancelled: it loses only its wait
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(cast(BaseException, value))

    def _note_write_refused(self, error: StoreWriteError) -> None:
        failure = self._write_failure
        if failure is None:
            failure = WriteFailure(error.reason, error.detail, self._clock())
            self._writable.clear()
        else:
            failure = replace(failure, reason=error.reason, detail=error.detail,
                              refused=failure.refused + 1)
        self._write_failure = failure
        self._report_health(failure)

    def _note_writable(self) -> None:
        self._write_failure = None
        self._writable.set()
        self._report_health(None)

    def _report_health(self, failure: WriteFailure | None) -> None:
        if self._on_write_health is not None:
            try:
                self._on_write_health(failure)
            except Exception:
                log.exception("store write health listener failed")

    def _wake_event_waiters(self) -> None:
        generation = self._new_events
        self._new_events = asyncio.Event()
        generation.set()


def _set_future_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


# SQLite primary result codes (the low byte of an extended code) that mean the disk, not the
# command, refused the write: https://sqlite.org/rescode.html
_FULL_CODES: Final = frozenset({13})  # SQLITE_FULL
_IO_CODES: Final = frozenset({8, 10, 14})  # SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN


def _write_failure_reason(exc: sqlite3.Error) -> WriteFailureReason | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    if code & 0xFF in _FULL_CODES:
        return "disk_full"
    if code & 0xFF in _IO_CODES:
        return "io_error"
    return None


def _as_store_error(exc: Exception, prefix: str = "write failed") -> Exception:
    if isinstance(exc, sqlite3.Error):
        reason = _write_failure_reason(exc)
        error: StoreError = (StoreWriteError(reason, str(exc)) if reason is not None
                             else StoreError(f"{prefix}: {exc}"))
        error.__cause__ = exc
        return error
    return exc


def _take_lock(path: Path) -> int:
    """An exclusive flock on ``path``, held for the store's life (the kernel drops it when the
    process dies, so a crash never leaves a stale lock)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(str(path)) from None
    except BaseException:
        os.close(fd)
        raise
    # For the operator: which process holds it.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _read_last_cursor(conn: sqlite3.Connection) -> int:
    # sqlite_sequence holds the largest cursor ever given, even if old events were deleted.
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row is not None else 0


def _row_event(r: Sequence[object]) -> Event:
    return Event(
        cursor=cast(int, r[0]), type=cast(EventType, r[1]), at=cast(str, r[2]),
        tracking_id=cast("str | None", r[3]), client_id=cast("str | None", r[4]),
        state=cast("str | None", r[5]), payload=_load_object(cast(str, r[6])),
    )


def _read_events(conn: sqlite3.Connection, cursor: int, limit: int) -> list[Event]:
    rows = conn.execute(
        "SELECT cursor, type, at_utc, tracking_id, client_id, state, payload FROM events"
        " WHERE cursor > ? ORDER BY cursor LIMIT ?", (cursor, limit)).fetchall()
    return [_row_event(r) for r in rows]


def _read_message(conn: sqlite3.Connection, tracking_id: str) -> MessageView | None:
    m = conn.execute(
        "SELECT tracking_id, client_id, provider, source, destination, text, flash,"
        " data_coding, encoding, esm_class, registered_delivery, tlvs, state, parts, attempts,"
        " last_error, created_unix_ms, updated_unix_ms, valid_until_unix_ms, answer"
        " FROM messages WHERE tracking_id = ?", (tracking_id,)).fetchone()
    if m is None:
        return None
    segments = tuple(
        SegmentView(
            part_index=s[0], state=s[1], short_message=s[2], esm_class=s[3], data_coding=s[4],
            tlvs=_tlvs_from_json(s[5]), smsc_message_id=s[6], submit_status=s[7],
            submitted_wall=_wall(s[8]) if s[8] is not None else None,
            resp_wall=_wall(s[9]) if s[9] is not None else None, attempts=s[10],
            next_attempt_wall=_wall(s[11]), last_error=s[12], bind=s[13], receipt_stat=s[14],
            receipt_err=s[15], receipt_wall=_wall(s[16]) if s[16] is not None else None,
            receipt=_load_object(s[17]) if s[17] is not None else None,
        )
        for s in conn.execute(
            "SELECT part_index, state, short_message, esm_class, data_coding, tlvs,"
            " smsc_message_id, submit_status, submitted_unix_ms, resp_unix_ms, attempts,"
            " next_attempt_unix_ms, last_error, bind, receipt_stat, receipt_err,"
            " receipt_unix_ms, receipt FROM segments WHERE tracking_id = ?"
            " ORDER BY part_index", (tracking_id,))
    )
    entries: list[tuple[str, int, HistoryEntry]] = []
    for r in conn.execute(
            "SELECT cursor, type, at_utc, tracking_id, client_id, state, payload FROM events"
            " WHERE tracking_id = ? ORDER BY cursor", (tracking_id,)):
        event = _row_event(r)
        entries.append((event.at, 0, HistoryEntry(event.at, event.type, event.state,
                                                   event.payload, event.cursor)))
    for at_ms, kind, part_index, detail in conn.execute(
            "SELECT at_unix_ms, kind, part_index, detail FROM message_notes"
            " WHERE tracking_id = ? ORDER BY note_id", (tracking_id,)):
        at = _iso(at_ms)
        entries.append((at, 1, HistoryEntry(at, kind, None,
                                            {"part": part_index, **_load_object(detail)})))
    # Stable: events before notes of the same instant, each in its own order.
    entries.sort(key=lambda e: (e[0], e[1]))
    return MessageView(
        tracking_id=m[0], client_id=m[1], provider=m[2], source=m[3], destination=m[4],
        text=m[5], flash=bool(m[6]), data_coding=m[7], encoding=m[8], esm_class=m[9],
        registered_delivery=m[10], tlvs=_tlvs_from_json(m[11]), state=m[12], parts=m[13],
        attempts=m[14], last_error=m[15], created_wall=_wall(m[16]),
        updated_wall=_wall(m[17]), valid_until_wall=_wall(m[18]) if m[18] is not None else None,
        answer=_load_object(m[19]), segments=segments,
        history=tuple(e[2] for e in entries),
    )
