"""The SMPP 3.4 session of one ESME connection as a state machine: bytes and calls in, bytes
and events out, the time supplied by the caller (STYLE.md §2, after h11 and aioquic).

No I/O, no clock, no logging: ``net/connection.py`` drives it, the bind slot consumes events.
"""

# Theory of operation
# ===================
#
# A Session is one TCP/TLS connection from smppgw (the ESME) to an SMSC. It never touches the
# connection: the shell feeds it what arrived (receive_data), what the layer above wants
# (bind, send_request, acknowledge, unbind, close) and the time (every input takes `now`,
# monotonic seconds, and handle_timer(now) is called at next_deadline()). After every input
# the shell writes data_to_send(), hands each next_event() to the bind slot, and re-arms one
# timer at next_deadline().
#
# States: OPEN (connected, nothing sent) -> BINDING (bind sent) -> BOUND -> UNBINDING (draining,
# then unbind sent) -> CLOSED. The bind type (transceiver, transmitter, receiver) is a field,
# not three states. Every legal move is a row of TRANSITIONS below, (state, input) ->
# (handler, next state); a handler may close the session, and closing wins over the row's next
# state. A call of ours with no row raises LocalProtocolError (our bug, nothing is sent). A PDU
# from the SMSC with no row is answered with ESME_RINVBNDSTS: SMPP 3.4 table 2-1 (the session
# state each PDU requires) says e.g. deliver_sm needs a bound receiver or transceiver.
#
# Who answers what:
#   - enquire_link from the SMSC: answered at once, same sequence number (SMPP 3.4 §4.11), in
#     any state, even before the bind completes (3.4 lists it for bound states only; SMPP 5.0
#     allows it when open, and answering costs nothing while refusing could get us dropped).
#   - unbind from the SMSC: answered with unbind_resp, then Unbound("peer") and Closed.
#   - deliver_sm, data_sm: handed up as RequestReceived; the response goes out only when the
#     layer above calls acknowledge(sequence_number, status), after its store committed
#     (ESME_ROK) or with a transient status (ESME_RX_T_APPN, ESME_RMSGQFUL) so the SMSC
#     redelivers. alert_notification is handed up too and has no response (§4.12).
#   - outbind (SMPP 3.4 §4.1.7) belongs on a connection the SMSC opens to ask the ESME to
#     bind; smppgw only opens its own and binds at once. Refused with generic_nack (outbind
#     has no response) ESME_RINVBNDSTS, the command known but wrong for this link, and a
#     PeerViolation that says so; the bind stays up.
#   - other requests an ESME never receives (submit_sm, bind_*, query_sm, ...): generic_nack
#     ESME_RINVCMDID, and PeerViolation.
#   - a PDU that frames correctly but does not decode: if its command_id names a request with
#     a response type, that response with the decoder's status (deliver_sm with a bad
#     source_addr -> deliver_sm_resp ESME_RINVSRCADR); otherwise generic_nack with the status,
#     because SMPP 3.4 §4.3 keeps generic_nack for an invalid header (unknown command_id) or a
#     PDU that has no response of its own. PeerViolation; the bind stays up. (A response
#     that does not decode is nacked too, and the request it may answer stays outstanding
#     until it times out: we cannot tell what the SMSC said.)
#   - deliver_sm reusing the sequence number of one still awaiting acknowledge(): answered at
#     once with ESME_RX_T_APPN (the SMSC retries it later), PeerViolation, not handed up.
#   - a bad command_length: the stream cannot be re-synchronised. generic_nack ESME_RINVCMDLEN
#     with the sequence number (we wait for the whole 16-octet header before judging, so it is
#     always known), PeerViolation, Closed(frame_error).
#   - responses: matched by sequence number AND by type (a submit_sm_resp cannot answer an
#     enquire_link). A generic_nack naming an outstanding request answers it: ResponseReceived
#     with the nack's status and pdu=GenericNack (for the bind: BindRejected). A response
#     naming nothing outstanding is dropped and counted (unexpected_responses, or
#     late_responses when it answers a request that already timed out): no event, no answer,
#     since nothing can be done about it and a nack could start a nack loop. A generic_nack
#     naming nothing is a PeerViolation (not answered: nobody nacks a nack).
#
# The window (window.py) holds every request we sent and have not seen answered, OURS TOO:
# the bind, enquire_link and unbind each take a slot. So the number of requests the SMSC sees
# outstanding is never above `window` (Wavy: 10), with no exception to remember. The cost: an
# enquire_link that falls due while the window is full waits for a slot, and a slot is
# guaranteed within response_timeout, since the oldest request then times out. Sequence numbers
# count up from 1, wrap from 0x7FFFFFFF to 1 and skip any still outstanding (SMPP 3.4 §5.1.4:
# 0x00000001..0x7FFFFFFF); after a timeout a number is not reused before the counter wraps,
# so a late response cannot be mistaken for the answer to a newer request.
#
# Timers, all deadlines (`*_at`, monotonic instants); next_deadline() is the earliest:
#   - bind_answer_at = bind sent + bind_timeout: no bind_resp -> Closed(bind_timeout).
#   - each request's sent_at + response_timeout (the oldest is the next; same timeout for all
#     requests from send_request): RequestTimedOut, the tag leaves the window. After
#     max_consecutive_timeouts in a row with no response in between -> Closed(too_many_timeouts).
#   - link_idle_at = last request WE sent (the bind's answer, a submit, our enquire_link) +
#     enquire_link_interval, while BOUND. Wavy asks for an enquire_link every 30 to 59 s and
#     Qikberry every 60 s (it drops links silent for 5 minutes); our own submits meet that,
#     but what the SMSC sends does not: a link it keeps busy with deliver_sm or with its own
#     enquire_link every 5 s still gets ours, since answering is not requesting. Then an
#     enquire_link goes out (when the window has room; see above);
#     enquire_answer_at = sent + enquire_link_timeout: no answer -> Closed(enquire_link_timeout).
#   - drain_until = unbind() + drain_timeout, while UNBINDING before the unbind is sent: new
#     requests are refused, the outstanding ones and the deliver_sm awaiting acknowledge() get
#     until then; then the unbind goes out anyway (or, if the window is still full,
#     Closed(drain_timeout) without one). unbind_answer_at = unbind sent + unbind_timeout.
#
# On Closed, every request from send_request that got neither ResponseReceived nor
# RequestTimedOut is handed back in Closed.unanswered, oldest first, so the pool can resend it:
# each tag ends exactly once, in one of those three. deliver_sm not yet acknowledged are simply
# forgotten: the SMSC redelivers what it never saw answered. acknowledge() after Closed is
# ignored for the same reason; unbind() and close() after Closed do nothing, so a shell
# shutting down need not check first.
#
# Rules bent for providers: responses with an error status and no body are accepted (the
# codec's rule, after SMPP 3.4 §4.4.2, which several SMSCs apply to every response); requests
# from the SMSC with sequence number 0 are answered with 0 (cloudhopper names an operator that
# starts at 0); field-length tolerance belongs to the codec behind `lenient_decoding`.

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal, cast

