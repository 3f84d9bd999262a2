"""Property tests of the codec: round trips for every PDU and TLV, and hostile input.

h11's invariant: random bytes give PDUs or our own decode errors, nothing else, and the
frame decoder never grows without bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp import codec
from smppgw.smpp.errors import FrameError, ProtocolError
from smppgw.smpp.pdu import (
    PDU_CLASSES,
    TLV_SPECS,
    DistributionList,
    Field,
    Pdu,
    SmeAddress,
    SubmitSm,
    Tlv,
    TlvKind,
    UnsuccessSme,
)

LATIN1_NO_NUL = st.characters(min_codepoint=1, max_codepoint=255)
U8 = st.integers(0, 255)
U32 = st.integers(0, 0xFFFFFFFF)


def cstring(max_length: int) -> st.SearchStrategy[str]:
    return st.text(LATIN1_NO_NUL, max_size=max_length - 1)


def tlv_strategy() -> st.SearchStrategy[Tlv]:
    def known(tag: int) -> st.SearchStrategy[Tlv]:
        spec = TLV_SPECS[tag]
        if spec.kind is TlvKind.CSTR:
            raw = cstring(spec.max_length).map(lambda s: s.encode("latin-1") + b"\0")
        else:
            raw = st.binary(min_size=spec.min_length, max_size=min(spec.max_length, 300))
        return raw.map(lambda r: Tlv(tag, r))

    vendor = st.builds(
        Tlv,
        st.integers(0x1400, 0x3FFF).filter(lambda t: t not in TLV_SPECS),
        st.binary(max_size=40),
    )
    return st.one_of(st.sampled_from(sorted(TLV_SPECS)).flatmap(known), vendor)


DEST = st.one_of(
    st.builds(SmeAddress, dest_addr_ton=U8, dest_addr_npi=U8, destination_addr=cstring(21)),
    st.builds(DistributionList, dl_name=cstring(21)),
)
UNSUCCESS = st.builds(
    UnsuccessSme, dest_addr_ton=U8, dest_addr_npi=U8, destination_addr=cstring(21),
    error_status_code=U32,
)


def field_strategy(field: Field) -> st.SearchStrategy[object]:
    if field.kind == "u8":
        return U8
    if field.kind == "cstr":
        return cstring(field.max_length)
    if field.kind == "sm":
        return st.binary(max_size=254)
    if field.kind == "dests":
        return st.lists(DEST, min_size=1, max_size=5).map(tuple)
    return st.lists(UNSUCCESS, max_size=5).map(tuple)


def pdu_strategy(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    fields = {f.name: field_strategy(f) for f in cls.FIELDS}
    return st.builds(
        cls,
        sequence_number=U32,
        command_status=U32,
        tlvs=st.lists(tlv_strategy(), max_size=4).map(tuple),
        **fields,
    )


ANY_PDU = st.sampled_from(PDU_CLASSES).flatmap(pdu_strategy)


@settings(max_examples=400)
@given(ANY_PDU)
def test_decode_of_encode_is_identity(pdu: Pdu) -> None:
    assert codec.decode(codec.encode(pdu)) == pdu


@settings(max_examples=400)
@given(ANY_PDU)
def test_encode_of_decode_gives_the_same_octets(pdu: Pdu) -> None:
    octets = codec.encode(pdu)
    assert codec.encode(codec.decode(octets)) == octets


@settings(max_examples=200)
@given(st.lists(ANY_PDU, min_size=1, max_size=5), st.data())
def test_frame_decoder_is_independent_of_chunking(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(codec.encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = codec.FrameDecoder()
    out: list[Pdu] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[previous:cut])
        previous = cut
        out.extend(decoder)
    assert out == pdus
    assert decoder.buffered == 0


def framed(body: bytes, command_id: int) -> bytes:
    return (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big") + bytes(8) + body


COMMAND_IDS = st.one_of(st.sampled_from([int(c.command_id) for c in PDU_CLASSES]), U32)


@settings(max_examples=500)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),  # arbitrary noise, including bad command_length
            st.builds(framed, st.binary(max_size=300), COMMAND_IDS),  # well framed, bad bodies
        ),
        max_size=6,
    ),
    st.integers(1, 50),
)
def test_random_bytes_give_pdus_or_codec_errors_only(chunks: list[bytes], chunk_size: int) -> None:
    stream = b"".join(chunks)
    decoder = codec.FrameDecoder(max_command_length=1024)
    fed = 0
    for start in range(0, len(stream), chunk_size):
        decoder.feed(stream[start : start + chunk_size])
        fed += 1
        for _ in range(len(stream) + 1):  # bounded: one PDU or error per octet at most
            try:
                if decoder.next_pdu() is None:
                    break
            except ProtocolError as exc:
                if getattr(exc, "fatal", False):
                    return
        assert decoder.buffered <= 1024 + chunk_size
    assert fed <= len(stream) // chunk_size + 1


@given(st.binary(max_size=400), COMMAND_IDS)
def test_lenient_decoding_never_raises_foreign_errors(body: bytes, command_id: int) -> None:
    try:
        pdu = codec.decode(framed(body, command_id), lenient=True)
    except ProtocolError:
        return
    assert dataclasses.is_dataclass(pdu)


# --- the fast layer against the generic one ---------------------------------------------------
#
# codec.py decodes and encodes the PDUs of every message (submit_sm, deliver_sm, the message_id
# responses, the header-only PDUs) with hand-written code that hands anything unusual to the
# generic, FIELDS-driven layer. Both must give the same value, octets or error, always.

FAST_CLASSES = [
    cls for cls in PDU_CLASSES if codec._DECODERS[cls.command_id][0] is not codec._decode_other
]


def outcome(call: Callable[[], object]) -> tuple[object, ...]:
    """What a call gives: its value, or its error's type, text, status and sequence number."""
    try:
        return ("value", call())
    except ProtocolError as exc:
        return (type(exc), str(exc), getattr(exc, "status", None),
                getattr(exc, "sequence_number", None))


