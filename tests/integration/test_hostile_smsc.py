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
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.simulator.server import Record
from smppgw.smpp.codec import HEADER
from smppgw.smpp.constants import CommandId, CommandStatus
from smppgw.smpp.pdu import DeliverSm
from smppgw.systemd import Notifier
from tests.integration.test_daemon_e2e import make_config, provider_table
from tests.vectors.from_smsc import FROM_SMSC, FromSmsc
from tests.vectors.pdus import cstr, wire

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

    def answers(self, sequence_number: int, link: int | None = None) -> list[Record]:
        """The responses the daemon wrote on ``link`` (the current one by default) carrying
        ``sequence_number``."""
        link = self.link if link is None else link
        return [r for r in self.sim.received if r.connection_id == link
                and int.from_bytes(r.raw[12:16], "big") == sequence_number
                and int.from_bytes(r.raw[4:8], "big") & 0x80000000]

    async def answered(self, sequence_number: int) -> bytes:
        await self.sim.wait_for(lambda: bool(self.answers(sequence_number)), WAIT)
        (record,) = self.answers(sequence_number)
        return record.raw

    async def rebound(self) -> None:
        """After the SMSC ended ``link``: wait until the daemon has bound a new one."""
        old = self.link
        await self.sim.wait_for(
            lambda: any(c.id != old for c in self.sim.bound_connections()), WAIT)
        (connection,) = self.sim.bound_connections()
        self.link = connection.id

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



@pytest.mark.parametrize("case", FROM_SMSC, ids=lambda case: case.name)
async def test_each_pdu_from_the_smsc_against_a_running_daemon(
    running: Running, case: FromSmsc
) -> None:
    """The daemon answers each command as SMPP 3.4 asks (tests/vectors/from_smsc.py), once,
    and goes on serving on the same link, or on a new one after the SMSC's unbind."""
    sequence_number = 0x70000001  # far from the daemon's own requests' numbers
    link = running.link
    running.sim.send_pdu(link, case.at(sequence_number))
    expected = [case.answer(sequence_number)] if case.answer is not None else []
    if case.closes:
        assert await running.answered(sequence_number) == expected[0]
        await running.rebound()
    await running.still_serving()
    assert [r.raw for r in running.answers(sequence_number, link)] == expected


# Frames a broken or hostile SMSC sends that do not decode, and the ESME's answer to each
# (SMPP 3.4 §4.3: the request's own response with the error when its type has one, else
# generic_nack; a response is nacked too, since it cannot be matched). Sequence numbers
# 0x71000000 + index.
_SEQ = 0x71000000
MALFORMED: list[tuple[str, bytes, bytes]] = [
    ("unknown command_id", HEADER.pack(16, 0x00000555, 0, _SEQ + 1),
     wire(0x80000000, CommandStatus.ESME_RINVCMDID, _SEQ + 1)),
    ("deliver_sm whose body ends inside source_addr",
     HEADER.pack(19, CommandId.DELIVER_SM, 0, _SEQ + 2) + b"\x00\x01\x01",
     wire(0x80000005, CommandStatus.ESME_RINVCMDLEN, _SEQ + 2)),
    ("deliver_sm whose TLV runs past the PDU",
     wire(0x00000005, 0, _SEQ + 3, cstr(""), "0101", cstr("1"), "0000", cstr("2"),
          "000000", cstr(""), cstr(""), "00000000", "00", "001e0028", "6162"),
     wire(0x80000005, CommandStatus.ESME_RINVOPTPARSTREAM, _SEQ + 3)),
    ("deliver_sm with a 25-octet source_addr",
     wire(0x00000005, 0, _SEQ + 4, cstr(""), "0101", cstr("1" * 25), "0000", cstr("acme"),
          "000000", cstr(""), cstr(""), "00000000", "02", "6869"),
     wire(0x80000005, CommandStatus.ESME_RINVSRCADR, _SEQ + 4)),
    ("data_sm with message_payload too long for its length field",
     wire(0x00000103, 0, _SEQ + 5, cstr(""), "0101", cstr("1"), "0101", cstr("acme"),
          "000000", "0424ffff", "41"),
     wire(0x80000103, CommandStatus.ESME_RINVOPTPARSTREAM, _SEQ + 5)),
    ("submit_sm_resp whose message_id has no NUL", wire(0x80000004, 0, _SEQ + 6, "6162"),
     wire(0x80000000, CommandStatus.ESME_RINVCMDLEN, _SEQ + 6)),
    ("enquire_link with a stray octet after its header", wire(0x00000015, 0, _SEQ + 7, "00"),
     wire(0x80000015, CommandStatus.ESME_RINVOPTPARSTREAM, _SEQ + 7)),
]
# command_length outside 16..max: the stream cannot be re-synchronised. generic_nack
# ESME_RINVCMDLEN, the link closes, the daemon binds again.
FRAMING: list[tuple[str, bytes, bytes]] = [
    ("command_length 8", HEADER.pack(8, CommandId.DELIVER_SM, 0, _SEQ + 8),
     wire(0x80000000, CommandStatus.ESME_RINVCMDLEN, _SEQ + 8)),
    ("command_length 16 MiB", HEADER.pack(0x01000000, CommandId.DELIVER_SM, 0, _SEQ + 9),
     wire(0x80000000, CommandStatus.ESME_RINVCMDLEN, _SEQ + 9)),
]


