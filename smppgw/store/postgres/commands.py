"""The PostgreSQL write commands: each runs on the writer's connection inside a group's
transaction.

Set-based, as the SQLite commands, and with as few round trips as possible: a batch's rows go
to the server as one JSON text (``json_array_elements``: encoded in C here, where arrays of
parameters cost asyncpg an isinstance check per element), the reads of a batch are one query,
``rules.Batch`` decides what changes, and every write of a batch is one statement of
data-modifying CTEs. Claims take rows with ``FOR UPDATE SKIP LOCKED``, so claimers on other
connections never get the same part and never wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
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
from smppgw.store.postgres.writer import Tx
from smppgw.store.rules import (
    FINAL_SQL,
    UNDELIVERED_SQL,
    Batch,
    ParkedReceipt,
    plan_accept,
    unsent_state_sql,
)

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


def _field(index: int, sql_type: str) -> str:
    """Value ``index`` of a JSON row ``r`` as ``sql_type``."""
    if sql_type == "bytea":
        return f"decode(r->>{index}, 'hex')"
    return f"(r->>{index})::{sql_type}" if sql_type != "text" else f"r->>{index}"


class _Statement:
    """Data-modifying statements joined into one (``WITH w1 AS (...), ... last``), each with
    its rows as one JSON parameter: all the writes of a batch in one round trip. PostgreSQL
    runs every part; no row may be changed by two parts."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[object] = []

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def rows(self, rows: Sequence[Sequence[object]]) -> str:
        """``json_array_elements(...) AS r`` over ``rows``, for a FROM clause."""
        return f"json_array_elements({self.param(dumps(rows))}::json) AS r"

    def add(self, sql: str) -> None:
        self.parts.append(sql)

    async def execute(self, tx: Tx) -> None:
        if not self.parts:
            return
        *first, last = self.parts
        ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(first))
        await tx.conn.execute(f"WITH {ctes} {last}" if ctes else last, *self.params)


# --- accept --------------------------------------------------------------------------------------

_NOTE_FIELDS: Final = (("tracking_id", "text"), ("part_index", "int"), ("at_unix_ms", "bigint"),
                       ("kind", "text"), ("detail", "text"))

_MESSAGE_FIELDS: Final = (
    ("tracking_id", "text"), ("client_id", "text"), ("provider", "text"), ("source", "text"),
    ("destination", "text"), ("text", "text"), ("flash", "int"), ("data_coding", "int"),
    ("encoding", "text"), ("esm_class", "int"), ("registered_delivery", "int"),
    ("tlvs", "text"), ("created_unix_ms", "bigint"), ("updated_unix_ms", "bigint"),
    ("valid_until_unix_ms", "bigint"), ("parts", "int"), ("answer", "text"),
    ("request", "text"), ("retry_of", "text"),
)
_SEGMENT_FIELDS: Final = (
    ("tracking_id", "text"), ("part_index", "int"), ("provider", "text"),
    ("short_message", "bytea"), ("esm_class", "int"), ("data_coding", "int"),
    ("tlvs", "text"), ("created_unix_ms", "bigint"), ("next_attempt_unix_ms", "bigint"),
    ("valid_until_unix_ms", "bigint"),
)


def _insert(statement: _Statement, table: str, fields: Sequence[tuple[str, str]],
            rows: Sequence[Sequence[object]], constants: str = "",
            constant_values: str = "") -> None:
    names = ", ".join(name for name, _ in fields)
    values = ", ".join(_field(i, t) for i, (_, t) in enumerate(fields))
    statement.add(f"INSERT INTO {table} ({names}{constants})"
                  f" SELECT {values}{constant_values} FROM {statement.rows(rows)}")


