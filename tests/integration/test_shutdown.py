"""From the stop request on (SIGTERM), no new TCP connection and no new bind: a bind waiting in
backoff stays down, and every bound session unbinds before it closes. The simulator counts
connections and binds; the assertions compare its counts at the stop request and after.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smppgw.daemon import Daemon
from smppgw.pool.pool import BindPool
from smppgw.simulator import Account, SimulatorConfig, SmscSimulator
from smppgw.systemd import Notifier
from tests.integration.conftest import RunningPools
from tests.integration.test_daemon_e2e import PASSWORD, make_config, provider_table
from tests.integration.test_pool import provider_config, wait_until

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


def bind_attempts(sim: SmscSimulator) -> int:
    return sum(1 for r in sim.received if type(r.pdu).__name__.startswith("Bind"))


async def two_binds_one_in_backoff(sim: SmscSimulator, bound: Callable[[], int]) -> None:
    """The account takes one bind: the second is refused (ESME_RBINDFAIL) and backs off."""
    await sim.wait_for(lambda: sim.bind_failures_total >= 1 and sim.bound_count() == 1, WAIT)
    await wait_until(lambda: bound() == 1)


async def test_closing_a_pool_wakes_no_bind_in_backoff(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    sim: SmscSimulator = await sim_factory(
        SimulatorConfig(accounts=(Account("acme", "secret", max_binds=1),)))
    pool = pools.start(BindPool(provider_config(tmp_path, sim, binds=2),
                                lambda i: i.acknowledge()))
    await two_binds_one_in_backoff(sim, lambda: pool.bound_count)
    await wait_until(lambda: any(s.state == "backoff" for s in pool.slots))
    connects, binds = sim.connects_total, bind_attempts(sim)
    await pool.close(5)
    assert sim.unbinds_total == 1, "the bound session unbound before it closed"
    # Some loop turns for a woken slot to connect, had it been let: none did.
    for _ in range(20):
        await asyncio.sleep(0)
    assert (sim.connects_total, bind_attempts(sim)) == (connects, binds)
    assert all(slot.state == "closed" for slot in pool.slots)


async def test_after_the_stop_request_the_daemon_connects_and_binds_nothing(
    tmp_path: Path, sock_dir: Path
) -> None:
    sim = SmscSimulator(SimulatorConfig(accounts=(Account("acme-sim", PASSWORD, max_binds=1),)))
    await sim.start()
    config = make_config(tmp_path, sock_dir / "submit.sock",
                         [provider_table("sim", "generic", sim, ["55"], binds=3)])
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()
        pool = daemon.providers["sim"].pool
        await two_binds_one_in_backoff(sim, lambda: pool.bound_count)
        connects, binds = sim.connects_total, bind_attempts(sim)
        daemon.request_stop()  # what SIGTERM does
        async with asyncio.timeout(WAIT):
            await task
        assert sim.unbinds_total == 1
        assert (sim.connects_total, bind_attempts(sim)) == (connects, binds)
    finally:
        daemon.request_stop()
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(WAIT):
                await task
        await sim.close()
