"""Delivery receipts (smppgw.smpp.receipt): SMPP 3.4 Appendix B text, receipt TLVs, and the
Wavy and Qikberry tables of PROVIDERS.md, row by row."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.errors import SmppgwError
from smppgw.smpp import receipt as receipt_module
from smppgw.smpp.constants import EsmClass, MessageState, Tag, VendorTag
from smppgw.smpp.pdu import DataSm, DeliverSm, NetworkErrorCode, Tlv
from smppgw.smpp.receipt import (
    QIKBERRY_ERRORS,
    TEXT_FIELDS,
    WAVY_DELIVERED_STATUS,
    WAVY_ERRORS,
    WAVY_SENT_STATUS,
    ErrorInfo,
    Receipt,
    ReceiptError,
    ReceiptOutcome,
    describe_error,
    is_intermediate_notification,
    is_receipt,
    message_id_key,
    message_id_variants,
    outcome_of,
    parse_receipt,
    parse_receipt_date,
    parse_receipt_text,
    state_of_stat,
)

MS = MessageState
OUT = ReceiptOutcome
WAVY_ID = "8f5af680-973e-11e4-ad43-4ee58e9a13a6"


def deliver(
    text: str | bytes = b"",
    *tlvs: Tlv,
    esm_class: int = EsmClass.DELIVERY_RECEIPT,
    data_coding: int = 0,
) -> DeliverSm:
    raw = text.encode("latin-1") if isinstance(text, str) else text
    return DeliverSm(
        esm_class=esm_class, data_coding=data_coding, short_message=raw, tlvs=tuple(tlvs)
    )


def appendix_b(
    message_id: str = "0123456789",
    stat: str = "DELIVRD",
    err: str = "000",
    *,
    submit: str = "2301011200",
    done: str = "2301011201",
    text: str = "Hello",
) -> str:
    # SMPP 3.4 Appendix B, the exact layout.
    return (
        f"id:{message_id} sub:001 dlvrd:001 submit date:{submit} done date:{done} "
        f"stat:{stat} err:{err} text:{text}"
    )


# --- esm_class (§5.2.12) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("esm_class", "receipt", "intermediate"),
    [
        (0x00, False, False),  # default message type: MO
        (0x04, True, False),  # 0001 SMSC delivery receipt
        (0x08, False, False),  # 0010 SME delivery acknowledgement: written by the recipient
        (0x10, False, False),  # 0100 SME manual/user acknowledgement
        (0x18, False, False),  # 0110 conversation abort
        (0x20, True, True),  # 1000 intermediate delivery notification
        (0x44, True, False),  # receipt with UDHI set (bits 7-6 are not the message type)
        (0x07, True, False),  # receipt with messaging mode bits set
        (0xC4, True, False),
        (0x24, False, False),  # 1001 is reserved, not a receipt
        (0x3C, False, False),
    ],
)
def test_is_receipt_reads_the_message_type_bits(
    esm_class: int, receipt: bool, intermediate: bool
) -> None:
    # §5.2.12 esm_class: bits 5-2 are one value, not independent flags.
    assert is_receipt(esm_class) is receipt
    assert is_intermediate_notification(esm_class) is intermediate


# --- the Appendix B text -----------------------------------------------------------------------


def test_appendix_b_receipt_every_field() -> None:
    r = parse_receipt(deliver(appendix_b()))
    assert r.message_id == "0123456789"
    assert r.text_message_id == "0123456789"
    assert (r.sub, r.dlvrd) == ("001", "001")
    assert r.submit_date == datetime(2023, 1, 1, 12, 0)
    assert r.done_date == datetime(2023, 1, 1, 12, 1)
    assert (r.submit_date_raw, r.done_date_raw) == ("2301011200", "2301011201")
    assert (r.stat, r.err, r.text) == ("DELIVRD", "000", "Hello")
    assert r.message_state is MS.DELIVERED
    assert r.outcome is OUT.DELIVERED
    assert r.final is True and r.intermediate is False
    assert r.style == "standard"
    assert r.vendor == {}
    assert r.network_error_code is None
    assert r.error == ErrorInfo("000", "", "no error", False, ok=True)
    assert r.transient is False
    assert r.raw_text == appendix_b()
    assert r.tlvs == ()


def test_parse_receipt_text_returns_raw_fields() -> None:
    assert parse_receipt_text(appendix_b()) == {
        "id": "0123456789",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2301011200",
        "done_date": "2301011201",
        "stat": "DELIVRD",
        "err": "000",
        "text": "Hello",
    }


def test_field_names_and_stat_in_any_case() -> None:
    text = (
        "ID:AbC12 SUB:001 Dlvrd:001 SUBMIT DATE:2301011200 Done Date:2301011201 "
        "STAT:delivrd ERR:000 TEXT:x"
    )
    r = parse_receipt(deliver(text))
    assert r.message_id == "AbC12"  # the id keeps its case
    assert r.stat == "DELIVRD" and r.message_state is MS.DELIVERED
    assert r.submit_date == datetime(2023, 1, 1, 12, 0)
    assert r.text == "x"


@pytest.mark.parametrize(
    "text",
    [
        # reordered
        "stat:UNDELIV err:005 id:77 done date:2301011201 submit date:2301011200 text:x",
        # missing sub/dlvrd, stray whitespace everywhere
        "  id: 77   submit date : 2301011200\tdone date:2301011201  stat:  UNDELIV err:005 ",
        # submit_date / done_date spellings and extra fields between the known ones
        "id:77 imsi:724051234567890 submit_date:2301011200 done_date:2301011201 "
        "mcc:724 stat:UNDELIV nsms:1 err:005",
        "id:77 submitdate:2301011200 donedate:2301011201 status:UNDELIV error:005",
        "message_id:77 Submit_Date:2301011200 Done_Date:2301011201 stat:UNDELIV err:005",
        # NUL terminated short_message
        "id:77 submit date:2301011200 done date:2301011201 stat:UNDELIV err:005\0",
    ],
)
def test_variants_real_smscs_send(text: str) -> None:
    r = parse_receipt(deliver(text))
    assert r.message_id == "77"
    assert r.stat == "UNDELIV" and r.err == "005"
    assert r.message_state is MS.UNDELIVERABLE and r.outcome is OUT.UNDELIVERABLE
    assert r.submit_date == datetime(2023, 1, 1, 12, 0)
    assert r.done_date == datetime(2023, 1, 1, 12, 1)


def test_text_is_last_and_keeps_colons_spaces_and_field_names() -> None:
    # SMPP 3.4 Appendix B: text is the last field; the message's own words stay in it.
    fields = parse_receipt_text("id:1 stat:DELIVRD err:000 text:Your id: 42, stat: ok  ")
    assert fields["id"] == "1" and fields["stat"] == "DELIVRD"
    assert fields["text"] == "Your id: 42, stat: ok"


def test_first_occurrence_of_a_field_wins() -> None:
    assert parse_receipt_text("id:1 id:2 stat:DELIVRD stat:UNDELIV")["id"] == "1"
    assert parse_receipt_text("id:1 id:2 stat:DELIVRD stat:UNDELIV")["stat"] == "DELIVRD"


def test_sub_does_not_match_inside_submit_or_other_words() -> None:
    fields = parse_receipt_text("id:1 submit date:2301011200 xsub:9 stat:DELIVRD")
    assert "sub" not in fields
    assert fields["submit_date"] == "2301011200"


def test_empty_values_and_missing_fields() -> None:
    assert parse_receipt_text("id: stat: err:") == {"id": "", "stat": "", "err": ""}
    assert parse_receipt_text("") == {}
    assert parse_receipt_text("no fields at all") == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2301011200", datetime(2023, 1, 1, 12, 0)),  # YYMMDDhhmm, Appendix B
        ("230101120059", datetime(2023, 1, 1, 12, 0, 59)),  # YYMMDDhhmmss
        ("20230101120059", datetime(2023, 1, 1, 12, 0, 59)),  # YYYYMMDDhhmmss
        (" 2312312359 ", datetime(2023, 12, 31, 23, 59)),
        ("2313011200", None),  # month 13
        ("2302301200", None),  # 30 February
        ("230101126000", None),  # second 60
        ("23010112", None),  # too short
        ("2301011200a", None),
        ("", None),
        ("２３０１０１１２００", None),  # full-width digits are not ASCII
    ],
)
def test_receipt_dates(raw: str, expected: datetime | None) -> None:
    assert parse_receipt_date(raw) == expected


def test_invalid_date_keeps_its_raw_text() -> None:
    r = parse_receipt(deliver(appendix_b(submit="2313011200", done="garbage")))
    assert (r.submit_date, r.submit_date_raw) == (None, "2313011200")
    assert (r.done_date, r.done_date_raw) == (None, "garbage")


def test_missing_dates_are_none() -> None:
    r = parse_receipt(deliver("id:1 stat:DELIVRD"))
    assert r.submit_date is None and r.done_date is None
    assert r.submit_date_raw is None and r.done_date_raw is None
    assert r.sub is None and r.dlvrd is None and r.text is None
    assert r.err == "" and r.error is None


@pytest.mark.parametrize(
    ("stat", "state", "outcome", "final"),
    [
        # SMPP 3.4 Appendix B: every state but ENROUTE is final, ACCEPTED included.
        ("DELIVRD", MS.DELIVERED, OUT.DELIVERED, True),
        ("EXPIRED", MS.EXPIRED, OUT.EXPIRED, True),
        ("DELETED", MS.DELETED, OUT.UNDELIVERABLE, True),
        ("UNDELIV", MS.UNDELIVERABLE, OUT.UNDELIVERABLE, True),
        ("ACCEPTD", MS.ACCEPTED, OUT.ACCEPTED, True),
        ("UNKNOWN", MS.UNKNOWN, OUT.UNKNOWN, True),
        ("REJECTD", MS.REJECTED, OUT.REJECTED, True),
        ("ENROUTE", MS.ENROUTE, OUT.ENROUTE, False),
        ("DELIVERED", MS.DELIVERED, OUT.DELIVERED, True),
        ("UNDELIVERABLE", MS.UNDELIVERABLE, OUT.UNDELIVERABLE, True),
        ("REJECTED", MS.REJECTED, OUT.REJECTED, True),
        ("EN_ROUTE", MS.ENROUTE, OUT.ENROUTE, False),
        ("SCHEDULED", MS.ENROUTE, OUT.ENROUTE, False),  # Qikberry: 3.4 SMSCs say ENROUTE
        ("Bogus", None, OUT.UNKNOWN, False),
    ],
)
def test_stat_words_map_to_state_outcome_and_finality(
    stat: str, state: MessageState | None, outcome: ReceiptOutcome, final: bool
) -> None:
    r = parse_receipt(deliver(f"id:1 stat:{stat} err:000"))
    assert r.stat == stat.upper()
    assert r.message_state is state
    assert r.outcome is outcome
    assert r.final is final
    assert state_of_stat(stat.lower()) is state


def test_outcome_of_every_message_state() -> None:
    assert {s: outcome_of(s) for s in MessageState} == {
        MS.ENROUTE: OUT.ENROUTE,
        MS.DELIVERED: OUT.DELIVERED,
        MS.EXPIRED: OUT.EXPIRED,
        MS.DELETED: OUT.UNDELIVERABLE,
        MS.UNDELIVERABLE: OUT.UNDELIVERABLE,
        MS.ACCEPTED: OUT.ACCEPTED,
        MS.UNKNOWN: OUT.UNKNOWN,
        MS.REJECTED: OUT.REJECTED,
    }
    assert outcome_of(None) is OUT.UNKNOWN


def test_intermediate_notification_is_never_final() -> None:
    # §5.2.12 message type 1000: a progress report.
    r = parse_receipt(deliver(appendix_b(), esm_class=0x20))
    assert r.intermediate is True and r.final is False
    assert r.outcome is OUT.DELIVERED


# --- TLVs --------------------------------------------------------------------------------------


def test_tlvs_win_over_text() -> None:
    pdu = deliver(
        appendix_b(message_id="1A2B", stat="UNDELIV", err="001"),
        Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "6699"),
        Tlv.of(Tag.MESSAGE_STATE, MS.DELIVERED),
    )
    r = parse_receipt(pdu)
    assert r.message_id == "6699"
    assert r.text_message_id == "1A2B"
    assert r.message_state is MS.DELIVERED and r.outcome is OUT.DELIVERED
    assert r.stat == "UNDELIV"  # the text's word is kept as received
    assert r.tlvs == pdu.tlvs


def test_receipt_from_tlvs_only() -> None:
    pdu = deliver(
        b"",
        Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "abc"),
        Tlv.of(Tag.MESSAGE_STATE, MS.EXPIRED),
        Tlv.of(Tag.NETWORK_ERROR_CODE, NetworkErrorCode(3, 27)),
    )
    r = parse_receipt(pdu)
    assert r.message_id == "abc" and r.text_message_id is None
    assert r.stat == "EXPIRED"  # the Appendix B word of the TLV's state
    assert r.message_state is MS.EXPIRED and r.final
    assert r.network_error_code == NetworkErrorCode(3, 27)
    assert r.raw_text == ""


def test_receipted_message_id_without_nul_and_blank_tlv_id_falls_back_to_text() -> None:
    assert parse_receipt(deliver("", Tlv(Tag.RECEIPTED_MESSAGE_ID, b"x1"))).message_id == "x1"
    r = parse_receipt(deliver("id:77 stat:DELIVRD", Tlv(Tag.RECEIPTED_MESSAGE_ID, b"\0")))
    assert r.message_id == "77"


@pytest.mark.parametrize("raw", [b"\x09", b"\x00", b"", b"\x00\x00\x00\x00\x02\x00"])
def test_invalid_message_state_tlv_falls_back_to_stat(raw: bytes) -> None:
    r = parse_receipt(deliver("id:1 stat:UNDELIV", Tlv(Tag.MESSAGE_STATE, raw)))
    assert r.message_state is MS.UNDELIVERABLE


def test_message_state_tlv_of_odd_width_is_read() -> None:
    r = parse_receipt(deliver("id:1", Tlv(Tag.MESSAGE_STATE, b"\x00\x02")))
    assert r.message_state is MS.DELIVERED and r.stat == "DELIVRD"


@pytest.mark.parametrize("raw", [b"\x03\x00", b"\x03\x00\x1b\x00", b""])
def test_network_error_code_of_wrong_width_is_none_but_kept_raw(raw: bytes) -> None:
    # SMPP 3.4 §5.3.2.31: 1 octet network type + 2 octets error code.
    tlv = Tlv(Tag.NETWORK_ERROR_CODE, raw)
    r = parse_receipt(deliver("id:1 stat:UNDELIV", tlv))
    assert r.network_error_code is None
    assert r.tlvs == (tlv,)


def test_data_sm_receipt_text_in_message_payload() -> None:
    pdu = DataSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        tlvs=(Tlv.of(Tag.MESSAGE_PAYLOAD, appendix_b().encode()),),
    )
    r = parse_receipt(pdu)
    assert r.message_id == "0123456789" and r.message_state is MS.DELIVERED


def test_deliver_sm_with_empty_short_message_reads_message_payload() -> None:
    pdu = deliver(b"", Tlv.of(Tag.MESSAGE_PAYLOAD, b"id:9 stat:EXPIRED err:021"))
    assert parse_receipt(pdu).outcome is OUT.EXPIRED


def test_ucs2_receipt_text() -> None:
    # Some SMSCs echo the submit's data_coding 8 and encode the receipt in UTF-16.
    raw = appendix_b(text="Olá").encode("utf-16-be")
    r = parse_receipt(deliver(raw, data_coding=8))
    assert r.message_id == "0123456789" and r.text == "Olá"


def test_ascii_receipt_with_data_coding_8_stays_ascii() -> None:
    r = parse_receipt(deliver(appendix_b(), data_coding=8))
    assert r.message_id == "0123456789"


# --- Wavy (PROVIDERS.md; seed 003 "Status de envio") -------------------------------------------

# stat, err, 0x1403, 0x1404, 0x1405, 0x1406, state, outcome, final, transient
WAVY_ROWS: list[tuple[Any, ...]] = [
    ("ACCEPTD", "000", 2, "SENT_SUCCESS", None, None, MS.ACCEPTED, OUT.ACCEPTED, False, False),
    ("EXPIRED", "101", 101, "EXPIRED", None, None, MS.EXPIRED, OUT.EXPIRED, True, True),
    ("REJECTD", "102", 102, "CARRIER_COMMUNICATION_ERROR", None, None,
     MS.REJECTED, OUT.REJECTED, True, True),
    ("REJECTD", "103", 103, "REJECTED_BY_CARRIER", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "201", 201, "NO_CREDIT", None, None, MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "202", 202, "INVALID_DESTINATION_NUMBER", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "203", 203, "BLACKLISTED", None, None, MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "204", 204, "DESTINATION_BLOCKED_BY_OPTOUT", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "205", 205, "DESTINATION_MESSAGE_LIMIT_REACHED", None, None,
     MS.REJECTED, OUT.REJECTED, True, True),
    ("REJECTD", "207", 207, "INVALID_MESSAGE_TEXT", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    # 213-215: seed 003's sent-status list ("Códigos de Status de Envio"), absent from its
    # SMPP table; they arrive as the other refusals do, REJECTD with the code as err.
    ("REJECTD", "213", 213, "COUNTRY_NOT_ALLOWED_FOR_CUSTOMER", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "214", 214, "INVALID_CUSTOMER_CONFIGURATION", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "215", 215, "CUSTOMER_QUOTA_BLOCKED", None, None,
     MS.REJECTED, OUT.REJECTED, True, False),
    ("REJECTD", "301", 301, "INTERNAL_ERROR", None, None, MS.REJECTED, OUT.REJECTED, True, True),
    ("UNKNOWN", "301", 301, "INTERNAL_ERROR", None, None, MS.UNKNOWN, OUT.UNKNOWN, True, True),
    ("DELIVRD", "000", 2, "SENT_SUCCESS", 4, "DELIVERED_SUCCESS",
     MS.DELIVERED, OUT.DELIVERED, True, False),
    ("UNDELIV", "104", 2, "SENT_SUCCESS", 104, "NOT_DELIVERED",
     MS.UNDELIVERABLE, OUT.UNDELIVERABLE, True, True),
    # 401 MESSAGE_SPLIT, a delivered status (seed 003): Wavy cut the text at its billing limit
    # and the handset outcome is still to come, so ENROUTE, not final, not an error. The
    # seed gives it no stat word; ENROUTE is the one Appendix B has for "not yet".
    ("ENROUTE", "401", 2, "SENT_SUCCESS", 401, "MESSAGE_SPLIT",
     MS.ENROUTE, OUT.ENROUTE, False, False),
]  # fmt: skip


def int_encodings(value: int) -> list[bytes]:
    """Wavy's document gives no wire width: every width a Wavy SMSC might use."""
    out = [value.to_bytes(2, "big"), value.to_bytes(4, "big"), str(value).encode()]
    out.append(str(value).encode() + b"\0")
    if value < 256:
        out.append(value.to_bytes(1, "big"))
    return out


