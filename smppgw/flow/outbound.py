"""A part's way out: a stored segment becomes a submit_sm, and the SMSC's answer (or its absence)
becomes ONE decision: what happens to the part, and what happens to the bind that sent it.

Pure: values in, values out; the status table (smpp/status.py) is consulted here and nowhere
else. The dispatcher and the pool act on the decision.
"""

# Theory of operation
# ===================
#
# The fate of a part after one send, by the answer (rows of smpp/status.py):
#
#   answer                                 part                        bind
#   -------------------------------------  --------------------------  ----------------------
#   ESME_ROK with a message id             SUBMITTED                   KEEP
#   ESME_ROK with an empty message_id      SUBMITTED, unmatchable:     KEEP
#                                          no receipt can find it
#   ESME_RTHROTTLED (slow_down, rate)      SEND_AGAIN                  LOWER_RATE
#   ESME_RMSGQFUL (slow_down, window)      SEND_AGAIN                  SHRINK_WINDOW
#   a `reconnect` row (ESME_RINVBNDSTS,    SEND_AGAIN (the bind is     REBIND
#     ESME_RINVSYSID, ESME_RBINDFAIL ...)  bad, not the message)
#   another transient row                  RETRY after a delay, or     KEEP
#                                          FAIL past its retry_limit
#   a permanent row                        FAIL                        KEEP
#   no answer: link lost, timed out        RETRY within 5 s            (the slot saw it)
#   never sent: closing, no bind up        RELEASE (no attempt)        -
#   our encoder refused the stored part    FAIL (ENCODING)             -
#   the same ending REPEAT_LIMITS times    FAIL (BIND_DROPPED,         -
#     in a row: the link lost while it     SEND_ERROR)
#     awaited its answer, or a fault of
#     ours while sending it
#
# SEND_AGAIN keeps the part in the dispatcher and sends it again, on any bind, before any
# later part of its message (parts in order): flow control is not a failure and costs no
# attempt. SEND_AGAIN_LIMIT answers of that kind in a row turn it into a RETRY through the
# store, so one part cannot circle forever. A message's parts go out one at a time: the next
# part is handed to the pool only when the one before it was SUBMITTED; any other fate ends
# the run, and the parts after it go back to the queue untouched (``PartFate.continues``).
#
# A poison part (RepeatedEndings): an SMSC may drop the bind on a PDU it cannot take instead of
# answering it, and no status ever says so. A part that was in flight when a link was lost is
# a *suspect* until a send of it ends another way; the dispatcher sends suspects one at a
# time, so an innocent part is not in flight with the culprit at the next drop, and only the
# culprit reaches the limit.
#
# An account-level permanent refusal (rows with `alert`: Qikberry 0x040B insufficient credits,
# ESME_RPROHIBITED ...) says the provider refuses everything for now: ``refusing`` tells the
# provider's health (failover.py), which counts such a provider as down.

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal, Protocol

from smppgw.flow.policy import submit_retry_delay
from smppgw.flow.reasons import LinkFailure, rebind_for_status
from smppgw.profiles import ProviderProfile
from smppgw.smpp import status as status_table
from smppgw.smpp.constants import CommandStatus, Ton
from smppgw.smpp.pdu import SubmitSm, Tlv
from smppgw.smpp.status import StatusClass

__all__ = [
    "REPEAT_LIMITS",
    "SEND_AGAIN_LIMIT",
    "BindAction",
    "Ending",
    "PartFate",
    "PartToSend",
    "RepeatedEndings",
    "SubmitDecision",
    "Unanswered",
    "build_submit_sm",
    "decide_answer",
    "decide_encoding_error",
    "decide_repeated",
    "decide_unanswered",
    "part_submit_sm",
    "source_address",
    "validity_period",
]

#: Flow-control refusals (throttled, queue full, bind state) of one part in a row before it
#: goes back to the store with a delay and an attempt counted.
SEND_AGAIN_LIMIT: Final = 10

Unanswered = Literal["connection_lost", "timeout", "closing", "no_bind", "withdrawn"]


