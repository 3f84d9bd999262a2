"""Delivery receipts: the text of SMPP 3.4 Appendix B and the receipt TLVs → one ``Receipt``,
with the vendor TLVs and error tables of each provider profile (PROVIDERS.md) decoded.

Pure functions over values: no I/O, no clock, no logging. Linear time on any input.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Literal

from smppgw.errors import SmppgwError
from smppgw.smpp.constants import (
    ESM_CLASS_MESSAGE_TYPE_MASK,
    DataCoding,
    EsmClass,
    MessageState,
    Tag,
    VendorTag,
)
from smppgw.smpp.pdu import (
    DataSm,
    DeliverSm,
    NetworkErrorCode,
    Tlv,
    become,
    cstring_value,
    find_tlv,
    writable_twin,
)

__all__ = [
    "QIKBERRY_ERRORS",
    "TEXT_FIELDS",
    "WAVY_DELIVERED_STATUS",
    "WAVY_ERRORS",
    "WAVY_SENT_STATUS",
    "ErrorInfo",
    "MessageIdFormat",
    "Receipt",
    "ReceiptError",
    "ReceiptOutcome",
    "ReceiptStyle",
    "describe_error",
    "is_intermediate_notification",
    "is_receipt",
    "message_id_key",
    "message_id_variants",
    "outcome_of",
    "parse_receipt",
    "parse_receipt_date",
    "parse_receipt_text",
    "state_of_stat",
]

ReceiptStyle = Literal["standard", "wavy", "qikberry"]
MessageIdFormat = Literal["uuid", "hex", "decimal", "text"]


class ReceiptError(SmppgwError, ValueError):
    """A deliver_sm/data_sm that cannot be a receipt: no message id anywhere in it.

    The message never quotes the receipt text, which carries the first characters of the
    subscriber's message.
    """


class ReceiptOutcome(Enum):
    """What a receipt means for the gateway's message state machine (DESIGN.md states).

    Mapping from message_state (SMPP 3.4 §5.2.28), whether it came from the TLV or the
    ``stat:`` word: DELIVERED → delivered; EXPIRED → expired; UNDELIVERABLE → undeliverable;
    DELETED (cancelled or purged by the SMSC, no further attempts) → undeliverable;
    REJECTED → rejected; ACCEPTED → accepted (Wavy: accepted by the carrier, billable, the
    handset stage may follow); ENROUTE (and Qikberry's SCHEDULED) → enroute; UNKNOWN or no
    state at all → unknown.
    """

    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    ENROUTE = "enroute"
    UNKNOWN = "unknown"


_OUTCOME_OF_STATE: Mapping[MessageState, ReceiptOutcome] = MappingProxyType(
    {
        MessageState.ENROUTE: ReceiptOutcome.ENROUTE,
        MessageState.DELIVERED: ReceiptOutcome.DELIVERED,
        MessageState.EXPIRED: ReceiptOutcome.EXPIRED,
        MessageState.DELETED: ReceiptOutcome.UNDELIVERABLE,
        MessageState.UNDELIVERABLE: ReceiptOutcome.UNDELIVERABLE,
        MessageState.ACCEPTED: ReceiptOutcome.ACCEPTED,
        MessageState.UNKNOWN: ReceiptOutcome.UNKNOWN,
        MessageState.REJECTED: ReceiptOutcome.REJECTED,
    }
)

# SMPP 3.4 Appendix B: the 7-letter stat word of each final message state.
_STAT_OF_STATE: Mapping[MessageState, str] = MappingProxyType(
    {
        MessageState.ENROUTE: "ENROUTE",
        MessageState.DELIVERED: "DELIVRD",
        MessageState.EXPIRED: "EXPIRED",
        MessageState.DELETED: "DELETED",
        MessageState.UNDELIVERABLE: "UNDELIV",
        MessageState.ACCEPTED: "ACCEPTD",
        MessageState.UNKNOWN: "UNKNOWN",
        MessageState.REJECTED: "REJECTD",
    }
)

# stat words of every provider → message_state. Appendix B's abbreviations, the full
# §5.2.28 names some SMSCs write instead, and the states Qikberry's seed lists (SCHEDULED is
# SMPP 5.0; Qikberry itself says 3.4 SMSCs report it as ENROUTE).
_STATE_OF_STAT: Mapping[str, MessageState] = MappingProxyType(
    {
        "DELIVRD": MessageState.DELIVERED,
        "DELIVERED": MessageState.DELIVERED,
        "EXPIRED": MessageState.EXPIRED,
        "DELETED": MessageState.DELETED,
        "UNDELIV": MessageState.UNDELIVERABLE,
        "UNDELIVERABLE": MessageState.UNDELIVERABLE,
        "ACCEPTD": MessageState.ACCEPTED,
        "ACCEPTED": MessageState.ACCEPTED,
        "UNKNOWN": MessageState.UNKNOWN,
        "REJECTD": MessageState.REJECTED,
        "REJECTED": MessageState.REJECTED,
        "ENROUTE": MessageState.ENROUTE,
        "EN_ROUTE": MessageState.ENROUTE,
        "SCHEDULED": MessageState.ENROUTE,
    }
)


def state_of_stat(stat: str) -> MessageState | None:
    """message_state for a stat word of any case (``DELIVRD``, ``Delivered``); None if unknown."""
    return _STATE_OF_STAT.get(stat.strip().upper())


def outcome_of(state: MessageState | None) -> ReceiptOutcome:
    """The gateway outcome of a message_state (see ``ReceiptOutcome``)."""
    if state is None:
        return ReceiptOutcome.UNKNOWN
    return _OUTCOME_OF_STATE[state]


# --- esm_class ---------------------------------------------------------------------------------


def is_receipt(esm_class: int) -> bool:
    """Does this deliver_sm/data_sm carry a delivery receipt rather than an MO message?

    SMPP 3.4 §5.2.12: the message type is bits 5-2 of esm_class, a value, not flags. Counted
    as receipts: 0001 (SMSC delivery receipt) and 1000 (intermediate delivery notification),
    both written by the SMSC in the Appendix B format. Not counted: 0010 (SME delivery
    acknowledgement) and 0100 (SME manual/user acknowledgement), which the recipient's
    application writes in a format of its own and smppgw never requests (registered_delivery
    bits 3-2 stay 0), and 0110 (conversation abort). Those go up as MO.
    """
    message_type = esm_class & ESM_CLASS_MESSAGE_TYPE_MASK
    return message_type in (
        EsmClass.DELIVERY_RECEIPT,
        EsmClass.INTERMEDIATE_DELIVERY_NOTIFICATION,
    )


def is_intermediate_notification(esm_class: int) -> bool:
    """§5.2.12 message type 1000: a progress report, never a final state."""
    message_type = esm_class & ESM_CLASS_MESSAGE_TYPE_MASK
    return message_type == EsmClass.INTERMEDIATE_DELIVERY_NOTIFICATION


# --- the receipt text (SMPP 3.4 Appendix B) ----------------------------------------------------

# One tokenizer for every field name. Appendix B's names plus what SMSCs really write: any
# case, ``submit_date``/``submitdate``, ``status``, ``error``, ``message_id``. The look-behind
# makes ``sub`` not match inside ``submit`` or ``msgsub``; no pattern starts with a repeat,
# and each repeat is bounded by the run of blanks after one keyword, so the scan is linear.
_KEY = re.compile(
    r"(?<![0-9A-Za-z_])(?:"
    r"(?P<id>(?:message[ _]?|msg[ _]?)?id)"
    r"|(?P<sub>sub)"
    r"|(?P<dlvrd>dlvrd|dlvd)"
    r"|(?P<submit_date>submit[ _]*date)"
    r"|(?P<done_date>done[ _]*date)"
    r"|(?P<stat>stat(?:us)?)"
    r"|(?P<err>err(?:or)?)"
    r"|(?P<text>text)"
    r")[ \t]*:",
    re.IGNORECASE | re.ASCII,
)
# A field's value: the first blank-separated token after its colon (extra fields such as
# ``imsi:...`` that some SMSCs insert then do not leak into the previous value).
_VALUE = re.compile(r"\s*(\S*)", re.ASCII)

TEXT_FIELDS = ("id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err", "text")


def _any_case(name: str) -> str:
    """A field name for _STANDARD_TEXT in any case, without re.IGNORECASE (which made every
    character of the values cost a case fold: most of the time of the match)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)


