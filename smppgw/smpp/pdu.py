"""One frozen dataclass per SMPP 3.4 PDU, and Tlv, the optional parameter.

The field names and order are the spec's (SMPP 3.4 §4); ``FIELDS`` on each class is the
wire layout the codec's generic encoder and decoder read. Values only: no I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, NamedTuple, Protocol, TypeVar

from smppgw.smpp.constants import CommandId, CommandStatus, Tag
from smppgw.smpp.errors import LocalProtocolError


class TlvKind(Enum):
    """How a known TLV's value is typed (SMPP 3.4 §5.3.2)."""

    INT = "int"  # unsigned big-endian integer of the given size
    CSTR = "cstr"  # C-octet string: text followed by one NUL
    OCTETS = "octets"  # opaque octet string
    NETWORK_ERROR_CODE = "network_error_code"  # 1 octet network type + 2 octets error code
    EMPTY = "empty"  # length 0: presence is the value


class TlvSpec(NamedTuple):
    kind: TlvKind
    min_length: int
    max_length: int


def _int(size: int) -> TlvSpec:
    return TlvSpec(TlvKind.INT, size, size)


# SMPP 3.4 §5.3.2.1-5.3.2.43: value type and length bounds of every standard TLV.
TLV_SPECS: dict[int, TlvSpec] = {
    Tag.DEST_ADDR_SUBUNIT: _int(1),
    Tag.DEST_NETWORK_TYPE: _int(1),
    Tag.DEST_BEARER_TYPE: _int(1),
    Tag.DEST_TELEMATICS_ID: _int(2),
    Tag.SOURCE_ADDR_SUBUNIT: _int(1),
    Tag.SOURCE_NETWORK_TYPE: _int(1),
    Tag.SOURCE_BEARER_TYPE: _int(1),
    Tag.SOURCE_TELEMATICS_ID: _int(1),
    Tag.QOS_TIME_TO_LIVE: _int(4),
    Tag.PAYLOAD_TYPE: _int(1),
    Tag.ADDITIONAL_STATUS_INFO_TEXT: TlvSpec(TlvKind.CSTR, 1, 256),
    Tag.RECEIPTED_MESSAGE_ID: TlvSpec(TlvKind.CSTR, 1, 65),
    Tag.MS_MSG_WAIT_FACILITIES: _int(1),
    Tag.PRIVACY_INDICATOR: _int(1),
    Tag.SOURCE_SUBADDRESS: TlvSpec(TlvKind.OCTETS, 2, 23),
    Tag.DEST_SUBADDRESS: TlvSpec(TlvKind.OCTETS, 2, 23),
    Tag.USER_MESSAGE_REFERENCE: _int(2),
    Tag.USER_RESPONSE_CODE: _int(1),
    Tag.SOURCE_PORT: _int(2),
    Tag.DESTINATION_PORT: _int(2),
    Tag.SAR_MSG_REF_NUM: _int(2),
    Tag.LANGUAGE_INDICATOR: _int(1),
    Tag.SAR_TOTAL_SEGMENTS: _int(1),
    Tag.SAR_SEGMENT_SEQNUM: _int(1),
    Tag.SC_INTERFACE_VERSION: _int(1),
    Tag.CALLBACK_NUM_PRES_IND: _int(1),
    Tag.CALLBACK_NUM_ATAG: TlvSpec(TlvKind.OCTETS, 0, 65),
    Tag.NUMBER_OF_MESSAGES: _int(1),
    Tag.CALLBACK_NUM: TlvSpec(TlvKind.OCTETS, 4, 19),
    Tag.DPF_RESULT: _int(1),
    Tag.SET_DPF: _int(1),
    Tag.MS_AVAILABILITY_STATUS: _int(1),
    Tag.NETWORK_ERROR_CODE: TlvSpec(TlvKind.NETWORK_ERROR_CODE, 3, 3),
    Tag.MESSAGE_PAYLOAD: TlvSpec(TlvKind.OCTETS, 0, 0xFFFF),
    Tag.DELIVERY_FAILURE_REASON: _int(1),
    Tag.MORE_MESSAGES_TO_SEND: _int(1),
    Tag.MESSAGE_STATE: _int(1),
    Tag.USSD_SERVICE_OP: _int(1),
    Tag.DISPLAY_TIME: _int(1),
    Tag.SMS_SIGNAL: _int(2),
    Tag.MS_VALIDITY: _int(1),
    Tag.ALERT_ON_MESSAGE_DELIVERY: TlvSpec(TlvKind.EMPTY, 0, 0),
    Tag.ITS_REPLY_TYPE: _int(1),
    Tag.ITS_SESSION_INFO: _int(2),
}


