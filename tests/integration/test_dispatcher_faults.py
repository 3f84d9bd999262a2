"""The dispatcher against faults of its own, of the store and of the stored messages: a real
store on a temporary directory, a stand-in pool that answers or fails as each test says.

Whatever happens to one part, the dispatcher's workers, feeder and recorder keep running;
the part ends retried or failed with the reason in its history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.metrics import Metrics
from smppgw.pool.pool import SubmitResult
from smppgw.pool.slot import SubmitFailure
from smppgw.services.dispatcher import Dispatcher
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import Pdu, SubmitSm
from smppgw.store import MessageView, NewMessage, NewSegment, SqliteStore, Store
from tests.integration.test_hostile_smsc import Running, running
from tests.standins import StandInPool

pytestmark = pytest.mark.timeout(30)
__all__ = ["running"]  # the fixture, imported: a daemon bound to the simulator

WAIT = 10.0


class ScriptedPool(StandInPool):
    """Answers each submit by calling ``script(pdu)``: a status to answer, or an exception
    to raise from ``submit``."""

    def __init__(self, script: Callable[[Pdu], int | BaseException]) -> None:
        super().__init__()
        self.script = script
        self.sent: list[Pdu] = []

    async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
        self.sent.append(pdu)
        answer = self.script(pdu)
        if isinstance(answer, BaseException):
            raise answer
        return self.answer(answer, f"id-{len(self.sent)}" if answer == 0 else None)


def provider(tmp_path: Path, **overrides: Any) -> ProviderConfig:
    table = {"name": "sim", "profile": "generic", "system_id": "acme", "password_env": "PW",
             "hosts": ["127.0.0.1:9"], "routes": ["55"], "binds": 1, "window": 2, **overrides}
    return parse_config({"gateway": {"state_dir": str(tmp_path)}, "provider": [table]},
                        base_dir=tmp_path, environ={"PW": "x"}).providers[0]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "state")
    yield opened
    await opened.close()


async def accept(store: Store, text: bytes, *, source: str = "Acme") -> str:
    tracking_id = text.hex().ljust(32, "0")[:32]
    [result] = await store.accept_messages([NewMessage(
        tracking_id=tracking_id, provider="sim", source=source, destination="5511999999999",
        text=text.decode("latin-1"), segments=(NewSegment(text),))])
    assert result.error is None
    return tracking_id


@contextlib.asynccontextmanager
async def dispatching(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield task
    finally:
        dispatcher.stop_claiming()
        await dispatcher.finish(1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(store: Store, tracking_id: str,
                done: Callable[[MessageView], bool]) -> MessageView:
    """Poll the store (it has no change feed per message) until ``done``; bounded."""
    async with asyncio.timeout(WAIT):
        while True:
            message = await store.get_message(tracking_id)
            assert message is not None
            if done(message):
                return message
            await store.wait_for_events(store.last_cursor, 0.05)


async def test_a_fault_while_sending_one_part_is_contained_and_the_part_retried(
    tmp_path: Path, store: Store
) -> None:
    faults = [RuntimeError("a bug in the send path")]

    def script(pdu: Pdu) -> int | BaseException:
        return faults.pop() if faults else CommandStatus.ESME_ROK

    metrics = Metrics(CollectorRegistry())
    pool: Any = ScriptedPool(script)
    dispatcher = Dispatcher(provider(tmp_path), store, pool, metrics=metrics)
    tracking_id = await accept(store, b"first")
    async with dispatching(dispatcher) as task:
        message = await until(store, tracking_id, lambda m: m.state == "submitted")
        assert not task.done()
    assert len(pool.sent) == 2
    assert metrics.registry.get_sample_value(
        "smppgw_worker_failures_total", {"worker": "dispatcher"}) == 1
    [note] = [h for h in message.history if h.type == "retry"]
    assert "RuntimeError" in str(note.detail["error"])





class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def retries_until(store: Store, dispatcher: Dispatcher, clock: FakeClock,
                        tracking_id: str, done: Callable[[MessageView], bool]) -> MessageView:
    """Move the clock past every retry delay and wake the feeder, until ``done``."""
    async with asyncio.timeout(WAIT):
        while True:
            message = await store.get_message(tracking_id)
            assert message is not None
            if done(message):
                return message
            clock.now += 600
            dispatcher.wake()
            await store.wait_for_events(store.last_cursor, 0.05)


async def test_a_part_after_which_the_bind_keeps_dropping_fails_after_three_tries(
    tmp_path: Path,
) -> None:
    """A part the SMSC answers by dropping the bind (it was in flight each time the link
    went) fails its message after three drops in a row, with the reason in its history,
    instead of being sent again until its validity ends. The other parts go on."""
    clock = FakeClock()
    store = await SqliteStore.open(tmp_path / "state", clock=clock)

    def script(pdu: Pdu) -> int | BaseException:
        assert isinstance(pdu, SubmitSm)
        if b"poison" in pdu.short_message:
            return SubmitFailure("connection_lost", "sim#0")
        return CommandStatus.ESME_ROK

    pool: Any = ScriptedPool(script)
    dispatcher = Dispatcher(provider(tmp_path), store, pool, wall_clock=clock)
    try:
        poison = await accept(store, b"poison")
        fine = await accept(store, b"fine")
        async with dispatching(dispatcher):
            message = await retries_until(store, dispatcher, clock, poison,
                                          lambda m: m.state == "failed")
            await retries_until(store, dispatcher, clock, fine,
                                lambda m: m.state == "submitted")
    finally:
        await store.close()
    assert [p.short_message for p in pool.sent].count(b"poison") == 3
    assert message.segments[0].submit_status == "BIND_DROPPED"
    failed = [h for h in message.history if h.type == "state" and h.state == "failed"]
    assert failed and "dropped the bind" in str(failed[0].detail["detail"])
    assert "3 times in a row" in str(message.last_error)


async def test_parts_in_flight_at_a_drop_are_sent_again_one_at_a_time(tmp_path: Path) -> None:
    """After a drop, the parts that were in flight are suspects: they go out again one at a
    time, so an innocent part is never in flight with the culprit a second time."""
    clock = FakeClock()
    store = await SqliteStore.open(tmp_path / "state", clock=clock)
    first_send: set[bytes] = set()
    in_flight = 0
    most_in_flight = 0

    class Pool(StandInPool):
        sent: list[Pdu] = []

        async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
            nonlocal in_flight, most_in_flight
            assert isinstance(pdu, SubmitSm)
            self.sent.append(pdu)
            if pdu.short_message not in first_send:
                first_send.add(pdu.short_message)
                raise SubmitFailure("connection_lost", "sim#0")
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            for _ in range(5):
                await asyncio.sleep(0)  # let any other worker start its send
            in_flight -= 1
            return self.answer(0, "id")

    pool: Any = Pool()
    dispatcher = Dispatcher(provider(tmp_path, window=4), store, pool, wall_clock=clock)
    try:
        ids = [await accept(store, f"part {n}".encode()) for n in range(4)]
        async with dispatching(dispatcher):
            for tracking_id in ids:
                await retries_until(store, dispatcher, clock, tracking_id,
                                    lambda m: m.state == "submitted")
    finally:
        await store.close()
    assert len(pool.sent) == 8 and most_in_flight == 1


async def test_a_stored_part_that_does_not_encode_fails_its_message_and_nothing_stops(
    running: Running,
) -> None:
    """A part stored before accept checked it (an older smppgw, sender_policy "warn") whose
    sender is not Latin-1: the session's encoder refuses it at send time. Its message fails
    with the reason; the worker, the dispatcher and the daemon go on."""
    daemon = running.daemon
    assert daemon.store is not None
    [bad] = await daemon.store.accept_messages([NewMessage(
        tracking_id="b" * 32, provider="sim", source="Acme€", destination="5511999999999",
        text="x", segments=(NewSegment(b"never sent"),))])
    daemon._wake_dispatchers({"sim"})
    message = await until(daemon.store, bad.tracking_id, lambda m: m.state == "failed")
    assert message.segments[0].submit_status == "ENCODING"
    assert "source_addr" in str(message.last_error) and "Latin-1" in str(message.last_error)
    assert not [r for r in running.sim.submits if b"never sent" in r.raw]
    good = await accept(daemon.store, b"sent after")
    daemon._wake_dispatchers({"sim"})
    await until(daemon.store, good, lambda m: m.state in ("submitted", "accepted", "delivered"))
    await running.still_serving()
