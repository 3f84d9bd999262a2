"""A PDU from the SMSC → what it is (a receipt, an MO message or one part of one, an
alert_notification) and the status that answers it; and the ONE MO reassembler.

Pure: values and ``now`` in, values out. The receiver (services/receiver.py) stores what this
says, then acknowledges with ``inbound_answer``; the store keeps MO parts durably, this module
decides when a group is whole, when an incomplete one is given up on, and its text.
"""

# Theory of operation
# ===================
#
# deliver_sm / data_sm with a receipt esm_class (SMPP 3.4 §5.2.12) → ReceiptIn, or
# Uncorrelatable when it names no message id anywhere (answered ESME_RX_P_APPN: redelivering
# it cannot help). Any other deliver_sm / data_sm → MoIn: its text when it stands alone, its
# (reference, total, seq) and raw body when it is one part of a concatenated message (8- or
# 16-bit UDH, else the SAR TLVs, SMPP 3.4 §5.3.2.22-24). alert_notification → AlertIn, never
# answered (§4.12: it has no response).
#
# MO parts are stored as they come (the store de-duplicates a redelivered part), and the
# receiver reports what the store holds for the group to MoGroups: a whole group is
# assembled at once; an incomplete one is remembered from its first part and given up after
# ``timeout`` (delivered as what arrived, so nothing is lost silently); a group found
# incomplete in the store at start is remembered from its first part's arrival, so it times
# out as if smppgw had run all along. ``assemble`` decodes
# each part on its own: smppgw's own splitter never cuts a character, other senders rarely do,
# and a missing part then costs only its own text.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from smppgw.smpp.constants import CommandStatus, EsmClass, Tag
from smppgw.smpp.pdu import RESPONSE_CLASS, AlertNotification, DataSm, DeliverSm, Pdu
from smppgw.smpp.receipt import (
    MessageIdFormat,
    Receipt,
    ReceiptError,
    ReceiptStyle,
    is_receipt,
    message_id_variants,
    parse_receipt,
)
from smppgw.smpp.segment import concat_info, split_udh
from smppgw.smpp.text import Ia5Alphabet, decode_text

__all__ = [
    "MO_REASSEMBLY_TIMEOUT",
    "AlertIn",
    "Handled",
    "MoGroups",
    "MoIn",
    "ReceiptIn",
    "StaleReceiptWatch",
    "StoredPart",
    "Uncorrelatable",
    "assemble",
    "classify",
    "inbound_answer",
    "receipt_details",
]

#: Seconds from an MO group's first part before it is delivered as it is.
MO_REASSEMBLY_TIMEOUT: Final = 300.0


class Handled(Enum):
    """What became of one PDU from the SMSC; ``inbound_answer`` turns it into a status."""

    STORED = "stored"  # committed (a receipt, parked or matched; an MO or one of its parts)
    UNCORRELATABLE = "uncorrelatable"  # a receipt with no message id anywhere
    NOT_STORED = "not_stored"  # the store could not commit it (disk full, I/O error)
    FAILED = "failed"  # processing it raised: a fault of ours, not of the PDU


# SMPP 3.4 §5.1.3: ESME_RX_T_APPN asks the SMSC to deliver again later, ESME_RX_P_APPN never.
_STATUS_OF: Final[Mapping[Handled, int]] = {
    Handled.STORED: CommandStatus.ESME_ROK,
    Handled.UNCORRELATABLE: CommandStatus.ESME_RX_P_APPN,
    Handled.NOT_STORED: CommandStatus.ESME_RX_T_APPN,
    Handled.FAILED: CommandStatus.ESME_RX_T_APPN,
}


def inbound_answer(pdu: Pdu, handled: Handled) -> int | None:
    """The command_status to answer ``pdu`` with once it was ``handled``, or None when the PDU
    has no response at all (alert_notification, SMPP 3.4 §4.12): then nothing is sent, not
    even a generic_nack."""
    if type(pdu) not in RESPONSE_CLASS:
        return None
    return _STATUS_OF[handled]


# --- what a PDU is --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptIn:
    """A delivery receipt to correlate: its id under every key it may be stored by."""

    receipt: Receipt
    message_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Uncorrelatable:
    """A receipt naming no message: nothing can ever match it."""

    detail: str


@dataclass(frozen=True, slots=True)
class MoIn:
    """A mobile-originated message, or one part of one (``concat`` = reference, total, seq).

    ``text`` is decoded for a message that stands alone; a part keeps its raw ``body`` until
    its group is whole.
    """

    source: str
    destination: str
    data_coding: int
    body: bytes
    concat: tuple[int, int, int] | None = None
    text: str | None = None


# SMPP 3.4 §5.3.2.30 ms_availability_status.
_AVAILABILITY: Final[Mapping[int, str]] = {0: "available", 1: "denied", 2: "unavailable"}


@dataclass(frozen=True, slots=True)
class AlertIn:
    """alert_notification (SMPP 3.4 §4.12): a mobile is reachable again. Never answered."""

    ms_availability_status: str


