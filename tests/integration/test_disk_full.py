"""A full disk is an outage, not a crash: a Daemon whose state_dir is on a small filesystem
that the test fills while parts are in flight, then frees.

While full: the API answers 503 naming the cause and stores nothing, a deliver_sm is answered
ESME_RX_T_APPN (the SMSC delivers it again), claiming stops, the SMSC's answers to the parts
in flight are kept, a metric and one log line say why, and the daemon stays up and bound.
When space returns it recovers by itself: the kept answers are recorded (no part is sent
twice), new messages are accepted and the deliver_sm is stored.

The filesystem is a tmpfs of a few MiB (mounting one needs root; CI runs as root). Where no
mount is possible the same test runs with the writer's SQLite connection refusing writes as
a full disk does (SQLITE_FULL); with CI set, the tmpfs run is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.daemon import Daemon
from smppgw.pool.pool import SubmitResult
from smppgw.services.dispatcher import Dispatcher
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import Pdu, SubmitSm
from smppgw.store import (
    MessageView,
    NewMessage,
    NewSegment,
    SegmentView,
    SqliteStore,
    Store,
    StoreWriteError,
    WriteFailure,
)
from smppgw.systemd import Notifier
from tests.integration.test_daemon_e2e import make_config, provider_table
from tests.standins import StandInPool

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0
TMPFS_SIZE = "4m"
SQLITE_FULL = 13


class Disk:
    """Where the state dir lives, and a way to fill it and to free it again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / "state"

    def fill(self) -> None:
        raise NotImplementedError

    def free(self) -> None:
        raise NotImplementedError


class TmpfsDisk(Disk):
    """A tmpfs mounted on the state dir, filled to the last byte by a filler file."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.filler = self.state_dir / "filler"

    def mount(self) -> bool:
        self.state_dir.mkdir(parents=True)
        if os.geteuid() != 0:
            return False
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0750", "tmpfs",
             str(self.state_dir)], capture_output=True, check=False)
        return done.returncode == 0

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.state_dir)], capture_output=True, check=False)

    def fill(self) -> None:
        with open(self.filler, "wb", buffering=0) as out:
            for chunk in (1 << 20, 1 << 12, 1):  # big steps, then to the last byte
                try:
                    while True:
                        out.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc

    def free(self) -> None:
        self.filler.unlink()


class _RefusingConnection:
    """A sqlite3 connection whose INSERT, UPDATE and DELETE fail as on a full disk while
    ``full()`` says so; everything else goes to the real connection."""

    def __init__(self, conn: sqlite3.Connection, full: Callable[[], bool]) -> None:
        self._conn = conn
        self._full = full

    def _check(self, sql: str) -> None:
        if self._full() and sql.lstrip().split(None, 1)[0].upper() in (
                "INSERT", "UPDATE", "DELETE", "WITH"):   # WITH: the writer's UPDATE ... FROM
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = SQLITE_FULL  # type: ignore[attr-defined]
            exc.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
            raise exc

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class InjectedDisk(Disk):
    """No mount: the store's connections refuse writes as a full disk does."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(root)
        self.full = False
        real_connect = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> Any:
            return _RefusingConnection(real_connect(*args, **kwargs), lambda: self.full)

        monkeypatch.setattr("smppgw.store.sqlite.writer.sqlite3.connect", connect)

    def fill(self) -> None:
        self.full = True

    def free(self) -> None:
        self.full = False


