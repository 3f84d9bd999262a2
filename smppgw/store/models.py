"""Values that cross the store's boundary: commands in (new messages, submit outcomes, receipts,
MO parts) and views out (segments to send, messages, events). Plain frozen dataclasses, no I/O.

Wall-clock instants are float unix seconds and end in ``_wall``; event times are UTC ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from smppgw.errors import SmppgwError

__all__ = [
    "FINAL_MESSAGE_STATES",
    "MESSAGE_STATES",
    "RECEIPT_OUTCOMES",
    "SEGMENT_STATES",
    "UNDELIVERED_STATES",
    "AcceptResult",
    "CancelOutcome",
    "CancelResult",
    "Event",
    "EventType",
    "HistoryEntry",
    "MessageMove",
    "MessagePage",
    "MessageQuery",
    "MessageState",
    "MessageView",
    "MoMessage",
    "MoPart",
    "MoPartResult",
    "MoRecord",
    "NewMessage",
    "NewSegment",
    "PageKey",
    "ProviderPause",
    "PurgeReport",
    "QueueStats",
    "QueuedMessage",
    "ReceiptOutcomeName",
    "ReceiptRecord",
    "ReceiptResult",
    "RecoveryReport",
    "SegmentState",
    "SegmentToSend",
    "SegmentView",
    "StoreClosedError",
    "StoreCounts",
    "StoreError",
    "StoreLockedError",
    "StoreSchemaError",
    "StoreUnavailableError",
    "StoredMoPart",
    "SubmitOutcome",
    "SubmitOutcomeKind",
    "SubmitRecorded",
    "Tlvs",
    "UnmatchedReceipts",
]

# --- vocabulary ----------------------------------------------------------------------------------

MessageState = Literal[
    "queued", "submitted", "accepted", "delivered", "undeliverable", "expired", "rejected",
    "failed", "unknown", "cancelled",
]
MESSAGE_STATES: Final[tuple[MessageState, ...]] = (
    "queued", "submitted", "accepted", "delivered", "undeliverable", "expired", "rejected",
    "failed", "unknown", "cancelled",
)
#: A message in one of these states never changes state again (DESIGN.md "Message states").
#: ``unknown``: its receipt was asked for, but the SMSC gave a part no message id, so no
#: receipt can ever be matched; set when its validity runs out.
FINAL_MESSAGE_STATES: Final[frozenset[str]] = frozenset(
    {"delivered", "undeliverable", "expired", "rejected", "failed", "unknown", "cancelled"}
)
#: The final states of a message that ended without a confirmed delivery: the ones an operator
#: looks for, kept in an index of their own (``undelivered_state``) so finding them stays cheap
#: however many delivered messages the store holds.
UNDELIVERED_STATES: Final[frozenset[str]] = frozenset(
    {"undeliverable", "expired", "rejected", "failed", "unknown", "cancelled"}
)

#: ``sending`` lives only between claim_segments and record_submit_results; ``failed`` is a
#: permanent submit refusal or a part cancelled because a sibling failed; ``expired`` is a part
#: whose message passed its validity before it was sent, or an expiry receipt; ``unknown`` a part
#: submitted without a message id whose message's validity ran out; ``cancelled`` a part never
#: sent because the operator cancelled its message.
SegmentState = Literal[
    "queued", "sending", "submitted", "accepted", "delivered", "undeliverable", "expired",
    "rejected", "failed", "unknown", "cancelled",
]
SEGMENT_STATES: Final[tuple[SegmentState, ...]] = (
    "queued", "sending", "submitted", "accepted", "delivered", "undeliverable", "expired",
    "rejected", "failed", "unknown", "cancelled",
)

#: The normalised meaning of a receipt, as smppgw.smpp.receipt.ReceiptOutcome spells it.
ReceiptOutcomeName = Literal[
    "accepted", "delivered", "undeliverable", "expired", "rejected", "enroute", "unknown"
]
RECEIPT_OUTCOMES: Final[frozenset[str]] = frozenset(
    {"accepted", "delivered", "undeliverable", "expired", "rejected", "enroute", "unknown"}
)

EventType = Literal["receipt", "state", "mo"]
SubmitOutcomeKind = Literal["ok", "transient", "permanent", "released"]

#: Optional parameters as (tag, value) pairs, in wire order; duplicates and order survive.
Tlvs = tuple[tuple[int, bytes], ...]


# --- errors --------------------------------------------------------------------------------------


class StoreError(SmppgwError):
    """The store could not do what was asked; nothing of that one command was committed."""


class StoreLockedError(StoreError):
    """Another store (another smppgw daemon, or this process) already holds the state dir, or
    the database."""

    def __init__(self, path: str, message: str | None = None) -> None:
        self.path = path
        super().__init__(message or (
            f"state directory is in use: another smppgw holds the lock {path} "
            "(stop it, or give this instance its own gateway.state_dir)"
        ))


class StoreClosedError(StoreError):
    """The store was closed (or its writer died); no more commands are taken."""


class StoreSchemaError(StoreError):
    """The database file was written by a newer smppgw, or a migration step failed."""


WriteFailureReason = Literal["disk_full", "io_error", "unavailable"]

_WRITE_FAILURE_TEXTS: Final[Mapping[str, str]] = {
    "disk_full": "the disk holding the store is full",
    "io_error": "the disk holding the store reported an I/O error",
    "unavailable": "the database is unavailable",
}


class StoreWriteError(StoreError):
    """The store refused a write for a cause outside the command: ``reason`` ``disk_full``
    (SQLITE_FULL), ``io_error`` (SQLITE_IOERR, a read-only or vanished file) or
    ``unavailable`` (the PostgreSQL database out of reach). Nothing of the command was
    committed; the same command can succeed once the store takes writes again."""

    def __init__(self, reason: WriteFailureReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(
            f"{_WRITE_FAILURE_TEXTS[reason]}; nothing of this write was stored ({detail})")


class StoreUnavailableError(StoreWriteError):
    """The PostgreSQL database cannot be reached right now (a write or a read); transient: the
    store reconnects by itself when it comes back."""

    def __init__(self, detail: str) -> None:
        super().__init__("unavailable", detail)


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """Why the store cannot write now, since when (wall-clock unix seconds) and how many
    writes it refused since then (``Store.write_failure``)."""

    reason: WriteFailureReason
    detail: str
    since_wall: float
    refused: int = 1


# --- accept --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSegment:
    """One pre-encoded part of a new message, exactly as it goes into submit_sm."""

    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: Tlvs = ()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated, routed and encoded message the API wants stored.

    ``tracking_id`` is 32 lower-case hex characters chosen by the caller. ``client_id`` is the
    application's id; when set, the same id always answers ``answer`` of the first message
    (idempotency, also across restarts). ``answer`` is the API's JSON answer for this message;
    when None the store builds ``{"tracking_id", "accepted", "segments", "data_coding"}``.
    ``tlvs`` are message-level optional parameters sent with every part.

    ``request`` holds the request's own choices that the columns do not keep as given (a
    sender the provider replaced, the request's TLVs without the provider's defaults, a forced
    encoding, a named provider, a validity, ``receipt: false``), so a retry can run the request
    again through the accept path; None stores ``{}``. ``retry_of`` makes the message a new
    attempt of that (final) message: the store links the two, moves the old one's client id
    to it, and answers a second retry of the same message with this one's answer.
    """

    tracking_id: str
    provider: str
    source: str
    destination: str
    text: str
    segments: tuple[NewSegment, ...]
    client_id: str | None = None
    data_coding: int = 0
    encoding: str = "gsm7"
    flash: bool = False
    esm_class: int = 0
    registered_delivery: int = 1
    tlvs: Tlvs = ()
    valid_until_wall: float | None = None
    answer: Mapping[str, object] | None = None
    request: Mapping[str, object] | None = None
    retry_of: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Per message of accept_messages, in input order.

    ``duplicate``: the client id was known; ``answer`` and ``tracking_id`` are the first
    message's and nothing new was stored. ``error``: this message could not be stored (for
    instance a tracking id already in use); the others of the batch were.
    """

    tracking_id: str
    client_id: str | None
    answer: Mapping[str, object]
    duplicate: bool = False
    error: str | None = None

    @property
    def stored(self) -> bool:
        return self.error is None


# --- dispatch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message none of whose parts has left: what encoding it for another provider needs
    (failover moves it). ``tlvs`` are the message's, its provider's defaults included."""

    tracking_id: str
    client_id: str | None
    provider: str
    source: str
    destination: str
    text: str
    flash: bool
    encoding: str
    registered_delivery: int
    tlvs: Tlvs
    valid_until_wall: float | None


