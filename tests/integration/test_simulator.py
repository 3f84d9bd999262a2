"""The SMSC simulator over real loopback sockets, driven by a raw client on smppgw's codec.

Every wait is on an event (a PDU read, a simulator condition) bounded by a timeout; nothing
sleeps for a condition. Servers listen on 127.0.0.1:0 (or ::1) and the fixtures stop them.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from smppgw.net.certs import certificate_sha256
from smppgw.net.tls import TlsSettings, check_pin, client_context
from smppgw.simulator import (
    Account,
    Faults,
    ReceiptPlan,
    SimulatorConfig,
    SmscSimulator,
)
from smppgw.smpp.codec import FrameDecoder, encode
from smppgw.smpp.constants import CommandStatus, MessageState, Tag, VendorTag
from smppgw.smpp.errors import FrameError, PduDecodeError
from smppgw.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
)

pytestmark = pytest.mark.timeout(30)

S = CommandStatus
STEP = 5.0  # seconds any single wait may take before the test fails


class Closed(Exception):
    """The simulator closed the connection."""


class RawClient:
    """An ESME reduced to a socket and the codec: exactly what we send, exactly what we get."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.inbox: list[Pdu] = []
        self.octets = bytearray()  # everything received, for byte-exact comparisons
        self.sequence = 0

    @classmethod
    async def connect(
        cls,
        sim: SmscSimulator,
        *,
        context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> RawClient:
        async with asyncio.timeout(STEP):
            reader, writer = await asyncio.open_connection(
                sim.host, sim.port, ssl=context, server_hostname=server_hostname
            )
        return cls(reader, writer)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def send(self, pdu: Pdu) -> bytes:
        raw = encode(pdu)
        self.writer.write(raw)
        return raw

    async def _fill(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            raise Closed
        self.octets += data
        self.decoder.feed(data)

    async def next_pdu(self, timeout: float = STEP) -> Pdu:
        """The next PDU from the simulator (decode errors propagate)."""
        if self.inbox:
            return self.inbox.pop(0)
        async with asyncio.timeout(timeout):
            while (pdu := self.decoder.next_pdu()) is None:
                await self._fill()
        return pdu

    async def response(self, sequence_number: int, timeout: float = STEP) -> Pdu:
        """The response with ``sequence_number``; other PDUs wait in the inbox."""
        for index, pdu in enumerate(self.inbox):
            if pdu.is_response and pdu.sequence_number == sequence_number:
                return self.inbox.pop(index)
        async with asyncio.timeout(timeout):
            while True:
                while (pdu := self.decoder.next_pdu()) is None:
                    await self._fill()
                if pdu.is_response and pdu.sequence_number == sequence_number:
                    return pdu
                self.inbox.append(pdu)

    async def request(self, pdu: Pdu) -> Pdu:
        self.send(pdu)
        return await self.response(pdu.sequence_number)

    async def bind(
        self,
        kind: type[BindTransceiver | BindTransmitter | BindReceiver] = BindTransceiver,
        system_id: str = "acme",
        password: str = "secret",
    ) -> Pdu:
        seq = self.next_sequence()
        return await self.request(kind(sequence_number=seq, system_id=system_id, password=password))

    async def submit(self, text: bytes = b"hello", registered_delivery: int = 0) -> Pdu:
        return await self.request(self.submit_pdu(text, registered_delivery))

    def submit_pdu(self, text: bytes = b"hello", registered_delivery: int = 0) -> SubmitSm:
        return SubmitSm(
            sequence_number=self.next_sequence(),
            source_addr="Acme",
            source_addr_ton=5,
            destination_addr="5511999990001",
            dest_addr_ton=1,
            registered_delivery=registered_delivery,
            short_message=text,
        )

    async def deliver(self) -> DeliverSm:
        """The next deliver_sm, acknowledged with ESME_ROK."""
        pdu = await self.next_pdu()
        assert isinstance(pdu, DeliverSm), pdu
        self.send(DeliverSmResp(sequence_number=pdu.sequence_number))
        return pdu

    async def expect_closed(self, timeout: float = STEP) -> None:
        async with asyncio.timeout(timeout):
            while await self.reader.read(65536):
                pass

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(STEP):
                await self.writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


Factory = Callable[..., Awaitable[SmscSimulator]]


@pytest.fixture
async def make_sim() -> AsyncIterator[Factory]:
    started: list[SmscSimulator] = []

    async def make(config: SimulatorConfig | None = None, **fields: object) -> SmscSimulator:
        sim = SmscSimulator(config or SimulatorConfig(**fields))  # type: ignore[arg-type]
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.close()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[RawClient]]]:
    clients: list[RawClient] = []

    async def open_client(sim: SmscSimulator, **kwargs: object) -> RawClient:
        client = await RawClient.connect(sim, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


# --- binds -----------------------------------------------------------------------------------


async def test_any_bind_is_accepted_without_accounts(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    assert sim.host == "127.0.0.1" and sim.port > 0
    client = await connect(sim)
    resp = await client.bind(system_id="whoever", password="x")
    assert resp.command_status == S.ESME_ROK
    assert resp.system_id == "smppgw-sim"  # type: ignore[attr-defined]
    sc_version = resp.tlv(Tag.SC_INTERFACE_VERSION)
    assert sc_version is not None and sc_version.raw == b"\x34"
    await sim.wait_bound(1)
    (connection,) = sim.bound_connections()
    assert (connection.bind_kind, connection.system_id) == ("transceiver", "whoever")
    assert sim.binds_total == 1 and sim.connects_total == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("acme", "wrong", S.ESME_RINVPASWD), ("nobody", "secret", S.ESME_RINVSYSID)],
)
async def test_wrong_credentials_are_refused_and_the_link_stays_usable(
    make_sim: Factory, connect, system_id: str, password: str, status: CommandStatus
) -> None:
    sim = await make_sim(accounts=(Account("acme", "secret"),))
    client = await connect(sim)
    resp = await client.bind(system_id=system_id, password=password)
    assert resp.command_status == status
    assert sim.bind_failures_total == 1 and sim.bound_count() == 0
    assert (await client.bind()).command_status == S.ESME_ROK


