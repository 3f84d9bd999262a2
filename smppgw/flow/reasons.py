"""ONE map from why a bind went down to what smppgw does about it: the backoff curve
(FailureKind, policy.py) and the ``reason`` label of ``smppgw_reconnects_total``.

Pure: values in, values out. The pool translates exceptions at its boundary (STYLE.md §4) into
a ConnectFault and hands the session's CloseReason or the SMSC's status here; nothing else
names a failure kind or a reason label.
"""

# The map
# =======
#
#   what happened                          FailureKind (curve)         reason label
#   -------------------------------------  --------------------------  ---------------------
#   the bind cannot be built here          local                       local
#     (certificate file, a bad setting)
#   name resolution failed                 dns                         dns
#   TCP connect timed out                  timeout                     timeout
#   TCP connect refused / unreachable      network                     connect_refused
#   TLS handshake, certificate or pin      tls                         tls
#   bind_resp ESME_RINVPASWD/RINVSYSID     bind_rejected_credentials   bind_rejected
#   bind_resp ESME_RTHROTTLED              throttled                   bind_rejected
#   bind_resp any other error              bind_rejected               bind_rejected
#   submit answered by a `reconnect` row   by the status, as a bind    rebind_status
#     of smpp/status.py (ESME_RINVBNDSTS,  refusal would be; closed
#     ESME_RINVSYSID, ESME_RBINDFAIL ...)  for ESME_RINVBNDSTS
#   session Closed(reason)                 LINK_CLOSED below           LINK_CLOSED below
#
# A timeout of any kind takes the timeout curve, a stream we cannot parse the protocol curve
# (the SMSC will not get better in a second), everything else the short closed curve.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal

from smppgw.flow.policy import FailureKind
from smppgw.smpp import status as status_table
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.events import CloseReason

__all__ = [
    "LINK_CLOSED",
    "RECONNECT_REASONS",
    "ConnectFault",
    "LinkFailure",
    "ReconnectReason",
    "bind_rejected",
    "connect_failed",
    "link_closed",
    "rebind_for_status",
]

ReconnectReason = Literal[
    "local",
    "connect_refused",
    "dns",
    "tls",
    "timeout",
    "bind_rejected",
    "rebind_status",
    "peer_closed",
    "enquire_link_timeout",
    "frame_error",
    "unbound",
    "other",
]
#: Every value of the ``reason`` label; metrics create each series at 0.
RECONNECT_REASONS: Final[tuple[ReconnectReason, ...]] = (
    "local",
    "connect_refused",
    "dns",
    "tls",
    "timeout",
    "bind_rejected",
    "rebind_status",
    "peer_closed",
    "enquire_link_timeout",
    "frame_error",
    "unbound",
    "other",
)


class ConnectFault(Enum):
    """What went wrong before a session existed; the pool's translation of OSError,
    ssl.SSLError and TimeoutError at its boundary."""

    LOCAL = "local"  # the bind cannot be built: TLS files, a setting the session refuses
    DNS = "dns"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_REFUSED = "connect_refused"  # any other OSError from connect
    TLS = "tls"  # handshake failed, certificate rejected, pin mismatch


@dataclass(frozen=True, slots=True)
class LinkFailure:
    """Why a bind is down, as the two things that act on it read it."""

    kind: FailureKind  # which backoff curve (policy.DEFAULT_POLICIES)
    reason: ReconnectReason  # the label of smppgw_reconnects_total


_CONNECT: Final[Mapping[ConnectFault, LinkFailure]] = MappingProxyType({
    ConnectFault.LOCAL: LinkFailure("local", "local"),
    ConnectFault.DNS: LinkFailure("dns", "dns"),
    ConnectFault.CONNECT_TIMEOUT: LinkFailure("timeout", "timeout"),
    ConnectFault.CONNECT_REFUSED: LinkFailure("network", "connect_refused"),
    ConnectFault.TLS: LinkFailure("tls", "tls"),
})

#: Session Closed(reason) → LinkFailure. BIND_REJECTED is here for completeness: the
#: BindRejected event before it carries the status, and bind_rejected() decides from that.
LINK_CLOSED: Final[Mapping[CloseReason, LinkFailure]] = MappingProxyType({
    CloseReason.PEER_CLOSED: LinkFailure("closed", "peer_closed"),
    CloseReason.LOCAL_CLOSE: LinkFailure("closed", "other"),
    CloseReason.BIND_REJECTED: LinkFailure("bind_rejected", "bind_rejected"),
    CloseReason.BIND_TIMEOUT: LinkFailure("timeout", "timeout"),
    CloseReason.ENQUIRE_LINK_TIMEOUT: LinkFailure("timeout", "enquire_link_timeout"),
    CloseReason.TOO_MANY_TIMEOUTS: LinkFailure("timeout", "timeout"),
    CloseReason.FRAME_ERROR: LinkFailure("protocol", "frame_error"),
    CloseReason.UNBOUND: LinkFailure("closed", "unbound"),
    CloseReason.PEER_UNBOUND: LinkFailure("closed", "unbound"),
    CloseReason.UNBIND_TIMEOUT: LinkFailure("timeout", "timeout"),
    CloseReason.DRAIN_TIMEOUT: LinkFailure("timeout", "timeout"),
})

# A wrong password or system_id must stay on the slow curve (some providers lock the
# account after a few failed binds), wherever the SMSC says it.
_CREDENTIALS: Final = frozenset({CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID})


def connect_failed(fault: ConnectFault) -> LinkFailure:
    return _CONNECT[fault]


def link_closed(reason: CloseReason) -> LinkFailure:
    return LINK_CLOSED[reason]


def bind_rejected(status: int) -> LinkFailure:
    """The SMSC answered our bind with ``status`` (non-zero)."""
    if status in _CREDENTIALS:
        return LinkFailure("bind_rejected_credentials", "bind_rejected")
    if status == CommandStatus.ESME_RTHROTTLED:
        return LinkFailure("throttled", "bind_rejected")
    return LinkFailure("bind_rejected", "bind_rejected")


def rebind_for_status(status: int) -> LinkFailure:
    """The SMSC answered a submit with a status whose row says ``reconnect``: the bind is
    dropped and bound again, as slowly as a bind refused with that status would be retried
    (ESME_RINVBNDSTS, "our idea of the bind differs from the SMSC's", on the short curve)."""
    row = status_table.classify(status)
    if not row.reconnect:
        raise ValueError(f"{row.name} does not call for a new bind")
    kind = bind_rejected(status).kind if row.is_bind_fatal else "closed"
    return LinkFailure(kind, "rebind_status")
