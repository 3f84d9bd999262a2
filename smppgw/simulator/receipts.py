"""What the simulator sends on its own: delivery receipts in each provider's style and MO
messages, plain or concatenated (8-bit UDH), built as DeliverSm values.

Pure functions; the tables are copied from PROVIDERS.md on purpose rather than imported from
the gateway's receipt parser, so the simulator stays an independent witness of that parser.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from smppgw.smpp.constants import DataCoding, EsmClass, MessageState, Tag, VendorTag
from smppgw.smpp.pdu import DataSm, DeliverSm, SubmitSm, Tlv
from smppgw.smpp.text import encode_gsm7

from .scenario import ReceiptPlan, ReceiptStyle

__all__ = [
    "Outcome",
    "build_receipt",
    "choose_outcome",
    "mo_parts",
    "outcome_of_key",
    "receipt_stages",
]

# Wavy's vendor integer TLVs (0x1403, 0x1405): the document gives no width; we send 4 octets
# big-endian, which the gateway must read (it also accepts 1, 2 and ASCII digits).
_WAVY_INT_WIDTH = 4

# Wavy, seed 003 "Status de envio": sent status code → sent status text (0x1403 → 0x1404).
_WAVY_SENT: Mapping[int, str] = MappingProxyType(
    {
        2: "SENT_SUCCESS",
        101: "EXPIRED",
        102: "CARRIER_COMMUNICATION_ERROR",
        103: "REJECTED_BY_CARRIER",
        201: "NO_CREDIT",
        202: "INVALID_DESTINATION_NUMBER",
        203: "BLACKLISTED",
        204: "DESTINATION_BLOCKED_BY_OPTOUT",
        205: "DESTINATION_MESSAGE_LIMIT_REACHED",
        207: "INVALID_MESSAGE_TEXT",
        301: "INTERNAL_ERROR",
    }
)

# stat word → message_state (SMPP 3.4 §5.2.28 and Appendix B), plus Qikberry's route words.
_STATE_OF_STAT: Mapping[str, MessageState] = MappingProxyType(
    {
        "DELIVRD": MessageState.DELIVERED,
        "EXPIRED": MessageState.EXPIRED,
        "DELETED": MessageState.DELETED,
        "UNDELIV": MessageState.UNDELIVERABLE,
        "ACCEPTD": MessageState.ACCEPTED,
        "UNKNOWN": MessageState.UNKNOWN,
        "REJECTD": MessageState.REJECTED,
        "ENROUTE": MessageState.ENROUTE,
    }
)

# The err each style writes for a stat word when the plan does not say (``STAT`` alone).
_DEFAULT_ERR: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "standard": MappingProxyType(
            {
                "DELIVRD": "000",
                "ACCEPTD": "000",
                "ENROUTE": "000",
                "EXPIRED": "001",
                "DELETED": "002",
                "UNDELIV": "003",
                "REJECTD": "004",
                "UNKNOWN": "005",
            }
        ),
        # Wavy: the rows of the two tables in PROVIDERS.md.
        "wavy": MappingProxyType(
            {
                "DELIVRD": "000",
                "ACCEPTD": "000",
                "UNDELIV": "104",
                "EXPIRED": "101",
                "REJECTD": "103",
                "UNKNOWN": "301",
            }
        ),
        # Qikberry's err table (PROVIDERS.md), one code per word.
        "qikberry": MappingProxyType(
            {
                "DELIVRD": "000",
                "UNDELIV": "034",
                "EXPIRED": "021",
                "REJECTD": "458",
                "REJECTED": "458",
                "INVALID-SUB": "001",
                "ABSENT-SUB": "003",
                "HANDSET-ERR": "004",
                "BARRED": "005",
                "NET-ERR": "008",
                "MEMEXEC": "009",
                "FAILED": "011",
                "MOB-OFF": "013",
                "HANDSET-BUSY": "016",
                "SERIES-BLK": "018",
                "NO-CREDITS": "401",
                "INV-NUMBER": "404",
                "DNDNUMB": "408",
                "BLACKLST": "450",
                "DLT-REJECTED": "777",
                "ENROUTE": "000",
                "ACCEPTD": "000",
            }
        ),
    }
)

# Qikberry's words that are not Appendix B stat words, by the state they report.
_QIKBERRY_STATE: Mapping[str, MessageState] = MappingProxyType(
    {
        "REJECTED": MessageState.REJECTED,
        "NO-CREDITS": MessageState.REJECTED,
        "DNDNUMB": MessageState.REJECTED,
        "BLACKLST": MessageState.REJECTED,
        "DLT-REJECTED": MessageState.REJECTED,
        "SERIES-BLK": MessageState.REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One receipt stage: the stat word, its err code and the message_state it reports."""

    stat: str
    err: str
    state: MessageState


