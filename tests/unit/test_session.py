"""The session as dialogues: an ESME session and a tiny SMSC joined in memory (h11's
ConnectionPair), each step an input, then the exact octets out and the exact events.

Time is a number the test moves, to ``next_deadline()`` when a timer must fire. No sleeps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from smppgw.smpp import codec
from smppgw.smpp.constants import CommandId, CommandStatus, Tag
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.events import (
    BindRejected,
    Bound,
    Closed,
    CloseReason,
    Event,
    PeerViolation,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
    Unbound,
)
from smppgw.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
)
from smppgw.smpp.session import (
    TRANSITIONS,
    Session,
    SessionConfig,
    SessionInput,
    SessionState,
    response_octets,
)
from tests.vectors.from_smsc import FROM_SMSC, FromSmsc
from tests.vectors.pdus import cstr, wire

S = CommandStatus
CONFIG = SessionConfig(
    system_id="acme", password="s3cr3t", system_type="MovileSMSC", addr_ton=1, addr_npi=1
)
BIND_OCTETS = wire(
    0x00000009, 0, 1, cstr("acme"), cstr("s3cr3t"), cstr("MovileSMSC"), "34", "01", "01", cstr("")
)


def submit(destination: str = "5511999999999", text: bytes = b"hello") -> SubmitSm:
    return SubmitSm(
        source_addr="Acme", dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
        short_message=text,
    )


def deliver(sequence_number: int, text: bytes = b"hi") -> DeliverSm:
    return DeliverSm(
        sequence_number=sequence_number, source_addr="5511988887777", destination_addr="Acme",
        short_message=text,
    )


class Pair:
    """An ESME session and the SMSC end of the same connection, with a clock."""

    def __init__(self, config: SessionConfig = CONFIG, now: float = 0.0) -> None:
        self.session = Session(config)
        self.smsc_decoder = codec.FrameDecoder()
        self.now = now

    @classmethod
    def bound(cls, config: SessionConfig = CONFIG, now: float = 0.0) -> Pair:
        pair = cls(config, now)
        pair.session.bind(now)
        (bind,) = pair.wire()
        response = {
            BindTransceiver: BindTransceiverResp,
            BindTransmitter: BindTransmitterResp,
            BindReceiver: BindReceiverResp,
        }[type(bind)]
        assert pair.smsc_sends(response(sequence_number=bind.sequence_number, system_id="SMSC"))
        assert pair.session.state is SessionState.BOUND
        return pair

    # ESME -> SMSC
    def octets(self) -> bytes:
        return self.session.data_to_send()

    def wire(self) -> list[Pdu]:
        """What the ESME sent since last asked, as the SMSC decodes it."""
        self.smsc_decoder.feed(self.session.data_to_send())
        return list(self.smsc_decoder)

    # SMSC -> ESME
    def smsc_sends(self, *pdus: Pdu) -> list[Event]:
        return self.feed(b"".join(codec.encode(p) for p in pdus))

    def feed(self, data: bytes) -> list[Event]:
        self.session.receive_data(data, self.now)
        return self.events()

    def events(self) -> list[Event]:
        out = []
        while (event := self.session.next_event()) is not None:
            out.append(event)
        return out

    # the clock
    def at(self, now: float) -> Pair:
        self.now = now
        return self

    def tick(self) -> list[Event]:
        """Move the clock to the next deadline and fire it."""
        deadline = self.session.next_deadline()
        assert deadline is not None and deadline >= self.now
        self.now = deadline
        self.session.handle_timer(deadline)
        return self.events()

    def submit(self, tag: object, **kwargs: Any) -> int:
        return self.session.send_request(submit(**kwargs), self.now, tag=tag)


# --- bind -----------------------------------------------------------------------------------


def test_bind_sends_exact_octets_then_bound() -> None:
    pair = Pair(now=100.0)
    session = pair.session
    assert session.state is SessionState.OPEN
    assert repr(session) == "<Session OPEN trx in_flight=0/10>"
    assert session.next_deadline() is None and not session.can_send
    session.bind(100.0)
    assert pair.octets() == BIND_OCTETS
    assert session.state is SessionState.BINDING and session.in_flight == 1
    assert session.next_deadline() == 110.0  # bind_timeout
    assert pair.events() == []

    resp = BindTransceiverResp(
        sequence_number=1, system_id="SMSC", tlvs=(Tlv(Tag.SC_INTERFACE_VERSION, b"\x34"),)
    )
    assert pair.at(100.2).smsc_sends(resp) == [Bound("transceiver", "SMSC", 0x34)]
    assert session.state is SessionState.BOUND and session.can_send
    assert repr(session) == "<Session BOUND trx in_flight=0/10>"
    assert session.next_deadline() == 130.2  # idle since the bind_resp
    assert pair.octets() == b""


@pytest.mark.parametrize(
    ("bind_type", "request_class", "response_class", "short"),
    [
        ("transmitter", BindTransmitter, BindTransmitterResp, "tx"),
        ("receiver", BindReceiver, BindReceiverResp, "rx"),
    ],
)
def test_bind_type_picks_the_pdu(
    bind_type: Any, request_class: type[Pdu], response_class: type[Pdu], short: str
) -> None:
    pair = Pair(dataclasses.replace(CONFIG, bind_type=bind_type))
    pair.session.bind(0.0)
    (bind,) = pair.wire()
    assert type(bind) is request_class
    assert pair.smsc_sends(response_class(sequence_number=1)) == [Bound(bind_type, "", None)]
    assert repr(pair.session) == f"<Session BOUND {short} in_flight=0/10>"


def test_bind_rejected_closes() -> None:
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    events = pair.smsc_sends(
        BindTransceiverResp(sequence_number=1, command_status=S.ESME_RINVPASWD)
    )
    assert events == [BindRejected(S.ESME_RINVPASWD), Closed(CloseReason.BIND_REJECTED, ())]
    assert pair.session.state is SessionState.CLOSED
    assert pair.octets() == b"" and pair.session.next_deadline() is None


def test_bind_answered_by_generic_nack_is_a_rejection() -> None:
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    events = pair.smsc_sends(GenericNack(sequence_number=1, command_status=S.ESME_RINVCMDID))
    assert events == [BindRejected(S.ESME_RINVCMDID), Closed(CloseReason.BIND_REJECTED, ())]


def test_bind_resp_of_the_wrong_type_does_not_bind() -> None:
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    assert pair.smsc_sends(BindTransmitterResp(sequence_number=1)) == []
    assert pair.session.state is SessionState.BINDING
    assert pair.session.unexpected_responses == 1


def test_bind_timeout_closes_exactly_at_the_deadline() -> None:
    pair = Pair(now=5.0)
    pair.session.bind(5.0)
    pair.session.handle_timer(14.999)
    assert pair.events() == []
    assert pair.tick() == [Closed(CloseReason.BIND_TIMEOUT, ())]
    assert pair.now == 15.0


def test_requests_from_the_smsc_before_bound_get_invbndsts() -> None:
    # SMPP 3.4 table 2-1: deliver_sm needs a receiver or transceiver bind.
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    events = pair.smsc_sends(deliver(7))
    assert pair.octets() == wire(0x80000005, S.ESME_RINVBNDSTS, 7)
    assert events == [PeerViolation(S.ESME_RINVBNDSTS, 7, "DeliverSm in state BINDING")]
    assert pair.session.state is SessionState.BINDING


def test_enquire_link_from_the_smsc_is_answered_even_while_binding() -> None:
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    assert pair.smsc_sends(EnquireLink(sequence_number=0)) == []
    assert pair.octets() == wire(0x80000015, 0, 0)  # sequence number 0 echoed as sent


# --- our calls that the state does not allow -------------------------------------------------


def test_calls_the_state_does_not_allow_raise_and_send_nothing() -> None:
    pair = Pair()
    session = pair.session
    with pytest.raises(LocalProtocolError, match=r"send_request\(\) is not allowed in state OPEN"):
        pair.submit("m")
    with pytest.raises(LocalProtocolError, match="acknowledge"):
        session.acknowledge(1, S.ESME_ROK, 0.0)
    session.bind(0.0)
    with pytest.raises(LocalProtocolError, match=r"bind\(\) is not allowed in state BINDING"):
        session.bind(0.0)
    with pytest.raises(LocalProtocolError):
        pair.submit("m")
    assert pair.octets() == BIND_OCTETS


def test_send_request_refuses_what_the_session_sends_itself() -> None:
    pair = Pair.bound()
    for body in (EnquireLink(), Unbind(), DeliverSmResp(), BindTransceiver()):
        with pytest.raises(LocalProtocolError, match="send_request takes"):
            pair.session.send_request(body, 0.0, tag="x")
    assert pair.octets() == b"" and pair.session.in_flight == 0


def test_receiver_bind_cannot_send_requests() -> None:
    pair = Pair.bound(dataclasses.replace(CONFIG, bind_type="receiver"))
    assert not pair.session.can_send
    with pytest.raises(LocalProtocolError, match="receiver"):
        pair.submit("m")


def test_a_request_that_does_not_encode_leaves_no_trace() -> None:
    pair = Pair.bound()
    with pytest.raises(LocalProtocolError, match="destination_addr"):
        pair.submit("m", destination="1" * 30)
    assert pair.session.in_flight == 0 and pair.octets() == b""
    assert pair.submit("m2") == 3  # the number allocated to the bad one is skipped


# --- requests and responses ------------------------------------------------------------------


def test_submit_and_response() -> None:
    pair = Pair.bound(now=1.0)
    sequence_number = pair.at(2.0).submit("msg-1")
    assert sequence_number == 2
    assert pair.octets() == codec.encode(dataclasses.replace(submit(), sequence_number=2))
    assert pair.session.in_flight == 1 and pair.session.window_room == 9
    assert repr(pair.session) == "<Session BOUND trx in_flight=1/10>"
    assert pair.session.next_deadline() == 12.0  # response_timeout after sending

    resp = SubmitSmResp(sequence_number=2, message_id="b9f3a7c2-0000-4000-8000-000000000001")
    assert pair.at(2.5).smsc_sends(resp) == [ResponseReceived("msg-1", 2, 0, resp)]
    assert pair.session.in_flight == 0
    assert pair.session.next_deadline() == 32.0  # idle since the submit went out


def test_the_bodys_own_sequence_number_is_replaced() -> None:
    pair = Pair.bound()
    body = dataclasses.replace(submit(), sequence_number=999)
    assert pair.session.send_request(body, 0.0, tag="x") == 2
    (sent,) = pair.wire()
    assert sent == dataclasses.replace(body, sequence_number=2)
    assert pair.tick() == [RequestTimedOut("x", 2, sent)]  # handed back as it was sent


def test_responses_in_any_order_match_their_requests() -> None:
    pair = Pair.bound()
    numbers = [pair.submit(f"m{i}") for i in range(3)]
    pair.octets()
    resps = [SubmitSmResp(sequence_number=n, message_id=str(n)) for n in reversed(numbers)]
    events = pair.smsc_sends(*resps)
    assert events == [ResponseReceived(f"m{n - 2}", n, 0, r) for n, r in zip([4, 3, 2], resps)]


def test_error_response_without_body_is_a_response() -> None:
    pair = Pair.bound()
    pair.submit("m")
    events = pair.feed(wire(0x80000004, S.ESME_RTHROTTLED, 2))
    assert events == [
        ResponseReceived("m", 2, S.ESME_RTHROTTLED, SubmitSmResp(
            sequence_number=2, command_status=S.ESME_RTHROTTLED
        ))
    ]


def test_window_full_raises_and_frees_on_response() -> None:
    pair = Pair.bound(dataclasses.replace(CONFIG, window=2))
    pair.submit("a")
    pair.submit("b")
    assert not pair.session.can_send and pair.session.window_room == 0
    with pytest.raises(LocalProtocolError, match="window full"):
        pair.submit("c")
    assert len(pair.wire()) == 2
    pair.smsc_sends(SubmitSmResp(sequence_number=3))
    assert pair.session.can_send
    assert pair.submit("c") == 4


def test_generic_nack_fails_the_request_it_names() -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.submit("b")
    pair.octets()
    nack = GenericNack(sequence_number=3, command_status=S.ESME_RINVCMDLEN)
    assert pair.smsc_sends(nack) == [ResponseReceived("b", 3, S.ESME_RINVCMDLEN, nack)]
    assert pair.session.in_flight == 1
    assert pair.octets() == b""  # nobody answers a nack


@pytest.mark.parametrize("sequence_number", [0, 77])
def test_generic_nack_naming_nothing_is_a_violation_and_not_answered(sequence_number: int) -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.octets()
    events = pair.smsc_sends(GenericNack(sequence_number=sequence_number, command_status=3))
    assert events == [
        PeerViolation(
            3, sequence_number,
            f"generic_nack names sequence number {sequence_number}, which is outstanding nowhere",
        )
    ]
    assert pair.octets() == b"" and pair.session.in_flight == 1


def test_response_for_an_unknown_sequence_number_is_dropped_and_counted() -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.octets()
    assert pair.smsc_sends(SubmitSmResp(sequence_number=99)) == []
    assert pair.smsc_sends(DeliverSmResp(sequence_number=2)) == []  # right number, wrong type
    assert pair.session.unexpected_responses == 2
    assert pair.octets() == b"" and pair.session.in_flight == 1
    assert pair.session.state is SessionState.BOUND


# --- response timeouts -----------------------------------------------------------------------


def test_response_timeout_then_late_response_is_dropped_silently() -> None:
    pair = Pair.bound()
    pair.at(1.0).submit("a")
    request = pair.wire()[0]
    assert pair.tick() == [RequestTimedOut("a", 2, request)]
    assert pair.now == 11.0 and pair.session.in_flight == 0
    assert pair.session.consecutive_timeouts == 1
    assert pair.at(12.0).smsc_sends(SubmitSmResp(sequence_number=2)) == []
    assert pair.smsc_sends(GenericNack(sequence_number=2, command_status=8)) == []
    assert (pair.session.late_responses, pair.session.unexpected_responses) == (2, 0)
    assert pair.octets() == b""


def test_requests_time_out_one_by_one_in_sending_order() -> None:
    config = dataclasses.replace(CONFIG, max_consecutive_timeouts=10)
    pair = Pair.bound(config)
    pair.at(1.0).submit("a")
    pair.at(2.0).submit("b")
    pair.at(2.0).submit("c")
    requests = pair.wire()
    assert pair.tick() == [RequestTimedOut("a", 2, requests[0])]
    assert pair.tick() == [
        RequestTimedOut("b", 3, requests[1]),
        RequestTimedOut("c", 4, requests[2]),
    ]
    assert pair.now == 12.0


def test_max_consecutive_timeouts_close_and_hand_back_the_rest() -> None:
    pair = Pair.bound()  # three in a row close
    for i, t in enumerate([1.0, 2.0, 3.0, 4.0]):
        pair.at(t).submit(f"m{i}")
    requests = pair.wire()
    assert pair.tick() == [RequestTimedOut("m0", 2, requests[0])]
    assert pair.tick() == [RequestTimedOut("m1", 3, requests[1])]
    assert pair.tick() == [
        RequestTimedOut("m2", 4, requests[2]),
        Closed(CloseReason.TOO_MANY_TIMEOUTS, (("m3", requests[3]),)),
    ]
    assert pair.session.state is SessionState.CLOSED and pair.octets() == b""


def test_a_response_between_timeouts_resets_the_count() -> None:
    pair = Pair.bound()
    for i, t in enumerate([1.0, 2.0, 3.0, 4.0]):
        pair.at(t).submit(f"m{i}")
    pair.wire()
    pair.tick()
    pair.tick()
    assert pair.session.consecutive_timeouts == 2
    pair.smsc_sends(SubmitSmResp(sequence_number=4))
    assert pair.session.consecutive_timeouts == 0
    assert [type(e) for e in pair.tick()] == [RequestTimedOut]
    assert pair.session.state is SessionState.BOUND


# --- enquire_link (SMPP 3.4 §4.11) ------------------------------------------------------------


def test_enquire_link_exactly_at_the_idle_interval_and_rescheduled_when_answered() -> None:
    pair = Pair.bound(now=0.0)
    assert pair.tick() == []
    assert pair.now == 30.0
    assert pair.octets() == wire(0x00000015, 0, 2)
    assert pair.session.in_flight == 1  # it takes a window slot
    assert pair.session.next_deadline() == 40.0  # enquire_link_timeout = response_timeout

    assert pair.at(31.0).smsc_sends(EnquireLinkResp(sequence_number=2)) == []
    assert pair.session.in_flight == 0
    assert pair.session.next_deadline() == 60.0  # one interval after our probe went out
    assert pair.tick() == [] and pair.octets() == wire(0x00000015, 0, 3)


def test_enquire_link_unanswered_closes_and_hands_back() -> None:
    config = dataclasses.replace(CONFIG, enquire_link_timeout=5.0, response_timeout=60.0)
    pair = Pair.bound(config)
    pair.at(1.0).submit("m")
    (request,) = pair.wire()
    assert pair.tick() == []
    assert (pair.now, pair.octets()) == (31.0, wire(0x00000015, 0, 3))
    assert pair.tick() == [Closed(CloseReason.ENQUIRE_LINK_TIMEOUT, (("m", request),))]
    assert pair.now == 36.0


def test_only_our_own_requests_postpone_enquire_link() -> None:
    # Wavy asks for an enquire_link every 30 to 59 s (PROVIDERS.md): a link the SMSC keeps
    # busy with deliver_sm or its own probes still gets ours, so only what smppgw itself
    # requested counts as traffic.
    pair = Pair.bound(now=0.0)
    pair.at(20.0).submit("m")
    assert pair.session.next_deadline() == 30.0  # the response timeout comes first now
    pair.at(25.0).smsc_sends(SubmitSmResp(sequence_number=2))
    assert pair.session.next_deadline() == 50.0  # idle since our submit, not its answer
    pair.at(40.0).smsc_sends(deliver(1))
    pair.session.acknowledge(1, S.ESME_ROK, 42.0)
    assert pair.session.next_deadline() == 50.0
    pair.octets()
    assert pair.tick() == [] and pair.octets() == wire(0x00000015, 0, 3)
    assert pair.now == 50.0


def test_enquire_link_goes_out_while_the_smsc_probes_every_five_seconds() -> None:
    pair = Pair.bound(now=0.0)
    sent_at = []
    for second in range(5, 65, 5):
        while (deadline := pair.session.next_deadline()) is not None and deadline <= second:
            pair.tick()
            if pair.wire() == [EnquireLink(sequence_number=len(sent_at) + 2)]:
                sent_at.append(pair.now)
                pair.smsc_sends(EnquireLinkResp(sequence_number=len(sent_at) + 1))
        assert pair.at(float(second)).smsc_sends(EnquireLink(sequence_number=second)) == []
        assert pair.octets() == wire(0x80000015, 0, second)
    assert sent_at == [30.0, 60.0]


def test_generic_nack_to_enquire_link_still_proves_the_link() -> None:
    pair = Pair.bound()
    pair.tick()
    pair.octets()
    assert pair.smsc_sends(GenericNack(sequence_number=2, command_status=S.ESME_RINVCMDID)) == []
    assert pair.session.in_flight == 0 and pair.session.state is SessionState.BOUND


def test_enquire_link_waits_for_a_window_slot() -> None:
    # The window rule counts enquire_link: when the link goes idle with every slot taken, the
    # probe goes out the moment the oldest request times out, never as an eleventh request.
    config = dataclasses.replace(
        CONFIG, window=2, response_timeout=50.0, max_consecutive_timeouts=5
    )
    pair = Pair.bound(config)
    pair.at(1.0).submit("a")
    pair.at(2.0).submit("b")
    first, _ = pair.wire()
    assert pair.session.next_deadline() == 51.0  # not 32.0: no slot for a probe then
    assert pair.tick() == [RequestTimedOut("a", 2, first)]
    assert pair.wire() == [EnquireLink(sequence_number=4)]
    assert pair.session.in_flight == 2


def test_enquire_link_from_the_smsc_answered_at_once_while_bound() -> None:
    pair = Pair.bound()
    pair.submit("m")
    pair.octets()
    assert pair.smsc_sends(EnquireLink(sequence_number=0x12345)) == []
    assert pair.octets() == wire(0x80000015, 0, 0x12345)
    assert pair.session.in_flight == 1


# --- sequence numbers (SMPP 3.4 §5.1.4) -------------------------------------------------------


def test_sequence_numbers_wrap_at_0x7fffffff() -> None:
    config = dataclasses.replace(CONFIG, first_sequence_number=0x7FFFFFFE)
    pair = Pair.bound(config)  # the bind took 0x7FFFFFFE
    assert [pair.submit(t) for t in "abc"] == [0x7FFFFFFF, 1, 2]
    assert [p.sequence_number for p in pair.wire()] == [0x7FFFFFFF, 1, 2]
    resp = SubmitSmResp(sequence_number=0x7FFFFFFF)
    assert pair.smsc_sends(resp) == [ResponseReceived("a", 0x7FFFFFFF, 0, resp)]


# --- unbind -----------------------------------------------------------------------------------


def test_unbind_drains_then_unbinds() -> None:
    pair = Pair.bound()
    pair.at(1.0).submit("a")
    pair.octets()
    pair.session.unbind(2.0)
    assert pair.session.state is SessionState.UNBINDING
    assert pair.octets() == b""  # a request is still outstanding
    assert not pair.session.can_send
    with pytest.raises(LocalProtocolError, match="UNBINDING"):
        pair.submit("b")
    assert pair.session.next_deadline() == 11.0  # the response timeout before drain_until 12

    resp = SubmitSmResp(sequence_number=2)
    assert pair.at(3.0).smsc_sends(resp) == [ResponseReceived("a", 2, 0, resp)]
    assert pair.octets() == wire(0x00000006, 0, 3)
    assert pair.session.next_deadline() == 8.0  # unbind_timeout

    events = pair.smsc_sends(UnbindResp(sequence_number=3))
    assert events == [Unbound("local"), Closed(CloseReason.UNBOUND, ())]
    assert pair.session.state is SessionState.CLOSED


def test_unbind_with_nothing_outstanding_goes_at_once() -> None:
    pair = Pair.bound()
    pair.session.unbind(0.0)
    assert pair.octets() == wire(0x00000006, 0, 2)
    pair.session.unbind(0.0)  # a second call changes nothing
    assert pair.octets() == b""


def test_unbind_waits_for_acknowledgements_owed_to_the_smsc() -> None:
    pair = Pair.bound()
    pair.smsc_sends(deliver(40))
    pair.session.unbind(1.0)
    assert pair.octets() == b""
    # deliver_sm may still arrive while draining; it is handed up like any other
    assert pair.smsc_sends(deliver(41)) == [RequestReceived(41, deliver(41))]
    pair.session.acknowledge(40, S.ESME_ROK, 2.0)
    assert pair.octets() == wire(0x80000005, 0, 40, "00")
    pair.session.acknowledge(41, S.ESME_ROK, 2.0)
    assert pair.octets() == wire(0x80000005, 0, 41, "00") + wire(0x00000006, 0, 2)


def test_drain_timeout_sends_unbind_and_hands_back_unanswered() -> None:
    config = dataclasses.replace(CONFIG, drain_timeout=4.0)
    pair = Pair.bound(config)
    pair.at(1.0).submit("a")
    (request,) = pair.wire()
    pair.session.unbind(2.0)
    assert pair.tick() == [] and pair.now == 6.0
    assert pair.octets() == wire(0x00000006, 0, 3)
    assert pair.session.in_flight == 2
    events = pair.smsc_sends(UnbindResp(sequence_number=3))
    assert events == [Unbound("local"), Closed(CloseReason.UNBOUND, (("a", request),))]


def test_drain_timeout_with_a_full_window_closes_without_unbind() -> None:
    config = dataclasses.replace(CONFIG, window=1, drain_timeout=4.0)
    pair = Pair.bound(config)
    pair.submit("a")
    (request,) = pair.wire()
    pair.session.unbind(0.0)
    assert pair.tick() == [Closed(CloseReason.DRAIN_TIMEOUT, (("a", request),))]
    assert pair.octets() == b""


def test_unbind_unanswered_closes() -> None:
    pair = Pair.bound()
    pair.session.unbind(0.0)
    pair.octets()
    assert pair.tick() == [Closed(CloseReason.UNBIND_TIMEOUT, ())]
    assert pair.now == 5.0


def test_unbind_before_bound_just_closes() -> None:
    pair = Pair()
    pair.session.bind(0.0)
    pair.octets()
    pair.session.unbind(0.0)
    assert pair.events() == [Closed(CloseReason.LOCAL_CLOSE, ())]
    assert pair.octets() == b""


def test_unbind_from_the_smsc_is_answered_and_hands_back_unanswered() -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.submit("b")
    requests = pair.wire()
    events = pair.smsc_sends(Unbind(sequence_number=500))
    assert pair.octets() == wire(0x80000006, 0, 500)
    assert events == [
        Unbound("peer"),
        Closed(CloseReason.PEER_UNBOUND, (("a", requests[0]), ("b", requests[1]))),
    ]
    assert pair.session.next_deadline() is None


def test_unbind_from_the_smsc_while_we_drain() -> None:
    pair = Pair.bound()
    pair.submit("a")
    (request,) = pair.wire()
    pair.session.unbind(0.0)
    events = pair.smsc_sends(Unbind(sequence_number=9))
    assert pair.octets() == wire(0x80000006, 0, 9)
    assert events == [Unbound("peer"), Closed(CloseReason.PEER_UNBOUND, (("a", request),))]


# --- close --------------------------------------------------------------------------------------


def test_peer_close_hands_back_every_unanswered_request_in_order() -> None:
    pair = Pair.bound()
    for tag in ("a", "b", "c"):
        pair.submit(tag)
    requests = pair.wire()
    pair.smsc_sends(SubmitSmResp(sequence_number=3))
    assert pair.feed(b"") == [
        Closed(CloseReason.PEER_CLOSED, (("a", requests[0]), ("c", requests[2])))
    ]
    assert pair.feed(codec.encode(SubmitSmResp(sequence_number=2))) == []  # ignored now


def test_close_is_abrupt_and_idempotent() -> None:
    pair = Pair.bound()
    pair.submit("a")
    (request,) = pair.wire()
    pair.smsc_sends(deliver(5))
    pair.session.close(1.0)
    assert pair.events() == [Closed(CloseReason.LOCAL_CLOSE, (("a", request),))]
    pair.session.close(1.0)
    pair.session.unbind(1.0)
    pair.session.acknowledge(5, S.ESME_ROK, 1.0)  # ignored: the SMSC redelivers
    pair.session.handle_timer(1000.0)
    assert pair.events() == [] and pair.octets() == b""
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        pair.submit("b")
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        pair.session.bind(1.0)


def test_close_before_bind() -> None:
    pair = Pair()
    pair.session.close(0.0)
    assert pair.events() == [Closed(CloseReason.LOCAL_CLOSE, ())]


# --- deliver_sm, data_sm, alert_notification -------------------------------------------------


def test_deliver_sm_is_answered_only_after_acknowledge() -> None:
    pair = Pair.bound()
    assert pair.smsc_sends(deliver(7)) == [RequestReceived(7, deliver(7))]
    assert pair.octets() == b""  # nothing before the store commits
    assert pair.session.awaiting_acknowledgement == 1
    pair.session.acknowledge(7, S.ESME_ROK, 0.5)
    assert pair.octets() == wire(0x80000005, 0, 7, "00")
    with pytest.raises(LocalProtocolError, match="sequence number 7"):
        pair.session.acknowledge(7, S.ESME_ROK, 0.5)
    with pytest.raises(LocalProtocolError, match="sequence number 8"):
        pair.session.acknowledge(8, S.ESME_ROK, 0.5)
    assert pair.octets() == b""


def test_deliver_sm_acknowledged_with_a_transient_error() -> None:
    pair = Pair.bound()
    pair.smsc_sends(deliver(7), deliver(8))
    pair.session.acknowledge(8, S.ESME_RX_T_APPN, 0.0)
    pair.session.acknowledge(7, S.ESME_RMSGQFUL, 0.0)
    assert pair.octets() == wire(0x80000005, 0x64, 8) + wire(0x80000005, 0x14, 7)


def test_acknowledge_rejects_an_impossible_status_and_keeps_the_request() -> None:
    pair = Pair.bound()
    pair.smsc_sends(deliver(7))
    with pytest.raises(LocalProtocolError, match="command_status"):
        pair.session.acknowledge(7, 2**32, 0.0)
    pair.session.acknowledge(7, S.ESME_ROK, 0.0)
    assert pair.octets() == wire(0x80000005, 0, 7, "00")


def test_data_sm_from_the_smsc_gets_data_sm_resp() -> None:
    pair = Pair.bound()
    data_sm = DataSm(sequence_number=3, source_addr="123", destination_addr="Acme")
    assert pair.smsc_sends(data_sm) == [RequestReceived(3, data_sm)]
    pair.session.acknowledge(3, S.ESME_ROK, 0.0)
    assert pair.octets() == wire(0x80000103, 0, 3, "00")


def test_alert_notification_is_handed_up_and_never_answered() -> None:
    pair = Pair.bound()
    alert = AlertNotification(sequence_number=4, source_addr="123", esme_addr="Acme")
    assert pair.smsc_sends(alert) == [RequestReceived(4, alert)]
    with pytest.raises(LocalProtocolError):
        pair.session.acknowledge(4, S.ESME_ROK, 0.0)
    assert pair.octets() == b""


def test_deliver_sm_reusing_a_pending_sequence_number_is_refused_transiently() -> None:
    pair = Pair.bound()
    pair.smsc_sends(deliver(7))
    events = pair.smsc_sends(deliver(7, b"other"))
    assert pair.octets() == wire(0x80000005, S.ESME_RX_T_APPN, 7)
    assert events == [
        PeerViolation(
            S.ESME_RX_T_APPN, 7, "DeliverSm reuses a sequence number still awaiting our response"
        )
    ]
    assert pair.session.awaiting_acknowledgement == 1


def test_transmitter_bind_refuses_deliver_sm() -> None:
    pair = Pair.bound(dataclasses.replace(CONFIG, bind_type="transmitter"))
    events = pair.smsc_sends(deliver(7))
    assert pair.octets() == wire(0x80000005, S.ESME_RINVBNDSTS, 7)
    assert events == [PeerViolation(S.ESME_RINVBNDSTS, 7, "DeliverSm on a transmitter bind")]


def test_receiver_bind_takes_deliver_sm() -> None:
    pair = Pair.bound(dataclasses.replace(CONFIG, bind_type="receiver"))
    assert pair.smsc_sends(deliver(7)) == [RequestReceived(7, deliver(7))]


def test_requests_an_esme_never_receives_get_generic_nack_invcmdid() -> None:
    pair = Pair.bound()
    events = pair.smsc_sends(submit(), QuerySm(sequence_number=6, message_id="x"))
    assert pair.octets() == wire(0x80000000, S.ESME_RINVCMDID, 0) + wire(
        0x80000000, S.ESME_RINVCMDID, 6
    )
    assert events == [
        PeerViolation(S.ESME_RINVCMDID, 0, "SubmitSm is not sent to an ESME"),
        PeerViolation(S.ESME_RINVCMDID, 6, "QuerySm is not sent to an ESME"),
    ]
    assert pair.session.state is SessionState.BOUND


# --- every PDU an SMSC can send, one per command (tests/vectors/from_smsc.py) ---------------


@pytest.mark.parametrize("case", FROM_SMSC, ids=lambda case: case.name)
def test_each_pdu_from_the_smsc_while_bound(case: FromSmsc) -> None:
    """The exact octets and events for every command an SMSC can put on the link."""
    pair = Pair.bound()
    sequence_number = 0x1234
    pdu = case.at(sequence_number)
    events = pair.smsc_sends(pdu)
    expected = case.answer(sequence_number) if case.answer is not None else b""
    if case.kind == "handed_up":
        assert events == [RequestReceived(sequence_number, pdu)]
        assert pair.octets() == b""  # nothing until the layer above has stored it
        if case.answer is None:
            with pytest.raises(LocalProtocolError):  # alert_notification has no response
                pair.session.acknowledge(sequence_number, S.ESME_ROK, pair.now)
        else:
            pair.session.acknowledge(sequence_number, S.ESME_ROK, pair.now)
        assert pair.octets() == expected
        assert pair.session.state is SessionState.BOUND
        return
    assert pair.octets() == expected
    if case.closes:
        assert events == [Unbound("peer"), Closed(CloseReason.PEER_UNBOUND)]
        assert pair.session.state is SessionState.CLOSED
        return
    assert pair.session.state is SessionState.BOUND
    if case.violation is not None:
        status = int.from_bytes(expected[8:12], "big") if expected else pdu.command_status
        detail = case.violation.format(seq=sequence_number)
        assert events == [PeerViolation(status, sequence_number, detail)]
    else:
        assert events == []
        # a response naming nothing is counted; enquire_link is simply answered
        assert pair.session.unexpected_responses == (case.kind == "dropped")


# --- what does not decode (SMPP 3.4 §4.3) -----------------------------------------------------

UNKNOWN_COMMAND = wire(0x00000999, 0, 5)
# deliver_sm whose source_addr is 25 octets (the spec allows 20): a field error
BAD_DELIVER_SM = wire(
    0x00000005, 0, 9, cstr(""), "01", "01", cstr("1" * 25), "00", "00", cstr("Acme"), "00",
    "00", "00", cstr(""), cstr(""), "00", "00", "00", "00", "02", "6869",
)


def test_garbage_gets_generic_nack_with_the_status_and_keeps_the_bind() -> None:
    pair = Pair.bound()
    events = pair.feed(UNKNOWN_COMMAND + codec.encode(deliver(6)))
    assert pair.octets() == wire(0x80000000, S.ESME_RINVCMDID, 5)
    assert events == [
        PeerViolation(S.ESME_RINVCMDID, 5, "unknown command_id 0x00000999"),
        RequestReceived(6, deliver(6)),  # the next PDU parses
    ]
    assert pair.session.state is SessionState.BOUND


def test_deliver_sm_with_a_bad_field_gets_deliver_sm_resp_with_the_error() -> None:
    pair = Pair.bound()
    events = pair.feed(BAD_DELIVER_SM)
    assert pair.octets() == wire(0x80000005, S.ESME_RINVSRCADR, 9)
    assert events == [
        PeerViolation(S.ESME_RINVSRCADR, 9, "DeliverSm: source_addr longer than 20 octets")
    ]
    assert pair.session.state is SessionState.BOUND
    assert pair.session.awaiting_acknowledgement == 0


def test_bad_response_body_gets_generic_nack_and_the_request_stays_out() -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.octets()
    # submit_sm_resp whose message_id has no NUL: the body ends inside it
    events = pair.feed(wire(0x80000004, 0, 2, "6162"))
    assert pair.octets() == wire(0x80000000, S.ESME_RINVCMDLEN, 2)
    assert [type(e) for e in events] == [PeerViolation]
    assert pair.session.in_flight == 1


def test_bad_command_length_nacks_and_closes() -> None:
    pair = Pair.bound()
    pair.submit("a")
    (request,) = pair.wire()
    # command_length 5, then the rest of a header whose sequence_number is 77
    events = pair.feed(b"\x00\x00\x00\x05" + bytes(8) + (77).to_bytes(4, "big"))
    assert pair.octets() == wire(0x80000000, S.ESME_RINVCMDLEN, 77)
    assert events == [
        PeerViolation(S.ESME_RINVCMDLEN, 77, "command_length 5 outside 16..66560"),
        Closed(CloseReason.FRAME_ERROR, (("a", request),)),
    ]


def test_oversized_command_length_closes_without_buffering_it() -> None:
    pair = Pair.bound(dataclasses.replace(CONFIG, max_command_length=1024))
    events = pair.feed(b"\x00\x10\x00\x00" + bytes(8) + b"\x00\x00\x00\x01" + b"x" * 100)
    assert pair.octets() == wire(0x80000000, S.ESME_RINVCMDLEN, 1)
    assert [type(e) for e in events] == [PeerViolation, Closed]


# --- chunking -----------------------------------------------------------------------------------


def smsc_script() -> bytes:
    """Everything an SMSC might send after the bind, good and bad, as one stream."""
    return b"".join(
        [
            codec.encode(SubmitSmResp(sequence_number=2, message_id="id-2")),
            codec.encode(deliver(100)),
            codec.encode(EnquireLink(sequence_number=101)),
            UNKNOWN_COMMAND,
            codec.encode(GenericNack(sequence_number=3, command_status=S.ESME_RTHROTTLED)),
            BAD_DELIVER_SM,
            codec.encode(DataSm(sequence_number=102, source_addr="1", destination_addr="2")),
            codec.encode(SubmitSmResp(sequence_number=999)),
            codec.encode(GenericNack(sequence_number=0, command_status=1)),
            codec.encode(submit()),
            wire(0x80000004, S.ESME_RTHROTTLED, 4),
            codec.encode(Unbind(sequence_number=103)),
        ]
    )


def run_script(chunk: int, script: bytes) -> tuple[bytes, list[Event]]:
    pair = Pair.bound()
    for tag in ("a", "b", "c", "d"):
        pair.submit(tag)
    pair.octets()
    events: list[Event] = []
    for start in range(0, len(script), chunk):
        events += pair.feed(script[start : start + chunk])
    return pair.octets(), events


def test_one_byte_at_a_time_gives_identical_results() -> None:
    script = smsc_script()
    whole = run_script(len(script), script)
    assert run_script(1, script) == whole
    assert run_script(7, script) == whole
    octets, events = whole
    assert [type(e) for e in events] == [
        ResponseReceived, RequestReceived, PeerViolation, ResponseReceived, PeerViolation,
        RequestReceived, PeerViolation, PeerViolation, ResponseReceived, Unbound, Closed,
    ]
    unanswered = dataclasses.replace(submit(), sequence_number=5)
    assert events[-1] == Closed(CloseReason.PEER_UNBOUND, (("d", unanswered),))
    assert octets == b"".join(
        [
            wire(0x80000015, 0, 101),
            wire(0x80000000, S.ESME_RINVCMDID, 5),
            wire(0x80000005, S.ESME_RINVSRCADR, 9),
            wire(0x80000000, S.ESME_RINVCMDID, 0),
            wire(0x80000006, 0, 103),
        ]
    )


def test_frame_error_one_byte_at_a_time_still_names_the_sequence_number() -> None:
    script = codec.encode(deliver(100)) + b"\x00\x00\x00\x05" + bytes(8) + b"\x00\x00\x00\x4d"
    assert run_script(1, script) == run_script(len(script), script)


# --- the table, the config, the helpers ----------------------------------------------------------


def test_every_handler_named_in_the_table_exists() -> None:
    for (state, move), (name, next_state) in TRANSITIONS.items():
        assert callable(getattr(Session, name)), (state, move)
        assert isinstance(next_state, SessionState)
    assert not any(state is SessionState.CLOSED and next_state is not SessionState.CLOSED
                   for (state, _), (_, next_state) in TRANSITIONS.items())
    commands = {SessionInput.BIND, SessionInput.SEND_REQUEST, SessionInput.ACKNOWLEDGE,
                SessionInput.UNBIND, SessionInput.CLOSE}
    assert {move for _, move in TRANSITIONS} >= commands


@pytest.mark.parametrize("cls", [c for c in PDU_CLASSES if c.command_id & 0x80000000])
@pytest.mark.parametrize("status", [0, 1, 0x64, 0x40B, 0xFFFFFFFF])
def test_response_octets_match_the_codec(cls: type[Pdu], status: int) -> None:
    expected = codec.encode(cls(sequence_number=0x7FFFFFFF, command_status=status))
    assert response_octets(cls, status, 0x7FFFFFFF) == expected


def test_password_never_shows() -> None:
    session = Session(CONFIG)
    session.bind(0.0)
    assert "s3cr3t" not in repr(CONFIG) and "s3cr3t" not in repr(session)
    for bad in ("much-too-long", "pässwörd€"):
        with pytest.raises(LocalProtocolError) as info:
            dataclasses.replace(CONFIG, password=bad)
        assert bad not in str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        {"bind_type": "sideways"},
        {"window": 0},
        {"response_timeout": 0},
        {"enquire_link_interval": float("inf")},
        {"enquire_link_timeout": -1.0},
        {"max_consecutive_timeouts": 0},
        {"max_command_length": 15},
        {"first_sequence_number": 0},
        {"system_id": "x" * 16},
        {"system_type": "y" * 13},
    ],
)
def test_config_rejects_what_would_fail_later(change: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        dataclasses.replace(CONFIG, **change)


def test_query_sm_response_is_matched_by_type() -> None:
    pair = Pair.bound()
    pair.session.send_request(QuerySm(message_id="abc"), 0.0, tag="q")
    pair.octets()
    resp = QuerySmResp(sequence_number=2, message_id="abc", message_state=2)
    assert pair.smsc_sends(resp) == [ResponseReceived("q", 2, 0, resp)]


def test_events_and_pdus_are_values() -> None:
    event = ResponseReceived("t", 1, 0, DataSmResp(sequence_number=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = 1  # type: ignore[misc]
    closed = Closed(CloseReason.LOCAL_CLOSE, (("a", submit()), ("b", submit())))
    assert closed.unanswered_tags == ("a", "b")
    assert CloseReason.TOO_MANY_TIMEOUTS.value == "too_many_timeouts"


# --- observing every PDU (the per-command counters) ---------------------------------------------


def test_every_pdu_either_way_reaches_the_observers_with_its_command_id() -> None:
    """Including what the session writes by itself: bind, enquire_link(_resp), generic_nack,
    deliver_sm_resp; a frame that does not decode is not a PDU in, its generic_nack is out."""
    seen: list[tuple[str, int]] = []
    pair = Pair()
    pair.session.on_pdu_in = lambda command_id: seen.append(("in", command_id))
    pair.session.on_pdu_out = lambda command_id: seen.append(("out", command_id))
    pair.session.bind(0.0)
    (bind,) = pair.wire()
    pair.smsc_sends(BindTransceiverResp(sequence_number=bind.sequence_number, system_id="SMSC"))
    sequence_number = pair.submit("t")
    pair.smsc_sends(SubmitSmResp(sequence_number=sequence_number, message_id="1"),
                    EnquireLink(sequence_number=7), deliver(8))
    pair.session.acknowledge(8, S.ESME_ROK, pair.now)
    pair.feed(wire(0x7FFF0000, 0, 9))  # an unknown command_id: generic_nack
    C = CommandId
    assert seen == [
        ("out", C.BIND_TRANSCEIVER), ("in", C.BIND_TRANSCEIVER_RESP), ("out", C.SUBMIT_SM),
        ("in", C.SUBMIT_SM_RESP), ("in", C.ENQUIRE_LINK), ("out", C.ENQUIRE_LINK_RESP),
        ("in", C.DELIVER_SM), ("out", C.DELIVER_SM_RESP), ("out", C.GENERIC_NACK),
    ]
