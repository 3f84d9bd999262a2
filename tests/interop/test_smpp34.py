"""Interoperability with smpp34, an independent Rust-backed SMPP 3.4 implementation.

Our bind pool against smpp34's SMSC server (bind, submit_sm, deliver_sm both ways), the daemon
with separate transmitter and receiver binds against it (the receipt on the receiver matches
the message sent on the transmitter), and smpp34's ESME client against our simulator (bind,
submit_sm, receipt).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest
import smpp34

from smppgw.config import parse_config
from smppgw.pool.pool import BindPool
from smppgw.pool.slot import Inbound
from smppgw.simulator import SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus, Tag
from smppgw.smpp.pdu import SubmitSm, Tlv
from tests.integration.test_daemon_e2e import gateways, make_config

__all__ = ["gateways"]   # the fixture, shared with test_daemon_e2e

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    # smpp34's Server does not report an ephemeral port, so pick one that is free now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def next_of(server: smpp34.Server, kind: type, timeout: float = 10.0) -> object:
    async with asyncio.timeout(timeout):
        while True:
            item = await server.next()
            if isinstance(item, kind):
                return item


async def test_our_pool_against_the_smpp34_server(tmp_path: Path) -> None:
    port = free_port()
    server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
    await server.start()
    config = parse_config(
        {"gateway": {"state_dir": str(tmp_path)},
         "provider": [{"name": "rust", "system_id": "acme", "password_env": "PW",
                       "hosts": [f"127.0.0.1:{port}"], "tls": False, "binds": 1,
                       "routes": ["1"]}]},
        base_dir=tmp_path, environ={"PW": "secret"},
    )
    inbound: asyncio.Queue[Inbound] = asyncio.Queue()
    pool = BindPool(config.providers[0], inbound.put_nowait)
    running = asyncio.create_task(pool.run())
    try:
        esme = await next_of(server, smpp34.Esme)
        assert isinstance(esme, smpp34.Esme) and esme.system_id == "acme"

        # submit_sm: ours → theirs, answered with their message id
        submit_task = asyncio.create_task(pool.submit(SubmitSm(
            source_addr="Acme", source_addr_ton=5, destination_addr="15551234567",
            dest_addr_ton=1, dest_addr_npi=1, registered_delivery=1, data_coding=8,
            short_message="Olá 😀".encode("utf-16-be"),
            tlvs=(Tlv.of(Tag.USER_MESSAGE_REFERENCE, 77),),
        )))
        event = await next_of(server, smpp34.SubmitSmEvent)
        assert isinstance(event, smpp34.SubmitSmEvent)
        assert (event.source_addr, event.source_addr_ton) == ("Acme", 5)
        assert (event.destination_addr, event.dest_addr_ton, event.dest_addr_npi) == (
            "15551234567", 1, 1)
        assert event.data_coding == 8 and event.registered_delivery == 1
        assert event.short_message.decode("utf-16-be") == "Olá 😀"
        assert [(t.tag, t.as_int()) for t in event.tlvs] == [(0x0204, 77)]
        event.accept("rust-1")
        result = await submit_task
        assert (result.status, result.message_id) == (CommandStatus.ESME_ROK, "rust-1")

        # deliver_sm: theirs → ours (a receipt), answered once we acknowledge
        receipt_text = (b"id:rust-1 sub:001 dlvrd:001 submit date:2411231200 "
                        b"done date:2411231201 stat:DELIVRD err:000 text:")
        deliver_task = asyncio.ensure_future(esme.deliver_sm(
            "Acme", receipt_text, source_addr="15551234567", esm_class=0x04,
            tlvs=[smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, b"rust-1\0"),
                  smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02")],
        ))
        async with asyncio.timeout(10):
            item = await inbound.get()
        assert item.pdu.esm_class == 0x04
        assert item.pdu.short_message == receipt_text  # type: ignore[attr-defined]
        assert item.pdu.tlv(Tag.RECEIPTED_MESSAGE_ID).value == "rust-1"  # type: ignore[union-attr]
        assert not deliver_task.done(), "no deliver_sm_resp before the store said so"
        item.acknowledge(CommandStatus.ESME_ROK)
        async with asyncio.timeout(10):
            answer = await deliver_task
        assert answer.is_success
    finally:
        await pool.close(2)
        await running
        await server.stop()


async def test_smpp34_client_against_our_simulator() -> None:
    sim = SmscSimulator(SimulatorConfig(id_format="decimal"))
    await sim.start()
    client = smpp34.Client("127.0.0.1", sim.port, "acme", "pw", bind_type="TRX")
    try:
        async with asyncio.timeout(20):
            smsc = await client.connect()
            resp = await smsc.submit_sm("5511999990000", b"hello", source_addr="Acme",
                                        registered_delivery=1)
            assert resp.is_success and resp.message_id and resp.message_id.isdigit()
            event = await smsc.next()
            assert isinstance(event, smpp34.DeliverSmEvent)
            assert event.esm_class & 0x04
            assert f"id:{resp.message_id}".encode() in event.short_message
            await sim.wait_acknowledged(1)
            await smsc.unbind()
        submit = sim.submits[0].pdu
        assert isinstance(submit, SubmitSm) and submit.short_message == b"hello"
    finally:
        await client.stop()
        await sim.close()


async def test_transmitter_and_receiver_binds_against_the_smpp34_server(
    tmp_path: Path, sock_dir: Path, gateways: Any
) -> None:
    """The daemon with transmitters = 1, receivers = 1 against smpp34's server: two binds of
    their own kind (bind_transmitter, bind_receiver), the submit on the transmitter, the
    receipt on the receiver, and the message 'delivered' through the store: correlated per
    account, not per bind."""
    port = free_port()
    server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
    await server.start()
    try:
        config = make_config(tmp_path, sock_dir / "s.sock", [{
            "name": "rust", "system_id": "acme", "password_env": "SIM_PASSWORD",
            "hosts": [f"127.0.0.1:{port}"], "tls": False, "transmitters": 1, "receivers": 1,
            "routes": ["1"]}])
        gw = await gateways(config)
        first = await next_of(server, smpp34.Esme)
        second = await next_of(server, smpp34.Esme)
        assert isinstance(first, smpp34.Esme) and isinstance(second, smpp34.Esme)
        (receiver,) = [e for e in (first, second) if e.can_receive]
        (transmitter,) = [e for e in (first, second) if not e.can_receive]
        assert receiver.system_id == transmitter.system_id == "acme"

        answers = await gw.submit({"id": "txrx-1", "to": "15551234567", "from": "Acme",
                                   "text": "Hello over two binds"})
        event = await next_of(server, smpp34.SubmitSmEvent)
        assert isinstance(event, smpp34.SubmitSmEvent)
        assert event.session_id == transmitter.session_id
        assert event.short_message == b"Hello over two binds"
        event.accept("rust-7")

        # smpp34's server answers a deliver_sm_resp on a receiver session with generic_nack
        # (its own RX client gets the same: see the next test), so its deliver_sm gets no
        # answer it takes; what matters here is that the receipt reaches its message.
        receipt = asyncio.ensure_future(receiver.deliver_sm(
            "Acme", b"id:rust-7 sub:001 dlvrd:001 submit date:2411231200 done date:2411231201 "
                    b"stat:DELIVRD err:000 text:",
            source_addr="15551234567", esm_class=0x04,
            tlvs=[smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, b"rust-7\0"),
                  smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02")]))
        await gw.wait_states({answers["txrx-1"]["tracking_id"]: "delivered"})
        status = await gw.get("/v1/status")
        assert sorted(b["kind"] for b in status["binds"]) == ["receiver", "transmitter"]
        assert status["counts"]["unmatched_receipts"] == 0
        receipt.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await receipt  # its generic_nack'd answer, read so it is not left unretrieved
    finally:
        await server.stop()


async def test_smpp34_server_refuses_a_deliver_sm_resp_from_its_own_receiver_client() -> None:
    """Why the test above does not wait for smpp34's deliver_sm to be answered: SMPP 3.4
    §2.3 Table 2-1 lets a receiver send deliver_sm_resp, yet smpp34 1.5's server takes it
    from a transceiver session only, whoever the client is. When this fails, smpp34 was
    fixed: the test above can then await the answer."""
    for bind_type, answered in (("TRX", True), ("RX", False)):
        port = free_port()
        server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
        await server.start()
        client = smpp34.Client("127.0.0.1", port, "acme", "pw", bind_type=bind_type)
        try:
            smsc = await client.connect()
            esme = await next_of(server, smpp34.Esme)
            assert isinstance(esme, smpp34.Esme)
            delivered = asyncio.ensure_future(esme.deliver_sm(
                "Acme", b"id:1 stat:DELIVRD err:000", esm_class=0x04))
            async with asyncio.timeout(10):
                assert isinstance(await smsc.next(), smpp34.DeliverSmEvent)
            done, _ = await asyncio.wait({delivered}, timeout=3)
            ok = bool(done) and delivered.exception() is None and delivered.result().is_success
            assert ok is answered, bind_type
            delivered.cancel()
        finally:
            await client.stop()
            await server.stop()