def decode_generically(frame: bytes, lenient: bool) -> Pdu:
    generic = {
        command_id: (codec._decode_other, cls, twin)
        for command_id, (_, cls, twin) in codec._DECODERS.items()
    }
    with mock.patch.dict(codec._DECODERS, generic):
        return codec.decode(frame, lenient=lenient)


def test_the_fast_layer_covers_the_pdus_of_every_message() -> None:
    names = {cls.__name__ for cls in FAST_CLASSES}
    assert {"SubmitSm", "DeliverSm", "SubmitSmResp", "DeliverSmResp", "EnquireLink"} <= names


def mutated(octets: bytes, data: st.DataObject) -> bytes:
    """A frame near a valid one: octets changed, cut or added, command_length kept right."""
    body = bytearray(octets[16:])
    for _ in range(data.draw(st.integers(0, 3))):
        if body and data.draw(st.booleans()):
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.sampled_from([0, 1, 255]))
        elif body:
            del body[data.draw(st.integers(0, len(body) - 1)) :]
        else:
            body += data.draw(st.binary(max_size=30))
    return framed(bytes(body), int.from_bytes(octets[4:8], "big"))


@settings(max_examples=500)
@given(st.sampled_from(FAST_CLASSES).flatmap(pdu_strategy), st.data(), st.booleans())
def test_fast_decoders_agree_with_the_generic_one(
    pdu: Pdu, data: st.DataObject, lenient: bool
) -> None:
    frame = mutated(codec.encode(pdu), data)
    fast = outcome(lambda: codec.decode(frame, lenient=lenient))
    assert fast == outcome(lambda: decode_generically(frame, lenient))
    if fast[0] == "value":
        assert type(fast[1]) is type(pdu)


@settings(max_examples=300)
@given(st.binary(max_size=120), st.sampled_from(FAST_CLASSES), st.booleans())
def test_fast_decoders_agree_on_random_bodies(body: bytes, cls: type[Pdu], lenient: bool) -> None:
    frame = framed(body, cls.command_id)
    assert outcome(lambda: codec.decode(frame, lenient=lenient)) == outcome(
        lambda: decode_generically(frame, lenient)
    )


ODD_TEXT = st.one_of(
    st.text(st.characters(max_codepoint=0x2FF), max_size=30),  # NUL, Latin-1, beyond
    st.integers(-1, 3),
)
ODD_U8 = st.one_of(U8, st.integers(-2, 300), st.just("1"), st.none())


