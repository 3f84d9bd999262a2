"""One SMSC account, many kinds of bind, against the simulator through a Daemon in this
process: transmitter and receiver binds in one provider table, two tables on one account,
a plain and a TLS host in one table. Every receipt must find its message, whichever bind of
the account it arrives on.

Each test starts its simulators on 127.0.0.1:0 and its daemon on a fresh state dir; waits are
on conditions (binds in the simulator, events from the long-poll), each bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.simulator.receipts import build_receipt, outcome_of_key
from smppgw.smpp.pdu import DeliverSm, SubmitSm
from tests.integration.test_daemon_e2e import (
    PASSWORD,
    WAIT,
    gateways,
    make_config,
    provider_table,
)

__all__ = ["gateways"]   # the fixture, shared with test_daemon_e2e

pytestmark = pytest.mark.timeout(60)


def connections_of(sim: SmscSimulator, kind: str) -> set[int]:
    return {c.id for c in sim.connections.values() if c.bind_kind == kind}


def messages(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{n}", "to": f"551199999{n:04d}", "from": "Acme",
             "text": f"{prefix} message {n}"} for n in range(count)]


async def all_delivered(gw: Any, answers: dict[str, dict[str, Any]]) -> None:
    await gw.wait_states({a["tracking_id"]: "delivered" for a in answers.values()})


async def test_transmitters_send_and_receivers_bring_every_receipt(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """transmitters = 2, receivers = 2 on one account (Kannel-style): every submit goes out on
    a transmitter, every receipt comes on a receiver, and every message ends 'delivered'."""
    sim = await sim_factory(SimulatorConfig(accounts=(Account("acme", PASSWORD),)))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [provider_table(
        "acme", "generic", sim, ["55"], system_id="acme", transmitters=2, receivers=2)]))
    await sim.wait_bound(4, timeout=WAIT)
    transmitters, receivers = connections_of(sim, "transmitter"), connections_of(sim, "receiver")
    assert len(transmitters) == 2 and len(receivers) == 2

    answers = await gw.submit(*messages(12, "txrx"))
    await all_delivered(gw, answers)

    assert {r.connection_id for r in sim.submits if isinstance(r.pdu, SubmitSm)} \
        <= transmitters
    receipts = [r for r in sim.sent if isinstance(r.pdu, DeliverSm)]
    assert len(receipts) == 12 and {r.connection_id for r in receipts} == receivers
    counts = (await gw.get("/v1/status"))["counts"]
    assert counts["unmatched_receipts"] == 0
    binds = (await gw.get("/v1/status"))["binds"]
    assert sorted(b["kind"] for b in binds) == ["receiver"] * 2 + ["transmitter"] * 2


async def test_two_tables_on_one_account_share_their_receipts(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """A table of transmitters that the routes use and a table of receivers on the same
    system_id and server: the receipts come on the second table's binds and match the
    messages the first one sent."""
    sim = await sim_factory(SimulatorConfig(accounts=(Account("acme", PASSWORD),)))
    sender = provider_table("acme-tx", "generic", sim, ["55"], system_id="acme",
                            bind_type="transmitter", binds=2)
    receiver = provider_table("acme-rx", "generic", sim, [], system_id="acme", receivers=2)
    del receiver["routes"]
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [sender, receiver]))
    await sim.wait_bound(4, timeout=WAIT)
    providers = {p["name"]: p for p in (await gw.get("/v1/status"))["providers"]}
    assert providers["acme-tx"]["account"] == providers["acme-rx"]["account"] \
        == f"acme@127.0.0.1:{sim.port}"

    answers = await gw.submit(*messages(8, "tables"))
    await all_delivered(gw, answers)
    receipts = [e for e in gw.events if e["type"] == "receipt"]
    assert len(receipts) == 8
    assert {e["provider"] for e in receipts} == {"acme-rx"}
    assert (await gw.get("/v1/status"))["counts"]["unmatched_receipts"] == 0


async def test_a_plain_host_and_a_tls_host_in_one_table(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """One account on a plain server (inside a VPN) and a TLS one: `tcp://` and `tls://` in
    `hosts`, one bind on each, messages over both and every receipt matched."""
    plain = await sim_factory(SimulatorConfig(
        accounts=(Account("acme", PASSWORD),), receipts=ReceiptPlan(routing="same")))
    secure = await sim_factory(SimulatorConfig(
        tls=True, cert_dir=str(tmp_path / "certs"), accounts=(Account("acme", PASSWORD),),
        receipts=ReceiptPlan(routing="same")))
    assert secure.cert_paths is not None
    table = provider_table("acme", "generic", plain, ["55"], system_id="acme", binds=2,
                           ca_file=str(secure.cert_paths.ca))
    table["hosts"] = [f"tcp://127.0.0.1:{plain.port}", f"tls://127.0.0.1:{secure.port}"]
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [table]))
    await plain.wait_bound(1, timeout=WAIT)
    await secure.wait_bound(1, timeout=WAIT)
    binds = {b["transport"]: b for b in (await gw.get("/v1/status"))["binds"]}
    assert binds["tcp"]["host"] == f"127.0.0.1:{plain.port}"
    assert binds["tls"]["host"] == f"127.0.0.1:{secure.port}"

    answers = await gw.submit(*messages(10, "mixed"))
    await all_delivered(gw, answers)
    assert plain.accepted_total and secure.accepted_total
    assert plain.accepted_total + secure.accepted_total == 10
    assert (await gw.get("/v1/status"))["counts"]["unmatched_receipts"] == 0


async def until(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    """Ask ``check`` on the loop's turns until it holds (bounded)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_receipts_that_stay_unmatched_are_warned_once_counted_and_shown(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Receipts whose id no message of the account has: parked and counted in
    smppgw_receipts_unmatched_pending at once; older than unmatched_receipt_after, ONE
    warning for the provider with their count (not one per receipt), the stale gauge and
    the UNMATCHED RECEIPTS of `smppgw status`."""
    monkeypatch.setattr("smppgw.daemon.HOUSEKEEPING_INTERVAL", 0.05)
    caplog.set_level(logging.WARNING, logger="smppgw.daemon")
    sim = await sim_factory(SimulatorConfig())
    config = make_config(tmp_path, sock_dir / "s.sock", [provider_table(
        "acme", "generic", sim, ["55"], binds=1)])
    config = dataclasses.replace(config, gateway=dataclasses.replace(
        config.gateway, unmatched_receipt_after=1.0))
    gw = await gateways(config)
    await sim.wait_bound(1, timeout=WAIT)
    (connection,) = sim.bound_connections()
    now = datetime.datetime.now(datetime.UTC)
    for n in range(3):
        sim.send_pdu(connection.id, build_receipt(
            SubmitSm(source_addr="Acme", destination_addr="5511999990000", short_message=b"x"),
            f"nobody-sent-{n}", outcome_of_key("DELIVRD", "standard"), "standard",
            submitted_at_wall=now, done_at_wall=now))

    async def parked() -> bool:
        return bool((await gw.get("/v1/status"))["counts"]["unmatched_receipts"] == 3)

    await until(parked)

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith(
            "receipts stay unmatched")]

    async def warned() -> bool:
        return bool(warnings())

    await until(warned)
    (warning,) = warnings()
    kv = warning.kv  # type: ignore[attr-defined]
    assert (kv["provider"], kv["unmatched"], kv["pending"]) == ("acme", 3, 3)
    assert kv["account"] == f"acme-acme@127.0.0.1:{sim.port}"
    exposition = gw.daemon.metrics.exposition().decode()
    assert 'smppgw_receipts_unmatched_pending{provider="acme"} 3.0' in exposition
    assert 'smppgw_receipts_unmatched_stale{provider="acme"} 3.0' in exposition
    (shown,) = (await gw.get("/v1/status"))["unmatched_receipts"]
    assert (shown["provider"], shown["pending"], shown["stale"]) == ("acme", 3, 3)
    assert shown["oldest_age"] >= 1.0
    assert len(warnings()) == 1