from smppgw.smpp.codec import (
    DEFAULT_MAX_COMMAND_LENGTH,
    HEADER,
    HEADER_LENGTH,
    FrameDecoder,
    decode_frame,
    encode,
)
from smppgw.smpp.constants import (
    INTERFACE_VERSION_34,
    MAX_SEQUENCE_NUMBER,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    Tag,
)
from smppgw.smpp.errors import FrameError, LocalProtocolError, PduDecodeError
from smppgw.smpp.events import (
    BindRejected,
    Bound,
    Closed,
    CloseReason,
    Event,
    PeerViolation,
    RequestReceived,
    RequestTimedOut,
    Unbound,
    response_received,
)
from smppgw.smpp.pdu import (
    PDU_BY_COMMAND_ID,
    PDU_CLASSES,
    RESPONSE_CLASS,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    Unbind,
)
from smppgw.smpp.window import InFlight, Window

__all__ = ["TRANSITIONS", "BindType", "Session", "SessionConfig", "SessionInput", "SessionState"]


class SessionState(Enum):
    """Where the session is; the bind type is a separate field (``Session.bind_type``)."""

    OPEN = "open"
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"


class SessionInput(Enum):
    """What can happen to a session: one of our calls, or a kind of PDU from the SMSC.

    Responses are classified by the request they answer, after matching the sequence number
    and the type, so "a bind_resp while BOUND" is simply a STRAY_RESPONSE.
    """

    # our calls
    BIND = "bind()"
    SEND_REQUEST = "send_request()"
    ACKNOWLEDGE = "acknowledge()"
    UNBIND = "unbind()"
    CLOSE = "close()"
    # requests from the SMSC
    ENQUIRE_LINK = "enquire_link"
    UNBIND_REQUEST = "unbind"
    DELIVERY = "deliver_sm, data_sm or alert_notification"
    OUTBIND = "outbind"
    FOREIGN_REQUEST = "a request an ESME never receives"
    # responses from the SMSC (generic_nack included when it names an outstanding request)
    BIND_RESP = "bind_resp"
    ENQUIRE_LINK_RESP = "enquire_link_resp"
    UNBIND_RESP = "unbind_resp"
    RESPONSE = "response to a request from send_request()"
    STRAY_RESPONSE = "response naming no outstanding request"
    STRAY_GENERIC_NACK = "generic_nack naming no outstanding request"

    # Members are singletons, so identity is their equality; Enum's own __hash__ hashes the
    # name in Python, and an input is looked up in the state's moves on every PDU.
    __hash__ = object.__hash__


OPEN = SessionState.OPEN
BINDING = SessionState.BINDING
BOUND = SessionState.BOUND
UNBINDING = SessionState.UNBINDING
CLOSED = SessionState.CLOSED
_I = SessionInput

