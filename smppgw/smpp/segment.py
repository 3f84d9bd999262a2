"""Splitting text into SMS parts (UDH 8/16-bit, SAR, message_payload), and reading the
concatenation information of a received part (the MO reassembler is flow/inbound.py's).

Owns part capacities and concatenation references. No I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from smppgw.smpp.constants import EsmClass
from smppgw.smpp.errors import SegmentationError
from smppgw.smpp.text import (
    ConcatMethod,
    EncodedText,
    Encoding,
    Skipped,
    TextPolicy,
    encode_text,
    first_outside,
    pack_septets,
)

__all__ = [
    "IEI_CONCAT_8BIT",
    "IEI_CONCAT_16BIT",
    "MAX_PARTS",
    "MAX_PAYLOAD_OCTETS",
    "ConcatInfo",
    "EncodedMessage",
    "InformationElement",
    "Part",
    "ReferenceAllocator",
    "concat_info",
    "encode_message",
    "parse_udh",
    "part_capacity",
    "reference_bits",
    "split_udh",
]

# 3GPP TS 23.040 §9.2.3.24.1 (8-bit reference) and §9.2.3.24.8 (16-bit reference).
IEI_CONCAT_8BIT: Final = 0x00
IEI_CONCAT_16BIT: Final = 0x08
MAX_PARTS: Final = 255  # the total is one octet in the UDH and in sar_total_segments
MAX_PAYLOAD_OCTETS: Final = 0xFFFF  # message_payload length is two octets (SMPP 3.4 §5.3.2.32)
# TP-User-Data of one SMS on the carrier's network (3GPP TS 23.040 §9.2.3.24): the size a
# provider's per-70-characters billing is counted in, whatever our short_message budget.
_SMS_OCTETS: Final = 140
_ESCAPE: Final = 0x1B
# SAR parts carry no UDH but keep the UDH 8-bit capacity (see encode_message).
_UDH_OCTETS: Final[dict[str, int]] = {"udh8": 6, "udh16": 7, "sar": 6}
_UNIT_NAMES: Final[dict[str, str]] = {"gsm7": "septets", "latin1": "octets", "ucs2": "UTF-16 units"}


# ---------------------------------------------------------------------------------------------
# Outbound
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm worth of message.

    ``udh`` is empty unless UDH concatenation is used; ``sar`` is (sar_msg_ref_num,
    sar_total_segments, sar_segment_seqnum) for SAR. With ``payload`` the body goes into the
    message_payload TLV and short_message stays empty (SMPP 3.4 §5.3.2.32: never both).
    ``units`` is what the body carries in the message's unit (septets, octets, UTF-16 units).
    """

    udh: bytes
    body: bytes
    sar: tuple[int, int, int] | None = None
    payload: bool = False
    units: int = 0

    @property
    def short_message(self) -> bytes:
        """The short_message field: UDH then body (empty when the body travels as payload)."""
        return b"" if self.payload else self.udh + self.body

    @property
    def message_payload(self) -> bytes | None:
        """The message_payload TLV value, or None when the part uses short_message."""
        return self.body if self.payload else None


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    """A message ready for submit_sm: one Part per PDU.

    ``units`` counts septets (escapes as 2), octets or UTF-16 units of the whole text;
    ``characters`` counts code points of the text sent (``text``, after any transliteration).
    ``billed_parts`` is what the handset receives, hence what providers bill: the number of
    parts, or for message_payload the parts the SMSC will cut it into at UDH 8-bit capacity.
    ``concat`` is the method used, None for a single part. ``outside_billing_charset`` is
    the first character of ``text`` (with its index there) outside the policy's
    billing_charset, when there is one: the parts were then cut at 70 characters, 67 after
    a 6-octet UDH (66 after 7), as the provider bills them. ``skipped`` is the alphabet
    choice's account (text.EncodedText.skipped).
    """

    data_coding: int
    esm_class: int
    parts: tuple[Part, ...]
    units: int
    characters: int
    encoding: Encoding
    text: str
    flash: bool = False
    transliterated: bool = False
    concat: ConcatMethod | None = None
    reference: int | None = None
    billed_parts: int = 1
    outside_billing_charset: tuple[str, int] | None = None
    skipped: tuple[Skipped, ...] = ()


