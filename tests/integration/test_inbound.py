"""Inbound deliver_sm handling with a real store: commit first, acknowledge after.

Receipts are committed in one batch before any deliver_sm_resp; concatenated MO parts are
stored as they come and reassembled in any order; incomplete groups are delivered as they
are after the timeout; a store failure answers a transient error so the SMSC redelivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.metrics import Metrics
from smppgw.pool.slot import Inbound
from smppgw.services.receiver import Receiver
from smppgw.smpp.constants import CommandStatus, Tag
from smppgw.smpp.pdu import DeliverSm, Tlv
from smppgw.smpp.receipt import parse_receipt
from smppgw.store import (
    MoMessage,
    NewMessage,
    NewSegment,
    Store,
    StoreError,
    SubmitOutcome,
)
from tests.store_backends import Backend

pytestmark = pytest.mark.timeout(30)


class FakeConnection:
    """Stands for the SmppConnection an Inbound answers on; records acks and what was
    committed at that moment, so a test can check the order commit → ack."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks: list[tuple[int, int, int]] = []  # (sequence_number, status, last cursor)

        self._acked = asyncio.Event()

    def acknowledge(self, sequence_number: int, status: int) -> None:
        self.acks.append((sequence_number, status, self.store.last_cursor))
        self._acked.set()

    async def run_until_acked(self, processor: Receiver, count: int) -> None:
        """Run ``processor`` until ``count`` acknowledgements were written (bounded)."""
        task = asyncio.create_task(processor.run())
        try:
            async with asyncio.timeout(5):
                while len(self.acks) < count:
                    self._acked.clear()
                    await self._acked.wait()
        finally:
            task.cancel()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """Each backend: the commit-then-acknowledge order must hold on both."""
    opened = await backend.open()
    yield opened
    await opened.close()


def provider(tmp_path: Path) -> ProviderConfig:
    config = parse_config(
        {"gateway": {"state_dir": str(tmp_path)},
         "provider": [{"name": "wavy", "profile": "wavy", "system_id": "acme",
                       "password_env": "PW", "routes": ["55"]}]},
        base_dir=tmp_path, environ={"PW": "x"},
    )
    return config.providers[0]


def inbound(connection: FakeConnection, sequence_number: int, pdu: DeliverSm) -> Inbound:
    return Inbound("wavy", "wavy#1", sequence_number, pdu, connection)  # type: ignore[arg-type]


async def submitted_message(store: Store, smsc_id: str) -> str:
    [accepted] = await store.accept_messages([NewMessage(
        tracking_id="a" * 32, provider="wavy", source="Acme", destination="5511",
        text="hi", segments=(NewSegment(b"hi"),), client_id="c1",
    )])
    [segment] = await store.claim_segments("wavy", 10)
    await store.record_submit_results([SubmitOutcome.ok(segment.segment_id, smsc_id, smsc_id)])
    return accepted.tracking_id


async def test_receipts_are_committed_before_they_are_acknowledged(
    tmp_path: Path, store: Store
) -> None:
    smsc_id = "7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f"
    tracking_id = await submitted_message(store, smsc_id)
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)})
    connection = FakeConnection(store)
    receipt = DeliverSm(
        esm_class=0x04,
        short_message=f"id:{smsc_id} sub:001 dlvrd:001 submit date:2411231200 done date:"
                      "2411231201 stat:DELIVRD err:000 text:".encode(),
        tlvs=(Tlv.of(Tag.RECEIPTED_MESSAGE_ID, smsc_id), Tlv.of(Tag.MESSAGE_STATE, 2),
              Tlv(0x1403, b"\x00\x00\x00\x02"), Tlv(0x1405, b"\x00\x00\x00\x04")),
    )
    unknown = DeliverSm(esm_class=0x04, short_message=b"id:nope stat:DELIVRD err:000")
    before = store.last_cursor
    processor.submit(inbound(connection, 10, receipt))
    processor.submit(inbound(connection, 11, unknown))
    await connection.run_until_acked(processor, 2)
    assert [(seq, status) for seq, status, _ in connection.acks] == [(10, 0), (11, 0)]
    assert all(cursor > before for _, _, cursor in connection.acks), "acked after commit"
    message = await store.get_message(tracking_id)
    assert message is not None and message.state == "delivered"
    assert processor.unmatched == 1  # kept and parked, never dropped
    assert await store.unmatched_receipt_count() == 1