# Every legal move: (state, input) -> (handler method, next state). Nothing is legal in CLOSED
# but the three no-ops; receive_data and handle_timer in CLOSED return before this table.
TRANSITIONS: dict[tuple[SessionState, SessionInput], tuple[str, SessionState]] = {
    # --- our calls -----------------------------------------------------------------------
    (OPEN, _I.BIND): ("_send_bind", BINDING),
    (OPEN, _I.UNBIND): ("_close_locally", CLOSED),  # nothing bound: nothing to unbind
    (OPEN, _I.CLOSE): ("_close_locally", CLOSED),
    (BINDING, _I.UNBIND): ("_close_locally", CLOSED),
    (BINDING, _I.CLOSE): ("_close_locally", CLOSED),
    (BOUND, _I.SEND_REQUEST): ("_send_request", BOUND),
    (BOUND, _I.ACKNOWLEDGE): ("_send_acknowledgement", BOUND),
    (BOUND, _I.UNBIND): ("_start_unbind", UNBINDING),
    (BOUND, _I.CLOSE): ("_close_locally", CLOSED),
    (UNBINDING, _I.ACKNOWLEDGE): ("_send_acknowledgement", UNBINDING),
    (UNBINDING, _I.UNBIND): ("_ignore", UNBINDING),
    (UNBINDING, _I.CLOSE): ("_close_locally", CLOSED),
    (CLOSED, _I.ACKNOWLEDGE): ("_ignore", CLOSED),  # the SMSC will redeliver
    (CLOSED, _I.UNBIND): ("_ignore", CLOSED),
    (CLOSED, _I.CLOSE): ("_ignore", CLOSED),
    # --- requests from the SMSC ------------------------------------------------------------
    (OPEN, _I.ENQUIRE_LINK): ("_answer_enquire_link", OPEN),
    (BINDING, _I.ENQUIRE_LINK): ("_answer_enquire_link", BINDING),
    (BOUND, _I.ENQUIRE_LINK): ("_answer_enquire_link", BOUND),
    (UNBINDING, _I.ENQUIRE_LINK): ("_answer_enquire_link", UNBINDING),
    (OPEN, _I.UNBIND_REQUEST): ("_answer_unbind", CLOSED),
    (BINDING, _I.UNBIND_REQUEST): ("_answer_unbind", CLOSED),
    (BOUND, _I.UNBIND_REQUEST): ("_answer_unbind", CLOSED),
    (UNBINDING, _I.UNBIND_REQUEST): ("_answer_unbind", CLOSED),
    # (OPEN | BINDING, DELIVERY) is absent on purpose: answered ESME_RINVBNDSTS.
    (BOUND, _I.DELIVERY): ("_hand_up", BOUND),
    (UNBINDING, _I.DELIVERY): ("_hand_up", UNBINDING),
    (OPEN, _I.OUTBIND): ("_refuse_outbind", OPEN),
    (BINDING, _I.OUTBIND): ("_refuse_outbind", BINDING),
    (BOUND, _I.OUTBIND): ("_refuse_outbind", BOUND),
    (UNBINDING, _I.OUTBIND): ("_refuse_outbind", UNBINDING),
    (OPEN, _I.FOREIGN_REQUEST): ("_reject_command", OPEN),
    (BINDING, _I.FOREIGN_REQUEST): ("_reject_command", BINDING),
    (BOUND, _I.FOREIGN_REQUEST): ("_reject_command", BOUND),
    (UNBINDING, _I.FOREIGN_REQUEST): ("_reject_command", UNBINDING),
    # --- responses from the SMSC ---------------------------------------------------------
    (BINDING, _I.BIND_RESP): ("_on_bind_resp", BOUND),
    (BOUND, _I.RESPONSE): ("_on_response", BOUND),
    (UNBINDING, _I.RESPONSE): ("_on_response", UNBINDING),
    (BOUND, _I.ENQUIRE_LINK_RESP): ("_on_enquire_link_resp", BOUND),
    (UNBINDING, _I.ENQUIRE_LINK_RESP): ("_on_enquire_link_resp", UNBINDING),
    (UNBINDING, _I.UNBIND_RESP): ("_on_unbind_resp", CLOSED),
    (OPEN, _I.STRAY_RESPONSE): ("_drop_stray_response", OPEN),
    (BINDING, _I.STRAY_RESPONSE): ("_drop_stray_response", BINDING),
    (BOUND, _I.STRAY_RESPONSE): ("_drop_stray_response", BOUND),
    (UNBINDING, _I.STRAY_RESPONSE): ("_drop_stray_response", UNBINDING),
    (OPEN, _I.STRAY_GENERIC_NACK): ("_report_stray_nack", OPEN),
    (BINDING, _I.STRAY_GENERIC_NACK): ("_report_stray_nack", BINDING),
    (BOUND, _I.STRAY_GENERIC_NACK): ("_report_stray_nack", BOUND),
    (UNBINDING, _I.STRAY_GENERIC_NACK): ("_report_stray_nack", UNBINDING),
}


BindType = Literal["transceiver", "transmitter", "receiver"]

_BIND_CLASSES: dict[str, type[BindTransceiver | BindTransmitter | BindReceiver]] = {
    "transceiver": BindTransceiver,
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
}
_BIND_TYPE_SHORT = {"transceiver": "trx", "transmitter": "tx", "receiver": "rx"}

# What send_request carries: the operations an ESME issues on a bound transmitter or
# transceiver (SMPP 3.4 table 2-1). bind, unbind and enquire_link belong to the session.
REQUEST_BODIES: frozenset[type[Pdu]] = frozenset(
    {SubmitSm, DataSm, SubmitMulti, QuerySm, CancelSm, ReplaceSm}
)

_MAX_STATUS = 0xFFFFFFFF
_INFINITY = math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """Everything one session needs, fixed for its life. Durations are seconds.

    ``password`` is a plain str here (config.py unwraps its Secret at the last moment); it
    never appears in this object's repr or in any exception the session raises.
    ``enquire_link_timeout`` None means ``response_timeout``. ``first_sequence_number`` exists
    so tests can start next to the wrap; production leaves it at 1.
    """

    system_id: str
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind_type: BindType = "transceiver"
    interface_version: int = INTERFACE_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 10
    response_timeout: float = 10.0
    max_consecutive_timeouts: int = 3
    enquire_link_interval: float = 30.0
    enquire_link_timeout: float | None = None
    bind_timeout: float = 10.0
    unbind_timeout: float = 5.0
    drain_timeout: float = 10.0
    max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH
    lenient_decoding: bool = False
    first_sequence_number: int = 1

    def __post_init__(self) -> None:
        """Reject values the session could only fail on later, on the wire or in a timer."""
        if self.bind_type not in _BIND_CLASSES:
            raise LocalProtocolError(
                f"bind_type {self.bind_type!r} is not transceiver, transmitter or receiver"
            )
        if not 1 <= self.window < MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(f"window {self.window} must be at least 1")
        if not 1 <= self.first_sequence_number <= MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(
                f"first_sequence_number {self.first_sequence_number} outside 1..0x7FFFFFFF"
            )
        if self.max_consecutive_timeouts < 1:
            raise LocalProtocolError("max_consecutive_timeouts must be at least 1")
        for name in (
            "response_timeout",
            "enquire_link_interval",
            "enquire_link_timeout",
            "bind_timeout",
            "unbind_timeout",
            "drain_timeout",
        ):
            value = getattr(self, name)
            if value is not None and not (0 < value < _INFINITY):
                raise LocalProtocolError(f"{name} {value!r} must be a positive number of seconds")
        if self.max_command_length < HEADER_LENGTH:
            raise LocalProtocolError(f"max_command_length {self.max_command_length} is below 16")
        # The password is checked here, by hand, so that no error text can quote it; the
        # codec's messages for the other fields name the field and are safe to show.
        try:
            raw_password = self.password.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError("password is not Latin-1 text") from None
        if len(raw_password) > 8 or 0 in raw_password:
            raise LocalProtocolError(
                "password must be at most 8 octets without NUL (SMPP 3.4 §4.1.1)"
            )
        encode(self.bind_pdu(1))

    def bind_pdu(self, sequence_number: int) -> Pdu:
        """The bind request this configuration sends (SMPP 3.4 §4.1)."""
        return _BIND_CLASSES[self.bind_type](
            sequence_number=sequence_number,
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            interface_version=self.interface_version,
            addr_ton=self.addr_ton,
            addr_npi=self.addr_npi,
            address_range=self.address_range,
        )


