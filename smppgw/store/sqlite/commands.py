"""The SQLite write commands: each runs on the writer thread inside a group's transaction.

Set-based: a command reads everything its batch touches with a few statements, lets
``rules.Batch`` decide, and writes back with one multi-row statement per statement kind,
whatever the number of messages (bulk.py says why not ``executemany``). No Python loop issues a
statement per row on the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Final, cast

from smppgw.store.encoding import Row, dumps, iso, tlvs_from_json, tlvs_to_json, wall
from smppgw.store.grouping import Deferred
from smppgw.store.interface import is_complete
from smppgw.store.models import (
    AcceptResult,
    CancelResult,
    MessageMove,
    MessageState,
    MoMessage,
    MoPart,
    MoPartResult,
    MoRecord,
    NewMessage,
    ProviderPause,
    PurgeReport,
    ReceiptRecord,
    ReceiptResult,
    SegmentToSend,
    StoredMoPart,
    SubmitOutcome,
    SubmitRecorded,
)
from smppgw.store.rules import (
    FINAL_SQL,
    UNDELIVERED_SQL,
    Batch,
    ParkedReceipt,
    plan_accept,
    unsent_state_sql,
)
from smppgw.store.sqlite.bulk import in_list, insert_rows, json_rows, update_rows
from smppgw.store.sqlite.writer import Tx

__all__ = [
    "accept",
    "cancel",
    "claim",
    "expire",
    "move_messages",
    "purge",
    "record_cancel_sm",
    "record_mo_message",
    "record_mo_part",
    "record_receipts",
    "record_submit_results",
    "recover",
    "requeue_sending",
    "set_provider_paused",
    "set_webhook_position",
    "stored_mo_part",
]

log = logging.getLogger(__name__)

# --- accept --------------------------------------------------------------------------------------


def _known(tx: Tx, column: str, values: Sequence[str]) -> dict[str, tuple[str, str]]:
    """value → (tracking_id, answer) for the messages whose ``column`` is among ``values``."""
    found: dict[str, tuple[str, str]] = {}
    for chunk, marks in in_list(values):
        # column is one of two names from this module, never input.
        for value, tracking_id, answer in tx.conn.execute(
                f"SELECT {column}, tracking_id, answer FROM messages"
                f" WHERE {column} IN ({marks})", chunk):
            found[value] = (tracking_id, answer)
    return found


def accept(tx: Tx, messages: Sequence[object]) -> list[AcceptResult]:
    """Two lookups (three with retries) and two multi-row INSERTs for the whole batch: the hot
    path of every request."""
    batch = cast(Sequence[NewMessage], messages)
    by_client = _known(tx, "client_id",
                       list({m.client_id for m in batch if m.client_id is not None}))
    taken = _known(tx, "tracking_id", list({m.tracking_id for m in batch}))
    retries = list({m.retry_of for m in batch if m.retry_of is not None})
    retried = _known(tx, "retry_of", retries) if retries else {}
    plan = plan_accept(batch, by_client, taken, tx.now_ms, tx.events, retried)
    for piece, marks in in_list(plan.released_client_ids):
        # Before the inserts: the new attempt takes the client id (a UNIQUE column).
        tx.conn.execute(f"UPDATE messages SET client_id = NULL WHERE tracking_id IN ({marks})",
                        piece)
    if plan.message_rows:
        insert_rows(
            tx.conn,
            "INSERT INTO messages (tracking_id, client_id, provider, source, destination,"
            " text, flash, data_coding, encoding, esm_class, registered_delivery, tlvs,"
            " created_unix_ms, updated_unix_ms, valid_until_unix_ms, state, parts, answer,"
            " request, retry_of)",
            plan.message_rows, "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'queued',?,?,?,?)")
        insert_rows(
            tx.conn,
            "INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,"
            " data_coding, tlvs, state, created_unix_ms, next_attempt_unix_ms)",
            plan.segment_rows, "(?,?,?,?,?,?,?,'queued',?,?)")
    if plan.notes:
        insert_rows(tx.conn, "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms,"
                             " kind, detail)", plan.notes, "(?,?,?,?,?)")
    return plan.results


# --- claim ---------------------------------------------------------------------------------------

# Parts in order (interface.py, claim_segments): a part goes only with or after every part
# before it, so the dispatcher, which sends a message's parts of one claim one after another,
# never lets a later part overtake an earlier one still waiting (retry due later) or in flight.
_CLAIM_SQL: Final = """
    WITH due AS (
        SELECT s.segment_id, s.tracking_id, s.part_index, s.short_message,
               s.esm_class AS s_esm_class, s.data_coding AS s_data_coding,
               s.tlvs AS s_tlvs, s.attempts, m.client_id, m.parts, m.source,
               m.destination, m.registered_delivery, m.tlvs AS m_tlvs, m.flash,
               m.valid_until_unix_ms, s.next_attempt_unix_ms
          FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id
         WHERE s.state = 'queued' AND s.provider = ? AND s.next_attempt_unix_ms <= ?
           AND (m.valid_until_unix_ms IS NULL OR m.valid_until_unix_ms > ?)
         ORDER BY s.next_attempt_unix_ms, s.segment_id
         LIMIT ?)
    SELECT json_group_array(json_array(
               segment_id, tracking_id, part_index, hex(short_message), s_esm_class,
               s_data_coding, s_tlvs, attempts, client_id, parts, source, destination,
               registered_delivery, m_tlvs, flash, valid_until_unix_ms))
      FROM (SELECT * FROM due AS d
             WHERE d.part_index = 0 OR NOT EXISTS (
                   SELECT 1 FROM segments AS e
                    WHERE e.tracking_id = d.tracking_id AND e.part_index < d.part_index
                      AND e.state IN ('queued', 'sending')
                      AND e.segment_id NOT IN (SELECT segment_id FROM due))
             ORDER BY d.next_attempt_unix_ms, d.segment_id)
