"""The PostgreSQL write commands: each runs on the writer's connection inside a group's
transaction.

Set-based, as the SQLite commands, and with as few round trips as possible: whole batches go
to the server as arrays (``unnest``) in one statement per statement kind, reads of a batch are
one query, and ``rules.Batch`` decides what changes. Claims take rows with ``FOR UPDATE SKIP
LOCKED``, so claimers on other connections never get the same part and never wait.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, cast

from smppgw.store.encoding import Row, dumps, iso, tlvs_from_json, wall
from smppgw.store.grouping import Deferred
from smppgw.store.interface import is_complete
from smppgw.store.models import (
    AcceptResult,
    MoMessage,
    MoPart,
    MoPartResult,
    MoRecord,
    NewMessage,
    PurgeReport,
    ReceiptRecord,
    ReceiptResult,
    SegmentToSend,
    StoredMoPart,
    SubmitOutcome,
    SubmitRecorded,
)
from smppgw.store.postgres.writer import Tx
from smppgw.store.rules import Batch, ParkedReceipt, plan_accept

__all__ = [
    "accept",
    "claim",
    "expire",
    "purge",
    "record_mo_message",
    "record_mo_part",
    "record_receipts",
    "record_submit_results",
    "recover",
    "requeue_sending",
    "set_webhook_position",
    "stored_mo_part",
]

log = logging.getLogger(__name__)


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """Rows → one list per column, for ``unnest($1::type[], ...)``."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


# --- accept --------------------------------------------------------------------------------------

_ACCEPT_INSERT_SQL: Final = """
    WITH new_messages AS (
        INSERT INTO messages (tracking_id, client_id, provider, source, destination, text,
                              flash, data_coding, encoding, esm_class, registered_delivery,
                              tlvs, created_unix_ms, updated_unix_ms, valid_until_unix_ms,
                              state, parts, answer)
        SELECT m.tracking_id, m.client_id, m.provider, m.source, m.destination, m.text,
               m.flash, m.data_coding, m.encoding, m.esm_class, m.registered_delivery, m.tlvs,
               m.created, m.updated, m.valid_until, 'queued', m.parts, m.answer
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                      $7::int[], $8::int[], $9::text[], $10::int[], $11::int[], $12::text[],
                      $13::bigint[], $14::bigint[], $15::bigint[], $16::int[], $17::text[])
               AS m(tracking_id, client_id, provider, source, destination, text, flash,
                    data_coding, encoding, esm_class, registered_delivery, tlvs, created,
                    updated, valid_until, parts, answer)
    )
    INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,
                          data_coding, tlvs, state, created_unix_ms, next_attempt_unix_ms)
    SELECT s.tracking_id, s.part_index, s.provider, s.short_message, s.esm_class,
           s.data_coding, s.tlvs, 'queued', s.created, s.next_attempt
      FROM unnest($18::text[], $19::int[], $20::text[], $21::bytea[], $22::int[], $23::int[],
                  $24::text[], $25::bigint[], $26::bigint[])
           AS s(tracking_id, part_index, provider, short_message, esm_class, data_coding,
                tlvs, created, next_attempt)
"""


async def accept(tx: Tx, messages: Sequence[object]) -> list[AcceptResult]:
    """One lookup and one statement (both tables) for the whole batch."""
    batch = cast(Sequence[NewMessage], messages)
    client_ids = list({m.client_id for m in batch if m.client_id is not None})
    tracking_ids = list({m.tracking_id for m in batch})
    by_client: dict[str, tuple[str, str]] = {}
    taken: dict[str, tuple[str, str]] = {}
    wanted_clients = set(client_ids)
    wanted_ids = set(tracking_ids)
    for client_id, tracking_id, answer in await tx.conn.fetch(
            "SELECT client_id, tracking_id, answer FROM messages"
            " WHERE client_id = ANY($1::text[]) OR tracking_id = ANY($2::text[])",
            client_ids, tracking_ids):
        if client_id in wanted_clients:
            by_client[client_id] = (tracking_id, answer)
        if tracking_id in wanted_ids:
            taken[tracking_id] = (tracking_id, answer)
    results, message_rows, segment_rows = plan_accept(batch, by_client, taken, tx.now_ms,
                                                      tx.events)
    if message_rows:
        await tx.conn.execute(_ACCEPT_INSERT_SQL, *_columns(message_rows, 17),
                              *_columns(segment_rows, 9))
    return results