def wavy_pdu(row: tuple[Any, ...], int_raw: int = 0, nul: bool = True) -> DeliverSm:
    stat, err, sent_code, sent, delivered_code, delivered = row[:6]
    end = b"\0" if nul else b""
    tlvs = [
        Tlv.of(Tag.RECEIPTED_MESSAGE_ID, WAVY_ID),
        Tlv(VendorTag.WAVY_SENT_STATUS_CODE, int_encodings(sent_code)[int_raw]),
        Tlv(VendorTag.WAVY_SENT_STATUS, sent.encode() + end),
    ]
    if delivered_code is not None:
        tlvs.append(
            Tlv(VendorTag.WAVY_DELIVERED_STATUS_CODE, int_encodings(delivered_code)[int_raw])
        )
        tlvs.append(Tlv(VendorTag.WAVY_DELIVERED_STATUS, delivered.encode() + end))
    return deliver(appendix_b(WAVY_ID, stat, err), *tlvs)


@pytest.mark.parametrize("row", WAVY_ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
@pytest.mark.parametrize("int_raw", [0, 1, 2, 3], ids=["u16", "u32", "ascii", "ascii-nul"])
@pytest.mark.parametrize("nul", [True, False], ids=["cstr", "no-nul"])
def test_wavy_table_row(row: tuple[Any, ...], int_raw: int, nul: bool) -> None:
    stat, err, sent_code, sent, delivered_code, delivered, state, outcome, final, transient = row
    pdu = wavy_pdu(row, int_raw, nul)
    r = parse_receipt(pdu, "wavy")
    assert r.message_id == WAVY_ID and r.text_message_id == WAVY_ID
    assert (r.stat, r.err) == (stat, err)
    assert r.message_state is state
    assert r.outcome is outcome
    # ACCEPTD is Wavy's first stage (accepted by the carrier): the handset stage may follow.
    assert r.final is final
    expected_vendor: dict[str, int | str] = {"sent_status_code": sent_code, "sent_status": sent}
    if delivered_code is not None:
        expected_vendor["delivered_status_code"] = delivered_code
        expected_vendor["delivered_status"] = delivered
    assert r.vendor == expected_vendor
    assert list(r.vendor) == list(expected_vendor)
    assert r.error is not None and r.error.code == err
    if err == "000":
        assert r.error.ok and r.error.text == (delivered or sent)
    else:
        assert r.error.text == (sent if delivered is None else delivered)
        assert r.error.transient is transient
    assert r.transient is (transient if err != "000" else False)
    assert r.error.description
    assert r.tlvs == pdu.tlvs


def test_wavy_one_octet_codes() -> None:
    pdu = deliver(
        appendix_b(WAVY_ID, "DELIVRD", "000"),
        Tlv(VendorTag.WAVY_SENT_STATUS_CODE, b"\x02"),
        Tlv(VendorTag.WAVY_DELIVERED_STATUS_CODE, b"\x04"),
    )
    assert parse_receipt(pdu, "wavy").vendor == {
        "sent_status_code": 2,
        "delivered_status_code": 4,
    }


def test_wavy_no_credit_alerts_the_operator() -> None:
    r = parse_receipt(wavy_pdu(WAVY_ROWS[4]), "wavy")
    assert r.error is not None and r.error.text == "NO_CREDIT" and r.error.alert


@pytest.mark.parametrize("code", ["213", "214", "215"])
def test_wavy_account_refusals_alert_the_operator(code: str) -> None:
    # Country not allowed, account misconfigured, quota blocked: only the operator can fix
    # them, like NO_CREDIT.
    row = next(r for r in WAVY_ROWS if r[1] == code)
    r = parse_receipt(wavy_pdu(row), "wavy")
    assert r.error is not None and r.error.alert and r.final
    assert r.error.transient is False


def test_wavy_message_split_is_not_final_and_the_outcome_follows() -> None:
    split = next(r for r in WAVY_ROWS if r[1] == "401")
    delivered = next(r for r in WAVY_ROWS if r[0] == "DELIVRD")
    first = parse_receipt(wavy_pdu(split), "wavy")
    assert (first.final, first.outcome, first.transient) == (False, OUT.ENROUTE, False)
    assert first.error is not None and first.error.ok and not first.error.alert
    assert parse_receipt(wavy_pdu(delivered), "wavy").final


def test_wavy_status_names_cover_the_seed_lists() -> None:
    # Seed 003, "Códigos de Status de Envio": every sent and delivered code with its name.
    assert {213, 214, 215} <= set(WAVY_SENT_STATUS)
    assert WAVY_SENT_STATUS[213] == "COUNTRY_NOT_ALLOWED_FOR_CUSTOMER"
    assert WAVY_SENT_STATUS[214] == "INVALID_CUSTOMER_CONFIGURATION"
    assert WAVY_SENT_STATUS[215] == "CUSTOMER_QUOTA_BLOCKED"
    assert WAVY_DELIVERED_STATUS == {4: "DELIVERED_SUCCESS", 104: "NOT_DELIVERED",
                                     401: "MESSAGE_SPLIT"}  # fmt: skip


@pytest.mark.parametrize("row", WAVY_ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_wavy_codes_alone_give_stat_and_err(row: tuple[Any, ...]) -> None:
    # No stat/err in the text: Wavy's vendor codes still say what happened.
    stat, err, sent_code, _, delivered_code, _, _, outcome, _, _ = row
    tlvs = [
        Tlv.of(Tag.RECEIPTED_MESSAGE_ID, WAVY_ID),
        Tlv(VendorTag.WAVY_SENT_STATUS_CODE, sent_code.to_bytes(2, "big")),
    ]
    if delivered_code is not None:
        tlvs.append(Tlv(VendorTag.WAVY_DELIVERED_STATUS_CODE, delivered_code.to_bytes(2, "big")))
    r = parse_receipt(deliver(b"", *tlvs), "wavy")
    # Wavy's 301 comes with REJECTD or UNKNOWN; from the code alone it reads as REJECTD.
    expected_stat = "REJECTD" if stat == "UNKNOWN" else stat
    assert (r.stat, r.err) == (expected_stat, err)
    assert r.outcome is (OUT.REJECTED if stat == "UNKNOWN" else outcome)


def test_wavy_vendor_tlvs_are_not_decoded_for_other_styles() -> None:
    pdu = wavy_pdu(WAVY_ROWS[0])
    assert parse_receipt(pdu, "standard").vendor == {}
    assert parse_receipt(pdu, "qikberry").vendor == {}
    assert parse_receipt(pdu, "standard").tlvs == pdu.tlvs
    # Standard style: ACCEPTD is final (Appendix B).
    assert parse_receipt(pdu, "standard").final is True


@pytest.mark.parametrize("raw", [b"\x01\x02\x03", b"", b"12345678901", b"\x00\x00\x00\x00\x00"])
def test_wavy_unreadable_integer_tlv_is_left_out(raw: bytes) -> None:
    pdu = deliver(appendix_b(WAVY_ID, "ACCEPTD"), Tlv(VendorTag.WAVY_SENT_STATUS_CODE, raw))
    r = parse_receipt(pdu, "wavy")
    assert "sent_status_code" not in r.vendor
    assert r.stat == "ACCEPTD"


def test_wavy_table_has_exactly_the_documented_codes() -> None:
    assert set(WAVY_ERRORS) == {row[1] for row in WAVY_ROWS}


# --- Qikberry (PROVIDERS.md; seed 004 "Error Codes") -------------------------------------------

# code, word, transient — transcribed from PROVIDERS.md. Transient: the SMSC might still
# deliver or a resubmit may succeed.
QIKBERRY_ROWS: list[tuple[str, str, bool]] = [
    ("001", "INVALID-SUB", False), ("002", "INVALID-SUB", False),
    ("003", "ABSENT-SUB", True), ("004", "HANDSET-ERR", False), ("005", "BARRED", False),
    ("006", "HANDSET-ERR", False), ("007", "HANDSET-ERR", True), ("008", "NET-ERR", True),
    ("009", "MEMEXEC", True), ("010", "ABSENT-SUB", True), ("011", "FAILED", True),
    ("012", "NET-ERR", True), ("013", "MOB-OFF", True), ("014", "FAILED", True),
    ("015", "INVALID-SUB", False), ("016", "HANDSET-BUSY", True), ("017", "NET-ERR", True),
    ("018", "SERIES-BLK", False), ("019", "NET-ERR", False), ("020", "BARRED", False),
    ("021", "EXPIRED", True), ("034", "UNDELIV", True), ("045", "FAILED", True),
    ("099", "UNDELIV", True), ("400", "SERIES-BLOCK", False), ("401", "NO-CREDITS", False),
    ("402", "NO-ACCOUNT", False), ("403", "SERVER-ERR", True), ("404", "INV-NUMBER", False),
    ("405", "SERVER-ERR", True), ("406", "SERVER-ERR", True), ("407", "SPAM", False),
    ("408", "DNDNUMB", False), ("430", "SERVER-ERR", True), ("431", "SERVER-ERR", True),
    ("432", "SERVER-ERR", True), ("433", "SERVER-ERR", True), ("450", "BLACKLST", False),
    ("451", "SNDR-BLOCK", False), ("452", "TEMPLATE-NOT-FOUND", False),
    ("453", "INV-TEMPLATE", False), ("454", "INV-SENDER", False),
    ("455", "NOT-OPTIN", False), ("456", "OPTOUT-REJ", False), ("457", "PROMO-TMOUT", True),
    ("458", "REJECTED", False), ("459", "NOTALLOWED", False), ("460", "DUPLICATE", False),
    ("461", "UNDELIV", True), ("462", "FAILED", True), ("463", "THROTTLED", True),
    ("777", "DLT-REJECTED", False), ("778", "REJ-MULTIPART", False),
    ("780", "DLT-INV-TMID", False), ("781", "DLT-INV-ENTITY", False),
    ("782", "DLT-INV-TM-ID", False), ("783", "DLT-TM-VAR-EXECEED", False),
    ("784", "DLT-ENTITY-NOT-FOUND", False), ("785", "DLT-TM-BLACKLST", False),
    ("786", "DLT-ENTITY-BLACKLST", False), ("787", "DLT-HEADER-INACTIVE", False),
    ("788", "DLT-TM-INACTIVE", False), ("789", "DLT-SENDER-NOT-REG-TM", False),
    ("790", "INV-PROVISION", False), ("791", "INV-SERVICE", False),
    ("792", "INV-SCHEDULE", False),
]  # fmt: skip
# Network and handset failures are undeliverable; platform and DLT refusals rejected.
QIKBERRY_UNDELIVERABLE = {f"{c:03d}" for c in [*range(1, 18), 19, 20, 34, 45, 99, 461, 462, 778]}


def test_qikberry_table_has_exactly_the_documented_codes() -> None:
    assert set(QIKBERRY_ERRORS) == {"000"} | {code for code, _, _ in QIKBERRY_ROWS}


def test_qikberry_delivered() -> None:
    r = parse_receipt(deliver(appendix_b("a1b2c3", "DELIVRD", "000")), "qikberry")
    assert r.outcome is OUT.DELIVERED and r.final
    assert r.error is not None and r.error.ok and r.error.text == "DELIVRD"
    assert r.transient is False


@pytest.mark.parametrize(("code", "word", "transient"), QIKBERRY_ROWS, ids=lambda v: str(v))
def test_qikberry_error_code(code: str, word: str, transient: bool) -> None:
    # The stat word varies by route: Qikberry may send the code's own word.
    r = parse_receipt(deliver(appendix_b("a1b2c3", word, code)), "qikberry")
    assert (r.stat, r.err) == (word, code)
    assert r.error is not None
    assert (r.error.code, r.error.text, r.error.transient) == (code, word, transient)
    assert r.error.description and not r.error.ok
    assert r.transient is transient
    assert r.final is (r.message_state is not MS.ENROUTE)
    if word == "EXPIRED":
        expected = OUT.EXPIRED
    elif word == "REJECTED":
        expected = OUT.REJECTED  # the standard §5.2.28 word wins
    elif word == "UNDELIV" or code in QIKBERRY_UNDELIVERABLE:
        expected = OUT.UNDELIVERABLE
    else:
        expected = OUT.REJECTED
    assert r.outcome is expected
    assert r.error.alert is (code in {"401", "402"})


@pytest.mark.parametrize(("code", "word", "transient"), QIKBERRY_ROWS, ids=lambda v: str(v))
def test_qikberry_error_code_with_standard_stat(code: str, word: str, transient: bool) -> None:
    # Other routes send the Appendix B word: the stat decides the state, err the detail.
    r = parse_receipt(deliver(appendix_b("a1b2c3", "UNDELIV", code)), "qikberry")
    assert r.outcome is OUT.UNDELIVERABLE
    assert r.error is not None and r.error.text == word
    assert r.transient is transient


def test_qikberry_unpadded_err_and_unknown_word() -> None:
    r = parse_receipt(deliver("id:9 stat:XYZ err:13"), "qikberry")
    assert r.error is not None and r.error.code == "013" and r.error.text == "MOB-OFF"
    assert r.err == "13"  # as received
    assert r.outcome is OUT.UNDELIVERABLE and r.transient is True


def test_qikberry_known_word_with_unknown_err() -> None:
    r = parse_receipt(deliver("id:9 stat:MOB-OFF err:999"), "qikberry")
    assert r.outcome is OUT.UNDELIVERABLE
    assert r.error is not None and r.error.transient is None
    assert r.transient is False  # falls back to the outcome: undeliverable


def test_describe_error() -> None:
    assert describe_error("qikberry", "463").text == "THROTTLED"
    assert describe_error("qikberry", " 9 ").code == "009"
    unknown = describe_error("qikberry", "555")
    assert (unknown.code, unknown.transient, unknown.ok) == ("555", None, False)
    assert describe_error("standard", "0").ok
    assert describe_error("standard", "0x0B").transient is None
    assert describe_error("wavy", "000").text == "SUCCESS"
    assert describe_error("wavy", "000", stat="acceptd").text == "SENT_SUCCESS"
    assert describe_error("wavy", "000", stat="DELIVRD").text == "DELIVERED_SUCCESS"
    assert describe_error("wavy", "104").text == "NOT_DELIVERED"
    with pytest.raises(ValueError):
        describe_error("kannel", "000")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_receipt(deliver(appendix_b()), "kannel")  # type: ignore[arg-type]


def test_standard_failures_without_a_table() -> None:
    assert parse_receipt(deliver("id:1 stat:EXPIRED err:027")).transient is True
    assert parse_receipt(deliver("id:1 stat:UNDELIV err:027")).transient is False
    assert parse_receipt(deliver("id:1 stat:WHAT err:027")).transient is None


# --- malformed and hostile input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [b"", b"stat:DELIVRD err:000", b"id: stat:DELIVRD", b"\xff\xfe\x00garbage", b"id:\0"],
)
def test_no_message_id_anywhere_is_a_receipt_error(text: bytes) -> None:
    with pytest.raises(ReceiptError) as info:
        parse_receipt(deliver(text))
    assert isinstance(info.value, ValueError) and isinstance(info.value, SmppgwError)
    assert "no message id" in str(info.value)


def test_receipt_error_does_not_quote_the_message_text() -> None:
    with pytest.raises(ReceiptError) as info:
        parse_receipt(deliver("stat:DELIVRD text:secret code 4711"))
    assert "4711" not in str(info.value)


def test_garbage_text_with_a_tlv_id_still_parses() -> None:
    r = parse_receipt(deliver(b"\x00\x01\x02 junk", Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "z9")))
    assert r.message_id == "z9" and r.outcome is OUT.UNKNOWN and r.final is False