"""


def claim(tx: Tx, request: Sequence[object]) -> list[SegmentToSend]:
    """``request`` = (provider, limit, now_ms): one SELECT and one UPDATE."""
    provider, limit, now_ms = cast(tuple[str, int, int], tuple(request))
    # Rows in the subquery's order (oldest due first); the aggregate keeps it.
    rows = json_rows(tx.conn, _CLAIM_SQL, (provider, now_ms, now_ms, limit))
    if not rows:
        return []
    for piece, marks in in_list([r[0] for r in rows]):
        tx.conn.execute(
            f"UPDATE segments SET state = 'sending' WHERE segment_id IN ({marks})", piece)
    return [
        SegmentToSend(
            segment_id=r[0], tracking_id=r[1], client_id=r[8], provider=provider,
            part_index=r[2], parts=r[9], source=r[10], destination=r[11],
            short_message=bytes.fromhex(r[3]), esm_class=r[4], data_coding=r[5],
            registered_delivery=r[12], tlvs=tlvs_from_json(r[13]) + tlvs_from_json(r[6]),
            flash=bool(r[14]), valid_until_wall=wall(r[15]) if r[15] is not None else None,
            attempts=r[7],
        )
        for r in rows
    ]


# --- the model of a batch, and writing it back ---------------------------------------------------

_MODEL_SQL: Final = (
    "SELECT json_group_array(json_array(m.tracking_id, m.state, m.client_id, m.parts,"
    " s.segment_id, s.part_index, COALESCE(s.account, s.provider), s.state, s.receipt,"
    " s.smsc_message_key))"
    " FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id"
    " WHERE s.tracking_id IN (SELECT tracking_id FROM segments WHERE {where})"
)


def _load(tx: Tx, batch: Batch, segment_ids: Iterable[int]) -> None:
    """Every part of every message that has a part among ``segment_ids``."""
    wanted = [i for i in dict.fromkeys(segment_ids) if i not in batch.parts]
    for piece, marks in in_list(wanted):
        batch.load(json_rows(tx.conn, _MODEL_SQL.format(where=f"segment_id IN ({marks})"),
                             piece))


def _load_by_keys(tx: Tx, batch: Batch, receipts: Sequence[ReceiptRecord]) -> None:
    """Every part of every message that has a part under one of the receipts' keys, in the
    receipt's account (every submitted part has its account: schema v6)."""
    by_account: dict[str, set[str]] = {}
    for r in receipts:
        by_account.setdefault(r.correlation, set()).update(r.keys)
    for account, keys in by_account.items():
        for piece, marks in in_list(sorted(keys)):
            batch.load(json_rows(tx.conn, _MODEL_SQL.format(
                where=f"account = ? AND smsc_message_key IN ({marks})"), (account, *piece)))


