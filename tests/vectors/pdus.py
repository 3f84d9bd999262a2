"""Byte-exact PDU vectors, hand-assembled from the field tables of SMPP 3.4 §4.

Each vector spells the wire octets field by field (hex, one field per string) next to the
decoded dataclass, with the spec section it follows. The header's command_length is the only
computed value: 16 plus the body's octet count.
"""

from __future__ import annotations

from dataclasses import dataclass

from smppgw.smpp.pdu import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnsuccessSme,
)


def cstr(text: str) -> str:
    return text.encode("latin-1").hex() + "00"


def wire(command_id: int, status: int, sequence: int, *fields: str) -> bytes:
    body = bytes.fromhex("".join(f.replace(" ", "") for f in fields))
    header = (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big")
    return header + status.to_bytes(4, "big") + sequence.to_bytes(4, "big") + body


@dataclass(frozen=True)
class Vector:
    name: str
    section: str
    octets: bytes
    pdu: Pdu


RECEIPT = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2411231200 done date:2411231201 "
    "stat:DELIVRD err:000 text:Ola"
)

VECTORS: list[Vector] = [
    Vector(
        "bind_transceiver",
        "SMPP 3.4 §4.1.5",
        wire(
            0x00000009, 0, 1,
            cstr("acme"),  # system_id
            cstr("secret"),  # password
            cstr("MovileSMSC"),  # system_type
            "34",  # interface_version
            "01 01",  # addr_ton, addr_npi
            cstr(""),  # address_range
        ),
        BindTransceiver(
            sequence_number=1, system_id="acme", password="secret", system_type="MovileSMSC",
            interface_version=0x34, addr_ton=1, addr_npi=1,
        ),
    ),
    Vector(
        "bind_transmitter",
        "SMPP 3.4 §4.1.1",
        wire(0x00000002, 0, 2, cstr("tx"), cstr("pw"), cstr(""), "34", "00 00", cstr("")),
        BindTransmitter(sequence_number=2, system_id="tx", password="pw"),
    ),
    Vector(
        "bind_receiver",
        "SMPP 3.4 §4.1.3",
        wire(0x00000001, 0, 3, cstr("rx"), cstr("pw"), cstr("smpp"), "34", "05 00",
             cstr("^55")),
        BindReceiver(
            sequence_number=3, system_id="rx", password="pw", system_type="smpp",
            addr_ton=5, address_range="^55",
        ),
    ),
    Vector(
        "bind_transceiver_resp with sc_interface_version",
        "SMPP 3.4 §4.1.6, §5.3.2.25",
        wire(0x80000009, 0, 1, cstr("SMSC"), "0210 0001 34"),
        BindTransceiverResp(
            sequence_number=1, system_id="SMSC", tlvs=(Tlv(0x0210, b"\x34"),)
        ),
    ),
    Vector(
        "bind_transmitter_resp refused with no body",
        "SMPP 3.4 §4.1.2 (body omitted on error, as SMSCs do)",
        wire(0x80000002, 0x0E, 2),
        BindTransmitterResp(sequence_number=2, command_status=0x0E),
    ),
    Vector(
        "bind_receiver_resp",
        "SMPP 3.4 §4.1.4",
        wire(0x80000001, 0, 3, cstr("SMSC")),
        BindReceiverResp(sequence_number=3, system_id="SMSC"),
    ),
    Vector(
        "outbind",
        "SMPP 3.4 §4.1.7",
        wire(0x0000000B, 0, 1, cstr("smsc"), cstr("pw")),
        Outbind(sequence_number=1, system_id="smsc", password="pw"),
    ),
    Vector("unbind", "SMPP 3.4 §4.2.1", wire(0x00000006, 0, 9), Unbind(sequence_number=9)),
    Vector("unbind_resp", "SMPP 3.4 §4.2.2", wire(0x80000006, 0, 9), UnbindResp(sequence_number=9)),
    Vector(
        "enquire_link", "SMPP 3.4 §4.11.1", wire(0x00000015, 0, 0x7FFFFFFF),
        EnquireLink(sequence_number=0x7FFFFFFF),
    ),
    Vector(
        "enquire_link_resp", "SMPP 3.4 §4.11.2", wire(0x80000015, 0, 5),
        EnquireLinkResp(sequence_number=5),
    ),
    Vector(
        "generic_nack", "SMPP 3.4 §4.3.1", wire(0x80000000, 0x03, 77),
        GenericNack(sequence_number=77, command_status=0x03),
    ),
    Vector(
        "submit_sm with UDH and vendor TLVs in order",
        "SMPP 3.4 §4.4.1, §5.2.12 (UDHI), Qikberry DLT TLVs 0x1400/0x1401",
        wire(
            0x00000004, 0, 42,
            cstr(""),  # service_type
            "05 00", cstr("Acme"),  # source_addr_ton (alphanumeric), npi, source_addr
            "01 01", cstr("919876543210"),  # dest_addr_ton, npi, destination_addr
            "40",  # esm_class: UDHI
            "00 00",  # protocol_id, priority_flag
            cstr(""), cstr("000001000000000R"),  # schedule_delivery_time, validity_period
            "01 00 00 00",  # registered_delivery, replace_if_present, data_coding, default id
            "09", "050003cc0201", "414243",  # sm_length, UDH (ref 0xCC, 2 parts, part 1), text
            "1401 0004 31323300",  # Qikberry template id as C-string
            "1400 000d 31313031323334353637383930",  # PE id without NUL, kept as sent
        ),
        SubmitSm(
            sequence_number=42, source_addr_ton=5, source_addr="Acme", dest_addr_ton=1,
            dest_addr_npi=1, destination_addr="919876543210", esm_class=0x40,
            validity_period="000001000000000R", registered_delivery=1,
            short_message=bytes.fromhex("050003cc0201414243"),
            tlvs=(Tlv(0x1401, b"123\0"), Tlv(0x1400, b"1101234567890")),
        ),
    ),
    Vector(
        "submit_sm_resp with a UUID message_id",
        "SMPP 3.4 §4.4.2",
        wire(0x80000004, 0, 42, cstr("7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f")),
        SubmitSmResp(sequence_number=42, message_id="7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f"),
    ),
    Vector(
        "submit_sm_resp throttled, no body",
        "SMPP 3.4 §4.4.2, §5.1.3 ESME_RTHROTTLED",
        wire(0x80000004, 0x58, 43),
        SubmitSmResp(sequence_number=43, command_status=0x58),
    ),
    Vector(
        "deliver_sm receipt with receipted_message_id, message_state, network_error_code",
        "SMPP 3.4 §4.6.1, Appendix B, §5.3.2.12, §5.3.2.35, §5.3.2.31",
        wire(
            0x00000005, 0, 1000,
            cstr(""), "01 01", cstr("5511999999999"), "05 00", cstr("Acme"),
            "04",  # esm_class: SMSC delivery receipt
            "00 00", cstr(""), cstr(""), "00 00 00 00",
            f"{len(RECEIPT):02x}", RECEIPT.encode().hex(),
            "001e 000b 3031323334353637383900",  # receipted_message_id
            "0427 0001 02",  # message_state DELIVERED
            "0423 0003 030001",  # network_error_code GSM, 1
            "1403 0001 04",  # Wavy delivered status code (vendor, kept raw)
        ),
        DeliverSm(
            sequence_number=1000, source_addr_ton=1, source_addr_npi=1,
            source_addr="5511999999999", dest_addr_ton=5, destination_addr="Acme",
            esm_class=0x04, short_message=RECEIPT.encode(),
            tlvs=(
                Tlv(0x001E, b"0123456789\0"), Tlv(0x0427, b"\x02"),
                Tlv(0x0423, b"\x03\x00\x01"), Tlv(0x1403, b"\x04"),
            ),
        ),
    ),
    Vector(
        "deliver_sm_resp", "SMPP 3.4 §4.6.2 (message_id unused, NULL)",
        wire(0x80000005, 0, 1000, cstr("")), DeliverSmResp(sequence_number=1000),
    ),
    Vector(
        "submit_multi to an SME and a distribution list",
        "SMPP 3.4 §4.5.1, §4.5.1.1",
        wire(
            0x00000021, 0, 8,
            cstr(""), "00 00", cstr("123"),
            "02",  # number_of_dests
            "01 01 01", cstr("5511"),  # dest_flag SME, ton, npi, address
            "02", cstr("team"),  # dest_flag distribution list, dl_name
            "00 00 00", cstr(""), cstr(""), "00 00 08 00",
            "02", "00e9",
        ),
        SubmitMulti(
            sequence_number=8, source_addr="123",
            dest_address=(
                SmeAddress(dest_addr_ton=1, dest_addr_npi=1, destination_addr="5511"),
                DistributionList(dl_name="team"),
            ),
            data_coding=8, short_message=b"\x00\xe9",
        ),
    ),
    Vector(
        "submit_multi_resp with one unsuccessful destination",
        "SMPP 3.4 §4.5.2",
        wire(0x80000021, 0, 8, cstr("m1"), "01", "01 01", cstr("5511"), "0000000b"),
        SubmitMultiResp(
            sequence_number=8, message_id="m1",
            unsuccess_sme=(UnsuccessSme(dest_addr_ton=1, dest_addr_npi=1,
                                        destination_addr="5511", error_status_code=0x0B),),
        ),
    ),
    Vector(
        "data_sm with message_payload",
        "SMPP 3.4 §4.7.1, §5.3.2.32",
        wire(
            0x00000103, 0, 11,
            cstr("WAP"), "01 01", cstr("5511"), "01 01", cstr("5512"),
            "00 01 00",  # esm_class, registered_delivery, data_coding
            "0424 0002 6869",
        ),
        DataSm(
            sequence_number=11, service_type="WAP", source_addr_ton=1, source_addr_npi=1,
            source_addr="5511", dest_addr_ton=1, dest_addr_npi=1, destination_addr="5512",
            registered_delivery=1, tlvs=(Tlv(0x0424, b"hi"),),
        ),
    ),
    Vector(
        "data_sm_resp with delivery_failure_reason",
        "SMPP 3.4 §4.7.2, §5.3.2.33",
        wire(0x80000103, 0x45, 11, cstr("m9"), "0425 0001 01"),
        DataSmResp(
            sequence_number=11, command_status=0x45, message_id="m9",
            tlvs=(Tlv(0x0425, b"\x01"),),
        ),
    ),
    Vector(
        "query_sm", "SMPP 3.4 §4.8.1",
        wire(0x00000003, 0, 12, cstr("abc"), "05 00", cstr("Acme")),
        QuerySm(sequence_number=12, message_id="abc", source_addr_ton=5, source_addr="Acme"),
    ),
    Vector(
        "query_sm_resp", "SMPP 3.4 §4.8.2",
        wire(0x80000003, 0, 12, cstr("abc"), cstr("241123120000000+"), "02", "00"),
        QuerySmResp(
            sequence_number=12, message_id="abc", final_date="241123120000000+",
            message_state=2,
        ),
    ),
    Vector(
        "cancel_sm", "SMPP 3.4 §4.9.1",
        wire(0x00000008, 0, 13, cstr(""), cstr("abc"), "05 00", cstr("Acme"), "01 01",
             cstr("5511")),
        CancelSm(
            sequence_number=13, message_id="abc", source_addr_ton=5, source_addr="Acme",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="5511",
        ),
    ),
    Vector(
        "cancel_sm_resp", "SMPP 3.4 §4.9.2", wire(0x80000008, 0, 13),
        CancelSmResp(sequence_number=13),
    ),
    Vector(
        "replace_sm", "SMPP 3.4 §4.10.1",
        wire(0x00000007, 0, 14, cstr("abc"), "05 00", cstr("Acme"), cstr(""), cstr(""),
             "01 00", "02", "6869"),
        ReplaceSm(
            sequence_number=14, message_id="abc", source_addr_ton=5, source_addr="Acme",
            registered_delivery=1, short_message=b"hi",
        ),
    ),
    Vector(
        "replace_sm_resp", "SMPP 3.4 §4.10.2", wire(0x80000007, 0, 14),
        ReplaceSmResp(sequence_number=14),
    ),
    Vector(
        "alert_notification with ms_availability_status",
        "SMPP 3.4 §4.12.1, §5.3.2.30",
        wire(0x00000102, 0, 15, "01 01", cstr("5511"), "01 01", cstr("5512"), "0422 0001 00"),
        AlertNotification(
            sequence_number=15, source_addr_ton=1, source_addr_npi=1, source_addr="5511",
            esme_addr_ton=1, esme_addr_npi=1, esme_addr="5512",
            tlvs=(Tlv(0x0422, b"\x00"),),
        ),
    ),
]