async def test_bind_rules(make_sim: Factory, connect) -> None:
    sim = await make_sim(
        accounts=(Account("acme", "secret", max_binds=1),),
        bind_kinds=frozenset({"transceiver", "transmitter"}),
    )
    first = await connect(sim)
    early = await first.submit()
    assert early.command_status == S.ESME_RINVBNDSTS  # not bound yet
    assert (await first.bind()).command_status == S.ESME_ROK
    assert (await first.bind()).command_status == S.ESME_RALYBND
    second = await connect(sim)
    assert (await second.bind()).command_status == S.ESME_RBINDFAIL  # max_binds 1
    third = await connect(sim)
    refused = await third.bind(BindReceiver)
    assert refused.command_status == S.ESME_RBINDFAIL  # receivers not offered


async def test_bind_status_fault_refuses_valid_binds(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(bind_status=S.ESME_RTHROTTLED))
    client = await connect(sim)
    assert (await client.bind()).command_status == S.ESME_RTHROTTLED


async def test_receiver_cannot_submit_transmitter_can(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    receiver = await connect(sim)
    await receiver.bind(BindReceiver)
    assert (await receiver.submit()).command_status == S.ESME_RINVBNDSTS
    transmitter = await connect(sim)
    await transmitter.bind(BindTransmitter)
    assert (await transmitter.submit()).command_status == S.ESME_ROK


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("id_format", ["uuid", "hex", "decimal"])
async def test_message_id_styles(make_sim: Factory, connect, id_format: str) -> None:
    sim = await make_sim(id_format=id_format)
    client = await connect(sim)
    await client.bind()
    ids = []
    for _ in range(5):
        resp = await client.submit()
        assert isinstance(resp, SubmitSmResp) and resp.command_status == S.ESME_ROK
        ids.append(resp.message_id)
    assert len(set(ids)) == 5
    for message_id in ids:
        if id_format == "uuid":
            assert str(uuid.UUID(message_id)) == message_id  # Wavy: lower-case with dashes
        elif id_format == "hex":
            int(message_id, 16)
        else:
            assert message_id.isdigit()


async def test_seed_makes_ids_repeatable(make_sim: Factory, connect) -> None:
    ids = []
    for _ in range(2):
        sim = await make_sim(id_format="uuid", seed=99)
        client = await connect(sim)
        await client.bind()
        resp = await client.submit()
        ids.append(resp.message_id)  # type: ignore[attr-defined]
    assert ids[0] == ids[1]


async def test_data_sm_enquire_link_query_and_unbind(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    data = DataSm(
        sequence_number=client.next_sequence(),
        source_addr="Acme",
        destination_addr="91999",
        tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"payload"),),
    )
    resp = await client.request(data)
    assert isinstance(resp, DataSmResp) and resp.message_id
    link = await client.request(EnquireLink(sequence_number=client.next_sequence()))
    assert isinstance(link, EnquireLinkResp)
    query = await client.request(
        QuerySm(sequence_number=client.next_sequence(), message_id=resp.message_id)
    )
    assert isinstance(query, QuerySmResp) and query.message_state == MessageState.ENROUTE
    unknown = await client.request(
        QuerySm(sequence_number=client.next_sequence(), message_id="nope")
    )
    assert unknown.command_status == S.ESME_RQUERYFAIL
    (connection_id,) = sim.open_connection_ids()
    bye = await client.request(Unbind(sequence_number=client.next_sequence()))
    assert isinstance(bye, UnbindResp)
    await client.expect_closed()
    await sim.wait_for(lambda: not sim.connection(connection_id).is_open)
    assert sim.connection(connection_id).close_reason == "unbind"
    assert sim.unbinds_total == 1