class NetworkErrorCode(NamedTuple):
    """network_error_code value, SMPP 3.4 §5.3.2.31: network type (1=ANSI-136, 2=IS-95,
    3=GSM, 4=ANSI-41) and the network's own error code."""

    network_type: int
    error_code: int

    def to_bytes(self) -> bytes:
        return struct.pack(">BH", self.network_type, self.error_code)


TlvValue = int | str | bytes | NetworkErrorCode | None


@dataclass(frozen=True, slots=True)
class Tlv:
    """An optional parameter as it was on the wire.

    ``raw`` is the value octets exactly as received, so vendor and unknown TLVs (and known
    ones a provider sends with odd widths) survive decode → encode byte for byte. ``value``
    types it by the spec table; ``Tlv.of`` builds one strictly from a typed value.
    """

    tag: int
    raw: bytes

    @property
    def value(self) -> TlvValue:
        """The typed value for a standard tag; raw bytes for vendor and unknown tags.

        Tolerant: an integer TLV of an unexpected width is read at its actual width, a
        C-string without its NUL is read whole, a network_error_code not 3 octets long is
        given raw.
        """
        read = _VALUE_READERS.get(self.tag)
        return self.raw if read is None else read(self.raw)

    @classmethod
    def of(cls, tag: int, value: TlvValue) -> Tlv:
        """Build a TLV strictly: the value must fit the tag's type and length (§5.3.2)."""
        spec = TLV_SPECS.get(tag)
        name = tag_name(tag)
        if spec is None:
            if isinstance(value, bytes):
                raw = value
            elif isinstance(value, str):
                raw = value.encode("latin-1") + b"\0"
            elif isinstance(value, int):
                raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
            else:
                raise LocalProtocolError(f"{name}: cannot encode {value!r}")
        elif spec.kind is TlvKind.INT:
            if not isinstance(value, int):
                raise LocalProtocolError(f"{name}: expects an integer, got {value!r}")
            try:
                raw = value.to_bytes(spec.max_length, "big")
            except OverflowError:
                raise LocalProtocolError(
                    f"{name}: {value} does not fit in {spec.max_length} octet(s)"
                ) from None
        elif spec.kind is TlvKind.CSTR:
            if not isinstance(value, str):
                raise LocalProtocolError(f"{name}: expects a string, got {value!r}")
            raw = value.encode("latin-1") + b"\0"
        elif spec.kind is TlvKind.NETWORK_ERROR_CODE:
            if isinstance(value, NetworkErrorCode):
                raw = value.to_bytes()
            elif isinstance(value, bytes):
                raw = value
            else:
                raise LocalProtocolError(f"{name}: expects NetworkErrorCode, got {value!r}")
        elif spec.kind is TlvKind.EMPTY:
            raw = b""
        else:
            if not isinstance(value, bytes):
                raise LocalProtocolError(f"{name}: expects bytes, got {value!r}")
            raw = value
        if spec is not None and not spec.min_length <= len(raw) <= spec.max_length:
            raise LocalProtocolError(
                f"{name}: length {len(raw)} outside {spec.min_length}..{spec.max_length}"
            )
        if len(raw) > 0xFFFF:
            raise LocalProtocolError(f"{name}: length {len(raw)} exceeds 65535")
        return cls(tag, raw)


