"""SMPP 3.4 wire codec: ``encode(pdu) -> bytes``, ``decode(frame) -> Pdu`` and FrameDecoder.

This is the per-PDU hot path of the gateway. Each PDU class's encoder and decoder is
compiled once at import from its ``FIELDS`` layout into straight-line Python (no per-field
interpretation loop, no per-byte loop), in the spirit of attrs' generated ``__init__``.
Strict when encoding; tolerant when decoding only behind ``lenient``. No I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.errors import FrameError, LocalProtocolError, PduDecodeError, PduEncodeError
from smppgw.smpp.pdu import (
    PDU_BY_COMMAND_ID,
    PDU_CLASSES,
    TLV_SPECS,
    DistributionList,
    Pdu,
    SmeAddress,
    Tlv,
    UnsuccessSme,
    tag_name,
)

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = 16
_U32 = struct.Struct(">I")
_TLV_HEAD = struct.Struct(">HH")

#: The largest PDU accepted by default: a data_sm or submit_sm with a full 64 KiB
#: message_payload plus its mandatory fields and a few TLVs.
DEFAULT_MAX_COMMAND_LENGTH = 0x10000 + 1024

_S = CommandStatus

Decoder = Callable[[bytes, int, int, int, int, bool], Pdu]

# Frozen dataclasses pay for immutability in __init__ (one object.__setattr__ per field);
# decoded PDUs are built by setting their slots directly, which is three times faster on the
# hot path and yields the same immutable object.
_new = object.__new__
_set_tlv_tag = vars(Tlv)["tag"].__set__
_set_tlv_raw = vars(Tlv)["raw"].__set__
Encoder = Callable[[Pdu], bytes]


# --- errors raised by generated code ----------------------------------------------------------


class _Truncated(Exception):
    """The body ended before the mandatory fields did; mapped to PduDecodeError by decode()."""

    def __init__(self, field: str) -> None:
        self.field = field


class _FieldError(Exception):
    def __init__(self, detail: str, status: CommandStatus) -> None:
        self.detail = detail
        self.status = status


def _too_long(field: str, max_length: int, status: CommandStatus) -> _FieldError:
    return _FieldError(f"{field} longer than {max_length - 1} octets", status)


def _encode_error(pdu: Pdu, field: str, rule: str) -> PduEncodeError:
    return PduEncodeError(type(pdu).__name__, field, rule)


# --- TLVs -----------------------------------------------------------------------------------


def decode_tlvs(frame: bytes, pos: int, end: int, lenient: bool) -> tuple[Tlv, ...]:
    """Parse the optional parameter stream between ``pos`` and ``end`` (SMPP 3.4 §3.2.4)."""
    tlvs = []
    unpack_head = _TLV_HEAD.unpack_from
    while pos < end:
        if end - pos < 4:
            raise _FieldError(
                f"{end - pos} stray octet(s) after the last TLV", _S.ESME_RINVOPTPARSTREAM
            )
        tag, length = unpack_head(frame, pos)
        pos += 4
        if pos + length > end:
            raise _FieldError(
                f"{tag_name(tag)} length {length} runs past the PDU", _S.ESME_RINVOPTPARSTREAM
            )
        raw = frame[pos : pos + length]
        pos += length
        if not lenient:
            spec = TLV_SPECS.get(tag)
            if spec is not None and not spec.min_length <= length <= spec.max_length:
                raise _FieldError(
                    f"{tag_name(tag)} length {length} outside "
                    f"{spec.min_length}..{spec.max_length} (SMPP 3.4 §5.3.2)",
                    _S.ESME_RINVPARLEN,
                )
        tlv = _new(Tlv)
        _set_tlv_tag(tlv, tag)
        _set_tlv_raw(tlv, raw)
        tlvs.append(tlv)
    return tuple(tlvs)


def encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    pack_head = _TLV_HEAD.pack
    out = []
    for tlv in tlvs:
        raw = tlv.raw
        if len(raw) > 0xFFFF:
            raise PduEncodeError(
                "Tlv", "tlvs", f"{tag_name(tlv.tag)}: length {len(raw)} exceeds 65535")
        out.append(pack_head(tlv.tag, len(raw)))
        out.append(raw)
    return b"".join(out)


# --- submit_multi lists (SMPP 3.4 §4.5.1.1, §4.5.2) -----------------------------------------


def _read_cstr(frame: bytes, pos: int, end: int, field: str, max_length: int, lenient: bool,
               status: CommandStatus) -> tuple[str, int]:
    nul = frame.find(0, pos, end)
    if nul < 0:
        raise _Truncated(field)
    if nul - pos >= max_length and not lenient:
        raise _too_long(field, max_length, status)
    return frame[pos:nul].decode("latin-1"), nul + 1


def _decode_dests(
    frame: bytes, pos: int, end: int, lenient: bool
) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
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
            addr, pos = _read_cstr(
                frame, pos + 2, end, "destination_addr", 21, lenient, _S.ESME_RINVDSTADR
            )
            dests.append(SmeAddress(dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=addr))
        elif flag == 2:
            name, pos = _read_cstr(frame, pos, end, "dl_name", 21, lenient, _S.ESME_RINVDLNAME)
            dests.append(DistributionList(dl_name=name))
        else:
            raise _FieldError(f"dest_flag {flag} is neither 1 nor 2", _S.ESME_RINVDESTFLAG)
    return tuple(dests), pos


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


def _decode_unsuccess(
    frame: bytes, pos: int, end: int, lenient: bool
) -> tuple[tuple[UnsuccessSme, ...], int]:
    if pos >= end:
        raise _Truncated("no_unsuccess")
    count = frame[pos]
    pos += 1
    items = []
    for _ in range(count):
        if pos + 2 > end:
            raise _Truncated("unsuccess_sme")
        ton, npi = frame[pos], frame[pos + 1]
        addr, pos = _read_cstr(
            frame, pos + 2, end, "destination_addr", 21, lenient, _S.ESME_RINVDSTADR
        )
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


def _encode_unsuccess(pdu: Pdu, items: tuple[UnsuccessSme, ...]) -> bytes:
    if len(items) > 255:
        raise _encode_error(pdu, "unsuccess_sme", f"{len(items)} entries, allowed 0..255")
    out = [bytes((len(items),))]
    for item in items:
        out.append(bytes((item.dest_addr_ton, item.dest_addr_npi)))
        out.append(_strict_cstr(pdu, "destination_addr", item.destination_addr, 21))
        out.append(_U32.pack(item.error_status_code))
    return b"".join(out)


def _strict_cstr(pdu: Pdu, field: str, value: str, max_length: int) -> bytes:
    """A C-octet string as we send it: Latin-1 text, no NUL inside, within the spec's size."""
    try:
        raw = value.encode("latin-1")
    except (UnicodeEncodeError, AttributeError):
        raise _encode_error(pdu, field, f"{value!r} is not Latin-1 text") from None
    if len(raw) >= max_length:
        raise _encode_error(pdu, field, f"longer than {max_length - 1} octets")
    if 0 in raw:
        raise _encode_error(pdu, field, "contains a NUL octet")
    return raw + b"\0"


