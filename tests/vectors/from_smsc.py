"""Every PDU an SMSC can put on an ESME's link, and what SMPP 3.4 requires of the ESME.

One case per command: the requests an SMSC sends an ESME (deliver_sm, data_sm,
alert_notification, enquire_link, unbind, outbind, generic_nack), the requests only an ESME
sends (bind_*, submit_sm, submit_multi, query_sm, cancel_sm, replace_sm) and every response
naming a request that was never sent. The session tests and the hostile-SMSC integration
test both run this table, the first against a Session in memory, the second against a
running daemon. ``answer`` is the exact octets the ESME must write back, None for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from smppgw.smpp.constants import CommandStatus
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
    UnbindResp,
)
from smppgw.smpp.pdu import Unbind as UnbindPdu
from tests.vectors.pdus import wire

S = CommandStatus

#: What the ESME does with a case: hand it up for the layer above to store and acknowledge,
#: answer it by itself, or drop it without a word.
Kind = Literal["handed_up", "answered", "dropped"]


@dataclass(frozen=True)
class FromSmsc:
    name: str
    section: str
    pdu: Pdu  # sequence_number 0: each test gives it its own
    kind: Kind
    answer: Callable[[int], bytes] | None  # sequence number → the ESME's octets
    violation: str | None = None  # the PeerViolation detail, when the session reports one
    closes: bool = False  # the SMSC's PDU ends the link (unbind)

    def at(self, sequence_number: int) -> Pdu:
        return replace(self.pdu, sequence_number=sequence_number)


def _resp(command_id: int, status: int = 0, body: str = "") -> Callable[[int], bytes]:
    return lambda sequence_number: wire(command_id, status, sequence_number, body)


_NACK_RINVCMDID = _resp(0x80000000, S.ESME_RINVCMDID)

MO = DeliverSm(source_addr="5511988887777", destination_addr="acme",
               short_message=b"an MO from a hostile SMSC")
RECEIPT = DeliverSm(
    source_addr="5511988887777", destination_addr="acme", esm_class=0x04,
    short_message=b"id:0badc0de sub:001 dlvrd:001 submit date:2411231200 done date:"
                  b"2411231201 stat:DELIVRD err:000 text:",
    tlvs=(Tlv.of(0x001E, "0badc0de"),))

FROM_SMSC: list[FromSmsc] = [
    # --- requests an SMSC sends an ESME ----------------------------------------------------
    FromSmsc("deliver_sm (MO)", "SMPP 3.4 §4.6", MO, "handed_up", _resp(0x80000005, 0, "00")),
    FromSmsc("deliver_sm (receipt)", "SMPP 3.4 §4.6, Appendix B", RECEIPT, "handed_up",
             _resp(0x80000005, 0, "00")),
    FromSmsc("data_sm", "SMPP 3.4 §4.7",
             DataSm(source_addr="5511988887777", destination_addr="acme",
                    tlvs=(Tlv(0x0424, b"a data_sm MO"),)),
             "handed_up", _resp(0x80000103, 0, "00")),
    FromSmsc("alert_notification", "SMPP 3.4 §4.12: no response",
             AlertNotification(source_addr_ton=1, source_addr_npi=1, source_addr="5511",
                               esme_addr_ton=1, esme_addr_npi=1, esme_addr="acme",
                               tlvs=(Tlv(0x0422, b"\x00"),)),
             "handed_up", None),
    FromSmsc("enquire_link", "SMPP 3.4 §4.11", EnquireLink(), "answered",
             _resp(0x80000015)),
    FromSmsc("unbind", "SMPP 3.4 §4.2", UnbindPdu(), "answered", _resp(0x80000006),
             closes=True),
    FromSmsc("generic_nack naming no request", "SMPP 3.4 §4.3: a nack is never answered",
             GenericNack(command_status=S.ESME_RSYSERR), "dropped", None,
             violation="generic_nack names sequence number {seq}, which is outstanding "
                       "nowhere"),
    FromSmsc("outbind", "SMPP 3.4 §4.1.7: only on a connection the SMSC opened",
             Outbind(system_id="smsc", password="pw"), "answered",
             _resp(0x80000000, S.ESME_RINVBNDSTS),
             violation="Outbind refused: smppgw opens its own connections and binds on "
                       "them; outbind belongs on a connection the SMSC opens (SMPP 3.4 "
                       "§4.1.7)"),
    # --- requests only an ESME sends (SMPP 3.4 table 2-1): generic_nack ESME_RINVCMDID ------
    *[
        FromSmsc(name, f"SMPP 3.4 {section}, table 2-1", pdu, "answered", _NACK_RINVCMDID,
                 violation=f"{type(pdu).__name__} is not sent to an ESME")
        for name, section, pdu in [
            ("bind_transmitter", "§4.1.1", BindTransmitter(system_id="x", password="y")),
            ("bind_receiver", "§4.1.3", BindReceiver(system_id="x", password="y")),
            ("bind_transceiver", "§4.1.5", BindTransceiver(system_id="x", password="y")),
            ("submit_sm", "§4.4", SubmitSm(destination_addr="5511", short_message=b"x")),
            ("submit_multi", "§4.5",
             SubmitMulti(dest_address=(SmeAddress(1, 1, "5511"),), short_message=b"x")),
            ("query_sm", "§4.8", QuerySm(message_id="1")),
            ("cancel_sm", "§4.9", CancelSm(message_id="1", destination_addr="5511")),
            ("replace_sm", "§4.10", ReplaceSm(message_id="1", short_message=b"x")),
        ]
    ],
    # --- responses naming nothing we sent: dropped, counted, never answered -----------------
    *[
        FromSmsc(f"{name} naming no request", "SMPP 3.4 §3.3: no answer to a response",
                 pdu, "dropped", None)
        for name, pdu in [
            ("bind_transmitter_resp", BindTransmitterResp(system_id="smsc")),
            ("bind_receiver_resp", BindReceiverResp(system_id="smsc")),
            ("bind_transceiver_resp", BindTransceiverResp(system_id="smsc")),
            ("submit_sm_resp", SubmitSmResp(message_id="1")),
            ("submit_multi_resp", SubmitMultiResp(message_id="1")),
            ("query_sm_resp", QuerySmResp(message_id="1")),
            ("cancel_sm_resp", CancelSmResp()),
            ("replace_sm_resp", ReplaceSmResp()),
            ("deliver_sm_resp", DeliverSmResp()),
            ("data_sm_resp", DataSmResp()),
            ("unbind_resp", UnbindResp()),
            ("enquire_link_resp", EnquireLinkResp()),
        ]
    ],
]