def tag_name(tag: int) -> str:
    """The spec's name of a tag (``receipted_message_id``) or its hex for vendor tags."""
    try:
        return Tag(tag).name.lower()
    except ValueError:
        return f"tlv 0x{tag:04X}"


def cstring_value(raw: bytes) -> str:
    """Text of a C-octet string, with or without its NUL (vendors vary, e.g. Wavy 0x1404)."""
    # partition() is one fast C call; bytes.find(0) parses its arguments slowly (3.11).
    return raw.partition(b"\0")[0].decode("latin-1")


def _int_value(raw: bytes) -> int:
    # int.from_bytes costs as much as the rest of a TLV read: the spec's widths by hand.
    width = len(raw)
    if width == 1:
        return raw[0]
    if width == 2:
        return raw[0] << 8 | raw[1]
    return int.from_bytes(raw, "big")


def _network_error_code_value(raw: bytes) -> NetworkErrorCode | bytes:
    if len(raw) != 3:
        return raw
    return NetworkErrorCode(raw[0], int.from_bytes(raw[1:3], "big"))


def _empty_value(raw: bytes) -> None:
    return None


_READER_OF_KIND: dict[TlvKind, Callable[[bytes], TlvValue]] = {
    TlvKind.INT: _int_value,
    TlvKind.CSTR: cstring_value,
    TlvKind.NETWORK_ERROR_CODE: _network_error_code_value,
    TlvKind.EMPTY: _empty_value,
}
# Tag → how Tlv.value reads it, one dict look-up on the receipt path; octet strings and
# vendor tags are absent (their value is the raw octets).
_VALUE_READERS: dict[int, Callable[[bytes], TlvValue]] = {
    tag: _READER_OF_KIND[spec.kind]
    for tag, spec in TLV_SPECS.items()
    if spec.kind is not TlvKind.OCTETS
}


def find_tlv(tlvs: tuple[Tlv, ...], tag: int) -> Tlv | None:
    """The first TLV with ``tag``; PDUs keep TLVs as an ordered tuple, never a dict."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


# --- building frozen values fast -------------------------------------------------------------


class Writable(Protocol):
    """A value under construction (see ``writable_twin``): any attribute can be stored."""

    def __setattr__(self, name: str, value: object, /) -> None: ...


_T = TypeVar("_T")


def writable_twin(cls: type[object]) -> Callable[[], Writable]:
    """A class whose instances have exactly ``cls``'s slot layout, with plain attribute stores.

    The decoders build a frozen slotted dataclass by storing its fields on a twin instance and
    then assigning ``__class__ = cls`` (``become``): Python allows that between classes of the
    same layout (same base, same ``__slots__``), and the result is an ordinary, frozen ``cls``
    instance. A frozen dataclass pays one ``object.__setattr__`` call per field in ``__init__``
    and a slot descriptor call costs about as much; a plain slot store is about a tenth of
    either, and for a deliver_sm's 20 fields that was most of the decoding time.
    """
    # The class that added the last slots: the twin replaces it, on the same base.
    solid = next(k for k in cls.__mro__ if vars(k).get("__slots__"))
    namespace = {
        "__slots__": vars(solid)["__slots__"],
        # A frozen dataclass guards both __setattr__ and __delattr__ (CPython keeps them in one
        # type slot): take object's for both, so a store is a plain slot store.
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__init__": object.__init__,
    }
    twin: Callable[[], Writable] = type(f"_Writable{cls.__name__}", solid.__bases__, namespace)
    become(twin(), cls)  # an incompatible layout fails here, at import
    return twin


def become(value: Writable, cls: type[_T]) -> _T:
    """Finish a value built on ``writable_twin(cls)``: it is a ``cls`` from now on."""
    value.__class__ = cls
    return value  # type: ignore[return-value]  # the assignment above made it a cls


def _become_writable(value: object, twin: Callable[[], Writable]) -> Writable:
    """The reverse of ``become``, for an ``__init__`` that fills a frozen value in place:
    ``value`` is an instance of ``twin`` (its writable twin) until it becomes its class again.
    """
    object.__setattr__(value, "__class__", twin)
    return value  # type: ignore[return-value]  # the assignment above made it a twin


# --- nested values of submit_multi and submit_multi_resp (SMPP 3.4 §4.5.1, §4.5.2) -----------


@dataclass(frozen=True, slots=True)
class SmeAddress:
    """dest_flag 1: an SME address inside submit_multi's dest_address list."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """dest_flag 2: a distribution list name inside submit_multi's dest_address list."""

    dl_name: str = ""


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """One entry of submit_multi_resp's unsuccess_sme list."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