async def test_undecodable_pdus_get_generic_nack(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    unknown = b"\x00\x00\x00\x10\x00\x00\x05\x55\x00\x00\x00\x00\x00\x00\x00\x07"
    client.writer.write(unknown)
    nack = await client.response(7)
    assert isinstance(nack, GenericNack) and nack.command_status == S.ESME_RINVCMDID
    truncated = b"\x00\x00\x00\x13\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x08\x00\x01\x01"
    client.writer.write(truncated)
    nack = await client.response(8)
    assert isinstance(nack, GenericNack) and nack.command_status == S.ESME_RINVCMDLEN
    assert (await client.submit()).command_status == S.ESME_ROK  # the bind survived
    assert sim.received[-2].pdu is None and sim.received[-2].raw == truncated


async def test_broken_framing_is_nacked_then_closed(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    client.writer.write(b"\x00\x00\x00\x08\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x09")
    nack = await client.next_pdu()
    assert isinstance(nack, GenericNack) and nack.command_status == S.ESME_RINVCMDLEN
    await client.expect_closed()


# --- recording -------------------------------------------------------------------------------


async def test_records_are_byte_exact_both_ways(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    sent = [client.send(BindTransceiver(sequence_number=1, system_id="a", password="b"))]
    sent.append(client.send(client.submit_pdu(b"\x00\x01binary\xff")))
    sent.append(client.send(EnquireLink(sequence_number=99)))
    await client.response(99)
    (cid,) = sim.open_connection_ids()
    assert [r.raw for r in sim.received] == sent
    assert all(r.connection_id == cid for r in sim.received)
    assert [type(r.pdu).__name__ for r in sim.received] == [
        "BindTransceiver",
        "SubmitSm",
        "EnquireLink",
    ]
    assert b"".join(r.raw for r in sim.sent) == bytes(client.octets)
    assert sim.submits == [sim.received[1]]
    times = [r.at for r in sim.received]
    assert times == sorted(times)
    assert sim.pdus_by_connection() == {cid: 3}


async def test_connection_ids_tell_survivors_from_the_dropped(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    a, b = await connect(sim), await connect(sim)
    await a.bind()
    await b.bind()
    await sim.wait_bound(2)
    first, second = sim.open_connection_ids()
    assert first != second
    sim.drop(first)
    await a.expect_closed()
    await sim.wait_for(lambda: sim.open_connection_ids() == [second])
    assert (await b.submit()).command_status == S.ESME_ROK
    assert sim.connection(first).close_reason == "dropped on request"
    assert sim.disconnects_total == 1


async def test_wait_for_times_out_with_the_state_in_the_message(make_sim: Factory) -> None:
    sim = await make_sim()
    with pytest.raises(TimeoutError, match="bound=0"):
        await sim.wait_for(lambda: sim.bound_count() > 0, timeout=0.05)


async def test_close_cuts_every_connection(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    await sim.close()
    await client.expect_closed()
    with pytest.raises(OSError):
        await RawClient.connect(sim)


async def test_listens_on_ipv6_loopback(make_sim: Factory, connect) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sim = await make_sim(host="::1")
    except OSError as exc:
        pytest.skip(f"::1 unavailable: {exc}")
    assert sim.address == f"[::1]:{sim.port}"
    client = await connect(sim)
    assert (await client.bind()).command_status == S.ESME_ROK


# --- receipts --------------------------------------------------------------------------------


async def test_receipt_goes_to_another_bind_after_the_delay(make_sim: Factory, connect) -> None:
    delay = 0.2
    sim = await make_sim(receipts=ReceiptPlan(delay=delay, routing="other"))
    submitter, other = await connect(sim), await connect(sim)
    await submitter.bind()
    await other.bind()
    await sim.wait_bound(2)
    resp = await submitter.submit(b"hello receipts", registered_delivery=1)
    message_id = resp.message_id  # type: ignore[attr-defined]
    receipt = await other.deliver()
    assert receipt.esm_class == 0x04
    assert receipt.tlv(Tag.RECEIPTED_MESSAGE_ID).raw == message_id.encode() + b"\0"  # type: ignore[union-attr]
    assert receipt.tlv(Tag.MESSAGE_STATE).raw == bytes((MessageState.DELIVERED,))  # type: ignore[union-attr]
    text = receipt.short_message.decode()
    assert text.startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
    assert "stat:DELIVRD err:000 text:hello receipts" in text
    assert (receipt.source_addr, receipt.destination_addr) == ("5511999990001", "Acme")
    await sim.wait_acknowledged(1)
    (delivery,) = sim.receipts
    assert delivery.acknowledged and delivery.connection_id != delivery.origin_connection_id
    resp_at = next(r.at for r in sim.sent if isinstance(r.pdu, SubmitSmResp))
    receipt_at = next(r.at for r in sim.sent if isinstance(r.pdu, DeliverSm))
    assert receipt_at - resp_at >= delay * 0.9  # loop timers may fire a hair early
    assert submitter.inbox == [] and submitter.decoder.buffered == 0


async def test_no_receipt_without_registered_delivery(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    await client.submit(registered_delivery=0)
    await client.submit(registered_delivery=1)
    await sim.wait_acknowledged(0)
    await client.deliver()
    await sim.wait_acknowledged(1)
    assert len(sim.receipts) == 1


async def test_receipts_wait_for_a_receiver(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    transmitter = await connect(sim)
    await transmitter.bind(BindTransmitter)
    await transmitter.submit(registered_delivery=1)
    await sim.wait_for(lambda: sim.queued == 1)
    receiver = await connect(sim)
    await receiver.bind(BindReceiver)
    receipt = await receiver.deliver()
    assert receipt.esm_class == 0x04
    await sim.wait_acknowledged(1)
    assert sim.queued == 0


async def test_round_robin_spreads_receipts(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    clients = [await connect(sim) for _ in range(2)]
    for client in clients:
        await client.bind()
    await sim.wait_bound(2)
    for _ in range(4):
        await clients[0].submit(registered_delivery=1)
    await sim.wait_for(lambda: sim.delivered_total == 4)
    targets = {d.connection_id for d in sim.receipts}
    assert len(targets) == 2


async def test_same_routing_keeps_receipts_on_the_submitting_bind(
    make_sim: Factory, connect
) -> None:
    sim = await make_sim(receipts=ReceiptPlan(routing="same"))
    a, b = await connect(sim), await connect(sim)
    await a.bind()
    await b.bind()
    await sim.wait_bound(2)
    for _ in range(3):
        await b.submit(registered_delivery=1)
    for _ in range(3):
        await b.deliver()
    await sim.wait_acknowledged(3)
    assert {d.connection_id for d in sim.receipts} == {d.origin_connection_id for d in sim.receipts}


async def test_unanswered_receipt_is_redelivered_on_another_link(
    make_sim: Factory, connect
) -> None:
    sim = await make_sim()
    first = await connect(sim)
    await first.bind()
    await first.submit(registered_delivery=1)
    lost = await first.next_pdu()  # received, never acknowledged
    assert isinstance(lost, DeliverSm)
    await first.close()
    await sim.wait_for(lambda: sim.queued == 1)
    second = await connect(sim)
    await second.bind()
    again = await second.deliver()
    assert again.short_message == lost.short_message
    await sim.wait_acknowledged(1)
    assert sim.receipts[0].attempts == 2


async def test_receipt_answered_with_error_is_redelivered(make_sim: Factory, connect) -> None:
    sim = await make_sim(receipts=ReceiptPlan(retry_delay=0.05))
    client = await connect(sim)
    await client.bind()
    await client.submit(registered_delivery=1)
    first = await client.next_pdu()
    client.send(
        DeliverSmResp(sequence_number=first.sequence_number, command_status=S.ESME_RX_T_APPN)
    )
    second = await client.deliver()
    assert second.short_message == first.short_message  # type: ignore[attr-defined]
    assert second.sequence_number != first.sequence_number
    await sim.wait_acknowledged(1)
    assert sim.receipts[0].attempts == 2 and sim.receipts[0].status == S.ESME_ROK


async def test_wavy_two_stage_receipts(make_sim: Factory, connect) -> None:
    sim = await make_sim(SimulatorConfig.wavy(receipts=ReceiptPlan(style="wavy", two_stage=True)))
    client = await connect(sim)
    bound = await client.bind()
    assert bound.system_id == "MovileSMSC"  # type: ignore[attr-defined]
    resp = await client.submit(registered_delivery=1)
    uuid.UUID(resp.message_id)  # type: ignore[attr-defined]
    accepted, delivered = await client.deliver(), await client.deliver()
    assert b"stat:ACCEPTD err:000" in accepted.short_message
    assert accepted.tlv(Tag.MESSAGE_STATE).raw == bytes((MessageState.ACCEPTED,))  # type: ignore[union-attr]
    assert accepted.tlv(VendorTag.WAVY_SENT_STATUS_CODE).raw == (2).to_bytes(4, "big")  # type: ignore[union-attr]
    assert accepted.tlv(VendorTag.WAVY_SENT_STATUS).raw == b"SENT_SUCCESS\0"  # type: ignore[union-attr]
    assert accepted.tlv(VendorTag.WAVY_DELIVERED_STATUS_CODE) is None
    assert b"stat:DELIVRD err:000" in delivered.short_message
    assert [t.tag for t in delivered.tlvs] == [
        Tag.RECEIPTED_MESSAGE_ID,
        Tag.MESSAGE_STATE,
        0x1403,
        0x1404,
        0x1405,
        0x1406,
    ]
    assert delivered.tlv(0x1405).raw == (4).to_bytes(4, "big")  # type: ignore[union-attr]
    assert delivered.tlv(0x1406).raw == b"DELIVERED_SUCCESS\0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("outcome", "stat_err", "tlvs"),
    [
        ("UNDELIV", b"stat:UNDELIV err:104", {0x1403: 2, 0x1405: 104, 0x1406: b"NOT_DELIVERED\0"}),
        (
            "REJECTD:202",
            b"stat:REJECTD err:202",
            {0x1403: 202, 0x1404: b"INVALID_DESTINATION_NUMBER\0"},
        ),
        ("EXPIRED", b"stat:EXPIRED err:101", {0x1403: 101, 0x1404: b"EXPIRED\0"}),
    ],
)
async def test_wavy_failure_rows(
    make_sim: Factory, connect, outcome: str, stat_err: bytes, tlvs: dict[int, object]
) -> None:
    plan = ReceiptPlan(style="wavy", outcomes={outcome: 1})
    sim = await make_sim(SimulatorConfig.wavy(receipts=plan))
    client = await connect(sim)
    await client.bind()
    await client.submit(registered_delivery=1)
    receipt = await client.deliver()
    assert stat_err in receipt.short_message
    for tag, value in tlvs.items():
        raw = receipt.tlv(tag).raw  # type: ignore[union-attr]
        assert raw == (value.to_bytes(4, "big") if isinstance(value, int) else value)


async def test_qikberry_receipts_carry_err_codes_and_relay(make_sim: Factory, connect) -> None:
    plan = ReceiptPlan(style="qikberry", outcomes={"MOB-OFF:013": 1}, routing="other")
    sim = await make_sim(SimulatorConfig.qikberry(receipts=plan))
    a, b = await connect(sim), await connect(sim)
    await a.bind()
    await b.bind()
    await sim.wait_bound(2)
    resp = await a.submit(registered_delivery=1)
    int(resp.message_id, 16)  # type: ignore[attr-defined]
    receipt = await b.deliver()
    assert b"stat:MOB-OFF err:013" in receipt.short_message
    assert receipt.tlv(Tag.MESSAGE_STATE) is None  # read from stat/err, as Qikberry sends it


async def test_outcome_mix_follows_the_weights(make_sim: Factory, connect) -> None:
    plan = ReceiptPlan(outcomes={"DELIVRD": 0.5, "UNDELIV": 0.5})
    sim = await make_sim(receipts=plan, seed=5)
    client = await connect(sim)
    await client.bind()
    for _ in range(40):
        client.send(client.submit_pdu(registered_delivery=1))
    # Created, not sent: unacknowledged, only deliver_window (10) of them go out.
    await sim.wait_for(lambda: len(sim.receipts) == 40)
    assert sim.delivered_total == 10 and sim.queued == 30
    stats = [d.stat for d in sim.receipts]
    assert 5 < stats.count("DELIVRD") < 35 and stats.count("DELIVRD") + stats.count("UNDELIV") == 40


# --- MO --------------------------------------------------------------------------------------


async def test_concatenated_mo_out_of_order(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    text = "".join(f"part{n:03d} " for n in range(40))  # 320 GSM characters: 3 parts
    sim.inject_mo("5511999990001", "acme", text, concatenated=True, parts_order=(3, 1, 2))
    client = await connect(sim)  # MO waits for a receiver
    await client.bind()
    parts = [await client.deliver() for _ in range(3)]
    headers = [p.short_message[:6] for p in parts]
    reference = headers[0][3]
    assert headers == [bytes((5, 0, 3, reference, 3, n)) for n in (3, 1, 2)]
    assert all(p.esm_class == 0x40 for p in parts)
    ordered = sorted(parts, key=lambda p: p.short_message[5])
    assert b"".join(p.short_message[6:] for p in ordered).decode("latin-1") == text
    await sim.wait_acknowledged(3)
    assert [d.kind for d in sim.mo] == ["mo"] * 3


async def test_ucs2_mo_never_splits_a_surrogate_pair(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    text = "😀" * 40  # 80 UTF-16 units
    queued = sim.inject_mo("5511", "acme", text, data_coding=8, concatenated=True, part_octets=10)
    assert len(queued) == 20  # 10 octets round down to 8: two emoji per part
    client = await connect(sim)
    await client.bind()
    parts = [await client.deliver() for _ in range(len(queued))]
    bodies = [p.short_message[6:] for p in parts]
    assert all(len(body) % 4 == 0 for body in bodies)
    assert b"".join(bodies).decode("utf-16-be") == text


async def test_long_single_mo_uses_message_payload(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    sim.inject_mo("5511", "acme", "x" * 300, data_coding=3)
    mo = await client.deliver()
    assert mo.short_message == b"" and mo.data_coding == 3
    assert mo.tlv(Tag.MESSAGE_PAYLOAD).raw == b"x" * 300  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        sim.inject_mo("1", "2", "abc", concatenated=True, part_octets=2, parts_order=(1, 1))


async def test_mo_goes_to_the_named_system_id(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    other, target = await connect(sim), await connect(sim)
    await other.bind(system_id="other")
    await target.bind(system_id="target")
    await sim.wait_bound(2)
    sim.inject_mo("5511", "acme", "for target", system_id="target")
    mo = await target.deliver()
    assert mo.short_message == b"for target"
    assert other.inbox == []


# --- faults ----------------------------------------------------------------------------------


async def test_query_sm_answers_from_the_message_state_without_recording(
    make_sim: Factory, connect
) -> None:
    # `smppgw simulate` runs with record off: query_sm must still know each message.
    sim = await make_sim(record=False, receipts=ReceiptPlan(outcomes={"UNDELIV": 1}))
    client = await connect(sim)
    await client.bind()
    quiet = await client.submit()
    query = await client.request(
        QuerySm(sequence_number=client.next_sequence(), message_id=quiet.message_id)  # type: ignore[attr-defined]
    )
    assert isinstance(query, QuerySmResp) and query.command_status == S.ESME_ROK
    assert query.message_id == quiet.message_id and query.message_state == MessageState.ENROUTE
    receipted = await client.submit(registered_delivery=1)
    await client.deliver()
    query = await client.request(
        QuerySm(sequence_number=client.next_sequence(), message_id=receipted.message_id)  # type: ignore[attr-defined]
    )
    assert query.message_state == MessageState.UNDELIVERABLE  # type: ignore[attr-defined]
    assert sim.received == [] and sim.deliveries == []


async def test_message_states_are_bounded_without_recording(make_sim: Factory, connect) -> None:
    sim = await make_sim(record=False, message_states_kept=3)
    client = await connect(sim)
    await client.bind()
    ids = [(await client.submit()).message_id for _ in range(5)]  # type: ignore[attr-defined]
    assert list(sim.messages) == ids[2:]
    query = QuerySm(sequence_number=client.next_sequence(), message_id=ids[0])
    oldest = await client.request(query)
    assert oldest.command_status == S.ESME_RQUERYFAIL


async def test_throttles_above_the_rate(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(throttle_above=5))
    client = await connect(sim)
    await client.bind()
    pdus = [client.submit_pdu() for _ in range(20)]
    for pdu in pdus:
        client.send(pdu)
    statuses = [(await client.response(p.sequence_number)).command_status for p in pdus]
    ok = statuses.count(S.ESME_ROK)
    assert 5 <= ok <= 7  # a one-second burst of 5, plus what refilled meanwhile
    assert statuses.count(S.ESME_RTHROTTLED) == 20 - ok == sim.throttled_total
    assert statuses[:5] == [S.ESME_ROK] * 5


async def test_window_overflow_is_answered_queue_full_at_once(make_sim: Factory, connect) -> None:
    # Beyond its window an SMSC says its queue for us is full (ESME_RMSGQFUL, SMPP 3.4
    # §5.1.3), not that we send too fast: the ESME shrinks its window, not its rate.
    sim = await make_sim(faults=Faults(latency=0.5, window=2))
    client = await connect(sim)
    await client.bind()
    pdus = [client.submit_pdu() for _ in range(5)]
    for pdu in pdus:
        client.send(pdu)
    first = await client.next_pdu()  # the refusals come before the slow answers
    assert first.command_status == S.ESME_RMSGQFUL
    statuses = {first.sequence_number: first.command_status}
    for _ in range(4):
        pdu = await client.next_pdu()
        statuses[pdu.sequence_number] = pdu.command_status
    assert [statuses[p.sequence_number] for p in pdus] == [S.ESME_ROK] * 2 + [S.ESME_RMSGQFUL] * 3
    assert sim.queue_full_total == 3 and sim.throttled_total == 0


async def test_held_answers_go_out_in_order_when_released(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    sim.hold_answers()
    pdus = [client.submit_pdu(f"held {i}".encode()) for i in range(3)]
    for pdu in pdus:
        client.send(pdu)
    await sim.wait_submits(3)
    assert (await client.request(EnquireLink(sequence_number=client.next_sequence()))
            ).command_status == S.ESME_ROK  # the link itself is answered meanwhile
    assert client.inbox == [] and sim.release_answers() == 3
    answers = [await client.next_pdu() for _ in pdus]
    assert [a.sequence_number for a in answers] == [p.sequence_number for p in pdus]
    assert (await client.submit()).command_status == S.ESME_ROK  # no longer held


async def test_queue_full_injection(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(queue_full_every=3))
    client = await connect(sim)
    await client.bind()
    statuses = [(await client.submit()).command_status for _ in range(6)]
    assert statuses == [S.ESME_ROK, S.ESME_ROK, S.ESME_RMSGQFUL] * 2
    sim.set_faults(Faults())
    sim.answer_next_submits(S.ESME_RMSGQFUL, count=2)
    statuses = [(await client.submit()).command_status for _ in range(3)]
    assert statuses == [S.ESME_RMSGQFUL, S.ESME_RMSGQFUL, S.ESME_ROK]
    assert sim.queue_full_total == 4


async def test_drop_after_n_pdus(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(drop_after=3))
    client = await connect(sim)
    await client.bind()  # PDU 1
    assert (await client.submit()).command_status == S.ESME_ROK  # PDU 2
    client.send(client.submit_pdu())  # PDU 3: recorded, never answered
    await client.expect_closed()
    assert client.inbox == [] and client.decoder.buffered == 0
    (connection,) = sim.connections.values()
    await sim.wait_for(lambda: not connection.is_open)
    assert connection.received_count == 3 and connection.close_reason == "drop_after 3"
    assert len(sim.submits) == 2


async def test_silent_mode_keeps_tcp_open_and_answers_nothing(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    sim.set_faults(Faults(silent=True))
    client.send(EnquireLink(sequence_number=50))
    client.send(client.submit_pdu(registered_delivery=1))
    await sim.wait_for(lambda: sim.received_total == 3)
    (connection_id,) = sim.open_connection_ids()
    sim.set_faults(Faults())
    # The first answer the client sees is for the probe sent after the silence ended: the
    # two requests sent during it were swallowed.
    pong = await client.request(EnquireLink(sequence_number=51))
    assert pong.sequence_number == 51 and client.inbox == []
    assert sim.open_connection_ids() == [connection_id]
    assert sim.sent_total == 2  # bind_resp and this enquire_link_resp


async def test_silent_after_n_pdus(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(silent_after=3))
    client = await connect(sim)
    await client.bind()
    assert (await client.submit()).command_status == S.ESME_ROK
    client.send(EnquireLink(sequence_number=77))
    await sim.wait_for(lambda: sim.received_total == 3)
    assert sim.sent_total == 2 and sim.open_connection_ids()


async def test_idle_links_are_closed(make_sim: Factory, connect) -> None:
    sim = await make_sim(faults=Faults(idle_timeout=0.2))
    client = await connect(sim)
    await client.bind()
    await client.expect_closed()
    (connection,) = sim.connections.values()
    await sim.wait_for(lambda: not connection.is_open)
    assert connection.close_reason == "idle_timeout 0.2"


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("bad_command_length", FrameError, S.ESME_RINVCMDLEN),
        ("unknown_command_id", PduDecodeError, S.ESME_RINVCMDID),
        ("truncated_body", PduDecodeError, S.ESME_RINVCMDLEN),
        ("bad_tlv", PduDecodeError, S.ESME_RINVOPTPARSTREAM),
    ],
)
async def test_malformed_pdus_on_demand(
    make_sim: Factory, connect, kind: str, error: type[Exception], status: CommandStatus
) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    (connection_id,) = sim.open_connection_ids()
    raw = sim.send_malformed(connection_id, kind)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        await client.next_pdu()
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert bytes(client.octets).endswith(raw)
    assert sim.sent[-1].pdu is None and sim.sent[-1].raw == raw
    if kind != "bad_command_length":
        # A well-behaved ESME answers generic_nack; the simulator takes it in its stride.
        client.send(
            GenericNack(sequence_number=caught.value.sequence_number, command_status=status)
        )  # type: ignore[attr-defined]
        assert (await client.submit()).command_status == S.ESME_ROK


async def test_enquire_link_and_unbind_from_the_smsc(make_sim: Factory, connect) -> None:
    sim = await make_sim()
    client = await connect(sim)
    await client.bind()
    (connection_id,) = sim.open_connection_ids()
    seq = sim.send_enquire_link(connection_id)
    probe = await client.next_pdu()
    assert isinstance(probe, EnquireLink) and probe.sequence_number == seq
    client.send(EnquireLinkResp(sequence_number=seq))
    await sim.wait_for(lambda: isinstance(sim.received[-1].pdu, EnquireLinkResp))
    sim.send_unbind(connection_id)
    assert isinstance(await client.next_pdu(), Unbind)


# --- TLS -------------------------------------------------------------------------------------


async def test_tls_with_generated_ca_and_hostname_check(make_sim: Factory, connect) -> None:
    sim = await make_sim(tls=True)
    assert sim.cert_paths is not None and sim.cert_paths.ca.exists()
    context = client_context(TlsSettings(enabled=True, ca_file=str(sim.cert_paths.ca)))
    client = await connect(sim, context=context, server_hostname="localhost")
    ssl_object = client.writer.get_extra_info("ssl_object")
    check_pin(ssl_object, certificate_sha256(sim.cert_paths.cert))
    assert (await client.bind()).command_status == S.ESME_ROK
    assert (await client.submit(registered_delivery=1)).command_status == S.ESME_ROK
    await client.deliver()
    await sim.wait_acknowledged(1)


async def test_tls_hostname_mismatch_fails(make_sim: Factory) -> None:
    sim = await make_sim(tls=True)
    assert sim.cert_paths is not None
    context = client_context(TlsSettings(enabled=True, ca_file=str(sim.cert_paths.ca)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await RawClient.connect(sim, context=context, server_hostname="smpp.example.net")


async def test_tls_with_given_certificate_and_cert_dir_removed_only_when_temporary(
    make_sim: Factory, connect, tmp_path: Path
) -> None:
    sim = await make_sim(tls=True, cert_dir=str(tmp_path))
    assert sim.cert_paths is not None and sim.cert_paths.cert.parent == tmp_path
    given = await make_sim(
        tls=True, cert_file=str(sim.cert_paths.cert), key_file=str(sim.cert_paths.key)
    )
    context = client_context(TlsSettings(enabled=True, ca_file=str(sim.cert_paths.ca)))
    client = await connect(given, context=context, server_hostname="127.0.0.1")
    assert (await client.bind()).command_status == S.ESME_ROK
    await sim.close()
    assert sim.cert_paths.cert.exists()  # the caller's directory is the caller's


async def test_generated_certificates_are_removed_at_close(make_sim: Factory) -> None:
    sim = await make_sim(tls=True)
    assert sim.cert_paths is not None
    directory = sim.cert_paths.cert.parent
    await sim.close()
    assert not directory.exists()


# --- throughput sanity (speed itself is measured in benchmarks/) -----------------------------


async def test_pipelined_burst_without_recording(make_sim: Factory, connect) -> None:
    sim = await make_sim(record=False)
    client = await connect(sim)
    await client.bind()
    count = 2000
    client.writer.write(b"".join(encode(client.submit_pdu()) for _ in range(count)))
    await sim.wait_submits(count, timeout=STEP)
    last = await client.response(client.sequence)
    assert last.command_status == S.ESME_ROK
    assert sim.received == [] and sim.sent_total == count + 1


# --- the standalone command ------------------------------------------------------------------


async def test_simulate_command_runs_until_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smppgw",
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "--system-id",
        "acme",
        "--password",
        "secret",
        "--style",
        "wavy",
        "--mo-every",
        "0.05",
        "--mo-to",
        "acme",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            first = (await process.stdout.readline()).decode()
            cert = (await process.stdout.readline()).decode()
            ca = (await process.stdout.readline()).decode()
        assert first.startswith("listening on 127.0.0.1:") and "(TLS)" in first
        assert cert.startswith("certificate ") and ca.startswith("ca ")
        port = int(first.split()[2].rsplit(":", 1)[1])
        context = client_context(TlsSettings(enabled=True, ca_file=ca.split(" ", 1)[1].strip()))
        async with asyncio.timeout(STEP):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
        client = RawClient(reader, writer)
        wrong = await client.bind(password="wrong")
        assert wrong.command_status == S.ESME_RINVPASWD
        resp = await client.bind()
        assert resp.command_status == S.ESME_ROK
        assert resp.system_id == "MovileSMSC"  # type: ignore[attr-defined]
        mo = await client.deliver()  # --mo-every: queued MO reach the first receiver
        assert mo.short_message.startswith(b"simulated MO ") and mo.destination_addr == "acme"
        await client.close()
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            output, _ = await process.communicate()
        assert process.returncode == 0
        assert b"stopped: 1 connections" in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_simulator_probes_each_bound_link_on_its_own(make_sim: Factory, connect) -> None:
    sim = await make_sim(enquire_link_interval=0.05)
    client = await connect(sim)
    await client.bind()
    first = await client.next_pdu()
    assert isinstance(first, EnquireLink)
    client.send(EnquireLinkResp(sequence_number=first.sequence_number))
    second = await client.next_pdu()  # another one an interval later, answered or not
    assert isinstance(second, EnquireLink) and second.sequence_number != first.sequence_number
    assert sim.enquire_links_total >= 2
    (connection,) = sim.connections.values()
    assert connection.opened_at + 0.1 <= sim.sent[-1].at


async def test_no_probe_before_the_bind(make_sim: Factory, connect) -> None:
    sim = await make_sim(enquire_link_interval=0.02)
    idle = await connect(sim)
    await sim.wait_for(lambda: len(sim.open_connection_ids()) == 1)
    bound = await connect(sim)
    await bound.bind()
    for _ in range(3):
        probe = await bound.next_pdu()
        assert isinstance(probe, EnquireLink)
    not_bound = sim.connection(sim.open_connection_ids()[0])
    assert not_bound.state == "open" and not_bound.sent_count == 0
    assert sim.enquire_links_total == 3
    await idle.close()


async def test_cancel_sm_cancels_a_message_still_pending_delivery(
    make_sim: Factory, connect
) -> None:
    """SMPP 3.4 §4.9: cancel_sm cancels a message "still pending delivery": here, one whose
    receipt is not yet sent (a delayed receipt plan). It is answered ESME_ROK, its state is
    DELETED (query_sm says so) and no receipt follows. A message already delivered, one of
    another destination, or an unknown id get ESME_RCANCELFAIL (§5.1.3)."""
    sim = await make_sim(receipts=ReceiptPlan(delay=3600))
    client = await connect(sim)
    await client.bind()
    pending = await client.submit(registered_delivery=1)
    message_id = pending.message_id  # type: ignore[attr-defined]

    def cancel(message_id: str, destination: str = "5511999990001") -> CancelSm:
        return CancelSm(sequence_number=client.next_sequence(), message_id=message_id,
                        source_addr="Acme", source_addr_ton=5, destination_addr=destination,
                        dest_addr_ton=1)

    elsewhere = await client.request(cancel(message_id, destination="5511000000000"))
    assert elsewhere.command_status == S.ESME_RCANCELFAIL
    done = await client.request(cancel(message_id))
    assert isinstance(done, CancelSmResp) and done.command_status == S.ESME_ROK
    query = await client.request(
        QuerySm(sequence_number=client.next_sequence(), message_id=message_id))
    assert query.message_state == MessageState.DELETED  # type: ignore[attr-defined]
    again = await client.request(cancel(message_id))
    assert again.command_status == S.ESME_RCANCELFAIL
    unknown = await client.request(cancel("nope"))
    assert unknown.command_status == S.ESME_RCANCELFAIL
    assert sim.cancelled == [message_id]
    # The cancelled message's receipt, due in an hour, never comes: it was dropped.
    assert sim.pending_receipts == 0

    instant = await make_sim(receipts=ReceiptPlan(delay=0))
    other = await connect(instant)
    await other.bind()
    delivered = await other.submit(registered_delivery=1)
    await other.deliver()
    late = await other.request(CancelSm(
        sequence_number=other.next_sequence(),
        message_id=delivered.message_id))  # type: ignore[attr-defined]
    assert late.command_status == S.ESME_RCANCELFAIL