@dataclass(frozen=True, slots=True)
class MessageMove:
    """Move a queued message to ``message.provider``, as ``message`` encodes it anew (its
    tracking id, client id and text unchanged), provided it is still with ``from_provider``
    and none of its parts has left; ``reason`` goes into its history."""

    message: NewMessage
    from_provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class SegmentToSend:
    """Everything the dispatcher needs for one submit_sm.

    ``tlvs`` are the message's optional parameters followed by the part's (SAR TLVs, if any).
    ``attempts`` counts earlier submits that got an answer or timed out.
    """

    segment_id: int
    tracking_id: str
    client_id: str | None
    provider: str
    part_index: int
    parts: int
    source: str
    destination: str
    short_message: bytes
    esm_class: int
    data_coding: int
    registered_delivery: int
    tlvs: Tlvs
    flash: bool
    valid_until_wall: float | None
    attempts: int


@dataclass(frozen=True, slots=True)
class SubmitRecorded:
    """What recording one SubmitOutcome did to its message.

    ``answered`` is set only by the outcome that gave the whole message its submit answer: 0
    (ESME_ROK) when it completed the set of accepted parts, or the command_status of the
    permanent refusal that failed it. Resends (at-least-once) and late results leave it None,
    so a count of answered messages counts each message once.
    """

    state: MessageState
    answered: int | None = None


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """What became of one claimed segment; build it with the class methods.

    ``ok``: submit_sm_resp ESME_ROK with the SMSC's ``smsc_message_id`` and its correlation key
    (smppgw.smpp.receipt.message_id_key; the raw id when None), from the SMSC ``account``
    whose receipts will say it (ProviderConfig.account; the part's provider when None).
    ``transient``: retry at ``retry_at_wall``. ``permanent``: the message fails with
    ``status_name`` in its history. ``released``: claimed but never sent (no bind,
    shutdown): queued again, no attempt counted.
    """

    segment_id: int
    kind: SubmitOutcomeKind
    smsc_message_id: str | None = None
    smsc_message_key: str | None = None
    command_status: int | None = None
    status_name: str | None = None
    retry_at_wall: float | None = None
    error: str | None = None
    bind: str | None = None
    sent_at_wall: float | None = None
    account: str | None = None

    @classmethod
    def ok(
        cls, segment_id: int, smsc_message_id: str, smsc_message_key: str | None = None, *,
        bind: str | None = None, sent_at_wall: float | None = None, account: str | None = None,
    ) -> SubmitOutcome:
        return cls(segment_id, "ok", smsc_message_id=smsc_message_id,
                   smsc_message_key=smsc_message_key, command_status=0, status_name="ESME_ROK",
                   bind=bind, sent_at_wall=sent_at_wall, account=account)

    @classmethod
    def transient(
        cls, segment_id: int, retry_at_wall: float, *, status_name: str | None = None,
        command_status: int | None = None, error: str | None = None, bind: str | None = None,
        sent_at_wall: float | None = None,
    ) -> SubmitOutcome:
        return cls(segment_id, "transient", command_status=command_status,
                   status_name=status_name, retry_at_wall=retry_at_wall, error=error, bind=bind,
                   sent_at_wall=sent_at_wall)

    @classmethod
    def permanent(
        cls, segment_id: int, status_name: str, *, command_status: int | None = None,
        error: str | None = None, bind: str | None = None, sent_at_wall: float | None = None,
    ) -> SubmitOutcome:
        return cls(segment_id, "permanent", command_status=command_status,
                   status_name=status_name, error=error, bind=bind, sent_at_wall=sent_at_wall)

    @classmethod
    def released(cls, segment_id: int, retry_at_wall: float | None = None) -> SubmitOutcome:
        return cls(segment_id, "released", retry_at_wall=retry_at_wall)


