"""SMPP 3.4 wire codec: ``encode(pdu) -> bytes``, ``decode(frame) -> Pdu`` and FrameDecoder.

This is the per-PDU hot path of the gateway, in two layers:

- a generic encoder and decoder that read each class's ``FIELDS`` layout: every PDU, every
  strict check, and the one place where errors are worded;
- hand-written encoders and decoders for the PDUs a bind exchanges by the thousand
  (submit_sm and deliver_sm, the message_id responses, the header-only PDUs). They handle the
  well-formed case in one pass with precompiled ``struct.Struct``s and no per-field loop, and
  hand anything unusual (a field too long, a truncated body, non-ASCII text, a value out of
  range) to the generic layer, which then produces the same octets, value or error.

Strict when encoding; tolerant when decoding only behind ``lenient``. No I/O, no clock.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator

from smppgw.smpp.constants import RESPONSE_BIT, CommandStatus
from smppgw.smpp.errors import FrameError, LocalProtocolError, PduDecodeError, PduEncodeError
from smppgw.smpp.pdu import (
    PDU_CLASSES,
    TLV_SPECS,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    Field,
    Pdu,
    SmeAddress,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    UnsuccessSme,
    Writable,
    tag_name,
    writable_twin,
)

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = 16
_U32 = struct.Struct(">I")
_TLV_HEAD = struct.Struct(">HH")

#: The largest PDU accepted by default: a data_sm or submit_sm with a full 64 KiB
#: message_payload plus its mandatory fields and a few TLVs.
DEFAULT_MAX_COMMAND_LENGTH = 0x10000 + 1024

_S = CommandStatus
_unpack_header = HEADER.unpack_from

# Strict TLV lengths, SMPP 3.4 §5.3.2: (min, max) per standard tag.
_TLV_LENGTHS: dict[int, tuple[int, int]] = {
    tag: (spec.min_length, spec.max_length) for tag, spec in TLV_SPECS.items()
}


# --- errors of the decoders, worded once by _decode_frame ---------------------------------


class _Truncated(Exception):
    """The body ended before the mandatory fields did; mapped to PduDecodeError."""

    def __init__(self, field: str) -> None:
        self.field = field


class _FieldError(Exception):
    def __init__(self, detail: str, status: CommandStatus) -> None:
        self.detail = detail
        self.status = status


def _encode_error(pdu: Pdu, field: str, rule: str) -> PduEncodeError:
    return PduEncodeError(type(pdu).__name__, field, rule)


# --- TLVs (SMPP 3.4 §3.2.4, §5.3) -----------------------------------------------------------

_new_tlv = writable_twin(Tlv)


def decode_tlvs(frame: bytes, pos: int, end: int, lenient: bool) -> tuple[Tlv, ...]:
    """Parse the optional parameter stream between ``pos`` and ``end`` (SMPP 3.4 §3.2.4)."""
    tlvs = []
    unpack_head = _TLV_HEAD.unpack_from
    lengths_of = _TLV_LENGTHS
    while pos < end:
        if end - pos < 4:
            raise _FieldError(
                f"{end - pos} stray octet(s) after the last TLV", _S.ESME_RINVOPTPARSTREAM
            )
        tag, length = unpack_head(frame, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise _FieldError(
                f"{tag_name(tag)} length {length} runs past the PDU", _S.ESME_RINVOPTPARSTREAM
            )
        if not lenient:
            bounds = lengths_of.get(tag)
            if bounds is not None and not bounds[0] <= length <= bounds[1]:
                raise _FieldError(
                    f"{tag_name(tag)} length {length} outside "
                    f"{bounds[0]}..{bounds[1]} (SMPP 3.4 §5.3.2)",
                    _S.ESME_RINVPARLEN,
                )
        tlv = _new_tlv()
        tlv.tag = tag
        tlv.raw = frame[pos:stop]
        tlv.__class__ = Tlv  # become(tlv, Tlv), written out
        tlvs.append(tlv)
        pos = stop
    return tuple(tlvs)  # type: ignore[arg-type]  # each one a Tlv now


def encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    pack_head = _TLV_HEAD.pack
    out = []
    for tlv in tlvs:
        raw = tlv.raw
        if len(raw) > 0xFFFF:
            raise PduEncodeError(
                "Tlv", "tlvs", f"{tag_name(tlv.tag)}: length {len(raw)} exceeds 65535")
        try:
            out.append(pack_head(tlv.tag, len(raw)))
        except struct.error:
            raise PduEncodeError(
                "Tlv", "tlvs", f"tag {tlv.tag!r} is not an integer 0..0xFFFF") from None
        out.append(raw)
    return b"".join(out)


# --- the generic layer: every PDU, from its FIELDS --------------------------------------------


def _read_cstr(frame: bytes, pos: int, end: int, field: Field, lenient: bool) -> tuple[str, int]:
    nul = frame.find(0, pos, end)
    if nul < 0:
        raise _Truncated(field.name)
    if nul - pos >= field.max_length and not lenient:
        raise _FieldError(f"{field.name} longer than {field.max_length - 1} octets", field.status)
    return frame[pos:nul].decode("latin-1"), nul + 1


_DEST_ADDR = Field("destination_addr", "cstr", 21, _S.ESME_RINVDSTADR)
_DL_NAME = Field("dl_name", "cstr", 21, _S.ESME_RINVDLNAME)


def _decode_dests(
    frame: bytes, pos: int, end: int, lenient: bool
) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
    """submit_multi's number_of_dests and dest_address list (SMPP 3.4 §4.5.1.1)."""
    if pos >= end:
        raise _Truncated("number_of_dests")
    count = frame[pos]
    pos += 1
    dests: list[SmeAddress | DistributionList] = []
    for _ in range(count):
        if pos >= end:
            raise _Truncated("dest_flag")
        flag = frame[pos]
        pos += 1
        if flag == 1:
            if pos + 2 > end:
                raise _Truncated("dest_addr_ton")
            ton, npi = frame[pos], frame[pos + 1]
            addr, pos = _read_cstr(frame, pos + 2, end, _DEST_ADDR, lenient)
            dests.append(SmeAddress(dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=addr))
        elif flag == 2:
            name, pos = _read_cstr(frame, pos, end, _DL_NAME, lenient)
            dests.append(DistributionList(dl_name=name))
        else:
            raise _FieldError(f"dest_flag {flag} is neither 1 nor 2", _S.ESME_RINVDESTFLAG)
    return tuple(dests), pos


