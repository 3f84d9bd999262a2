"""The store's domain rules, shared by both backends: a message's state from its parts, what a
submit outcome or a receipt does to a part and its message, which events and notes record it.

Pure: a backend loads the rows a batch touches into a ``Batch``, applies the batch's outcomes
or receipts to it in order, and writes back what ``Batch`` lists, with set-based statements.
No SQL, no I/O, no clock here (the group's instant is passed in); the backends differ only in
how they read, write, commit and wait.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from smppgw.store.encoding import (
    TRACKING_ID,
    Row,
    dumps,
    iso,
    json_str,
    load_object,
    ms,
    receipt_from_json,
    receipt_to_json,
    tlvs_to_json,
)
from smppgw.store.models import (
    FINAL_MESSAGE_STATES,
    UNDELIVERED_STATES,
    AcceptResult,
    CancelResult,
    EventType,
    MessageState,
    NewMessage,
    ReceiptRecord,
    ReceiptResult,
    SubmitOutcome,
    SubmitRecorded,
)

__all__ = [
    "FINAL_SQL",
    "SEGMENT_COLUMNS",
    "UNDELIVERED_SQL",
    "AcceptPlan",
    "Batch",
    "EventLog",
    "ModelRow",
    "ParkedReceipt",
    "Part",
    "derive_message_state",
    "error_text",
    "plan_accept",
    "unsent_state",
    "unsent_state_sql",
]

# --- the message state rule ----------------------------------------------------------------------

# How far a part has come. Only forward moves are applied, so a late or reordered receipt
# (ACCEPTD after DELIVRD) never moves a part back.
_RANK: Final[Mapping[str, int]] = {
    "queued": 0, "sending": 0, "submitted": 1, "accepted": 2,
    "delivered": 3, "undeliverable": 3, "expired": 3, "rejected": 3, "failed": 3,
    "unknown": 3, "cancelled": 3,
}
# When every part is final and not all were delivered, the message takes the first of these
# that any part has: the most definite refusal wins, whatever the part order.
_FINAL_PRECEDENCE: Final = ("failed", "rejected", "undeliverable", "expired", "unknown")
_RECEIPT_SEGMENT_STATE: Final[Mapping[str, str]] = {
    "accepted": "accepted", "delivered": "delivered", "undeliverable": "undeliverable",
    "expired": "expired", "rejected": "rejected",
}


# The state of a message of one part in each state of that part (the rule below, precomputed:
# most messages have one part).
_ALONE: Final[Mapping[str, MessageState]] = {
    "queued": "queued", "sending": "queued", "submitted": "submitted", "accepted": "accepted",
    "delivered": "delivered", "undeliverable": "undeliverable", "expired": "expired",
    "rejected": "rejected", "failed": "failed", "unknown": "unknown",
    "cancelled": "cancelled",
}


def derive_message_state(segment_states: Iterable[str]) -> MessageState:
    """The state of a message from the states of all its parts.

    - any part 'failed' (the SMSC refused it permanently) → 'failed' at once;
    - any part 'cancelled' (never sent: the operator cancelled the message) → 'cancelled';
    - every part final: all 'delivered' → 'delivered', else the first of rejected,
      undeliverable, expired that some part has (a multi-part message is delivered only when
      every part is);
    - otherwise the least advanced part decides: some part queued or sending → 'queued',
      some part only submitted → 'submitted', else (all accepted or final) → 'accepted'.
    """
    states = segment_states if isinstance(segment_states, list) else list(segment_states)
    if len(states) == 1:
        return _ALONE[states[0]]
    if not states:
        return "queued"
    if "failed" in states:
        return "failed"
    if "cancelled" in states:
        return "cancelled"
    least = min(_RANK[s] for s in states)
    if least == 3:
        for final in _FINAL_PRECEDENCE:
            if final in states:
                return final
        return "delivered"
    if least == 0:
        return "queued"
    if least == 1:
        return "submitted"
    return "accepted"


def error_text(o: SubmitOutcome) -> str:
    """The part's and message's ``last_error`` for a refused or retried submit."""
    parts = [p for p in (o.status_name, o.error) if p]
    if o.command_status is not None and o.status_name is None:
        parts.insert(0, f"command_status=0x{o.command_status:08x}")
    return ": ".join(parts) or o.kind


# --- the event log of one group ------------------------------------------------------------------


class EventLog:
    """The events one group commit appends, in order. They get their cursors only at the end of
    the group, in one statement, so the cursor order is the commit order on both backends
    (PostgreSQL takes its counter row lock just before COMMIT). ``mark``/``truncate`` drop the
    events of a command that failed."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        #: (type, tracking_id, client_id, state, payload JSON text)
        self.rows: list[tuple[EventType, str | None, str | None, str | None, str]] = []

    def add(
        self, type_: EventType, tracking_id: str | None, client_id: str | None,
        state: str | None, payload: str,
    ) -> int:
        """Append one event; its index in this group (its cursor is first cursor + index)."""
        self.rows.append((type_, tracking_id, client_id, state, payload))
        return len(self.rows) - 1

    def __len__(self) -> int:
        return len(self.rows)

    def truncate(self, mark: int) -> None:
        del self.rows[mark:]