# Appendix B exactly as most SMSCs write it (field names in any case): one anchored match.
# A value here holds no blank and no colon, so no field name can hide in one (every name ends
# with a colon): where this matches, the tokenizer below finds the same eight fields with the
# same values. Anything else (other spellings, extra fields, blanks after colons) is left to
# the tokenizer. Tested against it in tests/unit/test_receipt.py.
_STANDARD_TEXT = re.compile(
    " ".join(
        f"{_any_case(name)}:([^\\s:]*)"
        for name in ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err")
    )
    + f" {_any_case('text')}:(.*)",
    re.ASCII | re.DOTALL,
)


def parse_receipt_text(text: str) -> dict[str, str]:
    """The Appendix B fields found in ``text``, raw, keyed by the names in ``TEXT_FIELDS``.

    ``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DDDDDDD err:E text:...`` in any case and order, with fields missing or added. The
    first occurrence of a field wins. ``text:`` is the last field (Appendix B), so it takes
    the rest of the input, colons and field names included. Absent fields are absent keys.
    Never raises for a str; one pass over the input.
    """
    end = len(text)
    while end and text[end - 1] == "\0":  # a NUL-terminated short_message
        end -= 1
    standard = _STANDARD_TEXT.fullmatch(text, 0, end)
    if standard is not None:
        message_id, sub, dlvrd, submit_date, done_date, stat, err, rest = standard.groups()
        return {
            "id": message_id,
            "sub": sub,
            "dlvrd": dlvrd,
            "submit_date": submit_date,
            "done_date": done_date,
            "stat": stat,
            "err": err,
            "text": rest.strip(),
        }
    return _tokenize_receipt_text(text, end)


def _tokenize_receipt_text(text: str, end: int) -> dict[str, str]:
    """parse_receipt_text for any layout: field names found by _KEY, values between them."""
    fields: dict[str, str] = {}
    pending: str | None = None
    pending_at = 0
    for match in _KEY.finditer(text, 0, end):
        if pending is not None:
            _take_value(fields, pending, text, pending_at, match.start())
            pending = None
        name = match.lastgroup
        assert name is not None  # one named group per alternative
        if name == "text":
            fields.setdefault("text", text[match.end() : end].strip())
            return fields
        pending, pending_at = name, match.end()
    if pending is not None:
        _take_value(fields, pending, text, pending_at, end)
    return fields


def _take_value(fields: dict[str, str], name: str, text: str, start: int, stop: int) -> None:
    if name in fields:
        return
    value = _VALUE.match(text, start, stop)
    fields[name] = value.group(1) if value is not None else ""