async def test_the_message_text_echoed_in_a_receipt_is_not_kept(
    tmp_path: Path, store: Store
) -> None:
    """SMPP 3.4 Appendix B: ``text:`` carries the first 20 characters of the message, often a
    one-time code. The store keeps every other receipt field, so neither GET /v1/messages nor
    the event stream (nor webhooks) can show it."""
    smsc_id = "5f0e"
    tracking_id = await submitted_message(store, smsc_id)
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)})
    connection = FakeConnection(store)
    receipt = DeliverSm(esm_class=0x04, short_message=(
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:2411231200 done date:2411231201"
        " stat:DELIVRD err:000 text:Your code is 482913").encode())
    processor.submit(inbound(connection, 10, receipt))
    await connection.run_until_acked(processor, 1)
    message = await store.get_message(tracking_id)
    assert message is not None and message.state == "delivered"
    (segment,) = message.segments
    assert segment.receipt is not None
    assert segment.receipt["stat"] == "DELIVRD" and "text" not in segment.receipt["details"]
    events = await store.events_after(0)
    assert [e.type for e in events][-1] == "state"
    assert not any("482913" in repr(e.as_dict()) for e in events)
    assert "482913" not in repr(message)


async def test_concatenated_mo_out_of_order_becomes_one_message(
    tmp_path: Path, store: Store
) -> None:
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)})
    connection = FakeConnection(store)
    texts = ["Primeira parte, ", "segunda parte, ", "terceira."]

    def part(seq: int) -> DeliverSm:
        udh = bytes([5, 0, 3, 0x2A, 3, seq])  # 3GPP TS 23.040 §9.2.3.24.1: 8-bit reference
        return DeliverSm(source_addr="5511999990000", destination_addr="acme", esm_class=0x40,
                         short_message=udh + texts[seq - 1].encode("ascii"))

    for seq, order in enumerate((3, 1, 2), 1):
        processor.submit(inbound(connection, seq, part(order)))
    await connection.run_until_acked(processor, 3)
    assert all(status == CommandStatus.ESME_ROK for _, status, _ in connection.acks)
    events = [e for e in await store.events_after(0) if e.type == "mo"]
    assert len(events) == 1
    assert events[0].payload["text"] == "".join(texts)


async def test_incomplete_mo_is_delivered_as_it_is_after_the_timeout(
    tmp_path: Path, store: Store
) -> None:
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)}, mo_timeout=60)
    connection = FakeConnection(store)
    udh = bytes([5, 0, 3, 7, 3, 1])
    processor.submit(inbound(connection, 1, DeliverSm(
        source_addr="5511", destination_addr="acme", esm_class=0x40,
        short_message=udh + b"only the first part")))
    await connection.run_until_acked(processor, 1)
    assert not [e for e in await store.events_after(0) if e.type == "mo"]
    loop = asyncio.get_running_loop()
    await processor.expire_mo(loop.time() + 61)  # the timeout has passed
    events = [e for e in await store.events_after(0) if e.type == "mo"]
    assert [e.payload["text"] for e in events] == ["only the first part"]


async def test_store_failure_answers_a_transient_error(tmp_path: Path, store: Store) -> None:
    class BrokenStore:
        async def record_receipts(self, receipts: object) -> list[object]:
            raise OSError("disk full")

    processor = Receiver(BrokenStore(), lambda: {"wavy": provider(tmp_path)})  # type: ignore[arg-type]
    connection = FakeConnection(store)
    processor.submit(inbound(connection, 5, DeliverSm(
        esm_class=0x04, short_message=b"id:abc stat:DELIVRD err:000")))
    await connection.run_until_acked(processor, 1)
    assert [(seq, status) for seq, status, _ in connection.acks] == [
        (5, CommandStatus.ESME_RX_T_APPN)
    ]