async def accept(tx: Tx, messages: Sequence[object]) -> list[AcceptResult]:
    """One lookup, then one statement (both tables) for the whole batch (one more for a
    retry that moves a client id)."""
    batch = cast(Sequence[NewMessage], messages)
    client_ids = list({m.client_id for m in batch if m.client_id is not None})
    tracking_ids = list({m.tracking_id for m in batch})
    retries = list({m.retry_of for m in batch if m.retry_of is not None})
    by_client: dict[str, tuple[str, str]] = {}
    taken: dict[str, tuple[str, str]] = {}
    retried: dict[str, tuple[str, str]] = {}
    wanted_clients = set(client_ids)
    wanted_ids = set(tracking_ids)
    wanted_retries = set(retries)
    # Index lookups joined (one OR would let a plan cached while the table was small scan it).
    for client_id, tracking_id, answer, retry_of in await tx.conn.fetch(
            "SELECT client_id, tracking_id, answer, retry_of FROM messages"
            " WHERE client_id = ANY($1::text[])"
            " UNION ALL SELECT client_id, tracking_id, answer, retry_of FROM messages"
            " WHERE tracking_id = ANY($2::text[])"
            " UNION ALL SELECT client_id, tracking_id, answer, retry_of FROM messages"
            " WHERE retry_of = ANY($3::text[])", client_ids, tracking_ids, retries):
        if client_id in wanted_clients:
            by_client[client_id] = (tracking_id, answer)
        if tracking_id in wanted_ids:
            taken[tracking_id] = (tracking_id, answer)
        if retry_of in wanted_retries:
            retried[retry_of] = (tracking_id, answer)
    plan = plan_accept(batch, by_client, taken, tx.now_ms, tx.events, retried)
    if plan.released_client_ids:
        # A statement of its own, before the insert: the new attempt takes the client id (a
        # UNIQUE column), and the parts of one statement run in no set order.
        await tx.conn.execute("UPDATE messages SET client_id = NULL"
                              " WHERE tracking_id = ANY($1::text[])", plan.released_client_ids)
    if plan.message_rows:
        statement = _Statement()
        _insert(statement, "messages", _MESSAGE_FIELDS, plan.message_rows, ", state",
                ", 'queued'")
        valid_until = {row[0]: row[14] for row in plan.message_rows}
        _insert(statement, "segments", _SEGMENT_FIELDS,
                [(t, i, p, sm.hex(), e, d, tl, c, n, valid_until[t])
                 for t, i, p, sm, e, d, tl, c, n in cast(
                     Sequence[tuple[str, int, str, bytes, int, int, str, int, int]],
                     plan.segment_rows)],
                ", state", ", 'queued'")
        if plan.notes:
            _insert(statement, "message_notes", _NOTE_FIELDS, plan.notes)
        await statement.execute(tx)
    return plan.results


# --- claim ---------------------------------------------------------------------------------------

# Parts in order (interface.py, claim_segments): a part goes only with or after every part
# before it, so the dispatcher, which sends a message's parts of one claim one after another,
# never lets a later part overtake an earlier one still waiting (retry due later) or in flight.
_CLAIM_SQL: Final = """
    WITH due AS (
        SELECT s.segment_id, s.tracking_id, s.part_index
          FROM segments AS s
         WHERE s.state = 'queued' AND s.provider = $1 AND s.next_attempt_unix_ms <= $2
           AND (s.valid_until_unix_ms IS NULL OR s.valid_until_unix_ms > $2)
         ORDER BY s.next_attempt_unix_ms, s.segment_id
         LIMIT $3
           FOR UPDATE SKIP LOCKED
    ), in_order AS (
        SELECT d.segment_id FROM due AS d
         WHERE d.part_index = 0 OR NOT EXISTS (
               SELECT 1 FROM segments AS e
                WHERE e.tracking_id = d.tracking_id AND e.part_index < d.part_index
                  AND e.state IN ('queued', 'sending')
                  AND e.segment_id NOT IN (SELECT segment_id FROM due))
    )
    UPDATE segments AS s SET state = 'sending'
      FROM in_order AS due, messages AS m
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

_MODEL_SELECT: Final = """
    SELECT m.tracking_id, m.state, m.client_id, m.parts, s.segment_id, s.part_index,
           COALESCE(s.account, s.provider), s.state, s.receipt, s.smsc_message_key
      FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id
"""
_MODEL_SQL: Final = _MODEL_SELECT + """
     WHERE s.tracking_id IN (SELECT tracking_id FROM segments
                              WHERE segment_id = ANY($1::bigint[]))