def odd_value(field: Field) -> st.SearchStrategy[object]:
    """A value at or past the field's limits, or of the wrong kind."""
    size = field.max_length
    if field.kind == "u8":
        return ODD_U8
    if field.kind == "cstr":  # the largest allowed, the smallest refused, any text, no text
        return st.one_of(ODD_TEXT, st.text("aZ9", min_size=size - 1, max_size=size))
    return st.binary(min_size=size, max_size=size + 1)


@settings(max_examples=500)
@given(st.sampled_from(FAST_CLASSES), st.data())
def test_fast_encoders_agree_with_the_generic_one(cls: type[Pdu], data: st.DataObject) -> None:
    # One field at a time is odd: an odd value anywhere sends the whole PDU to the generic
    # encoder, so the fast path is only tested where everything else is well formed.
    odd = data.draw(st.sampled_from([None, *cls.FIELDS]))
    values = {
        field.name: data.draw(odd_value(field) if field is odd else field_strategy(field))
        for field in cls.FIELDS
    }
    pdu = cls(
        sequence_number=data.draw(st.one_of(U32, st.just(-1))),
        command_status=data.draw(st.one_of(st.just(0), U32)),
        tlvs=data.draw(st.lists(tlv_strategy(), max_size=2).map(tuple)),
        **values,  # type: ignore[arg-type]
    )
    assert outcome(lambda: codec.encode(pdu)) == outcome(lambda: codec._encode_generic(pdu))


def boundary_values(field: Field) -> list[object]:
    size = field.max_length
    if field.kind == "u8":
        return [0, 255, 256, -1, True, "1", None, 1.0]
    if field.kind == "cstr":
        return ["a" * (size - 1), "a" * size, "é" * (size - 1), "é" * size, "€", "a\0b", "\0",
                "", 5, None, b"abc"]
    return [b"x" * size, b"x" * (size + 1), bytearray(b"xy"), b"", "text"]


def test_fast_encoders_agree_with_the_generic_one_at_every_limit() -> None:
    for cls in FAST_CLASSES:
        for field in cls.FIELDS:
            for value in boundary_values(field):
                for status in (0, 8):
                    pdu = cls(command_status=status, **{field.name: value})  # type: ignore[arg-type]
                    fast = outcome(lambda: codec.encode(pdu))  # noqa: B023
                    assert fast == outcome(lambda: codec._encode_generic(pdu)), (pdu, fast)  # noqa: B023
    for sequence_number in (0, 0xFFFFFFFF, -1, 1 << 32, "1"):
        for cls in FAST_CLASSES:
            pdu = cls(sequence_number=sequence_number)  # type: ignore[arg-type]
            assert outcome(lambda: codec.encode(pdu)) == outcome(  # noqa: B023
                lambda: codec._encode_generic(pdu)  # noqa: B023
            )


def body_with(cls: type[Pdu], field: Field, octets: bytes) -> bytes:
    """The mandatory fields of ``cls`` with ``octets`` in place of ``field``'s."""
    usual = {"u8": b"\x01", "cstr": b"ab\0", "sm": b"\x02hi"}
    return b"".join(octets if f is field else usual[f.kind] for f in cls.FIELDS)


def odd_octets(field: Field) -> list[bytes]:
    size = field.max_length
    if field.kind == "u8":
        return [b"", b"\xff"]
    if field.kind == "cstr":  # largest allowed, one too long, no NUL, Latin-1, empty
        return [b"a" * (size - 1) + b"\0", b"a" * size + b"\0", b"a" * (size + 3),
                b"\xe9" * (size - 1) + b"\0", b"\0"]
    return [b"\xfe" + b"x" * 254, b"\xff" + b"x" * 255, b"\xff" + b"x" * 10, b"\x00", b""]


TLV_TAILS = [b"", bytes.fromhex("0427 0001 02"), bytes.fromhex("0427 0002 0002"),
             bytes.fromhex("001e 0003 6162 00"), bytes.fromhex("0427 00"), b"\0"]


def test_fast_decoders_agree_with_the_generic_one_at_every_limit() -> None:
    for cls in FAST_CLASSES:
        bodies = [b""] + [body_with(cls, f, o) for f in cls.FIELDS for o in odd_octets(f)]
        for body in bodies:
            for tail in TLV_TAILS:
                frame = framed(body + tail, cls.command_id)
                for lenient in (False, True):
                    fast = outcome(lambda: codec.decode(frame, lenient=lenient))  # noqa: B023
                    generic = outcome(lambda: decode_generically(frame, lenient))  # noqa: B023
                    assert fast == generic, (cls.__name__, frame.hex(), lenient)


