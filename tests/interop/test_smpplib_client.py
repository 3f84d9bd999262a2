"""smpplib, an independent SMPP client, against our simulator: bind, submit, receipt, unbind.

smpplib is synchronous; it runs in a worker thread, bounded by its socket timeout, a bounded
read loop and an outer asyncio timeout. The simulator listens on 127.0.0.1:0 only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import smpplib.client
import smpplib.consts

from smppgw.net.tls import TlsSettings, client_context
from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.pdu import SubmitSm

pytestmark = pytest.mark.timeout(60)

READS = 10  # read_once calls before giving up (each bounded by the socket timeout)


@dataclass
class Session:
    """What smpplib saw."""

    bind_status: int | None = None
    submit_resps: list[Any] = field(default_factory=list)
    delivers: list[Any] = field(default_factory=list)


def run_smpplib(
    port: int,
    *,
    password: str = "secret",
    expected_delivers: int = 1,
    context: ssl.SSLContext | None = None,
) -> Session:
    session = Session()
    client = smpplib.client.Client(
        "127.0.0.1", port, timeout=3, ssl_context=context, allow_unknown_opt_params=True
    )
    client.set_message_sent_handler(lambda pdu, **_: session.submit_resps.append(pdu))
    client.set_message_received_handler(lambda pdu, **_: session.delivers.append(pdu))
    client.connect()
    try:
        try:
            client.bind_transceiver(system_id="acme", password=password)
        except smpplib.exceptions.PDUError as exc:
            session.bind_status = exc.args[1]
            return session
        session.bind_status = 0
        client.send_message(
            source_addr_ton=5,
            source_addr="Acme",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="5511999990001",
            short_message=b"hello from smpplib",
            registered_delivery=1,
        )
        for _ in range(READS):
            if session.submit_resps and len(session.delivers) >= expected_delivers:
                break
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return session


@pytest.fixture
async def simulator(request: pytest.FixtureRequest) -> AsyncIterator[SmscSimulator]:
    config: SimulatorConfig = getattr(request, "param", SimulatorConfig())
    sim = SmscSimulator(config.replace(accounts=(Account("acme", "secret"),)))
    await sim.start()
    yield sim
    await sim.close()


async def in_thread(**kwargs: Any) -> Session:
    async with asyncio.timeout(45):
        return await asyncio.to_thread(run_smpplib, **kwargs)


async def test_smpplib_binds_submits_and_gets_the_receipt(simulator: SmscSimulator) -> None:
    session = await in_thread(port=simulator.port)
    assert session.bind_status == 0
    (resp,) = session.submit_resps
    assert resp.status == smpplib.consts.SMPP_ESME_ROK
    message_id = resp.message_id.decode()
    (receipt,) = session.delivers
    assert receipt.receipted_message_id.decode() == message_id
    assert receipt.message_state == 2  # DELIVERED
    assert b"stat:DELIVRD" in receipt.short_message
    # What smpplib sent decodes with our codec, and smpplib acknowledged the receipt.
    await simulator.wait_acknowledged(1)
    (submit,) = simulator.submits
    assert isinstance(submit.pdu, SubmitSm)
    assert submit.pdu.short_message == b"hello from smpplib"
    assert submit.pdu.registered_delivery == 1
    await simulator.wait_for(lambda: simulator.unbinds_total == 1)


@pytest.mark.parametrize(
    "simulator",
    [SimulatorConfig.wavy(receipts=ReceiptPlan(style="wavy", two_stage=True))],
    indirect=True,
)
async def test_smpplib_reads_wavy_two_stage_receipts(simulator: SmscSimulator) -> None:
    session = await in_thread(port=simulator.port, expected_delivers=2)
    accepted, delivered = session.delivers
    assert b"stat:ACCEPTD" in accepted.short_message
    assert b"stat:DELIVRD" in delivered.short_message
    assert delivered.receipted_message_id == session.submit_resps[0].message_id
    await simulator.wait_acknowledged(2)


async def test_smpplib_wrong_password_is_refused(simulator: SmscSimulator) -> None:
    session = await in_thread(port=simulator.port, password="wrong")
    assert session.bind_status == smpplib.consts.SMPP_ESME_RINVPASWD
    assert simulator.bind_failures_total == 1


@pytest.mark.parametrize("simulator", [SimulatorConfig(tls=True)], indirect=True)
async def test_smpplib_over_tls(simulator: SmscSimulator) -> None:
    assert simulator.cert_paths is not None
    # smpplib wraps the socket without a server name, so only the chain can be checked.
    context = client_context(
        TlsSettings(enabled=True, ca_file=str(simulator.cert_paths.ca), check_hostname=False)
    )
    session = await in_thread(port=simulator.port, context=context)
    assert session.bind_status == 0 and len(session.delivers) == 1