def _write(tx: Tx, batch: Batch) -> None:
    conn = tx.conn
    for columns, rows in batch.segment_updates().items():
        # Column names come from rules.SEGMENT_COLUMNS, never from input.
        update_rows(conn, "segments", "segment_id", (*columns, "attempts_"), rows,
                    ", ".join(f"{c} = v.{c}" for c in columns)
                    + ", attempts = attempts + v.attempts_")
    messages = batch.message_updates()
    if messages:
        update_rows(conn, "messages", "tracking_id",
                    ("state", "updated", "attempts_", "last_error"), messages,
                    "state = v.state, updated_unix_ms = v.updated,"
                    f" undelivered_state = CASE WHEN v.state IN {UNDELIVERED_SQL}"
                    " THEN v.state END,"
                    " attempts = attempts + v.attempts_,"
                    " last_error = COALESCE(v.last_error, messages.last_error)")
    if batch.notes:
        insert_rows(conn, "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms,"
                          " kind, detail)", batch.notes, "(?,?,?,?,?)")
    for piece, marks in in_list(batch.matched_receipts):
        conn.execute("UPDATE unmatched_receipts SET matched = 1, matched_unix_ms = ?"
                     f" WHERE receipt_id IN ({marks})", (tx.now_ms, *piece))
        conn.execute(f"DELETE FROM unmatched_receipt_keys WHERE receipt_id IN ({marks})", piece)


# --- submit outcomes -----------------------------------------------------------------------------


def _any_parked(tx: Tx) -> bool:
    # The partial index unmatched_receipts_open makes this one probe.
    return tx.conn.execute(
        "SELECT 1 FROM unmatched_receipts WHERE matched = 0 LIMIT 1").fetchone() is not None


def _parked(tx: Tx, keys: Sequence[tuple[str, str]]) -> list[tuple[str, str, int, str]]:
    """(account, key, receipt_id, receipt JSON) of the open parked receipts under ``keys``."""
    wanted = set(keys)
    found: list[tuple[str, str, int, str]] = []
    for chunk, marks in in_list(list(dict.fromkeys(k for _, k in keys))):
        for account, key, receipt_id, text in tx.conn.execute(
                "SELECT k.account, k.message_key, u.receipt_id, u.receipt"
                " FROM unmatched_receipt_keys AS k"
                " JOIN unmatched_receipts AS u ON u.receipt_id = k.receipt_id"
                f" WHERE k.message_key IN ({marks}) AND u.matched = 0", chunk):
            if (account, key) in wanted:
                found.append((account, key, receipt_id, text))
    return found


def record_submit_results(tx: Tx, items: Sequence[object]) -> list[SubmitRecorded | None]:
    outcomes = cast(Sequence[SubmitOutcome], items)
    batch = Batch(tx.now_ms, tx.events)
    _load(tx, batch, (o.segment_id for o in outcomes))
    results = batch.record_outcomes(outcomes)
    for o, result in zip(outcomes, results, strict=True):
        if result is None:
            log.warning("submit outcome for unknown segment_id=%s ignored", o.segment_id)
    keys = batch.parked_keys()
    if keys and _any_parked(tx):
        batch.match_parked(results, _parked(tx, keys))
    _write(tx, batch)
    return results


# --- receipts ------------------------------------------------------------------------------------


