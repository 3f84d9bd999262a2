"""An SMSC that sends everything SMPP 3.4 lets it send, and more, to a running daemon.

Each test starts the simulator on loopback and a Daemon on a fresh state dir, binds one
transceiver, then scripts the simulator's side of the link: PDUs an SMSC may send, PDUs only
an ESME should send, and frames that do not decode. After each, the daemon must still run,
the link must still be bound (unless the frame broke the stream, when it binds again), and
what the daemon wrote back must be exactly what SMPP 3.4 asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smppgw.config import Config
from smppgw.daemon import Daemon
from smppgw.pool import Inbound
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.simulator.server import Record
from smppgw.smpp.constants import CommandId
from smppgw.smpp.pdu import DeliverSm
from smppgw.systemd import Notifier
from tests.integration.test_daemon_e2e import make_config, provider_table

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # seconds any single condition may take

# SMPP 3.4 §4.12: alert_notification, sequence number 0x73, source 1/1 "5511", esme_addr 1/1
# "acme", ms_availability_status (0x0422) = 0 (available). The exact octets that stopped the
# daemon before alert_notification was told apart from deliver_sm.
ALERT_NOTIFICATION = bytes.fromhex(
    "0000002300000102000000000000007301013535313100010161636d65000422000100")


class Running:
    """One daemon bound once to one simulator; the simulator's connection is ``link``."""

    def __init__(self, daemon: Daemon, task: asyncio.Task[None], sim: SmscSimulator) -> None:
        self.daemon = daemon
        self.task = task
        self.sim = sim
        self.link = 0

    def answers(self, sequence_number: int) -> list[Record]:
        """What the daemon wrote on ``link`` carrying ``sequence_number`` (requests included:
        the daemon's own enquire_link may reuse the number)."""
        return [r for r in self.sim.received if r.connection_id == self.link
                and int.from_bytes(r.raw[12:16], "big") == sequence_number
                and int.from_bytes(r.raw[4:8], "big") & 0x80000000]

    async def answered(self, sequence_number: int) -> bytes:
        await self.sim.wait_for(lambda: bool(self.answers(sequence_number)), WAIT)
        (record,) = self.answers(sequence_number)
        return record.raw

    async def still_serving(self) -> None:
        """The daemon runs and the link is bound: an MO on it is stored and acknowledged."""
        assert not self.task.done(), self.task
        connection = self.sim.connection(self.link)
        assert connection.state == "bound", connection
        sequence_number = self.sim.send_pdu(self.link, DeliverSm(
            source_addr="5511988887777", destination_addr="acme", short_message=b"still there?"))
        raw = await self.answered(sequence_number)
        assert raw == header(CommandId.DELIVER_SM_RESP, 0, sequence_number, 17) + b"\x00"


def header(command_id: int, status: int, sequence_number: int, length: int = 16) -> bytes:
    return b"".join(value.to_bytes(4, "big")
                    for value in (length, command_id, status, sequence_number))


@pytest.fixture
async def running(tmp_path: Path, sock_dir: Path) -> AsyncIterator[Running]:
    sim = SmscSimulator(SimulatorConfig())
    await sim.start()
    config: Config = make_config(
        tmp_path, sock_dir / "submit.sock",
        [provider_table("sim", "generic", sim, ["55"], binds=1)])
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()
        await sim.wait_bound(1, timeout=WAIT)
        running = Running(daemon, task, sim)
        (connection,) = sim.bound_connections()
        running.link = connection.id
        yield running
    finally:
        daemon.request_stop()
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(WAIT):
                await task
        await sim.close()


async def test_alert_notification_is_never_answered_and_the_daemon_stays_up(
    running: Running,
) -> None:
    """SMPP 3.4 §4.12: alert_notification has no response, and no generic_nack either."""
    running.sim.send_raw(running.link, ALERT_NOTIFICATION)
    await running.still_serving()
    assert running.answers(0x73) == []



async def test_a_worker_that_fails_is_started_again_and_counted(
    running: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault that escapes a worker (here the inbound processor's loop) is logged and
    counted, and the worker runs again: the daemon does not stop for it."""
    inbound = running.daemon.inbound
    assert inbound is not None
    real_process = inbound._process_contained
    faults = [RuntimeError("a bug outside any PDU")]
    raised = asyncio.Event()

    async def process(batch: list[Inbound], now: float) -> None:
        if faults:
            raised.set()
            raise faults.pop()
        await real_process(batch, now)

    monkeypatch.setattr(inbound, "_process_contained", process)
    lost = running.sim.send_pdu(running.link, DeliverSm(
        source_addr="5511988887777", destination_addr="acme", short_message=b"lost once"))
    async with asyncio.timeout(WAIT):
        await raised.wait()
    await running.still_serving()
    assert running.daemon.metrics.registry.get_sample_value(
        "smppgw_worker_failures_total", {"worker": "inbound"}) == 1
    [record] = [r for r in caplog.records if r.getMessage().startswith("worker failed")]
    assert record.kv["worker"] == "inbound"  # type: ignore[attr-defined]
    # The PDU the failed run held was never answered on this link; the SMSC redelivers it.
    assert running.answers(lost) == []


async def test_the_daemon_stops_with_one_line_when_its_store_stops(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Without its store the daemon can do nothing: that, and only that, stops it."""
    store = running.daemon.store
    assert store is not None
    store._queue.put(None)  # the writer thread ends as if it had died
    async with asyncio.timeout(WAIT):
        await asyncio.shield(running.task)
    assert running.daemon.failure is not None
    [line] = [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert line.getMessage().startswith("the store stopped")
    assert line.exc_info is None
