"""Properties of the session under random dialogues (Hypothesis).

A stateful test drives a session against a fake SMSC that answers in random order, late or
never, while the clock jumps between deadlines; after every step it checks what the SMSC saw
on the wire: never more outstanding requests than the window (the session's own bind,
enquire_link and unbind included: that is the rule), never two outstanding under one sequence
number, every tag ended exactly once, nothing answered twice, no deadline left in the past.
Then h2's state x input sweep and h11's "random bytes never raise".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from smppgw.smpp import codec
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.events import (
    BindRejected,
    Bound,
    Closed,
    PeerViolation,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
    Unbound,
)
from smppgw.smpp.pdu import (
    PDU_CLASSES,
    RESPONSE_CLASS,
    BindTransceiverResp,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSmResp,
    Unbind,
)
from smppgw.smpp.session import TRANSITIONS, Session, SessionInput, SessionState
from tests.unit.test_session import CONFIG, Pair, deliver, run_script, smsc_script, submit
from tests.vectors.pdus import VECTORS

S = CommandStatus

MACHINE_CONFIG = dataclasses.replace(
    CONFIG,
    window=4,
    response_timeout=5.0,
    enquire_link_interval=7.0,
    enquire_link_timeout=3.0,
    max_consecutive_timeouts=4,
    bind_timeout=3.0,
    unbind_timeout=2.0,
    drain_timeout=4.0,
)


class SessionAgainstSmsc(RuleBasedStateMachine):
    """The fake SMSC's view of the wire is the model; the session must agree with it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.tag_counter = 0
        self.smsc_sequence_number = 1000
        self.connect()

    def connect(self) -> None:
        self.pair = Pair(MACHINE_CONFIG, self.now)
        self.session: Session = self.pair.session
        # requests the ESME sent that the SMSC has not answered and the ESME has not given up
        self.outstanding: dict[int, Pdu] = {}
        self.timed_out: list[int] = []  # sequence numbers the SMSC may still answer, late
        self.open_tags: dict[object, int] = {}  # tag -> sequence number, until it ends
        self.smsc_awaiting: dict[int, type[Pdu]] = {}  # SMSC requests the ESME must answer
        self.acknowledgeable: list[int] = []  # RequestReceived not yet acknowledged
        self.closed = False
        # Bind failures have their own dialogue tests; here the SMSC accepts at once, so the
        # steps are spent where the window is busy.
        self.session.bind(self.now)
        self.sync()
        (bind_sequence_number,) = self.outstanding
        del self.outstanding[bind_sequence_number]
        self.feed(codec.encode(BindTransceiverResp(sequence_number=bind_sequence_number)))
        assert self.session.state is SessionState.BOUND

    def sync(self) -> None:
        """Read what the ESME sent and what it reported, and check both against the model."""
        for pdu in self.pair.wire():
            sequence_number = pdu.sequence_number
            if pdu.is_response:
                expected = self.smsc_awaiting.pop(sequence_number)  # answered once, if asked
                assert type(pdu) in (expected, GenericNack)
            else:
                assert sequence_number not in self.outstanding, "sequence number reused"
                assert 1 <= sequence_number <= 0x7FFFFFFF
                self.outstanding[sequence_number] = pdu
        for event in self.pair.events():
            assert not self.closed, f"{event} after Closed"
            hypothesis.event(type(event).__name__)
            if isinstance(event, ResponseReceived):
                assert self.open_tags.pop(event.tag) == event.sequence_number
            elif isinstance(event, RequestTimedOut):
                assert self.open_tags.pop(event.tag) == event.sequence_number
                del self.outstanding[event.sequence_number]
                self.timed_out.append(event.sequence_number)
            elif isinstance(event, RequestReceived):
                if isinstance(event.pdu, DeliverSm):
                    self.acknowledgeable.append(event.sequence_number)
            elif isinstance(event, Closed):
                handed_back = dict(event.unanswered)
                assert handed_back.keys() == self.open_tags.keys(), "a tag was lost or doubled"
                for tag, request in event.unanswered:
                    assert request.sequence_number == self.open_tags[tag]
                self.open_tags.clear()
                self.outstanding.clear()
                self.acknowledgeable.clear()
                self.closed = True
                hypothesis.event(f"closed: {event.reason.value}")
            else:
                assert isinstance(event, BindRejected | Bound | PeerViolation | Unbound)
        assert (self.session.state is SessionState.CLOSED) == self.closed

    # --- the ESME side ---------------------------------------------------------------------

    @rule(text=st.binary(max_size=20))
    def send(self, text: bytes) -> None:
        if self.session.can_send:
            self.tag_counter += 1
            tag = f"t{self.tag_counter}"
            sequence_number = self.session.send_request(submit(text=text), self.now, tag=tag)
            self.open_tags[tag] = sequence_number
        else:
            with pytest.raises(LocalProtocolError):
                self.session.send_request(submit(text=text), self.now, tag="refused")
        self.sync()

    @precondition(lambda self: self.acknowledgeable)
    @rule(index=st.integers(0, 20), status=st.sampled_from([S.ESME_ROK, S.ESME_RX_T_APPN]))
    def acknowledge(self, index: int, status: CommandStatus) -> None:
        sequence_number = self.acknowledgeable.pop(index % len(self.acknowledgeable))
        self.session.acknowledge(sequence_number, status, self.now)
        self.sync()

    @rule(data=st.data())
    def unbind_sometimes(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 4)) == 0:
            self.session.unbind(self.now)
            self.sync()

    @rule(dt=st.floats(0.0, 9.0))
    def advance(self, dt: float) -> None:
        deadline = self.session.next_deadline()
        target = self.now + dt
        self.now = deadline if deadline is not None and deadline <= target else target
        self.session.handle_timer(self.now)
        self.sync()
        after = self.session.next_deadline()
        assert after is None or after > self.now, "a deadline left in the past would spin"

    @precondition(lambda self: self.closed)
    @rule()
    def reconnect(self) -> None:
        self.connect()

    # --- the SMSC side ---------------------------------------------------------------------

    @precondition(lambda self: self.outstanding)
    @rule(
        index=st.integers(0, 20),
        status=st.sampled_from([S.ESME_ROK] * 6 + [S.ESME_RTHROTTLED, S.ESME_RINVPASWD]),
        nack=st.booleans(),
    )
    def answer(self, index: int, status: CommandStatus, nack: bool) -> None:
        sequence_number = sorted(self.outstanding)[index % len(self.outstanding)]
        request = self.outstanding.pop(sequence_number)
        if nack and not isinstance(request, EnquireLink | Unbind):
            response: Pdu = GenericNack(sequence_number=sequence_number, command_status=status)
        else:
            response = RESPONSE_CLASS[type(request)](
                sequence_number=sequence_number, command_status=status
            )
        self.feed(codec.encode(response))

    @precondition(lambda self: self.timed_out)
    @rule(index=st.integers(0, 20))
    def answer_late(self, index: int) -> None:
        sequence_number = self.timed_out.pop(index % len(self.timed_out))
        if sequence_number in self.outstanding:
            return  # the number was reused after the wrap: not late any more
        before = self.session.late_responses + self.session.unexpected_responses
        self.feed(codec.encode(SubmitSmResp(sequence_number=sequence_number)))
        if not self.closed:
            after = self.session.late_responses + self.session.unexpected_responses
            assert after == before + 1

    @rule()
    def smsc_delivers(self) -> None:
        self.smsc_sequence_number += 1
        self.smsc_awaiting[self.smsc_sequence_number] = RESPONSE_CLASS[DeliverSm]
        self.feed(codec.encode(deliver(self.smsc_sequence_number)))

    @rule()
    def smsc_enquires(self) -> None:
        self.smsc_sequence_number += 1
        self.smsc_awaiting[self.smsc_sequence_number] = RESPONSE_CLASS[EnquireLink]
        self.feed(codec.encode(EnquireLink(sequence_number=self.smsc_sequence_number)))

    @rule(data=st.data())
    def smsc_hangs_up_rarely(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 9)) == 0:
            self.feed(b"")

    def feed(self, octets: bytes) -> None:
        self.pair.now = self.now
        self.session.receive_data(octets, self.now)
        self.sync_after_feed()

    def sync_after_feed(self) -> None:
        state = self.session.state
        self.sync()
        if state is SessionState.CLOSED:
            # Requests the SMSC sent after the close are never answered: forget them.
            self.smsc_awaiting.clear()

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def window_never_exceeded(self) -> None:
        # The real rule: the SMSC never sees more outstanding requests than the window,
        # counting the session's own bind, enquire_link and unbind.
        assert len(self.outstanding) <= MACHINE_CONFIG.window
        assert self.session.in_flight <= MACHINE_CONFIG.window
        if not self.closed:
            assert self.session.in_flight == len(self.outstanding)
            assert self.session.window_room == MACHINE_CONFIG.window - len(self.outstanding)

    @invariant()
    def can_send_means_bound_with_room(self) -> None:
        assert self.session.can_send == (
            self.session.state is SessionState.BOUND and self.session.window_room > 0
        )