# --- claim ---------------------------------------------------------------------------------------

_CLAIM_SQL: Final = """
    WITH due AS (
        SELECT s.segment_id
          FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id
         WHERE s.state = 'queued' AND s.provider = $1 AND s.next_attempt_unix_ms <= $2
           AND (m.valid_until_unix_ms IS NULL OR m.valid_until_unix_ms > $2)
         ORDER BY s.next_attempt_unix_ms, s.segment_id
         LIMIT $3
           FOR UPDATE OF s SKIP LOCKED
    )
    UPDATE segments AS s SET state = 'sending'
      FROM due, messages AS m
     WHERE s.segment_id = due.segment_id AND m.tracking_id = s.tracking_id
    RETURNING s.segment_id, s.tracking_id, s.part_index, s.short_message, s.esm_class,
              s.data_coding, s.tlvs, s.attempts, m.client_id, m.parts, m.source,
              m.destination, m.registered_delivery, m.tlvs, m.flash, m.valid_until_unix_ms,
              s.next_attempt_unix_ms
"""


async def claim(tx: Tx, request: Sequence[object]) -> list[SegmentToSend]:
    """``request`` = (provider, limit, now_ms): one statement."""
    provider, limit, now_ms = cast(tuple[str, int, int], tuple(request))
    rows = await tx.conn.fetch(_CLAIM_SQL, provider, now_ms, limit)
    # RETURNING has no order: oldest due first, parts of one message in order.
    rows.sort(key=lambda r: (r[16], r[0]))
    return [
        SegmentToSend(
            segment_id=r[0], tracking_id=r[1], client_id=r[8], provider=provider,
            part_index=r[2], parts=r[9], source=r[10], destination=r[11],
            short_message=bytes(r[3]), esm_class=r[4], data_coding=r[5],
            registered_delivery=r[12], tlvs=tlvs_from_json(r[13]) + tlvs_from_json(r[6]),
            flash=bool(r[14]), valid_until_wall=wall(r[15]) if r[15] is not None else None,
            attempts=r[7],
        )
        for r in rows
    ]


# --- the model of a batch, and writing it back ---------------------------------------------------

_MODEL_SQL: Final = """
    SELECT m.tracking_id, m.state, m.client_id, m.parts, s.segment_id, s.part_index,
           s.provider, s.state, s.receipt
      FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id
     WHERE s.tracking_id IN (SELECT tracking_id FROM segments
                              WHERE segment_id = ANY($1::bigint[]))
"""

# The PostgreSQL type of each column rules.Batch may set on a segment.
_SEGMENT_TYPES: Final = {
    "state": "text", "smsc_message_id": "text", "smsc_message_key": "text",
    "submit_status": "text", "submitted_unix_ms": "bigint", "resp_unix_ms": "bigint",
    "next_attempt_unix_ms": "bigint", "bind": "text", "last_error": "text",
    "receipt_stat": "text", "receipt_err": "text", "receipt_unix_ms": "bigint",
    "receipt": "text",
}


async def _load(tx: Tx, batch: Batch, segment_ids: Sequence[int]) -> None:
    wanted = [i for i in dict.fromkeys(segment_ids) if i not in batch.parts]
    if wanted:
        batch.load(await tx.conn.fetch(_MODEL_SQL, wanted))