# --- receipts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """One delivery receipt to correlate, from a deliver_sm/data_sm on a bind of ``provider``.

    It is matched among the parts submitted on the same SMSC ``account`` (whichever provider
    table sent them: ProviderConfig.account; ``provider`` itself when None).
    ``message_keys``: keys to look the id up under, most likely first (the first hit wins; see
    smppgw.smpp.receipt.message_id_variants); empty means ``(message_id,)``. ``outcome`` is one
    of RECEIPT_OUTCOMES; ``final`` says no further receipt is expected. ``details`` is the
    parsed receipt as JSON (Receipt.as_dict()), kept with the segment and in the event.
    """

    provider: str
    message_id: str
    stat: str
    err: str
    outcome: ReceiptOutcomeName
    final: bool
    message_keys: tuple[str, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)
    bind: str | None = None
    account: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return self.message_keys or (self.message_id,)

    @property
    def correlation(self) -> str:
        """The correlation space it is matched in: its account (else its provider)."""
        return self.account or self.provider


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """Per receipt, in input order: matched to a segment, or parked until its submit result."""

    matched: bool
    tracking_id: str | None = None
    part_index: int | None = None
    message_state: MessageState | None = None
    duplicate: bool = False

    @property
    def parked(self) -> bool:
        return not self.matched


# --- MO ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MoPart:
    """One part of a concatenated inbound message, as received, before reassembly.

    ``payload`` is the part's user data without its UDH, ``reference``/``total``/``seq`` come
    from the UDH or SAR TLVs (3GPP TS 23.040 §9.2.3.24.1).
    """

    provider: str
    source: str
    destination: str
    reference: int
    total: int
    seq: int
    data_coding: int
    payload: bytes
    bind: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMoPart:
    """A stored MO part; ``part_id`` is what record_mo_message consumes."""

    part_id: int
    provider: str
    source: str
    destination: str
    reference: int
    total: int
    seq: int
    data_coding: int
    payload: bytes
    received_wall: float


@dataclass(frozen=True, slots=True)
class MoPartResult:
    """``parts``: every stored part of this part's group, by seq. ``complete``: all ``total``
    are there, so the caller can reassemble and call record_mo_message with their ids.
    ``duplicate``: this seq was already stored (the SMSC resent it); nothing new was kept.
    """

    part_id: int
    duplicate: bool
    complete: bool
    parts: tuple[StoredMoPart, ...]


@dataclass(frozen=True, slots=True)
class MoMessage:
    """A complete inbound message (one part, or reassembled)."""

    provider: str
    source: str
    destination: str
    text: str
    data_coding: int = 0
    parts: int = 1
    bind: str | None = None


@dataclass(frozen=True, slots=True)
class MoRecord:
    """The stored MO message and the cursor of its 'mo' event."""

    mo_id: int
    cursor: int


# --- events and views ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only event log, in commit order.

    ``cursor`` increases strictly and is never reused. ``at`` is UTC ISO 8601. Message events
    carry ``tracking_id``, ``client_id`` and the message ``state`` after the event; MO events
    carry from/to/text/provider in ``payload``.
    """

    cursor: int
    type: EventType
    at: str
    tracking_id: str | None
    client_id: str | None
    state: str | None
    payload: Mapping[str, object]

    def as_dict(self) -> dict[str, object]:
        """The JSON object of GET /v1/events and webhooks (DESIGN.md): base fields win."""
        out: dict[str, object] = dict(self.payload)
        out.update(cursor=self.cursor, type=self.type, at=self.at)
        if self.type != "mo":
            out.update(tracking_id=self.tracking_id, id=self.client_id, state=self.state)
        return out


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a message's history: an event (``cursor`` set) or an internal note such as
    a retry after a transient SMSC error (``type`` 'retry', 'requeued', 'cancelled')."""

    at: str
    type: str
    state: str | None
    detail: Mapping[str, object]
    cursor: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentView:
    part_index: int
    state: SegmentState
    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: Tlvs
    smsc_message_id: str | None
    submit_status: str | None
    submitted_wall: float | None
    resp_wall: float | None
    attempts: int
    next_attempt_wall: float
    last_error: str | None
    bind: str | None
    receipt_stat: str | None
    receipt_err: str | None
    receipt_wall: float | None
    receipt: Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message as GET /v1/messages/{tracking_id} shows it."""

    tracking_id: str
    client_id: str | None
    provider: str
    source: str
    destination: str
    text: str
    flash: bool
    data_coding: int
    encoding: str
    esm_class: int
    registered_delivery: int
    tlvs: Tlvs
    state: MessageState
    parts: int
    attempts: int
    last_error: str | None
    created_wall: float
    updated_wall: float
    valid_until_wall: float | None
    answer: Mapping[str, object]
    segments: tuple[SegmentView, ...]
    history: tuple[HistoryEntry, ...]
    #: The request's own choices (see NewMessage.request); None for a message stored before
    #: smppgw kept them.
    request: Mapping[str, object] | None = None
    #: The message this one is a new attempt of, and the attempt made of this one.
    retry_of: str | None = None
    retried_as: str | None = None