def part_capacity(encoding: Encoding, udh_octets: int = 0, max_octets: int = 140) -> int:
    """Units one part carries after a UDH of ``udh_octets`` (UDHL included).

    GSM counts septets: the UDH takes whole septets (its fill bits, TS 23.040 §9.2.3.24),
    so 140 octets give 160 septets alone, 153 after a 6-octet UDH, 152 after 7. SMSCs apply
    that count to unpacked septets too. UCS-2 counts UTF-16 units: 70, 67, 66.
    """
    if encoding == "gsm7":
        return (max_octets * 8) // 7 - (udh_octets * 8 + 6) // 7
    if encoding == "ucs2":
        return (max_octets - udh_octets) // 2
    return max_octets - udh_octets


def reference_bits(concat: ConcatMethod) -> Literal[8, 16]:
    """Width of the concatenation reference the method carries (SAR's is two octets)."""
    return 8 if concat == "udh8" else 16


def _fill_bits(udh_octets: int) -> int:
    """Bits after a UDH so the first septet starts on a septet boundary (TS 23.040 §9.2.3.24)."""
    return (7 - (udh_octets * 8) % 7) % 7


def _characters(encoded: EncodedText) -> int:
    """The text's length as a per-character biller counts it: in UTF-16 units, the measure
    of a UCS-2 part, so a surrogate pair (emoji) counts 2 and a GSM escape pair 1."""
    if encoded.encoding == "gsm7":
        return len(encoded.data) - encoded.data.count(_ESCAPE)
    return encoded.units


def _split(
    encoded: EncodedText, capacity: int, max_characters: int | None = None
) -> list[bytes]:
    """Cut ``encoded.data`` into chunks of at most ``capacity`` units and, when given,
    ``max_characters`` characters (counted as ``_characters`` does).

    A GSM escape pair (0x1B + code) and a UTF-16 surrogate pair stay whole: a cut that would
    separate them moves the pair to the next part, which leaves this part one unit short.
    0x1B only ever appears as an escape prefix here, because the encoder never emits ESC ESC.
    """
    data = encoded.data
    if max_characters is not None and max_characters < capacity:
        if encoded.encoding == "gsm7" and _ESCAPE in data:
            return _split_gsm7_characters(data, capacity, max_characters)
        capacity = max_characters  # one unit per character
    size = len(data)
    unit = 2 if encoded.encoding == "ucs2" else 1
    step = capacity * unit
    chunks: list[bytes] = []
    start = 0
    while start < size:
        end = start + step
        if end < size:
            if encoded.encoding == "gsm7":
                if data[end - 1] == 0x1B:
                    end -= 1
            elif encoded.encoding == "ucs2" and 0xD8 <= data[end - 2] <= 0xDB:
                end -= 2  # high surrogate last: keep it with its low surrogate
        chunks.append(data[start:end])
        start = end
    return chunks


def _billing_limit(outside: tuple[str, int] | None, udh_octets: int) -> int | None:
    """Characters per part for a text billed per character (``outside`` its first character
    beyond the billing charset): what one UCS-2 SMS holds after this UDH, 70/67/66."""
    return None if outside is None else part_capacity("ucs2", udh_octets, _SMS_OCTETS)


def _split_gsm7_characters(data: bytes, capacity: int, max_characters: int) -> list[bytes]:
    """Cut unpacked septets into chunks of at most ``capacity`` septets and ``max_characters``
    characters, where an escape pair is two septets but one character.

    Each chunk starts as ``max_characters`` septets and grows by one septet per escape it
    holds (data.count, no loop per septet); a trailing escape prefix moves to the next chunk.
    """
    size = len(data)
    chunks: list[bytes] = []
    start = 0
    while start < size:
        limit = min(start + capacity, size)
        end = min(start + max_characters, limit)
        while end < limit:
            # A dangling prefix at end - 1 counts 0 here; the septet completing it adds 1.
            room = max_characters - (end - start - data.count(_ESCAPE, start, end))
            if room <= 0:
                break
            end = min(end + room, limit)
        if end < size and data[end - 1] == _ESCAPE:
            end -= 1
        chunks.append(data[start:end])
        start = end
    return chunks