async def _write(tx: Tx, batch: Batch) -> None:
    conn = tx.conn
    for columns, rows in batch.segment_updates().items():
        # Column names come from rules.SEGMENT_COLUMNS, never from input.
        arrays = ", ".join(f"${i}::{_SEGMENT_TYPES[c]}[]" for i, c in enumerate(columns, 1))
        n = len(columns)
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        await conn.execute(
            f"UPDATE segments AS s SET {assignments}, attempts = s.attempts + u.attempts_"
            f" FROM unnest({arrays}, ${n + 1}::int[], ${n + 2}::bigint[])"
            f" AS u({', '.join(columns)}, attempts_, segment_id_)"
            " WHERE s.segment_id = u.segment_id_", *_columns(rows, n + 2))
    messages = batch.message_updates()
    if messages:
        await conn.execute(
            "UPDATE messages AS m SET state = u.state, updated_unix_ms = u.updated,"
            " attempts = m.attempts + u.attempts, last_error = COALESCE(u.last_error,"
            " m.last_error)"
            " FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[])"
            " AS u(state, updated, attempts, last_error, tracking_id)"
            " WHERE m.tracking_id = u.tracking_id", *_columns(messages, 5))
    if batch.notes:
        await conn.execute(
            "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
            " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[])",
            *_columns(batch.notes, 5))
    if batch.matched_receipts:
        await conn.execute(
            "WITH keys AS (DELETE FROM unmatched_receipt_keys WHERE receipt_id = ANY($2))"
            " UPDATE unmatched_receipts SET matched = 1, matched_unix_ms = $1"
            " WHERE receipt_id = ANY($2::bigint[])", tx.now_ms, batch.matched_receipts)


# --- submit outcomes -----------------------------------------------------------------------------

_PARKED_SQL: Final = """
    SELECT k.provider, k.message_key, u.receipt_id, u.receipt
      FROM unnest($1::text[], $2::text[]) AS w(provider, message_key)
      JOIN unmatched_receipt_keys AS k
        ON k.provider = w.provider AND k.message_key = w.message_key
      JOIN unmatched_receipts AS u ON u.receipt_id = k.receipt_id
     WHERE u.matched = 0
"""


async def record_submit_results(
    tx: Tx, items: Sequence[object]
) -> list[SubmitRecorded | None]:
    outcomes = cast(Sequence[SubmitOutcome], items)
    batch = Batch(tx.now_ms, tx.events)
    await _load(tx, batch, [o.segment_id for o in outcomes])
    results = batch.record_outcomes(outcomes)
    for o, result in zip(outcomes, results, strict=True):
        if result is None:
            log.warning("submit outcome for unknown segment_id=%s ignored", o.segment_id)
    keys = batch.parked_keys()
    if keys:
        parked = await tx.conn.fetch(_PARKED_SQL, *_columns(keys, 2))
        batch.match_parked(results, [tuple(r) for r in parked])
    await _write(tx, batch)
    return results


# --- receipts ------------------------------------------------------------------------------------

_CANDIDATES_SQL: Final = """
    SELECT DISTINCT ON (s.provider, s.smsc_message_key)
           s.provider, s.smsc_message_key, s.segment_id
      FROM unnest($1::text[], $2::text[]) AS k(provider, message_key)
      JOIN segments AS s ON s.provider = k.provider AND s.smsc_message_key = k.message_key
     ORDER BY s.provider, s.smsc_message_key, s.segment_id DESC
"""


async def _park(tx: Tx, parked: Sequence[ParkedReceipt]) -> None:
    """Receipts whose part is not known yet, under every lookup key: ids first (one round
    trip), then both tables in one statement."""
    ids = [r[0] for r in await tx.conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('unmatched_receipts', 'receipt_id'))"
        " FROM generate_series(1, $1)", len(parked))]
    rows = [(receipt_id, p.provider, p.message_id, p.message_key, p.document)
            for receipt_id, p in zip(ids, parked, strict=True)]
    keys = [(p.provider, key, receipt_id)
            for receipt_id, p in zip(ids, parked, strict=True) for key in p.keys]
    await tx.conn.execute(
        "WITH receipts AS ("
        " INSERT INTO unmatched_receipts (receipt_id, provider, message_id, message_key,"
        " receipt, received_unix_ms)"
        " SELECT r.*, $6 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
        " $5::text[]) AS r)"
        " INSERT INTO unmatched_receipt_keys (provider, message_key, receipt_id)"
        " SELECT * FROM unnest($7::text[], $8::text[], $9::bigint[])",
        *_columns(rows, 5), tx.now_ms, *_columns(keys, 3))


