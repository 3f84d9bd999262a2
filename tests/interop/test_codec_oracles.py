"""smpplib and aiosmpplib as independent oracles for the codec, in both directions.

What smppgw encodes they must decode to the same field values, and what they encode smppgw
must decode to theirs. Their own limits shape the inputs: smpplib refuses vendor TLVs and
aiosmpplib decodes short_message as text, so those cases use what each understands.
"""

from __future__ import annotations

import smpplib.command as smpplib_command
import smpplib.smpp as smpplib_smpp
from aiosmpplib import protocol as aio
from aiosmpplib import state as aio_state
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp import codec
from smppgw.smpp.constants import Tag
from smppgw.smpp.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
)


class SmpplibClient:
    """smpplib draws sequence numbers from a client even when it only parses."""

    def __init__(self, sequence: int = 1) -> None:
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence


def smpplib_parse(octets: bytes) -> object:
    return smpplib_smpp.parse_pdu(octets, client=SmpplibClient())


def aio_parse(octets: bytes) -> object:
    header = aio.SmppMessage.parse_header(octets)
    classes = {
        aio_state.SmppCommand.SUBMIT_SM: aio.SubmitSm,
        aio_state.SmppCommand.SUBMIT_SM_RESP: aio.SubmitSmResp,
        aio_state.SmppCommand.DELIVER_SM: aio.DeliverSm,
        aio_state.SmppCommand.DELIVER_SM_RESP: aio.DeliverSmResp,
        aio_state.SmppCommand.BIND_TRANSCEIVER: aio.BindTransceiver,
        aio_state.SmppCommand.BIND_TRANSCEIVER_RESP: aio.BindTransceiverResp,
        aio_state.SmppCommand.ENQUIRE_LINK: aio.EnquireLink,
        aio_state.SmppCommand.UNBIND: aio.Unbind,
        aio_state.SmppCommand.GENERIC_NACK: aio.GenericNack,
    }
    return classes[header.smpp_command].from_pdu(octets, header, "gsm0338")


ADDRESS = st.text("0123456789", min_size=1, max_size=20)
ASCII_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
SAFE_ASCII = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,", max_size=160
)


# --- smppgw → smpplib ------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    sequence=st.integers(1, 0x7FFFFFFF),
    source=ADDRESS,
    destination=ADDRESS,
    esm_class=st.sampled_from([0, 0x40, 0x03]),
    data_coding=st.sampled_from([0, 3, 8]),
    body=st.binary(max_size=254),
    reference=st.integers(0, 0xFFFF),
)
def test_smpplib_decodes_our_submit_sm(
    sequence: int, source: str, destination: str, esm_class: int, data_coding: int,
    body: bytes, reference: int,
) -> None:
    ours = SubmitSm(
        sequence_number=sequence, source_addr_ton=1, source_addr_npi=1, source_addr=source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination, esm_class=esm_class,
        registered_delivery=1, data_coding=data_coding, short_message=body,
        tlvs=(Tlv.of(Tag.USER_MESSAGE_REFERENCE, reference),),
    )
    theirs = smpplib_parse(codec.encode(ours))
    assert theirs.command == "submit_sm"  # type: ignore[attr-defined]
    assert theirs.sequence == sequence  # type: ignore[attr-defined]
    assert theirs.source_addr == source.encode()  # type: ignore[attr-defined]
    assert theirs.destination_addr == destination.encode()  # type: ignore[attr-defined]
    assert theirs.esm_class == esm_class  # type: ignore[attr-defined]
    assert theirs.data_coding == data_coding  # type: ignore[attr-defined]
    assert theirs.registered_delivery == 1  # type: ignore[attr-defined]
    assert (theirs.short_message or b"") == body  # type: ignore[attr-defined]
    assert theirs.user_message_reference == reference  # type: ignore[attr-defined]


def test_smpplib_decodes_our_receipt_deliver_sm() -> None:
    ours = DeliverSm(
        sequence_number=77, source_addr="5511999999999", destination_addr="Acme", esm_class=4,
        short_message=b"id:abc sub:001 dlvrd:001 submit date:2411231200 done date:2411231201 "
        b"stat:DELIVRD err:000 text:",
        tlvs=(Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "abc"), Tlv.of(Tag.MESSAGE_STATE, 2)),
    )
    theirs = smpplib_parse(codec.encode(ours))
    assert theirs.command == "deliver_sm"  # type: ignore[attr-defined]
    assert theirs.esm_class == 4  # type: ignore[attr-defined]
    assert theirs.short_message == ours.short_message  # type: ignore[attr-defined]
    assert theirs.receipted_message_id == b"abc"  # type: ignore[attr-defined]
    assert theirs.message_state == 2  # type: ignore[attr-defined]