# Receipts of one minute share their dates: cached (datetime is immutable), bounded.
@functools.lru_cache(maxsize=1024)
def parse_receipt_date(raw: str) -> datetime | None:
    """A receipt date as a naive datetime, or None if it is not a valid one.

    Appendix B gives YYMMDDhhmm; many SMSCs add seconds (YYMMDDhhmmss), some write the year in
    full (YYYYMMDDhhmmss). Two-digit years are 20YY. The zone is whatever the SMSC uses: UTC
    for Wavy (PROVIDERS.md); smppgw treats these values as UTC wall-clock time.
    """
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    if len(raw) == 14:
        year, rest = int(raw[:4]), raw[4:]
    elif len(raw) in (10, 12):
        year, rest = 2000 + int(raw[:2]), raw[2:]
    else:
        return None
    try:
        return datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]) if len(rest) == 10 else 0,
        )
    except ValueError:
        return None


# --- provider error tables ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A receipt's ``err:`` code looked up in the provider's table.

    ``code`` is the err as looked up (3 digits when numeric), ``text`` the provider's word for
    it (Qikberry ``ABSENT-SUB``, Wavy ``NO_CREDIT``), ``description`` English prose.
    ``transient``: True when the SMSC may still deliver or a resubmit may succeed (handset
    off, network error, throttled), False when a resubmit gets the same answer (invalid
    number, blacklisted, DLT template), None when the table does not know the code.
    ``ok``: the code reports no error. ``message_state``: the state the code implies, used
    when neither the message_state TLV nor the stat word says. ``alert``: an operator should
    know (credit exhausted, account invalid).
    """

    code: str
    text: str
    description: str
    transient: bool | None
    ok: bool = False
    message_state: MessageState | None = None
    alert: bool = False


_DELIVERED = MessageState.DELIVERED
_EXPIRED = MessageState.EXPIRED
_UNDELIVERABLE = MessageState.UNDELIVERABLE
_REJECTED = MessageState.REJECTED
_T = True  # transient
_P = False  # permanent


def _table(rows: tuple[ErrorInfo, ...]) -> Mapping[str, ErrorInfo]:
    return MappingProxyType({row.code: row for row in rows})


def _e(
    code: str,
    text: str,
    description: str,
    transient: bool,
    state: MessageState | None,
    *,
    alert: bool = False,
) -> ErrorInfo:
    return ErrorInfo(code, text, description, transient, False, state, alert)


# Wavy (seed 003, "Status de envio"): err is the sent status code (0x1403), or the delivered
# status code (0x1405) for the handset stage; 000 is success at either stage.
WAVY_SENT_STATUS: Mapping[int, str] = MappingProxyType(
    {
        2: "SENT_SUCCESS",
        101: "EXPIRED",
        102: "CARRIER_COMMUNICATION_ERROR",
        103: "REJECTED_BY_CARRIER",
        201: "NO_CREDIT",
        202: "INVALID_DESTINATION_NUMBER",
        203: "BLACKLISTED",
        204: "DESTINATION_BLOCKED_BY_OPTOUT",
        205: "DESTINATION_MESSAGE_LIMIT_REACHED",
        207: "INVALID_MESSAGE_TEXT",
        213: "COUNTRY_NOT_ALLOWED_FOR_CUSTOMER",
        214: "INVALID_CUSTOMER_CONFIGURATION",
        215: "CUSTOMER_QUOTA_BLOCKED",
        301: "INTERNAL_ERROR",
    }
)
WAVY_DELIVERED_STATUS: Mapping[int, str] = MappingProxyType(
    {4: "DELIVERED_SUCCESS", 104: "NOT_DELIVERED", 401: "MESSAGE_SPLIT"}
)

WAVY_ERRORS: Mapping[str, ErrorInfo] = _table(
    (
        ErrorInfo("000", "SUCCESS", "no error", False, ok=True),
        _e("101", "EXPIRED", "expired before reaching the handset", _T, _EXPIRED),
        # A link problem between Wavy and the carrier, not a verdict on the message.
        _e(
            "102",
            "CARRIER_COMMUNICATION_ERROR",
            "communication error with the carrier",
            _T,
            _REJECTED,
        ),
        _e("103", "REJECTED_BY_CARRIER", "the carrier rejected the message", _P, _REJECTED),
        _e(
            "104",
            "NOT_DELIVERED",
            "carrier accepted but could not reach the handset (off or out of coverage for the "
            "carrier's retry period, or an inactive number)",
            _T,
            _UNDELIVERABLE,
        ),
        _e(
            "201",
            "NO_CREDIT",
            "account or sub-account message limit exceeded, or prepaid credit exhausted",
            _P,
            _REJECTED,
            alert=True,
        ),
        _e(
            "202",
            "INVALID_DESTINATION_NUMBER",
            "destination is not a valid mobile number",
            _P,
            _REJECTED,
        ),
        _e("203", "BLACKLISTED", "destination is on the account's block list", _P, _REJECTED),
        _e(
            "204",
            "DESTINATION_BLOCKED_BY_OPTOUT",
            "destination opted out of this sub-account (mobile marketing)",
            _P,
            _REJECTED,
        ),
        # A per-period cap set by the carriers: a later resubmit can pass.
        _e(
            "205",
            "DESTINATION_MESSAGE_LIMIT_REACHED",
            "destination received the maximum number of messages for the period (mobile marketing)",
            _T,
            _REJECTED,
        ),
        _e(
            "207",
            "INVALID_MESSAGE_TEXT",
            "text contains words the carrier does not accept",
            _P,
            _REJECTED,
        ),
        # 213-215 are listed with the sent statuses of Wavy's API ("Códigos de Status de
        # Envio"), not in its SMPP table: refusals of the account's settings, which a
        # resubmit meets again until the operator has them changed.
        _e(
            "213",
            "COUNTRY_NOT_ALLOWED_FOR_CUSTOMER",
            "the account may not send to the destination's country",
            _P,
            _REJECTED,
            alert=True,
        ),
        _e(
            "214",
            "INVALID_CUSTOMER_CONFIGURATION",
            "some of the account's settings are invalid or missing",
            _P,
            _REJECTED,
            alert=True,
        ),
        _e(
            "215",
            "CUSTOMER_QUOTA_BLOCKED",
            "the account's quota is blocked or used up",
            _P,
            _REJECTED,
            alert=True,
        ),
        _e("301", "INTERNAL_ERROR", "internal error in Wavy's platform", _T, _REJECTED),
        # A delivered-status code (0x1405) that is no verdict: Wavy cut the text at its
        # billing limit (160 plain characters, 70 with accents) and reports the parts as cut
        # (seed 003: "A mensagem final será formatada de acordo com o limite de caracteres").
        # The handset outcome follows, so it is ENROUTE: not final, not an error.
        ErrorInfo(
            "401",
            "MESSAGE_SPLIT",
            "Wavy split the text at its billing limit; the handset outcome follows",
            False,
            ok=True,
            message_state=MessageState.ENROUTE,
        ),
    )
)

# Qikberry (seed 004, "Error Codes"): the stat word varies by route, the err code does not.
# Network and handset failures are UNDELIVERABLE, platform and regulatory (DLT) refusals
# REJECTED. "Unknown Error" rows count as transient except the explicit REJECTED.
QIKBERRY_ERRORS: Mapping[str, ErrorInfo] = _table(
    (
        ErrorInfo("000", "DELIVRD", "delivered to SIM", False, ok=True, message_state=_DELIVERED),
        _e("001", "INVALID-SUB", "unidentified subscriber", _P, _UNDELIVERABLE),
        _e("002", "INVALID-SUB", "illegal subscriber", _P, _UNDELIVERABLE),
        # The seed's description repeats 001's; its word (and 010) say absent subscriber.
        _e("003", "ABSENT-SUB", "unidentified subscriber (absent)", _T, _UNDELIVERABLE),
        _e("004", "HANDSET-ERR", "illegal equipment", _P, _UNDELIVERABLE),
        _e("005", "BARRED", "SMS is prohibited", _P, _UNDELIVERABLE),
        _e("006", "HANDSET-ERR", "handset does not support SMS", _P, _UNDELIVERABLE),
        _e("007", "HANDSET-ERR", "handset is receiving an error", _T, _UNDELIVERABLE),
        # MAP "facility not supported": typically the visited network, which changes.
        _e("008", "NET-ERR", "facility not supported", _T, _UNDELIVERABLE),
        _e("009", "MEMEXEC", "handset memory is full", _T, _UNDELIVERABLE),
        _e("010", "ABSENT-SUB", "absent subscriber", _T, _UNDELIVERABLE),
        _e("011", "FAILED", "SMSC system failure", _T, _UNDELIVERABLE),
        _e("012", "NET-ERR", "gateway mobile switching error", _T, _UNDELIVERABLE),
        _e("013", "MOB-OFF", "handset switched off", _T, _UNDELIVERABLE),
        _e("014", "FAILED", "undelivered due to roaming limitations", _T, _UNDELIVERABLE),
        _e("015", "INVALID-SUB", "unidentified subscriber", _P, _UNDELIVERABLE),
        _e("016", "HANDSET-BUSY", "subscriber is busy", _T, _UNDELIVERABLE),
        _e("017", "NET-ERR", "resources cannot be used at the GMSC level", _T, _UNDELIVERABLE),
        _e("018", "SERIES-BLK", "number series blocked", _P, _REJECTED),
        # Unlike the other NET-ERR rows, invalid input data is repeated by a resubmit.
        _e("019", "NET-ERR", "submission error or invalid input data", _P, _UNDELIVERABLE),
        _e("020", "BARRED", "CUG reject", _P, _UNDELIVERABLE),
        _e("021", "EXPIRED", "SMS timeout", _T, _EXPIRED),
        _e("034", "UNDELIV", "unknown error", _T, _UNDELIVERABLE),
        _e("045", "FAILED", "unknown error", _T, _UNDELIVERABLE),
        _e("099", "UNDELIV", "unknown error", _T, _UNDELIVERABLE),
        _e(
            "400", "SERIES-BLOCK", "number series temporarily or permanently blocked", _P, _REJECTED
        ),
        _e("401", "NO-CREDITS", "credit exhausted", _P, _REJECTED, alert=True),
        _e("402", "NO-ACCOUNT", "invalid account", _P, _REJECTED, alert=True),
        _e("403", "SERVER-ERR", "unknown server error", _T, _REJECTED),
        _e("404", "INV-NUMBER", "invalid destination number", _P, _REJECTED),
        _e("405", "SERVER-ERR", "ESME client error", _T, _REJECTED),
        _e("406", "SERVER-ERR", "ESME client error", _T, _REJECTED),
        _e("407", "SPAM", "illegal content", _P, _REJECTED),
        _e("408", "DNDNUMB", "number registered in the DND database", _P, _REJECTED),
        _e("430", "SERVER-ERR", "unknown server error", _T, _REJECTED),
        _e("431", "SERVER-ERR", "unknown server error", _T, _REJECTED),
        _e("432", "SERVER-ERR", "unknown server error", _T, _REJECTED),
        _e("433", "SERVER-ERR", "unknown server error", _T, _REJECTED),
        _e("450", "BLACKLST", "number blocklisted to receive messages", _P, _REJECTED),
        _e("451", "SNDR-BLOCK", "sender id has been blocked", _P, _REJECTED),
        _e("452", "TEMPLATE-NOT-FOUND", "no matching template", _P, _REJECTED),
        _e("453", "INV-TEMPLATE", "template not allotted to this account", _P, _REJECTED),
        _e("454", "INV-SENDER", "sender id not allotted to this account", _P, _REJECTED),
        _e("455", "NOT-OPTIN", "number not in the opt-in list", _P, _REJECTED),
        _e("456", "OPTOUT-REJ", "number opted out of receiving messages", _P, _REJECTED),
        # India allows promotional traffic only in set hours: later, the same message passes.
        _e("457", "PROMO-TMOUT", "promotional time window exceeded", _T, _REJECTED),
        _e("458", "REJECTED", "rejected (unknown error)", _P, _REJECTED),
        _e("459", "NOTALLOWED", "country is not allowed to send SMS", _P, _REJECTED),
        _e("460", "DUPLICATE", "same content was already sent", _P, _REJECTED),
        _e("461", "UNDELIV", "unknown error", _T, _UNDELIVERABLE),
        _e("462", "FAILED", "unknown error", _T, _UNDELIVERABLE),
        _e("463", "THROTTLED", "maximum sent limit reached", _T, _REJECTED),
        _e("777", "DLT-REJECTED", "invalid sender id or invalid template (DLT)", _P, _REJECTED),
        _e(
            "778",
            "REJ-MULTIPART",
            "not all message parts were delivered to the handset",
            _P,
            _UNDELIVERABLE,
        ),
        _e("780", "DLT-INV-TMID", "invalid DLT telemarketer id", _P, _REJECTED),
        _e("781", "DLT-INV-ENTITY", "invalid DLT entity id", _P, _REJECTED),
        _e("782", "DLT-INV-TM-ID", "invalid DLT template id", _P, _REJECTED),
        _e("783", "DLT-TM-VAR-EXECEED", "template variable exceeded 30 characters", _P, _REJECTED),
        _e("784", "DLT-ENTITY-NOT-FOUND", "DLT entity id not found", _P, _REJECTED),
        _e("785", "DLT-TM-BLACKLST", "DLT template id is blacklisted", _P, _REJECTED),
        _e("786", "DLT-ENTITY-BLACKLST", "DLT entity id is blacklisted", _P, _REJECTED),
        _e("787", "DLT-HEADER-INACTIVE", "sender (DLT header) inactive", _P, _REJECTED),
        _e("788", "DLT-TM-INACTIVE", "DLT template is inactive", _P, _REJECTED),
        _e(
            "789",
            "DLT-SENDER-NOT-REG-TM",
            "sender is not registered for the template",
            _P,
            _REJECTED,
        ),
        _e("790", "INV-PROVISION", "sender invalid provision", _P, _REJECTED),
        _e("791", "INV-SERVICE", "invalid service type", _P, _REJECTED),
        _e("792", "INV-SCHEDULE", "invalid schedule", _P, _REJECTED),
    )
)


# Qikberry's route-specific stat words → state, from the table above (first row wins).
def _states_of_words(table: Mapping[str, ErrorInfo]) -> Mapping[str, MessageState]:
    states: dict[str, MessageState] = {}
    for info in table.values():
        if info.message_state is not None:
            states.setdefault(info.text, info.message_state)
    return MappingProxyType(states)


_QIKBERRY_STATE_OF_WORD = _states_of_words(QIKBERRY_ERRORS)

# Wavy's 000 at each stage: 0x1404 SENT_SUCCESS on ACCEPTD, 0x1406 DELIVERED_SUCCESS on DELIVRD.
_WAVY_SENT_SUCCESS = ErrorInfo(
    "000", "SENT_SUCCESS", "accepted by the carrier (billable)", False, True, MessageState.ACCEPTED
)
_WAVY_DELIVERED_SUCCESS = ErrorInfo(
    "000", "DELIVERED_SUCCESS", "delivered to the handset", False, True, _DELIVERED
)

_STYLES: tuple[str, ...] = ("standard", "wavy", "qikberry")


def _error_key(err: str) -> str:
    # err is "a network-specific error code" (Appendix B), 3 digits in the tables; SMSCs also
    # send "0" or "13". Numeric codes are zero-padded; anything else is looked up as sent.
    err = err.strip()
    if err.isascii() and err.isdigit() and len(err) <= 9:
        return f"{int(err):03d}"
    return err


def describe_error(style: ReceiptStyle, err: str, *, stat: str | None = None) -> ErrorInfo:
    """The provider's meaning of a receipt's ``err:`` code.

    ``style`` is the profile's receipt_style; ``stat`` only refines the word for Wavy's 000
    (SENT_SUCCESS on ACCEPTD, DELIVERED_SUCCESS on DELIVRD). The "standard" style knows only
    that 000 is no error: Appendix B leaves err network-specific. Unknown codes get
    ``transient=None``. Raises ValueError for an unknown style (a configuration bug).
    """
    if style not in _STYLES:
        raise ValueError(f"unknown receipt style {style!r}")
    return _describe_error(style, err, stat)


# Pure, over the few codes and words providers send: cached (ErrorInfo is a frozen value).
@functools.lru_cache(maxsize=1024)
def _describe_error(style: ReceiptStyle, err: str, stat: str | None) -> ErrorInfo:
    key = _error_key(err)
    if style == "wavy":
        info = WAVY_ERRORS.get(key)
        if info is not None and info.ok and stat is not None:
            word = stat.strip().upper()
            if word == "DELIVRD":
                return _WAVY_DELIVERED_SUCCESS
            if word == "ACCEPTD":
                return _WAVY_SENT_SUCCESS
    elif style == "qikberry":
        info = QIKBERRY_ERRORS.get(key)
    else:
        info = None
    if info is not None:
        return info
    if key == "000":
        return ErrorInfo(key, "", "no error", False, ok=True)
    return ErrorInfo(key, "", "error code not in the provider's table", None)


# --- vendor TLVs -------------------------------------------------------------------------------


# Wavy sends a handful of distinct values: both readers are cached (bounded; values immutable).
@functools.lru_cache(maxsize=256)
def _vendor_int(raw: bytes) -> int | None:
    """An integer vendor TLV. Wavy's document gives no widths for 0x1403/0x1405.

    ASCII digits, with or without trailing NULs, are read as decimal text: as binary those
    octets would be 48-57 (1 octet) or 12336-14649 (2 octets), none of them a Wavy code.
    Otherwise 1, 2 or 4 octets big-endian; any other width is unreadable (None).
    """
    if raw and raw[0] in _DECIMAL_TEXT_START:  # the pattern only when it can match
        digits = _DECIMAL_TEXT.fullmatch(raw)
        if digits is not None:
            return int(digits.group(1))
    width = len(raw)
    if width == 1:
        return raw[0]
    if width == 2:
        return raw[0] << 8 | raw[1]
    if width == 4:
        return int.from_bytes(raw, "big")
    return None


_DECIMAL_TEXT = re.compile(rb"\s*([0-9]{1,9})\s*\x00*", re.ASCII)
_DECIMAL_TEXT_START = frozenset(b"0123456789 \t\n\r\x0b\x0c")  # a digit or an ASCII \s


@functools.lru_cache(maxsize=256)
def _vendor_str(raw: bytes) -> str:
    """A string vendor TLV, with or without its NUL (Wavy 0x1404/0x1406)."""
    return cstring_value(raw).strip()


# Wavy's vendor TLVs in the order of its table (code, status; sent, delivered): tag, name, reader.
_WAVY_FIELDS = (
    (int(VendorTag.WAVY_SENT_STATUS_CODE), "sent_status_code", _vendor_int),
    (int(VendorTag.WAVY_SENT_STATUS), "sent_status", _vendor_str),
    (int(VendorTag.WAVY_DELIVERED_STATUS_CODE), "delivered_status_code", _vendor_int),
    (int(VendorTag.WAVY_DELIVERED_STATUS), "delivered_status", _vendor_str),
)


def _decode_vendor(style: ReceiptStyle, first: Mapping[int, Tlv]) -> dict[str, int | str]:
    """The profile's vendor TLVs, decoded; ``first`` maps each tag to its first TLV."""
    vendor: dict[str, int | str] = {}
    if style != "wavy":
        # Qikberry's vendor tags (0x1400-0x1402) are DLT ids on submit; its receipts carry
        # their detail in the err code. The standard style has no vendor TLVs.
        return vendor
    for tag, name, read in _WAVY_FIELDS:
        tlv = first.get(tag)
        if tlv is not None:
            value = read(tlv.raw)
            if value is not None:
                vendor[name] = value
    return vendor