# --- operator commands ---------------------------------------------------------------------------

CancelOutcome = Literal["cancelled", "already_cancelled", "final", "all_sent"]


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What ``cancel_message`` did, and where each part stands (indexes, 0-based).

    ``outcome``: ``cancelled`` (by this call), ``already_cancelled`` (an earlier call did),
    ``final`` (the message had ended in ``state``: nothing to stop) or ``all_sent`` (every
    part was already accepted by the SMSC: nothing left to stop). ``not_sent``: parts that
    were waiting and are never sent now. ``in_flight``: parts a dispatcher held at that moment,
    which may have reached the SMSC; whatever their answer says is recorded, and a part the
    SMSC did not take is not sent again. ``sent``: parts the SMSC had accepted (or refused).
    """

    tracking_id: str
    outcome: CancelOutcome
    state: MessageState
    not_sent: tuple[int, ...] = ()
    in_flight: tuple[int, ...] = ()
    sent: tuple[int, ...] = ()
    #: (part index, status name) of each cancel_sm sent for a part already sent, where the
    #: provider has cancel_sm on; ESME_ROK means the SMSC will not deliver that part.
    cancel_sm: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class PageKey:
    """A position in the message list, which runs newest first: (created, tracking id)."""

    created_unix_ms: int
    tracking_id: str


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What ``list_messages`` looks for; every filter given must hold.

    ``to_prefix``: digits the destination starts with. ``since_wall`` (inclusive) and
    ``until_wall`` (exclusive) bound the creation time. ``after``: the ``next`` of the page
    before. ``limit``: most messages in the page.
    """

    state: MessageState | None = None
    provider: str | None = None
    to_prefix: str | None = None
    since_wall: float | None = None
    until_wall: float | None = None
    limit: int = 50
    after: PageKey | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A page of the message list, newest first. ``next``: where the following page starts,
    None at the end. A page may hold fewer than ``limit`` messages (even none) while ``next``
    is set: each call examines a bounded number of messages (store.search.SCAN_LIMIT)."""

    messages: tuple[MessageView, ...]
    next: PageKey | None


@dataclass(frozen=True, slots=True)
class ProviderPause:
    """A provider paused by the operator: nothing of it is claimed until it is resumed.
    ``since_wall``: when it was paused (unix seconds)."""

    provider: str
    since_wall: float


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Per provider: parts waiting (``queued``, including those waiting for a retry), parts
    handed to the dispatcher (``sending``: waiting for a bind, or for their submit_sm_resp),
    the age of the oldest waiting part, and of the oldest part of either kind (what the queue
    metrics report: a part claimed while no bind is up is still unsent)."""

    provider: str
    queued: int
    sending: int
    oldest_queued_age: float
    oldest_unsent_age: float = 0.0

    @property
    def unsent(self) -> int:
        return self.queued + self.sending