def test_smpplib_decodes_our_session_pdus() -> None:
    bind = smpplib_parse(
        codec.encode(BindTransceiver(sequence_number=1, system_id="acme", password="pw",
                                     system_type="MovileSMSC", addr_ton=1, addr_npi=1))
    )
    assert bind.command == "bind_transceiver"  # type: ignore[attr-defined]
    assert bind.system_id == b"acme" and bind.password == b"pw"  # type: ignore[attr-defined]
    assert bind.system_type == b"MovileSMSC"  # type: ignore[attr-defined]
    assert bind.interface_version == 0x34  # type: ignore[attr-defined]
    resp = smpplib_parse(codec.encode(SubmitSmResp(sequence_number=5, message_id="ff01")))
    assert resp.message_id == b"ff01" and resp.sequence == 5  # type: ignore[attr-defined]
    nack = smpplib_parse(codec.encode(GenericNack(sequence_number=9, command_status=3)))
    assert nack.command == "generic_nack" and nack.status == 3  # type: ignore[attr-defined]
    assert smpplib_parse(codec.encode(EnquireLink(sequence_number=4))).command == "enquire_link"  # type: ignore[attr-defined]


# --- smpplib → smppgw ------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    sequence=st.integers(1, 0x7FFFFFFF),
    source=ADDRESS,
    destination=ADDRESS,
    body=st.binary(min_size=1, max_size=254),
    data_coding=st.sampled_from([1, 3, 8]),
    sar=st.tuples(st.integers(1, 0xFFFF), st.integers(1, 255), st.integers(1, 255)),
)
def test_we_decode_smpplib_submit_sm(
    sequence: int, source: str, destination: str, body: bytes, data_coding: int,
    sar: tuple[int, int, int],
) -> None:
    theirs = smpplib_command.SubmitSM(
        "submit_sm", client=SmpplibClient(sequence), source_addr_ton=1, source_addr_npi=1,
        source_addr=source, dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
        registered_delivery=1, data_coding=data_coding, short_message=body,
        sar_msg_ref_num=sar[0], sar_total_segments=sar[1], sar_segment_seqnum=sar[2],
    )
    ours = codec.decode(theirs.generate())
    assert isinstance(ours, SubmitSm)
    assert ours.sequence_number == sequence
    assert (ours.source_addr, ours.destination_addr) == (source, destination)
    assert ours.data_coding == data_coding and ours.registered_delivery == 1
    assert ours.short_message == body
    assert ours.tlv(Tag.SAR_MSG_REF_NUM).value == sar[0]  # type: ignore[union-attr]
    assert ours.tlv(Tag.SAR_TOTAL_SEGMENTS).value == sar[1]  # type: ignore[union-attr]
    assert ours.tlv(Tag.SAR_SEGMENT_SEQNUM).value == sar[2]  # type: ignore[union-attr]


def test_we_decode_smpplib_responses_and_binds() -> None:
    client = SmpplibClient(12)
    resp = smpplib_command.SubmitSMResp("submit_sm_resp", client=client, message_id="abc-1")
    assert codec.decode(resp.generate()) == SubmitSmResp(sequence_number=12, message_id="abc-1")
    bind = smpplib_command.BindTransceiver(
        "bind_transceiver", client=client, system_id="acme", password="pw", system_type="smpp",
        interface_version=0x34, addr_ton=0, addr_npi=0, address_range="",
    )
    assert codec.decode(bind.generate()) == BindTransceiver(
        sequence_number=12, system_id="acme", password="pw", system_type="smpp"
    )
    deliver_resp = smpplib_command.DeliverSMResp("deliver_sm_resp", client=client)
    assert codec.decode(deliver_resp.generate()) == DeliverSmResp(sequence_number=12)


# --- smppgw ↔ aiosmpplib ---------------------------------------------------------------------


