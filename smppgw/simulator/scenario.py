"""What the SMSC simulator does, as frozen data: listener, accounts, answers, receipts, faults.

A test or `smppgw simulate` builds one SimulatorConfig; the server reads it and never asks
anyone else. Faults and the receipt plan may be swapped at run time (they are values too).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "BIND_KINDS",
    "Account",
    "BindKind",
    "Faults",
    "IdFormat",
    "ReceiptPlan",
    "ReceiptRouting",
    "ReceiptStyle",
    "SimulatorConfig",
    "ThrottleScope",
    "parse_outcomes",
]

IdFormat = Literal["uuid", "hex", "decimal"]
ReceiptStyle = Literal["standard", "wavy", "qikberry"]
ReceiptRouting = Literal["round_robin", "same", "other"]
BindKind = Literal["transceiver", "transmitter", "receiver"]
ThrottleScope = Literal["connection", "server"]
BIND_KINDS: tuple[BindKind, ...] = get_args(BindKind)


@dataclass(frozen=True, slots=True)
class Account:
    """One ESME account. ``max_binds`` limits simultaneous binds of this system_id (Qikberry
    counts binds per server); one more is refused with ESME_RBINDFAIL."""

    system_id: str
    password: str = field(repr=False)
    max_binds: int | None = None


def _outcome_mapping(value: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(value))


def _delivered_only() -> Mapping[str, float]:
    return MappingProxyType({"DELIVRD": 1.0})


@dataclass(frozen=True, slots=True)
class ReceiptPlan:
    """Delivery receipts for submits that ask for one (registered_delivery bit 0).

    ``delay``: seconds from the submit_sm_resp to the receipt (the first stage when
    ``two_stage``). ``outcomes``: weights of final outcomes, keyed ``STAT`` or ``STAT:ERR``
    (``{"DELIVRD": 0.9, "UNDELIV": 0.1}``, ``{"REJECTD:202": 1}``, Qikberry ``{"MOB-OFF:013": 1}``);
    weights need not sum to 1. ``style``: text, err codes and vendor TLVs of ``standard``
    (Appendix B), ``wavy`` or ``qikberry`` (PROVIDERS.md). ``two_stage``: Wavy sends ACCEPTD
    (carrier accepted) and then the handset stage ``final_delay`` seconds later; other styles
    send an ENROUTE intermediate notification first. ``routing``: which bound receiver gets the
    receipt, ``round_robin`` over all receivers of the submitter's system_id, ``same`` (the
    submitting bind when it can receive) or ``other`` (any other bind, as Qikberry relays;
    the submitting bind only when it is the sole receiver). ``retry_delay``: a receipt answered
    with an error status is redelivered after this many seconds.
    """

    style: ReceiptStyle = "standard"
    delay: float = 0.0
    outcomes: Mapping[str, float] = field(default_factory=_delivered_only)
    two_stage: bool = False
    final_delay: float = 0.0
    routing: ReceiptRouting = "round_robin"
    retry_delay: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcomes", _outcome_mapping(self.outcomes))
        if self.style not in get_args(ReceiptStyle):
            raise ValueError(f"receipt style must be one of {get_args(ReceiptStyle)}")
        if self.routing not in get_args(ReceiptRouting):
            raise ValueError(f"receipt routing must be one of {get_args(ReceiptRouting)}")
        for name in ("delay", "final_delay", "retry_delay"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number of seconds >= 0")
        if not self.outcomes:
            raise ValueError("outcomes must name at least one outcome")
        for key, weight in self.outcomes.items():
            stat, _, err = key.partition(":")
            if not stat or (err and not err.isdigit()):
                raise ValueError(f"outcome {key!r}: expected STAT or STAT:ERR with digits")
            if not (weight >= 0 and math.isfinite(weight)):
                raise ValueError(f"outcome {key!r}: weight must be >= 0")
        if sum(self.outcomes.values()) <= 0:
            raise ValueError("outcome weights must not all be 0")


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour to inject; every default is "behave".

    ``latency``: seconds before answering submit_sm, data_sm, query_sm, cancel_sm, replace_sm
    (binds, enquire_link and unbind are answered at once). ``throttle_above``: msg/s above
    which submit_sm/data_sm get ESME_RTHROTTLED, counted per connection or per server
    (``throttle_scope``; Qikberry enforces per server), with one second's worth of burst.
    ``queue_full_every``: every Nth submit of the server gets ESME_RMSGQFUL. ``window``: most
    requests awaiting their answer per connection (with ``latency``); more are answered
    ESME_RMSGQFUL at once, as an SMSC whose queue for this ESME is full does.
    ``drop_after``: a connection is cut (TCP abort) when it has sent N PDUs; the Nth is
    recorded but never answered. ``silent``: record everything, answer
    nothing and send nothing, keep the TCP connection open (a hung SMSC); ``silent_after``
    does the same from a connection's Nth PDU on. ``idle_timeout``: close links that sent
    nothing for this many seconds (Qikberry drops links idle for 5 minutes). ``bind_status``:
    refuse every valid bind with this command_status (e.g. ESME_RBINDFAIL, ESME_RTHROTTLED).
    """

    latency: float = 0.0
    throttle_above: float | None = None
    throttle_scope: ThrottleScope = "connection"
    queue_full_every: int | None = None
    window: int | None = None
    drop_after: int | None = None
    silent: bool = False
    silent_after: int | None = None
    idle_timeout: float | None = None
    bind_status: int = 0

    def __post_init__(self) -> None:
        if not (self.latency >= 0 and math.isfinite(self.latency)):
            raise ValueError("latency must be a finite number of seconds >= 0")
        if self.throttle_above is not None and not self.throttle_above > 0:
            raise ValueError("throttle_above must be a positive rate")
        if self.throttle_scope not in get_args(ThrottleScope):
            raise ValueError(f"throttle_scope must be one of {get_args(ThrottleScope)}")
        for name in ("queue_full_every", "window", "drop_after", "silent_after"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")


def _all_bind_kinds() -> frozenset[BindKind]:
    return frozenset(BIND_KINDS)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator does. Listens on loopback by default; ``port`` 0 picks a free
    port (read it back from ``SmscSimulator.port``).

    TLS: with ``tls`` and no ``cert_file``, a CA and a server certificate for localhost,
    127.0.0.1 and ::1 are generated at start into ``cert_dir`` (or a temporary directory
    removed at close); clients verify with ``SmscSimulator.cert_paths.ca``. ``tls_client_ca``
    requires and verifies client certificates. ``accounts``: without any, every bind is
    accepted; with some, an unknown system_id gets ESME_RINVSYSID and a wrong password
    ESME_RINVPASWD. ``id_format``: message ids like Wavy (``uuid``), ``hex`` or ``decimal``.
    ``deliver_window``: deliver_sm (receipts, MO) awaiting deliver_sm_resp per connection.
    ``enquire_link_interval``: the simulator sends its own enquire_link on every bound link
    this often (seconds), whatever the ESME sends, as SMSCs that probe their clients do.
    ``seed`` makes ids, outcomes and concatenation references repeatable. ``record`` keeps
    every PDU in ``received``/``sent``; benchmarks turn it off and read the counters. The
    state of each message (what query_sm answers) is kept either way; without ``record``
    only for the newest ``message_states_kept`` messages, so a long run stays bounded.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_dir: str | None = None
    tls_client_ca: str | None = None
    tls_min_version: str = "1.2"
    accounts: tuple[Account, ...] = ()
    bind_kinds: frozenset[BindKind] = field(default_factory=_all_bind_kinds)
    smsc_system_id: str = "smppgw-sim"
    id_format: IdFormat = "hex"
    receipts: ReceiptPlan = field(default_factory=ReceiptPlan)
    faults: Faults = field(default_factory=Faults)
    deliver_window: int = 10
    enquire_link_interval: float | None = None
    seed: int | None = None
    record: bool = True
    message_states_kept: int = 100_000

    def __post_init__(self) -> None:
        if self.id_format not in get_args(IdFormat):
            raise ValueError(f"id_format must be one of {get_args(IdFormat)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.deliver_window < 1:
            raise ValueError("deliver_window must be at least 1")
        interval = self.enquire_link_interval
        if interval is not None and not (interval > 0 and math.isfinite(interval)):
            raise ValueError("enquire_link_interval must be a positive number of seconds")
        if self.message_states_kept < 1:
            raise ValueError("message_states_kept must be at least 1")
        unknown = set(self.bind_kinds) - set(BIND_KINDS)
        if unknown:
            raise ValueError(f"unknown bind kinds {sorted(unknown)}")
        if len(self.smsc_system_id.encode("latin-1")) > 15:
            raise ValueError("smsc_system_id must fit in 15 octets (SMPP 3.4 §4.1)")

    def replace(self, **changes: object) -> SimulatorConfig:
        """A copy with some fields changed (dataclasses.replace, spelled as a method)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def wavy(cls, **changes: object) -> SimulatorConfig:
        """Wavy as PROVIDERS.md describes it: UUID ids, two-stage receipts with 0x1403-0x1406."""
        base = cls(
            smsc_system_id="MovileSMSC",
            id_format="uuid",
            receipts=ReceiptPlan(style="wavy", two_stage=True),
        )
        return base.replace(**changes) if changes else base

    @classmethod
    def qikberry(cls, **changes: object) -> SimulatorConfig:
        """Qikberry as PROVIDERS.md describes it: hex ids, err-coded receipts relayed to any
        bind of the account."""
        base = cls(
            smsc_system_id="qikberry",
            id_format="hex",
            receipts=ReceiptPlan(style="qikberry", routing="other"),
        )
        return base.replace(**changes) if changes else base


def parse_outcomes(text: str) -> dict[str, float]:
    """``"DELIVRD=0.9,UNDELIV=0.1"`` → ``{"DELIVRD": 0.9, "UNDELIV": 0.1}`` (for the CLI).

    ``STAT:ERR`` keys are allowed (``REJECTD:202=1``). Raises ValueError naming the bad item.
    """
    outcomes: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, weight = item.partition("=")
        key = key.strip().upper()
        if not sep or not key:
            raise ValueError(f"{item!r}: expected STAT=WEIGHT")
        try:
            outcomes[key] = float(weight)
        except ValueError:
            raise ValueError(f"{item!r}: weight {weight.strip()!r} is not a number") from None
    if not outcomes:
        raise ValueError("no outcomes given")
    ReceiptPlan(outcomes=outcomes)  # same validation as the config
    return outcomes