@settings(max_examples=200)
@given(ANY_PDU, U32)
def test_encode_under_another_sequence_number_is_encode_of_the_renumbered_pdu(
    pdu: Pdu, sequence_number: int
) -> None:
    renumbered = dataclasses.replace(pdu, sequence_number=sequence_number)
    assert codec.encode(pdu, sequence_number) == codec.encode(renumbered)


def frames_to_pdus(decoder: codec.FrameDecoder) -> list[Pdu]:
    return [
        codec.decode_frame(frame, command_id, status, sequence_number, decoder.lenient)
        for command_id, status, sequence_number, frame in decoder.frames()
    ]


@settings(max_examples=200)
@given(st.lists(ANY_PDU, min_size=1, max_size=5), st.data())
def test_frames_are_independent_of_chunking(pdus: list[Pdu], data: st.DataObject) -> None:
    """The session's read path (frames, then decode_frame) gives what next_pdu gives."""
    stream = b"".join(codec.encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = codec.FrameDecoder()
    out: list[Pdu] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[previous:cut])
        previous = cut
        out.extend(frames_to_pdus(decoder))
    assert out == pdus
    assert decoder.buffered == 0 and decoder.frames() == []


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(framed, st.binary(max_size=300), COMMAND_IDS),
        ),
        max_size=6,
    ),
    st.integers(1, 50),
)
def test_frames_and_next_pdu_agree_on_any_bytes(chunks: list[bytes], chunk_size: int) -> None:
    """Same frames, same errors in the same order, same sticky end, bounded buffer."""
    stream = b"".join(chunks)
    by_pdu = codec.FrameDecoder(max_command_length=1024)
    by_frame = codec.FrameDecoder(max_command_length=1024)

    def outcome_of_frame(frame: codec.Frame) -> tuple[object, ...]:
        command_id, status, sequence_number, octets = frame
        return outcome(lambda: codec.decode_frame(octets, command_id, status, sequence_number,
                                                  False))

    for start in range(0, len(stream), chunk_size):
        chunk = stream[start : start + chunk_size]
        by_pdu.feed(chunk)
        by_frame.feed(chunk)
        expected: list[tuple[object, ...]] = []
        while by_pdu.buffered >= 16:  # as the session asks: once a whole header is in
            result = outcome(by_pdu.next_pdu)
            if result == ("value", None):
                break
            expected.append(result)
            if result[0] is FrameError:
                break
        got: list[tuple[object, ...]] = []
        while True:
            try:
                frames = by_frame.frames()
            except FrameError as exc:
                got.append((FrameError, str(exc), exc.status, exc.sequence_number))
                break
            if not frames:
                break
            got.extend(outcome_of_frame(frame) for frame in frames)
        assert got == expected
        if expected and expected[-1][0] is FrameError:
            with pytest.raises(FrameError):
                by_frame.frames()
            return
        assert by_frame.buffered == by_pdu.buffered <= 1024 + chunk_size


def test_a_large_pdu_in_small_chunks_comes_out_once_whole() -> None:
    octets = codec.encode(SubmitSm(tlvs=(Tlv(0x0424, b"x" * 60_000),)))
    chunks = [octets[start : start + 1000] for start in range(0, len(octets), 1000)]
    decoder = codec.FrameDecoder()
    for chunk in chunks[:-1]:
        decoder.feed(chunk)
        assert decoder.frames() == []
    decoder.feed(chunks[-1])
    assert decoder.frames() == [(0x00000004, 0, 0, octets)]
    assert decoder.buffered == 0


def test_fast_encoder_refuses_texts_given_as_other_sequences_like_the_generic_one() -> None:
    for value in (b"", b"x", [], ("a",)):
        texts = dict.fromkeys(
            ("service_type", "source_addr", "destination_addr", "schedule_delivery_time",
             "validity_period"), value)
        pdu = SubmitSm(**texts)  # type: ignore[arg-type]
        assert outcome(lambda: codec.encode(pdu)) == outcome(  # noqa: B023
            lambda: codec._encode_generic(pdu)  # noqa: B023
        )