# --- accept --------------------------------------------------------------------------------------


@dataclass(slots=True)
class AcceptPlan:
    """What a batch of new messages writes: per message its result, the message and segment
    rows, and for retries the old messages whose client id moves to their new attempt
    (``released_client_ids``: cleared before the inserts) and the notes linking them."""

    results: list[AcceptResult] = field(default_factory=list)
    message_rows: list[tuple[object, ...]] = field(default_factory=list)
    segment_rows: list[tuple[object, ...]] = field(default_factory=list)
    released_client_ids: list[str] = field(default_factory=list)
    notes: list[tuple[str, int | None, int, str, str]] = field(default_factory=list)


def plan_accept(
    messages: Sequence[NewMessage],
    by_client: dict[str, tuple[str, str]],
    taken: dict[str, tuple[str, str]],
    now_ms: int,
    events: EventLog,
    retried: dict[str, tuple[str, str]] | None = None,
) -> AcceptPlan:
    """Results and rows for a batch of new messages.

    ``by_client`` and ``taken`` map the client ids and tracking ids already stored to
    (tracking_id, answer JSON); ``retried`` maps the tracking ids already retried to their
    retry's (tracking_id, answer JSON). They are updated, so later messages of the batch see
    earlier ones (same client id → duplicate). A retry (``retry_of``) of a message already
    retried answers that retry's answer; otherwise it takes the old message's client id. Message
    rows: (tracking_id, client_id, provider, source, destination, text, flash, data_coding,
    encoding, esm_class, registered_delivery, tlvs, created, updated, valid_until, parts,
    answer, request, retry_of); segment rows: (tracking_id, part_index, provider,
    short_message, esm_class, data_coding, tlvs, created, next_attempt).
    """
    out = AcceptPlan()
    results = out.results
    retried = {} if retried is None else retried
    event = events.rows.append
    for m in messages:
        if m.retry_of is not None and m.retry_of in retried:
            tracking_id, answer_json = retried[m.retry_of]
            results.append(AcceptResult(tracking_id, m.client_id, load_object(answer_json),
                                        duplicate=True))
            continue
        moves_client_id = False
        if m.client_id is not None and m.client_id in by_client:
            owner, answer_json = by_client[m.client_id]
            if m.retry_of is None or owner != m.retry_of:
                results.append(AcceptResult(owner, m.client_id, load_object(answer_json),
                                            duplicate=True))
                continue
            moves_client_id = True   # the old attempt gives its id to the new one
        problem = None
        if not TRACKING_ID.fullmatch(m.tracking_id):
            problem = "tracking_id must be 32 lower-case hex characters"
        elif not m.segments:
            problem = "a message needs at least one segment"
        elif m.tracking_id in taken:
            problem = f"tracking_id {m.tracking_id} is already in use"
        elif m.retry_of is not None and not TRACKING_ID.fullmatch(m.retry_of):
            problem = "retry_of must be a tracking id (32 lower-case hex characters)"
        if problem is not None:
            results.append(AcceptResult(m.tracking_id, m.client_id, {}, error=problem))
            continue
        parts = len(m.segments)
        answer: Mapping[str, object] = (
            m.answer if m.answer is not None else
            {"tracking_id": m.tracking_id, "accepted": True, "segments": parts,
             "data_coding": m.data_coding}
        )
        answer_json = dumps(answer)
        taken[m.tracking_id] = (m.tracking_id, answer_json)
        if m.client_id is not None:
            by_client[m.client_id] = (m.tracking_id, answer_json)
        if moves_client_id:
            out.released_client_ids.append(cast(str, m.retry_of))
        out.message_rows.append((
            m.tracking_id, m.client_id, m.provider, m.source, m.destination, m.text,
            int(m.flash), m.data_coding, m.encoding, m.esm_class, m.registered_delivery,
            tlvs_to_json(m.tlvs), now_ms, now_ms,
            ms(m.valid_until_wall) if m.valid_until_wall is not None else None,
            parts, answer_json, dumps(m.request) if m.request else "{}", m.retry_of))
        out.segment_rows.extend(
            (m.tracking_id, i, m.provider, s.short_message, s.esm_class, s.data_coding,
             tlvs_to_json(s.tlvs), now_ms, now_ms)
            for i, s in enumerate(m.segments))
        if m.retry_of is None:
            event(("state", m.tracking_id, m.client_id, "queued", f'{{"segments":{parts}}}'))
        else:
            retried[m.retry_of] = (m.tracking_id, answer_json)
            event(("state", m.tracking_id, m.client_id, "queued",
                   f'{{"segments":{parts},"retry_of":"{m.retry_of}"}}'))
            out.notes.append((m.retry_of, None, now_ms, "retried",
                              f'{{"tracking_id":"{m.tracking_id}"}}'))
        results.append(AcceptResult(m.tracking_id, m.client_id, answer))
    return out