"""
# Every part of the messages with a part under one of the keys in its account (every
# submitted part has its account: schema v4).
_MODEL_BY_KEYS_SQL: Final = _MODEL_SELECT + """
     WHERE s.tracking_id IN (
               SELECT k.tracking_id
                 FROM json_array_elements($1::json) AS r
                 JOIN segments AS k
                   ON k.account = r->>0 AND k.smsc_message_key = r->>1)
"""

# The PostgreSQL type of each column rules.Batch may set on a segment.
_SEGMENT_TYPES: Final = {
    "state": "text", "smsc_message_id": "text", "smsc_message_key": "text",
    "submit_status": "text", "submitted_unix_ms": "bigint", "resp_unix_ms": "bigint",
    "next_attempt_unix_ms": "bigint", "bind": "text", "last_error": "text",
    "receipt_stat": "text", "receipt_err": "text", "receipt_unix_ms": "bigint",
    "receipt": "text", "account": "text",
}


async def _write(tx: Tx, batch: Batch, statement: _Statement | None = None) -> None:
    """Every change of ``batch`` in one statement (with what ``statement`` already holds)."""
    statement = statement or _Statement()
    for columns, rows in batch.segment_updates().items():
        # Column names come from rules.SEGMENT_COLUMNS, never from input.
        sets = ", ".join(f"{c} = {_field(i, _SEGMENT_TYPES[c])}" for i, c in enumerate(columns))
        n = len(columns)
        statement.add(
            f"UPDATE segments AS s SET {sets}, attempts = s.attempts + (r->>{n})::int"
            f" FROM {statement.rows(rows)} WHERE s.segment_id = (r->>{n + 1})::bigint")
    messages = batch.message_updates()
    if messages:
        statement.add(
            "UPDATE messages AS m SET state = r->>0, updated_unix_ms = (r->>1)::bigint,"
            f" undelivered_state = CASE WHEN r->>0 IN {UNDELIVERED_SQL} THEN r->>0 END,"
            " attempts = m.attempts + (r->>2)::int,"
            " last_error = COALESCE(r->>3, m.last_error)"
            f" FROM {statement.rows(messages)} WHERE m.tracking_id = r->>4")
    if batch.notes:
        _insert(statement, "message_notes", _NOTE_FIELDS, batch.notes)
    if batch.matched_receipts:
        ids = statement.param(batch.matched_receipts)
        statement.add(f"DELETE FROM unmatched_receipt_keys WHERE receipt_id = ANY({ids}::bigint[])")
        statement.add(f"UPDATE unmatched_receipts SET matched = 1, matched_unix_ms ="
                      f" {statement.param(tx.now_ms)} WHERE receipt_id = ANY({ids}::bigint[])")
    await statement.execute(tx)


# --- submit outcomes -----------------------------------------------------------------------------

# The model of a submit batch, and on every row (as JSON, usually null) the receipts parked
# under the keys the ok outcomes carry: one round trip for both.
_SUBMIT_MODEL_SQL: Final = """
    SELECT model.*, parked.receipts
      FROM (""" + _MODEL_SQL + """) AS model,
           (SELECT json_agg(json_build_array(k.account, k.message_key, u.receipt_id,
                                             u.receipt)) AS receipts
              FROM unmatched_receipt_keys AS k
              JOIN unmatched_receipts AS u ON u.receipt_id = k.receipt_id
             WHERE k.message_key = ANY($2::text[]) AND u.matched = 0) AS parked
