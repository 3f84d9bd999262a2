"""PDUs from the SMSC as a table (what each is, and its answer), and the MO reassembler as a
dialogue with time moved by the test."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.flow.inbound import (
    AlertIn,
    Handled,
    MoGroups,
    MoIn,
    ReceiptIn,
    StaleReceiptWatch,
    Uncorrelatable,
    assemble,
    classify,
    inbound_answer,
    receipt_details,
)
from smppgw.smpp.constants import CommandStatus, EsmClass, Tag
from smppgw.smpp.pdu import AlertNotification, DataSm, DeliverSm, EnquireLink, Pdu, Tlv
from smppgw.smpp.segment import encode_message
from smppgw.smpp.text import TextPolicy

S = CommandStatus
RECEIPT = int(EsmClass.DELIVERY_RECEIPT)

ANSWERS: list[tuple[Pdu, Handled, int | None]] = [
    (DeliverSm(), Handled.STORED, S.ESME_ROK),
    (DeliverSm(), Handled.UNCORRELATABLE, S.ESME_RX_P_APPN),  # never redelivered
    (DeliverSm(), Handled.NOT_STORED, S.ESME_RX_T_APPN),  # disk full: redeliver later
    (DeliverSm(), Handled.FAILED, S.ESME_RX_T_APPN),  # our fault: redeliver later
    (DataSm(), Handled.STORED, S.ESME_ROK),
    (DataSm(), Handled.NOT_STORED, S.ESME_RX_T_APPN),
    (DataSm(), Handled.FAILED, S.ESME_RX_T_APPN),
    *[(AlertNotification(), handled, None) for handled in Handled],
]


@pytest.mark.parametrize(("pdu", "handled", "status"), ANSWERS)
def test_answer_by_pdu_and_outcome(pdu: Pdu, handled: Handled, status: int | None) -> None:
    # SMPP 3.4 §4.6.2, §4.7.2: one response each; §4.12: alert_notification has none.
    assert inbound_answer(pdu, handled) == status


# --- what a PDU is ----------------------------------------------------------------------------


def test_a_receipt_with_every_key_its_id_may_be_stored_under() -> None:
    pdu = DeliverSm(esm_class=RECEIPT, short_message=b"id:0000000aff sub:001 dlvrd:001 "
                    b"submit date:2603091405 done date:2603091406 stat:DELIVRD err:000 text:hi")
    what = classify(pdu, id_format="hex")
    assert isinstance(what, ReceiptIn)
    assert what.receipt.message_id == "0000000aff" and what.receipt.stat == "DELIVRD"
    assert what.message_keys[0] == "aff"
    assert "text" not in receipt_details(what.receipt)


def test_a_receipt_naming_no_message_is_uncorrelatable() -> None:
    what = classify(DeliverSm(esm_class=RECEIPT, short_message=b"stat:DELIVRD"))
    assert isinstance(what, Uncorrelatable) and what.detail


def test_a_single_mo_is_decoded_with_the_providers_ia5_alphabet() -> None:
    pdu = DeliverSm(source_addr="5511988887777", destination_addr="Acme", data_coding=1,
                    short_message=b"caf\xe9")
    assert classify(pdu, ia5_as="latin1") == MoIn("5511988887777", "Acme", 1, b"caf\xe9",
                                                   text="café")


def test_a_data_sm_mo_reads_message_payload() -> None:
    pdu = DataSm(source_addr="1", destination_addr="2",
                 tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"hello"),))
    what = classify(pdu)
    assert isinstance(what, MoIn) and what.text == "hello" and what.concat is None


@pytest.mark.parametrize(
    ("udh", "concat"),
    [
        (b"\x05\x00\x03\x2a\x03\x02", (0x2A, 3, 2)),  # 8-bit reference (3GPP TS 23.040 §9.2.3.24.1)
        (b"\x06\x08\x04\x01\x2a\x03\x02", (0x012A, 3, 2)),  # 16-bit reference (§9.2.3.24.8)
    ],
)
def test_an_mo_part_behind_a_udh_keeps_its_raw_body(udh: bytes, concat: tuple[int, ...]) -> None:
    pdu = DeliverSm(source_addr="1", destination_addr="2", esm_class=EsmClass.UDHI,
                    short_message=udh + b"part two")
    assert classify(pdu) == MoIn("1", "2", 0, b"part two", concat)  # type: ignore[arg-type]


def test_an_mo_part_with_sar_tlvs() -> None:
    # SMPP 3.4 §5.3.2.22-24: sar_msg_ref_num (2 octets), sar_total_segments, sar_segment_seqnum.
    pdu = DeliverSm(source_addr="1", destination_addr="2", short_message=b"body", tlvs=(
        Tlv(Tag.SAR_MSG_REF_NUM, b"\x01\x02"), Tlv(Tag.SAR_TOTAL_SEGMENTS, b"\x02"),
        Tlv(Tag.SAR_SEGMENT_SEQNUM, b"\x01")))
    assert classify(pdu) == MoIn("1", "2", 0, b"body", (0x0102, 2, 1))


def test_a_group_of_one_is_a_single_message() -> None:
    pdu = DeliverSm(source_addr="1", destination_addr="2", esm_class=EsmClass.UDHI,
                    short_message=b"\x05\x00\x03\x07\x01\x01only")
    what = classify(pdu)
    assert isinstance(what, MoIn) and what.concat is None and what.text == "only"


@pytest.mark.parametrize(("raw", "availability"),
                         [(b"\x00", "available"), (b"\x02", "unavailable"), (b"\x09", "9")])
def test_alert_notification(raw: bytes, availability: str) -> None:
    pdu = AlertNotification(tlvs=(Tlv(Tag.MS_AVAILABILITY_STATUS, raw),))
    assert classify(pdu) == AlertIn(availability)


def test_anything_else_is_a_bug_of_the_caller() -> None:
    with pytest.raises(TypeError, match="EnquireLink"):
        classify(EnquireLink())


# --- the reassembler ------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    seq: int
    payload: bytes
    data_coding: int = 0


def test_parts_are_assembled_in_sequence_order_each_decoded_on_its_own() -> None:
    parts = [Part(3, b"!"), Part(1, b"\x00O\x00i", 8), Part(2, b" there")]
    assert assemble(parts) == "Oi there!"


def test_an_incomplete_group_times_out_from_its_first_part() -> None:
    groups = MoGroups(timeout=300.0)
    key = ("wavy", "5511", "acme", 7, 3)
    other = ("wavy", "5511", "acme", 8, 2)
    assert groups.next_deadline() is None
    groups.seen(key, now=10.0)
    groups.seen(key, now=200.0)  # a second part does not restart the clock
    groups.seen(other, now=100.0)
    assert groups.next_deadline() == 310.0 and len(groups) == 2
    assert groups.expired(309.9) == []
    assert groups.expired(310.0) == [key]
    assert groups.expired(311.0) == [key]  # listed until delivered
    groups.done(key)
    assert groups.expired(400.0) == [other]
    groups.done(other)
    groups.done(other)  # harmless twice
    assert groups.next_deadline() is None and repr(groups) == "<MoGroups pending=0>"


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        MoGroups(timeout=0)


@given(
    st.text(alphabet="ab€ç" + "😀", min_size=161, max_size=600),
    st.sampled_from(["udh8", "udh16", "sar"]),
    st.randoms(use_true_random=False),
)
def test_encode_then_reassemble_in_any_order(text: str, concat: str, rnd: random.Random) -> None:
    """Our own splitter's parts, as an SMSC would deliver them (any order, one twice), come
    back whole: classify reads each part's place, the store keeps one per seq, assemble joins."""
    message = encode_message(text, TextPolicy(), concat=concat,  # type: ignore[arg-type]
                             reference=lambda: 200)
    parts = [*message.parts, message.parts[0]]
    rnd.shuffle(parts)
    stored: dict[int, Part] = {}
    for part in parts:
        tlvs = () if part.sar is None else (
            Tlv(Tag.SAR_MSG_REF_NUM, part.sar[0].to_bytes(2, "big")),
            Tlv(Tag.SAR_TOTAL_SEGMENTS, bytes((part.sar[1],))),
            Tlv(Tag.SAR_SEGMENT_SEQNUM, bytes((part.sar[2],))))
        what = classify(DeliverSm(source_addr="1", destination_addr="2",
                                  esm_class=message.esm_class if part.udh else 0,
                                  data_coding=message.data_coding,
                                  short_message=part.short_message, tlvs=tlvs))
        assert isinstance(what, MoIn) and what.concat is not None
        reference, total, seq = what.concat
        assert (reference & 0xFF, total) == (200, len(message.parts))
        stored.setdefault(seq, Part(seq, what.body, what.data_coding))
    assert assemble(list(stored.values())) == text