def _wavy_stat_and_err(vendor: Mapping[str, int | str]) -> tuple[str, str]:
    """stat and err from Wavy's codes, for a receipt whose text does not give them."""
    delivered = vendor.get("delivered_status_code")
    if isinstance(delivered, int):
        if delivered == 4:
            return "DELIVRD", "000"
        info = WAVY_ERRORS.get(f"{delivered:03d}")
        if info is not None and info.message_state is MessageState.ENROUTE:
            return "ENROUTE", info.code  # 401 MESSAGE_SPLIT: the outcome is still to come
        return "UNDELIV", f"{delivered:03d}"
    sent = vendor.get("sent_status_code")
    if isinstance(sent, int):
        if sent == 2:
            return "ACCEPTD", "000"
        if sent == 101:
            return "EXPIRED", "101"
        return "REJECTD", f"{sent:03d}"
    return "", ""


def _no_vendor_fields() -> Mapping[str, int | str]:
    return MappingProxyType({})


# --- the receipt -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery receipt, normalised; the raw text and TLVs are kept as received.

    ``message_id``: the receipted_message_id TLV when present and non-empty, else the text's
    ``id:``, stripped of blanks, otherwise as received (use ``message_id_key`` to correlate).
    ``stat``: upper-case stat word (from the text, else from message_state, else from Wavy's
    codes); "" when nothing says. ``err``: as received ("000"); "" when absent.
    ``message_state``: the TLV when it holds a valid value, else mapped from ``stat``, else
    from the provider's tables. ``final``: no further receipt is expected for this message.
    ``outcome``: see ``ReceiptOutcome``. ``submit_date``/``done_date``: naive, UTC by
    smppgw's convention, None when missing or invalid (``*_raw`` keep the text).
    ``vendor``: decoded vendor TLVs (Wavy: sent_status_code, sent_status,
    delivered_status_code, delivered_status). ``error``: the provider's reading of ``err``.
    Equality compares every field; receipts are not hashable (``vendor`` is a mapping).
    """

    message_id: str
    stat: str
    err: str
    message_state: MessageState | None
    outcome: ReceiptOutcome
    final: bool
    style: ReceiptStyle = "standard"
    text_message_id: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    submit_date_raw: str | None = None
    done_date_raw: str | None = None
    text: str | None = None
    network_error_code: NetworkErrorCode | None = None
    vendor: Mapping[str, int | str] = field(default_factory=_no_vendor_fields)
    error: ErrorInfo | None = None
    intermediate: bool = False
    raw_text: str = ""
    tlvs: tuple[Tlv, ...] = ()

    @property
    def transient(self) -> bool | None:
        """Might the SMSC still deliver, or a resubmit succeed? None when unknown.

        Success and pending states are not errors (False). Otherwise the provider's error
        table decides; without one, expiry counts as transient and the other failures as
        permanent.
        """
        if self.outcome in (
            ReceiptOutcome.DELIVERED,
            ReceiptOutcome.ACCEPTED,
            ReceiptOutcome.ENROUTE,
        ):
            return False
        if self.error is not None and self.error.transient is not None and not self.error.ok:
            return self.error.transient
        if self.outcome is ReceiptOutcome.EXPIRED:
            return True
        if self.outcome in (ReceiptOutcome.UNDELIVERABLE, ReceiptOutcome.REJECTED):
            return False
        return None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view for the store and the API (dates as ISO 8601 with Z)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat() + "Z"

        nec = self.network_error_code
        error = self.error
        return {
            "message_id": self.message_id,
            "stat": self.stat,
            "err": self.err,
            "message_state": None if self.message_state is None else self.message_state.name,
            "outcome": self.outcome.value,
            "final": self.final,
            "sub": self.sub,
            "dlvrd": self.dlvrd,
            "submit_date": iso(self.submit_date),
            "done_date": iso(self.done_date),
            "text": self.text,
            "network_error_code": None
            if nec is None
            else {"network_type": nec.network_type, "error_code": nec.error_code},
            "vendor": dict(self.vendor),
            "error": None
            if error is None
            else {
                "code": error.code,
                "text": error.text,
                "description": error.description,
                "transient": error.transient,
            },
            "transient": self.transient,
        }


_UCS2 = int(DataCoding.UCS2)


def _receipt_text(pdu: DeliverSm | DataSm) -> str:
    """The receipt text: short_message, else message_payload (data_sm carries only that)."""
    raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    if not raw:
        payload = find_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
        if payload is not None:
            raw = payload.raw
    text = raw.decode("latin-1")
    # Some SMSCs echo the submit's data_coding 8 and send the receipt in UCS-2: read it so
    # only when Latin-1 shows no field name and UTF-16 does.
    if pdu.data_coding == _UCS2 and len(raw) % 2 == 0 and _KEY.search(text) is None:
        wide = raw.decode("utf-16-be", errors="replace")
        if _KEY.search(wide) is not None:
            return wide
    return text


_MESSAGE_STATES: dict[int, MessageState] = {state.value: state for state in MessageState}


def _message_state_tlv(tlv: Tlv | None) -> MessageState | None:
    # MessageState(n) goes through the enum machinery; the table is one look-up.
    if tlv is None:
        return None
    raw = tlv.raw
    if len(raw) == 1:  # the spec's width, read without int.from_bytes
        return _MESSAGE_STATES.get(raw[0])
    if not 1 <= len(raw) <= 4:
        return None
    return _MESSAGE_STATES.get(int.from_bytes(raw, "big"))


def _network_error_code(tlv: Tlv | None) -> NetworkErrorCode | None:
    # SMPP 3.4 §5.3.2.31: exactly 3 octets, network type then a 2-octet error code.
    if tlv is None or len(tlv.raw) != 3:
        return None
    return NetworkErrorCode(tlv.raw[0], int.from_bytes(tlv.raw[1:3], "big"))


# The tags a receipt reads (parse_receipt takes the first TLV of each).
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
_MESSAGE_STATE = int(Tag.MESSAGE_STATE)
_NETWORK_ERROR_CODE = int(Tag.NETWORK_ERROR_CODE)
_INTERMEDIATE = int(EsmClass.INTERMEDIATE_DELIVERY_NOTIFICATION)
_new_receipt = writable_twin(Receipt)


def _is_final(state: MessageState | None, style: ReceiptStyle, intermediate: bool) -> bool:
    # Appendix B lists every state but ENROUTE as final, ACCEPTED included. Wavy uses
    # ACCEPTD for its first stage (accepted by the carrier); the handset stage may follow,
    # except for carriers Oi and Sercomtel (PROVIDERS.md), whose messages stay accepted.
    if intermediate or state is None or state is MessageState.ENROUTE:
        return False
    return not (state is MessageState.ACCEPTED and style == "wavy")


def parse_receipt(pdu: DeliverSm | DataSm, style: ReceiptStyle = "standard") -> Receipt:
    """Read a delivery receipt from a deliver_sm or data_sm (the caller checked ``is_receipt``).

    TLVs win over the text when both are there: receipted_message_id over ``id:``,
    message_state over ``stat:``. ``style`` is the provider profile's receipt_style and picks
    the vendor TLVs and error table. Raises ReceiptError only when there is no message id in
    either; anything else missing or malformed leaves that field empty or None.
    """
    if style not in _STYLES:
        raise ValueError(f"unknown receipt style {style!r}")
    raw_text = _receipt_text(pdu)
    fields = parse_receipt_text(raw_text)
    tlvs = pdu.tlvs
    first = {tlv.tag: tlv for tlv in reversed(tlvs)}  # tag -> its first TLV

    text_id = fields.get("id", "").strip() or None
    id_tlv = first.get(_RECEIPTED_MESSAGE_ID)
    tlv_id = cstring_value(id_tlv.raw).strip() if id_tlv is not None else ""
    message_id = tlv_id or text_id
    if not message_id:
        raise ReceiptError(
            f"no message id in the receipted_message_id TLV or the receipt text "
            f"({len(raw_text)} characters)"
        )

    vendor = _decode_vendor(style, first)
    stat = fields.get("stat", "").strip().upper()
    err = fields.get("err", "").strip()
    tlv_state = _message_state_tlv(first.get(_MESSAGE_STATE))
    if style == "wavy" and (not stat or not err):
        wavy_stat, wavy_err = _wavy_stat_and_err(vendor)
        stat = stat or (_STAT_OF_STATE[tlv_state] if tlv_state is not None else wavy_stat)
        err = err or wavy_err
    if not stat and tlv_state is not None:
        stat = _STAT_OF_STATE[tlv_state]

    error = _describe_error(style, err, stat) if err else None
    state = tlv_state if tlv_state is not None else _STATE_OF_STAT.get(stat)
    if state is None and style == "qikberry":
        # Qikberry's stat word varies by route (INVALID-SUB, MOB-OFF ...): the err code
        # decides, else the word as its table uses it.
        if error is not None and error.message_state is not None:
            state = error.message_state
        else:
            state = _QIKBERRY_STATE_OF_WORD.get(stat)
    if state is None and style == "wavy" and error is not None:
        state = error.message_state

    intermediate = pdu.esm_class & ESM_CLASS_MESSAGE_TYPE_MASK == _INTERMEDIATE
    submit_raw = fields.get("submit_date")
    done_raw = fields.get("done_date")
    # Built as the Receipt dataclass would build it, field by field (see writable_twin: the
    # frozen __init__ cost more than the rest of the parse).
    receipt = _new_receipt()
    receipt.message_id = message_id
    receipt.stat = stat
    receipt.err = err
    receipt.message_state = state
    receipt.outcome = _OUTCOME_OF_STATE[state] if state is not None else ReceiptOutcome.UNKNOWN
    receipt.final = _is_final(state, style, intermediate)
    receipt.style = style
    receipt.text_message_id = text_id
    receipt.sub = fields.get("sub")
    receipt.dlvrd = fields.get("dlvrd")
    receipt.submit_date = parse_receipt_date(submit_raw) if submit_raw is not None else None
    receipt.done_date = parse_receipt_date(done_raw) if done_raw is not None else None
    receipt.submit_date_raw = submit_raw
    receipt.done_date_raw = done_raw
    receipt.text = fields.get("text")
    receipt.network_error_code = _network_error_code(first.get(_NETWORK_ERROR_CODE))
    receipt.vendor = MappingProxyType(vendor)
    receipt.error = error
    receipt.intermediate = intermediate
    receipt.raw_text = raw_text
    receipt.tlvs = tlvs
    return become(receipt, Receipt)


# --- correlation: message id keys ------------------------------------------------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# SMPP 3.4 §5.2.23: message_id is a C-string of at most 65 octets. Longer "ids" are not
# converted as numbers (and int() of thousands of digits would be slow or refused).
_MAX_NUMERIC_ID = 64


def message_id_key(message_id: str, id_format: MessageIdFormat) -> str:
    """The canonical key of an SMSC message id read in ``id_format``, for the store to match.

    Some SMSCs answer submit_sm_resp with a hex id and put the same number in decimal in the
    receipt, or the reverse. Numbers get one spelling whatever base they came in: the value in
    lower-case hex without leading zeros, so hex ``00001A2B`` and decimal ``6699`` both give
    ``1a2b``. UUIDs (Wavy) are case-insensitive (RFC 4122 §3): lower-case with dashes, also
    when sent without them. ``text`` ids are kept as sent (case can matter). An id that does
    not read in the given format falls back to the ``text`` rule. Blanks and NULs around the
    id are dropped.
    """
    value = message_id.strip().strip("\0").strip()
    if id_format == "uuid":
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value
    if id_format in ("hex", "decimal") and 0 < len(value) <= _MAX_NUMERIC_ID:
        if id_format == "hex" and _HEX_DIGITS.issuperset(value):
            return format(int(value, 16), "x")
        if id_format == "decimal" and value.isascii() and value.isdigit():
            return format(int(value, 10), "x")
    return value


def message_id_variants(message_id: str, id_format: MessageIdFormat = "hex") -> tuple[str, ...]:
    """Keys to try for a receipt id, most likely first, without duplicates.

    The store keys each submit_sm_resp id with ``message_id_key(id, profile's format)``; a
    receipt's id is looked up under these in order and the first hit wins: read in the
    profile's format, then as hex, then as decimal, then as sent. The base switch is what
    matches an SMSC that writes receipts in the other base. A number can mean different
    values in the two bases, so match within one provider and prefer the first hit.
    """
    keys: list[str] = []
    formats: tuple[MessageIdFormat, ...] = (id_format, "hex", "decimal", "text")
    for fmt in formats:
        key = message_id_key(message_id, fmt)
        if key and key not in keys:
            keys.append(key)
    return tuple(keys)