# --- submit outcomes and receipts ----------------------------------------------------------------

def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


#: The states kept in ``messages.undelivered_state`` (models.UNDELIVERED_STATES), as an SQL
#: list: ``undelivered_state = CASE WHEN state IN <this> THEN state END`` on every write of a
#: message's state.
UNDELIVERED_SQL: Final = _sql_list(UNDELIVERED_STATES)
#: The final message states as an SQL list (retention deletes only these).
FINAL_SQL: Final = _sql_list(FINAL_MESSAGE_STATES)



def unsent_state_sql(message_state: str) -> str:
    """``unsent_state`` as an SQL expression over the column (or expression) holding the
    message's state, for the statements that queue parts again in bulk (recovery)."""
    return (f"CASE WHEN {message_state} = 'cancelled' THEN 'cancelled'"
            f" WHEN {message_state} IN {FINAL_SQL} THEN 'failed' ELSE 'queued' END")


#: Columns of ``segments`` a batch may set; the backends build their UPDATEs from these names.
SEGMENT_COLUMNS: Final = frozenset({
    "state", "smsc_message_id", "smsc_message_key", "submit_status", "submitted_unix_ms",
    "resp_unix_ms", "next_attempt_unix_ms", "bind", "last_error", "receipt_stat", "receipt_err",
    "receipt_unix_ms", "receipt", "account",
})

#: One row of the model query: (tracking_id, message state, client_id, parts, segment_id,
#: part_index, correlation space (the part's account, else its provider), segment state,
#: receipt document or None, smsc_message_key or None), one per part of a message.
ModelRow = tuple[str, str, "str | None", int, int, int, str, str, "str | None", "str | None"]


@dataclass(slots=True)
class Part:
    """A segment as the rules see it."""

    segment_id: int
    tracking_id: str
    part_index: int
    account: str                     # where receipts for it are matched (see ModelRow)
    state: str
    receipt: str | None
    key: str | None = None


