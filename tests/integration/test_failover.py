"""Failover against simulators, through the daemon: a provider with no bound session for its
failover_after hands its QUEUED messages (not only new ones) to its failover provider,
encoded by that provider's profile, with the move in their history; when it comes back, new
traffic returns to it. A provider refusing every submit for good (Qikberry 0x040B) counts as
down, and smppgw_provider_refusing says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import smppgw.daemon
from smppgw.daemon import Daemon
from smppgw.flow.policy import DEFAULT_POLICIES, Backoff, BackoffPolicy
from smppgw.flow.submission import SubmitRequest
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import SubmitSm
from smppgw.store import NewMessage, NewSegment, SqliteStore
from smppgw.systemd import Notifier
from tests.integration.test_daemon_e2e import make_config, provider_table

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def quick_housekeeping_and_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smppgw.daemon, "HOUSEKEEPING_INTERVAL", 0.05)
    quick = {**DEFAULT_POLICIES, "network": BackoffPolicy(initial=0.1, cap=0.1, jitter="none")}
    monkeypatch.setattr("smppgw.pool.slot.Backoff", lambda rng: Backoff(rng, quick))


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()
        yield daemon
    finally:
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            await task


async def states(daemon: Daemon, tracking_ids: list[str], *want: str) -> list[Any]:
    """Poll the store until every message is in one of the states ``want``; their views."""
    assert daemon.store is not None
    async with asyncio.timeout(WAIT):
        while True:
            views = [await daemon.store.get_message(t) for t in tracking_ids]
            if all(v is not None and v.state in want for v in views):
                return views
            await daemon.store.wait_for_events(daemon.store.last_cursor, 0.05)


async def test_queued_messages_move_to_the_failover_provider_and_new_traffic_returns(
    tmp_path: Path, sock_dir: Path
) -> None:
    up = SmscSimulator(SimulatorConfig())
    await up.start()
    down_port = free_port()
    config = make_config(tmp_path, sock_dir / "submit.sock", [
        {**provider_table("down", "generic", up, ["55"], binds=1, failover="up",
                          failover_after=0.3), "hosts": [f"127.0.0.1:{down_port}"]},
        provider_table("up", "generic", up, ["99"], binds=1),
    ])
    # Messages that were queued for "down" before this start (a restart during its outage).
    async with await SqliteStore.open(config.gateway.state_dir) as store:
        waiting = [NewMessage(
            tracking_id=f"{n + 1:032x}", provider="down", source="Acme",
            destination=f"551199999000{n}", text=f"queued {n}", client_id=f"q{n}",
            segments=(NewSegment(f"queued {n}".encode()),), valid_until_wall=4e9)
            for n in range(3)]
        assert all(r.error is None for r in await store.accept_messages(waiting))
    daemon = Daemon(config, notifier=Notifier(environ={}))
    back = SmscSimulator(SimulatorConfig(port=down_port))
    try:
        async with running(daemon):
            ids = [m.tracking_id for m in waiting]
            views = await states(daemon, ids, "submitted", "delivered")
            assert {v.provider for v in views} == {"up"}
            [note] = [h for h in views[0].history if h.type == "failover"]
            assert note.detail["from"] == "down" and note.detail["to"] == "up"
            assert "no bind bound" in str(note.detail["reason"])
            sent = {r.pdu.short_message for r in up.submits if isinstance(r.pdu, SubmitSm)}
            assert sent >= {b"queued 0", b"queued 1", b"queued 2"}
            # "down" comes back: new traffic for it goes to it again.
            await back.start()
            await back.wait_bound(1, timeout=WAIT)
            pool = daemon.providers["down"].pool
            async with asyncio.timeout(WAIT):
                while pool.down_since is not None:
                    await asyncio.sleep(0.02)  # the pool's own bind, seen from the daemon
            assert daemon.submit_service is not None
            [answer] = await daemon.submit_service.submit([SubmitRequest(
                index=0, client_id="after", to="5511999990009", sender="Acme", text="hi")])
            assert answer.accepted and answer.provider == "down"
            await back.wait_submits(1, timeout=WAIT)
    finally:
        await back.close()
        await up.close()


async def test_a_provider_refusing_every_submit_is_down_and_its_alert_metric_is_set(
    tmp_path: Path, sock_dir: Path
) -> None:
    """Qikberry's 0x040B (insufficient credits, PROVIDERS.md) to every submit: the account
    refuses everything for good. After three such refusals in a row the provider counts as
    down: smppgw_provider_refusing is 1, and new traffic goes to its failover."""
    broke = SmscSimulator(SimulatorConfig())
    spare = SmscSimulator(SimulatorConfig())
    await broke.start()
    await spare.start()
    broke.answer_next_submits(CommandStatus.ESME_RINVBALANCE, count=100)
    config = make_config(tmp_path, sock_dir / "submit.sock", [
        provider_table("broke", "qikberry", broke, ["91"], binds=1, failover="spare",
                       failover_after=0.2, tls=False, template_id="1107000000000000001"),
        provider_table("spare", "generic", spare, ["99"], binds=1),
    ])
    registry = CollectorRegistry()
    daemon = Daemon(config, notifier=Notifier(environ={}), registry=registry)
    try:
        async with running(daemon):
            await broke.wait_bound(1, timeout=WAIT)
            service = daemon.submit_service
            assert service is not None
            refused = await service.submit([SubmitRequest(
                index=n, client_id=f"r{n}", to=f"91981234567{n}", sender="ACMEIN",
                text=f"refused {n}") for n in range(3)])
            await states(daemon, [a.tracking_id for a in refused], "failed")
            assert registry.get_sample_value(
                "smppgw_provider_refusing", {"provider": "broke"}) == 1
            async with asyncio.timeout(WAIT):
                while True:
                    [moved] = await service.submit([SubmitRequest(
                        index=0, client_id=None, to="919812345679", sender="ACMEIN",
                        text="after")])
                    if moved.provider == "spare":
                        break
                    await asyncio.sleep(0.05)  # failover_after is counted on the loop clock
            assert registry.get_sample_value(
                "smppgw_provider_refusing", {"provider": "spare"}) == 0
    finally:
        await broke.close()
        await spare.close()