class _Internal:
    """The tag of a request the session sends for itself; says which input its answer is."""

    __slots__ = ("answer",)

    def __init__(self, answer: SessionInput) -> None:
        self.answer = answer

    def __repr__(self) -> str:
        return f"<internal {self.answer.value}>"


_BIND_TAG = _Internal(SessionInput.BIND_RESP)
_ENQUIRE_LINK_TAG = _Internal(SessionInput.ENQUIRE_LINK_RESP)
_UNBIND_TAG = _Internal(SessionInput.UNBIND_RESP)

# Requests from the SMSC by command_id; any other request is FOREIGN_REQUEST.
_REQUEST_INPUT: dict[int, SessionInput] = {
    int(cls.command_id): move
    for cls, move in (
        (EnquireLink, SessionInput.ENQUIRE_LINK),
        (Unbind, SessionInput.UNBIND_REQUEST),
        (DeliverSm, SessionInput.DELIVERY),
        (DataSm, SessionInput.DELIVERY),
        (AlertNotification, SessionInput.DELIVERY),
        (Outbind, SessionInput.OUTBIND),
    )
}
# The command_id that answers each request we may have outstanding (a generic_nack answers
# any of them).
_RESPONSE_ID: dict[type[Pdu], int] = {
    request: int(response.command_id) for request, response in RESPONSE_CLASS.items()
}

# Responses we build ourselves, straight from the header struct: an error response carries no
# body (the codec's rule, SMPP 3.4 §4.4.2), a success one the body of an all-default PDU
# (deliver_sm_resp: one NUL, its empty message_id). Same octets as codec.encode, tested.
_pack_header = HEADER.pack
_OK_BODY: dict[type[Pdu], bytes] = {
    cls: encode(cls())[HEADER_LENGTH:] for cls in PDU_CLASSES if cls.command_id & RESPONSE_BIT
}
_GENERIC_NACK_ID = int(CommandId.GENERIC_NACK)


def _as_sent(body: Pdu, sequence_number: int) -> Pdu:
    """The request as it went on the wire: the caller's body under its sequence number."""
    if body.sequence_number == sequence_number:
        return body
    return replace(body, sequence_number=sequence_number)


def response_octets(response_class: type[Pdu], status: int, sequence_number: int) -> bytes:
    """The octets of a body-less or empty-bodied response: what codec.encode would give for
    ``response_class(sequence_number=..., command_status=status)``, without building it."""
    if status:
        return _pack_header(HEADER_LENGTH, response_class.command_id, status, sequence_number)
    body = _OK_BODY[response_class]
    return (
        _pack_header(HEADER_LENGTH + len(body), response_class.command_id, 0, sequence_number)
        + body
    )


