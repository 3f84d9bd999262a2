"""Byte-exact short_message vectors for the providers' encoding and billing rules.

Each vector gives a provider table (as in smppgw.toml), a text, and the data_coding,
esm_class and short_message octets of every part, spelled field by field: the UDH (3GPP
TS 23.040 §9.2.3.24.1 / .8: UDHL, IEI, IEDL, reference, total, sequence) then the body,
written from the alphabets' tables (GSM 03.38 septets unpacked one per octet, TS 23.038
§6.2.1: a=61 é=05, ESC 1B + 65 = €; ISO-8859-1: ã=E3 ç=E7 [=5B; UTF-16BE: € = 20AC,
😀 = D83D DE00), not from the code under test. ``source`` names the rule it pins down.
"""

from __future__ import annotations

from dataclasses import dataclass

WAVY = 'profile = "wavy"'
QIKBERRY = 'profile = "qikberry"'
QIKBERRY_LATIN1 = 'profile = "qikberry"\ndata_coding = { latin1 = 3 }'
REFERENCE = 0x2A


def udh8(total: int, seq: int, reference: int = REFERENCE) -> str:
    """3GPP TS 23.040 §9.2.3.24.1: 05 00 03 ref total seq."""
    return f"05 00 03 {reference:02x} {total:02x} {seq:02x}"


def udh16(total: int, seq: int, reference: int) -> str:
    """3GPP TS 23.040 §9.2.3.24.8: 06 08 04 ref-hi ref-lo total seq."""
    return f"06 08 04 {reference >> 8:02x} {reference & 0xFF:02x} {total:02x} {seq:02x}"


@dataclass(frozen=True)
class EncodingVector:
    name: str
    source: str
    provider: str  # the [[provider]] table's text keys
    text: str
    data_coding: int
    esm_class: int
    parts: tuple[str, ...]  # short_message of each part, hex with spaces
    flash: bool = False
    concat: str | None = None
    reference: int = REFERENCE

    @property
    def short_messages(self) -> list[bytes]:
        return [bytes.fromhex(part.replace(" ", "")) for part in self.parts]