def _park(tx: Tx, parked: Sequence[ParkedReceipt]) -> None:
    """Store receipts whose part is not known yet, under every lookup key; the ids are given
    here (one writer), so both tables fill with one executemany each."""
    (last,) = tx.conn.execute(
        "SELECT COALESCE(MAX(receipt_id), 0) FROM unmatched_receipts").fetchone()
    rows: list[tuple[object, ...]] = []
    keys: list[tuple[str, str, str, int]] = []
    for offset, p in enumerate(parked, start=1):
        receipt_id = last + offset
        rows.append((receipt_id, p.provider, p.account, p.message_id, p.message_key,
                     p.document, tx.now_ms))
        keys.extend((p.provider, p.account, key, receipt_id) for key in p.keys)
    insert_rows(tx.conn, "INSERT INTO unmatched_receipts (receipt_id, provider, account,"
                         " message_id, message_key, receipt, received_unix_ms)", rows,
                "(?,?,?,?,?,?,?)")
    insert_rows(tx.conn, "INSERT INTO unmatched_receipt_keys (provider, account, message_key,"
                         " receipt_id)", keys, "(?,?,?,?)")


def record_receipts(tx: Tx, items: Sequence[object]) -> list[ReceiptResult]:
    """One model load for every key of the batch, then the rules in order; the receipts no
    part has yet (its submit_sm_resp is still on its way) are parked."""
    receipts = cast(Sequence[ReceiptRecord], items)
    batch = Batch(tx.now_ms, tx.events)
    _load_by_keys(tx, batch, receipts)
    results: list[ReceiptResult] = []
    parked: list[ParkedReceipt] = []
    for r, part in zip(receipts, batch.choose(receipts), strict=True):
        if part is None:
            parked.append(Batch.park(r))
            results.append(ReceiptResult(False))
        else:
            results.append(batch.apply_receipt(part, r))
    _write(tx, batch)
    if parked:
        _park(tx, parked)
    return results


# --- MO ------------------------------------------------------------------------------------------

_MO_COLUMNS: Final = ("part_id, provider, source, destination, reference, total, seq,"
                      " data_coding, payload, received_unix_ms")


def stored_mo_part(r: Row) -> StoredMoPart:
    return StoredMoPart(
        part_id=cast(int, r[0]), provider=cast(str, r[1]), source=cast(str, r[2]),
        destination=cast(str, r[3]), reference=cast(int, r[4]), total=cast(int, r[5]),
        seq=cast(int, r[6]), data_coding=cast(int, r[7]), payload=bytes(cast(bytes, r[8])),
        received_wall=wall(cast(int, r[9])),
    )


def record_mo_part(tx: Tx, items: Sequence[object]) -> MoPartResult:
    (p,) = cast(Sequence[MoPart], items)
    cur = tx.conn.execute(
        "INSERT OR IGNORE INTO mo_parts (provider, source, destination, reference, total, seq,"
        " data_coding, payload, bind, received_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (p.provider, p.source, p.destination, p.reference, p.total, p.seq, p.data_coding,
         p.payload, p.bind, tx.now_ms),
    )
    duplicate = cur.rowcount == 0
    parts = tuple(stored_mo_part(r) for r in tx.conn.execute(
        f"SELECT {_MO_COLUMNS} FROM mo_parts WHERE provider = ? AND source = ?"
        " AND destination = ? AND reference = ? AND total = ? ORDER BY seq",
        (p.provider, p.source, p.destination, p.reference, p.total)))
    part_id = next(q.part_id for q in parts if q.seq == p.seq)
    return MoPartResult(part_id, duplicate, is_complete(parts), parts)


def record_mo_message(tx: Tx, items: Sequence[object]) -> Deferred:
    m, consumed = cast(tuple[MoMessage, Sequence[int]], tuple(items))
    mo_id = cast(int, tx.conn.execute(
        "INSERT INTO mo_messages (provider, source, destination, text, data_coding, parts, bind,"
        " received_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (m.provider, m.source, m.destination, m.text, m.data_coding, m.parts, m.bind,
         tx.now_ms),
    ).lastrowid)
    for piece, marks in in_list(consumed):
        tx.conn.execute(f"DELETE FROM mo_parts WHERE part_id IN ({marks})", piece)
    index = tx.events.add("mo", None, None, None, dumps({
        "from": m.source, "to": m.destination, "text": m.text, "provider": m.provider,
        "mo_id": mo_id, "parts": m.parts, "data_coding": m.data_coding,
    }))
    return Deferred(lambda first: MoRecord(mo_id, first + index))


# --- housekeeping --------------------------------------------------------------------------------

_EXPIRED_REASON: Final = "validity period passed before submission"


