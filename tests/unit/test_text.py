"""Text encodings and the choice of data_coding (smppgw.smpp.text)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.profiles import (
    GENERIC,
    QIKBERRY,
    WAVY,
    WAVY_BILLING_CHARSET,
    DataCodingMap,
    ProviderProfile,
)
from smppgw.smpp.errors import EncodingError
from smppgw.smpp.text import (
    GSM7_BASIC,
    Skipped,
    TextPolicy,
    data_coding_alphabet,
    decode_gsm7,
    decode_gsm7_packed,
    decode_text,
    encode_gsm7,
    encode_latin1,
    encode_text,
    encode_ucs2,
    gsm7_septets,
    is_gsm7,
    message_class,
    pack_septets,
    transliterate,
    unpack_septets,
)

# 3GPP TS 23.038 §6.2.1, written as code points independently of the module's string: every
# septet 0x20-0x7F maps to the same ASCII code point except these.
_SPEC_LOW = [
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    0x03A3, 0x0398, 0x039E, None, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
]  # fmt: skip
_SPEC_HIGH_EXCEPTIONS = {
    0x24: 0x00A4, 0x40: 0x00A1, 0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1, 0x5E: 0x00DC,
    0x5F: 0x00A7, 0x60: 0x00BF, 0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1, 0x7E: 0x00FC,
    0x7F: 0x00E0,
}  # fmt: skip
SPEC_BASIC: dict[int, int] = {
    septet: cp for septet, cp in enumerate(_SPEC_LOW) if cp is not None
} | {septet: _SPEC_HIGH_EXCEPTIONS.get(septet, septet) for septet in range(0x20, 0x80)}
# 3GPP TS 23.038 §6.2.1.1: code after the escape 0x1B → code point.
SPEC_EXTENSION = {
    0x0A: 0x000C, 0x14: 0x005E, 0x28: 0x007B, 0x29: 0x007D, 0x2F: 0x005C,
    0x3C: 0x005B, 0x3D: 0x007E, 0x3E: 0x005D, 0x40: 0x007C, 0x65: 0x20AC,
}  # fmt: skip

GSM_BASIC_CHARS = "".join(chr(cp) for cp in SPEC_BASIC.values())
GSM_EXTENSION_CHARS = "".join(chr(cp) for cp in SPEC_EXTENSION.values())

WAVY_POLICY = TextPolicy.from_profile(WAVY)
QIKBERRY_POLICY = TextPolicy.from_profile(QIKBERRY)
# Qikberry with Latin-1 opted in, as its document allows "if and only if told so explicitly".
QIKBERRY_LATIN1_POLICY = dataclasses.replace(QIKBERRY_POLICY, latin1=3)
GENERIC_POLICY = TextPolicy.from_profile(GENERIC)

gsm_texts = st.text(alphabet=GSM_BASIC_CHARS + GSM_EXTENSION_CHARS, max_size=400)
basic_texts = st.text(alphabet=GSM_BASIC_CHARS, max_size=400)


def reference_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Straightforward bit-by-bit packing, TS 23.038 §6.1.2.1.1, as the oracle."""
    value = 0
    for i, septet in enumerate(septets):
        value |= septet << (7 * i + fill_bits)
    return value.to_bytes((7 * len(septets) + fill_bits + 7) // 8, "little") if septets else b""


# --- GSM 03.38 tables ----------------------------------------------------------------------------
def test_basic_table_has_128_entries_with_escape_at_0x1b() -> None:
    assert len(GSM7_BASIC) == 128
    assert GSM7_BASIC[0x1B] == "\x1b"
    assert len(SPEC_BASIC) == 127


@pytest.mark.parametrize(("septet", "cp"), sorted(SPEC_BASIC.items()))
def test_every_basic_character_is_one_septet(septet: int, cp: int) -> None:
    # 3GPP TS 23.038 §6.2.1
    assert encode_gsm7(chr(cp), extension=False) == bytes([septet])
    assert decode_gsm7(bytes([septet])) == chr(cp)


@pytest.mark.parametrize(("code", "cp"), sorted(SPEC_EXTENSION.items()))
def test_every_extension_character_is_escape_plus_code(code: int, cp: int) -> None:
    # 3GPP TS 23.038 §6.2.1.1
    assert encode_gsm7(chr(cp)) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == chr(cp)
    assert not is_gsm7(chr(cp), extension=False)
    with pytest.raises(EncodingError):
        encode_gsm7(chr(cp), extension=False)


def test_named_characters_of_the_issue() -> None:
    text = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà\n\r"
    assert is_gsm7(text, extension=False)
    assert encode_gsm7("@£$¥") == bytes.fromhex("00010203")
    assert encode_gsm7("Hi €5 [x]") == bytes.fromhex("486920") + bytes.fromhex("1b6535201b3c781b3e")
    assert gsm7_septets("{}") == 4


def test_characters_outside_gsm_are_refused_with_position() -> None:
    with pytest.raises(EncodingError) as info:
        encode_gsm7("ok ação")
    assert info.value.char == "ç"
    assert info.value.position == 4
    assert info.value.encoding == "gsm7"
    # Backtick and small c cedilla are not in the table (TS 23.038 has capital Ç only).
    assert not is_gsm7("`")
    assert not is_gsm7("ç")
    assert not is_gsm7("\t")


def test_decode_tolerates_bad_input() -> None:
    # TS 23.038 §6.2.1.1: unknown code after escape shows the default-table character;
    # ESC ESC is reserved and shows a space.
    assert decode_gsm7(b"\x1bA") == "A"
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"
    assert decode_gsm7(b"ab\x1b") == "ab "
    assert decode_gsm7(b"a\x80\xffb") == "a\ufffd\ufffdb"
    assert decode_gsm7(b"\x1b\x80") == "\ufffd"


@given(gsm_texts)
def test_unpacked_round_trip(text: str) -> None:
    assert decode_gsm7(encode_gsm7(text)) == text


# --- packing -------------------------------------------------------------------------------------
def test_packing_known_vector() -> None:
    # The classic TS 23.038 §6.1.2.1.1 example: "hellohello" → E8329BFD4697D9EC37.
    assert pack_septets(encode_gsm7("hellohello")) == bytes.fromhex("e8329bfd4697d9ec37")
    assert decode_gsm7_packed(bytes.fromhex("e8329bfd4697d9ec37"), 10) == "hellohello"
    # 8 septets pack into exactly 7 octets.
    assert len(pack_septets(b"\x7f" * 8)) == 7
    assert pack_septets(b"\x7f" * 8) == b"\xff" * 7


def test_packing_with_fill_bits_after_udh() -> None:
    # 3GPP TS 23.040 §9.2.3.24: after a 6-octet UDH (48 bits) one fill bit puts the first
    # septet on a septet boundary; the fill bit is the least significant bit of octet 1.
    packed = pack_septets(encode_gsm7("A"), fill_bits=1)
    assert packed == bytes([0x41 << 1])
    assert unpack_septets(packed, 1, fill_bits=1) == b"A"
    assert pack_septets(b"\x7f", fill_bits=6) == bytes.fromhex("c01f")


@given(gsm_texts, st.integers(min_value=0, max_value=6))
def test_packed_round_trip(text: str, fill_bits: int) -> None:
    septets = encode_gsm7(text)
    packed = pack_septets(septets, fill_bits)
    assert packed == reference_pack(septets, fill_bits)
    assert len(packed) == ((7 * len(septets) + fill_bits + 7) // 8 if septets else 0)
    assert decode_gsm7_packed(packed, len(septets), fill_bits) == text


@given(st.binary(max_size=300))
def test_unpack_without_count_reads_every_whole_septet(data: bytes) -> None:
    septets = unpack_septets(data)
    assert len(septets) == len(data) * 8 // 7
    assert all(s < 0x80 for s in septets)


def test_fill_bits_are_checked() -> None:
    with pytest.raises(ValueError):
        pack_septets(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        unpack_septets(b"a", fill_bits=-1)


# --- Latin-1 and UCS-2 ---------------------------------------------------------------------------
def test_latin1() -> None:
    assert encode_latin1("ação") == bytes.fromhex("61e7e36f")
    with pytest.raises(EncodingError) as info:
        encode_latin1("ação €")
    assert (info.value.char, info.value.position, info.value.encoding) == ("€", 5, "latin1")


def test_ucs2_surrogate_pairs() -> None:
    # An emoji outside the BMP is a surrogate pair: two UTF-16 units.
    assert encode_ucs2("a😀") == bytes.fromhex("0061d83dde00")
    assert encode_text("😀", GENERIC_POLICY).units == 2
    with pytest.raises(EncodingError) as info:
        encode_ucs2("ab\ud800")
    assert (info.value.char, info.value.position) == ("\ud800", 2)


# --- policy --------------------------------------------------------------------------------------
def test_policy_from_profiles() -> None:
    expected = TextPolicy(
        gsm7=0,
        latin1=1,
        ucs2=8,
        flash_gsm7=0x10,
        flash_ucs2=0x18,
        gsm_extension=False,
        billing_charset=WAVY_BILLING_CHARSET,
    )
    assert TextPolicy.from_profile(WAVY) == expected
    # Seed 004: Latin-1 (3) "if and only if told so explicitly": off in the profile.
    assert QIKBERRY_POLICY.latin1 is None
    assert QIKBERRY_POLICY.billing_charset is None
    assert QIKBERRY_POLICY.gsm_extension is True
    assert GENERIC_POLICY.latin1 is None
    assert not WAVY_POLICY.transliterate  # off unless asked
    assert TextPolicy.from_profile(WAVY, transliterate=True).transliterate
    assert WAVY_POLICY.ia5_as == "latin1"
    assert QIKBERRY_POLICY.ia5_as == "gsm7"


def test_policy_rejects_impossible_part_size() -> None:
    with pytest.raises(ValueError):
        TextPolicy(max_octets_per_part=8)


@pytest.mark.parametrize(
    ("policy", "text", "encoding", "data_coding", "data"),
    [
        (WAVY_POLICY, "Hello", "gsm7", 0, b"Hello"),
        # Wavy's carriers have no extension table; € is not Latin-1 either → UCS-2.
        (WAVY_POLICY, "€", "ucs2", 8, bytes.fromhex("20ac")),
        # [ is not GSM without the escape table, but is Latin-1, which Wavy codes as 1.
        (WAVY_POLICY, "[x]", "latin1", 1, b"[x]"),
        (WAVY_POLICY, "ação", "latin1", 1, bytes.fromhex("61e7e36f")),
        # Qikberry carries the escape table: € stays GSM7.
        (QIKBERRY_POLICY, "€", "gsm7", 0, bytes.fromhex("1b65")),
        # Qikberry: UCS-2 unless the provider opted in to Latin-1 (3).
        (QIKBERRY_POLICY, "ação", "ucs2", 8, bytes.fromhex("006100e700e3006f")),
        (QIKBERRY_LATIN1_POLICY, "ação", "latin1", 3, bytes.fromhex("61e7e36f")),
        (QIKBERRY_POLICY, "😀", "ucs2", 8, bytes.fromhex("d83dde00")),
        # No Latin-1 value in the generic profile: straight to UCS-2.
        (GENERIC_POLICY, "ação", "ucs2", 8, bytes.fromhex("006100e700e3006f")),
    ],
)
def test_choice_of_data_coding(
    policy: TextPolicy, text: str, encoding: str, data_coding: int, data: bytes
) -> None:
    encoded = encode_text(text, policy)
    assert (encoded.encoding, encoded.data_coding, encoded.data) == (encoding, data_coding, data)
    assert not encoded.flash


@pytest.mark.parametrize(
    ("policy", "text", "encoding", "data_coding"),
    [
        (WAVY_POLICY, "Hello", "gsm7", 0x10),
        (WAVY_POLICY, "€", "ucs2", 0x18),
        # No Latin-1 flash value exists: a flash text that would need Latin-1 goes UCS-2.
        (WAVY_POLICY, "ação", "ucs2", 0x18),
        (QIKBERRY_POLICY, "€", "gsm7", 0x10),
        (QIKBERRY_POLICY, "ação", "ucs2", 0x18),
        (QIKBERRY_POLICY, "😀", "ucs2", 0x18),
    ],
)
def test_flash(policy: TextPolicy, text: str, encoding: str, data_coding: int) -> None:
    encoded = encode_text(text, policy, flash=True)
    assert (encoded.encoding, encoded.data_coding, encoded.flash) == (encoding, data_coding, True)


def test_flash_without_a_flash_value_goes_as_normal_sms() -> None:
    profile = ProviderProfile(
        name="x", hosts=(), data_coding=DataCodingMap(flash_gsm7=None, flash_ucs2=None)
    )
    encoded = encode_text("hi", TextPolicy.from_profile(profile), flash=True)
    assert (encoded.data_coding, encoded.flash) == (0, False)


def test_forced_gsm7_names_first_offending_character() -> None:
    with pytest.raises(EncodingError) as info:
        encode_text("price: 5€ or 6€", WAVY_POLICY, force_encoding="gsm7")
    assert (info.value.char, info.value.position) == ("€", 8)
    assert "'€'" in str(info.value)
    assert "position 8" in str(info.value)
    # The same text is fine where the escape table is carried.
    assert encode_text("5€", QIKBERRY_POLICY, force_encoding="gsm7").data == b"5\x1b\x65"


def test_forced_latin1() -> None:
    encoded = encode_text("hello", QIKBERRY_LATIN1_POLICY, force_encoding="latin1")
    assert (encoded.encoding, encoded.data_coding, encoded.data) == ("latin1", 3, b"hello")
    with pytest.raises(EncodingError) as info:
        encode_text("olá 😀", QIKBERRY_LATIN1_POLICY, force_encoding="latin1")
    assert (info.value.char, info.value.position, info.value.encoding) == ("😀", 4, "latin1")
    with pytest.raises(ValueError, match="no Latin-1 data_coding"):
        encode_text("hello", GENERIC_POLICY, force_encoding="latin1")
    with pytest.raises(ValueError, match="no Latin-1 data_coding"):
        encode_text("hello", QIKBERRY_POLICY, force_encoding="latin1")
    with pytest.raises(ValueError, match="flash"):
        encode_text("hello", WAVY_POLICY, force_encoding="latin1", flash=True)


def test_forced_ucs2() -> None:
    encoded = encode_text("hi", WAVY_POLICY, force_encoding="ucs2")
    assert (encoded.encoding, encoded.data_coding, encoded.data) == ("ucs2", 8, b"\x00h\x00i")


# --- transliteration -----------------------------------------------------------------------------
def test_transliteration_table() -> None:
    assert transliterate("“Olá” – ‘sim’ — ação…\u00a0ok") == "\"Ola\" - 'sim' - acao... ok"
    assert transliterate("ÁÍÓÚÂÊÔÃÕ áíóúâêôãõ çÇ") == "AIOUAEOAO aiouaeoao cÇ"
    # GSM letters stay as they are.
    assert transliterate("é ü Ñ à") == "é ü Ñ à"
    assert transliterate("€ [a] {b} ~ \\ ^ |", extension=False) == "EUR (a) (b) - / ' /"
    assert transliterate("€ [a]", extension=True) == "€ [a]"


def test_transliteration_keeps_wavy_in_gsm7() -> None:
    policy = TextPolicy.from_profile(WAVY, transliterate=True)
    encoded = encode_text("Promoção: 10€ [hoje]", policy)
    assert encoded.encoding == "gsm7"
    assert encoded.data_coding == 0
    assert encoded.text == "Promocao: 10EUR (hoje)"
    assert encoded.transliterated
    assert encoded.data == b"Promocao: 10EUR (hoje)"


def test_transliteration_keeps_escapes_where_supported() -> None:
    policy = TextPolicy.from_profile(QIKBERRY, transliterate=True)
    encoded = encode_text("“10€”", policy)
    assert encoded.text == '"10€"'
    assert encoded.data == bytes.fromhex("2231301b6522")


def test_transliteration_gives_way_when_text_needs_ucs2_anyway() -> None:
    policy = TextPolicy.from_profile(WAVY, transliterate=True)
    encoded = encode_text("Olá 😀", policy)
    assert (encoded.encoding, encoded.text, encoded.transliterated) == ("ucs2", "Olá 😀", False)


def test_forced_gsm7_with_transliteration_names_original_position() -> None:
    policy = TextPolicy.from_profile(WAVY, transliterate=True)
    assert encode_text("ação…", policy, force_encoding="gsm7").text == "acao..."
    with pytest.raises(EncodingError) as info:
        encode_text("ação… 😀", policy, force_encoding="gsm7")
    assert (info.value.char, info.value.position) == ("😀", 6)


def test_every_substitute_is_plain_gsm() -> None:
    # encode_text blames the first character that is neither GSM nor in the table, in one
    # scan: right only because each substitute is plain GSM. Checked character by character
    # against what transliteration actually does.
    for extension in (True, False):
        policy = TextPolicy(gsm_extension=extension, transliterate=True)
        for cp in range(0x3100):
            char = chr(cp)
            replaced = transliterate(char, extension=extension)
            if replaced != char:
                assert is_gsm7(replaced, extension=False), char
            fits = is_gsm7(replaced, extension=extension)
            skipped = encode_text("a" + char, policy).skipped[:1]
            assert skipped == (() if fits else (Skipped("gsm7", "character", char, 1),)), char


# --- what ruled an alphabet out ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "text", "flash", "encoding", "skipped"),
    [
        (WAVY_POLICY, "Hello", False, "gsm7", ()),
        # Wavy: no extension table, and € is not Latin-1 either.
        (
            WAVY_POLICY,
            "10€",
            False,
            "ucs2",
            (Skipped("gsm7", "character", "€", 2), Skipped("latin1", "character", "€", 2)),
        ),
        (WAVY_POLICY, "ação", False, "latin1", (Skipped("gsm7", "character", "ç", 1),)),
        (
            WAVY_POLICY,
            "ação 😀",
            False,
            "ucs2",
            (Skipped("gsm7", "character", "ç", 1), Skipped("latin1", "character", "😀", 5)),
        ),
        (
            WAVY_POLICY,
            "ação",
            True,
            "ucs2",
            (Skipped("gsm7", "character", "ç", 1), Skipped("latin1", "no_flash")),
        ),
        (
            QIKBERRY_POLICY,
            "ação",
            False,
            "ucs2",
            (Skipped("gsm7", "character", "ç", 1), Skipped("latin1", "not_offered")),
        ),
        (QIKBERRY_POLICY, "10€", False, "gsm7", ()),
    ],
)
def test_skipped_alphabets_name_the_character(
    policy: TextPolicy,
    text: str,
    flash: bool,
    encoding: str,
    skipped: tuple[Skipped, ...],
) -> None:
    encoded = encode_text(text, policy, flash=flash)
    assert (encoded.encoding, encoded.skipped) == (encoding, skipped)


def test_skipped_with_transliteration_blames_what_has_no_substitute() -> None:
    # ã and ç have GSM spellings; the emoji does not, so it is what kept the text off GSM7.
    policy = TextPolicy.from_profile(WAVY, transliterate=True)
    encoded = encode_text("ação 😀", policy)
    assert encoded.skipped[0] == Skipped("gsm7", "character", "😀", 5)


def test_forced_encoding_skips_nothing() -> None:
    assert encode_text("ação", WAVY_POLICY, force_encoding="ucs2").skipped == ()


# --- data_coding values --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data_coding", "alphabet", "klass"),
    [
        # SMPP 3.4 §5.2.19
        (0x00, "gsm7", None),
        (0x01, "ia5", None),
        (0x02, "binary", None),
        (0x03, "latin1", None),
        (0x04, "binary", None),
        (0x05, None, None),  # JIS
        (0x06, None, None),  # Cyrillic
        (0x08, "ucs2", None),
        (0x0E, None, None),  # KS C 5601
        # 3GPP TS 23.038 §4, general data coding group: bits 3-2 alphabet, bit 4 class valid.
        (0x10, "gsm7", 0),
        (0x11, "gsm7", 1),
        (0x14, "binary", 0),
        (0x18, "ucs2", 0),
        (0x1C, None, 0),  # reserved alphabet
        (0x30, None, 0),  # compressed
        (0x08 | 0x00, "ucs2", None),
        # Data coding / message class group: bit 2 GSM7 or 8-bit, bits 1-0 class.
        (0xF0, "gsm7", 0),
        (0xF1, "gsm7", 1),
        (0xF4, "binary", 0),
        (0xC0, None, None),  # message waiting indication
    ],
)
def test_data_coding_alphabet_and_class(
    data_coding: int, alphabet: str | None, klass: int | None
) -> None:
    assert data_coding_alphabet(data_coding) == alphabet
    assert message_class(data_coding) == klass


# --- inbound decoding ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "data_coding", "kwargs", "text"),
    [
        (b"Hi\x1b\x65", 0x00, {}, "Hi€"),
        (b"\x00", 0x01, {}, "@"),
        (bytes.fromhex("e7"), 0x01, {"ia5_as": "latin1"}, "ç"),
        (bytes.fromhex("61e7"), 0x03, {}, "aç"),
        (bytes.fromhex("d83dde00"), 0x08, {}, "😀"),
        (b"Hi", 0x10, {}, "Hi"),  # flash GSM7
        (bytes.fromhex("0048"), 0x18, {}, "H"),  # flash UCS-2
        (b"\x00", 0xF0, {}, "@"),  # message class group, GSM7
        (bytes.fromhex("e9"), 0xF4, {}, "é"),  # message class group, 8-bit
        (bytes.fromhex("e9"), 0x02, {}, "é"),  # anything else: Latin-1
        (bytes.fromhex("e8329bfd4697d9ec37"), 0x00, {"packed": True}, "hellohello"),
    ],
)
def test_decode_text(data: bytes, data_coding: int, kwargs: dict[str, object], text: str) -> None:
    assert decode_text(data, data_coding, **kwargs) == text  # type: ignore[arg-type]


def test_decode_text_never_raises_on_bad_ucs2() -> None:
    # A lone high surrogate and an odd trailing octet.
    assert decode_text(b"\x00a\xd8\x3d\x00", 0x08) == "a\ufffd"


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=255))
def test_decode_text_is_total(data: bytes, data_coding: int) -> None:
    assert isinstance(decode_text(data, data_coding), str)