def _decode_unsuccess(
    frame: bytes, pos: int, end: int, lenient: bool
) -> tuple[tuple[UnsuccessSme, ...], int]:
    """submit_multi_resp's no_unsuccess and unsuccess_sme list (SMPP 3.4 §4.5.2)."""
    if pos >= end:
        raise _Truncated("no_unsuccess")
    count = frame[pos]
    pos += 1
    items = []
    for _ in range(count):
        if pos + 2 > end:
            raise _Truncated("unsuccess_sme")
        ton, npi = frame[pos], frame[pos + 1]
        addr, pos = _read_cstr(frame, pos + 2, end, _DEST_ADDR, lenient)
        if pos + 4 > end:
            raise _Truncated("error_status_code")
        (code,) = _U32.unpack_from(frame, pos)
        pos += 4
        items.append(
            UnsuccessSme(
                dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=addr, error_status_code=code
            )
        )
    return tuple(items), pos


def _u8_runs(fields: tuple[Field, ...]) -> list[tuple[Field, ...]]:
    """FIELDS grouped so that adjacent u8 fields form one run: a run is checked and reported
    as one (``esm_class/protocol_id/priority_flag``), other fields stand alone."""
    runs: list[tuple[Field, ...]] = []
    for field in fields:
        if field.kind == "u8" and runs and runs[-1][0].kind == "u8":
            runs[-1] = (*runs[-1], field)
        else:
            runs.append((field,))
    return runs


_RUNS: dict[type[Pdu], list[tuple[Field, ...]]] = {cls: _u8_runs(cls.FIELDS) for cls in PDU_CLASSES}