@dataclass(slots=True)
class _Message:
    tracking_id: str
    state: str                       # as of now in this batch
    client_id: str | None
    parts: int
    members: list[Part] = field(default_factory=list)
    attempts: int = 0                # to add to the stored count
    last_error: str | None = None
    touched: bool = False


@dataclass(frozen=True, slots=True)
class ParkedReceipt:
    """A receipt stored until the submit result with its id is recorded: kept under its
    account's keys, with the provider whose bind it came on."""

    provider: str
    account: str
    message_id: str
    message_key: str
    document: str                    # the whole ReceiptRecord, JSON
    keys: tuple[str, ...]            # every lookup key, deduplicated


@dataclass(frozen=True, slots=True)
class _PendingMatch:
    index: int                       # in the outcome results
    segment_id: int
    account: str
    key: str


class Batch:
    """The messages one batch touches, loaded by the backend, and what the batch does to them.

    Apply outcomes, receipts and expiries in order; then write ``segment_updates()``,
    ``message_updates()``, ``notes`` and the events. The result of each call is what the
    caller is told once the group commits.
    """

    def __init__(self, now_ms: int, events: EventLog) -> None:
        self.now_ms = now_ms
        self.events = events
        self._event = events.rows.append   # the hot path appends without a call of its own
        self.parts: dict[int, Part] = {}
        self._messages: dict[str, _Message] = {}
        self._segment_changes: dict[int, dict[str, object]] = {}
        self._segment_attempts: dict[int, int] = {}
        #: (tracking_id, part_index, at_unix_ms, kind, detail JSON) for message_notes
        self.notes: list[tuple[str, int | None, int, str, str]] = []
        #: ids of parked receipts applied by this batch
        self.matched_receipts: list[int] = []
        self._pending: list[_PendingMatch] = []

    # --- loading -------------------------------------------------------------------------------

    def load(self, rows: Iterable[Row]) -> None:
        """Add model rows (see ModelRow); messages already loaded keep their batch state."""
        messages = self._messages
        parts = self.parts
        for (tracking_id, message_state, client_id, count, segment_id, part_index, account,
             state, receipt, key) in rows:
            message = messages.get(tracking_id)
            if message is None:
                message = messages[tracking_id] = _Message(
                    tracking_id, message_state, client_id, count)
            elif segment_id in parts:
                continue
            part = Part(segment_id, tracking_id, part_index, account, state, receipt, key)
            message.members.append(part)
            parts[segment_id] = part

    # --- submit outcomes -----------------------------------------------------------------------

    def record_outcome(self, o: SubmitOutcome) -> SubmitRecorded | None:
        """What one submit outcome does; None for a segment the batch did not load (unknown).

        A part may have left 'sending' meanwhile (its message expired or another part failed):
        the result is still recorded, only a waiting part changes state. A part the SMSC did
        not take goes back to the queue, unless its message ended meanwhile (cancelled, or
        failed by another part): then it is never sent again (``unsent_state``).
        """
        part = self.parts.get(o.segment_id)
        if part is None:
            return None
        message = self._messages[part.tracking_id]
        now = self.now_ms
        sent_ms = ms(o.sent_at_wall) if o.sent_at_wall is not None else now
        waiting = part.state in ("queued", "sending")
        if o.kind == "released":
            if waiting:
                retry_ms = ms(o.retry_at_wall) if o.retry_at_wall is not None else now
                self._set(part, state=unsent_state(message.state),
                          next_attempt_unix_ms=retry_ms)
            return SubmitRecorded(cast(MessageState, message.state))
        if o.kind == "ok":
            smsc_id = o.smsc_message_id or ""
            # An empty id (seen from broken SMSCs) gets no key: it must not match receipts.
            key = (o.smsc_message_key or smsc_id) or None
            # The account that answered: its receipts find the part, whatever table or bind
            # they arrive on (a part with no account is its provider's, as the row says).
            if o.account is not None:
                part.account = o.account
            self._set(part, attempt=True, state="submitted" if waiting else part.state,
                      smsc_message_id=smsc_id, smsc_message_key=key,
                      submit_status=o.status_name or "ESME_ROK", submitted_unix_ms=sent_ms,
                      resp_unix_ms=now, bind=o.bind, last_error=None, account=part.account)
            before = message.state
            state = self._update_message(message, f'"part":{part.part_index}', attempt=True)
            # The last part accepted moves the message on from 'queued' (to 'submitted', or
            # further when its other parts' receipts came first): its submit answer is ROK.
            answered = 0 if before == "queued" and state not in ("queued", "failed") else None
            if key is not None:
                self._pending.append(_PendingMatch(-1, part.segment_id, part.account, key))
            return SubmitRecorded(state, answered)
        if o.kind == "transient":
            retry_ms = ms(o.retry_at_wall) if o.retry_at_wall is not None else now
            error = error_text(o)
            self._set(part, attempt=True,
                      state=unsent_state(message.state) if waiting else part.state,
                      next_attempt_unix_ms=retry_ms, submit_status=o.status_name,
                      submitted_unix_ms=sent_ms, resp_unix_ms=now, bind=o.bind,
                      last_error=error)
            self._note(part.tracking_id, part.part_index, "retry", {
                "status": o.status_name, "command_status": o.command_status, "error": o.error,
                "bind": o.bind, "retry_at": iso(retry_ms)})
            return SubmitRecorded(self._update_message(message, "", attempt=True,
                                                       last_error=error))
        # permanent
        status = o.status_name or "permanent failure"
        error = error_text(o)
        self._set(part, attempt=True, state="failed", submit_status=o.status_name,
                  submitted_unix_ms=sent_ms, resp_unix_ms=now, bind=o.bind, last_error=error)
        # A concatenated message missing a part is useless: the parts still waiting are not
        # sent. Parts already in flight keep whatever their results say.
        cancelled = 0
        for sibling in message.members:
            if sibling.state == "queued":
                self._set(sibling, state="failed",
                          last_error=f"cancelled: part {part.part_index} refused ({status})")
                cancelled += 1
        if cancelled:
            self._note(part.tracking_id, part.part_index, "cancelled",
                       {"parts": cancelled, "because": status})
        before = message.state
        state = self._update_message(
            message, _fields({"part": part.part_index, "error": status,
                              "command_status": o.command_status, "detail": o.error}),
            attempt=True, last_error=error)
        refused = (before not in FINAL_MESSAGE_STATES and state == "failed"
                   and o.command_status is not None)
        return SubmitRecorded(state, o.command_status if refused else None)

    def record_outcomes(self, outcomes: Sequence[SubmitOutcome]) -> list[SubmitRecorded | None]:
        """record_outcome for each; the ok ones with a key are remembered for
        ``match_parked`` (``parked_keys`` lists what to look up)."""
        results: list[SubmitRecorded | None] = []
        for o in outcomes:
            pending = len(self._pending)
            results.append(self.record_outcome(o))
            if len(self._pending) > pending:
                match = self._pending[-1]
                self._pending[-1] = _PendingMatch(len(results) - 1, match.segment_id,
                                                  match.account, match.key)
        return results

    def parked_keys(self) -> list[tuple[str, str]]:
        """(account, key) of the parts just submitted: where parked receipts may wait."""
        return list(dict.fromkeys((p.account, p.key) for p in self._pending))

    def match_parked(
        self, results: list[SubmitRecorded | None],
        parked: Iterable[tuple[str, str, int, str]],
    ) -> None:
        """Apply receipts parked under the keys of the parts just submitted, oldest first.

        ``parked``: (account, key, receipt_id, receipt JSON) of every open parked receipt under
        ``parked_keys()``. A receipt is applied once, to the first part whose key finds it; each
        submit result then reports its message's state after those receipts.
        """
        waiting: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for account, key, receipt_id, text in parked:
            waiting.setdefault((account, key), []).append((receipt_id, text))
        if not waiting:
            self._pending.clear()
            return
        taken: set[int] = set(self.matched_receipts)
        for pending in self._pending:
            found = sorted(waiting.get((pending.account, pending.key), ()))
            state: MessageState | None = None
            for receipt_id, text in found:
                if receipt_id in taken:
                    continue
                taken.add(receipt_id)
                self.matched_receipts.append(receipt_id)
                state = self.apply_receipt(self.parts[pending.segment_id],
                                           receipt_from_json(text)).message_state
            recorded = results[pending.index]
            if state is not None and recorded is not None:
                results[pending.index] = SubmitRecorded(state, recorded.answered)
        self._pending.clear()

    # --- receipts ------------------------------------------------------------------------------

    def apply_receipt(self, part: Part, r: ReceiptRecord) -> ReceiptResult:
        """A receipt for a known part: only forward (accepted < final), a 'receipt' event, and
        a 'state' event when the message state changes. The same receipt again (the SMSC
        resent it because it did not get our deliver_sm_resp) changes nothing."""
        message = self._messages[part.tracking_id]
        # Built from pieces (the same text dumps() gives for the dict in this key order): the
        # details are encoded once, for the part's document and for the event.
        details = dumps(dict(r.details))
        message_id, stat, err = json_str(r.message_id), json_str(r.stat), json_str(r.err)
        final = "true" if r.final else "false"
        document = (f'{{"message_id":{message_id},"stat":{stat},"err":{err},'
                    f'"outcome":"{r.outcome}","final":{final},'
                    f'"bind":{json_str(r.bind) if r.bind is not None else "null"},'
                    f'"details":{details}}}')
        if document == part.receipt:
            return ReceiptResult(True, part.tracking_id, part.part_index,
                                 cast(MessageState, message.state), duplicate=True)
        new_state = part.state
        target = _RECEIPT_SEGMENT_STATE.get(r.outcome)
        if target is not None and _RANK[part.state] < 3 and _RANK[target] > _RANK[part.state]:
            new_state = target
        self._set(part, state=new_state, receipt_stat=r.stat, receipt_err=r.err,
                  receipt_unix_ms=self.now_ms, receipt=document)
        part.receipt = document
        derived = self._derive(message)
        self._event(("receipt", part.tracking_id, message.client_id, derived, (
            f'{{"part":{part.part_index},"parts":{message.parts},'
            f'"provider":{json_str(r.provider)},"message_id":{message_id},"stat":{stat},'
            f'"err":{err},"outcome":"{r.outcome}","final":{final},"receipt":{details}}}')))
        self._update_message(message, f'"part":{part.part_index},"stat":{stat},"err":{err}')
        return ReceiptResult(True, part.tracking_id, part.part_index, derived)

    @staticmethod
    def park(r: ReceiptRecord) -> ParkedReceipt:
        """A receipt whose part is not (yet) known: kept under every lookup key."""
        keys = tuple(dict.fromkeys(r.keys))
        return ParkedReceipt(r.provider, r.correlation, r.message_id, keys[0],
                             receipt_to_json(r), keys)

    def choose(self, receipts: Sequence[ReceiptRecord]) -> list[Part | None]:
        """The part each receipt is about, among the parts loaded (load the messages of every
        part with any of the receipts' keys in their account): the first of its keys that finds
        one wins, and of several parts with that key the newest (an SMSC that reuses ids
        reuses old ones)."""
        newest: dict[tuple[str, str], Part] = {}
        for part in self.parts.values():
            if part.key is not None:
                known = newest.get((part.account, part.key))
                if known is None or part.segment_id > known.segment_id:
                    newest[(part.account, part.key)] = part
        chosen: list[Part | None] = []
        for r in receipts:
            found = None
            space = r.correlation
            for key in r.keys:
                found = newest.get((space, key))
                if found is not None:
                    break
            chosen.append(found)
        return chosen

    # --- cancel --------------------------------------------------------------------------------

    def cancel(
        self, tracking_id: str, reason: str, not_sent: Collection[int] = (),
    ) -> CancelResult | None:
        """Cancel a loaded message (see Store.cancel_message): its 'queued' parts, and its
        'sending' ones in ``not_sent`` (withdrawn unwritten), become 'cancelled', the message
        'cancelled' with a 'state' event listing where each part stands. None when the
        message was not loaded (unknown)."""
        message = self._messages.get(tracking_id)
        if message is None:
            return None
        state = cast(MessageState, message.state)
        if state in FINAL_MESSAGE_STATES and state != "cancelled":
            return CancelResult(tracking_id, "final", state)
        members = sorted(message.members, key=lambda p: p.part_index)
        if state == "cancelled":
            return CancelResult(tracking_id, "already_cancelled", state, *_positions(members))
        waiting = [p for p in members if p.state == "queued"
                   or (p.state == "sending" and p.segment_id in not_sent)]
        if not waiting and all(p.state != "sending" for p in members):
            return CancelResult(tracking_id, "all_sent", state, *_positions(members))
        for part in waiting:
            self._set(part, state="cancelled", last_error=f"cancelled: {reason}")
        message.state = "cancelled"
        message.touched = True
        message.last_error = f"cancelled: {reason}"
        not_sent, in_flight, sent = _positions(members)
        self._event(("state", tracking_id, message.client_id, "cancelled", dumps({
            "previous": state, "reason": reason, "not_sent": list(not_sent),
            "in_flight": list(in_flight), "sent": list(sent)})))
        return CancelResult(tracking_id, "cancelled", "cancelled", not_sent, in_flight, sent)

    def cancel_on_smsc(
        self, tracking_id: str, answers: Sequence[tuple[int, str, bool]], reason: str,
    ) -> MessageState | None:
        """The SMSC's answers to cancel_sm (see Store.record_cancel_sm). None when the
        message was not loaded (unknown)."""
        message = self._messages.get(tracking_id)
        if message is None:
            return None
        by_index = {p.part_index: p for p in message.members}
        stopped: list[int] = []
        for part_index, status, cancelled in answers:
            part = by_index.get(part_index)
            if part is None:
                continue
            self._note(tracking_id, part_index, "cancel_sm", {"status": status})
            if cancelled and part.state in ("submitted", "accepted"):
                self._set(part, state="cancelled", last_error="cancelled on the SMSC")
                stopped.append(part_index)
        previous = cast(MessageState, message.state)
        if stopped and previous not in FINAL_MESSAGE_STATES:
            message.state = "cancelled"
            message.touched = True
            message.last_error = f"cancelled: {reason}"
            self._event(("state", tracking_id, message.client_id, "cancelled", dumps({
                "previous": previous, "reason": reason, "cancelled_at_smsc": stopped})))
        return cast(MessageState, message.state)

    # --- expiry --------------------------------------------------------------------------------

    def expire(self, tracking_id: str, client_id: str | None, reason: str) -> None:
        """A queued message past its validity: 'expired', with its 'state' event. (The backend
        expires its waiting parts with one statement.)"""
        message = self._messages.setdefault(
            tracking_id, _Message(tracking_id, "queued", client_id, 0))
        message.state = "expired"
        message.touched = True
        message.last_error = reason
        self.events.add("state", tracking_id, client_id, "expired",
                        f'{{"previous":"queued","reason":{json_str(reason)}}}')

    def unknown(self, tracking_id: str, client_id: str | None, previous: str,
                reason: str) -> None:
        """A message whose receipt can never be matched (a part submitted without a message
        id) past its validity: 'unknown', with its 'state' event. (The backend marks its
        unmatchable parts with one statement.)"""
        message = self._messages.setdefault(
            tracking_id, _Message(tracking_id, previous, client_id, 0))
        message.state = "unknown"
        message.touched = True
        message.last_error = reason
        self.events.add("state", tracking_id, client_id, "unknown",
                        f'{{"previous":{json_str(previous)},"reason":{json_str(reason)}}}')

    # --- what to write -------------------------------------------------------------------------

    def segment_updates(self) -> dict[tuple[str, ...], list[tuple[object, ...]]]:
        """Rows per column set: {(column, ...): [(value, ..., attempts to add, segment_id)]}.
        One UPDATE ... SET col = ?, ..., attempts = attempts + ? WHERE segment_id = ? per key."""
        grouped: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
        attempts = self._segment_attempts
        for segment_id, changes in self._segment_changes.items():
            # Insertion order differs with the path a part took: sort for one statement per
            # set of columns.
            columns = tuple(sorted(changes))
            rows = grouped.get(columns)
            if rows is None:
                rows = grouped[columns] = []
            rows.append((*map(changes.__getitem__, columns), attempts.get(segment_id, 0),
                         segment_id))
        return grouped

    def message_updates(self) -> list[tuple[str, int, int, str | None, str]]:
        """(state, updated_unix_ms, attempts to add, last_error or None to keep, tracking_id)
        for every message the batch changed."""
        return [(m.state, self.now_ms, m.attempts, m.last_error, m.tracking_id)
                for m in self._messages.values() if m.touched]

    # --- internals -----------------------------------------------------------------------------

    def _set(self, part: Part, *, attempt: bool = False, **columns: object) -> None:
        """Set ``columns`` (names from SEGMENT_COLUMNS) of ``part``'s row."""
        changes = self._segment_changes.get(part.segment_id)
        if changes is None:
            self._segment_changes[part.segment_id] = columns
        else:
            changes.update(columns)
        if attempt:
            self._segment_attempts[part.segment_id] = (
                self._segment_attempts.get(part.segment_id, 0) + 1)
        state = columns.get("state")
        if state is not None:
            part.state = cast(str, state)

    def _note(self, tracking_id: str, part_index: int | None, kind: str,
              detail: Mapping[str, object]) -> None:
        self.notes.append((tracking_id, part_index, self.now_ms, kind, dumps(detail)))

    @staticmethod
    def _derive(message: _Message) -> MessageState:
        """The state its parts say; a message in a final state keeps it (late results and
        receipts update its parts, not its state)."""
        if message.state in FINAL_MESSAGE_STATES:
            return cast(MessageState, message.state)
        members = message.members
        if len(members) == 1:
            return _ALONE[members[0].state]
        return derive_message_state([p.state for p in members])

    def _update_message(
        self, message: _Message, fields: str, *, attempt: bool = False,
        last_error: str | None = None,
    ) -> MessageState:
        """The message's new state, attempts and last error; a 'state' event with the previous
        state and ``fields`` (JSON members, e.g. ``"part":0``) when the state changed."""
        current = message.state
        new = self._derive(message)
        if new == current and not attempt and last_error is None:
            return new
        message.touched = True
        message.attempts += int(attempt)
        if last_error is not None:
            message.last_error = last_error
        if new != current:
            message.state = new
            self._event(("state", message.tracking_id, message.client_id, new,
                         f'{{"previous":"{current}",{fields}}}' if fields
                         else f'{{"previous":"{current}"}}'))
        return new