_UNKNOWN_REASON: Final = ("no receipt can be matched: the SMSC answered ESME_ROK without a "
                          "message id")
# Messages whose receipt can never be matched (a part without a message id): 'unknown' once
# their validity runs out (DESIGN.md "Message states"), found through segments_unmatchable.
_UNMATCHABLE_SQL: Final = (
    "SELECT DISTINCT m.tracking_id, m.client_id, m.state"
    "  FROM segments AS s INDEXED BY segments_unmatchable"
    "  JOIN messages AS m ON m.tracking_id = s.tracking_id"
    " WHERE s.smsc_message_key IS NULL AND s.state IN ('submitted', 'accepted')"
    "   AND m.state IN ('submitted', 'accepted') AND (m.registered_delivery & 1) = 1"
    "   AND m.valid_until_unix_ms IS NOT NULL AND m.valid_until_unix_ms <= ?"
    " LIMIT ?")


def expire(tx: Tx, request: Sequence[object]) -> int:
    """Queued messages past their validity → 'expired'; submitted ones whose receipt can
    never be matched → 'unknown'. Returns how many messages ended."""
    now_ms, limit = cast(tuple[int, int], tuple(request))
    return _expire_queued(tx, now_ms, limit) + _end_unmatchable(tx, now_ms, limit)


def _end_unmatchable(tx: Tx, now_ms: int, limit: int) -> int:
    rows = tx.conn.execute(_UNMATCHABLE_SQL, (now_ms, limit)).fetchall()
    if not rows:
        return 0
    for piece, marks in in_list([tracking_id for tracking_id, _, _ in rows]):
        tx.conn.execute(
            "UPDATE segments SET state = 'unknown', last_error = ?"
            f" WHERE tracking_id IN ({marks}) AND smsc_message_key IS NULL"
            " AND state IN ('submitted', 'accepted')", (_UNKNOWN_REASON, *piece))
    batch = Batch(tx.now_ms, tx.events)
    for tracking_id, client_id, state in rows:
        batch.unknown(tracking_id, client_id, state, _UNKNOWN_REASON)
    _write(tx, batch)
    return len(rows)


def _expire_queued(tx: Tx, now_ms: int, limit: int) -> int:
    rows = tx.conn.execute(
        "SELECT tracking_id, client_id FROM messages AS m WHERE state = 'queued'"
        " AND valid_until_unix_ms IS NOT NULL AND valid_until_unix_ms <= ?"
        # A part in flight decides for itself: ok → the message goes on; transient → it is
        # queued again and the next call expires the message.
        " AND NOT EXISTS (SELECT 1 FROM segments AS s"
        "                 WHERE s.tracking_id = m.tracking_id AND s.state = 'sending')"
        " ORDER BY valid_until_unix_ms LIMIT ?", (now_ms, limit),
    ).fetchall()
    if not rows:
        return 0
    for piece, marks in in_list([tracking_id for tracking_id, _ in rows]):
        tx.conn.execute("UPDATE segments SET state = 'expired', last_error = ?"
                        f" WHERE tracking_id IN ({marks}) AND state = 'queued'",
                        (_EXPIRED_REASON, *piece))
    batch = Batch(tx.now_ms, tx.events)
    for tracking_id, client_id in rows:
        batch.expire(tracking_id, client_id, _EXPIRED_REASON)
    _write(tx, batch)
    return len(rows)



