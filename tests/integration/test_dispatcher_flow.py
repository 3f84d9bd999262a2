"""The dispatcher over a real store and a stand-in pool whose answers the test scripts: the
parts of a message leave in order, flow-control refusals are sent again at once, a bind that
the SMSC refuses on a submit is rebound, an empty message id is warned about and counted,
and parts claimed while no bind is bound go back to the queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.flow.outbound import BindAction, PartFate
from smppgw.metrics import Metrics
from smppgw.pool.pool import SubmitResult
from smppgw.services.dispatcher import Dispatcher
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import Pdu, SubmitSm
from smppgw.store import MessageView, NewMessage, NewSegment, SqliteStore, Store
from tests.standins import StandInPool

pytestmark = pytest.mark.timeout(30)

S = CommandStatus
WAIT = 10.0


class ScriptedPool(StandInPool):
    """Answers each submit with ``script(pdu)`` and keeps what was sent, in order."""

    def __init__(self, script: Callable[[Pdu], int], *, message_id: str = "id") -> None:
        super().__init__()
        self.script = script
        self.message_id = message_id
        self.sent: list[bytes] = []

    async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
        assert isinstance(pdu, SubmitSm)
        self.sent.append(pdu.short_message)
        await asyncio.sleep(0)  # other workers may send meanwhile
        status = self.script(pdu)
        return self.answer(status, self.message_id if status == 0 else None)


def provider(tmp_path: Path, **overrides: Any) -> ProviderConfig:
    table = {"name": "sim", "profile": "generic", "system_id": "acme", "password_env": "PW",
             "hosts": ["127.0.0.1:9"], "routes": ["55"], "binds": 2, "window": 4, **overrides}
    return parse_config({"gateway": {"state_dir": str(tmp_path)}, "provider": [table]},
                        base_dir=tmp_path, environ={"PW": "x"}).providers[0]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "state")
    yield opened
    await opened.close()


async def accept(store: Store, name: str, parts: int = 1, **fields: Any) -> str:
    tracking_id = name.encode().hex().ljust(32, "0")[:32]
    [result] = await store.accept_messages([NewMessage(
        tracking_id=tracking_id, provider="sim", source="Acme", destination="5511999999999",
        text=name, segments=tuple(NewSegment(f"{name} {n}".encode(), 0x40 if parts > 1 else 0)
                                  for n in range(1, parts + 1)), **fields)])
    assert result.error is None
    return tracking_id


@contextlib.asynccontextmanager
async def dispatching(dispatcher: Dispatcher) -> AsyncIterator[None]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield
    finally:
        dispatcher.stop_claiming()
        await dispatcher.finish(1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(store: Store, tracking_id: str,
                done: Callable[[MessageView], bool]) -> MessageView:
    async with asyncio.timeout(WAIT):
        while True:
            message = await store.get_message(tracking_id)
            assert message is not None
            if done(message):
                return message
            await store.wait_for_events(store.last_cursor, 0.05)


async def test_a_part_refused_for_queue_full_goes_again_before_any_later_part(
    tmp_path: Path, store: Store
) -> None:
    # The wire order under ESME_RMSGQFUL was 1,2,3,4,5,3,3: the later parts overtook
    # the refused one. Parts of a message leave one at a time, a refused one first again.
    refusals = {b"long 3": 2}

    def script(pdu: Pdu) -> int:
        assert isinstance(pdu, SubmitSm)
        if refusals.get(pdu.short_message):
            refusals[pdu.short_message] -= 1
            return S.ESME_RMSGQFUL
        return S.ESME_ROK

    pool: Any = ScriptedPool(script)
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    tracking_id = await accept(store, "long", parts=5)
    async with dispatching(dispatcher):
        message = await until(store, tracking_id, lambda m: m.state == "submitted")
    assert pool.sent == [b"long 1", b"long 2", b"long 3", b"long 3", b"long 3", b"long 4",
                         b"long 5"]
    assert [d.bind for d in pool.decisions].count(BindAction.SHRINK_WINDOW) == 2
    assert [s.attempts for s in message.segments] == [1, 1, 1, 1, 1]  # flow control is free


async def test_different_messages_still_go_out_concurrently(
    tmp_path: Path, store: Store
) -> None:
    in_flight = 0
    most = 0

    class SlowPool(StandInPool):
        async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            for _ in range(5):
                await asyncio.sleep(0)
            in_flight -= 1
            return self.answer(S.ESME_ROK, "id")

    pool: Any = SlowPool()
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    ids = [await accept(store, f"m{n}", parts=3) for n in range(4)]
    async with dispatching(dispatcher):
        for tracking_id in ids:
            await until(store, tracking_id, lambda m: m.state == "submitted")
    assert most == 4, "one part of each of the four messages in flight at once"


async def test_a_bind_status_on_a_submit_rebinds_and_the_part_goes_again(
    tmp_path: Path, store: Store
) -> None:
    # SMPP 3.4 §5.1.3 ESME_RINVBNDSTS / ESME_RINVSYSID on a submit: the bind is bad, not the
    # message (smpp/status.py: reconnect). The part is sent again, the bind rebound.
    answers = [S.ESME_RINVSYSID, S.ESME_ROK]
    pool: Any = ScriptedPool(lambda pdu: answers.pop(0))
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    tracking_id = await accept(store, "hi")
    async with dispatching(dispatcher):
        message = await until(store, tracking_id, lambda m: m.state == "submitted")
    rebind, ok = pool.decisions
    assert (rebind.fate, rebind.bind) == (PartFate.SEND_AGAIN, BindAction.REBIND)
    assert rebind.rebind is not None and rebind.rebind.reason == "rebind_status"
    assert ok.fate is PartFate.SUBMITTED
    assert message.state == "submitted" and message.segments[0].attempts == 1


async def test_an_empty_message_id_is_warned_about_and_counted(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="smppgw.services.dispatcher")
    metrics = Metrics(CollectorRegistry())
    pool: Any = ScriptedPool(lambda pdu: S.ESME_ROK, message_id="")
    pool.provider_metrics = metrics.provider("sim")
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    ids = [await accept(store, f"m{n}") for n in range(3)]
    async with dispatching(dispatcher):
        for tracking_id in ids:
            await until(store, tracking_id, lambda m: m.state == "submitted")
    assert metrics.registry.get_sample_value(
        "smppgw_submit_empty_message_id_total", {"provider": "sim"}) == 3
    [warning] = [r for r in caplog.records if r.getMessage().startswith(
        "submit_sm_resp ESME_ROK with an empty message_id")]
    assert warning.kv["provider"] == "sim"  # type: ignore[attr-defined]
    view = await store.get_message(ids[0])
    assert view is not None and view.segments[0].smsc_message_id == ""


async def test_parts_claimed_while_no_bind_is_bound_go_back_to_the_queue_at_once(
    tmp_path: Path, store: Store
) -> None:
    """The binds drop while parts wait for capacity: the pool says no_bind, the parts are
    queued again (no attempt counted), and nothing is claimed until a bind is back."""
    from smppgw.pool.slot import SubmitFailure

    class DownPool(StandInPool):
        submit_bound_count = 1
        tried = asyncio.Event()

        async def wait_bound(self) -> None:
            await asyncio.Event().wait()  # no bind comes back in this test

        async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
            self.submit_bound_count = 0  # every bind drops while this part waits
            self.tried.set()
            raise SubmitFailure("no_bind", "sim")

    pool: Any = DownPool()
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    tracking_id = await accept(store, "waits")
    async with dispatching(dispatcher):
        async with asyncio.timeout(WAIT):
            await pool.tried.wait()
        view = await until(store, tracking_id, lambda m: m.segments[0].state == "queued")
        stats = (await store.queue_stats())["sim"]
        assert (stats.queued, stats.sending) == (1, 0)
        assert len(pool.decisions) == 0 and pool.submit_bound_count == 0
    assert view.state == "queued" and view.segments[0].attempts == 0


async def test_a_status_no_table_knows_is_retried_and_the_operator_told(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # smpp/status.py: an undocumented code (here a vendor one, SMPP 3.4 §5.1.3 0x0400-0x04FF)
    # is retried a few times and its row says `alert`: one warning names it.
    caplog.set_level(logging.WARNING, logger="smppgw.services.dispatcher")
    answers = [0x0456, S.ESME_ROK]
    pool: Any = ScriptedPool(lambda pdu: answers.pop(0))
    dispatcher = Dispatcher(provider(tmp_path), store, pool)
    tracking_id = await accept(store, "odd")
    async with dispatching(dispatcher):  # the retry is due 1 s after the first answer
        message = await until(store, tracking_id, lambda m: m.state == "submitted")
    assert message.segments[0].attempts == 2
    [warning] = [r for r in caplog.records if r.getMessage().startswith(
        "the SMSC answered a status smppgw does not know")]
    assert warning.kv["status"] == "0x00000456"  # type: ignore[attr-defined]