def unsent_state(message_state: str) -> str:
    """Where a part that was not sent (released, or not taken by the SMSC) goes: back to the
    queue while its message is still open; 'cancelled' when the operator cancelled the message
    meanwhile, 'failed' when another part failed it (a concatenated message missing a part is
    useless). Recovery and requeues follow the same rule in SQL (``UNSENT_STATE_SQL``)."""
    if message_state not in FINAL_MESSAGE_STATES:
        return "queued"
    return "cancelled" if message_state == "cancelled" else "failed"


def _positions(members: Sequence[Part]) -> tuple[tuple[int, ...], tuple[int, ...],
                                                  tuple[int, ...]]:
    """Part indexes (not sent, in flight, sent) of a cancelled message's parts. A part
    cancelled on the SMSC (cancel_sm) was sent: it carries the id the SMSC gave it."""
    def never_sent(p: Part) -> bool:
        return p.state == "queued" or (p.state == "cancelled" and p.key is None)

    not_sent = tuple(p.part_index for p in members if never_sent(p))
    in_flight = tuple(p.part_index for p in members if p.state == "sending")
    sent = tuple(p.part_index for p in members
                 if not never_sent(p) and p.state != "sending")
    return not_sent, in_flight, sent


def _fields(members: Mapping[str, object]) -> str:
    """``members`` as JSON object members without the braces, for _update_message."""
    return dumps(members)[1:-1]
