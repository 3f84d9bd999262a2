"""A second smppgw takes its local resources (state lock, submit socket, metrics port) before
it makes any SMSC connection: started by mistake beside a running one, it fails on what it
shares with the first and never binds to the provider, whose accounts limit binds.

Both daemons run in this process against one simulator on loopback; the simulator counts every
TCP connection and bind it receives. Waits are on conditions (READY, binds), each bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smppgw.api.app import ApiStartError
from smppgw.config import Config, HostPort, parse_config
from smppgw.daemon import Daemon
from smppgw.metrics import MetricsStartError
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.store import StoreError
from smppgw.systemd import Notifier

pytestmark = pytest.mark.timeout(60)

PASSWORD = "sim-pw"  # SMPP 3.4 §4.1.1: at most 8 octets
BINDS = 2
WAIT = 15.0  # seconds any single condition may take


def make_config(root: Path, socket_path: Path, sim: SmscSimulator, metrics_port: int) -> Config:
    config = parse_config(
        {
            "gateway": {"state_dir": str(root / "state"), "submit_socket": str(socket_path),
                        "log_level": "warning"},
            "provider": [{
                "name": "gen", "profile": "generic", "system_id": "acme",
                "password_env": "SIM_PASSWORD", "hosts": [f"127.0.0.1:{sim.port}"],
                "tls": False, "binds": BINDS, "routes": ["55"],
            }],
        },
        base_dir=root, environ={"SIM_PASSWORD": PASSWORD},
    )
    return dataclasses.replace(config, gateway=dataclasses.replace(
        config.gateway, metrics_listen=HostPort("127.0.0.1", metrics_port)))


@dataclasses.dataclass
class First:
    """The daemon already running: bound to the simulator, its resources taken."""

    daemon: Daemon
    config: Config
    metrics_port: int


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    simulator = SmscSimulator(SimulatorConfig(host="127.0.0.1", port=0))
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def first(tmp_path: Path, sock_dir: Path, sim: SmscSimulator) -> AsyncIterator[First]:
    config = make_config(tmp_path / "first", sock_dir / "first.sock", sim, 0)
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()
        await sim.wait_bound(BINDS, timeout=WAIT)
        assert daemon.metrics_server is not None and daemon.metrics_server.port
        yield First(daemon, config, daemon.metrics_server.port)
    finally:
        daemon.request_stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WAIT):
                await task


def second_config(kind: str, first: First, root: Path, sock_dir: Path,
                  sim: SmscSimulator) -> Config:
    """A config for another instance sharing exactly one resource (``kind``) with ``first``."""
    own = make_config(root / "second", sock_dir / "second.sock", sim, 0)
    shared: dict[str, Any] = {
        "state lock": {"state_dir": first.config.gateway.state_dir},
        "submit socket": {"submit_socket": first.config.gateway.submit_socket},
        "metrics port": {"metrics_listen": HostPort("127.0.0.1", first.metrics_port)},
    }[kind]
    return dataclasses.replace(own, gateway=dataclasses.replace(own.gateway, **shared))


@pytest.mark.parametrize(("kind", "error", "text"), [
    ("state lock", StoreError, "state directory is in use"),
    ("submit socket", ApiStartError, "another smppgw is listening on"),
    ("metrics port", MetricsStartError, "gateway.metrics_listen"),
])
async def test_a_second_instance_fails_on_a_shared_resource_before_any_smsc_connection(
    first: First, sim: SmscSimulator, tmp_path: Path, sock_dir: Path, kind: str,
    error: type[Exception], text: str,
) -> None:
    connects, binds = sim.connects_total, sim.binds_total
    assert binds == BINDS
    second = Daemon(second_config(kind, first, tmp_path, sock_dir, sim),
                    notifier=Notifier(environ={}))
    with pytest.raises(error, match=text):
        async with asyncio.timeout(WAIT):
            await second.run()
    assert not second.ready.is_set()
    # Not one connection, let alone a bind, reached the SMSC from the second instance.
    assert (sim.connects_total, sim.binds_total) == (connects, binds)
    # The first one is untouched: still bound, its socket still answering.
    assert first.daemon.providers["gen"].pool.bound_count == BINDS