@dataclass(frozen=True, slots=True)
class UnmatchedReceipts:
    """Receipts that came on one provider's binds and still match no part: ``pending`` of
    them, ``stale`` of which were parked before the limit the caller gave, the oldest
    parked at ``oldest_received_wall`` (unix seconds)."""

    pending: int
    stale: int
    oldest_received_wall: float


@dataclass(frozen=True, slots=True)
class StoreCounts:
    messages: Mapping[str, int]
    segments: Mapping[str, int]
    last_cursor: int
    unmatched_receipts: int
    mo_parts_pending: int
    mo_messages: int


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Rows deleted by one purge call, per kind (``parked_receipts``: receipts kept for a part,
    matched since or never)."""

    messages: int
    events: int
    parked_receipts: int
    mo_messages: int

    @property
    def total(self) -> int:
        return self.messages + self.events + self.parked_receipts + self.mo_messages


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recover() did at start.

    ``requeued_segments``: parts left 'sending' by the previous run, queued again (at-least-once:
    a part whose submit_sm reached the SMSC but whose response was lost is sent twice).
    ``complete_mo_groups``: MO groups whose parts were all stored but never reassembled; the
    caller reassembles them and calls record_mo_message. ``incomplete_mo_groups``: the others,
    still waiting for parts; the caller times them out from their first part's arrival.
    """

    requeued_segments: int
    unmatched_receipts: int
    queued_segments: int
    complete_mo_groups: tuple[tuple[StoredMoPart, ...], ...]
    incomplete_mo_groups: tuple[tuple[StoredMoPart, ...], ...] = ()