def _decode_generic(
    cls: type[Pdu],
    frame: bytes,
    end: int,
    sequence_number: int,
    command_status: int,
    lenient: bool,
) -> Pdu:
    """Any PDU, field by field from its FIELDS; the reference the fast decoders defer to."""
    pos = HEADER_LENGTH
    if cls.command_id & RESPONSE_BIT and pos == end:
        # SMPP 3.4 §4.1-4.12: a response with an error status may carry no body at all,
        # and several SMSCs omit it; every field then keeps its default.
        return cls(sequence_number=sequence_number, command_status=command_status)
    values: dict[str, object] = {}
    for run in _RUNS[cls]:
        field = run[0]
        kind = field.kind
        if kind == "u8":
            if pos + len(run) > end:
                raise _Truncated(field.name)
            for item in run:
                values[item.name] = frame[pos]
                pos += 1
        elif kind == "cstr":
            values[field.name], pos = _read_cstr(frame, pos, end, field, lenient)
        elif kind == "sm":
            if pos >= end:
                raise _Truncated("sm_length")
            sm_length = frame[pos]
            pos += 1
            if pos + sm_length > end:
                raise _FieldError(f"sm_length {sm_length} runs past the PDU", _S.ESME_RINVMSGLEN)
            if sm_length > field.max_length and not lenient:
                raise _FieldError(
                    f"sm_length {sm_length} exceeds {field.max_length}", _S.ESME_RINVMSGLEN
                )
            values[field.name] = frame[pos : pos + sm_length]
            pos += sm_length
        elif kind == "dests":
            values[field.name], pos = _decode_dests(frame, pos, end, lenient)
        elif kind == "unsuccess":
            values[field.name], pos = _decode_unsuccess(frame, pos, end, lenient)
        else:  # pragma: no cover - FIELDS are ours
            raise AssertionError(kind)
    tlvs = decode_tlvs(frame, pos, end, lenient) if pos < end else ()
    return cls(sequence_number=sequence_number, command_status=command_status, tlvs=tlvs, **values)


def _strict_cstr(pdu: Pdu, field: str, value: object, max_length: int) -> bytes:
    """A C-octet string as we send it: Latin-1 text, no NUL inside, within the spec's size."""
    if not isinstance(value, str):
        raise _encode_error(pdu, field, f"{value!r} is not Latin-1 text")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise _encode_error(pdu, field, f"{value!r} is not Latin-1 text") from None
    if len(raw) >= max_length:
        raise _encode_error(pdu, field, f"longer than {max_length - 1} octets")
    if 0 in raw:
        raise _encode_error(pdu, field, "contains a NUL octet")
    return raw + b"\0"


def _encode_dests(pdu: Pdu, dests: tuple[SmeAddress | DistributionList, ...]) -> bytes:
    if not 1 <= len(dests) <= 254:
        raise _encode_error(pdu, "dest_address", f"{len(dests)} destinations, allowed 1..254")
    out = [bytes((len(dests),))]
    for dest in dests:
        if isinstance(dest, SmeAddress):
            addr = _strict_cstr(pdu, "destination_addr", dest.destination_addr, 21)
            out.append(bytes((1, dest.dest_addr_ton, dest.dest_addr_npi)) + addr)
        else:
            out.append(b"\x02" + _strict_cstr(pdu, "dl_name", dest.dl_name, 21))
    return b"".join(out)


def _encode_unsuccess(pdu: Pdu, items: tuple[UnsuccessSme, ...]) -> bytes:
    if len(items) > 255:
        raise _encode_error(pdu, "unsuccess_sme", f"{len(items)} entries, allowed 0..255")
    out = [bytes((len(items),))]
    for item in items:
        out.append(bytes((item.dest_addr_ton, item.dest_addr_npi)))
        out.append(_strict_cstr(pdu, "destination_addr", item.destination_addr, 21))
        out.append(_U32.pack(item.error_status_code))
    return b"".join(out)


def _is_body_less(pdu: Pdu) -> bool:
    """SMPP 3.4 §4.4.2: the submit_sm_resp body "is not returned if the command_status field
    contains a non-zero value". We apply that to every response whose fields are all unset,
    so decode → encode of a body-less error response gives the same octets."""
    cls = type(pdu)
    return bool(
        cls.command_id & RESPONSE_BIT
        and cls.FIELDS
        and pdu.command_status
        and not pdu.tlvs
        and all(getattr(pdu, f.name) == _DEFAULTS[cls][f.name] for f in cls.FIELDS)
    )


_DEFAULTS: dict[type[Pdu], dict[str, object]] = {
    cls: {f.name: getattr(cls(), f.name) for f in cls.FIELDS} for cls in PDU_CLASSES
}