def test_one_megabyte_receipt_parses_in_one_pass() -> None:
    # Linear-time parsing: a hostile SMSC's 1 MB receipt must not hang the session.
    body = "x: " * 350_000
    r = parse_receipt(deliver(f"id:big {body}stat:DELIVRD err:000 text:{body}"))
    assert r.message_id == "big"
    assert r.stat == "DELIVRD"
    assert r.text is not None and len(r.text) == len(body.strip())


@pytest.mark.parametrize(
    "text",
    [
        " " * 1_000_000,
        "submit" + " " * 1_000_000,
        "id" + " \t" * 500_000,
        "stat:" * 200_000,
        "submit " * 150_000,
        "id:" + "9" * 1_000_000,
        "a" * 1_000_000,
        "id:1 " + "done_" * 200_000 + "date",
    ],
    ids=["blanks", "submit-blanks", "id-blanks", "stat-repeated", "submit-repeated",
         "long-id", "letters", "done-underscores"],
)  # fmt: skip
def test_hostile_megabyte_inputs_give_a_result(text: str) -> None:
    fields = parse_receipt_text(text)
    assert set(fields) <= set(TEXT_FIELDS)
    if text.startswith("id:"):
        assert fields["id"].startswith(("1", "9"))


@given(st.text(max_size=400))
def test_parse_receipt_text_never_raises_on_random_text(text: str) -> None:
    fields = parse_receipt_text(text)
    assert set(fields) <= set(TEXT_FIELDS)
    assert all(isinstance(v, str) for v in fields.values())


