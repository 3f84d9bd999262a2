"""The HAProxy option end to end: the real haproxy binary, rendered from
tools/haproxy/haproxy-test.cfg.template, in front of the simulator's TLS port, and an in-process
Daemon that speaks plain SMPP to HAProxy on loopback (``tls = false``), as tools/haproxy/README.md
tells operators to configure it.

The simulator only speaks TLS, so a bind that succeeds proves HAProxy did the TLS, verifying the
simulator's certificate against its generated CA. Waits are on conditions (READY=1 from HAProxy,
binds in the simulator, events from the long-poll), each bounded; everything listens on
127.0.0.1 and the fixture that started it stops it.

A missing haproxy skips locally (with the package to install) and fails under CI, where
.ci/run installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smppgw.config import parse_config
from smppgw.daemon import Daemon
from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.pdu import SubmitSmResp
from smppgw.systemd import Notifier
from tests.system.tools import require_tool

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "tools" / "haproxy" / "haproxy-test.cfg.template"
SYSTEM_ID = "acme"
PASSWORD = "hp-pw-7"  # SMPP 3.4 §4.1.1: at most 8 octets
BINDS = 4  # Wavy's minimum, which the proxy setup keeps (tools/haproxy/README.md)
WAIT = 20.0  # seconds any single condition may take before the test fails
FINAL = frozenset({"delivered", "undeliverable", "expired", "rejected", "failed"})


@pytest.fixture
def haproxy_binary() -> str:
    """The haproxy executable: skipped locally without it, a failure under CI."""
    return require_tool("haproxy", "haproxy")


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def simulator(sock_dir: Path) -> AsyncIterator[SmscSimulator]:
    """Wavy as the simulator plays it, TLS only, with a CA of its own in sock_dir/certs."""
    sim = SmscSimulator(SimulatorConfig.wavy(
        tls=True,
        cert_dir=str(sock_dir / "certs"),
        accounts=(Account(SYSTEM_ID, PASSWORD),),
        receipts=ReceiptPlan(style="wavy", two_stage=True, delay=0.05, final_delay=0.05),
        seed=7,
    ))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


@pytest.fixture
async def haproxy(
    haproxy_binary: str, sock_dir: Path, simulator: SmscSimulator
) -> AsyncIterator[int]:
    """HAProxy from the test template between 127.0.0.1:<frontend> and the simulator's TLS
    port; yields the frontend port once HAProxy said READY=1, and stops HAProxy afterwards.
    """
    assert simulator.cert_paths is not None
    frontend_port = free_loopback_port()
    config = sock_dir / "haproxy.cfg"
    config.write_text(string.Template(TEMPLATE.read_text()).substitute(
        frontend_port=frontend_port, backend_port=simulator.port,
        ca_file=str(simulator.cert_paths.ca)))

    notify_path = sock_dir / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    process = await asyncio.create_subprocess_exec(
        haproxy_binary, "-Ws", "-db", "-f", str(config),
        env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    try:
        exited = asyncio.ensure_future(process.wait())
        try:
            # The master says RELOADING=1, then READY=1 once the worker listens.
            async with asyncio.timeout(WAIT):
                while True:
                    received = asyncio.ensure_future(loop.sock_recv(notify, 4096))
                    await asyncio.wait({received, exited}, return_when=asyncio.FIRST_COMPLETED)
                    if not received.done():
                        received.cancel()
                        assert process.stderr is not None
                        output = (await process.stderr.read()).decode(errors="replace")
                        pytest.fail(f"haproxy exited with {process.returncode}:\n{output}")
                    if b"READY=1" in received.result().split(b"\n"):
                        break
        finally:
            if not exited.done():
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await exited
        yield frontend_port
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(WAIT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        notify.close()


@pytest.fixture
async def gateway(
    sock_dir: Path, haproxy: int
) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    """A Daemon whose only provider is HAProxy's frontend, plain SMPP over loopback."""
    socket_path = sock_dir / "submit.sock"
    config = parse_config(
        {
            "gateway": {
                "state_dir": str(sock_dir / "state"),
                "submit_socket": str(socket_path),
                "metrics_listen": "",
                "log_level": "warning",
            },
            "provider": [{
                "name": "wavy",
                "profile": "wavy",
                "system_id": SYSTEM_ID,
                "password_env": "HP_PASSWORD",
                "hosts": [f"127.0.0.1:{haproxy}"],
                "tls": False,  # the TLS is HAProxy's job; this hop stays on loopback
                "binds": BINDS,
                "routes": ["55"],
            }],
        },
        base_dir=sock_dir,
        environ={"HP_PASSWORD": PASSWORD},
    )
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    http: aiohttp.ClientSession | None = None
    try:
        ready = asyncio.ensure_future(daemon.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=WAIT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()
            pytest.fail("the daemon did not become ready")
        http = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path)))
        yield daemon, http
    finally:
        if http is not None:
            await http.close()
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            await task


async def get_json(http: aiohttp.ClientSession, path: str, **params: str) -> Any:
    async with http.get(f"http://smppgw{path}", params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_daemon_binds_through_haproxy_and_gets_the_receipt(
    haproxy_binary: str,
    simulator: SmscSimulator,
    haproxy: int,
    gateway: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    daemon, http = gateway
    # Every bind goes through HAProxy: the daemon connects in plain SMPP, the simulator only
    # accepts TLS, so a bound system_id means HAProxy verified the CA and did the handshake.
    await simulator.wait_bound(BINDS, system_id=SYSTEM_ID, timeout=WAIT)

    async with http.post("http://smppgw/v1/messages", json={"messages": [{
        "id": "via-haproxy-1", "to": "5511999990001", "from": "Acme",
        "text": "Hello through HAProxy",
    }]}) as resp:
        assert resp.status == 200, await resp.text()
        answer = (await resp.json())["messages"][0]
    assert answer["accepted"] is True, answer
    tracking_id = answer["tracking_id"]

    # The events long-poll, resumed from its cursor, until the message reaches a final state.
    cursor = 0
    states: list[str] = []
    async with asyncio.timeout(WAIT):
        while not states or states[-1] not in FINAL:
            batch = await get_json(http, "/v1/events", after=str(cursor), wait="5")
            cursor = batch["cursor"]
            states += [e["state"] for e in batch["events"]
                       if e.get("tracking_id") == tracking_id and e["type"] == "state"]
    assert states[-1] == "delivered", states
    assert "accepted" in states, states  # Wavy's first stage (ACCEPTD) came through too

    message = await get_json(http, f"/v1/messages/{tracking_id}")
    assert message["state"] == "delivered"
    assert message["id"] == "via-haproxy-1"
    (segment,) = message["segments"]
    # The SMSC message id the simulator gave is the one the daemon stored and matched.
    submitted_ids = {record.pdu.message_id for record in simulator.sent
                     if isinstance(record.pdu, SubmitSmResp)}
    assert segment["smsc_message_id"] in submitted_ids
    assert segment["receipt"]["stat"] == "DELIVRD"

    # The daemon's own view: every bind bound, all to HAProxy's loopback frontend.
    status = await get_json(http, "/v1/status")
    binds = status["binds"]
    assert len(binds) == BINDS
    assert {b["state"] for b in binds} == {"bound"}, binds
    assert {b["address"] for b in binds} == {f"127.0.0.1:{haproxy}"}, binds
    assert all(b["connects"] == 1 and b["last_error"] is None for b in binds), binds
    assert daemon.providers["wavy"].pool.bound_count == BINDS
