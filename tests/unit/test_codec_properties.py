"""Property tests of the codec: round trips for every PDU and TLV, and hostile input.

h11's invariant: random bytes give PDUs or our own decode errors, nothing else, and the
frame decoder never grows without bound.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp import codec
from smppgw.smpp.errors import ProtocolError
from smppgw.smpp.pdu import (
    PDU_CLASSES,
    TLV_SPECS,
    DistributionList,
    Field,
    Pdu,
    SmeAddress,
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
