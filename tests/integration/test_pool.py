"""The bind pool against the SMSC simulator over real loopback sockets, TLS included.

Each test starts its simulator on 127.0.0.1:0 and stops it; waits are on conditions (bound,
a record in the simulator), each bounded by a timeout; never a sleep standing in for one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.flow.outbound import PartFate, decide_answer
from smppgw.flow.policy import DEFAULT_POLICIES, Backoff, BackoffPolicy
from smppgw.logs import KeyValueFormatter
from smppgw.metrics import Metrics
from smppgw.net.certs import generate_self_signed
from smppgw.pool.pool import BindPool, SubmitResult, SubmitTicket
from smppgw.pool.slot import BindSlot, Inbound, SubmitFailure
from smppgw.simulator import Account, Faults, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import SubmitSm
from tests.integration.conftest import RunningPools

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


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition on the loop's own turns (no fixed sleep): yields until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def pool_records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "smppgw.pool.slot" and r.getMessage() == message]


def submit_pdu(n: int = 0) -> SubmitSm:
    return SubmitSm(destination_addr="5511999990000", short_message=f"m{n}".encode(),
                    registered_delivery=1)


async def test_tls_bind_submit_and_receipt_on_another_bind(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    sim = await sim_factory(SimulatorConfig.wavy(
        tls=True, receipts=ReceiptPlan(style="wavy", two_stage=True, routing="other"),
        accounts=(Account("acme", "secret"),),
    ))
    inbound: list[Inbound] = []
    pool = BindPool(provider_config(tmp_path, sim, profile="wavy", binds=4), inbound.append)
    pools.start(pool)
    await pool.wait_bound()
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


async def submit_until_taken(pool: BindPool, pdu: SubmitSm) -> SubmitResult:
    """What a dispatcher worker does with one part: send, decide (flow.outbound), hand the
    decision back to the pool, and send again while the SMSC pushes back."""
    sent_again = 0
    while True:
        result = await pool.submit(pdu)
        decision = decide_answer(result.status, result.message_id, attempts=0,
                                 sent_again=sent_again)
        pool.apply(result, decision)
        if decision.fate is not PartFate.SEND_AGAIN:
            return result
        sent_again += 1


async def test_throttling_lowers_the_binds_rate_instead_of_failing(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    sim = await sim_factory(SimulatorConfig(faults=Faults(throttle_above=50)))
    # Configured at four times what the SMSC takes. A log period longer than the test:
    # after the first throttled answer, the rest wait for the summary.
    pool = BindPool(provider_config(tmp_path, sim, binds=1, rate_per_bind=200),
                    lambda i: i.acknowledge(), log_interval=3600.0)
    pools.start(pool)
    await pool.wait_bound()
    results = await asyncio.gather(*(submit_until_taken(pool, submit_pdu(n))
                                     for n in range(120)))
    assert all(r.status == CommandStatus.ESME_ROK for r in results)
    assert sim.throttled_total > 1, "the simulator did throttle"
    assert sim.accepted_total == 120
    control = pool.slots[0].control
    assert 1.0 <= control.rate.effective < 200, "the bind's rate came down"
    assert pool.status()[0].effective_rate == round(control.rate.effective, 2)
    # The log: one line for the first throttled answer, not one per answer.
    first = pool_records(caplog, "SMSC throttling; flow control adapts")
    assert len(first) == 1
    assert first[0].levelno == logging.WARNING and first[0].bind == "sim#0"
    assert first[0].kv["status"] == "ESME_RTHROTTLED"  # type: ignore[attr-defined]
    assert pool_records(caplog, "SMSC throttling continued") == []
    # The bind stops: what the period counted is said, not lost.
    await pool.close(5)
    summary = pool_records(caplog, "SMSC throttling continued")
    assert len(summary) == 1
    assert summary[0].kv["answers"] == sim.throttled_total - 1  # type: ignore[attr-defined]


async def test_disconnect_mid_window_reports_every_outstanding_request(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    # Latency keeps requests in flight; the connection is cut after the 6th PDU (bind + 5).
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=0.5, drop_after=6)))
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    pools.start(pool)
    await pool.wait_bound()
    outcomes = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(8)),
                                    return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, SubmitFailure)]
    assert len(failures) == len(outcomes), "no request was answered before the cut"
    assert any(o.kind == "connection_lost" for o in failures), \
        "requests outstanding at the cut come back as failures to resend"
    # Any not sent yet is handed back at once with no bind left (the dispatcher returns it
    # to the queue) instead of waiting in the pool.
    assert all(o.kind in ("connection_lost", "no_bind") for o in failures)
    # The bind comes back by itself.
    sim.set_faults(Faults())
    await wait_until(lambda: pool.bound_count == 1, 15)
    assert (await pool.submit(submit_pdu(99))).status == CommandStatus.ESME_ROK


async def test_silent_smsc_is_detected_and_the_link_replaced(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    sim = await sim_factory(SimulatorConfig(faults=Faults(silent_after=2)))
    provider = provider_config(tmp_path, sim, binds=1, response_timeout=0.3)
    pool = BindPool(provider, lambda i: i.acknowledge())
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 1)
    outcomes = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(3)),
                                    return_exceptions=True)
    assert all(isinstance(o, SubmitFailure) and o.kind == "timeout" for o in outcomes)
    # Three response timeouts in a row close the link; the slot reconnects.
    await wait_until(lambda: sim.connects_total >= 2, 15)


async def test_wrong_password_does_not_hammer_the_provider(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = await sim_factory(SimulatorConfig(accounts=(Account("acme", "right"),)))
    pool = BindPool(provider_config(tmp_path, sim, binds=2), lambda i: i.acknowledge())
    pools.start(pool)
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    await wait_until(lambda: len(pool_records(caplog, "bind attempt failed")) >= 2)
    # Each slot scheduled its next attempt at least 30 s away (credential backoff), so the
    # two connects seen are all there will be for that long: no waiting needed to prove it.
    # `smppgw status` says when each slot tries again and why it is down.
    statuses = pool.status()
    assert {b.state for b in statuses} == {"backoff"}
    assert all(b.retry_reason == "bind_rejected" for b in statuses)
    assert all(b.retry_in is not None and 25.0 < b.retry_in <= 300.0 for b in statuses)
    failures = pool_records(caplog, "bind attempt failed")
    assert len(failures) == 2 and all(r.levelno == logging.ERROR for r in failures)
    assert all(float(r.kv["retry_in"].rstrip("s")) >= 30 for r in failures)  # type: ignore[attr-defined]
    assert sim.connects_total == 2
    assert all(slot.state == "backoff" for slot in pool.slots)
    assert all("ESME_RINVPASWD" in (slot.last_error or "") for slot in pool.slots)
    assert "right" not in repr(pool.status()) and "secret" not in repr(pool.status())


async def test_tls_verification_failure_is_a_clear_error(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    from smppgw.net.certs import generate_ca_and_leaf

    sim = await sim_factory(SimulatorConfig(tls=True))
    other = generate_ca_and_leaf(tmp_path / "other-ca")  # a CA that did not sign the SMSC's
    provider = provider_config(tmp_path, sim, binds=1, ca_file=str(other.ca))
    pool = BindPool(provider, lambda i: i.acknowledge())
    pools.start(pool)
    await wait_until(lambda: pool.slots[0].last_error is not None)
    assert "CERTIFICATE_VERIFY_FAILED" in (pool.slots[0].last_error or "")
    assert sim.binds_total == 0


async def test_hostname_is_resolved_at_every_connect(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = await sim_factory(SimulatorConfig())
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def counting(host: str, port: int, **kwargs: Any) -> Any:
        lookups.append(host)
        return await real("127.0.0.1", port, family=socket.AF_INET, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 1)
    sim.drop(sim.open_connection_ids()[0])
    await wait_until(lambda: sim.connects_total == 2 and pool.bound_count == 1, 15)
    assert lookups == ["localhost", "localhost"]


async def test_window_is_never_exceeded_on_the_wire(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=0.05, window=10)))
    pool = BindPool(provider_config(tmp_path, sim, binds=2, window=10), lambda i: i.acknowledge())
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 2)
    results = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(200)))
    # The simulator answers ESME_RMSGQFUL at once beyond its window of 10: none was.
    assert sim.queue_full_total == 0
    assert all(r.status == CommandStatus.ESME_ROK for r in results)


# --- what the operator reads in the log ------------------------------------------------------


async def test_a_bound_link_that_drops_logs_reason_and_requeued_requests(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    # As above: the SMSC cuts the link after bind + 5 submits, which are still unanswered.
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=0.5, drop_after=6)))
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    pools.start(pool)
    await pool.wait_bound()
    outcomes = await asyncio.gather(*(pool.submit(submit_pdu(n)) for n in range(8)),
                                    return_exceptions=True)
    lost = [o for o in outcomes if isinstance(o, SubmitFailure) and o.kind == "connection_lost"]
    assert lost
    await wait_until(lambda: bool(pool_records(caplog, "bind lost")))
    records = pool_records(caplog, "bind lost")
    assert all(r.levelno == logging.WARNING and r.bind == "sim#0" for r in records)
    kv = records[0].kv  # type: ignore[attr-defined]
    assert kv["reason"] == "peer_closed"
    assert kv["retry_in"].endswith("s") and kv["bound_for"].endswith("s")
    # Every request lost with a link is counted in that link's line: none more, none less.
    assert sum(r.kv["requeued"] for r in records) == len(lost)  # type: ignore[attr-defined]
    line = KeyValueFormatter(with_time=False).format(records[0])
    assert line.startswith('level=warning logger=smppgw.pool.slot bind=sim#0 msg="bind lost" '
                           f"reason=peer_closed requeued={kv['requeued']} ")
    assert "5511999990000" not in line and "secret" not in line


async def test_a_graceful_close_is_not_a_lost_bind(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    sim = await sim_factory(SimulatorConfig())
    pool = BindPool(provider_config(tmp_path, sim, binds=2), lambda i: i.acknowledge())
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 2)
    assert (await pool.submit(submit_pdu())).status == CommandStatus.ESME_ROK
    await pool.close(5)
    assert len(pool_records(caplog, "bound")) == 2
    assert pool_records(caplog, "bind lost") == []


def idle_provider(tmp_path: Path) -> ProviderConfig:
    """One bind to a port nothing is asked of: the pool is built, never started."""
    return parse_config(
        {"gateway": {"state_dir": str(tmp_path / "state")},
         "provider": [{"name": "sim", "profile": "generic", "system_id": "acme",
                       "password_env": "PW", "hosts": ["127.0.0.1:9"], "routes": ["55"],
                       "binds": 1}]},
        base_dir=tmp_path, environ={"PW": "x"}).providers[0]


async def test_throttle_summaries_count_every_throttled_answer_once(
    tmp_path: Path, pools: RunningPools, caplog: pytest.LogCaptureFixture
) -> None:
    """Throttled answers given directly; the summary timer is fired by hand (time does not
    pass)."""
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    pool = BindPool(idle_provider(tmp_path), lambda i: i.acknowledge(), log_interval=30.0)
    pools.add(pool)
    slot = pool.slots[0]
    now = asyncio.get_running_loop().time()

    def fire_summary_timer() -> None:
        assert slot.throttle_log.summary_at is not None
        slot.throttle_log.summarize()

    def summaries() -> list[logging.LogRecord]:
        return pool_records(caplog, "SMSC throttling continued")

    for _ in range(5):
        slot.throttled(CommandStatus.ESME_RTHROTTLED, lowered=True)
    assert len(pool_records(caplog, "SMSC throttling; flow control adapts")) == 1
    due = slot.throttle_log.summary_at
    assert due is not None and now + 30.0 <= due < now + 31.0
    fire_summary_timer()
    assert len(summaries()) == 1
    assert summaries()[0].kv["answers"] == 4  # type: ignore[attr-defined]
    # Still throttled in the next period: counted into the next summary.
    slot.throttled(CommandStatus.ESME_RMSGQFUL, lowered=True)
    slot.throttled(CommandStatus.ESME_RMSGQFUL, lowered=False)
    fire_summary_timer()
    assert len(summaries()) == 2
    assert summaries()[1].kv["answers"] == 2  # type: ignore[attr-defined]
    line = KeyValueFormatter(with_time=False).format(summaries()[1])
    assert line.startswith('level=warning logger=smppgw.pool.slot bind=sim#0 '
                           'msg="SMSC throttling continued" answers=2 effective_rate=')
    # A period without throttling ends the streak quietly; the next logs at once again.
    fire_summary_timer()
    assert len(summaries()) == 2 and slot.throttle_log.summary_at is None
    slot.throttled(CommandStatus.ESME_RMSGQFUL, lowered=True)
    first = pool_records(caplog, "SMSC throttling; flow control adapts")
    assert len(first) == 2
    assert first[1].kv == {"status": "ESME_RMSGQFUL", "effective_rate": "inf/s",  # type: ignore[attr-defined]
                           "effective_window": 10, "lowered": "yes"}


async def test_throttle_summary_timer_fires_on_the_loop(
    tmp_path: Path, pools: RunningPools, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    pool = BindPool(idle_provider(tmp_path), lambda i: i.acknowledge(), log_interval=0.05)
    pools.add(pool)
    slot = pool.slots[0]
    slot.throttled(CommandStatus.ESME_RTHROTTLED, lowered=True)
    slot.throttled(CommandStatus.ESME_RTHROTTLED, lowered=False)
    await wait_until(lambda: bool(pool_records(caplog, "SMSC throttling continued")))
    [summary] = pool_records(caplog, "SMSC throttling continued")
    assert summary.kv["answers"] == 1  # type: ignore[attr-defined]


async def test_a_bind_that_cannot_be_built_says_why_at_each_attempt(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ca_file that holds no certificate by the time the bind connects (check-config
    refuses such a file, but files are read at every connect, so one replaced later is
    used): each attempt fails before any socket is opened, is logged with the cause, and
    LAST ERROR in `smppgw status` shows it. The slot keeps trying (slowly), so a fixed file
    is picked up without a restart."""
    quick = {**DEFAULT_POLICIES, "local": BackoffPolicy(initial=0.01, cap=0.01, jitter="none")}
    monkeypatch.setattr("smppgw.pool.slot.Backoff", lambda rng: Backoff(rng, quick))
    sim = await sim_factory(SimulatorConfig(tls=True))
    assert sim.cert_paths is not None
    broken = tmp_path / "not-a-ca.pem"
    broken.write_bytes(sim.cert_paths.ca.read_bytes())
    provider = provider_config(tmp_path, sim, binds=1, ca_file=str(broken))
    broken.write_text("not a certificate\n")
    pool = BindPool(provider, lambda i: i.acknowledge())
    pools.add(pool)
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    pools.start(pool)
    await wait_until(lambda: len(pool_records(caplog, "bind attempt failed")) >= 2)
    first = pool_records(caplog, "bind attempt failed")[0]
    assert first.levelno == logging.ERROR
    assert first.kv["reason"] == "local"  # type: ignore[attr-defined]
    assert f"cannot load ca_file {broken}" in first.kv["detail"]  # type: ignore[attr-defined]
    (status,) = pool.status()
    assert status.state in ("backoff", "connecting")
    assert status.last_error is not None and "cannot load ca_file" in status.last_error
    assert sim.connects_total == 0