def _encode_generic(pdu: Pdu, sequence_number: int | None = None) -> bytes:
    """Any PDU, field by field, every value checked; the reference of the fast encoders.

    ``sequence_number`` goes into the header in place of the PDU's own when given."""
    cls = type(pdu)
    if sequence_number is None:
        sequence_number = pdu.sequence_number
    if _is_body_less(pdu):
        return _pack_header_checked(pdu, HEADER_LENGTH, sequence_number)
    parts: list[bytes | bytearray] = []
    for run in _RUNS[cls]:
        field = run[0]
        kind = field.kind
        if kind == "u8":
            try:
                parts.append(bytes(getattr(pdu, item.name) for item in run))
            except (ValueError, TypeError):
                names = "/".join(item.name for item in run)
                raise _encode_error(pdu, names, "each must be an integer 0..255") from None
        elif kind == "cstr":
            parts.append(_strict_cstr(pdu, field.name, getattr(pdu, field.name), field.max_length))
        elif kind == "sm":
            value = getattr(pdu, field.name)
            if not isinstance(value, bytes | bytearray):
                raise _encode_error(pdu, field.name, f"{type(value).__name__} is not bytes")
            if len(value) > field.max_length:
                raise _encode_error(
                    pdu,
                    field.name,
                    f"{len(value)} octets exceed {field.max_length}; use message_payload",
                )
            parts.append(bytes((len(value),)))
            parts.append(value)
        elif kind == "dests":
            parts.append(_encode_dests(pdu, getattr(pdu, field.name)))
        elif kind == "unsuccess":
            parts.append(_encode_unsuccess(pdu, getattr(pdu, field.name)))
        else:  # pragma: no cover - FIELDS are ours
            raise AssertionError(kind)
    if pdu.tlvs:
        parts.append(encode_tlvs(pdu.tlvs))
    body = b"".join(parts)
    return _pack_header_checked(pdu, HEADER_LENGTH + len(body), sequence_number) + body


def _pack_header_checked(pdu: Pdu, command_length: int, sequence_number: int) -> bytes:
    try:
        return HEADER.pack(command_length, pdu.command_id, pdu.command_status, sequence_number)
    except struct.error:
        raise _encode_error(
            pdu, "sequence_number/command_status", "each must be 0..0xFFFFFFFF"
        ) from None


# --- the fast layer: hand-written, for the PDUs of every message --------------------------
#
# Each fast decoder takes the well-formed case and returns the generic decoder's result for
# anything else (it never words an error itself); each fast encoder does the same with the
# generic encoder. Test: tests/unit/test_codec_properties.py compares both layers.

_pack_header = HEADER.pack
_pack_ton_npi = struct.Struct(">xBB").pack  # NUL of the C-string before, then ton, npi
_pack_esm_pid_priority = struct.Struct(">xBBB").pack
_pack_registered_to_sm_length = struct.Struct(">xBBBBB").pack

# A decoder takes the PDU's class and its writable twin (see pdu.writable_twin), the frame,
# its length and the header fields it needs.
Decoder = Callable[[type[Pdu], Callable[[], Writable], bytes, int, int, int, bool], Pdu]


def _decode_header_only(
    cls: type[Pdu],
    twin: Callable[[], Writable],
    frame: bytes,
    end: int,
    sequence_number: int,
    command_status: int,
    lenient: bool,
) -> Pdu:
    """generic_nack, enquire_link(_resp), unbind(_resp), cancel_sm_resp, replace_sm_resp."""
    pdu = twin()
    pdu.sequence_number = sequence_number
    pdu.command_status = command_status
    pdu.tlvs = decode_tlvs(frame, HEADER_LENGTH, end, lenient) if end > HEADER_LENGTH else ()
    pdu.__class__ = cls
    return pdu  # type: ignore[return-value]  # a cls now