def encode_message(
    text: str,
    policy: TextPolicy,
    *,
    flash: bool = False,
    force_encoding: Encoding | None = None,
    concat: ConcatMethod | None = None,
    reference: int | Callable[[], int] | None = None,
) -> EncodedMessage:
    """Encode ``text`` for a provider and split it into submit_sm parts.

    ``concat`` overrides the policy's method; it matters only when the text does not fit one
    part (a short text is always one plain short_message, even in payload mode).
    ``reference`` is the concatenation reference (0..255 for udh8, 0..65535 for udh16 and
    SAR), normally from a ReferenceAllocator for the destination; a multi-part message
    without one raises ValueError. It may be a callable, called only when the text needs more
    than one part, so that single-part messages (most traffic) take no reference from the
    destination's counter. More than 255 parts raises SegmentationError;
    characters the encoding cannot carry raise EncodingError (see text.encode_text).

    With a policy ``billing_charset`` (Wavy), a text holding any character outside it is
    cut into parts of at most 70 characters, 67 after a UDH, whatever its alphabet: the
    provider bills it so (seed 003, "Acentos e caracteres especiais") and would otherwise
    re-split our parts, breaking their UDH.
    """
    encoded = encode_text(text, policy, flash=flash, force_encoding=force_encoding)
    method: ConcatMethod = policy.concat if concat is None else concat
    if method not in ("udh8", "udh16", "sar", "payload"):
        raise ValueError(f"unknown concatenation method {method!r}")
    max_octets = policy.max_octets_per_part
    packed = policy.packed and encoded.encoding == "gsm7"
    outside = None
    if policy.billing_charset is not None:
        outside = first_outside(encoded.text, policy.billing_charset)
    single = _billing_limit(outside, 0)
    if encoded.units <= part_capacity(encoded.encoding, 0, max_octets) and (
        single is None or _characters(encoded) <= single
    ):
        body = pack_septets(encoded.data) if packed else encoded.data
        return _result(encoded, 0, (Part(b"", body, units=encoded.units),), outside=outside)

    if method == "payload":
        body = pack_septets(encoded.data) if packed else encoded.data
        if len(body) > MAX_PAYLOAD_OCTETS:
            raise SegmentationError(
                f"message_payload of {len(body)} octets exceeds the limit of "
                f"{MAX_PAYLOAD_OCTETS} octets"
            )
        udh8 = _UDH_OCTETS["udh8"]
        capacity = part_capacity(encoded.encoding, udh8, max_octets)
        billed = len(_split(encoded, capacity, _billing_limit(outside, udh8)))
        return _result(
            encoded,
            0,
            (Part(b"", body, payload=True, units=encoded.units),),
            "payload",
            None,
            billed,
            outside=outside,
        )

    udh_octets = _UDH_OCTETS[method]
    unit = 2 if encoded.encoding == "ucs2" else 1
    chunks = _split(
        encoded,
        part_capacity(encoded.encoding, udh_octets, max_octets),
        _billing_limit(outside, udh_octets),
    )
    total = len(chunks)
    if total > MAX_PARTS:
        raise SegmentationError(
            f"text needs {total} parts ({encoded.units} {_UNIT_NAMES[encoded.encoding]}); "
            f"the limit is {MAX_PARTS} parts"
        )
    if callable(reference):
        reference = reference()
    if reference is None:
        raise ValueError(f"a {total}-part message needs a concatenation reference")
    limit = 0xFF if method == "udh8" else 0xFFFF
    if not 0 <= reference <= limit:
        raise ValueError(f"reference {reference} is out of range 0..{limit} for {method}")

    if method == "sar":
        # SMPP 3.4 §5.3.2.22-24. The parts keep the UDH 8-bit capacity, as Kannel does, so a
        # message costs the same whichever method carries it.
        parts = tuple(
            Part(
                b"",
                pack_septets(chunk) if packed else chunk,
                sar=(reference, total, seq),
                units=len(chunk) // unit,
            )
            for seq, chunk in enumerate(chunks, 1)
        )
        return _result(encoded, 0, parts, method, reference, total, outside=outside)

    if method == "udh8":
        # 3GPP TS 23.040 §9.2.3.24.1: UDHL 05, IEI 00, IEDL 03, reference, total, sequence.
        head = bytes((0x05, IEI_CONCAT_8BIT, 0x03, reference, total))
    else:
        # 3GPP TS 23.040 §9.2.3.24.8: UDHL 06, IEI 08, IEDL 04, reference (2 octets), ...
        head = bytes((0x06, IEI_CONCAT_16BIT, 0x04, reference >> 8, reference & 0xFF, total))
    fill = _fill_bits(udh_octets)
    parts = tuple(
        Part(
            head + bytes((seq,)),
            pack_septets(chunk, fill) if packed else chunk,
            units=len(chunk) // unit,
        )
        for seq, chunk in enumerate(chunks, 1)
    )
    return _result(
        encoded, EsmClass.UDHI.value, parts, method, reference, total, outside=outside
    )