SessionAgainstSmsc.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionAgainstSmsc = SessionAgainstSmsc.TestCase


# --- h2's sweep: every state x every input ---------------------------------------------------


def in_state(state: SessionState) -> Pair:
    """A pair whose session is in ``state``, with one request outstanding where possible."""
    if state is SessionState.OPEN:
        return Pair()
    if state is SessionState.BINDING:
        pair = Pair()
        pair.session.bind(0.0)
    else:
        pair = Pair.bound()
        pair.submit("outstanding")
        if state is SessionState.UNBINDING:
            pair.session.unbind(0.0)
        elif state is SessionState.CLOSED:
            pair.session.close(0.0)
    pair.octets()
    pair.events()
    assert pair.session.state is state
    return pair


# One valid instance of every PDU class, from the codec's vectors.
SAMPLES: dict[type[Pdu], Pdu] = {type(v.pdu): v.pdu for v in VECTORS}


def sample(cls: type[Pdu], sequence_number: int) -> Pdu:
    return dataclasses.replace(SAMPLES[cls], sequence_number=sequence_number)


COMMANDS: dict[SessionInput, Callable[[Session], object]] = {
    SessionInput.BIND: lambda s: s.bind(1.0),
    SessionInput.SEND_REQUEST: lambda s: s.send_request(submit(), 1.0, tag="sweep"),
    SessionInput.ACKNOWLEDGE: lambda s: s.acknowledge(42, S.ESME_ROK, 1.0),
    SessionInput.UNBIND: lambda s: s.unbind(1.0),
    SessionInput.CLOSE: lambda s: s.close(1.0),
}


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.name)
@pytest.mark.parametrize("move", list(COMMANDS), ids=lambda m: m.name)
def test_our_calls_missing_from_the_table_raise_and_change_nothing(
    state: SessionState, move: SessionInput
) -> None:
    pair = in_state(state)
    if (state, move) in TRANSITIONS:
        if move is SessionInput.ACKNOWLEDGE and state is not SessionState.CLOSED:
            pair.smsc_sends(deliver(42))
            pair.events()
        COMMANDS[move](pair.session)
        return
    with pytest.raises(LocalProtocolError, match="is not allowed in state"):
        COMMANDS[move](pair.session)
    assert pair.session.state is state
    assert pair.octets() == b"" and pair.events() == []


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.name)
@pytest.mark.parametrize("cls", PDU_CLASSES, ids=lambda c: c.__name__)
def test_every_pdu_in_every_state_is_handled_without_raising(
    state: SessionState, cls: type[Pdu]
) -> None:
    pair = in_state(state)
    pair.smsc_sends(sample(cls, 4242))
    answers = pair.wire()
    if state is SessionState.CLOSED or cls.command_id & 0x80000000:
        assert answers == []  # a response is never answered; nothing happens once closed
        return
    # A request is answered at most once, by its own response type or generic_nack, under
    # its own sequence number; deliver_sm and data_sm wait for acknowledge() when bound.
    assert len(answers) <= 1
    for answer in answers:
        assert answer.sequence_number == 4242
        assert type(answer) in (RESPONSE_CLASS.get(cls), GenericNack)