def _decode_message_id_resp(
    cls: type[Pdu],
    twin: Callable[[], Writable],
    frame: bytes,
    end: int,
    sequence_number: int,
    command_status: int,
    lenient: bool,
) -> Pdu:
    """submit_sm_resp, deliver_sm_resp, data_sm_resp: a message_id, maybe TLVs."""
    if frame[end - 1] == 0 and end > HEADER_LENGTH:
        # The usual answer: the message_id's NUL ends the PDU. (bytes.find parses its
        # arguments slowly: one slice and one decode, then a check on the text, cost less.)
        message_id = frame[HEADER_LENGTH : end - 1].decode("latin-1")
        tlv_start = end
        if "\0" in message_id:  # an earlier NUL: TLVs follow the message_id
            message_id, _, tlv_text = message_id.partition("\0")
            tlv_start = end - 1 - len(tlv_text)
    else:
        nul = frame.find(0, HEADER_LENGTH)
        if nul < 0:  # body-less or truncated: generic
            return _decode_generic(cls, frame, end, sequence_number, command_status, lenient)
        message_id = frame[HEADER_LENGTH:nul].decode("latin-1")
        tlv_start = nul + 1
    if len(message_id) > 64:  # over-long: refused, or read by the generic decoder if lenient
        return _decode_generic(cls, frame, end, sequence_number, command_status, lenient)
    tlvs = decode_tlvs(frame, tlv_start, end, lenient) if tlv_start < end else ()
    pdu = twin()
    pdu.sequence_number = sequence_number
    pdu.command_status = command_status
    pdu.tlvs = tlvs
    pdu.message_id = message_id
    pdu.__class__ = cls
    return pdu  # type: ignore[return-value]  # a cls now


# submit_sm and deliver_sm up to sm_length (_SM_FIELDS, SMPP 3.4 §4.4.1, §4.6.1), matched on
# the frame read as Latin-1 (one character per octet): each C-string within its size and
# NUL-terminated, each u8 field one character. One match does what five bytes.find calls
# and five decodes did; anything it does not match goes to the generic decoder.
_SHORT_MESSAGE_FIELDS = re.compile(
    "([^\0]{0,5})\0(.)(.)([^\0]{0,20})\0(.)(.)([^\0]{0,20})\0(.)(.)(.)"
    "([^\0]{0,16})\0([^\0]{0,16})\0(.)(.)(.)(.)(.)",
    re.DOTALL,
)


def _decode_short_message(
    cls: type[Pdu],
    twin: Callable[[], Writable],
    frame: bytes,
    end: int,
    sequence_number: int,
    command_status: int,
    lenient: bool,
) -> Pdu:
    """submit_sm and deliver_sm, the layout of _SM_FIELDS."""
    match = _SHORT_MESSAGE_FIELDS.match(frame.decode("latin-1"), HEADER_LENGTH)
    if match is None:
        return _decode_generic(cls, frame, end, sequence_number, command_status, lenient)
    sm_start = match.end()
    (
        service_type, source_addr_ton, source_addr_npi, source_addr,
        dest_addr_ton, dest_addr_npi, destination_addr,
        esm_class, protocol_id, priority_flag, schedule_delivery_time, validity_period,
        registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length,
    ) = match.groups()  # fmt: skip
    sm_end = sm_start + ord(sm_length)
    if sm_end > end or sm_end - sm_start > 254:  # runs past the PDU, or 255: generic
        return _decode_generic(cls, frame, end, sequence_number, command_status, lenient)
    pdu = twin()
    pdu.sequence_number = sequence_number
    pdu.command_status = command_status
    pdu.tlvs = decode_tlvs(frame, sm_end, end, lenient) if sm_end < end else ()
    pdu.service_type = service_type
    pdu.source_addr_ton = ord(source_addr_ton)
    pdu.source_addr_npi = ord(source_addr_npi)
    pdu.source_addr = source_addr
    pdu.dest_addr_ton = ord(dest_addr_ton)
    pdu.dest_addr_npi = ord(dest_addr_npi)
    pdu.destination_addr = destination_addr
    pdu.esm_class = ord(esm_class)
    pdu.protocol_id = ord(protocol_id)
    pdu.priority_flag = ord(priority_flag)
    pdu.schedule_delivery_time = schedule_delivery_time
    pdu.validity_period = validity_period
    pdu.registered_delivery = ord(registered_delivery)
    pdu.replace_if_present_flag = ord(replace_if_present_flag)
    pdu.data_coding = ord(data_coding)
    pdu.sm_default_msg_id = ord(sm_default_msg_id)
    pdu.short_message = frame[sm_start:sm_end]
    pdu.__class__ = cls
    return pdu  # type: ignore[return-value]  # a cls now