class PartToSend(Protocol):
    """What a submit_sm is built from: the store's SegmentToSend has these fields."""

    @property
    def source(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def esm_class(self) -> int: ...
    @property
    def registered_delivery(self) -> int: ...
    @property
    def valid_until_wall(self) -> float | None: ...
    @property
    def data_coding(self) -> int: ...
    @property
    def short_message(self) -> bytes: ...
    @property
    def tlvs(self) -> tuple[tuple[int, bytes], ...]: ...


def validity_period(valid_until_wall: float | None) -> str:
    """Absolute validity_period in UTC, SMPP 3.4 §7.1.1: YYMMDDhhmmsstnnp, here t=0 nn=00 +."""
    if valid_until_wall is None:
        return ""
    return _validity_text(int(valid_until_wall // 1))


@functools.lru_cache(maxsize=4096)
def _validity_text(seconds: int) -> str:
    """The calendar from a day count (Howard Hinnant's ``civil_from_days``), integers only: no
    clock module in this layer. Cached: parts accepted in the same second share the text."""
    days, second_of_day = divmod(seconds, 86_400)
    era, day_of_era = divmod(days + 719_468, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524
                   - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153  # March = 0
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (month <= 2)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{year % 100:02d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}000+"


def build_submit_sm(
    profile: ProviderProfile, *, source: str, destination: str, esm_class: int,
    registered_delivery: int, valid_until_wall: float | None, data_coding: int,
    short_message: bytes, tlvs: tuple[tuple[int, bytes], ...],
) -> SubmitSm:
    """The submit_sm (SMPP 3.4 §4.4.1) of one part as it goes to ``profile``'s SMSC; the
    accept path builds the same PDU to check that it encodes and fits. An alphanumeric sender
    goes as TON 5 / NPI 0 (§5.2.5); numbers with the provider's TON/NPI, without a ``+``."""
    source_ton, source_npi, source_addr = source_address(profile, source)
    return SubmitSm(
        service_type="",
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=source_addr,
        dest_addr_ton=profile.default_ton,
        dest_addr_npi=profile.default_npi,
        destination_addr=destination,
        esm_class=esm_class,
        registered_delivery=registered_delivery,
        validity_period=validity_period(valid_until_wall),
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tuple(Tlv(tag, raw) for tag, raw in tlvs),
    )


def source_address(profile: ProviderProfile, source: str) -> tuple[int, int, str]:
    """(TON, NPI, address) of a sender as every PDU about the message carries it: an
    alphanumeric sender as TON 5 / NPI 0 (§5.2.5), a number with the provider's TON/NPI,
    without its ``+``."""
    if source and not source.lstrip("+").isdigit():
        return int(Ton.ALPHANUMERIC), 0, source
    return profile.default_ton, profile.default_npi, source.lstrip("+")


def part_submit_sm(profile: ProviderProfile, part: PartToSend) -> SubmitSm:
    """The submit_sm of one stored part. Raises PduEncodeError only when encoded."""
    return build_submit_sm(
        profile, source=part.source, destination=part.destination, esm_class=part.esm_class,
        registered_delivery=part.registered_delivery, valid_until_wall=part.valid_until_wall,
        data_coding=part.data_coding, short_message=part.short_message, tlvs=part.tlvs)


class PartFate(Enum):
    """What becomes of a part after one send."""

    SUBMITTED = "submitted"  # the SMSC took it
    SEND_AGAIN = "send_again"  # flow control: the same part again now, before later parts
    RETRY = "retry"  # back to the store, due again after ``retry_in`` seconds
    FAIL = "fail"  # the message fails with this part's status
    RELEASE = "release"  # never sent: back to the queue as it was, no attempt counted

    @property
    def continues(self) -> Literal["next", "same", "stop"]:
        """What the message's run of parts does next: the next part, this part again, or
        stop (the parts after this one go back to the queue untouched)."""
        if self is PartFate.SUBMITTED:
            return "next"
        if self is PartFate.SEND_AGAIN:
            return "same"
        return "stop"


class BindAction(Enum):
    """What the answer means for the bind that got it."""

    KEEP = "keep"
    LOWER_RATE = "lower_rate"  # control.AdaptiveRate.on_throttled
    SHRINK_WINDOW = "shrink_window"  # control.AdaptiveWindow.on_queue_full
    REBIND = "rebind"  # drop this bind and bind again, on ``rebind``'s curve


@dataclass(frozen=True, slots=True)
class SubmitDecision:
    """The one decision about one send; see the theory of operation.

    ``status`` is the table row consulted (None when nothing was answered); ``code`` names a
    failure of smppgw's own instead (ENCODING, BIND_DROPPED, SEND_ERROR). ``retry_in`` is
    seconds from now for RETRY. ``message_id`` is the SMSC's id for SUBMITTED (None when it
    sent an empty one: ``unmatchable``). ``refusing``: an account-level refusal, for the
    provider's health. ``reason``: what the message's history and the log say.
    """

    fate: PartFate
    bind: BindAction = BindAction.KEEP
    status: StatusClass | None = None
    retry_in: float | None = None
    message_id: str | None = None
    unmatchable: bool = False
    refusing: bool = False
    rebind: LinkFailure | None = None
    reason: str = ""
    code: str | None = None

    @property
    def status_name(self) -> str | None:
        """What the part's history records as its status."""
        return self.status.name if self.status is not None else self.code


def decide_answer(
    command_status: int, message_id: str | None, *, attempts: int, sent_again: int = 0
) -> SubmitDecision:
    """The SMSC answered a submit with ``command_status`` (and ``message_id`` on ESME_ROK).

    ``attempts``: earlier sends of this part recorded in the store; ``sent_again``: how many
    SEND_AGAIN decisions this part has had in a row in the dispatcher.
    """
    row = status_table.classify(command_status)
    if row.is_ok:
        if not message_id:
            return SubmitDecision(PartFate.SUBMITTED, status=row, unmatchable=True,
                                  reason="submit_sm_resp ESME_ROK with an empty message_id")
        return SubmitDecision(PartFate.SUBMITTED, status=row, message_id=message_id)
    bind = BindAction.KEEP
    rebind = None
    if row.reconnect:
        bind, rebind = BindAction.REBIND, rebind_for_status(command_status)
    elif row.slow_down:
        queue_full = command_status == CommandStatus.ESME_RMSGQFUL
        bind = BindAction.SHRINK_WINDOW if queue_full else BindAction.LOWER_RATE
    if bind is not BindAction.KEEP:
        if sent_again + 1 < SEND_AGAIN_LIMIT:
            return SubmitDecision(PartFate.SEND_AGAIN, bind, row, rebind=rebind,
                                  reason=row.description)
        return SubmitDecision(PartFate.RETRY, bind, row,
                              retry_in=submit_retry_delay(attempts, "refused"), rebind=rebind,
                              reason=f"{row.description}; {SEND_AGAIN_LIMIT} times in a row")
    if row.is_permanent:
        return SubmitDecision(PartFate.FAIL, status=row, refusing=row.alert,
                              reason=row.description)
    limit = row.retry_limit
    if limit is not None and attempts + 1 >= limit:
        return SubmitDecision(PartFate.FAIL, status=row,
                              reason=f"{row.description}; retries exhausted ({limit})")
    return SubmitDecision(PartFate.RETRY, status=row,
                          retry_in=submit_retry_delay(attempts, "refused"),
                          reason=row.description)


def decide_unanswered(cause: Unanswered, *, attempts: int) -> SubmitDecision:
    """The part got no answer: the link was lost or the response timed out (it may have
    reached the SMSC: at-least-once, sent again soon), or it was never sent at all."""
    if cause in ("closing", "no_bind", "withdrawn"):
        return SubmitDecision(PartFate.RELEASE, reason=cause)
    return SubmitDecision(PartFate.RETRY, retry_in=submit_retry_delay(attempts, "unanswered"),
                          reason=cause)


def decide_encoding_error(detail: str) -> SubmitDecision:
    """A stored part our encoder refuses: sending it again cannot help."""
    return SubmitDecision(PartFate.FAIL, reason=f"the submit_sm does not encode: {detail}",
                          code="ENCODING")


def decide_repeated(ending: Ending, detail: str = "") -> SubmitDecision:
    """The part's sends ended ``ending`` REPEAT_LIMITS times in a row: its message fails."""
    limit = REPEAT_LIMITS[ending]
    if ending == "link_lost":
        return SubmitDecision(PartFate.FAIL, code="BIND_DROPPED", reason=(
            f"the SMSC dropped the bind right after this part, {limit} times in a row; "
            "it is not sent again"))
    last = f"; last: {detail}" if detail else ""
    return SubmitDecision(PartFate.FAIL, code="SEND_ERROR",
                          reason=f"sending this part failed {limit} times in a row{last}")


# How a send ended, for the repeat rule: "link_lost" = the link went while the part awaited
# its answer; "send_error" = a fault of ours while sending it. Any other ending (an answer, a
# timeout, a throttle) ends a streak: a slow or busy SMSC never fails a message by this rule.
Ending = Literal["link_lost", "send_error"]
#: Sends in a row that end the same way before the part's message fails.
REPEAT_LIMITS: Final[Mapping[Ending, int]] = MappingProxyType({"link_lost": 3, "send_error": 3})


class RepeatedEndings:
    """Parts whose sends keep ending the same way (see the theory of operation): counts per
    part (a segment id), no clock. At most ``capacity`` parts are remembered (the oldest are
    forgotten first)."""

    __slots__ = ("_capacity", "_limits", "_streaks")

    def __init__(
        self, limits: Mapping[Ending, int] = REPEAT_LIMITS, capacity: int = 100_000
    ) -> None:
        self._limits = limits
        self._capacity = capacity
        self._streaks: dict[int, tuple[Ending, int]] = {}

    def note(self, part: int, ending: Ending | None) -> bool:
        """One send of ``part`` ended ``ending`` (None: any other way, which forgets it).
        True when that makes ``limit`` in a row: fail the part's message."""
        streaks = self._streaks
        previous = streaks.pop(part, None)
        if ending is None:
            return False
        count = previous[1] + 1 if previous is not None and previous[0] == ending else 1
        if count >= self._limits[ending]:
            return True
        streaks[part] = (ending, count)
        if len(streaks) > self._capacity:
            del streaks[next(iter(streaks))]
        return False

    def suspect(self, part: int) -> bool:
        """The last send of ``part`` was in flight when its link was lost."""
        streak = self._streaks.get(part)
        return streak is not None and streak[0] == "link_lost"

    def __len__(self) -> int:
        return len(self._streaks)