def _result(
    encoded: EncodedText,
    esm_class: int,
    parts: tuple[Part, ...],
    concat: ConcatMethod | None = None,
    reference: int | None = None,
    billed_parts: int = 1,
    *,
    outside: tuple[str, int] | None,
) -> EncodedMessage:
    return EncodedMessage(
        data_coding=encoded.data_coding,
        esm_class=esm_class,
        parts=parts,
        units=encoded.units,
        characters=len(encoded.text),
        encoding=encoded.encoding,
        text=encoded.text,
        flash=encoded.flash,
        transliterated=encoded.transliterated,
        concat=concat,
        reference=reference,
        billed_parts=billed_parts,
        outside_billing_charset=outside,
        skipped=encoded.skipped,
    )


class ReferenceAllocator:
    """Concatenation references per destination, so two long messages to one handset differ.

    One 16-bit counter per destination address, wrapping; an 8-bit reference is its low
    octet, so 256 consecutive messages to a handset never share one. Memory is bounded: the
    least recently used destination is forgotten beyond ``max_destinations``. ``start``
    gives a new destination's first value; a daemon passes a random source there so that a
    restart does not reuse the references it just sent.
    """

    __slots__ = ("_counters", "_max_destinations", "_start")

    def __init__(
        self,
        max_destinations: int = 10_000,
        *,
        start: Callable[[str], int] | None = None,
    ) -> None:
        if max_destinations < 1:
            raise ValueError("max_destinations must be at least 1")
        self._max_destinations = max_destinations
        self._start = start
        self._counters: OrderedDict[str, int] = OrderedDict()

    def next(self, destination: str, *, bits: Literal[8, 16] = 8) -> int:
        """The next reference for ``destination``: 0..255 for 8 bits, 0..65535 for 16."""
        counters = self._counters
        value = counters.get(destination)
        if value is None:
            value = (self._start(destination) if self._start is not None else 0) & 0xFFFF
            if len(counters) >= self._max_destinations:
                counters.popitem(last=False)
        else:
            counters.move_to_end(destination)
        counters[destination] = (value + 1) & 0xFFFF
        return value & 0xFF if bits == 8 else value

    def __len__(self) -> int:
        return len(self._counters)

    def __repr__(self) -> str:
        return f"<ReferenceAllocator destinations={len(self)}/{self._max_destinations}>"


# ---------------------------------------------------------------------------------------------
# Inbound
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InformationElement:
    """One UDH information element (3GPP TS 23.040 §9.2.3.24): identifier and data."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """Where a part belongs: reference, total parts, this part's 1-based sequence number."""

    reference: int
    total: int
    seq: int


def parse_udh(udh: bytes) -> tuple[InformationElement, ...]:
    """The IEs of a UDH (UDHL octet first), in order, whatever their kind.

    Raises ValueError when an IE runs past the header: the caller decides how tolerant to be.
    """
    if not udh:
        raise ValueError("empty UDH")
    end = 1 + udh[0]
    if end > len(udh):
        raise ValueError(f"UDHL {udh[0]} exceeds the {len(udh) - 1} octets that follow")
    elements: list[InformationElement] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ValueError(f"truncated information element at octet {pos}")
        length = udh[pos + 1]
        if pos + 2 + length > end:
            raise ValueError(f"information element 0x{udh[pos]:02X} runs past the UDH")
        elements.append(InformationElement(udh[pos], bytes(udh[pos + 2 : pos + 2 + length])))
        pos += 2 + length
    return tuple(elements)


def split_udh(short_message: bytes) -> tuple[tuple[InformationElement, ...], bytes]:
    """Split a short_message sent with UDHI into its IEs and the body after the UDH.

    A header that cannot be parsed yields no IEs and the whole short_message as body, so an
    MO is never lost to a sender's broken UDH.
    """
    try:
        elements = parse_udh(short_message)
    except ValueError:
        return (), short_message
    return elements, short_message[1 + short_message[0] :]


def concat_info(elements: tuple[InformationElement, ...]) -> ConcatInfo | None:
    """The concatenation IE among ``elements`` (other IEs such as ports 0x05 are skipped).

    A malformed or impossible one (wrong length, total 0, sequence 0) counts as absent.
    """
    for element in elements:
        data = element.data
        if element.iei == IEI_CONCAT_8BIT and len(data) == 3:
            info = ConcatInfo(data[0], data[1], data[2])
        elif element.iei == IEI_CONCAT_16BIT and len(data) == 4:
            info = ConcatInfo((data[0] << 8) | data[1], data[2], data[3])
        else:
            continue
        if info.total >= 1 and 1 <= info.seq <= info.total:
            return info
        return None
    return None
