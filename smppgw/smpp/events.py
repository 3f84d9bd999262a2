"""What an SMPP session tells the layer above, as values: cloudhopper's SmppSessionHandler
vocabulary returned from ``Session.next_event()`` instead of called back.

Frozen, slotted dataclasses, each with one consumer (the bind slot). No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from smppgw.smpp.pdu import Pdu, become, writable_twin

__all__ = [
    "BindRejected",
    "Bound",
    "CloseReason",
    "Closed",
    "Event",
    "PeerViolation",
    "RequestReceived",
    "RequestTimedOut",
    "ResponseReceived",
    "Unbound",
    "response_received",
]


class CloseReason(Enum):
    """Why a session ended. The values are the ``reason`` label of the reconnect metric."""

    PEER_CLOSED = "peer_closed"  # the SMSC closed the connection (receive_data(b""))
    LOCAL_CLOSE = "local_close"  # close() was called, or unbind() before the bind completed
    BIND_REJECTED = "bind_rejected"  # bind_resp (or generic_nack) with a non-zero status
    BIND_TIMEOUT = "bind_timeout"  # no bind_resp within bind_timeout
    ENQUIRE_LINK_TIMEOUT = "enquire_link_timeout"  # our enquire_link went unanswered
    TOO_MANY_TIMEOUTS = "too_many_timeouts"  # max_consecutive_timeouts responses missed in a row
    FRAME_ERROR = "frame_error"  # bad command_length: the byte stream cannot be re-synchronised
    UNBOUND = "unbound"  # we sent unbind and the SMSC answered it
    PEER_UNBOUND = "peer_unbound"  # the SMSC sent unbind; we answered it
    UNBIND_TIMEOUT = "unbind_timeout"  # our unbind went unanswered
    DRAIN_TIMEOUT = "drain_timeout"  # unbind() could not even send the unbind: window still full


@dataclass(frozen=True, slots=True)
class Bound:
    """The bind succeeded; requests may be sent (``Session.can_send``).

    ``system_id`` is the SMSC's, from the bind_resp; ``sc_interface_version`` is its
    sc_interface_version TLV (SMPP 3.4 §5.3.2.25) or None when absent, which §5.3.2.25 says
    means the SMSC does not support optional parameters.
    """

    bind_type: str
    system_id: str
    sc_interface_version: int | None


@dataclass(frozen=True, slots=True)
class BindRejected:
    """The SMSC refused the bind with this status (ESME_RINVPASWD, ESME_RALYBND, ...).

    Always followed by ``Closed(CloseReason.BIND_REJECTED)``. ``status.classify`` says whether
    to retry soon or back off long and alert.
    """

    status: int


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The SMSC answered the request sent with ``tag``.

    ``status`` is the response's command_status; ``pdu`` is the response itself (a
    SubmitSmResp for a submit_sm), or a GenericNack when the SMSC answered the request with
    generic_nack (SMPP 3.4 §3.3), which fails the request with the nack's status.
    """

    tag: object
    sequence_number: int
    status: int
    pdu: Pdu


_new_response_received = writable_twin(ResponseReceived)


def response_received(tag: object, sequence_number: int, status: int, pdu: Pdu) -> ResponseReceived:
    """``ResponseReceived(tag, sequence_number, status, pdu)`` at about a third of the cost
    (see pdu.writable_twin): the session builds one for every request answered."""
    event = _new_response_received()
    event.tag = tag
    event.sequence_number = sequence_number
    event.status = status
    event.pdu = pdu
    return become(event, ResponseReceived)


@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """No response within ``response_timeout``: the request left the window.

    Whether the SMSC acted on it is unknown; a response that still arrives is dropped (and
    counted in ``Session.late_responses``). ``request`` is the PDU as sent.
    """

    tag: object
    sequence_number: int
    request: Pdu


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The SMSC sent deliver_sm, data_sm or alert_notification.

    For deliver_sm and data_sm nothing is answered until ``Session.acknowledge(sequence_number,
    status, now)`` is called: after the store has committed the message (ESME_ROK), or with a
    transient status (ESME_RX_T_APPN, ESME_RMSGQFUL) if it could not, so the SMSC redelivers.
    alert_notification has no response (SMPP 3.4 §4.12) and must not be acknowledged.
    """

    sequence_number: int
    pdu: Pdu


@dataclass(frozen=True, slots=True)
class PeerViolation:
    """The SMSC broke the protocol; the session has already answered on the wire
    (generic_nack or the matching response with ``status``) where an answer was due.

    For logs and metrics only: the bind stays up unless a ``Closed`` follows.
    ``sequence_number`` is None when the offending PDU's header could not be read.
    """

    status: int
    sequence_number: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class Unbound:
    """The unbind handshake completed; ``Closed`` follows at once."""

    initiated_by: Literal["local", "peer"]


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: write what ``data_to_send()`` still returns, then close the
    transport.

    ``unanswered`` holds, oldest first, every request sent with ``send_request`` that got
    neither a ``ResponseReceived`` nor a ``RequestTimedOut``, as ``(tag, request)``: the
    SMSC may or may not have acted on them, so the pool resends them (at-least-once).
    """

    reason: CloseReason
    unanswered: tuple[tuple[object, Pdu], ...] = ()

    @property
    def unanswered_tags(self) -> tuple[object, ...]:
        return tuple(tag for tag, _ in self.unanswered)


Event = (
    Bound
    | BindRejected
    | ResponseReceived
    | RequestTimedOut
    | RequestReceived
    | PeerViolation
    | Unbound
    | Closed
)