_KEYWORDISH = st.sampled_from(
    ["id:", "ID:", "sub:", "dlvrd:", "submit date:", "done_date:", "stat:", "err:", "text:",
     " ", "\t", "\0", ":", "DELIVRD", "2301011200", "-", "é", "x"]
)  # fmt: skip


@given(st.lists(_KEYWORDISH, max_size=60).map("".join))
def test_parse_receipt_text_never_raises_on_field_soup(text: str) -> None:
    assert set(parse_receipt_text(text)) <= set(TEXT_FIELDS)


@given(
    st.binary(max_size=300),
    st.integers(0, 255),
    st.integers(0, 255),
    st.lists(
        st.tuples(
            st.sampled_from([0x001E, 0x0427, 0x0423, 0x0424, 0x1403, 0x1404, 0x1405, 0x1406]),
            st.binary(max_size=8),
        ),
        max_size=6,
    ),
    st.sampled_from(["standard", "wavy", "qikberry"]),
)
def test_parse_receipt_raises_only_receipt_error(
    short_message: bytes,
    esm_class: int,
    data_coding: int,
    tlvs: list[tuple[int, bytes]],
    style: Any,
) -> None:
    pdu = DeliverSm(
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tuple(Tlv(tag, raw) for tag, raw in tlvs),
    )
    try:
        r = parse_receipt(pdu, style)
    except ReceiptError:
        return
    assert r.message_id
    json.dumps(r.as_dict())