def _decode_other(
    cls: type[Pdu],
    twin: Callable[[], Writable],
    frame: bytes,
    end: int,
    sequence_number: int,
    command_status: int,
    lenient: bool,
) -> Pdu:
    """The PDUs without a fast decoder (binds, data_sm, query_sm ...): the generic one."""
    return _decode_generic(cls, frame, end, sequence_number, command_status, lenient)


def _encode_header_only(pdu: Pdu, sequence_number: int) -> bytes:
    if pdu.tlvs:
        return _encode_generic(pdu, sequence_number)
    try:
        return _pack_header(HEADER_LENGTH, pdu.command_id, pdu.command_status, sequence_number)
    except struct.error:
        return _encode_generic(pdu, sequence_number)  # words the error


def _encode_message_id_resp(pdu: SubmitSmResp, sequence_number: int) -> bytes:
    message_id = pdu.message_id
    if (
        type(message_id) is not str
        or not message_id.isascii()
        or len(message_id) > 64
        or "\0" in message_id
        or pdu.tlvs
        or (pdu.command_status and not message_id)  # body-less error response
    ):
        return _encode_generic(pdu, sequence_number)
    try:
        header = _pack_header(
            HEADER_LENGTH + 1 + len(message_id),
            pdu.command_id,
            pdu.command_status,
            sequence_number,
        )
    except struct.error:
        return _encode_generic(pdu, sequence_number)
    return header + message_id.encode("ascii") + b"\0"


def _encode_short_message(pdu: SubmitSm, sequence_number: int) -> bytes:
    service_type = pdu.service_type
    source_addr = pdu.source_addr
    destination_addr = pdu.destination_addr
    schedule_delivery_time = pdu.schedule_delivery_time
    validity_period = pdu.validity_period
    short_message = pdu.short_message
    try:  # one concatenation checks that the five are text, and gives their total length
        texts = (
            service_type + source_addr + destination_addr + schedule_delivery_time
            + validity_period
        )
    except TypeError:
        return _encode_generic(pdu, sequence_number)
    if (
        type(texts) is not str  # five bytes (or lists) add up too
        or type(short_message) is not bytes
        or len(service_type) > 5
        or len(source_addr) > 20
        or len(destination_addr) > 20
        or len(schedule_delivery_time) > 16
        or len(validity_period) > 16
        or len(short_message) > 254
        or not texts.isascii()  # Latin-1 beyond ASCII: the generic layer
        or "\0" in texts  # a NUL, which the generic layer refuses
    ):
        return _encode_generic(pdu, sequence_number)
    try:
        parts = [
            b"",  # the header, once the length is known
            service_type.encode(),
            _pack_ton_npi(pdu.source_addr_ton, pdu.source_addr_npi),
            source_addr.encode(),
            _pack_ton_npi(pdu.dest_addr_ton, pdu.dest_addr_npi),
            destination_addr.encode(),
            _pack_esm_pid_priority(pdu.esm_class, pdu.protocol_id, pdu.priority_flag),
            schedule_delivery_time.encode(),
            b"\0",
            validity_period.encode(),
            _pack_registered_to_sm_length(
                pdu.registered_delivery,
                pdu.replace_if_present_flag,
                pdu.data_coding,
                pdu.sm_default_msg_id,
                len(short_message),
            ),
            short_message,
        ]
        # The header, 5 NULs and 12 one-octet fields, the texts (ASCII: an octet each).
        command_length = HEADER_LENGTH + 17 + len(texts) + len(short_message)
        if pdu.tlvs:
            tlv_octets = encode_tlvs(pdu.tlvs)
            parts.append(tlv_octets)
            command_length += len(tlv_octets)
        parts[0] = _pack_header(
            command_length, pdu.command_id, pdu.command_status, sequence_number
        )
    except struct.error:
        # a u8 or header field out of range: worded there
        return _encode_generic(pdu, sequence_number)
    return b"".join(parts)


_HEADER_ONLY = tuple(cls for cls in PDU_CLASSES if not cls.FIELDS)