def outcome_of_key(key: str, style: ReceiptStyle) -> Outcome:
    """``"UNDELIV"`` or ``"REJECTD:202"`` → Outcome, with the style's default err."""
    stat, _, err = key.upper().partition(":")
    if not err:
        err = _DEFAULT_ERR[style].get(stat, "000" if stat == "DELIVRD" else "001")
    state = _STATE_OF_STAT.get(stat)
    if state is None:
        # Qikberry's route words (MOB-OFF, ABSENT-SUB ...) report failures to reach the handset.
        state = _QIKBERRY_STATE.get(stat, MessageState.UNDELIVERABLE)
    return Outcome(stat, err.zfill(3), state)


def choose_outcome(plan: ReceiptPlan, rng: random.Random) -> Outcome:
    """Draw one final outcome by the plan's weights."""
    keys = list(plan.outcomes)
    if len(keys) == 1:
        return outcome_of_key(keys[0], plan.style)
    (key,) = rng.choices(keys, weights=[plan.outcomes[k] for k in keys])
    return outcome_of_key(key, plan.style)


def receipt_stages(plan: ReceiptPlan, final: Outcome) -> tuple[Outcome, ...]:
    """The receipts one message gets: the final one, preceded by a first stage when the plan is
    two-stage and the message reached the carrier (Wavy: ACCEPTD then DELIVRD/UNDELIV;
    a REJECTD or EXPIRED at the carrier is the only receipt)."""
    if not plan.two_stage or final.state not in (
        MessageState.DELIVERED,
        MessageState.UNDELIVERABLE,
    ):
        return (final,)
    if plan.style == "wavy":
        first = Outcome("ACCEPTD", "000", MessageState.ACCEPTED)
    else:
        first = Outcome("ENROUTE", "000", MessageState.ENROUTE)
    return (first, final)


def _receipt_date(when: datetime.datetime) -> str:
    # Appendix B: YYMMDDhhmm. Wavy's server runs in UTC (PROVIDERS.md), so does the simulator.
    return when.strftime("%y%m%d%H%M")


def _text_excerpt(submit: SubmitSm | DataSm) -> str:
    """Appendix B ``text:``: the first 20 characters of the message, printable ASCII only."""
    if isinstance(submit, SubmitSm):
        body = submit.short_message
        if submit.esm_class & EsmClass.UDHI and body:
            body = body[1 + body[0] :]
    else:
        payload = submit.tlv(Tag.MESSAGE_PAYLOAD)
        body = payload.raw if payload is not None else b""
    if submit.data_coding == DataCoding.UCS2:
        text = body[:40].decode("utf-16-be", errors="replace")
    else:
        text = body[:20].decode("latin-1")
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text[:20])


def _wavy_tlvs(outcome: Outcome) -> tuple[Tlv, ...]:
    """0x1403-0x1406 per the Wavy table in PROVIDERS.md."""
    if outcome.stat in ("DELIVRD", "UNDELIV"):
        delivered = (
            (4, "DELIVERED_SUCCESS")
            if outcome.stat == "DELIVRD"
            else (int(outcome.err), "NOT_DELIVERED")
        )
        sent: tuple[int, str] = (2, "SENT_SUCCESS")
        return (
            Tlv(VendorTag.WAVY_SENT_STATUS_CODE, sent[0].to_bytes(_WAVY_INT_WIDTH, "big")),
            Tlv(VendorTag.WAVY_SENT_STATUS, sent[1].encode("ascii") + b"\0"),
            Tlv(
                VendorTag.WAVY_DELIVERED_STATUS_CODE, delivered[0].to_bytes(_WAVY_INT_WIDTH, "big")
            ),
            Tlv(VendorTag.WAVY_DELIVERED_STATUS, delivered[1].encode("ascii") + b"\0"),
        )
    code = 2 if outcome.stat == "ACCEPTD" else int(outcome.err)
    text = _WAVY_SENT.get(code, "INTERNAL_ERROR")
    return (
        Tlv(VendorTag.WAVY_SENT_STATUS_CODE, code.to_bytes(_WAVY_INT_WIDTH, "big")),
        Tlv(VendorTag.WAVY_SENT_STATUS, text.encode("ascii") + b"\0"),
    )


