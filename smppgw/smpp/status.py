"""What an SMSC's command_status means for us: one table, status → ok | transient | permanent |
bind_fatal, with the reason an operator reads. Derived from SMPP 3.4 §5.1.3 and PROVIDERS.md.

Pure data and lookups: no I/O, no clock, no logging. flow/outbound.py reads it once per answer
and decides what happens to the part and to the bind; every column is used there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from smppgw.smpp.constants import CommandStatus

__all__ = [
    "STATUS_TABLE",
    "UNKNOWN_RETRY_LIMIT",
    "StatusClass",
    "StatusKind",
    "classify",
]


class StatusKind(Enum):
    """What to do with the request a status answered.

    How each kind is acted on depends on which request it answers:

    - ``OK``: success.
    - ``TRANSIENT``: on a submit, retry that segment with backoff (on any bind); on a bind,
      reconnect after the normal backoff.
    - ``PERMANENT``: on a submit, fail the message with the status in its history; never
      retried. On a bind it means our bind PDU itself is wrong: treat as ``BIND_FATAL``.
    - ``BIND_FATAL``: the SMSC refuses this account or bind (password, system_id, bind limit):
      long backoff and a loud log, since only an operator can fix it. Seen on a submit, the
      bind is not trusted any more: reconnect with the long backoff and retry the segment
      elsewhere; the message is not failed for it.
    """

    OK = "ok"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    BIND_FATAL = "bind_fatal"


@dataclass(frozen=True, slots=True)
class StatusClass:
    """One row of the table.

    ``name`` is the spec name (``ESME_RTHROTTLED``) or ``0x%08X`` for a code no table knows.
    ``reconnect``: the bind that got this status should be dropped and bound again.
    ``slow_down``: the SMSC says we send too fast; the caller lowers that bind's rate.
    ``alert``: an operator should hear about it even though the gateway carries on (credit
    exhausted, an undocumented code).
    ``retry_limit``: for TRANSIENT rows, the number of tries after which the segment counts as
    failed; None means until its validity period ends. Ambiguous statuses get a small limit.
    """

    status: int
    kind: StatusKind
    name: str
    description: str
    reconnect: bool = False
    slow_down: bool = False
    alert: bool = False
    retry_limit: int | None = None

    @property
    def is_ok(self) -> bool:
        return self.kind is StatusKind.OK

    @property
    def is_transient(self) -> bool:
        return self.kind is StatusKind.TRANSIENT

    @property
    def is_permanent(self) -> bool:
        return self.kind is StatusKind.PERMANENT

    @property
    def is_bind_fatal(self) -> bool:
        return self.kind is StatusKind.BIND_FATAL


# Tries allowed for statuses that do not say whether a retry can help.
UNKNOWN_RETRY_LIMIT = 3

S = CommandStatus
OK = StatusKind.OK
TRANSIENT = StatusKind.TRANSIENT
PERMANENT = StatusKind.PERMANENT
BIND_FATAL = StatusKind.BIND_FATAL


def _row(
    status: int,
    kind: StatusKind,
    description: str,
    *,
    name: str | None = None,
    reconnect: bool = False,
    slow_down: bool = False,
    alert: bool = False,
    retry_limit: int | None = None,
) -> StatusClass:
    return StatusClass(
        status=status,
        kind=kind,
        name=name if name is not None else CommandStatus.name_of(status),
        description=description,
        reconnect=reconnect,
        slow_down=slow_down,
        alert=alert,
        retry_limit=retry_limit,
    )


_ROWS: tuple[StatusClass, ...] = (
    _row(S.ESME_ROK, OK, "no error"),
    # --- our PDU is wrong for this message: sending it again gives the same answer -----------
    _row(S.ESME_RINVMSGLEN, PERMANENT, "message length is invalid (short_message too long)"),
    # A command_length the SMSC rejects is an encoding fault of this one PDU, not of the link.
    _row(S.ESME_RINVCMDLEN, PERMANENT, "command length is invalid"),
    # The SMSC does not offer this command (e.g. submit_multi or data_sm on Qikberry).
    _row(S.ESME_RINVCMDID, PERMANENT, "command id is invalid or not supported by the SMSC"),
    # Our idea of the bind state differs from the SMSC's (e.g. a submit on what it holds as
    # a receiver bind, or a session it dropped behind a proxy): the message is fine, the bind
    # is not. Retry the segment elsewhere and bind this slot again.
    _row(
        S.ESME_RINVBNDSTS,
        TRANSIENT,
        "incorrect bind status for the command; rebinding",
        reconnect=True,
    ),
    # Answer to a bind: the SMSC holds this session, or (as many SMSCs report it) the
    # account's bind limit, as already bound. Stale sessions are reaped slowly: long backoff.
    _row(
        S.ESME_RALYBND,
        BIND_FATAL,
        "already bound (often: the account's bind limit is reached)",
        reconnect=True,
    ),
    _row(S.ESME_RINVPRTFLG, PERMANENT, "priority_flag is invalid"),
    _row(S.ESME_RINVREGDLVFLG, PERMANENT, "registered_delivery flag is invalid"),
    # SMSC-internal failure: nothing wrong with the message (SMPP 3.4 §5.1.3 "System Error").
    _row(S.ESME_RSYSERR, TRANSIENT, "SMSC system error"),
    _row(S.ESME_RINVSRCADR, PERMANENT, "source address is invalid"),
    _row(S.ESME_RINVDSTADR, PERMANENT, "destination address is invalid"),
    _row(S.ESME_RINVMSGID, PERMANENT, "message id is invalid (query/cancel/replace)"),
    _row(S.ESME_RBINDFAIL, BIND_FATAL, "bind failed", reconnect=True),
    _row(S.ESME_RINVPASWD, BIND_FATAL, "invalid password", reconnect=True),
    _row(S.ESME_RINVSYSID, BIND_FATAL, "invalid system_id", reconnect=True),
    _row(S.ESME_RCANCELFAIL, PERMANENT, "cancel_sm failed"),
    _row(S.ESME_RREPLACEFAIL, PERMANENT, "replace_sm failed"),
    # The SMSC's queue (for us or for the destination) is full: back off and slow down.
    _row(S.ESME_RMSGQFUL, TRANSIENT, "message queue full", slow_down=True),
    _row(S.ESME_RINVSERTYP, PERMANENT, "service_type is invalid"),
    _row(S.ESME_RINVNUMDESTS, PERMANENT, "number of destinations is invalid"),
    _row(S.ESME_RINVDLNAME, PERMANENT, "distribution list name is invalid"),
    _row(S.ESME_RINVDESTFLAG, PERMANENT, "destination flag is invalid (submit_multi)"),
    _row(S.ESME_RINVSUBREP, PERMANENT, "submit with replace is invalid"),
    _row(S.ESME_RINVESMCLASS, PERMANENT, "esm_class is invalid"),
    _row(S.ESME_RCNTSUBDL, PERMANENT, "cannot submit to a distribution list"),
    # "submit_sm or submit_multi failed" says nothing of why. Kannel and Jasmin fail the
    # message at once; SMSCs use it as often for an internal hiccup (route down, HLR timeout)
    # as for a verdict on the message, and failing one part of a concatenated message strands
    # the parts already sent. So: retried, but only a few times.
    _row(
        S.ESME_RSUBMITFAIL,
        TRANSIENT,
        "submit failed (no reason given by the SMSC)",
        retry_limit=UNKNOWN_RETRY_LIMIT,
    ),
    _row(S.ESME_RINVSRCTON, PERMANENT, "source address TON is invalid"),
    _row(S.ESME_RINVSRCNPI, PERMANENT, "source address NPI is invalid"),
    _row(S.ESME_RINVDSTTON, PERMANENT, "destination address TON is invalid"),
    _row(S.ESME_RINVDSTNPI, PERMANENT, "destination address NPI is invalid"),
    # Only a bind carries system_type: the configured value is wrong (Wavy wants MovileSMSC,
    # Qikberry smpp). An operator must fix the configuration.
    _row(S.ESME_RINVSYSTYP, BIND_FATAL, "system_type is invalid", reconnect=True),
    _row(S.ESME_RINVREPFLAG, PERMANENT, "replace_if_present flag is invalid"),
    _row(S.ESME_RINVNUMMSGS, PERMANENT, "number of messages is invalid"),
    # Over the account's rate: wait, and lower this bind's rate.
    _row(S.ESME_RTHROTTLED, TRANSIENT, "throttled: sending too fast", slow_down=True),
    _row(S.ESME_RINVSCHED, PERMANENT, "schedule_delivery_time is invalid"),
    _row(S.ESME_RINVEXPIRY, PERMANENT, "validity_period is invalid"),
    _row(S.ESME_RINVDFTMSGID, PERMANENT, "predefined message (sm_default_msg_id) not found"),
    # "ESME receiver temporary app error": the spec's own word is temporary.
    _row(S.ESME_RX_T_APPN, TRANSIENT, "receiver temporary application error"),
    _row(S.ESME_RX_P_APPN, PERMANENT, "receiver permanent application error"),
    _row(S.ESME_RX_R_APPN, PERMANENT, "receiver rejected the message"),
    # The query failed; the message it asked about is unaffected. Do not repeat that query.
    _row(S.ESME_RQUERYFAIL, PERMANENT, "query_sm failed"),
    # TLV problems are ours: a missing or malformed TLV (e.g. Qikberry's DLT 0x1400-0x1402)
    # is a configuration or request fault that a resend repeats.
    _row(S.ESME_RINVOPTPARSTREAM, PERMANENT, "error in the optional part (TLVs) of the PDU"),
    _row(S.ESME_ROPTPARNOTALLWD, PERMANENT, "optional parameter (TLV) not allowed"),
    _row(S.ESME_RINVPARLEN, PERMANENT, "parameter length is invalid"),
    _row(S.ESME_RMISSINGOPTPARAM, PERMANENT, "expected optional parameter (TLV) missing"),
    _row(S.ESME_RINVOPTPARAMVAL, PERMANENT, "optional parameter (TLV) value is invalid"),
    # data_sm_resp in transaction mode: delivery to the handset failed. The reason sits in the
    # delivery_failure_reason TLV (§5.3.2.33: 0 and 3 temporary, 1 and 2 permanent); without
    # it the status alone is ambiguous, so a few tries.
    _row(
        S.ESME_RDELIVERYFAILURE,
        TRANSIENT,
        "delivery failure (see delivery_failure_reason)",
        retry_limit=UNKNOWN_RETRY_LIMIT,
    ),
    # The SMSC itself does not know what went wrong: a few tries, and tell the operator.
    _row(
        S.ESME_RUNKNOWNERR,
        TRANSIENT,
        "unknown error reported by the SMSC",
        alert=True,
        retry_limit=UNKNOWN_RETRY_LIMIT,
    ),
    # Qikberry (PROVIDERS.md, seed 004): insufficient credits. No retry succeeds until a
    # human tops up the account, and holding the queue meanwhile would send time-critical
    # messages (OTPs) hours late; so the message fails at once with this status, the app
    # sees a permanent error it can act on, and the operator is alerted.
    _row(S.ESME_RINVBALANCE, PERMANENT, "insufficient credits (Qikberry)", alert=True),
    # SMPP 5.0 §4.7.6 codes that Qikberry's table lists (seed 004) although it binds as 3.4;
    # CommandStatus does not define them, so they are named here.
    _row(
        0x00000100,
        PERMANENT,
        "ESME not authorised to use the service type",
        name="ESME_RSERTYPUNAUTH",
        alert=True,
    ),
    _row(
        0x00000101,
        PERMANENT,
        "ESME prohibited from using the operation",
        name="ESME_RPROHIBITED",
        alert=True,
    ),
    # "Unavailable", not "denied": the service may come back.
    _row(
        0x00000102,
        TRANSIENT,
        "service type unavailable",
        name="ESME_RSERTYPUNAVAIL",
        retry_limit=UNKNOWN_RETRY_LIMIT,
    ),
    _row(0x00000103, PERMANENT, "service type denied", name="ESME_RSERTYPDENIED"),
    _row(0x00000104, PERMANENT, "data coding scheme is invalid", name="ESME_RINVDCS"),
    _row(
        0x00000105,
        PERMANENT,
        "source address subunit is invalid",
        name="ESME_RINVSRCADDRSUBUNIT",
    ),
    # Qikberry's table spells it ESME_RINVSTDADDRSUBUNIR; the SMPP 5.0 name is used here.
    _row(
        0x00000106,
        PERMANENT,
        "destination address subunit is invalid",
        name="ESME_RINVDSTADDRSUBUNIT",
    ),
)

STATUS_TABLE: Mapping[int, StatusClass] = MappingProxyType({row.status: row for row in _ROWS})
"""Every known status → its class. Codes not in it are classified by ``classify``."""


def _unknown(status: int) -> StatusClass:
    # 0x0400-0x04FF is reserved for SMSC vendor-specific errors (SMPP 3.4 §5.1.3); anything
    # else is reserved or invalid. Either way the SMSC said no without a reason we can read,
    # so treat it as ESME_RUNKNOWNERR: a few tries, and an alert so the table gets a row.
    if 0x0400 <= status <= 0x04FF:
        description = "SMSC vendor-specific error not in the table"
    else:
        description = "status not defined by SMPP 3.4"
    return _row(
        status,
        TRANSIENT,
        description,
        name=f"0x{status:08X}",
        alert=True,
        retry_limit=UNKNOWN_RETRY_LIMIT,
    )


def classify(status: int) -> StatusClass:
    """The class of a command_status (submit_sm_resp, bind_*_resp, generic_nack, ...).

    Never raises: an undocumented code gets a transient row with a small retry limit and
    ``alert`` set, named by its hex.
    """
    row = STATUS_TABLE.get(status)
    return row if row is not None else _unknown(status)