ENCODING_VECTORS: list[EncodingVector] = [
    # --- Wavy -----------------------------------------------------------------------------
    EncodingVector(
        "wavy: 125 accented characters, Latin-1, cut at 67 as Wavy bills them",
        'seed 003 "Acentos e caracteres especiais" (per 70) and "Textos grandes" (67 with UDH)',
        WAVY,
        "ã" * 125,
        data_coding=0x01,  # seed 003: LATIN1 (data_coding = 1)
        esm_class=0x40,
        parts=(udh8(2, 1) + " " + "e3" * 67, udh8(2, 2) + " " + "e3" * 58),
    ),
    EncodingVector(
        "wavy: 70 accented characters are one part",
        'seed 003 "Acentos e caracteres especiais"',
        WAVY,
        "ç" * 70,
        data_coding=0x01,
        esm_class=0x00,
        parts=("e7" * 70,),
    ),
    EncodingVector(
        "wavy: GSM7 with é keeps data_coding 0 and is cut at 67 characters",
        'seed 003 "Acentos e caracteres especiais": é is GSM 03.38 but not in Wavy\'s table',
        WAVY,
        "é" + "a" * 159,
        data_coding=0x00,
        esm_class=0x40,
        parts=(
            udh8(3, 1) + " 05 " + "61" * 66,
            udh8(3, 2) + " " + "61" * 67,
            udh8(3, 3) + " " + "61" * 26,
        ),
    ),
    EncodingVector(
        "wavy: plain text, 160 septets in one part",
        'seed 003 "Acentos e caracteres especiais" (per 160)',
        WAVY,
        "a" * 160,
        data_coding=0x00,
        esm_class=0x00,
        parts=("61" * 160,),
    ),
    EncodingVector(
        "wavy: plain text, 161 septets in 153 + 8",
        'seed 003 "Textos grandes": 153 with UDH',
        WAVY,
        "a" * 161,
        data_coding=0x00,
        esm_class=0x40,
        parts=(udh8(2, 1) + " " + "61" * 153, udh8(2, 2) + " " + "61" * 8),
    ),
    EncodingVector(
        "wavy: line breaks are in the 160-character table",
        "seed 003 lines 1254-1261 print no control characters: a decision (profiles.py)",
        WAVY,
        "linha 1\nlinha 2",
        data_coding=0x00,
        esm_class=0x00,
        parts=("6c 69 6e 68 61 20 31 0a 6c 69 6e 68 61 20 32",),
    ),
    EncodingVector(
        "wavy: [ is in the table (lost in the seed's text extraction), Latin-1, 140 in one part",
        "seed 003 lines 1254-1261: 12 columns of 8 ASCII cells; no GSM7 extension table",
        WAVY,
        "[" * 140,
        data_coding=0x01,
        esm_class=0x00,
        parts=("5b" * 140,),
    ),
    EncodingVector(
        "wavy: € is neither GSM (no extension table) nor Latin-1: UCS-2",
        "seed 003: GSM3.38 extended table is not supported by carriers",
        WAVY,
        "10€",
        data_coding=0x08,
        esm_class=0x00,
        parts=("0031 0030 20ac",),
    ),
    EncodingVector(
        "wavy: 36 emoji = 72 UTF-16 units, the 34th pair moves whole to part 2",
        "seed 003 per 67 with UDH; 3GPP TS 23.038 §6.2.3 (UCS-2 units)",
        WAVY,
        "😀" * 36,
        data_coding=0x08,
        esm_class=0x40,
        parts=(udh8(2, 1) + " " + "d83dde00" * 33, udh8(2, 2) + " " + "d83dde00" * 3),
    ),
    EncodingVector(
        "wavy: 16-bit reference UDH leaves 66 characters",
        "seed 003: UDH 8-bit and 16-bit supported; 7-octet UDH = 66 UCS-2 units",
        WAVY,
        "ã" * 125,
        data_coding=0x01,
        esm_class=0x40,
        parts=(
            udh16(2, 1, 0x1234) + " " + "e3" * 66,
            udh16(2, 2, 0x1234) + " " + "e3" * 59,
        ),
        concat="udh16",
        reference=0x1234,
    ),
    EncodingVector(
        "wavy: flash with accents is UCS-2 0x18 (no Latin-1 flash value)",
        "seed 003: data_coding 0x10 for GSM7 and 0x18 for UCS2",
        WAVY,
        "ação",
        data_coding=0x18,
        esm_class=0x00,
        parts=("0061 00e7 00e3 006f",),
        flash=True,
    ),
    # --- Qikberry -------------------------------------------------------------------------
    EncodingVector(
        "qikberry: Latin-1 text goes UCS-2 unless the provider opted in",
        'seed 004 "Character Sets": data_coding = 3 "if and only if told so explicitly"',
        QIKBERRY,
        "ação",
        data_coding=0x08,
        esm_class=0x00,
        parts=("0061 00e7 00e3 006f",),
    ),
    EncodingVector(
        "qikberry: Latin-1 as 3 once opted in",
        'seed 004 "Character Sets": data_coding = 3 for ISO-8859-1',
        QIKBERRY_LATIN1,
        "ação",
        data_coding=0x03,
        esm_class=0x00,
        parts=("61 e7 e3 6f",),
    ),
    EncodingVector(
        "qikberry: 141 Latin-1 octets in 134 + 7, the UDH inside 140 bytes",
        'seed 004 "Submission Types": 140 bytes on GSM, UDH included',
        QIKBERRY_LATIN1,
        "ã" * 141,
        data_coding=0x03,
        esm_class=0x40,
        parts=(udh8(2, 1) + " " + "e3" * 134, udh8(2, 2) + " " + "e3" * 7),
    ),
    EncodingVector(
        "qikberry: € is a GSM 03.38 escape pair",
        'seed 004 "Character Sets": GSM 03.38 (default), extension table included',
        QIKBERRY,
        "10€",
        data_coding=0x00,
        esm_class=0x00,
        parts=("31 30 1b 65",),
    ),
    EncodingVector(
        "qikberry: 81 euros = 162 septets, escape pairs never cut (76 + 5)",
        "3GPP TS 23.038 §6.2.1.1; seed 004: UDH counted inside the byte limit",
        QIKBERRY,
        "€" * 81,
        data_coding=0x00,
        esm_class=0x40,
        parts=(udh8(2, 1) + " " + "1b65" * 76, udh8(2, 2) + " " + "1b65" * 5),
    ),
    EncodingVector(
        "qikberry: accents in GSM7 bill by the octet budget, 160 in one part",
        'seed 004 "Submission Types": the byte limit decides, no per-character rule',
        QIKBERRY,
        "é" * 160,
        data_coding=0x00,
        esm_class=0x00,
        parts=("05" * 160,),
    ),
    EncodingVector(
        "qikberry: flash GSM7 is 0x10",
        "3GPP TS 23.038 §4: general group, class 0",
        QIKBERRY,
        "€",
        data_coding=0x10,
        esm_class=0x00,
        parts=("1b 65",),
        flash=True,
    ),
]