def build_receipt(
    submit: SubmitSm | DataSm,
    message_id: str,
    outcome: Outcome,
    style: ReceiptStyle,
    *,
    submitted_at_wall: datetime.datetime,
    done_at_wall: datetime.datetime,
) -> DeliverSm:
    """The deliver_sm receipt (sequence_number 0; the connection numbers it when sending).

    Text per SMPP 3.4 Appendix B; TLVs receipted_message_id and, for standard and Wavy,
    message_state (Qikberry's receipts are read from stat/err, so none is sent, which is the
    path the gateway's parser must handle); Wavy adds 0x1403-0x1406. Addresses are the
    submit's, swapped, as SMSCs send them.
    """
    final = outcome.state not in (MessageState.ENROUTE, MessageState.ACCEPTED)
    delivered = "001" if outcome.state is MessageState.DELIVERED else "000"
    text = (
        f"id:{message_id} sub:001 dlvrd:{delivered} "
        f"submit date:{_receipt_date(submitted_at_wall)} done date:{_receipt_date(done_at_wall)} "
        f"stat:{outcome.stat} err:{outcome.err} text:{_text_excerpt(submit)}"
    )
    tlvs: list[Tlv] = [Tlv(Tag.RECEIPTED_MESSAGE_ID, message_id.encode("latin-1") + b"\0")]
    if style != "qikberry":
        tlvs.append(Tlv(Tag.MESSAGE_STATE, bytes((outcome.state,))))
    if style == "wavy":
        tlvs.extend(_wavy_tlvs(outcome))
    esm_class = EsmClass.DELIVERY_RECEIPT
    if not final and outcome.state is MessageState.ENROUTE:
        # SMPP 3.4 §5.2.12: an intermediate notification, not a final receipt.
        esm_class = EsmClass.INTERMEDIATE_DELIVERY_NOTIFICATION
    return DeliverSm(
        source_addr_ton=submit.dest_addr_ton,
        source_addr_npi=submit.dest_addr_npi,
        source_addr=submit.destination_addr[:20],
        dest_addr_ton=submit.source_addr_ton,
        dest_addr_npi=submit.source_addr_npi,
        destination_addr=submit.source_addr[:20],
        esm_class=int(esm_class),
        data_coding=0,
        short_message=text.encode("latin-1"),
        tlvs=tuple(tlvs),
    )


# --- MO -------------------------------------------------------------------------------------

# Octets of body per part behind an 8-bit concatenation UDH (6 octets): 140 - 6 = 134; for
# GSM7 sent unpacked, one septet per octet, the body is 153 septets (3GPP TS 23.040 §9.2.3.24).
_GSM7_PART = 153
_OCTET_PART = 134


def _encode_mo(text: str | bytes, data_coding: int) -> bytes:
    if isinstance(text, bytes):
        return text
    coding = data_coding & 0xEF  # flash (message class 0) variants encode like their base
    if coding in (DataCoding.SMSC_DEFAULT,):
        return encode_gsm7(text)
    if coding in (DataCoding.IA5, DataCoding.LATIN_1):
        return text.encode("latin-1")
    if coding == DataCoding.UCS2:
        return text.encode("utf-16-be")
    raise ValueError(f"cannot encode text as data_coding {data_coding}; pass bytes")


def _split(body: bytes, data_coding: int, capacity: int) -> list[bytes]:
    """Split without cutting a GSM escape pair or a UTF-16 surrogate pair in two."""
    ucs2 = data_coding & 0xEF == DataCoding.UCS2
    gsm7 = data_coding & 0xEF == DataCoding.SMSC_DEFAULT
    if ucs2:
        capacity -= capacity % 2
    parts: list[bytes] = []
    start = 0
    while start < len(body):
        end = min(len(body), start + capacity)
        if end < len(body):
            if gsm7 and body[end - 1] == 0x1B:
                end -= 1
            elif ucs2 and 0xD8 <= body[end - 2] <= 0xDB:
                end -= 2
        parts.append(body[start:end])
        start = end
    return parts


def mo_parts(
    source: str,
    destination: str,
    text: str | bytes,
    data_coding: int = 0,
    *,
    concatenated: bool = False,
    reference: int = 0,
    part_octets: int | None = None,
    source_ton: int = 1,
    source_npi: int = 1,
    dest_ton: int = 1,
    dest_npi: int = 1,
    tlvs: Sequence[Tlv] = (),
) -> list[DeliverSm]:
    """An MO message as deliver_sm PDUs, in part order.

    Text is encoded by ``data_coding`` (0 GSM7 unpacked, 1/3 Latin-1, 8 UTF-16BE; bytes are
    sent as given). ``concatenated``: split behind an 8-bit reference UDH (IEI 0x00) into
    parts of at most ``part_octets`` body octets (153 septets GSM7, 134 octets otherwise);
    without it, a body over 254 octets goes whole in message_payload.
    """
    body = _encode_mo(text, data_coding)

    def part(short_message: bytes, esm_class: int, extra: tuple[Tlv, ...]) -> DeliverSm:
        return DeliverSm(
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            source_addr=source,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            destination_addr=destination,
            esm_class=esm_class,
            data_coding=data_coding,
            short_message=short_message,
            tlvs=extra,
        )

    if not concatenated:
        if len(body) > 254:
            return [part(b"", 0, (Tlv(Tag.MESSAGE_PAYLOAD, body), *tlvs))]
        return [part(body, 0, tuple(tlvs))]
    if part_octets is None:
        gsm7_text = data_coding & 0xEF == 0 and not isinstance(text, bytes)
        part_octets = _GSM7_PART if gsm7_text else _OCTET_PART
    if not 2 <= part_octets <= 248:
        raise ValueError(f"part_octets must be 2..248, got {part_octets}")
    chunks = _split(body, data_coding, part_octets)
    if len(chunks) > 255:
        raise ValueError(f"{len(chunks)} parts exceed the 255 a UDH can number")
    total = len(chunks)
    header = (5, 0, 3, reference & 0xFF, total)
    return [
        part(bytes((*header, seq)) + chunk, int(EsmClass.UDHI), tuple(tlvs))
        for seq, chunk in enumerate(chunks, 1)
    ]