def purge(tx: Tx, request: Sequence[object]) -> PurgeReport:
    """Oldest first, at most ``limit`` rows of each kind per call, so one call never holds the
    writer for long. Freed pages are reused by later inserts, so the file stops growing."""
    cutoff_ms, limit = cast(tuple[int, int], tuple(request))
    conn = tx.conn
    doomed = [r[0] for r in conn.execute(
        "SELECT tracking_id FROM messages WHERE updated_unix_ms < ?"
        f" AND state IN {FINAL_SQL} ORDER BY rowid LIMIT ?", (cutoff_ms, limit))]
    for piece, marks in in_list(doomed):
        conn.execute(f"DELETE FROM segments WHERE tracking_id IN ({marks})", piece)
        conn.execute(f"DELETE FROM message_notes WHERE tracking_id IN ({marks})", piece)
        conn.execute(f"DELETE FROM messages WHERE tracking_id IN ({marks})", piece)
    # sqlite_sequence keeps the highest cursor, so deleting events never lets one be reused.
    events = conn.execute(
        "DELETE FROM events WHERE cursor IN (SELECT cursor FROM events WHERE at_utc < ?"
        " ORDER BY cursor LIMIT ?)", (iso(cutoff_ms), limit)).rowcount
    receipts = [r[0] for r in conn.execute(
        "SELECT receipt_id FROM unmatched_receipts WHERE received_unix_ms < ?"
        " ORDER BY receipt_id LIMIT ?", (cutoff_ms, limit))]
    for piece, marks in in_list(receipts):
        conn.execute(f"DELETE FROM unmatched_receipt_keys WHERE receipt_id IN ({marks})", piece)
        conn.execute(f"DELETE FROM unmatched_receipts WHERE receipt_id IN ({marks})", piece)
    mo = conn.execute(
        "DELETE FROM mo_messages WHERE mo_id IN (SELECT mo_id FROM mo_messages"
        " WHERE received_unix_ms < ? ORDER BY mo_id LIMIT ?)", (cutoff_ms, limit)).rowcount
    return PurgeReport(len(doomed), events, len(receipts), mo)


# A part left 'sending' goes back to the queue, unless its message ended meanwhile (cancelled,
# or failed by another part): rules.unsent_state, in SQL.
_UNSENT_STATE: Final = unsent_state_sql(
    "(SELECT m.state FROM messages AS m WHERE m.tracking_id = segments.tracking_id)")


def _requeue(tx: Tx, provider: str | None, reason: str) -> int:
    """The parts left 'sending' (of ``provider``, or all), each queued again with a
    'requeued' note, or ended as rules.unsent_state says; how many were queued again."""
    conn = tx.conn
    where = "state = 'sending'" + ("" if provider is None else " AND provider = ?")
    params: tuple[object, ...] = () if provider is None else (provider,)
    conn.execute(
        "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
        f" SELECT tracking_id, part_index, ?, 'requeued', ? FROM segments WHERE {where}"
        f" AND {_UNSENT_STATE} = 'queued'", (tx.now_ms, dumps({"reason": reason}), *params))
    (requeued,) = conn.execute(
        f"SELECT COUNT(*) FROM segments WHERE {where} AND {_UNSENT_STATE} = 'queued'",
        params).fetchone()
    conn.execute(f"UPDATE segments SET state = {_UNSENT_STATE} WHERE {where}", params)
    return int(requeued)


def requeue_sending(tx: Tx, request: Sequence[object]) -> int:
    provider, reason = cast(tuple[str, str], tuple(request))
    return _requeue(tx, provider, reason)


def adopt_accounts(tx: Tx, request: Sequence[object]) -> int:
    """``request`` = ((provider, account key), ...): the rows whose account is still their
    provider's name (schema v6 put it there) take the key. Uses the account indexes."""
    conn = tx.conn
    changed = 0
    for provider, account in cast(Sequence[tuple[str, str]], request):
        for table in ("segments", "unmatched_receipts", "unmatched_receipt_keys"):
            # Table names from this tuple, never from input.
            changed += int(conn.execute(
                f"UPDATE {table} SET account = ? WHERE account = ? AND provider = ?",
                (account, provider, provider)).rowcount)
    return changed


def recover(tx: Tx, _items: Sequence[object]) -> tuple[int, int, int, list[StoredMoPart]]:
    conn = tx.conn
    requeued = _requeue(tx, None, "sent or claimed without a recorded response before restart")
    (unmatched,) = conn.execute(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0").fetchone()
    (queued,) = conn.execute("SELECT COUNT(*) FROM segments WHERE state = 'queued'").fetchone()
    rows = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM mo_parts"
        " ORDER BY provider, source, destination, reference, total, seq").fetchall()
    return requeued, unmatched, queued, [stored_mo_part(r) for r in rows]


