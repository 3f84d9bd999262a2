"""smppgw's own keep-alive against an SMSC that probes on its own (SMPP 3.4 §4.11).

Wavy asks every client for an enquire_link every 30 to 59 s (PROVIDERS.md); answering the
SMSC's probes does not count. The simulator probes every 50 ms here; smppgw, configured for
300 ms, must still send its own. Waits are on simulator conditions, bounded by timeouts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smppgw.config import parse_config
from smppgw.pool.pool import BindPool
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.smpp.pdu import EnquireLink, EnquireLinkResp
from tests.integration.conftest import RunningPools

pytestmark = pytest.mark.timeout(30)

OUR_INTERVAL = 0.3


def ours(sim: SmscSimulator) -> list[float]:
    """When each enquire_link from smppgw reached the simulator."""
    return [r.at for r in sim.received if isinstance(r.pdu, EnquireLink)]


async def test_own_enquire_link_while_the_smsc_probes_every_50_ms(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    sim: SmscSimulator = await sim_factory(SimulatorConfig(enquire_link_interval=0.05))
    config = parse_config(
        {"gateway": {"state_dir": str(tmp_path / "state")}, "provider": [{
            "name": "sim", "profile": "generic", "system_id": "acme",
            "password_env": "SIM_PASSWORD", "hosts": [f"127.0.0.1:{sim.port}"],
            "routes": ["55"], "binds": 1, "tls": False}]},
        base_dir=tmp_path, environ={"SIM_PASSWORD": "secret"},
    ).providers[0]
    # Below what config allows (5 s), so the test takes a fraction of a second.
    profile = dataclasses.replace(config.profile, enquire_link_interval=OUR_INTERVAL)
    pool = BindPool(dataclasses.replace(config, profile=profile), lambda inbound: None)
    pools.start(pool)
    await sim.wait_for(lambda: len(ours(sim)) >= 2, timeout=10)
    # smppgw answered the probes (several per interval of its own) and still sent its own.
    answered = [r for r in sim.received if isinstance(r.pdu, EnquireLinkResp)]
    assert len(answered) > len(ours(sim))
    assert sim.enquire_links_total >= len(answered)
