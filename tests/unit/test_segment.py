"""Splitting into parts and reassembly of MO parts (smppgw.smpp.segment)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.profiles import GENERIC, QIKBERRY, WAVY
from smppgw.smpp.errors import SegmentationError
from smppgw.smpp.segment import (
    ConcatInfo,
    InformationElement,
    Part,
    ReferenceAllocator,
    concat_info,
    encode_message,
    parse_udh,
    part_capacity,
    reference_bits,
    split_udh,
)
from smppgw.smpp.text import TextPolicy, decode_gsm7, decode_text, unpack_septets

WAVY_POLICY = TextPolicy.from_profile(WAVY)
QIKBERRY_POLICY = TextPolicy.from_profile(QIKBERRY)
# Qikberry with data_coding.latin1 = 3 set, the opt-in its document asks for.
QIKBERRY_LATIN1_POLICY = dataclasses.replace(QIKBERRY_POLICY, latin1=3)
GENERIC_POLICY = TextPolicy.from_profile(GENERIC)
EMOJI = "😀"  # U+1F600: surrogate pair D83D DE00


# --- capacities ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoding", "udh", "capacity"),
    [
        ("gsm7", 0, 160),
        ("gsm7", 6, 153),  # 3GPP TS 23.040 §9.2.3.24: 48 UDH bits + 1 fill bit = 7 septets
        ("gsm7", 7, 152),  # 56 UDH bits = 8 septets, no fill
        ("latin1", 0, 140),
        ("latin1", 6, 134),
        ("latin1", 7, 133),
        ("ucs2", 0, 70),
        ("ucs2", 6, 67),
        ("ucs2", 7, 66),
    ],
)
def test_part_capacity(encoding: str, udh: int, capacity: int) -> None:
    assert part_capacity(encoding, udh) == capacity  # type: ignore[arg-type]


def test_reference_bits() -> None:
    assert reference_bits("udh8") == 8
    assert reference_bits("udh16") == 16
    assert reference_bits("sar") == 16  # sar_msg_ref_num is two octets, SMPP 3.4 §5.3.2.22


# --- single part limits --------------------------------------------------------------------------
def test_160_septets_is_one_part() -> None:
    message = encode_message("a" * 160, GENERIC_POLICY)
    assert len(message.parts) == 1
    assert message.esm_class == 0
    assert message.parts[0] == Part(b"", b"a" * 160, units=160)
    assert message.parts[0].short_message == b"a" * 160
    assert (message.units, message.characters, message.billed_parts) == (160, 160, 1)
    assert message.concat is None


def test_161_septets_is_two_udh_parts() -> None:
    message = encode_message("a" * 161, GENERIC_POLICY, reference=0x2A)
    assert message.esm_class == 0x40  # UDHI, SMPP 3.4 §5.2.12
    assert [p.udh for p in message.parts] == [
        bytes.fromhex("0500032a0201"),
        bytes.fromhex("0500032a0202"),
    ]
    assert [p.body for p in message.parts] == [b"a" * 153, b"a" * 8]
    assert message.parts[0].short_message == bytes.fromhex("0500032a0201") + b"a" * 153
    assert [p.units for p in message.parts] == [153, 8]
    assert (message.concat, message.reference, message.billed_parts) == ("udh8", 0x2A, 2)


def test_escape_counts_two_septets_for_the_single_part_limit() -> None:
    assert len(encode_message("a" * 158 + "€", QIKBERRY_POLICY).parts) == 1
    assert len(encode_message("a" * 159 + "€", QIKBERRY_POLICY, reference=1).parts) == 2


def test_70_and_71_ucs2_units() -> None:
    assert len(encode_message("ж" * 70, GENERIC_POLICY).parts) == 1
    message = encode_message("ж" * 71, GENERIC_POLICY, reference=9)
    assert [p.units for p in message.parts] == [67, 4]
    assert message.parts[1].short_message == bytes.fromhex("050003090202") + "жжжж".encode(
        "utf-16-be"
    )
    # An emoji is two units: 69 + 2 = 71 does not fit.
    assert len(encode_message("ж" * 68 + EMOJI, GENERIC_POLICY).parts) == 1
    assert len(encode_message("ж" * 69 + EMOJI, GENERIC_POLICY, reference=1).parts) == 2


def test_140_and_141_latin1_octets() -> None:
    one = encode_message("ã" * 140, QIKBERRY_LATIN1_POLICY)
    assert (one.encoding, one.data_coding, len(one.parts)) == ("latin1", 3, 1)
    assert one.outside_billing_charset is None  # Qikberry bills by the octet budget
    two = encode_message("ã" * 141, QIKBERRY_LATIN1_POLICY, reference=3)
    assert [len(p.body) for p in two.parts] == [134, 7]
    assert all(len(p.short_message) <= 140 for p in two.parts)


# --- pairs never cut -----------------------------------------------------------------------------
def test_escape_at_the_153rd_septet_moves_to_the_next_part() -> None:
    # 152 plain septets, then € (1B 65) would occupy septets 153-154: the pair moves whole.
    message = encode_message("a" * 152 + "€" + "b" * 10, QIKBERRY_POLICY, reference=1)
    first, second = message.parts
    assert first.body == b"a" * 152
    assert first.units == 152
    assert second.body == bytes.fromhex("1b65") + b"b" * 10
    # One septet earlier, the pair fits exactly in the first part.
    message = encode_message("a" * 151 + "€" + "b" * 10, QIKBERRY_POLICY, reference=1)
    assert message.parts[0].body == b"a" * 151 + bytes.fromhex("1b65")
    assert message.parts[1].body == b"b" * 10


def test_surrogate_pair_at_the_67th_unit_moves_to_the_next_part() -> None:
    message = encode_message("ж" * 66 + EMOJI + "ж" * 10, GENERIC_POLICY, reference=1)
    first, second = message.parts
    assert first.units == 66
    assert second.body[:4] == bytes.fromhex("d83dde00")
    message = encode_message("ж" * 65 + EMOJI + "ж" * 10, GENERIC_POLICY, reference=1)
    assert message.parts[0].units == 67
    assert message.parts[0].body[-4:] == bytes.fromhex("d83dde00")


@given(st.text(alphabet="a€[" + EMOJI + "жé", min_size=1, max_size=700))
def test_parts_rejoin_to_the_text_and_respect_limits(text: str) -> None:
    message = encode_message(text, QIKBERRY_POLICY, reference=5)
    for part in message.parts:
        assert len(part.short_message) <= 140 or message.encoding == "gsm7"
        if message.encoding == "gsm7":
            assert part.units <= (160 if len(message.parts) == 1 else 153)
            assert not part.body.endswith(b"\x1b")
        if message.encoding == "ucs2":
            assert len(part.short_message) <= 140
            last_unit = part.body[-2:]
            assert not 0xD8 <= last_unit[0] <= 0xDB
    joined = b"".join(p.body for p in message.parts)
    if message.encoding == "gsm7":
        assert decode_gsm7(joined) == text
    elif message.encoding == "ucs2":
        assert joined.decode("utf-16-be") == text


# --- 255 parts -----------------------------------------------------------------------------------
def test_255_parts_is_the_limit() -> None:
    message = encode_message("a" * (153 * 255), GENERIC_POLICY, reference=0)
    assert len(message.parts) == 255
    assert message.parts[-1].udh == bytes.fromhex("050003 00 ff ff")
    with pytest.raises(SegmentationError) as info:
        encode_message("a" * (153 * 255 + 1), GENERIC_POLICY, reference=0)
    assert "256 parts" in str(info.value)
    assert "limit is 255" in str(info.value)


# --- 16-bit UDH, SAR, payload --------------------------------------------------------------------
def test_udh16() -> None:
    message = encode_message("a" * 161, GENERIC_POLICY, concat="udh16", reference=0x1234)
    assert message.esm_class == 0x40
    # 3GPP TS 23.040 §9.2.3.24.8
    assert [p.udh for p in message.parts] == [
        bytes.fromhex("06080412340201"),
        bytes.fromhex("06080412340202"),
    ]
    assert [p.units for p in message.parts] == [152, 9]
    ucs2 = encode_message("ж" * 71, GENERIC_POLICY, concat="udh16", reference=1)
    assert [p.units for p in ucs2.parts] == [66, 5]
    latin = encode_message("ã" * 141, QIKBERRY_LATIN1_POLICY, concat="udh16", reference=1)
    assert [p.units for p in latin.parts] == [133, 8]


def test_profile_concat_is_the_default() -> None:
    policy = dataclasses.replace(GENERIC_POLICY, concat="udh16")
    message = encode_message("a" * 161, policy, reference=0xABCD)
    assert message.parts[0].udh == bytes.fromhex("060804abcd0201")


def test_sar() -> None:
    # SMPP 3.4 §5.3.2.22-24: no UDH, no UDHI; per-part capacity as UDH 8-bit (153).
    message = encode_message("a" * 161, GENERIC_POLICY, concat="sar", reference=0x0102)
    assert message.esm_class == 0
    assert [(p.udh, p.body, p.sar) for p in message.parts] == [
        (b"", b"a" * 153, (0x0102, 2, 1)),
        (b"", b"a" * 8, (0x0102, 2, 2)),
    ]
    assert message.parts[0].short_message == b"a" * 153


def test_payload() -> None:
    message = encode_message("a" * 400, GENERIC_POLICY, concat="payload")
    (part,) = message.parts
    assert part.payload
    assert part.short_message == b""
    assert part.message_payload == b"a" * 400
    assert message.esm_class == 0
    assert message.billed_parts == 3  # 153 + 153 + 94 once the SMSC splits it
    # A short text stays a plain short_message even in payload mode.
    assert not encode_message("hi", GENERIC_POLICY, concat="payload").parts[0].payload


def test_payload_limit() -> None:
    assert encode_message("a" * 0xFFFF, GENERIC_POLICY, concat="payload").units == 0xFFFF
    with pytest.raises(SegmentationError, match="65535"):
        encode_message("a" * 0x10000, GENERIC_POLICY, concat="payload")


def test_reference_is_required_and_checked() -> None:
    with pytest.raises(ValueError, match="reference"):
        encode_message("a" * 161, GENERIC_POLICY)
    with pytest.raises(ValueError, match="out of range"):
        encode_message("a" * 161, GENERIC_POLICY, reference=256)
    assert encode_message("a" * 161, GENERIC_POLICY, concat="udh16", reference=65535)
    # A single part needs none.
    assert encode_message("a" * 160, GENERIC_POLICY).reference is None


def test_flash_long_message() -> None:
    message = encode_message("€" * 80, WAVY_POLICY, flash=True, reference=7)
    assert (message.data_coding, message.esm_class, len(message.parts)) == (0x18, 0x40, 2)
    assert message.flash


def test_wavy_euro_goes_ucs2_and_qikberry_stays_gsm7() -> None:
    assert encode_message("10€", WAVY_POLICY).data_coding == 8
    assert encode_message("10€", QIKBERRY_POLICY).parts[0].body == bytes.fromhex("31301b65")


# --- Wavy's per-character billing (seed 003, "Acentos e caracteres especiais") -------------------
# Wavy bills a text made only of its table's characters per 160, any other text per 70 (67
# with UDH) whatever the data_coding: such a text is cut where a UCS-2 text would be.
def test_wavy_125_accented_latin1_characters_are_two_parts() -> None:
    message = encode_message("ã" * 125, WAVY_POLICY, reference=0x2A)
    assert (message.encoding, message.data_coding, message.esm_class) == ("latin1", 1, 0x40)
    assert [p.udh for p in message.parts] == [
        bytes.fromhex("0500032a0201"),
        bytes.fromhex("0500032a0202"),
    ]
    assert [p.body for p in message.parts] == [b"\xe3" * 67, b"\xe3" * 58]
    assert message.billed_parts == 2
    assert message.outside_billing_charset == ("ã", 0)


def test_wavy_70_and_71_latin1_characters() -> None:
    one = encode_message("x" * 69 + "ç", WAVY_POLICY)
    assert (len(one.parts), one.parts[0].udh, one.outside_billing_charset) == (1, b"", ("ç", 69))
    two = encode_message("x" * 70 + "ç", WAVY_POLICY, reference=1)
    assert [p.units for p in two.parts] == [67, 4]


def test_wavy_gsm7_with_an_accent_keeps_data_coding_0_and_is_cut_at_67() -> None:
    # é is GSM 03.38 (septet 0x05) but not in Wavy's table: GSM7 still, billed per 70.
    message = encode_message("é" + "a" * 159, WAVY_POLICY, reference=3)
    assert (message.encoding, message.data_coding) == ("gsm7", 0)
    assert [p.body for p in message.parts] == [b"\x05" + b"a" * 66, b"a" * 67, b"a" * 26]
    assert message.billed_parts == 3


def test_wavy_plain_text_keeps_160_and_153() -> None:
    plain = encode_message("Seu codigo: 482913\n" * 8, WAVY_POLICY)
    assert (len(plain.parts), plain.outside_billing_charset) == (1, None)  # 160 characters
    long = encode_message("a" * 161, WAVY_POLICY, reference=1)
    assert [p.units for p in long.parts] == [153, 8]


def test_wavy_table_reconstructed_from_the_seed() -> None:
    # Seed 003 lines 1254-1261 print the table as 12 columns of 8 ASCII cells (0x20-0x7F);
    # the extraction lost " ' | ~ and shows { } in the cells of [ ]. All of printable
    # ASCII is in it. [ is not GSM7 without the escape table, so it goes Latin-1 (1), still
    # at 160 per part: a 140-character text is one part.
    brackets = encode_message('[' * 70 + ']"|~`' + "'" * 65, WAVY_POLICY)
    assert (brackets.encoding, brackets.data_coding, len(brackets.parts)) == ("latin1", 1, 1)
    assert brackets.outside_billing_charset is None
    # Line breaks: a decision, the printed grid has no cell for control characters (see
    # profiles.WAVY_BILLING_CHARSET).
    assert encode_message("a\r\nb", WAVY_POLICY).outside_billing_charset is None
    assert encode_message("a\tb", WAVY_POLICY).outside_billing_charset == ("\t", 1)


def test_wavy_surrogate_pair_counts_two_and_is_never_cut() -> None:
    # 36 emoji = 72 UTF-16 units: a cut at 67 would split the 34th pair, so 33 + 3.
    message = encode_message(EMOJI * 36, WAVY_POLICY, reference=1)
    assert [p.units for p in message.parts] == [66, 6]
    assert message.characters == 36


def test_wavy_escape_pairs_count_one_character_each() -> None:
    # With the escape table turned back on for Wavy (gsm_extension = true), € is 2 septets
    # but 1 character: 1 + 69 = 70 characters (139 septets) is one part, one more is not.
    policy = dataclasses.replace(WAVY_POLICY, gsm_extension=True)
    one = encode_message("é" + "€" * 69, policy)
    assert (one.encoding, one.units, len(one.parts)) == ("gsm7", 139, 1)
    two = encode_message("é" + "€" * 70, policy, reference=1)
    assert [p.body for p in two.parts] == [
        b"\x05" + b"\x1b\x65" * 66,
        b"\x1b\x65" * 4,
    ]


@pytest.mark.parametrize(
    ("concat", "units", "billed"),
    [("udh16", [66, 59], 2), ("sar", [67, 58], 2), ("payload", [125], 2)],
)
def test_wavy_billing_with_every_concatenation(concat: str, units: list[int], billed: int) -> None:
    message = encode_message("ã" * 125, WAVY_POLICY, concat=concat, reference=1)  # type: ignore[arg-type]
    assert [p.units for p in message.parts] == units
    assert message.billed_parts == billed


def test_wavy_billing_ignores_a_larger_octet_budget() -> None:
    # Wavy bills per carrier SMS (140 octets), whatever short_message budget we give parts.
    policy = dataclasses.replace(WAVY_POLICY, max_octets_per_part=200)
    assert [p.units for p in encode_message("ã" * 125, policy, reference=1).parts] == [67, 58]


def test_wavy_billing_looks_at_the_text_sent() -> None:
    policy = dataclasses.replace(WAVY_POLICY, transliterate=True)
    assert encode_message("Promoção", policy).outside_billing_charset is None
    assert encode_message("Promoção é", policy).outside_billing_charset == ("é", 9)


def test_qikberry_bills_by_octets() -> None:
    assert len(encode_message("é" * 160, QIKBERRY_POLICY).parts) == 1


@given(st.text(alphabet="a[\n€" + EMOJI + "éã", min_size=1, max_size=500))
def test_wavy_parts_rejoin_and_hold_at_most_70_or_67_characters(text: str) -> None:
    message = encode_message(text, WAVY_POLICY, reference=5)
    joined = b"".join(p.body for p in message.parts)
    assert decode_text(joined, message.data_coding, ia5_as="latin1") == text
    limit = 160
    if message.outside_billing_charset is not None:
        limit = 70 if len(message.parts) == 1 else 67
    for part in message.parts:
        assert len(part.short_message) <= 140
        characters = len(decode_text(part.body, message.data_coding, ia5_as="latin1")
                         .encode("utf-16-be")) // 2  # fmt: skip
        assert characters <= limit


# --- packed septets ------------------------------------------------------------------------------
def test_packed_single_part() -> None:
    policy = dataclasses.replace(GENERIC_POLICY, packed=True)
    message = encode_message("hellohello", policy)
    assert message.parts[0].body == bytes.fromhex("e8329bfd4697d9ec37")
    assert message.units == 10
    full = encode_message("a" * 160, policy)
    assert len(full.parts[0].short_message) == 140


def test_packed_parts_fill_bits_after_udh() -> None:
    # 3GPP TS 23.040 §9.2.3.24: 6-octet UDH + 1 fill bit + 153 septets = exactly 140 octets.
    policy = dataclasses.replace(GENERIC_POLICY, packed=True)
    message = encode_message("A" * 153 + "B" * 8, policy, reference=1)
    first = message.parts[0]
    assert len(first.short_message) == 140
    assert first.body[0] == 0x41 << 1 & 0xFF  # fill bit 0, then the first septet
    assert unpack_septets(first.body, 153, fill_bits=1) == b"A" * 153
    # The 16-bit UDH is 56 bits: no fill, 152 septets = 133 octets.
    message16 = encode_message("A" * 200, policy, concat="udh16", reference=1)
    assert len(message16.parts[0].short_message) == 140
    assert unpack_septets(message16.parts[0].body, 152) == b"A" * 152


@given(st.text(alphabet="abc€{}Δ", min_size=1, max_size=500))
def test_packed_parts_round_trip(text: str) -> None:
    policy = dataclasses.replace(QIKBERRY_POLICY, packed=True)
    message = encode_message(text, policy, reference=1)
    septets = b""
    for part in message.parts:
        fill = 1 if part.udh else 0
        septets += unpack_septets(part.body, part.units, fill_bits=fill)
        assert len(part.short_message) <= 140
    assert decode_gsm7(septets) == text


# --- reference allocator -------------------------------------------------------------------------
def test_reference_allocator_counts_and_wraps_8_bit() -> None:
    refs = ReferenceAllocator()
    values = [refs.next("5511999990000") for _ in range(257)]
    assert values[:3] == [0, 1, 2]
    assert values[255] == 255
    assert values[256] == 0  # wrapped
    assert len(set(values[:256])) == 256


def test_reference_allocator_wraps_16_bit() -> None:
    refs = ReferenceAllocator(start=lambda destination: 65534)
    assert [refs.next("x", bits=16) for _ in range(3)] == [65534, 65535, 0]


def test_reference_allocator_is_per_destination() -> None:
    refs = ReferenceAllocator()
    assert refs.next("a") == 0
    assert refs.next("a") == 1
    assert refs.next("b") == 0
    assert refs.next("a") == 2


def test_reference_allocator_start_and_lru_bound() -> None:
    starts = {"a": 10, "b": 20, "c": 30}
    refs = ReferenceAllocator(max_destinations=2, start=starts.__getitem__)
    assert refs.next("a") == 10
    assert refs.next("b") == 20
    assert refs.next("a") == 11  # "a" is now the most recently used
    assert refs.next("c") == 30  # evicts "b"
    assert len(refs) == 2
    assert refs.next("c") == 31
    assert refs.next("b") == 20  # forgotten, so it starts again (and "a" is evicted now)
    assert refs.next("a") == 10
    assert repr(refs) == "<ReferenceAllocator destinations=2/2>"


def test_reference_allocator_lru_evicts_least_recent() -> None:
    refs = ReferenceAllocator(max_destinations=2)
    refs.next("a")
    refs.next("b")
    refs.next("a")
    refs.next("c")  # "b" is the least recently used
    assert refs.next("a") == 2
    assert refs.next("b") == 0


# --- UDH parsing ---------------------------------------------------------------------------------
def test_parse_udh_with_port_addressing_before_concat() -> None:
    # 3GPP TS 23.040 §9.2.3.24.4 (16-bit ports, IEI 05) then §9.2.3.24.1 (concat, IEI 00).
    udh = bytes.fromhex("0b 05040b8423f0 00037f0201")
    elements = parse_udh(udh)
    assert elements == (
        InformationElement(0x05, bytes.fromhex("0b8423f0")),
        InformationElement(0x00, bytes.fromhex("7f0201")),
    )
    assert concat_info(elements) == ConcatInfo(0x7F, 2, 1)


def test_parse_udh_with_concat_first_and_16_bit() -> None:
    elements = parse_udh(bytes.fromhex("0c 0804abcd0302 05040b8423f0"))
    assert concat_info(elements) == ConcatInfo(0xABCD, 3, 2)


def test_parse_udh_rejects_truncation() -> None:
    with pytest.raises(ValueError):
        parse_udh(bytes.fromhex("0600030102"))  # UDHL says 6, 4 follow
    with pytest.raises(ValueError):
        parse_udh(bytes.fromhex("03000401"))  # IE longer than the header
    with pytest.raises(ValueError):
        parse_udh(b"")


def test_split_udh_falls_back_to_the_whole_message() -> None:
    assert split_udh(bytes.fromhex("050003010201") + b"hi") == (
        (InformationElement(0, bytes.fromhex("010201")),),
        b"hi",
    )
    assert split_udh(b"\xffhi") == ((), b"\xffhi")


def test_concat_info_ignores_malformed() -> None:
    assert concat_info((InformationElement(0x00, b"\x01\x02"),)) is None
    assert concat_info((InformationElement(0x00, b"\x01\x02\x00"),)) is None  # seq 0
    assert concat_info((InformationElement(0x00, b"\x01\x02\x03"),)) is None  # seq > total
    assert concat_info((InformationElement(0x05, b"\x00\x00\x00\x00"),)) is None


def test_a_reference_source_is_asked_only_for_multi_part_messages() -> None:
    """Most traffic is one part: it must not consume the destination's reference counter."""
    asked: list[int] = []

    def next_reference() -> int:
        asked.append(0x2A)
        return 0x2A

    assert len(encode_message("a" * 160, GENERIC_POLICY, reference=next_reference).parts) == 1
    assert asked == []
    message = encode_message("a" * 161, GENERIC_POLICY, reference=next_reference)
    assert [p.udh[3] for p in message.parts] == [0x2A, 0x2A] and asked == [0x2A]
