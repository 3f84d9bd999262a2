"""The one map from a bind's failure to its backoff curve and metric label, as tables."""

from __future__ import annotations

import pytest

from smppgw.flow import policy
from smppgw.flow.reasons import (
    LINK_CLOSED,
    RECONNECT_REASONS,
    ConnectFault,
    LinkFailure,
    bind_rejected,
    connect_failed,
    link_closed,
    rebind_for_status,
)
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.events import CloseReason
from smppgw.smpp.status import STATUS_TABLE

S = CommandStatus


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (ConnectFault.LOCAL, LinkFailure("local", "local")),
        (ConnectFault.DNS, LinkFailure("dns", "dns")),
        (ConnectFault.CONNECT_TIMEOUT, LinkFailure("timeout", "timeout")),
        (ConnectFault.CONNECT_REFUSED, LinkFailure("network", "connect_refused")),
        (ConnectFault.TLS, LinkFailure("tls", "tls")),
    ],
)
def test_connect_faults(fault: ConnectFault, expected: LinkFailure) -> None:
    assert connect_failed(fault) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (CloseReason.PEER_CLOSED, LinkFailure("closed", "peer_closed")),
        (CloseReason.LOCAL_CLOSE, LinkFailure("closed", "other")),
        (CloseReason.BIND_REJECTED, LinkFailure("bind_rejected", "bind_rejected")),
        (CloseReason.BIND_TIMEOUT, LinkFailure("timeout", "timeout")),
        (CloseReason.ENQUIRE_LINK_TIMEOUT, LinkFailure("timeout", "enquire_link_timeout")),
        (CloseReason.TOO_MANY_TIMEOUTS, LinkFailure("timeout", "timeout")),
        (CloseReason.FRAME_ERROR, LinkFailure("protocol", "frame_error")),
        (CloseReason.UNBOUND, LinkFailure("closed", "unbound")),
        (CloseReason.PEER_UNBOUND, LinkFailure("closed", "unbound")),
        (CloseReason.UNBIND_TIMEOUT, LinkFailure("timeout", "timeout")),
        (CloseReason.DRAIN_TIMEOUT, LinkFailure("timeout", "timeout")),
    ],
)
def test_every_close_reason(reason: CloseReason, expected: LinkFailure) -> None:
    assert link_closed(reason) == expected


def test_the_close_table_covers_every_reason() -> None:
    assert set(LINK_CLOSED) == set(CloseReason)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.ESME_RINVPASWD, "bind_rejected_credentials"),
        (S.ESME_RINVSYSID, "bind_rejected_credentials"),
        (S.ESME_RTHROTTLED, "throttled"),
        (S.ESME_RBINDFAIL, "bind_rejected"),
        (S.ESME_RALYBND, "bind_rejected"),
        (S.ESME_RINVSYSTYP, "bind_rejected"),
        (S.ESME_RSYSERR, "bind_rejected"),
        (0x0000040B, "bind_rejected"),
    ],
)
def test_bind_refusals(status: int, kind: str) -> None:
    assert bind_rejected(status) == LinkFailure(kind, "bind_rejected")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.ESME_RINVBNDSTS, "closed"),
        (S.ESME_RINVSYSID, "bind_rejected_credentials"),
        (S.ESME_RINVPASWD, "bind_rejected_credentials"),
        (S.ESME_RBINDFAIL, "bind_rejected"),
        (S.ESME_RALYBND, "bind_rejected"),
        (S.ESME_RINVSYSTYP, "bind_rejected"),
    ],
)
def test_a_submit_answered_by_a_reconnect_row_rebinds_on_that_rows_curve(
    status: int, kind: str
) -> None:
    assert rebind_for_status(status) == LinkFailure(kind, "rebind_status")  # type: ignore[arg-type]


def test_every_reconnect_row_has_a_rebind_and_no_other_row_does() -> None:
    for status, row in STATUS_TABLE.items():
        if row.reconnect:
            assert rebind_for_status(status).reason == "rebind_status"
        else:
            with pytest.raises(ValueError, match=row.name):
                rebind_for_status(status)


def test_every_kind_has_a_curve_and_every_label_is_known() -> None:
    failures = [*map(connect_failed, ConnectFault), *LINK_CLOSED.values(),
                *(bind_rejected(s) for s in (S.ESME_RINVPASWD, S.ESME_RTHROTTLED, 0x45)),
                *(rebind_for_status(s) for s, row in STATUS_TABLE.items() if row.reconnect)]
    for failure in failures:
        assert failure.kind in policy.DEFAULT_POLICIES
        assert failure.reason in RECONNECT_REASONS
    assert set(policy.FAILURE_KINDS) == {f.kind for f in failures}