_DECODERS: dict[int, tuple[Decoder, type[Pdu], Callable[[], Writable]]] = {}
# An encoder takes the PDU and the sequence number to put in its header.
_ENCODERS: dict[type[Pdu], Callable[[Pdu, int], bytes]] = {}
for _cls in PDU_CLASSES:
    if _cls in _HEADER_ONLY:
        _decoder, _encoder = _decode_header_only, _encode_header_only
    elif _cls in (SubmitSm, DeliverSm):
        _decoder, _encoder = _decode_short_message, _encode_short_message  # type: ignore[assignment]
    elif _cls in (SubmitSmResp, DeliverSmResp, DataSmResp):
        _decoder, _encoder = _decode_message_id_resp, _encode_message_id_resp  # type: ignore[assignment]
    else:
        _decoder, _encoder = _decode_other, _encode_generic
    _DECODERS[_cls.command_id] = (_decoder, _cls, writable_twin(_cls))
    _ENCODERS[_cls] = _encoder
del _cls, _decoder, _encoder


# --- public API -------------------------------------------------------------------------------


def encode(pdu: Pdu, sequence_number: int | None = None) -> bytes:
    """The PDU's octets, header included. Raises PduEncodeError (a LocalProtocolError) for
    values the spec forbids.

    ``sequence_number``, when given, goes into the header instead of the PDU's own: the
    session numbers the caller's request that way without building a copy of it."""
    try:
        encoder = _ENCODERS[type(pdu)]
    except KeyError:
        raise LocalProtocolError(f"not a PDU: {pdu!r}") from None
    return encoder(pdu, pdu.sequence_number if sequence_number is None else sequence_number)


def decode(frame: bytes, *, lenient: bool = False) -> Pdu:
    """Decode exactly one PDU. ``frame`` must hold the whole PDU and nothing else.

    Raises FrameError when command_length disagrees with the frame, PduDecodeError (with the
    status to answer and the sequence number) for a malformed body or unknown command_id.
    """
    end = len(frame)
    if end < HEADER_LENGTH:
        raise FrameError(f"{end} octets is shorter than a PDU header", _S.ESME_RINVCMDLEN)
    command_length, command_id, command_status, sequence_number = _unpack_header(frame)
    if command_length != end:
        raise FrameError(
            f"command_length {command_length} but the frame has {end} octets",
            _S.ESME_RINVCMDLEN,
            sequence_number,
            command_id,
        )
    # decode_frame's body, written out: one call less per PDU for decode's callers (the
    # simulator decodes every PDU it receives this way).
    try:
        decoder, cls, twin = _DECODERS[command_id]
    except KeyError:
        raise _unknown_command_id(command_id, sequence_number) from None
    try:
        return decoder(cls, twin, frame, end, sequence_number, command_status, lenient)
    except (_Truncated, _FieldError) as exc:
        raise _decode_error(cls, exc, sequence_number, command_id) from None


def decode_frame(
    frame: bytes, command_id: int, command_status: int, sequence_number: int, lenient: bool
) -> Pdu:
    """Decode one whole frame whose header is already read (``FrameDecoder.frames``): the
    header values are trusted to be the frame's own. Raises PduDecodeError as ``decode``."""
    try:
        decoder, cls, twin = _DECODERS[command_id]
    except KeyError:
        raise _unknown_command_id(command_id, sequence_number) from None
    try:
        return decoder(cls, twin, frame, len(frame), sequence_number, command_status, lenient)
    except (_Truncated, _FieldError) as exc:
        raise _decode_error(cls, exc, sequence_number, command_id) from None


def _unknown_command_id(command_id: int, sequence_number: int) -> PduDecodeError:
    return PduDecodeError(
        f"unknown command_id 0x{command_id:08X}", _S.ESME_RINVCMDID, sequence_number, command_id
    )


def _decode_error(
    cls: type[Pdu], exc: _Truncated | _FieldError, sequence_number: int, command_id: int
) -> PduDecodeError:
    """The decoders' internal errors, worded once."""
    if isinstance(exc, _Truncated):
        return PduDecodeError(
            f"{cls.__name__} body ends inside {exc.field} (missing field or C-string NUL)",
            _S.ESME_RINVCMDLEN,
            sequence_number,
            command_id,
        )
    return PduDecodeError(f"{cls.__name__}: {exc.detail}", exc.status, sequence_number, command_id)


#: A whole frame as ``FrameDecoder.frames`` gives it: command_id, command_status,
#: sequence_number and the frame's octets (header included), not yet decoded.
Frame = tuple[int, int, int, bytes]