# --- compiling per-class encoders and decoders --------------------------------------------------


def _compile_decoder(cls: type[Pdu]) -> Decoder:
    """Straight-line decoder for ``cls``'s mandatory fields, then the TLV stream."""
    lines = ["def decode_body(frame, pos, end, sequence_number, command_status, lenient):"]
    if cls.command_id & 0x80000000:
        # SMPP 3.4 §4.1-4.12: a response with an error status may carry no body at all,
        # and several SMSCs omit it; every field then keeps its default.
        lines.append("    if pos == end:")
        lines.append(
            "        return cls(sequence_number=sequence_number, command_status=command_status)"
        )
    names = []
    fields = list(cls.FIELDS)
    index = 0
    while index < len(fields):
        field = fields[index]
        name = field.name
        if field.kind == "u8":
            run = [field]
            while index + len(run) < len(fields) and fields[index + len(run)].kind == "u8":
                run.append(fields[index + len(run)])
            lines.append(f"    if pos + {len(run)} > end: raise _Truncated({name!r})")
            for offset, item in enumerate(run):
                lines.append(f"    {item.name} = frame[pos + {offset}]")
                names.append(item.name)
            lines.append(f"    pos += {len(run)}")
            index += len(run)
            continue
        if field.kind == "cstr":
            lines += [
                "    nul = frame.find(0, pos, end)",
                f"    if nul < 0: raise _Truncated({name!r})",
                f"    if nul - pos >= {field.max_length} and not lenient:",
                f"        raise _too_long({name!r}, {field.max_length}, _S.{field.status.name})",
                f"    {name} = frame[pos:nul].decode('latin-1')",
                "    pos = nul + 1",
            ]
        elif field.kind == "sm":
            lines += [
                "    if pos >= end: raise _Truncated('sm_length')",
                "    sm_length = frame[pos]",
                "    pos += 1",
                "    if pos + sm_length > end:",
                "        raise _FieldError(f'sm_length {sm_length} runs past the PDU',"
                " _S.ESME_RINVMSGLEN)",
                f"    if sm_length > {field.max_length} and not lenient:",
                "        raise _FieldError('sm_length 255 exceeds 254', _S.ESME_RINVMSGLEN)",
                f"    {name} = frame[pos:pos + sm_length]",
                "    pos += sm_length",
            ]
        elif field.kind == "dests":
            lines.append(f"    {name}, pos = _decode_dests(frame, pos, end, lenient)")
        elif field.kind == "unsuccess":
            lines.append(f"    {name}, pos = _decode_unsuccess(frame, pos, end, lenient)")
        else:  # pragma: no cover - FIELDS are ours
            raise AssertionError(field.kind)
        names.append(name)
        index += 1
    lines.append("    tlvs = decode_tlvs(frame, pos, end, lenient) if pos < end else ()")
    lines.append("    pdu = _new(cls)")
    setters: dict[str, object] = {}
    for name in ("sequence_number", "command_status", "tlvs", *names):
        setters[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(pdu, {name})")
    lines.append("    return pdu")
    namespace: dict[str, object] = {
        **setters,
        "_new": _new,
        "cls": cls,
        "_Truncated": _Truncated,
        "_FieldError": _FieldError,
        "_too_long": _too_long,
        "_S": _S,
        "decode_tlvs": decode_tlvs,
        "_decode_dests": _decode_dests,
        "_decode_unsuccess": _decode_unsuccess,
    }
    exec("\n".join(lines), namespace)
    return namespace["decode_body"]  # type: ignore[return-value]


def _compile_encoder(cls: type[Pdu]) -> Encoder:
    """Straight-line encoder: validates every field strictly, then joins the octets."""
    lines = ["def encode(pdu):"]
    fields = list(cls.FIELDS)
    if cls.command_id & 0x80000000 and fields:
        # SMPP 3.4 §4.4.2: the submit_sm_resp body "is not returned if the command_status
        # field contains a non-zero value". We apply that to every response whose fields are
        # all unset, so decode → encode of a body-less error response gives the same octets.
        defaults = tuple(getattr(cls(), f.name) for f in fields)
        current = ", ".join(f"pdu.{f.name}" for f in fields)
        lines += [
            f"    if pdu.command_status and not pdu.tlvs and ({current},) == _defaults:",
            "        return _pack_header(16, command_id, pdu.command_status, pdu.sequence_number)",
        ]
    lines.append("    parts = [None]")
    index = 0
    while index < len(fields):
        field = fields[index]
        name = field.name
        if field.kind == "u8":
            run = [field]
            while index + len(run) < len(fields) and fields[index + len(run)].kind == "u8":
                run.append(fields[index + len(run)])
            values = ", ".join(f"pdu.{item.name}" for item in run)
            lines += [
                "    try:",
                f"        parts.append(bytes(({values},)))",
                "    except (ValueError, TypeError):",
                f"        raise _encode_error(pdu, {'/'.join(i.name for i in run)!r},"
                " 'each must be an integer 0..255') from None",
            ]
            index += len(run)
            continue
        if field.kind == "cstr":
            lines += [
                f"    value = pdu.{name}",
                "    if value.isascii() and len(value) < " + str(field.max_length) + ":",
                "        raw = value.encode('ascii')",
                "        if 0 in raw:",
                f"            raise _encode_error(pdu, {name!r}, 'contains a NUL octet')",
                "        parts.append(raw)",
                "        parts.append(b'\\0')",
                "    else:",
                f"        parts.append(_strict_cstr(pdu, {name!r}, value, {field.max_length}))",
            ]
        elif field.kind == "sm":
            lines += [
                f"    value = pdu.{name}",
                f"    if len(value) > {field.max_length}:",
                f"        raise _encode_error(pdu, {name!r}, f'{{len(value)}} octets exceed "
                f"{field.max_length}; use message_payload')",
                "    parts.append(bytes((len(value),)))",
                "    parts.append(value)",
            ]
        elif field.kind == "dests":
            lines.append(f"    parts.append(_encode_dests(pdu, pdu.{name}))")
        elif field.kind == "unsuccess":
            lines.append(f"    parts.append(_encode_unsuccess(pdu, pdu.{name}))")
        else:  # pragma: no cover
            raise AssertionError(field.kind)
        index += 1
    lines += [
        "    if pdu.tlvs:",
        "        parts.append(encode_tlvs(pdu.tlvs))",
        "    parts[0] = b''",
        "    body = b''.join(parts)",
        "    try:",
        "        header = _pack_header(16 + len(body), command_id, pdu.command_status,"
        " pdu.sequence_number)",
        "    except struct_error:",
        "        raise _encode_error(pdu, 'sequence_number/command_status',"
        " 'each must be 0..0xFFFFFFFF') from None",
        "    return header + body",
    ]
    namespace: dict[str, object] = {
        "command_id": int(cls.command_id),
        "_defaults": defaults if cls.command_id & 0x80000000 and fields else (),
        "_pack_header": HEADER.pack,
        "struct_error": struct.error,
        "_encode_error": _encode_error,
        "_strict_cstr": _strict_cstr,
        "_encode_dests": _encode_dests,
        "_encode_unsuccess": _encode_unsuccess,
        "encode_tlvs": encode_tlvs,
    }
    exec("\n".join(lines), namespace)
    return namespace["encode"]  # type: ignore[return-value]


_DECODERS: dict[int, Decoder] = {cls.command_id: _compile_decoder(cls) for cls in PDU_CLASSES}
_ENCODERS: dict[type[Pdu], Encoder] = {cls: _compile_encoder(cls) for cls in PDU_CLASSES}


# --- public API -------------------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The PDU's octets, header included. Raises PduEncodeError (a LocalProtocolError) for
    values the spec forbids."""
    try:
        encoder = _ENCODERS[type(pdu)]
    except KeyError:
        raise LocalProtocolError(f"not a PDU: {pdu!r}") from None
    return encoder(pdu)


def decode(frame: bytes, *, lenient: bool = False) -> Pdu:
    """Decode exactly one PDU. ``frame`` must hold the whole PDU and nothing else.

    Raises FrameError when command_length disagrees with the frame, PduDecodeError (with the
    status to answer and the sequence number) for a malformed body or unknown command_id.
    """
    if len(frame) < HEADER_LENGTH:
        raise FrameError(f"{len(frame)} octets is shorter than a PDU header", _S.ESME_RINVCMDLEN)
    command_length, command_id, command_status, sequence_number = HEADER.unpack_from(frame)
    if command_length != len(frame):
        raise FrameError(
            f"command_length {command_length} but the frame has {len(frame)} octets",
            _S.ESME_RINVCMDLEN,
            sequence_number,
            command_id,
        )
    return _decode_frame(frame, command_id, command_status, sequence_number, lenient)


def _decode_frame(
    frame: bytes, command_id: int, command_status: int, sequence_number: int, lenient: bool
) -> Pdu:
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise PduDecodeError(
            f"unknown command_id 0x{command_id:08X}",
            _S.ESME_RINVCMDID,
            sequence_number,
            command_id,
        )
    try:
        return decoder(frame, HEADER_LENGTH, len(frame), sequence_number, command_status, lenient)
    except _Truncated as exc:
        name = PDU_BY_COMMAND_ID[command_id].__name__
        raise PduDecodeError(
            f"{name} body ends inside {exc.field} (missing field or C-string NUL)",
            _S.ESME_RINVCMDLEN,
            sequence_number,
            command_id,
        ) from None
    except _FieldError as exc:
        name = PDU_BY_COMMAND_ID[command_id].__name__
        raise PduDecodeError(
            f"{name}: {exc.detail}", exc.status, sequence_number, command_id
        ) from None


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
            self._broken = FrameError(
                f"command_length {command_length} outside {HEADER_LENGTH}.."
                f"{self.max_command_length}",
                _S.ESME_RINVCMDLEN,
                sequence_number,
            )
            self._buffer = bytearray()
            self._offset = 0
            raise self._broken
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
        _, command_id, command_status, sequence_number = HEADER.unpack_from(frame)
        return _decode_frame(frame, command_id, command_status, sequence_number, self.lenient)

    def __iter__(self) -> Iterator[Pdu]:
        """Every whole PDU buffered so far. An error ends this iteration; iterate again after."""
        while (pdu := self.next_pdu()) is not None:
            yield pdu
