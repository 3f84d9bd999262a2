"""The command_status table (smppgw.smpp.status): SMPP 3.4 §5.1.3 plus PROVIDERS.md codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.status import (
    STATUS_TABLE,
    UNKNOWN_RETRY_LIMIT,
    StatusClass,
    StatusKind,
    classify,
)

S = CommandStatus

TRANSIENT = [
    S.ESME_RINVBNDSTS,
    S.ESME_RSYSERR,
    S.ESME_RMSGQFUL,
    S.ESME_RSUBMITFAIL,
    S.ESME_RTHROTTLED,
    S.ESME_RX_T_APPN,
    S.ESME_RDELIVERYFAILURE,
    S.ESME_RUNKNOWNERR,
]
BIND_FATAL = [
    S.ESME_RALYBND,
    S.ESME_RBINDFAIL,
    S.ESME_RINVPASWD,
    S.ESME_RINVSYSID,
    S.ESME_RINVSYSTYP,
]
PERMANENT = [
    s for s in CommandStatus if s not in TRANSIENT and s not in BIND_FATAL and s != S.ESME_ROK
]


def test_every_command_status_has_a_row_under_its_spec_name() -> None:
    for status in CommandStatus:
        row = STATUS_TABLE[status]
        assert row.status == status
        assert row.name == status.name
        assert row.description


def test_every_row_is_consistent() -> None:
    for code, row in STATUS_TABLE.items():
        assert row.status == code
        assert row.description and row.description == row.description.strip()
        assert row.name.startswith("ESME_")
        # A retry limit only means something for a retried status.
        assert row.retry_limit is None or row.kind is StatusKind.TRANSIENT
        assert not row.slow_down or row.kind is StatusKind.TRANSIENT
        if row.kind is StatusKind.BIND_FATAL:
            assert row.reconnect


def test_rok_is_ok() -> None:
    row = classify(0)
    assert row.kind is StatusKind.OK and row.is_ok
    assert not (row.is_transient or row.is_permanent or row.is_bind_fatal)


@pytest.mark.parametrize("status", TRANSIENT, ids=lambda s: s.name)
def test_transient(status: CommandStatus) -> None:
    assert classify(status).kind is StatusKind.TRANSIENT
    assert classify(status).is_transient


@pytest.mark.parametrize("status", BIND_FATAL, ids=lambda s: s.name)
def test_bind_fatal(status: CommandStatus) -> None:
    assert classify(status).kind is StatusKind.BIND_FATAL
    assert classify(status).is_bind_fatal


@pytest.mark.parametrize("status", PERMANENT, ids=lambda s: s.name)
def test_permanent(status: CommandStatus) -> None:
    assert classify(status).kind is StatusKind.PERMANENT
    assert classify(status).is_permanent


def test_invalid_bind_status_retries_elsewhere_and_rebinds() -> None:
    # Our bind state differs from the SMSC's: the message is fine, the bind is not.
    row = classify(S.ESME_RINVBNDSTS)
    assert row.kind is StatusKind.TRANSIENT and row.reconnect and row.retry_limit is None


@pytest.mark.parametrize("status", [S.ESME_RTHROTTLED, S.ESME_RMSGQFUL])
def test_throttling_statuses_ask_to_slow_down_and_retry_until_validity(
    status: CommandStatus,
) -> None:
    row = classify(status)
    assert row.slow_down and row.retry_limit is None and not row.reconnect


@pytest.mark.parametrize(
    "status", [S.ESME_RSUBMITFAIL, S.ESME_RUNKNOWNERR, S.ESME_RDELIVERYFAILURE]
)
def test_ambiguous_statuses_are_retried_only_a_few_times(status: CommandStatus) -> None:
    assert classify(status).retry_limit == UNKNOWN_RETRY_LIMIT


def test_qikberry_insufficient_balance_fails_the_message_and_alerts() -> None:
    # PROVIDERS.md: Qikberry's 0x040B ESME_RINVBALANCE, insufficient credits.
    row = classify(0x0000040B)
    assert row.name == "ESME_RINVBALANCE"
    assert row.kind is StatusKind.PERMANENT and row.alert


@pytest.mark.parametrize(
    ("code", "name", "kind"),
    [
        (0x100, "ESME_RSERTYPUNAUTH", StatusKind.PERMANENT),
        (0x101, "ESME_RPROHIBITED", StatusKind.PERMANENT),
        (0x102, "ESME_RSERTYPUNAVAIL", StatusKind.TRANSIENT),
        (0x103, "ESME_RSERTYPDENIED", StatusKind.PERMANENT),
        (0x104, "ESME_RINVDCS", StatusKind.PERMANENT),
        (0x105, "ESME_RINVSRCADDRSUBUNIT", StatusKind.PERMANENT),
        (0x106, "ESME_RINVDSTADDRSUBUNIT", StatusKind.PERMANENT),
    ],
)
def test_smpp50_codes_listed_by_qikberry_are_named(code: int, name: str, kind: StatusKind) -> None:
    row = classify(code)
    assert (row.name, row.kind) == (name, kind)


@pytest.mark.parametrize("code", [0x00000009, 0x00000400, 0x000004FF, 0x00001234, 0xFFFFFFFF])
def test_unknown_codes_are_retried_a_few_times_named_by_hex_and_alert(code: int) -> None:
    # SMPP 3.4 §5.1.3: 0x0400-0x04FF vendor-specific, the rest reserved.
    row = classify(code)
    assert row.status == code
    assert row.name == f"0x{code:08X}"
    assert row.kind is StatusKind.TRANSIENT
    assert row.alert and row.retry_limit == UNKNOWN_RETRY_LIMIT
    assert ("vendor" in row.description) == (0x0400 <= code <= 0x04FF)


def test_rows_are_frozen_values() -> None:
    row = classify(S.ESME_RTHROTTLED)
    with pytest.raises(AttributeError):
        row.kind = StatusKind.PERMANENT  # type: ignore[misc]
    assert row == classify(S.ESME_RTHROTTLED)
    assert isinstance(row, StatusClass)


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        STATUS_TABLE[0] = classify(1)  # type: ignore[index]


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_classify_is_total_and_gives_exactly_one_kind(code: int) -> None:
    row = classify(code)
    flags = [row.is_ok, row.is_transient, row.is_permanent, row.is_bind_fatal]
    assert flags.count(True) == 1
    assert row.name == CommandStatus.name_of(code) or code in STATUS_TABLE