# --- receipts that stay unmatched ---------------------------------------------------------------


def test_stale_receipts_are_said_once_then_only_when_more_go_stale() -> None:
    watch = StaleReceiptWatch(interval=600.0)
    assert watch.check({}, 0.0) == []
    assert watch.check({"wavy": 0}, 1.0) == []
    assert watch.check({"wavy": 3, "qik": 1}, 5.0) == ["wavy", "qik"]      # first found
    assert watch.check({"wavy": 3, "qik": 1}, 200.0) == []                 # nothing new
    assert watch.check({"wavy": 9, "qik": 1}, 300.0) == []                 # more, too soon
    assert watch.check({"wavy": 9, "qik": 1}, 605.0) == ["wavy"]           # more, in time
    assert watch.check({"wavy": 9, "qik": 1}, 2000.0) == []
    # qik's are matched (absent: none parked), then one goes stale again: said at once.
    assert watch.check({"wavy": 9}, 2001.0) == []
    assert watch.check({"wavy": 9, "qik": 1}, 2002.0) == ["qik"]
    # wavy drops to 2 (some matched late), then grows to 4 after the interval: news again.
    assert watch.check({"wavy": 2, "qik": 1}, 2003.0) == []
    assert watch.check({"wavy": 4, "qik": 1}, 2004.0) == ["wavy"]


def test_stale_receipt_watch_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        StaleReceiptWatch(0.0)