async def record_receipts(tx: Tx, items: Sequence[object]) -> list[ReceiptResult]:
    receipts = cast(Sequence[ReceiptRecord], items)
    wanted = list(dict.fromkeys((r.provider, key) for r in receipts for key in r.keys))
    candidates = {(provider, key): segment_id for provider, key, segment_id
                  in await tx.conn.fetch(_CANDIDATES_SQL, *_columns(wanted, 2))}
    chosen = [Batch.choose(r, candidates) for r in receipts]
    batch = Batch(tx.now_ms, tx.events)
    await _load(tx, batch, [i for i in chosen if i is not None])
    results: list[ReceiptResult] = []
    parked: list[ParkedReceipt] = []
    for r, segment_id in zip(receipts, chosen, strict=True):
        if segment_id is None:
            parked.append(Batch.park(r))
            results.append(ReceiptResult(False))
        else:
            results.append(batch.apply_receipt(batch.parts[segment_id], r))
    await _write(tx, batch)
    if parked:
        await _park(tx, parked)
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


async def record_mo_part(tx: Tx, items: Sequence[object]) -> MoPartResult:
    (p,) = cast(Sequence[MoPart], items)
    group = (p.provider, p.source, p.destination, p.reference, p.total)
    # Parts of one group may arrive on connections of different transactions: take turns per
    # group, so the transaction that stores the last part sees all the others.
    await tx.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                          dumps(list(group)))
    part_id = await tx.conn.fetchval(
        "INSERT INTO mo_parts (provider, source, destination, reference, total, seq,"
        " data_coding, payload, bind, received_unix_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (provider, source, destination, reference, total, seq) DO NOTHING"
        " RETURNING part_id",
        *group, p.seq, p.data_coding, p.payload, p.bind, tx.now_ms)
    parts = tuple(stored_mo_part(r) for r in await tx.conn.fetch(
        f"SELECT {_MO_COLUMNS} FROM mo_parts WHERE provider = $1 AND source = $2"
        " AND destination = $3 AND reference = $4 AND total = $5 ORDER BY seq", *group))
    existing = next(q.part_id for q in parts if q.seq == p.seq)
    return MoPartResult(existing, part_id is None, is_complete(parts), parts)


async def record_mo_message(tx: Tx, items: Sequence[object]) -> Deferred:
    m, consumed = cast(tuple[MoMessage, Sequence[int]], tuple(items))
    mo_id = cast(int, await tx.conn.fetchval(
        "INSERT INTO mo_messages (provider, source, destination, text, data_coding, parts,"
        " bind, received_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING mo_id",
        m.provider, m.source, m.destination, m.text, m.data_coding, m.parts, m.bind,
        tx.now_ms))
    if consumed:
        await tx.conn.execute("DELETE FROM mo_parts WHERE part_id = ANY($1::bigint[])",
                              list(consumed))
    index = tx.events.add("mo", None, None, None, dumps({
        "from": m.source, "to": m.destination, "text": m.text, "provider": m.provider,
        "mo_id": mo_id, "parts": m.parts, "data_coding": m.data_coding,
    }))
    return Deferred(lambda first: MoRecord(mo_id, first + index))


# --- housekeeping --------------------------------------------------------------------------------

_EXPIRED_REASON: Final = "validity period passed before submission"


async def expire(tx: Tx, request: Sequence[object]) -> int:
    now_ms, limit = cast(tuple[int, int], tuple(request))
    rows = await tx.conn.fetch(
        "SELECT tracking_id, client_id FROM messages AS m WHERE state = 'queued'"
        " AND valid_until_unix_ms IS NOT NULL AND valid_until_unix_ms <= $1"
        # A part in flight decides for itself (see the SQLite command).
        " AND NOT EXISTS (SELECT 1 FROM segments AS s"
        "                 WHERE s.tracking_id = m.tracking_id AND s.state = 'sending')"
        " ORDER BY valid_until_unix_ms LIMIT $2", now_ms, limit)
    if not rows:
        return 0
    await tx.conn.execute(
        "UPDATE segments SET state = 'expired', last_error = $1"
        " WHERE tracking_id = ANY($2::text[]) AND state = 'queued'",
        _EXPIRED_REASON, [r[0] for r in rows])
    batch = Batch(tx.now_ms, tx.events)
    for tracking_id, client_id in rows:
        batch.expire(tracking_id, client_id, _EXPIRED_REASON)
    await _write(tx, batch)
    return len(rows)


