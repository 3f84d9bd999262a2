"""The asyncio shell around one Session (net/connection.py): when it writes, and its one timer.

A recording transport stands in for the socket (no network); the loop is the test's own, and
every wait is a loop pass or an event, never a sleep.
"""

from __future__ import annotations

import asyncio

import pytest

from smppgw.net.connection import SmppConnection
from smppgw.smpp import codec
from smppgw.smpp.events import Event, ResponseReceived
from smppgw.smpp.pdu import BindTransceiverResp, Pdu, SubmitSm, SubmitSmResp
from smppgw.smpp.session import Session, SessionConfig

pytestmark = pytest.mark.timeout(30)


class RecordingTransport(asyncio.Transport):
    """Keeps every write, as the PDUs the SMSC would decode from it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[Pdu]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        decoder = codec.FrameDecoder()
        decoder.feed(bytes(data))
        self.writes.append(list(decoder))
        assert decoder.buffered == 0, "a write carries whole PDUs only"

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


async def next_pass() -> None:
    """Let the loop run what is ready now (one pass: call_soon callbacks run in order)."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


async def bound_connection(window: int) -> tuple[SmppConnection, RecordingTransport, list[Event]]:
    events: list[Event] = []
    session = Session(SessionConfig(system_id="acme", password="pw", window=window,
                                    response_timeout=10.0, enquire_link_interval=30.0))
    connection = SmppConnection(session, events.append)
    transport = RecordingTransport()
    connection.connection_made(transport)
    ((bind,),) = transport.writes
    connection.data_received(codec.encode(BindTransceiverResp(
        sequence_number=bind.sequence_number, system_id="smsc")))
    await next_pass()
    transport.writes.clear()
    events.clear()
    return connection, transport, events


def submit(n: int) -> SubmitSm:
    return SubmitSm(source_addr="Acme", destination_addr=f"55119999{n:05d}", short_message=b"x")


@pytest.mark.parametrize(("window", "groups"), [(10, [3, 3, 3, 1]), (4, [3, 1]), (2, [2]),
                                                (100, [33, 33, 33, 1])])
async def test_requests_of_one_pass_go_out_a_third_of_the_window_at_a_time(
    window: int, groups: list[int]
) -> None:
    connection, transport, _ = await bound_connection(window)
    now = asyncio.get_running_loop().time()
    numbers = [connection.send_request(submit(n), n, now) for n in range(window)]
    at_once = [len(write) for write in transport.writes]
    await next_pass()  # the end of the pass writes the rest
    assert [len(write) for write in transport.writes] == groups
    assert sum(at_once) == sum(groups[:-1]) if len(groups) > 1 else at_once == []
    sent = [pdu for write in transport.writes for pdu in write]
    assert [pdu.sequence_number for pdu in sent] == numbers  # in order, each once


async def test_answers_are_followed_by_a_write_in_the_next_pass() -> None:
    connection, transport, events = await bound_connection(10)
    now = asyncio.get_running_loop().time()
    numbers = [connection.send_request(submit(n), n, now) for n in range(2)]
    await next_pass()
    transport.writes.clear()
    answers = b"".join(codec.encode(SubmitSmResp(sequence_number=n, message_id=f"id{n}"))
                       for n in numbers)
    connection.data_received(answers)
    assert [type(e) for e in events] == [ResponseReceived, ResponseReceived]
    # Their waiters send again in the next pass: the flush is already queued behind them.
    assert connection._flush_scheduled
    connection.send_request(submit(7), 7, now)
    await next_pass()
    assert [len(write) for write in transport.writes] == [1]


def fire_now(connection: SmppConnection) -> None:
    """What the loop does when the armed timer falls due, now rather than at its instant."""
    assert connection._timer is not None
    connection._timer.cancel()
    connection._on_timer()


async def test_the_timer_moves_only_when_the_deadline_comes_earlier() -> None:
    connection, transport, events = await bound_connection(10)
    session = connection.session
    # Still armed for the bind's answer, earlier than anything due now: firing finds nothing
    # to do and arms the timer at the real deadline (the idle link's enquire_link).
    assert connection._timer_at < session.next_deadline()  # type: ignore[operator]
    fire_now(connection)
    assert connection._timer_at == session.next_deadline()
    assert transport.writes == [] and events == []

    first = asyncio.get_running_loop().time()
    number = connection.send_request(submit(1), 1, first)
    await next_pass()
    timer = connection._timer  # the response deadline came earlier: moved there
    assert [len(write) for write in transport.writes] == [1]
    transport.writes.clear()
    assert connection._timer_at == session.next_deadline() == pytest.approx(first + 10.0)

    connection.data_received(codec.encode(SubmitSmResp(sequence_number=number, message_id="a")))
    await next_pass()
    # Answered: the next deadline (enquire_link, 30 s after our last request) is later, and
    # the armed timer stays where it was, earlier than needed.
    assert session.next_deadline() == pytest.approx(first + 30.0)
    assert connection._timer is timer and connection._timer_at == pytest.approx(first + 10.0)
    fire_now(connection)  # early: nothing due, no PDU, no event; armed at the real deadline
    assert [type(e) for e in events] == [ResponseReceived]
    assert transport.writes == []
    assert connection._timer is not timer
    assert connection._timer_at == session.next_deadline()