_TOKEN = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=":"),
    min_size=1,
    max_size=12,
)


@given(
    st.permutations(["id", "sub", "dlvrd", "submit date", "done date", "stat", "err"]),
    st.lists(_TOKEN, min_size=7, max_size=7),
)
def test_fields_in_any_order_round_trip(order: list[str], values: list[str]) -> None:
    text = " ".join(f"{name}:{value}" for name, value in zip(order, values))
    fields = parse_receipt_text(text + " text:tail: end")
    expected = {name.replace(" ", "_"): value for name, value in zip(order, values)}
    expected["text"] = "tail: end"
    assert fields == expected


# The anchored match for the exact Appendix B layout must agree with the tokenizer wherever it
# matches: values that hold field names, dashes, blanks, NULs and odd case included.
_VALUE_SOUP = st.lists(
    st.sampled_from(["1", "x", "-", "_", "sub", "id", "msg", "done", "date", "err", "text",
                     "stat", "status", "submit", " ", "\t", ":", "\0", "é", "DELIVRD",
                     "-sub:", "_id:", "-err:", " stat:", "x:", "-text:"]),
    max_size=6,
).map("".join)  # fmt: skip


@settings(max_examples=300)
@given(
    st.lists(_VALUE_SOUP, min_size=8, max_size=8),
    st.lists(st.sampled_from(["", "\0", "\0\0", " "]), min_size=1, max_size=1),
    st.booleans(),
)
def test_standard_layout_agrees_with_the_tokenizer(
    values: list[str], tail: list[str], upper: bool
) -> None:
    names = ["id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"]
    if upper:
        names = [name.upper() for name in names]
    text = " ".join(f"{name}:{value}" for name, value in zip(names, values)) + tail[0]
    end = len(text.rstrip("\0"))
    assert parse_receipt_text(text) == receipt_module._tokenize_receipt_text(text, end)