async def purge(tx: Tx, request: Sequence[object]) -> PurgeReport:
    """Oldest first, at most ``limit`` rows of each kind per call."""
    cutoff_ms, limit = cast(tuple[int, int], tuple(request))
    conn = tx.conn
    doomed = [r[0] for r in await conn.fetch(
        "SELECT tracking_id FROM messages WHERE updated_unix_ms < $1"
        " AND state IN ('delivered', 'undeliverable', 'expired', 'rejected', 'failed')"
        " ORDER BY updated_unix_ms LIMIT $2", cutoff_ms, limit)]
    if doomed:
        await conn.execute(
            "WITH s AS (DELETE FROM segments WHERE tracking_id = ANY($1::text[])),"
            " n AS (DELETE FROM message_notes WHERE tracking_id = ANY($1::text[]))"
            " DELETE FROM messages WHERE tracking_id = ANY($1::text[])", doomed)
    # event_counter keeps the highest cursor, so deleting events never lets one be reused.
    events = _count(await conn.execute(
        "DELETE FROM events WHERE cursor IN (SELECT cursor FROM events WHERE at_utc < $1"
        " ORDER BY cursor LIMIT $2)", iso(cutoff_ms), limit))
    receipts = _count(await conn.execute(
        "WITH doomed AS (SELECT receipt_id FROM unmatched_receipts"
        "                 WHERE received_unix_ms < $1 ORDER BY receipt_id LIMIT $2),"
        " keys AS (DELETE FROM unmatched_receipt_keys"
        "           WHERE receipt_id IN (SELECT receipt_id FROM doomed))"
        " DELETE FROM unmatched_receipts WHERE receipt_id IN (SELECT receipt_id FROM doomed)",
        cutoff_ms, limit))
    mo = _count(await conn.execute(
        "DELETE FROM mo_messages WHERE mo_id IN (SELECT mo_id FROM mo_messages"
        " WHERE received_unix_ms < $1 ORDER BY mo_id LIMIT $2)", cutoff_ms, limit))
    return PurgeReport(len(doomed), events, receipts, mo)


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``DELETE 12``."""
    return int(status.rsplit(" ", 1)[-1])


async def requeue_sending(tx: Tx, request: Sequence[object]) -> int:
    provider, reason = cast(tuple[str, str], tuple(request))
    return _count(await tx.conn.execute(
        "WITH requeued AS (UPDATE segments SET state = 'queued'"
        "                   WHERE state = 'sending' AND provider = $3"
        "                   RETURNING tracking_id, part_index)"
        " INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
        " SELECT tracking_id, part_index, $1, 'requeued', $2 FROM requeued",
        tx.now_ms, dumps({"reason": reason}), provider))


async def recover(tx: Tx, _items: Sequence[object]) -> tuple[int, int, int, list[StoredMoPart]]:
    conn = tx.conn
    requeued = _count(await conn.execute(
        "WITH requeued AS (UPDATE segments SET state = 'queued' WHERE state = 'sending'"
        "                   RETURNING tracking_id, part_index)"
        " INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
        " SELECT tracking_id, part_index, $1, 'requeued', $2 FROM requeued",
        tx.now_ms, dumps({"reason": "sent or claimed without a recorded response before"
                                    " restart"})))
    unmatched = await conn.fetchval(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0")
    queued = await conn.fetchval("SELECT COUNT(*) FROM segments WHERE state = 'queued'")
    rows = await conn.fetch(
        f"SELECT {_MO_COLUMNS} FROM mo_parts"
        " ORDER BY provider, source, destination, reference, total, seq")
    return requeued, int(unmatched), int(queued), [stored_mo_part(r) for r in rows]


async def set_webhook_position(tx: Tx, request: Sequence[object]) -> None:
    name, cursor = cast(tuple[str, int], tuple(request))
    await tx.conn.execute(
        "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET"
        " cursor = GREATEST(webhook_positions.cursor, excluded.cursor),"
        " updated_unix_ms = excluded.updated_unix_ms", name, cursor, tx.now_ms)
