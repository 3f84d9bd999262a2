"""Flow control against the simulator: the contracted rate is never exceeded in any second, a
host's rate is shared by its binds, and an SMSC whose window is smaller than ours gets a
narrower window instead of a stream of refusals.

Each test starts its simulator on 127.0.0.1:0; waits are on conditions, bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from smppgw.daemon import Daemon
from smppgw.flow.outbound import PartFate, decide_answer
from smppgw.flow.submission import SubmitRequest
from smppgw.metrics import Metrics
from smppgw.pool.pool import BindPool, SubmitResult
from smppgw.simulator import Faults, SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import SubmitSm
from smppgw.systemd import Notifier
from tests.integration.conftest import RunningPools
from tests.integration.test_daemon_e2e import make_config, provider_table
from tests.integration.test_pool import provider_config, submit_pdu, wait_until

pytestmark = pytest.mark.timeout(60)


def most_in_any_second(instants: list[float]) -> int:
    """The most instants in any interval (t - 1, t]."""
    ordered = sorted(instants)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def arrivals(sim: SmscSimulator, connection: int | None = None) -> list[float]:
    return [r.at for r in sim.submits if connection is None or r.connection_id == connection]


async def submit_until_taken(pool: BindPool, pdu: SubmitSm) -> tuple[SubmitResult, int]:
    """A dispatcher worker in miniature: send, decide, hand the decision back, send again
    while the SMSC pushes back. Returns the last answer and how many were refused."""
    refused = 0
    while True:
        result = await pool.submit(pdu)
        decision = decide_answer(result.status, result.message_id, attempts=0,
                                 sent_again=refused)
        pool.apply(result, decision)
        if decision.fate is not PartFate.SEND_AGAIN:
            return result, refused
        refused += 1


async def test_no_second_carries_more_than_the_bind_rate_not_even_the_first(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    # A token bucket with a second of burst lets 2x through in the first second of work
    # after an idle spell (and at start, when it is full): the contract is per second.
    sim = await sim_factory(SimulatorConfig())
    pool = pools.start(BindPool(provider_config(tmp_path, sim, binds=1, rate_per_bind=10),
                                lambda i: i.acknowledge()))
    await pool.wait_bound()
    results = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(25)))
    assert all(r.status == CommandStatus.ESME_ROK for r in results)
    assert most_in_any_second(arrivals(sim)) == 10


async def test_a_hosts_rate_is_shared_by_its_binds(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    # Qikberry counts per server (PROVIDERS.md): two binds to one host share its rate.
    sim = await sim_factory(SimulatorConfig())
    provider = provider_config(tmp_path, sim, binds=2, rate_per_host=8)
    pool = pools.start(BindPool(provider, lambda i: i.acknowledge()))
    await wait_until(lambda: pool.bound_count == 2)
    await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(20)))
    assert len({r.connection_id for r in sim.submits}) == 2, "both binds sent"
    assert most_in_any_second(arrivals(sim)) == 8


async def test_an_smsc_window_smaller_than_ours_narrows_our_window(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    # The SMSC holds 3 requests at a time and refuses more with ESME_RMSGQFUL (SMPP 3.4
    # §5.1.3); we are configured for 10. After the first refusals the bind keeps 3 in flight.
    sim = await sim_factory(SimulatorConfig(faults=Faults(window=3, latency=0.05)))
    pool = pools.start(BindPool(provider_config(tmp_path, sim, binds=1, window=10),
                                lambda i: i.acknowledge()))
    await pool.wait_bound()
    outcomes = await asyncio.gather(*(submit_until_taken(pool, submit_pdu(n))
                                      for n in range(60)))
    assert all(result.status == CommandStatus.ESME_ROK for result, _ in outcomes)
    assert sim.accepted_total == 60
    control = pool.slots[0].control
    assert control.window.effective <= 4
    assert pool.status()[0].effective_window == control.window.effective
    # Refusals are the first burst's and rare probes, not one per submit beyond 3.
    assert sim.queue_full_total <= 15


async def test_a_status_that_says_the_bind_is_bad_rebinds_it_and_the_part_goes_again(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    # SMPP 3.4 §5.1.3 ESME_RINVBNDSTS on a submit: our idea of the bind differs from the
    # SMSC's. The bind unbinds and binds again (smpp/status.py: reconnect); the part is not
    # failed for it.
    sim = await sim_factory(SimulatorConfig())
    metrics = Metrics(CollectorRegistry())
    pool = pools.start(BindPool(provider_config(tmp_path, sim, binds=1),
                                lambda i: i.acknowledge(), metrics=metrics))
    await pool.wait_bound()
    sim.answer_next_submits(CommandStatus.ESME_RINVBNDSTS)
    first = await pool.submit(submit_pdu(1))
    decision = decide_answer(first.status, first.message_id, attempts=0)
    pool.apply(first, decision)
    assert decision.fate is PartFate.SEND_AGAIN
    await sim.wait_for(lambda: sim.unbinds_total == 1 and sim.bound_count() == 1, 15)
    assert sim.binds_total == 2
    await wait_until(lambda: pool.bound_count == 1, 15)
    assert (await pool.submit(submit_pdu(1))).status == CommandStatus.ESME_ROK
    assert metrics.registry.get_sample_value(
        "smppgw_reconnects_total", {"provider": "sim", "reason": "rebind_status"}) == 1


async def test_through_the_daemon_each_messages_parts_reach_the_smsc_in_order(
    tmp_path: Path, sock_dir: Path
) -> None:
    """An SMSC that holds one request at a time and refuses more with ESME_RMSGQFUL, and
    three five-part messages at once: each message's parts arrive in order, a refused part
    again before the next one (never 1, 2, 3, 4, 5, 3, 3)."""
    sim = SmscSimulator(SimulatorConfig(faults=Faults(window=1, latency=0.02)))
    await sim.start()
    config = make_config(tmp_path, sock_dir / "submit.sock", [
        provider_table("sim", "generic", sim, ["55"], binds=2, window=4)])
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(15):
            await daemon.ready.wait()
        await sim.wait_bound(2, timeout=15)
        assert daemon.submit_service is not None
        answers = await daemon.submit_service.submit([
            SubmitRequest(index=n, client_id=f"long-{n}", to=f"551199999000{n}",
                          sender="Acme", text=f"{n}" * 700) for n in range(3)])
        assert all(a.accepted and a.segments == 5 for a in answers)
        await sim.wait_for(lambda: sim.accepted_total == 15, timeout=30)
    finally:
        daemon.request_stop()
        async with asyncio.timeout(15):
            await task
        await sim.close()
    assert sim.queue_full_total > 0, "the SMSC did refuse parts"
    for n in range(3):
        seqs = [r.pdu.short_message[5] for r in sim.submits  # type: ignore[union-attr]
                if r.pdu is not None and r.pdu.destination_addr == f"551199999000{n}"]
        assert seqs == sorted(seqs) and set(seqs) == {1, 2, 3, 4, 5}, seqs
