"""Text encodings of SMS (GSM 03.38 septets, Latin-1, UCS-2/UTF-16BE) and the choice of data_coding.

Owns the alphabet tables, septet packing, transliteration and the per-provider TextPolicy.
No I/O, no clock, no logging: text and policy in, bytes out (and the reverse for MO).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final, Literal

from smppgw.smpp.errors import EncodingError

if TYPE_CHECKING:
    from smppgw.profiles import ProviderProfile

__all__ = [
    "ENCODINGS",
    "GSM7_BASIC",
    "GSM7_ESCAPE",
    "GSM7_EXTENSION",
    "CodedAlphabet",
    "ConcatMethod",
    "EncodedText",
    "Encoding",
    "Ia5Alphabet",
    "SkipReason",
    "Skipped",
    "TextPolicy",
    "data_coding_alphabet",
    "decode_gsm7",
    "decode_gsm7_packed",
    "decode_text",
    "encode_gsm7",
    "encode_latin1",
    "encode_text",
    "encode_ucs2",
    "first_outside",
    "gsm7_septets",
    "is_gsm7",
    "message_class",
    "pack_septets",
    "transliterate",
    "unpack_septets",
]

Encoding = Literal["gsm7", "latin1", "ucs2"]
# Same spelling as smppgw.profiles.ConcatMethod, restated so the core imports nothing above it.
ConcatMethod = Literal["udh8", "udh16", "sar", "payload"]
Ia5Alphabet = Literal["gsm7", "latin1"]
# What a data_coding value labels its octets as: one of our alphabets, IA5 (0x01, which
# providers read as GSM7 or as Latin-1), 8-bit binary, or None for any other alphabet.
CodedAlphabet = Literal["gsm7", "latin1", "ucs2", "ia5", "binary"]
# Why encode_text passed over an alphabet: a character it cannot carry, no data_coding for
# it at this provider, or no flash (class 0) value for it.
SkipReason = Literal["character", "not_offered", "no_flash"]

ENCODINGS: Final[tuple[Encoding, ...]] = ("gsm7", "latin1", "ucs2")

# ---------------------------------------------------------------------------------------------
# GSM 03.38 tables, 3GPP TS 23.038 §6.2.1 (default alphabet) and §6.2.1.1 (extension table).
# Index = septet value. 0x1B is the escape to the extension table, never a character.
# ---------------------------------------------------------------------------------------------
GSM7_ESCAPE: Final = 0x1B

GSM7_BASIC: Final[str] = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Septet value after the escape → character. 0x0A is the page break (form feed).
GSM7_EXTENSION: Final[dict[int, str]] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CHARS: Final = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENSION_CHARS: Final = frozenset(GSM7_EXTENSION.values())

# Encoding: one translate table producing one code point per septet, then .encode("latin-1")
# turns that into one octet per septet (the unpacked form SMPP carries by default).
_ENCODE_BASIC: Final[dict[int, str]] = {
    ord(c): chr(i) for i, c in enumerate(GSM7_BASIC) if c != "\x1b"
}
_ENCODE_EXTENDED: Final[dict[int, str]] = {
    **_ENCODE_BASIC,
    **{ord(c): "\x1b" + chr(v) for v, c in GSM7_EXTENSION.items()},
}


def _negated_class(chars: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[^" + "".join(re.escape(c) for c in sorted(chars)) + "]")


@lru_cache(maxsize=16)
def _outside(charset: str) -> re.Pattern[str]:
    return _negated_class(frozenset(charset))


# One C-level scan finds the first character outside the alphabet (or proves there is none).
_NOT_BASIC: Final = _negated_class(_BASIC_CHARS)
_NOT_EXTENDED: Final = _negated_class(_BASIC_CHARS | _EXTENSION_CHARS)

# Decoding: octet → character. Octets above 0x7F cannot occur in unpacked septets; MO text
# must never raise, so they become U+FFFD.
_DECODE_BASIC: Final[dict[int, str]] = {
    **{i: c for i, c in enumerate(GSM7_BASIC)},
    **{i: "\ufffd" for i in range(0x80, 0x100)},
}
# After an escape: the extension character, else (TS 23.038 §6.2.1.1) the default-alphabet
# character of that code; ESC ESC is reserved and shown as a space.
_DECODE_ESCAPED: Final[dict[str, str]] = {
    **{chr(i): c for i, c in enumerate(GSM7_BASIC)},
    **{chr(v): c for v, c in GSM7_EXTENSION.items()},
    "\x1b": " ",
    "": " ",
}
_ESCAPE_SPLIT: Final = re.compile("\x1b(.?)", re.DOTALL)

# ---------------------------------------------------------------------------------------------
# Transliteration: characters outside GSM 03.38 that have an unambiguous GSM spelling.
# ---------------------------------------------------------------------------------------------
# Substitute → the characters it replaces (escapes keep the invisible ones readable here).
_PUNCTUATION_GROUPS: Final[dict[str, str]] = {
    "'": "\u2018\u2019\u201a\u201b\u2032\u00b4`",
    '"': "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2022",
    "...": "\u2026",
    ".": "\u00b7",
    "x": "\u00d7",
    "/": "\u00f7",
    " ": "\t\u00a0\u2007\u202f\u205f\u3000" + "".join(chr(cp) for cp in range(0x2000, 0x200B)),
    # Invisible characters that would only force UCS-2.
    "": "\u200b\u200c\u200d\u2060\ufeff\u00ad",
}
_PUNCTUATION: Final[dict[str, str]] = {
    char: substitute for substitute, chars in _PUNCTUATION_GROUPS.items() for char in chars
}

# Used only when the provider does not carry the extension table (Wavy: its carriers do not).
_EXTENSION_SUBSTITUTES: Final[dict[str, str]] = {
    "€": "EUR",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "~": "-",
    "\\": "/",
    "^": "'",
    "|": "/",
    "\x0c": "\n",
}


def _letter_substitutes() -> dict[str, str]:
    """Latin letters missing from GSM 03.38 → their GSM form, built once at import.

    The base letter wins (ç → c, ã → a, ô → o): what Brazilian and Portuguese readers expect
    of an SMS without accents. GSM has Ç only as a capital (TS 23.038 §6.2.1), so ç → c
    rather than a capital in the middle of a word. Letters GSM has (é, ü, Ñ) are untouched.
    """
    table: dict[str, str] = {
        "Ð": "D", "ð": "d", "Þ": "Th", "þ": "th", "Ł": "L", "ł": "l",
        "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe", "\u1e9e": "SS", "\u0131": "i",
    }  # fmt: skip
    for cp in range(0x00C0, 0x0250):
        char = chr(cp)
        if char in _BASIC_CHARS or char in table:
            continue
        base = unicodedata.normalize("NFD", char)[0]
        if base.isascii() and base.isalpha():
            table[char] = base
    return table


_TRANSLITERATE_KEEP_EXTENSION: Final[dict[int, str]] = {
    ord(k): v for k, v in {**_letter_substitutes(), **_PUNCTUATION}.items()
}
_TRANSLITERATE_NO_EXTENSION: Final[dict[int, str]] = {
    **_TRANSLITERATE_KEEP_EXTENSION,
    **{ord(k): v for k, v in _EXTENSION_SUBSTITUTES.items()},
}
# Every substitute above is plain GSM, so a character stays outside GSM after
# transliteration exactly when it is neither GSM nor a key of the table: one C-level scan.
_NOT_TRANSLITERABLE_KEEP_EXTENSION: Final = _negated_class(
    _BASIC_CHARS | _EXTENSION_CHARS | {chr(k) for k in _TRANSLITERATE_KEEP_EXTENSION}
)
_NOT_TRANSLITERABLE_NO_EXTENSION: Final = _negated_class(
    _BASIC_CHARS | {chr(k) for k in _TRANSLITERATE_NO_EXTENSION}
)


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TextPolicy:
    """How one provider wants text: data_coding per alphabet, extension table, concatenation.

    Built from a ProviderProfile (``from_profile``) by the layer that owns configuration, so
    the core never sees config. ``latin1`` / ``flash_*`` of None mean the provider offers no
    such data_coding. ``max_octets_per_part`` is the short_message budget UDH included
    (SMPP/GSM: 140), from which every per-part capacity is derived. ``billing_charset``,
    when set, holds the characters the provider bills at 160 per part: a text with any
    other character is billed per 70 (67 with UDH) whatever data_coding carries it, so
    segment.encode_message cuts it at that size (Wavy, seed 003 "Acentos e caracteres
    especiais").
    """

    gsm7: int = 0x00
    latin1: int | None = None
    ucs2: int = 0x08
    flash_gsm7: int | None = 0x10
    flash_ucs2: int | None = 0x18
    gsm_extension: bool = True
    transliterate: bool = False
    concat: ConcatMethod = "udh8"
    packed: bool = False
    max_octets_per_part: int = 140
    billing_charset: str | None = None

    def __post_init__(self) -> None:
        if not 16 <= self.max_octets_per_part <= 254:
            raise ValueError(
                f"max_octets_per_part must be 16..254 (short_message is at most 254 octets), "
                f"got {self.max_octets_per_part}"
            )
        if self.concat not in ("udh8", "udh16", "sar", "payload"):
            raise ValueError(f"unknown concatenation method {self.concat!r}")

    @classmethod
    def from_profile(
        cls,
        profile: ProviderProfile,
        *,
        transliterate: bool = False,
        packed: bool = False,
    ) -> TextPolicy:
        """Policy from a provider profile; transliteration is off unless the operator asks."""
        dc = profile.data_coding
        return cls(
            gsm7=dc.gsm7,
            latin1=dc.latin1,
            ucs2=dc.ucs2,
            flash_gsm7=dc.flash_gsm7,
            flash_ucs2=dc.flash_ucs2,
            gsm_extension=profile.gsm_extension,
            transliterate=transliterate,
            concat=profile.concat,
            packed=packed,
            max_octets_per_part=profile.max_octets_per_part,
            billing_charset=profile.billing_charset,
        )

    @property
    def ia5_as(self) -> Ia5Alphabet:
        """How to read inbound data_coding 1: Latin-1 where the provider uses 1 for it (Wavy)."""
        return "latin1" if self.latin1 == 0x01 else "gsm7"


@dataclass(frozen=True, slots=True)
class Skipped:
    """An alphabet encode_text passed over before the one it chose, and why.

    ``reason`` "character": ``char`` at ``position`` (an index into the text as given) is the
    first one the alphabet cannot carry, after transliteration when the policy allows it;
    "not_offered": the provider has no data_coding for the alphabet (Qikberry's Latin-1
    unless configured); "no_flash": the message is flash and the alphabet has no class 0
    value (Latin-1 never has). ``char`` and ``position`` are None for the last two.
    """

    encoding: Encoding
    reason: SkipReason
    char: str | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class EncodedText:
    """A text in the alphabet chosen for it, before any split.

    ``data`` is unpacked septets (one per octet, escapes included), Latin-1 octets or UTF-16BE.
    ``text`` is what is actually sent (after transliteration, when that was applied).
    ``flash`` says whether ``data_coding`` is a flash (class 0) value. ``skipped`` lists the
    alphabets tried before this one, in order, with what ruled each out: empty when the
    first choice (GSM7) fitted or the encoding was forced.
    """

    encoding: Encoding
    data_coding: int
    data: bytes
    text: str
    flash: bool = False
    transliterated: bool = False
    skipped: tuple[Skipped, ...] = ()

    @property
    def units(self) -> int:
        """Septets, octets or UTF-16 code units: the measure every part limit is written in."""
        return len(self.data) // 2 if self.encoding == "ucs2" else len(self.data)


# ---------------------------------------------------------------------------------------------
# GSM 03.38
# ---------------------------------------------------------------------------------------------
def is_gsm7(text: str, *, extension: bool = True) -> bool:
    """True when every character has a septet (with the escape table when ``extension``)."""
    return (_NOT_EXTENDED if extension else _NOT_BASIC).search(text) is None


def encode_gsm7(text: str, *, extension: bool = True) -> bytes:
    """Unpacked septets, one per octet, as SMPP short_message carries data_coding 0.

    Raises EncodingError naming the first character outside the alphabet.
    """
    bad = (_NOT_EXTENDED if extension else _NOT_BASIC).search(text)
    if bad is not None:
        raise EncodingError(bad.group(), bad.start(), "gsm7")
    table = _ENCODE_EXTENDED if extension else _ENCODE_BASIC
    return text.translate(table).encode("latin-1")


def gsm7_septets(text: str) -> int:
    """Septets the text takes (escaped characters count 2); text must be GSM-encodable."""
    return len(encode_gsm7(text))


def decode_gsm7(data: bytes) -> str:
    """Unpacked septets → text. Never raises: bytes that are not septets become U+FFFD."""
    text = data.decode("latin-1")
    if "\x1b" not in text:
        return text.translate(_DECODE_BASIC)
    # re.split with one group alternates plain runs and the code after each escape.
    pieces = _ESCAPE_SPLIT.split(text)
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(_DECODE_ESCAPED.get(piece, "\ufffd"))
        else:
            out.append(piece.translate(_DECODE_BASIC))
    return "".join(out)


@lru_cache(maxsize=64)
def _lane_masks(lanes: int) -> tuple[int, ...]:
    """Masks selecting septet j (bits 7j..7j+6) in every 64-bit lane of a ``lanes``-lane int."""
    return tuple(
        int.from_bytes(((0x7F << (7 * j)).to_bytes(8, "little")) * lanes, "little")
        for j in range(8)
    )


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets 8-into-7 octets, least significant bit first (3GPP TS 23.038 §6.1.2.1.1).

    ``fill_bits`` (0..6) zero bits come first, so that after a UDH the first septet starts on
    a septet boundary (3GPP TS 23.040 §9.2.3.24). Works on whole-message integers, eight
    septets per 64-bit lane, instead of a Python loop per character.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, got {fill_bits}")
    count = len(septets)
    if count == 0:
        return b""
    lanes = (count + 7) // 8
    wide = int.from_bytes(septets + bytes(lanes * 8 - count), "little")
    packed = 0
    for j, mask in enumerate(_lane_masks(lanes)):
        packed |= (wide >> j) & mask
    compact = bytearray(packed.to_bytes(lanes * 8, "little"))
    del compact[7::8]  # each lane now holds 56 bits: drop its empty top octet
    length = (count * 7 + fill_bits + 7) // 8
    if fill_bits:
        return (int.from_bytes(compact, "little") << fill_bits).to_bytes(length, "little")
    return bytes(compact[:length])


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Inverse of pack_septets: one septet per octet.

    ``count`` is the septet count (TP-UDL) when known; without it every whole septet in
    ``data`` is returned, so 7 trailing zero bits read as a final '@' (TS 23.038 §6.1.2.1.1).
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, got {fill_bits}")
    available = (len(data) * 8 - fill_bits) // 7 if data else 0
    count = available if count is None else min(count, available)
    if count <= 0:
        return b""
    if fill_bits:
        data = (int.from_bytes(data, "little") >> fill_bits).to_bytes(len(data), "little")
    lanes = (len(data) + 6) // 7
    source = data + bytes(lanes * 7 - len(data))
    spread = bytearray(lanes * 8)
    for k in range(7):
        spread[k::8] = source[k::7]
    wide = int.from_bytes(spread, "little")
    septets = 0
    for j, mask in enumerate(_lane_masks(lanes)):
        septets |= (wide & mask) << j
    return septets.to_bytes(lanes * 8, "little")[:count]


def decode_gsm7_packed(data: bytes, count: int | None = None, fill_bits: int = 0) -> str:
    """Packed septets → text; see unpack_septets for ``count`` and ``fill_bits``."""
    return decode_gsm7(unpack_septets(data, count, fill_bits))


# ---------------------------------------------------------------------------------------------
# Latin-1, UCS-2
# ---------------------------------------------------------------------------------------------
def encode_latin1(text: str) -> bytes:
    """ISO-8859-1 octets; EncodingError names the first character outside it."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise EncodingError(text[exc.start], exc.start, "latin1") from None


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE: characters outside the BMP become surrogate pairs (2 units, as handsets count).

    Only a lone surrogate in the input can fail; EncodingError names it.
    """
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise EncodingError(text[exc.start], exc.start, "ucs2") from None


def transliterate(text: str, *, extension: bool = True) -> str:
    """Replace characters that have a plain GSM spelling (“ → ", … → ..., ã → a).

    With ``extension`` False the escape-table characters are spelled out too (€ → EUR,
    [ → (), for providers whose carriers drop escapes. Characters without a substitute
    are left as they are; the caller decides what to do with them.
    """
    table = _TRANSLITERATE_KEEP_EXTENSION if extension else _TRANSLITERATE_NO_EXTENSION
    return text.translate(table)


def _first_untransliterable(text: str, extension: bool) -> re.Match[str] | None:
    """The first character of the original text that stays outside GSM after transliteration."""
    pattern = _NOT_TRANSLITERABLE_KEEP_EXTENSION if extension else _NOT_TRANSLITERABLE_NO_EXTENSION
    return pattern.search(text)


def first_outside(text: str, charset: str) -> tuple[str, int] | None:
    """The first character of ``text`` not in ``charset``, with its index; None if all are.

    One regular-expression scan; the compiled class is cached per charset.
    """
    found = _outside(charset).search(text)
    return None if found is None else (found.group(), found.start())


def _data_coding(policy: TextPolicy, encoding: Encoding, flash: bool) -> tuple[int, bool]:
    """data_coding for an alphabet, and whether the flash value was used.

    A provider without a flash value for the alphabet gets a normal SMS, as Wavy's carriers
    without flash support do anyway.
    """
    if encoding == "gsm7":
        if flash and policy.flash_gsm7 is not None:
            return policy.flash_gsm7, True
        return policy.gsm7, False
    if encoding == "ucs2":
        if flash and policy.flash_ucs2 is not None:
            return policy.flash_ucs2, True
        return policy.ucs2, False
    if policy.latin1 is None:
        raise ValueError("this provider has no Latin-1 data_coding; use gsm7 or ucs2")
    if flash:
        raise ValueError("no flash data_coding exists for Latin-1; use gsm7 or ucs2")
    return policy.latin1, False


def encode_text(
    text: str,
    policy: TextPolicy,
    *,
    flash: bool = False,
    force_encoding: Encoding | None = None,
) -> EncodedText:
    """Choose the alphabet and data_coding for ``text`` and encode it.

    Order: GSM7 (escape table only if the provider carries it), then GSM7 after
    transliteration (if the policy allows), then Latin-1 (if the provider has a value, and
    never for flash: no Latin-1 flash value exists), then UCS-2; ``skipped`` of the result
    says what ruled out each alphabet passed over. A forced encoding skips the choice; text
    it cannot carry raises EncodingError with the first offending character and its
    position in ``text``. An impossible combination (Latin-1 on a provider without it,
    flash Latin-1) raises ValueError.
    """
    extension = policy.gsm_extension
    skipped: list[Skipped] = []
    if force_encoding is None or force_encoding == "gsm7":
        bad = (_NOT_EXTENDED if extension else _NOT_BASIC).search(text)
        if bad is None:
            septets = text.translate(_ENCODE_EXTENDED if extension else _ENCODE_BASIC)
            dcs, used_flash = _data_coding(policy, "gsm7", flash)
            return EncodedText("gsm7", dcs, septets.encode("latin-1"), text, used_flash)
        if policy.transliterate:
            replaced = transliterate(text, extension=extension)
            if is_gsm7(replaced, extension=extension):
                dcs, used_flash = _data_coding(policy, "gsm7", flash)
                return EncodedText(
                    "gsm7",
                    dcs,
                    encode_gsm7(replaced, extension=extension),
                    replaced,
                    used_flash,
                    transliterated=True,
                )
            # The character to blame is one transliteration could not replace.
            bad = _first_untransliterable(text, extension) or bad
        if force_encoding == "gsm7":
            raise EncodingError(bad.group(), bad.start(), "gsm7")
        skipped.append(Skipped("gsm7", "character", bad.group(), bad.start()))
    if force_encoding == "latin1":
        octets = encode_latin1(text)
        dcs, used_flash = _data_coding(policy, "latin1", flash)
        return EncodedText("latin1", dcs, octets, text, used_flash)
    if force_encoding is None:
        if policy.latin1 is None:
            skipped.append(Skipped("latin1", "not_offered"))
        elif flash:
            skipped.append(Skipped("latin1", "no_flash"))
        else:
            try:
                octets = text.encode("latin-1")
            except UnicodeEncodeError as exc:
                skipped.append(Skipped("latin1", "character", text[exc.start], exc.start))
            else:
                return EncodedText(
                    "latin1", policy.latin1, octets, text, skipped=tuple(skipped)
                )
    dcs, used_flash = _data_coding(policy, "ucs2", flash)
    return EncodedText(
        "ucs2", dcs, encode_ucs2(text), text, used_flash, skipped=tuple(skipped)
    )


_SMPP_ALPHABETS: Final[dict[int, CodedAlphabet]] = {
    0x00: "gsm7", 0x01: "ia5", 0x02: "binary", 0x03: "latin1", 0x04: "binary", 0x08: "ucs2",
}  # fmt: skip


def data_coding_alphabet(data_coding: int) -> CodedAlphabet | None:
    """What a data_coding value labels the octets as, for checking a provider's map.

    SMPP 3.4 §5.2.19 for 0x00-0x0F: 0 = SMSC default (GSM 03.38 here), 1 = IA5 (read as
    GSM7 or as Latin-1 depending on the SMSC), 2 and 4 = 8-bit binary, 3 = Latin-1,
    8 = UCS-2; 5-7 and 9-15 are other alphabets (JIS, Cyrillic, Hebrew, pictograms, ...).
    Above that, the GSM 03.38 data coding scheme (3GPP TS 23.038 §4): the general group
    0x10-0x3F uncompressed has the alphabet in bits 3-2, the group 0xF0-0xFF GSM7 or 8-bit
    data in bit 2; anything else (compression, message waiting, reserved) is None.
    """
    if data_coding < 0x10:
        return _SMPP_ALPHABETS.get(data_coding)
    if data_coding < 0x40:
        if data_coding & 0x20:
            return None  # compressed
        alphabets: tuple[CodedAlphabet | None, ...] = ("gsm7", "binary", "ucs2", None)
        return alphabets[(data_coding >> 2) & 0x03]
    if data_coding & 0xF0 == 0xF0:
        return "binary" if data_coding & 0x04 else "gsm7"
    return None


def message_class(data_coding: int) -> int | None:
    """The GSM message class a data_coding value sets (0 = flash), None when it sets none.

    3GPP TS 23.038 §4: the general group 0x10-0x3F when bit 4 is set, and the group
    0xF0-0xFF, carry the class in bits 1-0. SMPP's own values 0x00-0x0F set no class.
    """
    if 0x10 <= data_coding < 0x40 and data_coding & 0x10:
        return data_coding & 0x03
    if data_coding & 0xF0 == 0xF0:
        return data_coding & 0x03
    return None


# ---------------------------------------------------------------------------------------------
# Inbound
# ---------------------------------------------------------------------------------------------
def decode_text(
    data: bytes,
    data_coding: int,
    *,
    ia5_as: Ia5Alphabet = "gsm7",
    packed: bool = False,
) -> str:
    """Text of an inbound short_message body by its data_coding. Never raises on bad bytes.

    0 → GSM7 (unpacked unless ``packed``); 1 (IA5) → GSM7 or Latin-1 per ``ia5_as`` (Wavy
    uses 1 for Latin-1); 3 → Latin-1; 8 → UTF-16BE; GSM 03.38 DCS groups 0x10-0x3F and
    0xF0-0xFF (message classes, e.g. flash 0x10/0x18) by their alphabet bits (TS 23.038 §4);
    anything else → Latin-1, which maps every octet.
    """
    coded = data_coding_alphabet(data_coding)
    alphabet: Encoding
    if coded == "gsm7" or coded == "ucs2":
        alphabet = coded
    elif coded == "ia5":
        alphabet = ia5_as
    else:
        alphabet = "latin1"  # Latin-1, binary or an alphabet we lack: every octet maps
    if alphabet == "gsm7":
        return decode_gsm7_packed(data) if packed else decode_gsm7(data)
    if alphabet == "ucs2":
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")