@settings(max_examples=150)
@given(
    sequence=st.integers(1, 0x7FFFFFFF), source=ADDRESS, destination=ADDRESS,
    text=SAFE_ASCII.filter(bool),  # aiosmpplib refuses an empty message
)
def test_aiosmpplib_decodes_our_deliver_sm(
    sequence: int, source: str, destination: str, text: str
) -> None:
    ours = DeliverSm(
        sequence_number=sequence, source_addr_ton=1, source_addr_npi=1, source_addr=source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination, data_coding=0,
        short_message=text.encode("ascii"),
        tlvs=(Tlv.of(Tag.USER_MESSAGE_REFERENCE, 7),),
    )
    theirs = aio_parse(codec.encode(ours))
    assert isinstance(theirs, aio.DeliverSm)
    assert theirs.sequence_num == sequence
    assert theirs.source.number == source and theirs.destination.number == destination
    assert theirs.short_message == text
    assert [(p.tag, p.value) for p in theirs.optional_params or []] == [(0x0204, 7)]


def test_aiosmpplib_decodes_ucs2_and_session_pdus() -> None:
    text = "Olá 😀"
    ours = DeliverSm(sequence_number=3, source_addr="1", destination_addr="2", data_coding=8,
                     short_message=text.encode("utf-16-be"))
    theirs = aio_parse(codec.encode(ours))
    assert theirs.short_message == text  # type: ignore[attr-defined]
    bind = aio_parse(codec.encode(BindTransceiver(sequence_number=5, system_id="acme",
                                                  password="pw", system_type="smpp")))
    assert (bind.system_id, bind.password, bind.system_type) == ("acme", "pw", "smpp")  # type: ignore[attr-defined]
    resp = aio_parse(codec.encode(SubmitSmResp(sequence_number=6, message_id="m-6")))
    assert resp.message_id == "m-6" and resp.sequence_num == 6  # type: ignore[attr-defined]
    assert aio_parse(codec.encode(Unbind(sequence_number=8))).sequence_num == 8  # type: ignore[attr-defined]


@settings(max_examples=150)
@given(sequence=st.integers(1, 0x7FFFFFFF), destination=ADDRESS, text=SAFE_ASCII.filter(bool))
def test_we_decode_aiosmpplib_submit_sm(sequence: int, destination: str, text: str) -> None:
    theirs = aio.SubmitSm(
        sequence_num=sequence, short_message=text,
        source=aio_state.PhoneNumber("Acme", ton=aio_state.TON.ALPHANUMERIC),
        destination=aio_state.PhoneNumber(destination, ton=aio_state.TON.INTERNATIONAL,
                                          npi=aio_state.NPI.ISDN),
        registered_delivery=1,
    )
    ours = codec.decode(theirs.pdu())
    assert isinstance(ours, SubmitSm)
    assert ours.sequence_number == sequence
    assert (ours.source_addr_ton, ours.source_addr) == (5, "Acme")
    assert (ours.dest_addr_ton, ours.dest_addr_npi, ours.destination_addr) == (1, 1, destination)
    assert ours.registered_delivery == 1
    assert ours.short_message == text.encode("ascii")  # GSM 03.38 equals ASCII for these chars


def test_we_decode_aiosmpplib_session_pdus() -> None:
    bind = aio.BindTransceiver(sequence_num=2, system_id="acme", password="pw",
                               system_type="MovileSMSC", addr_ton=aio_state.TON.INTERNATIONAL)
    assert codec.decode(bind.pdu()) == BindTransceiver(
        sequence_number=2, system_id="acme", password="pw", system_type="MovileSMSC", addr_ton=1
    )
    resp = aio.BindTransceiverResp(sequence_num=2, system_id="SMSC", sc_interface_version=0x34)
    decoded = codec.decode(resp.pdu())
    assert isinstance(decoded, BindTransceiverResp) and decoded.system_id == "SMSC"
    assert decoded.tlv(Tag.SC_INTERFACE_VERSION).value == 0x34  # type: ignore[union-attr]
    assert codec.decode(aio.EnquireLink(sequence_num=9).pdu()) == EnquireLink(sequence_number=9)
    nack = aio.GenericNack(sequence_num=4,
                           command_status=aio_state.SmppCommandStatus.ESME_RINVCMDID)
    assert codec.decode(nack.pdu()) == GenericNack(sequence_number=4, command_status=3)