# --- field layout ---------------------------------------------------------------------------


class Field(NamedTuple):
    """One mandatory field: its name, wire kind and, for C-strings, max length with NUL.

    Kinds: ``u8``, ``cstr``, ``sm`` (sm_length + short_message), ``dests``
    (number_of_dests + dest_address list), ``unsuccess`` (no_unsuccess + unsuccess_sme list).
    ``status`` is the command_status a peer's violation of this field is answered with.
    """

    name: str
    kind: str
    max_length: int = 0
    status: CommandStatus = CommandStatus.ESME_RINVPARLEN


S = CommandStatus


def _c(name: str, max_length: int, status: CommandStatus = S.ESME_RINVPARLEN) -> Field:
    return Field(name, "cstr", max_length, status)


def _u8(name: str) -> Field:
    return Field(name, "u8")


_SM = Field("short_message", "sm", 254, S.ESME_RINVMSGLEN)
_SERVICE_TYPE = _c("service_type", 6, S.ESME_RINVSERTYP)
_SCHEDULE = _c("schedule_delivery_time", 17, S.ESME_RINVSCHED)
_VALIDITY = _c("validity_period", 17, S.ESME_RINVEXPIRY)
_MESSAGE_ID = _c("message_id", 65, S.ESME_RINVMSGID)


def _source(max_length: int = 21) -> tuple[Field, ...]:
    return (
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _c("source_addr", max_length, S.ESME_RINVSRCADR),
    )


def _dest(max_length: int = 21) -> tuple[Field, ...]:
    return (
        _u8("dest_addr_ton"),
        _u8("dest_addr_npi"),
        _c("destination_addr", max_length, S.ESME_RINVDSTADR),
    )


_BIND_FIELDS = (
    _c("system_id", 16, S.ESME_RINVSYSID),
    _c("password", 9, S.ESME_RINVPASWD),
    _c("system_type", 13, S.ESME_RINVSYSTYP),
    _u8("interface_version"),
    _u8("addr_ton"),
    _u8("addr_npi"),
    _c("address_range", 41),
)
_BIND_RESP_FIELDS = (_c("system_id", 16, S.ESME_RINVSYSID),)
_SM_FIELDS = (
    _SERVICE_TYPE,
    *_source(),
    *_dest(),
    _u8("esm_class"),
    _u8("protocol_id"),
    _u8("priority_flag"),
    _SCHEDULE,
    _VALIDITY,
    _u8("registered_delivery"),
    _u8("replace_if_present_flag"),
    _u8("data_coding"),
    _u8("sm_default_msg_id"),
    _SM,
)