"""


async def record_submit_results(
    tx: Tx, items: Sequence[object]
) -> list[SubmitRecorded | None]:
    outcomes = cast(Sequence[SubmitOutcome], items)
    batch = Batch(tx.now_ms, tx.events)
    keys = list({key for o in outcomes if o.kind == "ok"
                 for key in ((o.smsc_message_key or o.smsc_message_id) or None,) if key})
    rows = await tx.conn.fetch(_SUBMIT_MODEL_SQL, [o.segment_id for o in outcomes], keys)
    batch.load(tuple(r)[:10] for r in rows)
    results = batch.record_outcomes(outcomes)
    for o, result in zip(outcomes, results, strict=True):
        if result is None:
            log.warning("submit outcome for unknown segment_id=%s ignored", o.segment_id)
    wanted = set(batch.parked_keys())
    parked = json.loads(rows[0][10]) if rows and rows[0][10] else []
    if wanted:
        batch.match_parked(results, [(p, k, i, text) for p, k, i, text in parked
                                     if (p, k) in wanted])
    await _write(tx, batch)
    return results


# --- receipts ------------------------------------------------------------------------------------

async def _park(
    tx: Tx, parked: Sequence[ParkedReceipt], statement: _Statement,
) -> None:
    """Receipts whose part is not known yet, under every lookup key: their ids first (one
    round trip), then both tables in ``statement``."""
    ids = [r[0] for r in await tx.conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('unmatched_receipts', 'receipt_id'))"
        " FROM generate_series(1, $1)", len(parked))]
    _insert(statement, "unmatched_receipts", (
        ("receipt_id", "bigint"), ("provider", "text"), ("account", "text"),
        ("message_id", "text"), ("message_key", "text"), ("receipt", "text"),
        ("received_unix_ms", "bigint")),
        [(receipt_id, p.provider, p.account, p.message_id, p.message_key, p.document,
          tx.now_ms)
         for receipt_id, p in zip(ids, parked, strict=True)])
    _insert(statement, "unmatched_receipt_keys", (
        ("provider", "text"), ("account", "text"), ("message_key", "text"),
        ("receipt_id", "bigint")),
        [(p.provider, p.account, key, receipt_id)
         for receipt_id, p in zip(ids, parked, strict=True) for key in p.keys])


async def record_receipts(tx: Tx, items: Sequence[object]) -> list[ReceiptResult]:
    """One model load for every key of the batch, the rules in order, one write statement
    (two round trips more when receipts are parked)."""
    receipts = cast(Sequence[ReceiptRecord], items)
    wanted = list(dict.fromkeys((r.correlation, key) for r in receipts for key in r.keys))
    batch = Batch(tx.now_ms, tx.events)
    batch.load(await tx.conn.fetch(_MODEL_BY_KEYS_SQL, dumps(wanted)))
    results: list[ReceiptResult] = []
    parked: list[ParkedReceipt] = []
    for r, part in zip(receipts, batch.choose(receipts), strict=True):
        if part is None:
            parked.append(Batch.park(r))
            results.append(ReceiptResult(False))
        else:
            results.append(batch.apply_receipt(part, r))
    statement = _Statement()
    if parked:
        await _park(tx, parked, statement)
    await _write(tx, batch, statement)
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


_UNKNOWN_REASON: Final = ("no receipt can be matched: the SMSC answered ESME_ROK without a "
                          "message id")
# Messages whose receipt can never be matched (a part without a message id): 'unknown' once
# their validity runs out, found through segments_unmatchable (see the SQLite command).
_UNMATCHABLE_SQL: Final = (
    "SELECT DISTINCT m.tracking_id, m.client_id, m.state"
    "  FROM segments AS s JOIN messages AS m ON m.tracking_id = s.tracking_id"
    " WHERE s.smsc_message_key IS NULL AND s.state IN ('submitted', 'accepted')"
    "   AND s.valid_until_unix_ms <= $1"
    "   AND m.state IN ('submitted', 'accepted') AND (m.registered_delivery & 1) = 1"
    " LIMIT $2")


async def expire(tx: Tx, request: Sequence[object]) -> int:
    """Queued messages past their validity → 'expired'; submitted ones whose receipt can
    never be matched → 'unknown'. Returns how many messages ended."""
    now_ms, limit = cast(tuple[int, int], tuple(request))
    return await _expire_queued(tx, now_ms, limit) + await _end_unmatchable(tx, now_ms, limit)


async def _end_unmatchable(tx: Tx, now_ms: int, limit: int) -> int:
    rows = await tx.conn.fetch(_UNMATCHABLE_SQL, now_ms, limit)
    if not rows:
        return 0
    await tx.conn.execute(
        "UPDATE segments SET state = 'unknown', last_error = $1"
        " WHERE tracking_id = ANY($2::text[]) AND smsc_message_key IS NULL"
        " AND state IN ('submitted', 'accepted')", _UNKNOWN_REASON, [r[0] for r in rows])
    batch = Batch(tx.now_ms, tx.events)
    for tracking_id, client_id, state in rows:
        batch.unknown(tracking_id, client_id, state, _UNKNOWN_REASON)
    await _write(tx, batch)
    return len(rows)


async def _expire_queued(tx: Tx, now_ms: int, limit: int) -> int:
    rows = await tx.conn.fetch(
        "SELECT m.tracking_id, m.client_id FROM messages AS m"
        " WHERE m.tracking_id IN (SELECT tracking_id FROM segments"
        "                          WHERE state = 'queued' AND valid_until_unix_ms <= $1"
        "                          ORDER BY valid_until_unix_ms LIMIT $2)"
        " AND m.state = 'queued'"
        # A part in flight decides for itself (see the SQLite command).
        " AND NOT EXISTS (SELECT 1 FROM segments AS s"
        "                 WHERE s.tracking_id = m.tracking_id AND s.state = 'sending')",
        now_ms, limit)
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
    # By age of creation (an index that a state change does not touch); last changed before
    # the cutoff too.
    doomed = [r[0] for r in await conn.fetch(
        "SELECT tracking_id FROM messages WHERE created_unix_ms < $1 AND updated_unix_ms < $1"
        f" AND state IN {FINAL_SQL}"
        " ORDER BY created_unix_ms LIMIT $2", cutoff_ms, limit)]
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


# A part left 'sending' goes back to the queue, unless its message ended meanwhile (cancelled,
# or failed by another part): rules.unsent_state, in SQL.
_REQUEUE_SQL: Final = f"""
    WITH ended AS (
        UPDATE segments AS s SET state = {unsent_state_sql("m.state")}
          FROM messages AS m
         WHERE m.tracking_id = s.tracking_id AND s.state = 'sending'
           AND ($3::text IS NULL OR s.provider = $3)
        RETURNING s.tracking_id, s.part_index, s.state
    )
    INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)
    SELECT tracking_id, part_index, $1, 'requeued', $2 FROM ended WHERE state = 'queued'