class Session:
    """One ESME-to-SMSC connection's SMPP state. See the theory of operation above.

    Inputs take ``now`` (monotonic seconds from the caller's loop); outputs are polled:
    ``data_to_send()``, ``next_event()``, ``next_deadline()``. Remote misbehaviour never
    raises: it becomes bytes (an answer) and events. LocalProtocolError means the caller
    asked for something the state does not allow (nothing has been sent in that case).
    """

    __slots__ = (
        "_bind_answer_at",
        "_can_submit",
        "_config",
        "_consecutive_timeouts",
        "_decoder",
        "_drain_until",
        "_enquire_answer_at",
        "_enquire_link_interval",
        "_enquire_link_timeout",
        "_events",
        "_lenient",
        "_link_idle_at",
        "_moves",
        "_out",
        "_response_timeout",
        "_state",
        "_timed_out",
        "_timed_out_limit",
        "_unacknowledged",
        "_unbind_answer_at",
        "_window",
        "late_responses",
        "on_pdu_in",
        "on_pdu_out",
        "unexpected_responses",
    )

    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._state = OPEN
        self._moves = _MOVES[OPEN]
        self._window = Window(config.window, first_sequence_number=config.first_sequence_number)
        self._decoder = FrameDecoder(
            max_command_length=config.max_command_length, lenient=config.lenient_decoding
        )
        self._lenient = config.lenient_decoding
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._response_timeout = config.response_timeout
        self._enquire_link_interval = config.enquire_link_interval
        self._enquire_link_timeout = (
            config.response_timeout
            if config.enquire_link_timeout is None
            else config.enquire_link_timeout
        )
        self._can_submit = config.bind_type != "receiver"
        self._bind_answer_at = _INFINITY
        self._enquire_answer_at = _INFINITY
        self._unbind_answer_at = _INFINITY
        self._drain_until = _INFINITY
        self._link_idle_at = _INFINITY
        self._consecutive_timeouts = 0
        # deliver_sm / data_sm handed up and not yet acknowledged: sequence number -> the
        # response class acknowledge() must send.
        self._unacknowledged: dict[int, type[Pdu]] = {}
        # Sequence numbers that timed out recently (insertion-ordered, bounded), to tell a
        # late response from a bogus one in the counters.
        self._timed_out: dict[int, None] = {}
        self._timed_out_limit = max(64, 4 * config.window)
        #: Responses naming no outstanding request (or a mismatched type), dropped.
        self.unexpected_responses = 0
        #: Responses that arrived after their request's RequestTimedOut, dropped.
        self.late_responses = 0
        #: Observers of every PDU decoded from the SMSC / queued for it, with its command_id:
        #: every PDU, including those the session answers by itself (enquire_link, nacks),
        #: which no event reports. For counters; they must not call back into the session.
        self.on_pdu_in: Callable[[int], None] | None = None
        self.on_pdu_out: Callable[[int], None] | None = None

    # --- observation ---------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def bind_type(self) -> BindType:
        return self._config.bind_type

    @property
    def in_flight(self) -> int:
        """Requests outstanding, the session's own (bind, enquire_link, unbind) included."""
        return len(self._window)

    @property
    def window_room(self) -> int:
        return self._window.room

    @property
    def window_size(self) -> int:
        return self._window.capacity

    @property
    def can_send(self) -> bool:
        """send_request would be accepted now: bound, not a receiver, and a window slot free."""
        return self._state is BOUND and self._can_submit and self._window.room > 0

    @property
    def awaiting_acknowledgement(self) -> int:
        """deliver_sm / data_sm handed up whose acknowledge() has not come yet."""
        return len(self._unacknowledged)

    @property
    def consecutive_timeouts(self) -> int:
        return self._consecutive_timeouts

    def __repr__(self) -> str:
        return (
            f"<Session {self._state.name} {_BIND_TYPE_SHORT[self._config.bind_type]} "
            f"in_flight={len(self._window)}/{self._window.capacity}>"
        )

    # --- inputs: our calls ---------------------------------------------------------------

    def bind(self, now: float) -> None:
        """Send the bind of the configured type; the shell calls this once connected."""
        self._apply(SessionInput.BIND, now)

    def send_request(self, body: Pdu, now: float, *, tag: object) -> int:
        """Send ``body`` (submit_sm, data_sm, submit_multi, query_sm, cancel_sm, replace_sm)
        under a fresh sequence number, which is returned; its own sequence_number is ignored.

        ``tag`` comes back in exactly one of ResponseReceived, RequestTimedOut or
        Closed.unanswered. Raises LocalProtocolError unless ``can_send`` (not bound, receiver
        bind, window full: wait for room instead) or if the body does not encode.
        """
        return cast(int, self._apply(SessionInput.SEND_REQUEST, now, body, tag))

    def acknowledge(self, sequence_number: int, status: int, now: float) -> None:
        """Answer the deliver_sm / data_sm of a RequestReceived with ``status``.

        Raises LocalProtocolError for a sequence number with nothing awaiting acknowledgement
        (unknown, already acknowledged, or an alert_notification). Ignored once CLOSED.
        """
        self._apply(SessionInput.ACKNOWLEDGE, now, sequence_number, status)

    def unbind(self, now: float) -> None:
        """Close gracefully: refuse new requests, let outstanding ones drain (bounded by
        drain_timeout), send unbind, await unbind_resp (bounded by unbind_timeout), Closed.

        Before the bind completed there is nothing to unbind: Closed(local_close) at once.
        """
        self._apply(SessionInput.UNBIND, now)

    def close(self, now: float) -> None:
        """Close abruptly: Closed(local_close) with every unanswered request handed back.
        Nothing is sent; the shell then closes the transport."""
        self._apply(SessionInput.CLOSE, now)

    # --- inputs: the SMSC and the clock --------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed octets from the connection, in any chunking; ``b""`` means the SMSC closed it.

        Never raises for anything the SMSC sends: every problem becomes an answer on the wire
        and an event. Ignored once CLOSED.
        """
        if self._state is CLOSED:
            return
        if not data:
            self._close(CloseReason.PEER_CLOSED)
            return
        decoder = self._decoder
        decoder.feed(data)
        # Whole frames in batches, each judged once its 16-octet header is in (so a nack for
        # a bad command_length carries the sequence number however the octets were chunked)
        # and decoded only once classified (see _receive_frame).
        while True:
            try:
                frames = decoder.frames()
            except FrameError as exc:
                self._on_frame_error(exc, now)
                return
            if not frames:
                break
            receive_frame = self._receive_frame
            for command_id, command_status, sequence_number, frame in frames:
                receive_frame(command_id, command_status, sequence_number, frame, now)
                if self._state is CLOSED:
                    return
        if self._state is UNBINDING:
            self._send_unbind_when_drained(now)

    def handle_timer(self, now: float) -> None:
        """Act on every deadline at or before ``now``. Calling it early or twice is harmless."""
        state = self._state
        if state is CLOSED:
            return
        if now >= self._bind_answer_at:
            self._close(CloseReason.BIND_TIMEOUT)
            return
        if now >= self._unbind_answer_at:
            self._close(CloseReason.UNBIND_TIMEOUT)
            return
        if now >= self._enquire_answer_at:
            self._close(CloseReason.ENQUIRE_LINK_TIMEOUT)
            return
        if self._window:
            self._expire_requests(now)
            if self._state is CLOSED:
                return
        if state is BOUND:
            if (
                now >= self._link_idle_at
                and self._enquire_answer_at == _INFINITY
                and self._window.room > 0
            ):
                self._send_enquire_link(now)
        elif state is UNBINDING and self._unbind_answer_at == _INFINITY:
            if now >= self._drain_until:
                if self._window.room > 0:
                    self._send_unbind(now)
                else:
                    self._close(CloseReason.DRAIN_TIMEOUT)
            else:
                self._send_unbind_when_drained(now)

    # --- outputs -------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Octets to write to the connection, oldest first; b"" when there are none."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def next_event(self) -> Event | None:
        events = self._events
        return events.popleft() if events else None

    def next_deadline(self) -> float | None:
        """When handle_timer must next be called (monotonic seconds), or None for never.

        Only deadlines that can act are reported: an idle link with a full window waits for
        the oldest request's timeout, which frees the slot its enquire_link needs.
        """
        state = self._state
        if state is CLOSED:
            return None
        deadline = min(self._bind_answer_at, self._unbind_answer_at, self._enquire_answer_at)
        window = self._window
        if window:
            for _, (tag, sent_at, _) in window.items():
                if type(tag) is not _Internal:
                    oldest = sent_at + self._response_timeout
                    if oldest < deadline:
                        deadline = oldest
                    break
        if state is BOUND:
            if (
                self._enquire_answer_at == _INFINITY
                and window.room > 0
                and self._link_idle_at < deadline
            ):
                deadline = self._link_idle_at
        elif (
            state is UNBINDING
            and self._unbind_answer_at == _INFINITY
            and self._drain_until < deadline
        ):
            deadline = self._drain_until
        return None if deadline == _INFINITY else deadline

    # --- the machinery -------------------------------------------------------------------

    def _set_state(self, state: SessionState) -> None:
        self._state = state
        self._moves = _MOVES[state]

    def _apply(self, move: SessionInput, now: float, *args: object) -> object:
        """Run one of our calls through TRANSITIONS."""
        entry = self._moves.get(move)
        if entry is None:
            raise LocalProtocolError(f"{move.value} is not allowed in state {self._state.name}")
        handler, next_state = entry
        result = handler(self, now, *args)
        if self._state is not CLOSED:
            if next_state is not self._state:
                self._set_state(next_state)
            if next_state is UNBINDING:
                self._send_unbind_when_drained(now)
        return result

    def _receive_frame(
        self, command_id: int, command_status: int, sequence_number: int, frame: bytes,
        now: float,
    ) -> None:
        """Classify one frame from its header, decode it, and run it through TRANSITIONS.

        Classifying first costs nothing and changes nothing: a frame that does not decode is
        answered (see _answer_decode_error) and leaves the window as it was.
        """
        entry: InFlight | None = None
        if command_id & RESPONSE_BIT:
            entry = self._window.get(sequence_number)
            if entry is None:
                move = (
                    SessionInput.STRAY_GENERIC_NACK
                    if command_id == _GENERIC_NACK_ID
                    else SessionInput.STRAY_RESPONSE
                )
            elif command_id != _GENERIC_NACK_ID and _RESPONSE_ID[type(entry[2])] != command_id:
                # Right number, wrong type: it answers nothing we sent. The request stays
                # outstanding and times out if its real answer never comes.
                move = SessionInput.STRAY_RESPONSE
                entry = None
            else:
                tag = entry[0]
                move = tag.answer if type(tag) is _Internal else SessionInput.RESPONSE
        else:
            move = _REQUEST_INPUT.get(command_id, SessionInput.FOREIGN_REQUEST)
        try:
            pdu = decode_frame(frame, command_id, command_status, sequence_number, self._lenient)
        except PduDecodeError as exc:
            self._answer_decode_error(exc, now)
            return
        if self.on_pdu_in is not None:
            self.on_pdu_in(command_id)
        row = self._moves.get(move)
        if row is None:
            self._refuse_in_state(pdu, move, now)
            return
        handler, next_state = row
        if entry is not None:
            self._window.pop(sequence_number)
        handler(self, now, pdu, entry)
        if self._state is not CLOSED and next_state is not self._state:
            self._set_state(next_state)

    def _send(self, data: bytes, now: float) -> None:
        self._out.append(data)
        if self.on_pdu_out is not None:
            self.on_pdu_out(int.from_bytes(data[4:8], "big"))

    def _answer(self, request: Pdu, status: int, now: float) -> None:
        """Answer ``request`` with ``status``: its own response type, or generic_nack for a
        request that has none (alert_notification, outbind)."""
        response_class = RESPONSE_CLASS.get(type(request), GenericNack)
        self._send(response_octets(response_class, status, request.sequence_number), now)

    def _close(self, reason: CloseReason) -> None:
        unanswered = tuple(
            (tag, _as_sent(body, sequence_number))
            for sequence_number, (tag, _, body) in self._window.take_all()
            if type(tag) is not _Internal
        )
        self._unacknowledged.clear()
        self._bind_answer_at = self._enquire_answer_at = self._unbind_answer_at = _INFINITY
        self._drain_until = self._link_idle_at = _INFINITY
        self._set_state(CLOSED)
        self._events.append(Closed(reason, unanswered))

    # --- handlers of our calls (TRANSITIONS) ---------------------------------------------

    def _ignore(self, now: float, *args: object) -> None:
        pass

    def _close_locally(self, now: float) -> None:
        self._close(CloseReason.LOCAL_CLOSE)

    def _send_bind(self, now: float) -> None:
        window = self._window
        sequence_number = window.allocate()
        request = self._config.bind_pdu(sequence_number)
        data = encode(request)
        window.add(sequence_number, _BIND_TAG, now, request)
        self._send(data, now)
        self._bind_answer_at = now + self._config.bind_timeout

    def _send_request(self, now: float, body: Pdu, tag: object) -> int:
        if type(body) not in REQUEST_BODIES:
            raise LocalProtocolError(
                f"send_request takes submit_sm, data_sm, submit_multi, query_sm, cancel_sm or "
                f"replace_sm, not {type(body).__name__}"
            )
        if not self._can_submit:
            # SMPP 3.4 table 2-1: a receiver bind issues no operations but enquire_link/unbind.
            raise LocalProtocolError("a receiver bind cannot send requests")
        window = self._window
        sequence_number = window.add_next(tag, now, body)
        try:
            # The sequence number goes into the octets, not into a copy of the body, which
            # would cost more than the encoding. The window keeps the caller's body;
            # _as_sent() rebuilds the PDU as sent when it is handed back.
            data = encode(body, sequence_number)
        except BaseException:
            # LocalProtocolError for a value the spec forbids: nothing stays recorded (the
            # number is simply skipped).
            window.pop(sequence_number)
            raise
        self._out.append(data)
        self._link_idle_at = now + self._enquire_link_interval
        if self.on_pdu_out is not None:
            self.on_pdu_out(body.command_id)
        return sequence_number

    def _send_acknowledgement(self, now: float, sequence_number: int, status: int) -> None:
        if not 0 <= status <= _MAX_STATUS:
            raise LocalProtocolError(f"command_status {status} outside 0..0xFFFFFFFF")
        response_class = self._unacknowledged.pop(sequence_number, None)
        if response_class is None:
            raise LocalProtocolError(
                f"no deliver_sm or data_sm with sequence number {sequence_number} "
                "awaits acknowledgement"
            )
        self._send(response_octets(response_class, status, sequence_number), now)

    def _start_unbind(self, now: float) -> None:
        self._drain_until = now + self._config.drain_timeout

    def _send_unbind_when_drained(self, now: float) -> None:
        """While UNBINDING, send the unbind as soon as nothing is outstanding either way."""
        if (
            self._unbind_answer_at == _INFINITY
            and not self._window
            and not self._unacknowledged
        ):
            self._send_unbind(now)

    def _send_unbind(self, now: float) -> None:
        window = self._window
        sequence_number = window.allocate()
        window.add(sequence_number, _UNBIND_TAG, now, Unbind(sequence_number=sequence_number))
        self._send(_pack_header(HEADER_LENGTH, CommandId.UNBIND, 0, sequence_number), now)
        self._unbind_answer_at = now + self._config.unbind_timeout
        self._drain_until = _INFINITY

    # --- timers --------------------------------------------------------------------------

    def _expire_requests(self, now: float) -> None:
        """RequestTimedOut for every request from send_request older than response_timeout."""
        timeout = self._response_timeout
        expired = []
        for sequence_number, (tag, sent_at, _) in self._window.items():
            if type(tag) is _Internal:
                continue  # the bind, enquire_link and unbind have deadlines of their own
            # The same sum next_deadline() reports, so the timer fires at exactly that instant
            # (now - timeout would round differently and leave the deadline in the past).
            if sent_at + timeout > now:
                break  # oldest first: the rest are younger
            expired.append(sequence_number)
        for sequence_number in expired:
            entry = self._window.pop(sequence_number)
            assert entry is not None
            tag, _, body = entry
            timed_out = self._timed_out
            timed_out[sequence_number] = None
            if len(timed_out) > self._timed_out_limit:
                del timed_out[next(iter(timed_out))]
            self._events.append(
                RequestTimedOut(tag, sequence_number, _as_sent(body, sequence_number))
            )
            self._consecutive_timeouts += 1
            if self._consecutive_timeouts >= self._config.max_consecutive_timeouts:
                self._close(CloseReason.TOO_MANY_TIMEOUTS)
                return

    def _send_enquire_link(self, now: float) -> None:
        """SMPP 3.4 §4.11: probe an idle link. It takes a window slot like any request."""
        window = self._window
        sequence_number = window.allocate()
        window.add(
            sequence_number, _ENQUIRE_LINK_TAG, now, EnquireLink(sequence_number=sequence_number)
        )
        self._send(_pack_header(HEADER_LENGTH, CommandId.ENQUIRE_LINK, 0, sequence_number), now)
        self._link_idle_at = now + self._enquire_link_interval
        self._enquire_answer_at = now + self._enquire_link_timeout

    # --- handlers of requests from the SMSC (TRANSITIONS) ----------------------------------

    def _answer_enquire_link(self, now: float, pdu: Pdu, entry: None) -> None:
        # SMPP 3.4 §4.11.2: enquire_link_resp echoes the sequence number, status ESME_ROK.
        self._send(
            _pack_header(HEADER_LENGTH, CommandId.ENQUIRE_LINK_RESP, 0, pdu.sequence_number), now
        )

    def _answer_unbind(self, now: float, pdu: Pdu, entry: None) -> None:
        # SMPP 3.4 §4.2: answer, then the connection goes. Outstanding requests are handed
        # back: the SMSC will not answer them on this connection.
        self._send(_pack_header(HEADER_LENGTH, CommandId.UNBIND_RESP, 0, pdu.sequence_number), now)
        self._events.append(Unbound("peer"))
        self._close(CloseReason.PEER_UNBOUND)

    def _hand_up(self, now: float, pdu: Pdu, entry: None) -> None:
        if self._config.bind_type == "transmitter":
            # SMPP 3.4 table 2-1: deliver_sm, data_sm and alert_notification reach an ESME
            # only on a receiver or transceiver bind.
            self._refuse(pdu, CommandStatus.ESME_RINVBNDSTS, "on a transmitter bind", now)
            return
        sequence_number = pdu.sequence_number
        response_class = RESPONSE_CLASS.get(type(pdu))
        if response_class is not None:
            if sequence_number in self._unacknowledged:
                # SMPP 3.4 §5.1.4: a sequence number identifies one outstanding request. Do not
                # hand up a second message the one acknowledge() could not tell apart; a
                # transient error makes the SMSC send it again later, under a new number.
                self._refuse(
                    pdu,
                    CommandStatus.ESME_RX_T_APPN,
                    "reuses a sequence number still awaiting our response",
                    now,
                )
                return
            self._unacknowledged[sequence_number] = response_class
        self._events.append(RequestReceived(sequence_number, pdu))

    def _reject_command(self, now: float, pdu: Pdu, entry: None) -> None:
        status = CommandStatus.ESME_RINVCMDID
        self._send(response_octets(GenericNack, status, pdu.sequence_number), now)
        self._events.append(
            PeerViolation(
                status, pdu.sequence_number, f"{type(pdu).__name__} is not sent to an ESME"
            )
        )

    def _refuse_outbind(self, now: float, pdu: Pdu, entry: None) -> None:
        self._refuse(
            pdu,
            CommandStatus.ESME_RINVBNDSTS,
            "refused: smppgw opens its own connections and binds on them; outbind belongs on "
            "a connection the SMSC opens (SMPP 3.4 §4.1.7)",
            now,
        )

    def _refuse_in_state(self, pdu: Pdu, move: SessionInput, now: float) -> None:
        """A PDU from the SMSC with no row in TRANSITIONS."""
        if type(pdu).command_id & RESPONSE_BIT:
            self.unexpected_responses += 1  # unreachable today; never answer a response
            return
        self._refuse(pdu, CommandStatus.ESME_RINVBNDSTS, f"in state {self._state.name}", now)

    def _refuse(self, pdu: Pdu, status: CommandStatus, why: str, now: float) -> None:
        self._answer(pdu, status, now)
        self._events.append(
            PeerViolation(status, pdu.sequence_number, f"{type(pdu).__name__} {why}")
        )

    # --- handlers of responses from the SMSC (TRANSITIONS) ---------------------------------

    def _on_bind_resp(self, now: float, pdu: Pdu, entry: InFlight) -> None:
        self._bind_answer_at = _INFINITY
        status = pdu.command_status
        if status or type(pdu) is GenericNack:
            self._events.append(BindRejected(status))
            self._close(CloseReason.BIND_REJECTED)
            return
        version = pdu.tlv(Tag.SC_INTERFACE_VERSION)
        self._link_idle_at = now + self._enquire_link_interval  # the first probe's due time
        self._events.append(
            Bound(
                self._config.bind_type,
                getattr(pdu, "system_id", ""),
                None if version is None else int.from_bytes(version.raw, "big"),
            )
        )

    def _on_response(self, now: float, pdu: Pdu, entry: InFlight) -> None:
        self._consecutive_timeouts = 0
        self._events.append(
            response_received(entry[0], pdu.sequence_number, pdu.command_status, pdu)
        )

    def _on_enquire_link_resp(self, now: float, pdu: Pdu, entry: InFlight) -> None:
        # Any answer proves the link, even a generic_nack from an SMSC that does not
        # implement enquire_link.
        self._enquire_answer_at = _INFINITY

    def _on_unbind_resp(self, now: float, pdu: Pdu, entry: InFlight) -> None:
        self._unbind_answer_at = _INFINITY
        self._events.append(Unbound("local"))
        self._close(CloseReason.UNBOUND)

    def _drop_stray_response(self, now: float, pdu: Pdu, entry: None) -> None:
        if pdu.sequence_number in self._timed_out:
            self.late_responses += 1
        else:
            self.unexpected_responses += 1

    def _report_stray_nack(self, now: float, pdu: Pdu, entry: None) -> None:
        sequence_number = pdu.sequence_number
        if sequence_number in self._timed_out:
            self.late_responses += 1
            return
        self._events.append(
            PeerViolation(
                pdu.command_status,
                sequence_number,
                f"generic_nack names sequence number {sequence_number}, which is outstanding "
                "nowhere",
            )
        )

    # --- decoding errors -----------------------------------------------------------------

    def _answer_decode_error(self, exc: PduDecodeError, now: float) -> None:
        """A framed PDU that does not decode (SMPP 3.4 §4.3): see the theory of operation."""
        sequence_number = exc.sequence_number
        command_id = exc.command_id
        if sequence_number is not None and command_id != _GENERIC_NACK_ID:
            request_class = PDU_BY_COMMAND_ID.get(command_id) if command_id is not None else None
            response_class = (
                RESPONSE_CLASS.get(request_class, GenericNack) if request_class else GenericNack
            )
            self._send(response_octets(response_class, exc.status, sequence_number), now)
        self._events.append(PeerViolation(exc.status, sequence_number, exc.detail))

    def _on_frame_error(self, exc: FrameError, now: float) -> None:
        sequence_number = exc.sequence_number
        if sequence_number is not None:
            self._send(response_octets(GenericNack, exc.status, sequence_number), now)
        self._events.append(PeerViolation(exc.status, sequence_number, exc.detail))
        self._close(CloseReason.FRAME_ERROR)


_Handler = Callable[..., object]  # the unbound methods named in TRANSITIONS

# TRANSITIONS resolved to functions, per state: one dict lookup per input on the hot path.
_MOVES: dict[SessionState, dict[SessionInput, tuple[_Handler, SessionState]]] = {
    state: {} for state in SessionState
}
for (_state, _move), (_name, _next) in TRANSITIONS.items():
    _MOVES[_state][_move] = (getattr(Session, _name), _next)
del _state, _move, _name, _next
