"""A cancel on the wire: which parts the SMSC took and may still stop, the cancel_sm that asks
it to (SMPP 3.4 §4.9), and what its answer means.

The store decides what a cancel stops before anything is sent (the parts not yet sent); this
is for the parts already sent, used only where the provider has ``cancel_sm`` on. Pure: values
in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

from smppgw.flow.outbound import source_address
from smppgw.profiles import ProviderProfile
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import CancelSm

__all__ = ["ON_SMSC", "SentPartLike", "cancel_sm_pdu", "cancelled_on_smsc", "parts_on_smsc"]

#: Part states in which the SMSC holds a part it has not delivered: accepted by it, no final
#: receipt yet. A part in any other state is either not there or already done.
ON_SMSC: Final = frozenset({"submitted", "accepted"})


class SentPartLike(Protocol):
    """A stored part as the message view gives it (store.SegmentView has these)."""

    @property
    def part_index(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def smsc_message_id(self) -> str | None: ...


def parts_on_smsc(parts: Iterable[SentPartLike]) -> list[tuple[int, str]]:
    """(part index, SMSC message id) of each part a cancel_sm could still stop: held by the
    SMSC (ON_SMSC) under an id it gave (a part without one cannot be named)."""
    return [(p.part_index, p.smsc_message_id) for p in parts
            if p.state in ON_SMSC and p.smsc_message_id]


def cancel_sm_pdu(
    profile: ProviderProfile, *, message_id: str, source: str, destination: str,
) -> CancelSm:
    """The cancel_sm of one part: its id, and the addresses as its submit_sm carried them
    (§4.9.1: "used for verification purposes, and must match")."""
    source_ton, source_npi, source_addr = source_address(profile, source)
    return CancelSm(
        service_type="", message_id=message_id, source_addr_ton=source_ton,
        source_addr_npi=source_npi, source_addr=source_addr,
        dest_addr_ton=profile.default_ton, dest_addr_npi=profile.default_npi,
        destination_addr=destination)


def cancelled_on_smsc(status: int | None) -> bool:
    """The SMSC cancelled the part (ESME_ROK); any refusal (ESME_RCANCELFAIL: delivered
    meanwhile, or unknown to it) or no answer leaves it sent."""
    return status == CommandStatus.ESME_ROK