def test_standard_layout_is_read_by_the_anchored_match() -> None:
    text = appendix_b()
    assert receipt_module._STANDARD_TEXT.fullmatch(text) is not None
    assert parse_receipt_text(text) == receipt_module._tokenize_receipt_text(text, len(text))


# --- correlation keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "fmt", "key"),
    [
        ("00001A2B", "hex", "1a2b"),
        ("1a2b", "hex", "1a2b"),
        ("6699", "decimal", "1a2b"),  # same number, other base: same key
        ("0006699", "decimal", "1a2b"),
        ("0", "decimal", "0"),
        (" 6699\0", "decimal", "1a2b"),
        (WAVY_ID.upper(), "uuid", WAVY_ID),
        (WAVY_ID.replace("-", ""), "uuid", WAVY_ID),
        ("not-a-uuid", "uuid", "not-a-uuid"),
        ("AbC-12", "text", "AbC-12"),  # case kept: it may matter
        ("xyz", "hex", "xyz"),  # not hex: kept as sent
        ("12ab", "decimal", "12ab"),
        ("f" * 65, "hex", "f" * 65),  # longer than a message_id can be: not a number
        ("", "hex", ""),
    ],
)
def test_message_id_key(message_id: str, fmt: Any, key: str) -> None:
    assert message_id_key(message_id, fmt) == key