async def test_a_pdu_whose_processing_fails_gets_a_transient_error_and_the_rest_go_on(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of ours on one PDU (here the receipt parser raising what it never should)
    answers that PDU ESME_RX_T_APPN, so the SMSC delivers it again, and the processor keeps
    running for the next ones, each answered exactly once."""
    real_parse = parse_receipt

    def parse(pdu: DeliverSm, style: str) -> object:
        if b"id:boom" in pdu.short_message:
            raise RuntimeError("a bug in the parser")
        return real_parse(pdu, style)  # type: ignore[arg-type]

    monkeypatch.setattr("smppgw.flow.inbound.parse_receipt", parse)
    metrics = Metrics(CollectorRegistry())
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)}, metrics=metrics)
    connection = FakeConnection(store)
    processor.submit(inbound(connection, 5, DeliverSm(
        esm_class=0x04, short_message=b"id:boom stat:DELIVRD err:000")))
    processor.submit(inbound(connection, 6, DeliverSm(
        esm_class=0x04, short_message=b"id:fine stat:DELIVRD err:000")))
    await connection.run_until_acked(processor, 2)
    processor.submit(inbound(connection, 7, DeliverSm(
        esm_class=0x04, short_message=b"id:boom stat:DELIVRD err:000")))
    processor.submit(inbound(connection, 8, DeliverSm(
        source_addr="5511", destination_addr="acme", short_message=b"an MO")))
    await connection.run_until_acked(processor, 4)
    assert [(seq, status) for seq, status, _ in connection.acks] == [
        (5, CommandStatus.ESME_RX_T_APPN), (6, CommandStatus.ESME_ROK),
        (7, CommandStatus.ESME_RX_T_APPN), (8, CommandStatus.ESME_ROK)]
    assert metrics.registry.get_sample_value(
        "smppgw_worker_failures_total", {"worker": "inbound"}) == 2


async def test_an_mo_group_that_cannot_be_stored_at_expiry_is_kept_for_the_next_try(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = Receiver(store, lambda: {"wavy": provider(tmp_path)}, mo_timeout=60)
    connection = FakeConnection(store)
    udh = bytes([5, 0, 3, 9, 2, 1])
    processor.submit(inbound(connection, 1, DeliverSm(
        source_addr="5511", destination_addr="acme", esm_class=0x40,
        short_message=udh + b"half of it")))
    await connection.run_until_acked(processor, 1)
    real_record = store.record_mo_message
    failures = [StoreError("commit failed, nothing of this group was stored: disk full")]

    async def record(message: MoMessage, consumed: Sequence[int] = ()) -> object:
        if failures:
            raise failures.pop()
        return await real_record(message, consumed)

    monkeypatch.setattr(store, "record_mo_message", record)
    later = asyncio.get_running_loop().time() + 61
    await processor.expire_mo(later)  # fails: kept
    assert not [e for e in await store.events_after(0) if e.type == "mo"]
    await processor.expire_mo(later + 5)
    events = [e for e in await store.events_after(0) if e.type == "mo"]
    assert [e.payload["text"] for e in events] == ["half of it"]


async def test_incomplete_mo_found_at_start_times_out_like_one_seen_running(
    tmp_path: Path, backend: Backend
) -> None:
    """Part 1 of 2 stored, then a restart: recover() reports the group, the new receiver
    waits for part 2 only what is left of the timeout since part 1 came, then delivers what
    arrived; a group older than the timeout goes at the first expiry pass."""
    wall = [1_700_000_000.0]
    udh = bytes([5, 0, 3, 9, 2, 1])
    async with await backend.open(clock=lambda: wall[0]) as first:
        processor = Receiver(first, lambda: {"wavy": provider(tmp_path)}, mo_timeout=60)
        connection = FakeConnection(first)
        processor.submit(inbound(connection, 1, DeliverSm(
            source_addr="5511", destination_addr="acme", esm_class=0x40,
            short_message=udh + b"before the restart")))
        await connection.run_until_acked(processor, 1)
    wall[0] += 40   # down for 40 s of the 60
    async with await backend.open(clock=lambda: wall[0]) as store:
        report = await store.recover()
        assert report.complete_mo_groups == ()
        ((stored_part,),) = report.incomplete_mo_groups
        assert stored_part.seq == 1 and stored_part.total == 2
        processor = Receiver(store, lambda: {"wavy": provider(tmp_path)}, mo_timeout=60)
        now = asyncio.get_running_loop().time()
        processor.resume_incomplete(report.incomplete_mo_groups, now, wall[0])
        await processor.expire_mo(now + 19)   # 59 s since part 1: still waiting
        assert not [e for e in await store.events_after(0) if e.type == "mo"]
        await processor.expire_mo(now + 21)   # 61 s since part 1: delivered as it is
        events = [e for e in await store.events_after(0) if e.type == "mo"]
        assert [e.payload["text"] for e in events] == ["before the restart"]
        assert (await store.counts()).mo_parts_pending == 0