# --- PDUs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Common header fields. command_length is derived by the codec, never stored."""

    command_id: ClassVar[CommandId]
    FIELDS: ClassVar[tuple[Field, ...]] = ()

    sequence_number: int = 0
    command_status: int = 0
    tlvs: tuple[Tlv, ...] = ()

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def tlv(self, tag: int) -> Tlv | None:
        """The first TLV with ``tag`` (find_tlv, written out: the receipt path calls it)."""
        for tlv in self.tlvs:
            if tlv.tag == tag:
                return tlv
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindBody(Pdu):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    FIELDS = _BIND_FIELDS

    def __repr__(self) -> str:
        # The password never appears in a log line or traceback.
        return (
            f"{type(self).__name__}(sequence_number={self.sequence_number}, "
            f"system_id={self.system_id!r}, password='***', system_type={self.system_type!r}, "
            f"interface_version=0x{self.interface_version:02X})"
        )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class BindTransmitter(_BindBody):
    command_id = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class BindReceiver(_BindBody):
    command_id = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class BindTransceiver(_BindBody):
    command_id = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindRespBody(Pdu):
    system_id: str = ""

    FIELDS = _BIND_RESP_FIELDS


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindRespBody):
    command_id = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindRespBody):
    command_id = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindRespBody):
    command_id = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Pdu):
    command_id = CommandId.OUTBIND
    FIELDS = (_c("system_id", 16, S.ESME_RINVSYSID), _c("password", 9, S.ESME_RINVPASWD))

    system_id: str = ""
    password: str = ""

    def __repr__(self) -> str:
        return f"Outbind(sequence_number={self.sequence_number}, system_id={self.system_id!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    command_id = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessageBody(Pdu):
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    FIELDS = _SM_FIELDS

    def __init__(
        self,
        *,
        sequence_number: int = 0,
        command_status: int = 0,
        tlvs: tuple[Tlv, ...] = (),
        service_type: str = "",
        source_addr_ton: int = 0,
        source_addr_npi: int = 0,
        source_addr: str = "",
        dest_addr_ton: int = 0,
        dest_addr_npi: int = 0,
        destination_addr: str = "",
        esm_class: int = 0,
        protocol_id: int = 0,
        priority_flag: int = 0,
        schedule_delivery_time: str = "",
        validity_period: str = "",
        registered_delivery: int = 0,
        replace_if_present_flag: int = 0,
        data_coding: int = 0,
        sm_default_msg_id: int = 0,
        short_message: bytes = b"",
    ) -> None:
        # Written out rather than generated: a frozen dataclass's __init__ pays one
        # object.__setattr__ call per field, and every segment sent builds one of these with
        # 20 fields. The fields are stored plainly on the writable twin (see writable_twin),
        # which then becomes the class it was. tests/unit/test_pdu.py holds this signature
        # to the dataclass fields, names, order and defaults.
        cls = type(self)
        value: Writable = _become_writable(self, _ShortMessageTwin)
        value.sequence_number = sequence_number
        value.command_status = command_status
        value.tlvs = tlvs
        value.service_type = service_type
        value.source_addr_ton = source_addr_ton
        value.source_addr_npi = source_addr_npi
        value.source_addr = source_addr
        value.dest_addr_ton = dest_addr_ton
        value.dest_addr_npi = dest_addr_npi
        value.destination_addr = destination_addr
        value.esm_class = esm_class
        value.protocol_id = protocol_id
        value.priority_flag = priority_flag
        value.schedule_delivery_time = schedule_delivery_time
        value.validity_period = validity_period
        value.registered_delivery = registered_delivery
        value.replace_if_present_flag = replace_if_present_flag
        value.data_coding = data_coding
        value.sm_default_msg_id = sm_default_msg_id
        value.short_message = short_message
        value.__class__ = cls