async def test_a_hostile_smsc_cannot_stop_or_unbind_the_daemon(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Every PDU an SMSC can send, then frames that do not decode, all on one link: each
    answered as SMPP 3.4 requires, the link still bound, the daemon still serving; then
    frames that break the stream, after each of which the daemon binds again."""
    link = running.link
    expected: dict[int, list[bytes]] = {}
    for index, case in enumerate(c for c in FROM_SMSC if not c.closes):
        sequence_number = 0x70000001 + index
        running.sim.send_pdu(link, case.at(sequence_number))
        expected[sequence_number] = (
            [case.answer(sequence_number)] if case.answer is not None else [])
    for _name, frame, answer in MALFORMED:
        running.sim.send_raw(link, frame)
        expected[int.from_bytes(answer[12:16], "big")] = [answer]
    await running.still_serving()
    assert running.link == link
    for sequence_number, answers in expected.items():
        got = [r.raw for r in running.answers(sequence_number)]
        assert got == answers, hex(sequence_number)
    for name, frame, answer in FRAMING:
        link = running.link
        running.sim.send_raw(link, frame)
        assert await running.answered(int.from_bytes(answer[12:16], "big")) == answer, name
        await running.rebound()
        await running.still_serving()
    (unbind,) = [c for c in FROM_SMSC if c.closes]
    link = running.link
    running.sim.send_pdu(link, unbind.at(0x72000000))
    await running.rebound()
    await running.still_serving()
    assert running.daemon.failure is None
    # Every violation counted; the journal got the first of the streak, not one per PDU.
    violations = sum(
        sample.value for family in running.daemon.metrics.registry.collect()
        if family.name == "smppgw_peer_violations" for sample in family.samples
        if sample.name == "smppgw_peer_violations_total")
    assert violations >= len(MALFORMED) + len(FRAMING)
    warned = [r for r in caplog.records if r.getMessage() == "peer violated SMPP; answered"]
    assert len(warned) == 1


async def test_a_worker_that_fails_is_started_again_and_counted(
    running: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault that escapes a worker (here the inbound processor's MO expiry, which runs
    after each batch) is logged and counted, and the worker runs again: the daemon does not
    stop for it."""
    inbound = running.daemon.inbound
    assert inbound is not None
    real_expire = inbound.expire_mo
    faults = [RuntimeError("a bug outside any PDU")]
    raised = asyncio.Event()

    async def expire(now: float) -> None:
        if faults:
            raised.set()
            raise faults.pop()
        await real_expire(now)

    monkeypatch.setattr(inbound, "expire_mo", expire)
    await running.still_serving()  # its batch is answered, then the expiry fails
    async with asyncio.timeout(WAIT):
        await raised.wait()
    await running.still_serving()
    assert running.daemon.metrics.registry.get_sample_value(
        "smppgw_worker_failures_total", {"worker": "inbound"}) == 1
    [record] = [r for r in caplog.records if r.getMessage().startswith("worker failed")]
    assert record.kv["worker"] == "inbound"  # type: ignore[attr-defined]


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