# --- h11's promise: random bytes never raise ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    prefix=st.sampled_from([b"", codec.encode(deliver(1)), codec.encode(EnquireLink())]),
    chunk=st.integers(1, 64),
)
def test_random_bytes_give_answers_and_events_never_exceptions(
    data: bytes, prefix: bytes, chunk: int
) -> None:
    pair = Pair.bound()
    pair.submit("a")
    pair.octets()
    stream = prefix + data
    for start in range(0, len(stream), chunk):
        pair.session.receive_data(stream[start : start + chunk], 1.0)
    events = pair.events()
    # What the session wrote decodes cleanly: it only ever answers, never asks, here.
    for pdu in pair.wire():
        assert pdu.is_response
    closed = [e for e in events if isinstance(e, Closed)]
    assert len(closed) <= 1 and (not closed or events[-1] is closed[0])


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(1, 400), max_size=30))
def test_any_chunking_of_a_dialogue_gives_the_same_result(cuts: list[int]) -> None:
    script = smsc_script()
    whole = run_script(len(script), script)
    pair = Pair.bound()
    for tag in ("a", "b", "c", "d"):
        pair.submit(tag)
    pair.octets()
    events = []
    position = 0
    for cut in [*sorted(set(cuts)), len(script)]:
        if position < cut <= len(script):
            events += pair.feed(script[position:cut])
            position = cut
    assert (pair.octets(), events) == whole