@pytest.fixture(params=["tmpfs", "injected"])
def disk(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    if request.param == "injected":
        yield InjectedDisk(tmp_path, monkeypatch)
        return
    tmpfs = TmpfsDisk(tmp_path)
    if not tmpfs.mount():
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must be able to mount a tmpfs")
        pytest.skip("mounting a tmpfs needs root; the injected variant runs instead")
    try:
        yield tmpfs
    finally:
        tmpfs.unmount()


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Until ``predicate()`` holds, looking every 20 ms; at most WAIT seconds. For states the
    daemon exposes only by value (a gauge, a log record), which signal no change."""
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    simulator = SmscSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.close()


async def test_a_full_disk_is_an_outage_and_the_daemon_recovers_by_itself(
    disk: Disk, sim: SmscSimulator, sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(disk.root, sock_dir / "submit.sock",
                         [provider_table("sim", "generic", sim, ["55"], binds=1)])
    registry = CollectorRegistry()
    daemon = Daemon(config, notifier=Notifier(environ={}), registry=registry)
    task = asyncio.create_task(daemon.run())
    http = aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(config.gateway.submit_socket)),
        timeout=aiohttp.ClientTimeout(total=WAIT))

    def metric(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def post(*texts: str) -> tuple[int, dict[str, Any]]:
        messages = [{"to": "5511999999999", "text": text, "id": text} for text in texts]
        async with http.post("http://smppgw/v1/messages", json={"messages": messages}) as r:
            return r.status, await r.json()

    def store_log(message: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == message]

    def submitted(text: str) -> list[SubmitSm]:
        return [r.pdu for r in sim.submits
                if isinstance(r.pdu, SubmitSm) and r.pdu.short_message == text.encode()]

    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()
        await sim.wait_bound(1, timeout=WAIT)
        assert metric("smppgw_store_writable") == 1

        # Three parts in flight, their answers held by the SMSC until the disk is full.
        sim.hold_answers()
        status, body = await post("in flight 1", "in flight 2", "in flight 3")
        assert status == 200 and all(m["accepted"] for m in body["messages"])
        in_flight = [m["tracking_id"] for m in body["messages"]]
        await sim.wait_submits(3, timeout=WAIT)
        disk.fill()
        sim.release_answers()
        await eventually(lambda: metric("smppgw_store_writable") == 0, "store marked full")

        # The API: 503 naming the cause, nothing stored.
        status, body = await post("while full")
        assert status == 503, body
        assert body["error"]["code"] == "unavailable"
        assert "full" in body["error"]["message"]
        async with http.get("http://smppgw/healthz") as resp:
            assert resp.status == 503
        # A deliver_sm: ESME_RX_T_APPN, so the SMSC delivers it again.
        (mo,) = sim.inject_mo("5511988887777", "acme", "an MO while the disk is full")
        await sim.wait_for(lambda: mo.status is not None, WAIT)
        assert mo.status == CommandStatus.ESME_RX_T_APPN
        # Up, bound, saying why once, counting every refusal; nothing sent twice.
        assert not task.done()
        assert sim.bound_count() == 1
        assert metric("smppgw_store_write_failures_total", reason="disk_full") >= 2
        assert len(store_log("the store cannot write; waiting until it can")) == 1
        assert sim.submits_total == 3
        async with http.get("http://smppgw/v1/status") as resp:
            store = (await resp.json())["store"]
        assert store["writable"] is False and store["reason"] == "disk_full"
        assert store["refused_writes"] >= 2

        disk.free()
        await eventually(lambda: metric("smppgw_store_writable") == 1, "store writes again")
        assert len(store_log("the store writes again")) == 1
        status, body = await post("after")
        assert status == 200 and body["messages"][0]["accepted"], body
        await sim.wait_for(lambda: bool(submitted("after")), WAIT)
        await sim.wait_for(lambda: mo.acknowledged, WAIT)
        # The kept answers were recorded: each part went to the SMSC once and only once.
        cursor = 0
        async with asyncio.timeout(WAIT):
            while "queued" in [(await states(http)).get(t, "queued") for t in in_flight]:
                cursor = await wait_events(http, cursor)
        assert [len(submitted(f"in flight {i}")) for i in (1, 2, 3)] == [1, 1, 1]
        assert not task.done() and daemon.failure is None
        async with http.get("http://smppgw/v1/status") as resp:
            assert (await resp.json())["store"] == {
                "backend": "sqlite", "location": str(disk.state_dir / "smppgw.db"),
                "writable": True}
    finally:
        await http.close()
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            await task


async def states(http: aiohttp.ClientSession) -> dict[str, str]:
    """Each message's latest state, by tracking id, from the event log."""
    async with http.get("http://smppgw/v1/events", params={"after": "0"}) as resp:
        events = (await resp.json())["events"]
    return {e["tracking_id"]: e["state"] for e in events if e["type"] == "state"}


async def wait_events(http: aiohttp.ClientSession, after: int) -> int:
    """Long-poll until an event past ``after`` commits (at most 5 s); the new cursor."""
    async with http.get("http://smppgw/v1/events",
                        params={"after": str(after), "wait": "5"}) as resp:
        return int((await resp.json())["cursor"])


async def test_the_store_refuses_whole_writes_says_why_and_heals_on_a_probe(disk: Disk) -> None:
    """Store level: a refused write stores nothing of it and raises StoreWriteError naming
    the cause; ``write_failure`` counts the refusals; reads go on; once space returns, a
    probe write (which leaves nothing behind) is enough to clear it."""
    heard: list[WriteFailure | None] = []
    store = await SqliteStore.open(disk.state_dir, on_write_health=heard.append)
    try:
        [first] = await store.accept_messages([new_message(1)])
        assert first.error is None
        before = await store.counts()
        disk.fill()
        for attempt in (2, 3):
            with pytest.raises(StoreWriteError) as refused:
                await store.accept_messages([new_message(attempt)])
            assert refused.value.reason == "disk_full"
            assert "full" in str(refused.value) and "nothing of this write" in str(refused.value)
        failure = store.write_failure
        assert failure is not None and failure.reason == "disk_full" and failure.refused == 2
        assert [h.refused if h else None for h in heard] == [1, 2]
        assert await store.counts() == before  # nothing half stored; reads still work
        disk.free()
        assert store.write_failure is not None  # nothing has written since
        await store.probe_write()
        assert store.write_failure is None and heard[-1] is None
        await store.wait_writable()
        [later] = await store.accept_messages([new_message(4)])
        assert later.error is None
        assert await store.get_webhook_position("\x00write probe") == 0  # left nothing
    finally:
        await store.close()


async def test_claiming_stops_while_the_store_cannot_write(
    disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part that falls due while the store reports a write failure is not claimed: the
    dispatcher waits for the store instead, and claims it by itself once a write succeeds."""
    clock = FakeClock(1_000_000.0)
    store = await SqliteStore.open(disk.state_dir, clock=clock)
    statuses = [CommandStatus.ESME_RSYSERR, CommandStatus.ESME_ROK]  # transient, then ok
    sent: list[Pdu] = []

    class Pool(StandInPool):
        async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
            sent.append(pdu)
            return self.answer(statuses.pop(0), "id-1")

    waiting_for_store = asyncio.Event()
    real_wait = store.wait_writable

    async def wait_writable() -> None:
        waiting_for_store.set()
        await real_wait()

    monkeypatch.setattr(store, "wait_writable", wait_writable)
    pool: Any = Pool()
    dispatcher = Dispatcher(sim_provider(disk.root), store, pool, wall_clock=clock)
    task = asyncio.create_task(dispatcher.run())
    try:
        [accepted] = await store.accept_messages([new_message(1)])
        dispatcher.wake()
        message = await until_part(store, accepted.tracking_id,
                                   lambda seg: seg.attempts == 1 and seg.state == "queued")
        disk.fill()
        with pytest.raises(StoreWriteError):
            await store.accept_messages([new_message(2)])
        disk.free()
        clock.now += 60  # the retry falls due
        dispatcher.wake()
        async with asyncio.timeout(WAIT):
            await waiting_for_store.wait()
        assert len(sent) == 1
        message = await until_part(store, accepted.tracking_id, lambda seg: True)
        assert message.segments[0].state == "queued"
        await store.probe_write()  # what the daemon's housekeeping does every 5 s
        await until_part(store, accepted.tracking_id, lambda seg: seg.state == "submitted")
        assert len(sent) == 2
    finally:
        dispatcher.stop_claiming()
        await dispatcher.finish(1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_message(number: int) -> NewMessage:
    return NewMessage(tracking_id=f"{number:032x}", provider="sim", source="Acme",
                      destination="5511999999999", text=f"message {number}",
                      segments=(NewSegment(f"message {number}".encode()),))


def sim_provider(root: Path) -> ProviderConfig:
    return parse_config(
        {"gateway": {"state_dir": str(root)},
         "provider": [{"name": "sim", "profile": "generic", "system_id": "acme",
                       "password_env": "PW", "hosts": ["127.0.0.1:9"], "routes": ["55"],
                       "binds": 1, "window": 1}]},
        base_dir=root, environ={"PW": "x"}).providers[0]


async def until_part(store: Store, tracking_id: str,
                     done: Callable[[SegmentView], bool]) -> MessageView:
    """Until the message's only part satisfies ``done``; each look waits for the next commit
    (at most 50 ms), bounded by WAIT."""
    async with asyncio.timeout(WAIT):
        while True:
            message = await store.get_message(tracking_id)
            assert message is not None
            if done(message.segments[0]):
                return message
            await store.wait_for_events(store.last_cursor, 0.05)