def test_hex_submit_id_matches_decimal_receipt_id() -> None:
    # The store keys submit_sm_resp ids with the profile's format and tries the variants.
    stored = message_id_key("1A2B", "hex")
    assert stored in message_id_variants("6699", "hex")
    assert message_id_variants("6699", "hex")[0] == "6699"  # the profile's reading first
    stored = message_id_key("6699", "decimal")
    assert stored in message_id_variants("00001a2b", "decimal")


def test_message_id_variants_order_and_no_duplicates() -> None:
    assert message_id_variants("0010", "decimal") == ("a", "10", "0010")
    assert message_id_variants("abc", "hex") == ("abc",)  # not decimal: one reading
    assert message_id_variants(WAVY_ID, "uuid") == (WAVY_ID,)
    assert message_id_variants("ab-C", "text") == ("ab-C",)


def test_receipt_as_dict_is_json() -> None:
    pdu = wavy_pdu(next(row for row in WAVY_ROWS if row[0] == "UNDELIV"))
    r = parse_receipt(
        deliver(pdu.short_message, *pdu.tlvs, Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x01")),
        "wavy",
    )
    data = json.loads(json.dumps(r.as_dict()))
    assert data["outcome"] == "undeliverable"
    assert data["message_state"] == "UNDELIVERABLE"
    assert data["submit_date"] == "2023-01-01T12:00:00Z"
    assert data["network_error_code"] == {"network_type": 3, "error_code": 1}
    assert data["vendor"]["delivered_status"] == "NOT_DELIVERED"
    assert data["error"]["transient"] is True and data["transient"] is True


def test_receipt_is_a_frozen_value() -> None:
    r = parse_receipt(deliver(appendix_b()))
    assert r == parse_receipt(deliver(appendix_b()))
    with pytest.raises(AttributeError):
        r.stat = "X"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.vendor["x"] = 1  # type: ignore[index]
    assert isinstance(r, Receipt)


def test_parsed_receipt_is_an_ordinary_frozen_receipt() -> None:
    # parse_receipt builds on a writable twin (pdu.writable_twin), then retypes it: every
    # field set, the type exact, frozen, equal to a Receipt built by its constructor.
    r = parse_receipt(wavy_pdu(WAVY_ROWS[-1]), "wavy")
    assert type(r) is Receipt
    assert r == Receipt(**{f.name: getattr(r, f.name) for f in dataclasses.fields(Receipt)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.stat = "x"  # type: ignore[misc]