def classify(
    pdu: Pdu,
    *,
    receipt_style: ReceiptStyle = "standard",
    id_format: MessageIdFormat = "hex",
    ia5_as: Ia5Alphabet = "gsm7",
) -> ReceiptIn | Uncorrelatable | MoIn | AlertIn:
    """What ``pdu`` (handed up by the session as a delivery) is, read with the provider's
    receipt style, message id base and IA5 alphabet. TypeError for any other PDU: the session
    hands up only deliver_sm, data_sm and alert_notification."""
    if isinstance(pdu, AlertNotification):
        status = pdu.tlv(Tag.MS_AVAILABILITY_STATUS)
        value = int.from_bytes(status.raw, "big") if status is not None else 0
        return AlertIn(_AVAILABILITY.get(value, str(value)))
    if not isinstance(pdu, DeliverSm | DataSm):
        raise TypeError(f"{type(pdu).__name__} handed up as a delivery")
    if is_receipt(pdu.esm_class):
        try:
            receipt = parse_receipt(pdu, receipt_style)
        except ReceiptError as exc:
            return Uncorrelatable(str(exc))
        return ReceiptIn(receipt, message_id_variants(receipt.message_id, id_format))
    payload = pdu.tlv(Tag.MESSAGE_PAYLOAD)
    body = payload.raw if payload is not None else getattr(pdu, "short_message", b"")
    concat: tuple[int, int, int] | None = None
    if pdu.esm_class & EsmClass.UDHI:
        elements, body = split_udh(body)
        info = concat_info(elements)
        if info is not None:
            concat = (info.reference, info.total, info.seq)
    else:
        reference = pdu.tlv(Tag.SAR_MSG_REF_NUM)
        total = pdu.tlv(Tag.SAR_TOTAL_SEGMENTS)
        seq = pdu.tlv(Tag.SAR_SEGMENT_SEQNUM)
        if reference is not None and total is not None and seq is not None:
            concat = (int.from_bytes(reference.raw, "big"), int.from_bytes(total.raw, "big"),
                      int.from_bytes(seq.raw, "big"))
    if concat is not None and concat[1] > 1:
        return MoIn(pdu.source_addr, pdu.destination_addr, pdu.data_coding, body, concat)
    return MoIn(pdu.source_addr, pdu.destination_addr, pdu.data_coding, body,
                text=decode_text(body, pdu.data_coding, ia5_as=ia5_as))


def receipt_details(receipt: Receipt) -> dict[str, object]:
    """What the store keeps of a receipt, and so what the API and webhooks show: everything
    but ``text``, the first characters of the message the SMSC echoes back (often a one-time
    code), which GET /v1/messages deliberately never shows."""
    details = receipt.as_dict()
    details.pop("text", None)
    return details


# --- the MO reassembler ---------------------------------------------------------------------


class StoredPart(Protocol):
    """One stored MO part: the store's StoredMoPart has these fields."""

    @property
    def seq(self) -> int: ...
    @property
    def data_coding(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


def assemble(parts: Sequence[StoredPart], ia5_as: Ia5Alphabet = "gsm7") -> str:
    """The text of an MO group, parts in sequence order, each decoded on its own."""
    return "".join(decode_text(p.payload, p.data_coding, ia5_as=ia5_as)
                   for p in sorted(parts, key=lambda p: p.seq))


GroupKey = tuple[str, str, str, int, int]  # provider, source, destination, reference, total


class MoGroups:
    """Incomplete MO groups waiting for their other parts, oldest first.

    ``seen`` after each stored part that did not complete its group (the store's answer says
    which parts it holds); ``done`` when the group was delivered; ``expired(now)`` lists the
    groups to deliver as they are. Rebuilt at start from the store: groups found whole are
    delivered then, incomplete ones are ``seen`` as of their first part's arrival.
    """

    __slots__ = ("_first_seen", "timeout")

    def __init__(self, timeout: float = MO_REASSEMBLY_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.timeout = timeout
        self._first_seen: dict[GroupKey, float] = {}

    def __len__(self) -> int:
        return len(self._first_seen)

    def __repr__(self) -> str:
        return f"<MoGroups pending={len(self._first_seen)}>"

    def seen(self, key: GroupKey, now: float) -> None:
        self._first_seen.setdefault(key, now)

    def done(self, key: GroupKey) -> None:
        self._first_seen.pop(key, None)

    def expired(self, now: float) -> list[GroupKey]:
        """Groups waiting ``timeout`` or longer; they stay listed until ``done``."""
        return [key for key, first in self._first_seen.items() if now - first >= self.timeout]

    def next_deadline(self) -> float | None:
        """When the oldest group times out; None with nothing pending."""
        if not self._first_seen:
            return None
        return min(self._first_seen.values()) + self.timeout


class StaleReceiptWatch:
    """When to say that a provider's receipts stay unmatched: a receipt parked longer than
    the configured limit is stale (its message will not be found by waiting: another account,
    another id format, a receiver bind of another table...). Said per provider with a count,
    never per receipt: at once when stale ones are first found, then again only when more
    went stale, at most once per ``interval`` seconds; quiet once none is left (matched, or
    purged by retention).

    ``check`` takes the stale count of every provider that has parked receipts (absent means
    none) and ``now``; it returns the providers to warn about now.
    """

    __slots__ = ("_said", "interval")

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.interval = interval
        self._said: dict[str, tuple[int, float]] = {}  # provider → (stale count said, when)

    def check(self, stale: Mapping[str, int], now: float) -> list[str]:
        due: list[str] = []
        for provider in [p for p in self._said if stale.get(p, 0) <= 0]:
            del self._said[provider]
        for provider, count in stale.items():
            if count <= 0:
                continue
            said = self._said.get(provider)
            if said is None:
                due.append(provider)
                self._said[provider] = (count, now)
                continue
            said_count, said_at = said
            if count > said_count and now - said_at >= self.interval:
                due.append(provider)
                self._said[provider] = (count, now)
            elif count < said_count:
                # Some were matched or purged: more going stale later is news again.
                self._said[provider] = (count, said_at)
        return due