class FrameDecoder:
    """Incremental decoder: feed any chunks (down to one octet), take whole PDUs out.

    A malformed PDU whose frame is intact raises PduDecodeError after consuming exactly that
    frame, so the next call parses the next PDU. A bad command_length (below 16 or above
    ``max_command_length``) raises FrameError: the stream cannot be re-synchronised, and every
    later call raises it again. Memory is bounded by ``max_command_length`` plus one chunk.
    """

    __slots__ = ("_broken", "_buffer", "_offset", "lenient", "max_command_length")

    def __init__(
        self, *, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH, lenient: bool = False
    ) -> None:
        self.max_command_length = max_command_length
        self.lenient = lenient
        self._buffer = bytearray()
        self._offset = 0
        self._broken: FrameError | None = None

    def feed(self, data: bytes) -> None:
        if self._broken is None:
            self._buffer += data

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed as a whole PDU."""
        return len(self._buffer) - self._offset

    def frames(self) -> list[Frame]:
        """Every whole frame buffered, oldest first, with its header read and its body not
        yet decoded: the caller decodes (``decode_frame``) what it needs, knowing by then
        what the frame answers. This is the session's read path: one call per read.

        A header is judged only once all 16 of its octets are in, so a FrameError always
        carries the sequence number to nack. The list stops before a bad command_length;
        the call that meets it first raises FrameError, as next_pdu does from then on.
        """
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        frames: list[Frame] = []
        if self._offset:  # next_pdu left consumed octets in front
            del buffer[: self._offset]
            self._offset = 0
        end = len(buffer)
        if end < HEADER_LENGTH:
            return frames
        # Copy the buffer out only once its first frame is whole: a large PDU arriving in
        # small chunks is not copied again at every chunk (linear time, as next_pdu).
        (command_length,) = _U32.unpack_from(buffer)
        if HEADER_LENGTH <= command_length <= self.max_command_length and end < command_length:
            return frames
        data = bytes(buffer)
        unpack_header = _unpack_header
        max_command_length = self.max_command_length
        offset = 0
        while end - offset >= HEADER_LENGTH:
            command_length, command_id, command_status, sequence_number = unpack_header(
                data, offset
            )
            if command_length < HEADER_LENGTH or command_length > max_command_length:
                if frames:
                    break  # the frames before it first; the next call raises
                raise self._break(command_length, sequence_number)
            stop = offset + command_length
            if stop > end:
                break
            frames.append((command_id, command_status, sequence_number, data[offset:stop]))
            offset = stop
        if offset == end:
            buffer.clear()
        else:
            del buffer[:offset]
        return frames

    def next_pdu(self) -> Pdu | None:
        """The next whole PDU, or None until more data is fed."""
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        offset = self._offset
        available = len(buffer) - offset
        # Judge command_length as soon as its 4 octets are in: a hostile peer must not make
        # us wait for (or buffer) gigabytes.
        if available < 4:
            return None
        (command_length,) = _U32.unpack_from(buffer, offset)
        if command_length < HEADER_LENGTH or command_length > self.max_command_length:
            sequence_number = None
            if available >= HEADER_LENGTH:
                sequence_number = _U32.unpack_from(buffer, offset + 12)[0]
            raise self._break(command_length, sequence_number)
        if available < command_length:
            return None
        frame = bytes(buffer[offset : offset + command_length])
        offset += command_length
        if offset == len(buffer):
            buffer.clear()
            offset = 0
        elif offset > 65536:
            del buffer[:offset]
            offset = 0
        self._offset = offset
        return decode(frame, lenient=self.lenient)

    def _break(self, command_length: int, sequence_number: int | None) -> FrameError:
        """Mark the stream as lost to a bad command_length; the error to raise, now and at
        every later call."""
        self._broken = FrameError(
            f"command_length {command_length} outside {HEADER_LENGTH}.."
            f"{self.max_command_length}",
            _S.ESME_RINVCMDLEN,
            sequence_number,
        )
        self._buffer = bytearray()
        self._offset = 0
        return self._broken

    def __iter__(self) -> Iterator[Pdu]:
        """Every whole PDU buffered so far. An error ends this iteration; iterate again after."""
        while (pdu := self.next_pdu()) is not None:
            yield pdu