async def test_a_fault_in_one_bind_attempt_is_logged_and_the_bind_tries_again(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    quick = {**DEFAULT_POLICIES, "local": BackoffPolicy(initial=0.01, cap=0.01, jitter="none")}
    monkeypatch.setattr("smppgw.pool.slot.Backoff", lambda rng: Backoff(rng, quick))
    sim = await sim_factory(SimulatorConfig())
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge())
    real_resolve = BindSlot._resolve
    faults = [RuntimeError("a bug in resolving")]

    async def resolve(self: BindSlot, host: str, port: int) -> tuple[str, int]:
        if faults:
            raise faults.pop()
        return await real_resolve(self, host, port)

    monkeypatch.setattr(BindSlot, "_resolve", resolve)
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 1)
    [failed] = pool_records(caplog, "bind attempt failed")
    assert failed.exc_info is not None
    assert "RuntimeError: a bug in resolving" in (pool.slots[0].last_error or "")


async def test_a_flood_of_malformed_pdus_is_one_warning_a_summary_and_a_counter(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SMSC that sends garbage as fast as the link carries cannot flood the journal: the
    first violation of a streak is logged, the rest are counted into one line per period
    (as throttling is), and smppgw_peer_violations_total counts every one."""
    sim = await sim_factory(SimulatorConfig())
    metrics = Metrics(CollectorRegistry())
    pool = BindPool(provider_config(tmp_path, sim, binds=1), lambda i: i.acknowledge(),
                    metrics=metrics, log_interval=30.0)
    caplog.set_level(logging.INFO, logger="smppgw.pool")
    pools.start(pool)
    await wait_until(lambda: pool.bound_count == 1)
    (link,) = sim.open_connection_ids()
    for _ in range(50):
        sim.send_malformed(link, "unknown_command_id")
    await wait_until(lambda: metrics.registry.get_sample_value(
        "smppgw_peer_violations_total",
        {"provider": "sim", "status": "ESME_RINVCMDID"}) == 50)
    [first] = pool_records(caplog, "peer violated SMPP; answered")
    assert first.kv["status"] == "ESME_RINVCMDID"  # type: ignore[attr-defined]
    slot = pool.slots[0]
    assert slot.violation_log.summary_at is not None
    slot.violation_log.summarize()  # the end of the period, without waiting 30 s
    [summary] = pool_records(caplog, "peer kept violating SMPP")
    assert summary.kv["violations"] == 49  # type: ignore[attr-defined]
    assert pool.bound_count == 1


async def test_a_withdrawn_ticket_is_never_written(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools
) -> None:
    """A submit withdrawn while it waits for capacity leaves without being written
    (SubmitFailure "withdrawn"): what a pause and a cancel rely on to say "not sent". A ticket
    left alone says when its PDU was written."""
    sim = await sim_factory(SimulatorConfig())
    pool = BindPool(provider_config(tmp_path, sim, binds=1, window=1), lambda i: i.acknowledge())
    pools.start(pool)
    await pool.wait_bound()
    sim.hold_answers()
    first = SubmitTicket()
    on_the_wire = asyncio.create_task(pool.submit(submit_pdu(1), first))
    await sim.wait_submits(1)
    assert first.sent
    second = SubmitTicket()
    waiting = asyncio.create_task(pool.submit(submit_pdu(2), second))
    pool.withdraw(second)   # waiting for the window's one slot, or not even started
    with pytest.raises(SubmitFailure) as caught:
        await waiting
    assert caught.value.kind == "withdrawn" and not second.sent
    # Withdrawing a ticket already written changes nothing: its answer still comes.
    pool.withdraw(first)
    sim.release_answers()
    assert (await on_the_wire).status == CommandStatus.ESME_ROK
    # The window's room went to the next submit, not to the withdrawn one.
    assert (await pool.submit(submit_pdu(3))).status == CommandStatus.ESME_ROK
    assert [r.pdu.short_message for r in sim.submits] == [b"m1", b"m3"]


class CountingTlsServer(asyncio.Protocol):
    """A TLS server that answers nothing and counts the application bytes it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = 0
        self.closed = asyncio.Event()

    def __call__(self) -> CountingTlsServer:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections += 1

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


async def test_a_pin_mismatch_cuts_the_link_before_any_smpp_byte(
    tmp_path: Path, pools: RunningPools, caplog: pytest.LogCaptureFixture,
) -> None:
    """Pin-only mode (tls_verify = false, tls_pin_sha256): the pin is checked after the
    handshake and BEFORE the bind, which carries the password, is written. The server on the
    other side (whoever is in the path) receives not one byte of SMPP."""
    paths = generate_self_signed(tmp_path / "certs")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(paths.cert, paths.key)
    counting = CountingTlsServer()
    server = await asyncio.get_running_loop().create_server(
        counting, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        config = parse_config({
            "gateway": {"state_dir": str(tmp_path / "state")},
            "provider": [{"name": "sim", "system_id": "acme", "password_env": "PW",
                          "hosts": [f"127.0.0.1:{port}"], "routes": ["55"], "binds": 1,
                          "tls": True, "tls_verify": False, "tls_pin_sha256": "00" * 32}],
        }, base_dir=tmp_path, environ={"PW": "secret"})
        caplog.set_level(logging.WARNING, logger="smppgw.pool")
        pool = pools.start(BindPool(config.providers[0], lambda i: i.acknowledge()))
        await wait_until(lambda: bool(pool_records(caplog, "bind attempt failed")))
        async with asyncio.timeout(10):
            await counting.closed.wait()
    finally:
        server.close()
        await server.wait_closed()
    assert counting.connections == 1
    assert counting.received == 0
    (failed,) = pool_records(caplog, "bind attempt failed")
    assert failed.kv["reason"] == "tls"  # type: ignore[attr-defined]
    assert "does not match pin_sha256" in failed.kv["detail"]  # type: ignore[attr-defined]
    assert "does not match pin_sha256" in (pool.slots[0].last_error or "")


async def test_a_ca_file_broken_at_start_then_replaced_then_fixed_binds_without_restart(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ca_file is read at every connect. At start it holds another authority's CA
    (check-config cannot know): every attempt fails verification, said at each attempt.
    Replaced at run time by a file that is no PEM at all: every attempt fails before any
    socket, the status says why. Fixed: the bind comes up by itself, no restart, no reload
    (here with short delays; a reload would end the wait at once: BindPool.retry_now)."""
    quick = {**DEFAULT_POLICIES,
             "local": BackoffPolicy(initial=0.01, cap=0.01, jitter="none"),
             "tls": BackoffPolicy(initial=0.01, cap=0.01, jitter="none")}
    monkeypatch.setattr("smppgw.pool.slot.Backoff", lambda rng: Backoff(rng, quick))
    sim = await sim_factory(SimulatorConfig(tls=True, cert_dir=str(tmp_path / "sim")))
    assert sim.cert_paths is not None
    stranger = generate_self_signed(tmp_path / "stranger")
    ca_file = tmp_path / "provider-ca.pem"
    ca_file.write_bytes(stranger.cert.read_bytes())
    provider = provider_config(tmp_path, sim, binds=1, ca_file=str(ca_file))
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    pool = pools.start(BindPool(provider, lambda i: i.acknowledge()))

    def failures(reason: str) -> list[logging.LogRecord]:
        return [r for r in pool_records(caplog, "bind attempt failed")
                if r.kv["reason"] == reason]  # type: ignore[attr-defined]

    await wait_until(lambda: len(failures("tls")) >= 2)
    assert "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate" in (
        pool.status()[0].last_error or "")
    assert pool.bound_count == 0

    ca_file.write_text("replaced by something that is not a certificate\n")
    await wait_until(lambda: len(failures("local")) >= 2)
    connects = sim.connects_total
    await wait_until(lambda: len(failures("local")) >= 4)
    assert sim.connects_total == connects  # nothing reaches the network meanwhile
    assert f"cannot load ca_file {ca_file}" in (pool.status()[0].last_error or "")

    ca_file.write_bytes(sim.cert_paths.ca.read_bytes())
    await pool.wait_bound()
    assert pool.status()[0].state == "bound"
    assert sim.bound_count() == 1


async def test_retry_now_ends_a_wait_on_a_file_problem_only(
    tmp_path: Path, sim_factory: Callable[..., Any], pools: RunningPools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the real delays (30 s at least after a local failure), a reload's retry_now
    makes a bind waiting out a broken ca_file try the fixed file at once."""
    sim = await sim_factory(SimulatorConfig(tls=True, cert_dir=str(tmp_path / "sim")))
    assert sim.cert_paths is not None
    ca_file = tmp_path / "provider-ca.pem"
    ca_file.write_bytes(sim.cert_paths.ca.read_bytes())
    provider = provider_config(tmp_path, sim, binds=1, ca_file=str(ca_file))
    ca_file.write_text("broken\n")
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    pool = pools.start(BindPool(provider, lambda i: i.acknowledge()))
    await wait_until(lambda: pool.status()[0].state == "backoff")
    ca_file.write_bytes(sim.cert_paths.ca.read_bytes())
    pool.retry_now()
    await pool.wait_bound()
    assert len(pool_records(caplog, "bind attempt failed")) == 1