"""


async def requeue_sending(tx: Tx, request: Sequence[object]) -> int:
    provider, reason = cast(tuple[str, str], tuple(request))
    return _count(await tx.conn.execute(_REQUEUE_SQL, tx.now_ms, dumps({"reason": reason}),
                                        provider))


async def adopt_accounts(tx: Tx, request: Sequence[object]) -> int:
    """``request`` = ((provider, account key), ...): the rows whose account is still their
    provider's name (schema v4 put it there) take the key. Uses the account indexes."""
    changed = 0
    for provider, account in cast(Sequence[tuple[str, str]], request):
        for table in ("segments", "unmatched_receipts", "unmatched_receipt_keys"):
            # Table names from this tuple, never from input.
            changed += _count(await tx.conn.execute(
                f"UPDATE {table} SET account = $1 WHERE account = $2 AND provider = $2",
                account, provider))
    return changed


async def recover(tx: Tx, _items: Sequence[object]) -> tuple[int, int, int, list[StoredMoPart]]:
    conn = tx.conn
    requeued = _count(await conn.execute(
        _REQUEUE_SQL, tx.now_ms,
        dumps({"reason": "sent or claimed without a recorded response before restart"}), None))
    unmatched = await conn.fetchval(
        "SELECT COUNT(*) FROM unmatched_receipts WHERE matched = 0")
    queued = await conn.fetchval("SELECT COUNT(*) FROM segments WHERE state = 'queued'")
    rows = await conn.fetch(
        f"SELECT {_MO_COLUMNS} FROM mo_parts"
        " ORDER BY provider, source, destination, reference, total, seq")
    return requeued, int(unmatched), int(queued), [stored_mo_part(r) for r in rows]


