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
from smppgw.dispatcher import Dispatcher
from smppgw.metrics import Metrics
from smppgw.pool import SubmitResult
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import Pdu, SubmitSmResp
from smppgw.store import MessageView, NewMessage, NewSegment, Store

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


class ScriptedPool:
    """Answers each submit by calling ``script(pdu)``: a status to answer, or an exception
    to raise from ``submit``."""

    provider_metrics = None

    def __init__(self, script: Callable[[Pdu], int | BaseException]) -> None:
        self.script = script
        self.sent: list[Pdu] = []

    async def submit(self, pdu: Pdu) -> SubmitResult:
        self.sent.append(pdu)
        answer = self.script(pdu)
        if isinstance(answer, BaseException):
            raise answer
        return SubmitResult(answer, f"id-{len(self.sent)}" if answer == 0 else None, "sim#0",
                            SubmitSmResp(message_id=f"id-{len(self.sent)}"))


def provider(tmp_path: Path, **overrides: Any) -> ProviderConfig:
    table = {"name": "sim", "profile": "generic", "system_id": "acme", "password_env": "PW",
             "hosts": ["127.0.0.1:9"], "routes": ["55"], "binds": 1, "window": 2, **overrides}
    return parse_config({"gateway": {"state_dir": str(tmp_path)}, "provider": [table]},
                        base_dir=tmp_path, environ={"PW": "x"}).providers[0]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "state")
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