def move_messages(tx: Tx, request: Sequence[object]) -> int:
    """Failover: each message still all queued with its old provider gets its new parts,
    provider, sender, encoding and TLVs, and a 'failover' note. Rare: statements per message."""
    conn = tx.conn
    moved = 0
    for move in cast(Sequence[MessageMove], request):
        m = move.message
        row = conn.execute(
            "SELECT created_unix_ms FROM messages AS msg WHERE tracking_id = ? AND provider = ?"
            " AND state = 'queued' AND NOT EXISTS (SELECT 1 FROM segments AS s"
            "       WHERE s.tracking_id = msg.tracking_id AND s.state <> 'queued')",
            (m.tracking_id, move.from_provider)).fetchone()
        if row is None:
            continue
        (created,) = row
        conn.execute("DELETE FROM segments WHERE tracking_id = ?", (m.tracking_id,))
        insert_rows(
            conn,
            "INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,"
            " data_coding, tlvs, state, created_unix_ms, next_attempt_unix_ms)",
            [(m.tracking_id, i, m.provider, s.short_message, s.esm_class, s.data_coding,
              tlvs_to_json(s.tlvs), created, tx.now_ms) for i, s in enumerate(m.segments)],
            "(?,?,?,?,?,?,?,'queued',?,?)")
        conn.execute(
            "UPDATE messages SET provider = ?, source = ?, data_coding = ?, encoding = ?,"
            " flash = ?, esm_class = ?, registered_delivery = ?, tlvs = ?, parts = ?,"
            " updated_unix_ms = ? WHERE tracking_id = ?",
            (m.provider, m.source, m.data_coding, m.encoding, int(m.flash), m.esm_class,
             m.registered_delivery, tlvs_to_json(m.tlvs), len(m.segments), tx.now_ms,
             m.tracking_id))
        conn.execute(
            "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
            " VALUES (?, NULL, ?, 'failover', ?)",
            (m.tracking_id, tx.now_ms, dumps({"from": move.from_provider, "to": m.provider,
                                               "reason": move.reason})))
        moved += 1
    return moved


# --- operator commands ---------------------------------------------------------------------------


def cancel(tx: Tx, request: Sequence[object]) -> CancelResult | None:
    """``request`` = (tracking_id, reason, not_sent): the message's parts loaded,
    rules.Batch.cancel, written back. Runs on the writer, like claims: a part is claimed or
    cancelled, not both."""
    tracking_id, reason, not_sent = cast(tuple[str, str, frozenset[int]], tuple(request))
    batch = Batch(tx.now_ms, tx.events)
    batch.load(json_rows(tx.conn, _MODEL_SQL.format(where="tracking_id = ?"), (tracking_id,)))
    result = batch.cancel(tracking_id, reason, not_sent)
    _write(tx, batch)
    return result


def record_cancel_sm(tx: Tx, request: Sequence[object]) -> MessageState | None:
    """``request`` = (tracking_id, answers, reason): rules.Batch.cancel_on_smsc."""
    tracking_id, answers, reason = cast(
        tuple[str, tuple[tuple[int, str, bool], ...], str], tuple(request))
    batch = Batch(tx.now_ms, tx.events)
    batch.load(json_rows(tx.conn, _MODEL_SQL.format(where="tracking_id = ?"), (tracking_id,)))
    state = batch.cancel_on_smsc(tracking_id, answers, reason)
    _write(tx, batch)
    return state


def set_provider_paused(tx: Tx, request: Sequence[object]) -> ProviderPause | None:
    provider, paused = cast(tuple[str, bool], tuple(request))
    if not paused:
        tx.conn.execute("DELETE FROM provider_pauses WHERE provider = ?", (provider,))
        return None
    tx.conn.execute("INSERT INTO provider_pauses (provider, paused_unix_ms) VALUES (?, ?)"
                    " ON CONFLICT (provider) DO NOTHING", (provider, tx.now_ms))
    (since,) = tx.conn.execute("SELECT paused_unix_ms FROM provider_pauses WHERE provider = ?",
                               (provider,)).fetchone()
    return ProviderPause(provider, wall(since))


def set_webhook_position(tx: Tx, request: Sequence[object]) -> None:
    name, cursor = cast(tuple[str, int], tuple(request))
    tx.conn.execute(
        "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET cursor = MAX(cursor, excluded.cursor),"
        " updated_unix_ms = excluded.updated_unix_ms", (name, cursor, tx.now_ms))
