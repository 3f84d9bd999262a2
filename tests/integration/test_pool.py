"""The bind pool against the SMSC simulator over real loopback sockets, TLS included.

Each test starts its simulator on 127.0.0.1:0 and stops it; waits are on conditions (bound,
a record in the simulator), each bounded by a timeout; never a sleep standing in for one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from smppgw.config import ProviderConfig, parse_config
from smppgw.pool import BindPool, Inbound, SubmitFailure
from smppgw.simulator import Account, Faults, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import SubmitSm

pytestmark = pytest.mark.timeout(60)


def provider_config(
    tmp_path: Path, sim: SmscSimulator, *, profile: str = "generic", **overrides: Any
) -> ProviderConfig:
    table: dict[str, Any] = {
        "name": "sim",
        "profile": profile,
        "system_id": "acme",
        "password_env": "SIM_PASSWORD",
        "hosts": [f"localhost:{sim.port}"],
        "routes": ["55"],
        "binds": 2,
    }
    if sim.config.tls:
        assert sim.cert_paths is not None
        table.update(tls=True, ca_file=str(sim.cert_paths.ca))
    else:
        table["tls"] = False
    table.update(overrides)
    config = parse_config(
        {"gateway": {"state_dir": str(tmp_path / "state")}, "provider": [table]},
        base_dir=tmp_path,
        environ={"SIM_PASSWORD": overrides.pop("password_value", "secret")},
    )
    return config.providers[0]


@pytest.fixture
async def pools() -> AsyncIterator[list[BindPool]]:
    made: list[BindPool] = []
    yield made
    for pool in made:
        pool.terminate()
        await pool.close(1)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition on the loop's own turns (no fixed sleep): yields until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def submit_pdu(n: int = 0) -> SubmitSm:
    return SubmitSm(destination_addr="5511999990000", short_message=f"m{n}".encode(),
                    registered_delivery=1)


async def test_tls_bind_submit_and_receipt_on_another_bind(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    sim = await sim_factory(SimulatorConfig.wavy(
        tls=True, receipts=ReceiptPlan(style="wavy", two_stage=True, routing="other"),
        accounts=(Account("acme", "secret"),),
    ))
    inbound: list[Inbound] = []
    pool = BindPool(provider_config(tmp_path, sim, profile="wavy", binds=4), inbound.append)
    pools.append(pool)
    pool.start()
    result = await pool.submit(submit_pdu())
    assert result.status == CommandStatus.ESME_ROK
    assert result.message_id is not None and len(result.message_id) == 36  # Wavy: UUID
    await wait_until(lambda: len(inbound) >= 2)  # Wavy: ACCEPTD, then DELIVRD
    assert all(i.bind != result.bind for i in inbound), "routing=other relays to another bind"
    for item in inbound:
        assert item.pdu.esm_class & 0x04
        item.acknowledge()
    await sim.wait_acknowledged(2)
    assert pool.bound_count == 4
    assert sim.bound_count("acme") == 4


async def test_throttling_is_answered_by_backing_off_not_failing(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    sim = await sim_factory(SimulatorConfig(faults=Faults(throttle_above=50)))
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    results = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(120)))
    assert all(r.status == CommandStatus.ESME_ROK for r in results)
    assert sim.throttled_total > 0, "the simulator did throttle"
    assert sim.accepted_total == 120


async def test_disconnect_mid_window_reports_every_outstanding_request(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    # Latency keeps requests in flight; the connection is cut after the 6th PDU (bind + 5).
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=0.5, drop_after=6)))
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    outcomes = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(8)),
                                    return_exceptions=True)
    lost = [o for o in outcomes if isinstance(o, SubmitFailure)]
    assert lost, "requests outstanding at the cut come back as failures to resend"
    assert all(o.kind == "connection_lost" for o in lost)
    assert all(not isinstance(o, BaseException) or isinstance(o, SubmitFailure)
               for o in outcomes)
    # The bind comes back by itself.
    sim.set_faults(Faults())
    await wait_until(lambda: pool.bound_count == 1, 15)
    assert (await pool.submit(submit_pdu(99))).status == CommandStatus.ESME_ROK


async def test_silent_smsc_is_detected_and_the_link_replaced(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    sim = await sim_factory(SimulatorConfig(faults=Faults(silent_after=2)))
    provider = provider_config(tmp_path, sim, binds=1, response_timeout=0.3)
    pool = BindPool(provider, lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    await wait_until(lambda: pool.bound_count == 1)
    outcomes = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(3)),
                                    return_exceptions=True)
    assert all(isinstance(o, SubmitFailure) and o.kind == "timeout" for o in outcomes)
    # Three response timeouts in a row close the link; the slot reconnects.
    await wait_until(lambda: sim.connects_total >= 2, 15)


async def test_wrong_password_does_not_hammer_the_provider(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    sim = await sim_factory(SimulatorConfig(accounts=(Account("acme", "right"),)))
    pool = BindPool(provider_config(tmp_path, sim, binds=2), lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    await wait_until(lambda: sim.bind_failures_total >= 2)
    # Bounded observation window: with credential failures backing off ≥ 30 s, the two slots
    # make no further attempt within it.
    loop = asyncio.get_running_loop()
    until = loop.time() + 1.5
    while loop.time() < until:
        await asyncio.sleep(0.1)
    assert sim.connects_total == 2
    assert all(slot.state == "backoff" for slot in pool.slots)
    assert all("ESME_RINVPASWD" in (slot.last_error or "") for slot in pool.slots)
    assert "right" not in repr(pool.status()) and "secret" not in repr(pool.status())


async def test_tls_verification_failure_is_a_clear_error(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    from smppgw.net.certs import generate_ca_and_leaf

    sim = await sim_factory(SimulatorConfig(tls=True))
    other = generate_ca_and_leaf(tmp_path / "other-ca")  # a CA that did not sign the SMSC's
    provider = provider_config(tmp_path, sim, binds=1, ca_file=str(other.ca))
    pool = BindPool(provider, lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    await wait_until(lambda: pool.slots[0].last_error is not None)
    assert "CERTIFICATE_VERIFY_FAILED" in (pool.slots[0].last_error or "")
    assert sim.binds_total == 0


async def test_hostname_is_resolved_at_every_connect(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = await sim_factory(SimulatorConfig())
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    pools.append(pool)
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def counting(host: str, port: int, **kwargs: Any) -> Any:
        lookups.append(host)
        return await real("127.0.0.1", port, family=socket.AF_INET, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    pool.start()
    await wait_until(lambda: pool.bound_count == 1)
    sim.drop(sim.open_connection_ids()[0])
    await wait_until(lambda: sim.connects_total == 2 and pool.bound_count == 1, 15)
    assert lookups == ["localhost", "localhost"]


async def test_window_is_never_exceeded_on_the_wire(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: list[BindPool]
) -> None:
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=0.05, window=10)))
    pool = BindPool(provider_config(tmp_path, sim, binds=2, window=10), lambda i: i.acknowledge())
    pools.append(pool)
    pool.start()
    results = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(200)))
    # The simulator answers ESME_RTHROTTLED at once beyond its window of 10: none was.
    assert sim.throttled_total == 0
    assert all(r.status == CommandStatus.ESME_ROK for r in results)
