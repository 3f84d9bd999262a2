"""A part's way out as tables: stored part → submit_sm, and every kind of answer → one decision
for the part and one for the bind (the status table consulted once, in flow/outbound.py)."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.flow.outbound import (
    SEND_AGAIN_LIMIT,
    BindAction,
    PartFate,
    decide_answer,
    decide_encoding_error,
    decide_unanswered,
    part_submit_sm,
    validity_period,
)
from smppgw.flow.reasons import LinkFailure
from smppgw.profiles import GENERIC
from smppgw.smpp.codec import encode
from smppgw.smpp.constants import CommandStatus, Tag
from smppgw.smpp.status import STATUS_TABLE

S = CommandStatus
PROFILE = dataclasses.replace(GENERIC, default_ton=1, default_npi=1)


@dataclass(frozen=True)
class Part:
    source: str = "Acme"
    destination: str = "5511999990000"
    esm_class: int = 0
    registered_delivery: int = 1
    valid_until_wall: float | None = None
    data_coding: int = 0
    short_message: bytes = b"hello"
    tlvs: tuple[tuple[int, bytes], ...] = ()


# --- the submit_sm ------------------------------------------------------------------------------


def test_validity_period_is_absolute_utc_per_smpp_7_1_1() -> None:
    moment = datetime.datetime(2026, 3, 9, 14, 5, 7, tzinfo=datetime.UTC).timestamp()
    assert validity_period(moment) == "260309140507000+"
    assert validity_period(moment + 0.999) == "260309140507000+"  # whole seconds, truncated
    assert validity_period(None) == ""


@given(st.floats(0, 4_102_444_800 * 2, allow_nan=False))  # 1970 .. 2230
def test_validity_period_agrees_with_the_calendar(wall: float) -> None:
    moment = datetime.datetime.fromtimestamp(int(wall), datetime.UTC)
    assert validity_period(wall) == moment.strftime("%y%m%d%H%M%S") + "000+"


@pytest.mark.parametrize(
    ("source", "ton", "npi", "source_addr"),
    [
        ("Acme", 5, 0, "Acme"),  # alphanumeric: SMPP 3.4 §5.2.5 TON 5, NPI unknown
        ("+5511999990000", 1, 1, "5511999990000"),
        ("29999", 1, 1, "29999"),
        ("", 1, 1, ""),
    ],
)
def test_sender_address_plan(source: str, ton: int, npi: int, source_addr: str) -> None:
    pdu = part_submit_sm(PROFILE, Part(source=source))
    assert (pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr) == (ton, npi, source_addr)
    assert (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)


def test_every_stored_field_reaches_the_pdu_and_tlvs_keep_their_order() -> None:
    part = Part(esm_class=0x40, registered_delivery=0, valid_until_wall=0.0, data_coding=8,
                short_message=b"\x05\x00\x03\x01\x02\x01body",
                tlvs=((0x1400, b"dlt"), (Tag.SAR_MSG_REF_NUM, b"\x00\x01")))
    pdu = part_submit_sm(PROFILE, part)
    assert (pdu.esm_class, pdu.registered_delivery, pdu.data_coding) == (0x40, 0, 8)
    assert pdu.validity_period == "700101000000000+"
    assert pdu.short_message == part.short_message
    assert [(t.tag, t.raw) for t in pdu.tlvs] == list(part.tlvs)
    assert encode(pdu)  # encodable as built


# --- answers ------------------------------------------------------------------------------------


def test_ok_with_a_message_id() -> None:
    decision = decide_answer(S.ESME_ROK, "abc123", attempts=0)
    assert (decision.fate, decision.bind, decision.message_id) == (
        PartFate.SUBMITTED, BindAction.KEEP, "abc123")
    assert not decision.unmatchable and decision.fate.continues == "next"


@pytest.mark.parametrize("message_id", ["", None])
def test_ok_with_an_empty_message_id_is_submitted_but_unmatchable(message_id: str | None) -> None:
    decision = decide_answer(S.ESME_ROK, message_id, attempts=0)
    assert decision.fate is PartFate.SUBMITTED and decision.unmatchable
    assert decision.message_id is None
    assert "empty message_id" in decision.reason


@pytest.mark.parametrize(
    ("status", "bind"),
    [
        (S.ESME_RTHROTTLED, BindAction.LOWER_RATE),
        (S.ESME_RMSGQFUL, BindAction.SHRINK_WINDOW),
        (S.ESME_RINVBNDSTS, BindAction.REBIND),
        (S.ESME_RINVSYSID, BindAction.REBIND),
        (S.ESME_RBINDFAIL, BindAction.REBIND),
        (S.ESME_RALYBND, BindAction.REBIND),
    ],
)
def test_flow_control_and_bind_statuses_send_the_same_part_again(
    status: int, bind: BindAction
) -> None:
    decision = decide_answer(status, None, attempts=3)
    assert (decision.fate, decision.bind) == (PartFate.SEND_AGAIN, bind)
    assert decision.fate.continues == "same" and decision.retry_in is None


def test_a_bind_status_on_a_submit_rebinds_on_that_statuss_curve() -> None:
    assert decide_answer(S.ESME_RINVSYSID, None, attempts=0).rebind == LinkFailure(
        "bind_rejected_credentials", "rebind_status")
    assert decide_answer(S.ESME_RINVBNDSTS, None, attempts=0).rebind == LinkFailure(
        "closed", "rebind_status")
    assert decide_answer(S.ESME_RTHROTTLED, None, attempts=0).rebind is None


def test_send_again_is_bounded_then_the_part_goes_back_to_the_store() -> None:
    last = decide_answer(S.ESME_RTHROTTLED, None, attempts=2, sent_again=SEND_AGAIN_LIMIT - 2)
    assert last.fate is PartFate.SEND_AGAIN
    over = decide_answer(S.ESME_RTHROTTLED, None, attempts=2, sent_again=SEND_AGAIN_LIMIT - 1)
    assert (over.fate, over.bind, over.retry_in) == (PartFate.RETRY, BindAction.LOWER_RATE, 4.0)
    assert "10 times in a row" in over.reason


@pytest.mark.parametrize(
    ("status", "attempts", "fate", "retry_in"),
    [
        (S.ESME_RSYSERR, 0, PartFate.RETRY, 1.0),
        (S.ESME_RSYSERR, 5, PartFate.RETRY, 32.0),
        (S.ESME_RX_T_APPN, 20, PartFate.RETRY, 300.0),
        (S.ESME_RSUBMITFAIL, 0, PartFate.RETRY, 1.0),
        (S.ESME_RSUBMITFAIL, 2, PartFate.FAIL, None),  # retry_limit 3
        (S.ESME_RUNKNOWNERR, 2, PartFate.FAIL, None),
        (0x0000_0456, 1, PartFate.RETRY, 2.0),  # vendor code no table knows
        (S.ESME_RINVDSTADR, 0, PartFate.FAIL, None),
        (S.ESME_RINVMSGLEN, 0, PartFate.FAIL, None),
    ],
)
def test_transient_and_permanent_answers(
    status: int, attempts: int, fate: PartFate, retry_in: float | None
) -> None:
    decision = decide_answer(status, None, attempts=attempts)
    assert (decision.fate, decision.retry_in, decision.bind) == (fate, retry_in, BindAction.KEEP)
    assert decision.fate.continues == "stop"
    assert decision.status is not None and decision.status.status == status


@pytest.mark.parametrize(
    ("status", "refusing"),
    [
        (S.ESME_RINVBALANCE, True),  # Qikberry 0x040B: insufficient credits
        (0x00000100, True),  # ESME_RSERTYPUNAUTH
        (0x00000101, True),  # ESME_RPROHIBITED
        (S.ESME_RINVDSTADR, False),  # this message's fault, not the account's
    ],
)
def test_account_level_refusals_tell_the_providers_health(status: int, refusing: bool) -> None:
    decision = decide_answer(status, None, attempts=0)
    assert decision.fate is PartFate.FAIL and decision.refusing is refusing


def test_every_row_of_the_status_table_has_a_decision() -> None:
    for status, row in STATUS_TABLE.items():
        decision = decide_answer(status, "id", attempts=0)
        if row.is_ok:
            assert decision.fate is PartFate.SUBMITTED
        elif row.reconnect or row.slow_down:
            assert decision.fate is PartFate.SEND_AGAIN and decision.bind is not BindAction.KEEP
        elif row.is_permanent:
            assert decision.fate is PartFate.FAIL
        else:
            assert decision.fate in (PartFate.RETRY, PartFate.FAIL)


@pytest.mark.parametrize(
    ("cause", "attempts", "fate", "retry_in"),
    [
        ("connection_lost", 0, PartFate.RETRY, 1.0),
        ("timeout", 6, PartFate.RETRY, 5.0),
        ("closing", 3, PartFate.RELEASE, None),
        ("no_bind", 0, PartFate.RELEASE, None),
        ("withdrawn", 0, PartFate.RELEASE, None),   # paused or cancelled before it was written
    ],
)
def test_no_answer(cause: str, attempts: int, fate: PartFate, retry_in: float | None) -> None:
    decision = decide_unanswered(cause, attempts=attempts)  # type: ignore[arg-type]
    assert (decision.fate, decision.retry_in) == (fate, retry_in)
    assert decision.status is None


def test_a_part_our_encoder_refuses_fails() -> None:
    decision = decide_encoding_error("source_addr longer than 20 octets")
    assert decision.fate is PartFate.FAIL
    assert decision.status_name == "ENCODING"
    assert decision.reason == "the submit_sm does not encode: source_addr longer than 20 octets"