async def move_messages(tx: Tx, request: Sequence[object]) -> int:
    """Failover: each message still all queued with its old provider gets its new parts,
    provider, sender, encoding and TLVs, and a 'failover' note (see the SQLite command)."""
    conn = tx.conn
    moved = 0
    for move in cast(Sequence[MessageMove], request):
        m = move.message
        row = await conn.fetchrow(
            "SELECT created_unix_ms, valid_until_unix_ms FROM messages AS msg"
            " WHERE tracking_id = $1 AND provider = $2 AND state = 'queued'"
            " AND NOT EXISTS (SELECT 1 FROM segments AS s"
            "       WHERE s.tracking_id = msg.tracking_id AND s.state <> 'queued')"
            " FOR UPDATE", m.tracking_id, move.from_provider)
        if row is None:
            continue
        created, valid_until = row
        await conn.execute("DELETE FROM segments WHERE tracking_id = $1", m.tracking_id)
        await conn.executemany(
            "INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,"
            " data_coding, tlvs, state, created_unix_ms, next_attempt_unix_ms,"
            " valid_until_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10)",
            [(m.tracking_id, i, m.provider, s.short_message, s.esm_class, s.data_coding,
              tlvs_to_json(s.tlvs), created, tx.now_ms, valid_until)
             for i, s in enumerate(m.segments)])
        await conn.execute(
            "UPDATE messages SET provider = $1, source = $2, data_coding = $3, encoding = $4,"
            " flash = $5, esm_class = $6, registered_delivery = $7, tlvs = $8, parts = $9,"
            " updated_unix_ms = $10 WHERE tracking_id = $11",
            m.provider, m.source, m.data_coding, m.encoding, int(m.flash), m.esm_class,
            m.registered_delivery, tlvs_to_json(m.tlvs), len(m.segments), tx.now_ms,
            m.tracking_id)
        await conn.execute(
            "INSERT INTO message_notes (tracking_id, part_index, at_unix_ms, kind, detail)"
            " VALUES ($1, NULL, $2, 'failover', $3)",
            m.tracking_id, tx.now_ms, dumps({"from": move.from_provider, "to": m.provider,
                                              "reason": move.reason}))
        moved += 1
    return moved


# --- operator commands ---------------------------------------------------------------------------

# The message's parts, locked: a claimer on another connection (SKIP LOCKED) passes them by
# until this transaction ends, and the states read here are the ones the update changes.
_CANCEL_MODEL_SQL: Final = _MODEL_SELECT + """
     WHERE s.tracking_id = $1
       FOR UPDATE OF s, m
"""


async def cancel(tx: Tx, request: Sequence[object]) -> CancelResult | None:
    """``request`` = (tracking_id, reason, not_sent): the message's parts loaded and locked,
    rules.Batch.cancel, written back."""
    tracking_id, reason, not_sent = cast(tuple[str, str, frozenset[int]], tuple(request))
    batch = Batch(tx.now_ms, tx.events)
    batch.load(await tx.conn.fetch(_CANCEL_MODEL_SQL, tracking_id))
    result = batch.cancel(tracking_id, reason, not_sent)
    await _write(tx, batch)
    return result


async def record_cancel_sm(tx: Tx, request: Sequence[object]) -> MessageState | None:
    """``request`` = (tracking_id, answers, reason): rules.Batch.cancel_on_smsc, the parts
    loaded and locked as for a cancel."""
    tracking_id, answers, reason = cast(
        tuple[str, tuple[tuple[int, str, bool], ...], str], tuple(request))
    batch = Batch(tx.now_ms, tx.events)
    batch.load(await tx.conn.fetch(_CANCEL_MODEL_SQL, tracking_id))
    state = batch.cancel_on_smsc(tracking_id, answers, reason)
    await _write(tx, batch)
    return state


async def set_provider_paused(tx: Tx, request: Sequence[object]) -> ProviderPause | None:
    provider, paused = cast(tuple[str, bool], tuple(request))
    if not paused:
        await tx.conn.execute("DELETE FROM provider_pauses WHERE provider = $1", provider)
        return None
    since = await tx.conn.fetchval(
        "WITH added AS (INSERT INTO provider_pauses (provider, paused_unix_ms)"
        "               VALUES ($1, $2) ON CONFLICT (provider) DO NOTHING"
        "               RETURNING paused_unix_ms)"
        " SELECT paused_unix_ms FROM added"
        " UNION ALL SELECT paused_unix_ms FROM provider_pauses WHERE provider = $1",
        provider, tx.now_ms)
    return ProviderPause(provider, wall(cast(int, since)))


async def set_webhook_position(tx: Tx, request: Sequence[object]) -> None:
    name, cursor = cast(tuple[str, int], tuple(request))
    await tx.conn.execute(
        "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET"
        " cursor = GREATEST(webhook_positions.cursor, excluded.cursor),"
        " updated_unix_ms = excluded.updated_unix_ms", name, cursor, tx.now_ms)