# init=False: the subclasses keep _ShortMessageBody's __init__ (dataclass would write its own).
@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class SubmitSm(_ShortMessageBody):
    """SMPP 3.4 §4.4.1."""

    command_id = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class DeliverSm(_ShortMessageBody):
    """SMPP 3.4 §4.6.1. Carries an MO message or, with esm_class bit 2, a delivery receipt."""

    command_id = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    message_id: str = ""

    FIELDS = (_MESSAGE_ID,)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    """message_id is unused and NULL in 3.4 (§4.6.2)."""

    command_id = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    command_id = CommandId.DATA_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMulti(Pdu):
    """SMPP 3.4 §4.5.1. Qikberry does not accept it; kept for completeness of the codec."""

    command_id = CommandId.SUBMIT_MULTI
    FIELDS = (
        _SERVICE_TYPE,
        *_source(),
        Field("dest_address", "dests", 254, S.ESME_RINVNUMDESTS),
        *_SM_FIELDS[7:],
    )

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_address: tuple[SmeAddress | DistributionList, ...] = ()
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMultiResp(Pdu):
    command_id = CommandId.SUBMIT_MULTI_RESP
    FIELDS = (_MESSAGE_ID, Field("unsuccess_sme", "unsuccess", 254, S.ESME_RINVNUMDESTS))

    message_id: str = ""
    unsuccess_sme: tuple[UnsuccessSme, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    """SMPP 3.4 §4.7.1: addresses up to 65 octets, text in message_payload."""

    command_id = CommandId.DATA_SM
    FIELDS = (
        _SERVICE_TYPE,
        *_source(65),
        *_dest(65),
        _u8("esm_class"),
        _u8("registered_delivery"),
        _u8("data_coding"),
    )

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    """SMPP 3.4 §4.8.1."""

    command_id = CommandId.QUERY_SM
    FIELDS = (_MESSAGE_ID, *_source())

    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    """SMPP 3.4 §4.8.2."""

    command_id = CommandId.QUERY_SM_RESP
    FIELDS = (_MESSAGE_ID, _c("final_date", 17), _u8("message_state"), _u8("error_code"))

    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSm(Pdu):
    """SMPP 3.4 §4.9.1."""

    command_id = CommandId.CANCEL_SM
    FIELDS = (_SERVICE_TYPE, _MESSAGE_ID, *_source(), *_dest())

    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSmResp(Pdu):
    command_id = CommandId.CANCEL_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSm(Pdu):
    """SMPP 3.4 §4.10.1."""

    command_id = CommandId.REPLACE_SM
    FIELDS = (
        _MESSAGE_ID,
        *_source(),
        _SCHEDULE,
        _VALIDITY,
        _u8("registered_delivery"),
        _u8("sm_default_msg_id"),
        _SM,
    )

    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSmResp(Pdu):
    command_id = CommandId.REPLACE_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Pdu):
    """SMPP 3.4 §4.12.1."""

    command_id = CommandId.ALERT_NOTIFICATION
    FIELDS = (
        *_source(65),
        _u8("esme_addr_ton"),
        _u8("esme_addr_npi"),
        _c("esme_addr", 65),
    )

    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


_ShortMessageTwin = writable_twin(_ShortMessageBody)

PDU_CLASSES: tuple[type[Pdu], ...] = (
    GenericNack,
    BindReceiver,
    BindReceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    Unbind,
    UnbindResp,
    ReplaceSm,
    ReplaceSmResp,
    CancelSm,
    CancelSmResp,
    BindTransceiver,
    BindTransceiverResp,
    Outbind,
    EnquireLink,
    EnquireLinkResp,
    SubmitMulti,
    SubmitMultiResp,
    AlertNotification,
    DataSm,
    DataSmResp,
)

PDU_BY_COMMAND_ID: dict[int, type[Pdu]] = {cls.command_id: cls for cls in PDU_CLASSES}

RESPONSE_CLASS: dict[type[Pdu], type[Pdu]] = {
    BindReceiver: BindReceiverResp,
    BindTransmitter: BindTransmitterResp,
    BindTransceiver: BindTransceiverResp,
    QuerySm: QuerySmResp,
    SubmitSm: SubmitSmResp,
    DeliverSm: DeliverSmResp,
    Unbind: UnbindResp,
    ReplaceSm: ReplaceSmResp,
    CancelSm: CancelSmResp,
    EnquireLink: EnquireLinkResp,
    SubmitMulti: SubmitMultiResp,
    DataSm: DataSmResp,
}
