"""Every Prometheus metric smppgw exports, on a registry the daemon creates and passes in.

Owns metric names, types, label sets and the bounding of label values (spec names, fixed reason
sets): never the default registry, never a phone number, message id, text or secret as a label.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from typing import Final, Literal

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from smppgw.errors import SmppgwError
from smppgw.flow import reasons
from smppgw.smpp.constants import CommandId, CommandStatus, MessageState
from smppgw.smpp.receipt import state_of_stat
from smppgw.smpp.status import STATUS_TABLE, classify

__all__ = [
    "API_ENDPOINT_LIMIT",
    "BIND_STATES",
    "LATENCY_BUCKETS",
    "PURGE_KINDS",
    "RECEIPT_STATS",
    "RECONNECT_REASONS",
    "STORE_WRITE_FAILURES",
    "WEBHOOK_FAILURE_REASONS",
    "WORKERS",
    "BindMetrics",
    "BindState",
    "Metrics",
    "MetricsServer",
    "MetricsStartError",
    "ProviderMetrics",
    "ReconnectReason",
    "WebhookMetrics",
    "certificate_not_after",
    "command_label",
    "receipt_stat_label",
    "start_metrics_server",
    "status_label",
]

log = logging.getLogger(__name__)

# --- bounded label vocabularies ----------------------------------------------------------------

# Why a bind went down: the one vocabulary of flow/reasons.py. Anything else is "other", so an
# exception message can never become a label value.
ReconnectReason = reasons.ReconnectReason
RECONNECT_REASONS: Final[tuple[ReconnectReason, ...]] = reasons.RECONNECT_REASONS

BindState = Literal["connecting", "binding", "bound", "unbinding", "backoff", "closed"]
# The life of one bind slot: the session's states (OPEN counts as connecting) plus the pool's
# waiting between attempts. Every state gets a series at 0 so alerts see "0 bound", not nothing.
BIND_STATES: Final[tuple[BindState, ...]] = (
    "connecting",
    "binding",
    "bound",
    "unbinding",
    "backoff",
    "closed",
)
_BIND_STATE_ALIASES: Final[dict[str, BindState]] = {
    **{s: s for s in BIND_STATES},
    "open": "connecting",  # Session OPEN: TCP/TLS up, bind PDU not sent yet
}

# SMPP 3.4 Appendix B stat words; other words (Qikberry's per-route ones) are mapped through
# message_state, and what no table knows becomes OTHER.
RECEIPT_STATS: Final[tuple[str, ...]] = (
    "DELIVRD",
    "ACCEPTD",
    "ENROUTE",
    "EXPIRED",
    "DELETED",
    "UNDELIV",
    "REJECTD",
    "UNKNOWN",
    "OTHER",
)
_STAT_OF_STATE: Final[dict[MessageState, str]] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

# The daemon's long-running workers, the ``worker`` label of smppgw_worker_failures_total.
WORKERS: Final[tuple[str, ...]] = (
    "inbound",  # deliver_sm / data_sm / alert_notification processing
    "dispatcher",  # claiming, sending and recording one provider's parts
    "housekeeping",  # expiry, queue gauges, systemd STATUS=
    "webhook",  # one webhook pusher
    "bind",  # one bind slot's connect/bind/serve cycle
    "other",
)

# Why the store refused a write (smppgw.store.WriteFailureReason).
STORE_WRITE_FAILURES: Final[tuple[str, ...]] = ("disk_full", "io_error", "unavailable")

WEBHOOK_FAILURE_REASONS: Final[tuple[str, ...]] = (
    "timeout",
    "connect",
    "tls",
    "http_status",
    "other",
)

# The API has a handful of routes; a cap keeps a bug that passes raw paths from exploding.
API_ENDPOINT_LIMIT: Final = 32

# submit→resp: a loopback simulator answers in ~1 ms, a provider in 20-500 ms, a struggling one
# up to its response timeout (30 s by default).
LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
)
# Rows per grouped SQLite commit: 1 when idle, hundreds under a burst.
#: What retention deletes (the ``kind`` label of smppgw_store_purged_total).
PURGE_KINDS: Final = ("messages", "events", "parked_receipts", "mo_messages")
BATCH_SIZE_BUCKETS: Final[tuple[float, ...]] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
# fsync on a healthy disk takes 0.1-10 ms; a saturated one, seconds.
COMMIT_BUCKETS: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
API_BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

_DIRECTIONS: Final = ("in", "out")


def status_label(status: int) -> str:
    """The ``status`` label of a command_status: its spec name (``ESME_RTHROTTLED``).

    Names come from smppgw.smpp.status's table (SMPP 3.4, later versions, provider codes).
    Other codes in the SMSC vendor range 0x400-0x4FF (SMPP 3.4 §5.1.3) keep their hex, at most
    256 values; any other code is ``other``, so a hostile peer cannot grow the series.
    """
    row = STATUS_TABLE.get(status)
    if row is not None:
        return row.name
    try:
        return CommandStatus(status).name
    except ValueError:
        if 0x400 <= status <= 0x4FF:
            return f"0x{status:08X}"
        return "other"


def command_label(command_id: int) -> str:
    """The ``command`` label: the spec's lower-case name (``submit_sm_resp``), else ``unknown``."""
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return "unknown"


def receipt_stat_label(stat: str | MessageState | None) -> str:
    """The ``stat`` label: Appendix B's 7-letter word for any spelling a provider uses.

    ``Delivered``, ``DELIVRD`` and message_state DELIVERED all give ``DELIVRD``; a word no table
    knows (or None) gives ``OTHER``, never the raw text.
    """
    if isinstance(stat, MessageState):
        return _STAT_OF_STATE[stat]
    if stat is None:
        return "OTHER"
    state = state_of_stat(stat)
    return "OTHER" if state is None else _STAT_OF_STATE[state]


def _bind_state(state: str | Enum) -> BindState:
    text = (state.name if isinstance(state, Enum) else state).lower()
    try:
        return _BIND_STATE_ALIASES[text]
    except KeyError:
        raise ValueError(f"unknown bind state {text!r}; expected one of {BIND_STATES}") from None


def _reconnect_reason(reason: str | Enum) -> ReconnectReason:
    text = (reason.value if isinstance(reason, Enum) else reason).lower()
    for known in RECONNECT_REASONS:
        if known == text:
            return known
    return "other"


def certificate_not_after(der: bytes) -> float:
    """notAfter of a DER certificate as unix seconds, for the TLS expiry gauge.

    Call with ``ssl_object.getpeercert(binary_form=True)``, which works even when verification
    is off (the dict form is then empty). cryptography is imported here, not at module import,
    so processes that never read a certificate do not pay for it.
    """
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


# --- per-provider and per-bind handles ---------------------------------------------------------


class BindMetrics:
    """Pre-labelled children for one bind slot (``wavy#2``): the per-PDU path does dict lookups
    and ``inc()`` only. Created by :meth:`Metrics.bind`; owned by the pool's ``BindSlot``.
    """

    __slots__ = ("_host", "_metrics", "_removed", "_state", "_states", "effective_rate",
                 "effective_window", "in_flight", "name", "provider", "window")

    def __init__(self, metrics: Metrics, provider: ProviderMetrics, name: str, host: str) -> None:
        self._metrics = metrics
        self.provider = provider
        self.name = name
        self.in_flight = metrics.bind_in_flight.labels(provider.name, name)
        self.window = metrics.bind_window.labels(provider.name, name)
        self.effective_rate = metrics.bind_effective_rate.labels(provider.name, name)
        self.effective_window = metrics.bind_effective_window.labels(provider.name, name)
        self._states = {s: metrics.bind_state.labels(provider.name, name, s) for s in BIND_STATES}
        self._state: BindState = "closed"
        self._states["closed"].set(1)
        provider._move_bind(None, "closed")
        self._host = ""
        self._removed = False
        self.set_host(host)

    def __repr__(self) -> str:
        return f"<BindMetrics {self.name} {self._state} host={self._host or '-'}>"

    @property
    def state(self) -> BindState:
        return self._state

    def set_state(self, state: str | Enum) -> None:
        """Move this bind to ``state`` (a ``BindState`` word or an Enum member of that name).

        Keeps ``smppgw_bind_state`` (1 on the current state) and the provider's
        ``smppgw_binds{state}`` counts in step. ValueError for a word outside ``BIND_STATES``:
        that is a programming error a test should catch.
        """
        new = _bind_state(state)
        old = self._state
        if new == old or self._removed:
            return
        self._states[old].set(0)
        self._states[new].set(1)
        self.provider._move_bind(old, new)
        self._state = new

    def set_host(self, host: str) -> None:
        """The endpoint this bind uses now (configured name or ``host:port``, never a secret).

        ``smppgw_bind_info`` carries it so dashboards can join it onto the per-bind gauges.
        """
        if host == self._host or self._removed:
            return
        info = self._metrics.bind_info
        if self._host:
            _remove(info, self.provider.name, self.name, self._host)
        info.labels(self.provider.name, self.name, host).set(1)
        self._host = host

    def track_flow(
        self, in_flight: Callable[[], float], window: int, *,
        effective_rate: Callable[[], float], effective_window: Callable[[], float],
    ) -> None:
        """Requests awaiting a response, the window limit, and the rate and window the bind's
        flow control uses now (flow/control.py), all read at scrape time. Nothing is set per
        PDU: the session and the controller already count."""
        self.in_flight.set_function(in_flight)
        self.window.set(window)
        self.effective_rate.set_function(effective_rate)
        self.effective_window.set_function(effective_window)

    def pdu_in(self, command_id: int) -> None:
        """One PDU read from the SMSC on this bind (any command, responses included)."""
        self.provider.pdu_in(command_id)

    def pdu_out(self, command_id: int) -> None:
        """One PDU written to the SMSC on this bind."""
        self.provider.pdu_out(command_id)

    def reconnect(self, reason: str | Enum) -> None:
        """This bind went down and will be tried again; ``reason`` from ``RECONNECT_REASONS``."""
        self.provider.reconnect(reason)

    def remove(self) -> None:
        """Drop this bind's series (the slot was removed by a reload); later calls do nothing."""
        if self._removed:
            return
        m, p, n = self._metrics, self.provider.name, self.name
        self.provider._move_bind(self._state, None)
        for state in BIND_STATES:
            _remove(m.bind_state, p, n, state)
        _remove(m.bind_in_flight, p, n)
        _remove(m.bind_window, p, n)
        _remove(m.bind_effective_rate, p, n)
        _remove(m.bind_effective_window, p, n)
        if self._host:
            _remove(m.bind_info, p, n, self._host)
        self._removed = True
        self.provider._binds.pop(n, None)


class ProviderMetrics:
    """Pre-labelled children for one provider; children keyed by status/command are created on
    first use and cached, since their sets are bounded but not all worth exporting at zero.
    """

    __slots__ = (
        "_bind_counts",
        "_binds",
        "_binds_by_state",
        "_messages",
        "_metrics",
        "_pdus_in",
        "_pdus_out",
        "_receipts",
        "_reconnects",
        "_segment_labels",
        "_segments",
        "_timeouts",
        "_violations",
        "alerts",
        "binds_configured",
        "empty_message_ids",
        "mo",
        "name",
        "rate_limit_wait_seconds",
        "rate_limit_waits",
        "receipts_unmatched",
        "receipts_unmatched_pending",
        "receipts_unmatched_stale",
        "refusing",
        "submit_latency",
    )

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._metrics = metrics
        self.name = name
        m = metrics
        self.mo = m.mo_messages.labels(name)
        self.alerts = m.alert_notifications.labels(name)
        self.empty_message_ids = m.empty_message_ids.labels(name)
        self.refusing = m.provider_refusing.labels(name)
        self.refusing.set(0)
        self.receipts_unmatched = m.receipts_unmatched.labels(name)
        self.receipts_unmatched_pending = m.receipts_unmatched_pending.labels(name)
        self.receipts_unmatched_stale = m.receipts_unmatched_stale.labels(name)
        self.rate_limit_waits = m.rate_limit_waits.labels(name)
        self.rate_limit_wait_seconds = m.rate_limit_wait_seconds.labels(name)
        self.submit_latency = _Buckets(LATENCY_BUCKETS)
        self.binds_configured = m.binds_configured.labels(name)
        self._binds_by_state = {s: m.binds.labels(name, s) for s in BIND_STATES}
        self._bind_counts = dict.fromkeys(BIND_STATES, 0)
        self._reconnects = {r: m.reconnects.labels(name, r) for r in RECONNECT_REASONS}
        self._receipts = {s: m.receipts.labels(name, s) for s in RECEIPT_STATS}
        # The per-PDU and per-segment counts are plain numbers (see _HotPathCollector), keyed
        # by command_id or status; the labels of each key are fixed when it first counts.
        self._segments: dict[int, int] = {}
        self._segment_labels: dict[int, tuple[str, str]] = {}
        self._messages: dict[int, Counter] = {}
        self._pdus_in: dict[int, int] = {}
        self._pdus_out: dict[int, int] = {}
        self._timeouts: dict[int, Counter] = {}
        self._violations: dict[int, Counter] = {}
        self._binds: dict[str, BindMetrics] = {}
        # Series an alert divides by or compares against exist from the start, at zero.
        self._segment_key(CommandStatus.ESME_ROK)
        self._message_child(CommandStatus.ESME_ROK)
        m.provider_paused.labels(name).set(0)
        for command in (CommandId.SUBMIT_SM, CommandId.DELIVER_SM_RESP, CommandId.ENQUIRE_LINK):
            self._pdu_key(self._pdus_out, command)
        for command in (CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM):
            self._pdu_key(self._pdus_in, command)
        metrics._queue.set(name, 0, None)

    def __repr__(self) -> str:
        bound = self._bind_counts["bound"]
        return f"<ProviderMetrics {self.name} binds={len(self._binds)} bound={bound}>"

    def _move_bind(self, old: BindState | None, new: BindState | None) -> None:
        # Counts live here and the gauges are set from them, so a scrape never sees a bind
        # counted in two states or in none.
        for state, step in ((old, -1), (new, 1)):
            if state is not None:
                self._bind_counts[state] += step
                self._binds_by_state[state].set(self._bind_counts[state])

    # children ---------------------------------------------------------------------------------

    # Caches are keyed by what the label keeps: every code that becomes "other" (or command
    # "unknown") shares key -1, so a peer inventing codes grows neither series nor memory.

    def _segment_key(self, status: int) -> int:
        """Start counting ``status`` (its key, -1 for every "other" code) at zero."""
        label = status_label(status)
        key = status if label != "other" else -1
        if key not in self._segments:
            self._segment_labels[key] = (label, classify(status).kind.value)
            self._segments[key] = 0
        return key

    def _message_child(self, status: int) -> Counter:
        label = status_label(status)
        key = status if label != "other" else -1
        child = self._messages.get(key)
        if child is None:
            kind = classify(status).kind.value
            child = self._metrics.submitted_messages.labels(self.name, label, kind)
            self._messages[key] = child
        return child

    @staticmethod
    def _pdu_key(counts: dict[int, int], command_id: int) -> int:
        """Start counting ``command_id`` (its key, -1 for every unknown one) at zero."""
        key = command_id if command_label(command_id) != "unknown" else -1
        counts.setdefault(key, 0)
        return key

    # hot path ---------------------------------------------------------------------------------

    def pdu_in(self, command_id: int) -> None:
        """One PDU read from this provider."""
        counts = self._pdus_in
        try:
            counts[command_id] += 1
        except KeyError:
            counts[self._pdu_key(counts, command_id)] += 1

    def pdu_out(self, command_id: int) -> None:
        """One PDU written to this provider."""
        counts = self._pdus_out
        try:
            counts[command_id] += 1
        except KeyError:
            counts[self._pdu_key(counts, command_id)] += 1

    def segment_answered(self, status: int, latency_seconds: float | None = None) -> None:
        """One submit_sm (or data_sm) answered: its command_status and submit→resp seconds.

        A generic_nack naming the submit counts here too, with its status. Timeouts are not
        answers: report them with :meth:`response_timeout`.
        """
        counts = self._segments
        try:
            counts[status] += 1
        except KeyError:
            counts[self._segment_key(status)] += 1
        if latency_seconds is not None:
            self.submit_latency.observe(latency_seconds)

    def message_answered(self, status: int) -> None:
        """A whole message got its final submit answer: ESME_ROK once every segment has one,
        else the status that ended it (a permanent failure, or the last try of a transient).
        """
        child = self._messages.get(status)
        if child is None:
            child = self._message_child(status)
        child.inc()

    def response_timeout(self, command_id: int) -> None:
        """A request of ``command_id`` got no response within the response timeout."""
        label = command_label(command_id)
        key = command_id if label != "unknown" else -1
        child = self._timeouts.get(key)
        if child is None:
            child = self._metrics.response_timeouts.labels(self.name, label)
            self._timeouts[key] = child
        child.inc()

    def peer_violation(self, status: int) -> None:
        """The SMSC sent something SMPP 3.4 forbids (a frame that does not decode, a request
        no ESME takes, ...); ``status`` is what smppgw answered or would have."""
        label = status_label(status)
        key = status if label != "other" else -1
        child = self._violations.get(key)
        if child is None:
            child = self._metrics.peer_violations.labels(self.name, label)
            self._violations[key] = child
        child.inc()

    def receipt(self, stat: str | MessageState | None, *, matched: bool = True) -> None:
        """One delivery receipt received (``stat`` word or message_state).

        Every receipt counts in ``smppgw_receipts_total``; those that matched no submitted
        segment also count in ``smppgw_receipts_unmatched_total``.
        """
        self._receipts[receipt_stat_label(stat)].inc()
        if not matched:
            self.receipts_unmatched.inc()

    def mo_received(self) -> None:
        """One inbound (MO) message committed."""
        self.mo.inc()

    def alert_notification(self) -> None:
        """One alert_notification received (SMPP 3.4 §4.12; it has no response)."""
        self.alerts.inc()

    def empty_message_id(self) -> None:
        """One submit_sm_resp ESME_ROK whose message_id was empty."""
        self.empty_message_ids.inc()

    def track_refusing(self, refusing: Callable[[], bool]) -> None:
        """smppgw_provider_refusing, read from ``refusing`` at scrape time."""
        self.refusing.set_function(lambda: float(refusing()))

    def rate_limit_wait(self, seconds: float) -> None:
        """A segment had to wait ``seconds`` for a rate token before it could be sent."""
        self.rate_limit_waits.inc()
        # A counter refuses negative steps; a clock quirk must not break the send path.
        self.rate_limit_wait_seconds.inc(max(0.0, seconds))

    def reconnect(self, reason: str | Enum) -> None:
        """A bind of this provider went down; ``reason`` outside RECONNECT_REASONS → other."""
        self._reconnects[_reconnect_reason(reason)].inc()

    # state set by the owner -------------------------------------------------------------------

    def set_binds_configured(self, count: int) -> None:
        """Binds the configuration asks for (the target for the "fewer binds" alert)."""
        self.binds_configured.set(count)

    def set_paused(self, paused: bool) -> None:
        """The operator paused (or resumed) this provider."""
        self._metrics.provider_paused.labels(self.name).set(1 if paused else 0)

    def set_queue(self, depth: int, oldest_enqueued_unix: float | None) -> None:
        """Unsent parts for this provider and when the oldest was accepted (unix seconds).

        Set by the daemon's periodic refresh from the store; the age is computed at scrape
        time, so it keeps growing even if the refresh stalls.
        """
        self._metrics._queue.set(self.name, depth, oldest_enqueued_unix)

    def set_receipts_unmatched(self, pending: int, stale: int) -> None:
        """Receipts held because no segment matched them yet (a receipt before its
        submit_sm_resp, for a moment; longer: see the stale ones), set by the daemon's
        periodic refresh from the store."""
        self.receipts_unmatched_pending.set(pending)
        self.receipts_unmatched_stale.set(stale)

    def set_tls_expiry(self, host: str, not_after_unix: float) -> None:
        """notAfter of the certificate ``host`` presented (see :func:`certificate_not_after`)."""
        self._metrics.tls_peer_certificate_expiry.labels(self.name, host).set(not_after_unix)


class WebhookMetrics:
    """Pre-labelled children for one configured webhook. The label is its index or a name from
    the configuration, never the URL (it may carry credentials).
    """

    __slots__ = ("_failures", "deliveries", "events", "name")

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.name = name
        self.deliveries = metrics.webhook_deliveries.labels(name)
        self.events = metrics.webhook_events.labels(name)
        self._failures = {r: metrics.webhook_failures.labels(name, r)
                          for r in WEBHOOK_FAILURE_REASONS}

    def delivered(self, events: int) -> None:
        """One POST answered 2xx, carrying ``events`` events."""
        self.deliveries.inc()
        self.events.inc(max(0, events))

    def failed(self, reason: str) -> None:
        """One POST failed (non-2xx, timeout, connect or TLS error); it will be retried."""
        self._failures.get(reason, self._failures["other"]).inc()


# --- the queue gauges, computed at scrape time --------------------------------------------------


@dataclass(slots=True)
class _QueueSnapshot:
    depth: int
    oldest_enqueued_unix: float | None


class _QueueCollector:
    """``smppgw_queue_depth`` and ``smppgw_queue_oldest_age_seconds`` per provider.

    A custom collector rather than two gauges so the age is ``now - oldest`` at scrape time.
    ``collect`` only reads a dict: it runs in the scrape handler on the event loop.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._snapshots: dict[str, _QueueSnapshot] = {}

    def set(self, provider: str, depth: int, oldest_enqueued_unix: float | None) -> None:
        self._snapshots[provider] = _QueueSnapshot(depth, oldest_enqueued_unix)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        depth, age = self._families()
        now = self._clock()
        for provider, snap in sorted(self._snapshots.items()):
            depth.add_metric([provider], snap.depth)
            oldest = snap.oldest_enqueued_unix
            age.add_metric([provider], 0.0 if oldest is None else max(0.0, now - oldest))
        return [depth, age]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "smppgw_queue_depth",
                "Message parts stored and not yet answered by the SMSC (queued, waiting for a bind"
                " or for their submit_sm_resp), by routed provider.",
                labels=["provider"],
            ),
            GaugeMetricFamily(
                "smppgw_queue_oldest_age_seconds",
                "Age of the oldest part counted in smppgw_queue_depth, by provider (0 when none).",
                labels=["provider"],
            ),
        )


# The `le` label text prometheus_client's own Histogram writes (untyped there).
_go_float: Callable[[float], str] = floatToGoString


class _Buckets:
    """One histogram's counts as plain numbers: ``observe`` is a bisect and two additions
    (prometheus_client's Histogram takes a lock per bucket and per sum, per segment here).
    Only the event loop calls it, and the scrape reads it there too."""

    __slots__ = ("bounds", "counts", "les", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = (*bounds, math.inf)
        self.les = tuple(_go_float(bound) for bound in self.bounds)  # the `le` labels
        self.counts = [0] * len(self.bounds)  # per bucket, not cumulative
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # The first bound at or above the value: Prometheus buckets are "less or equal".
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class _HotPathCollector:
    """The metrics counted on the per-PDU path, from each ProviderMetrics' plain counts:
    ``smppgw_submitted_segments_total``, ``smppgw_submit_response_duration_seconds`` and
    ``smppgw_pdus_total``. Same families, labels and series as prometheus_client's Counter and
    Histogram gave (series appear when first counted, or at zero where ProviderMetrics starts
    them), without a locked call per PDU: one dict increment each. ``collect`` runs in the
    scrape handler on the event loop, where the counting happens too.
    """

    def __init__(self, providers: Mapping[str, ProviderMetrics]) -> None:
        self._providers = providers

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        segments, latency, pdus = self._families()
        for name, provider in self._providers.items():
            labels = provider._segment_labels
            for key, count in provider._segments.items():
                label, kind = labels[key]
                segments.add_metric([name, label, kind], count)
            buckets = provider.submit_latency
            cumulative = 0
            points = []
            for le, count in zip(buckets.les, buckets.counts):
                cumulative += count
                points.append((le, cumulative))
            latency.add_metric([name], points, buckets.sum)
            for direction, counts in (("in", provider._pdus_in), ("out", provider._pdus_out)):
                for command_id, count in counts.items():
                    command = command_label(command_id) if command_id != -1 else "unknown"
                    pdus.add_metric([name, command, direction], count)
        return [segments, latency, pdus]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "smppgw_submitted_segments",
                "submit_sm answers (segments) by provider and command_status.",
                labels=["provider", "status", "kind"],
            ),
            HistogramMetricFamily(
                "smppgw_submit_response_duration_seconds",
                "Time from writing a submit_sm to reading its submit_sm_resp.",
                labels=["provider"],
            ),
            CounterMetricFamily(
                "smppgw_pdus",
                "SMPP PDUs by provider, command (spec name) and direction (in = from the SMSC).",
                labels=["provider", "command", "direction"],
            ),
        )


class _WithoutCreated:
    """A view of a registry without the ``*_created`` samples prometheus-client adds to every
    counter and histogram child: they double the series count and no rule here uses them. The
    library's own switch (``disable_created_metrics``) is process-wide, which would reach into
    other registries in the same process.
    """

    _TYPES: Final = frozenset({"counter", "histogram", "summary", "gaugehistogram"})

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():
            if metric.type in self._TYPES:
                created = metric.name + "_created"
                # collect() builds fresh Metric objects on every call: editing them is safe.
                metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


# --- the whole set -----------------------------------------------------------------------------


def _remove(metric: Counter | Gauge | Histogram, *labels: str) -> None:
    # prometheus-client before 0.21 raises KeyError for a series never created: nothing to drop.
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


def _version() -> str:
    try:
        return metadata.version("smppgw")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every smppgw metric, registered on ``registry`` (never prometheus_client's global one,
    so two daemons can live in one process, as the tests do).

    The metric objects are public attributes for rare callers and tests; the hot path uses the
    handles from :meth:`provider`, :meth:`bind` and :meth:`webhook`, whose children are labelled
    once. ``clock`` (unix seconds) feeds the queue age; tests pass their own.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str | None = None,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        self.registry = registry
        self._scraped = _WithoutCreated(registry)
        r = registry
        self._providers: dict[str, ProviderMetrics] = {}
        self._webhooks: dict[str, WebhookMetrics] = {}
        self._api: dict[tuple[str, str], Counter] = {}
        self._api_endpoints: set[str] = set()
        self._api_latency: dict[str, Histogram] = {}

        self.build_info = Info(
            "smppgw_build", "Version of smppgw and of the Python running it.", registry=r
        )
        self.build_info.info({"version": version or _version(),
                              "python": platform.python_version()})

        # submits
        self.submitted_messages = Counter(
            "smppgw_submitted_messages_total",
            "Messages whose submission ended, by provider and the submit_sm_resp status that "
            "ended it (kind: ok, transient, permanent, bind_fatal per smppgw.smpp.status).",
            ["provider", "status", "kind"], registry=r,
        )
        # smppgw_submitted_segments_total, smppgw_submit_response_duration_seconds and
        # smppgw_pdus_total: counted per segment and per PDU, exported by this collector.
        r.register(_HotPathCollector(self._providers))
        self.response_timeouts = Counter(
            "smppgw_response_timeouts_total",
            "Requests that got no response within the response timeout, by command.",
            ["provider", "command"], registry=r,
        )
        self.peer_violations = Counter(
            "smppgw_peer_violations_total",
            "PDUs from the SMSC that broke SMPP 3.4 (did not decode, wrong state or command), "
            "by the status smppgw answered with.",
            ["provider", "status"], registry=r,
        )
        # inbound
        self.receipts = Counter(
            "smppgw_receipts_total",
            "Delivery receipts received, by provider and stat (SMPP 3.4 Appendix B word).",
            ["provider", "stat"], registry=r,
        )
        self.receipts_unmatched = Counter(
            "smppgw_receipts_unmatched_total",
            "Receipts whose message id matched no submitted segment when they arrived.",
            ["provider"], registry=r,
        )
        self.receipts_unmatched_pending = Gauge(
            "smppgw_receipts_unmatched_pending",
            "Receipts that came on this provider's binds and are held in the store because "
            "no segment of their account matched them yet.",
            ["provider"], registry=r,
        )
        self.receipts_unmatched_stale = Gauge(
            "smppgw_receipts_unmatched_stale",
            "Of those, the ones unmatched for longer than gateway.unmatched_receipt_after.",
            ["provider"], registry=r,
        )
        self.mo_messages = Counter(
            "smppgw_mo_messages_total", "Inbound (MO) messages committed, by provider.",
            ["provider"], registry=r,
        )
        self.alert_notifications = Counter(
            "smppgw_alert_notifications_total",
            "alert_notification PDUs received (SMPP 3.4 §4.12: a mobile is reachable again).",
            ["provider"], registry=r,
        )
        self.empty_message_ids = Counter(
            "smppgw_submit_empty_message_id_total",
            "submit_sm_resp ESME_ROK with an empty message_id: the part cannot be matched to "
            "a receipt.",
            ["provider"], registry=r,
        )
        self.provider_refusing = Gauge(
            "smppgw_provider_refusing",
            "1 while a provider refuses every submit for good (an account-level status such "
            "as insufficient credits); it then counts as down for failover.",
            ["provider"], registry=r,
        )
        # binds
        self.binds = Gauge(
            "smppgw_binds", "Bind slots by provider and state.",
            ["provider", "state"], registry=r,
        )
        self.binds_configured = Gauge(
            "smppgw_binds_configured", "Bind slots the configuration asks for, by provider.",
            ["provider"], registry=r,
        )
        self.provider_paused = Gauge(
            "smppgw_provider_paused",
            "1 while the operator has paused the provider (nothing of it is sent; its binds "
            "stay up for receipts and MO), else 0.",
            ["provider"], registry=r,
        )
        self.bind_info = Gauge(
            "smppgw_bind_info", "Always 1: the host each bind slot uses now.",
            ["provider", "bind", "host"], registry=r,
        )
        self.bind_state = Gauge(
            "smppgw_bind_state", "1 for the state each bind slot is in, 0 for the others.",
            ["provider", "bind", "state"], registry=r,
        )
        self.bind_in_flight = Gauge(
            "smppgw_bind_in_flight", "Requests awaiting a response on a bind.",
            ["provider", "bind"], registry=r,
        )
        self.bind_window = Gauge(
            "smppgw_bind_window", "Window: the most requests a bind may have in flight.",
            ["provider", "bind"], registry=r,
        )
        self.bind_effective_rate = Gauge(
            "smppgw_bind_effective_rate",
            "Submits per second a bind sends at now: its configured rate, lowered while the "
            "SMSC answers ESME_RTHROTTLED (+Inf: no rate configured and no throttling seen).",
            ["provider", "bind"], registry=r,
        )
        self.bind_effective_window = Gauge(
            "smppgw_bind_effective_window",
            "Requests a bind keeps in flight now: its window, narrowed while the SMSC answers "
            "ESME_RMSGQFUL.",
            ["provider", "bind"], registry=r,
        )
        self.reconnects = Counter(
            "smppgw_reconnects_total", "Binds lost and retried, by provider and reason.",
            ["provider", "reason"], registry=r,
        )
        self.rate_limit_waits = Counter(
            "smppgw_rate_limit_waits_total",
            "Segments that waited for a send-rate token, by provider.",
            ["provider"], registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "smppgw_rate_limit_wait_seconds_total",
            "Seconds segments spent waiting for send-rate tokens, by provider.",
            ["provider"], registry=r,
        )
        self.tls_peer_certificate_expiry = Gauge(
            "smppgw_tls_peer_certificate_expiry_timestamp_seconds",
            "notAfter of the TLS certificate each provider host presented, unix seconds.",
            ["provider", "host"], registry=r,
        )
        # local API, webhooks, store
        self.api_requests = Counter(
            "smppgw_api_requests_total", "Local API requests by endpoint (route) and HTTP code.",
            ["endpoint", "code"], registry=r,
        )
        self.api_request_duration = Histogram(
            "smppgw_api_request_duration_seconds", "Local API request handling time.",
            ["endpoint"], buckets=API_BUCKETS, registry=r,
        )
        self.webhook_deliveries = Counter(
            "smppgw_webhook_deliveries_total", "Webhook POSTs answered 2xx.",
            ["webhook"], registry=r,
        )
        self.webhook_events = Counter(
            "smppgw_webhook_events_total", "Events delivered by webhook POSTs answered 2xx.",
            ["webhook"], registry=r,
        )
        self.webhook_failures = Counter(
            "smppgw_webhook_failures_total", "Webhook POSTs that failed, by reason.",
            ["webhook", "reason"], registry=r,
        )
        self.worker_failures = Counter(
            "smppgw_worker_failures_total",
            "Faults a worker contained (logged, the work item retried or failed) or that made "
            "the daemon start the worker again, by worker.",
            ["worker"], registry=r,
        )
        self._worker_failures = {w: self.worker_failures.labels(w) for w in WORKERS}
        self.store_writable = Gauge(
            "smppgw_store_writable",
            "1 while the store commits writes, 0 while its disk refuses them (full, I/O "
            "error): accepting, storing receipts and claiming wait meanwhile.",
            registry=r,
        )
        self.store_writable.set(1)
        self.store_write_failures = Counter(
            "smppgw_store_write_failures_total",
            "Writes the store refused, by reason (disk_full, io_error, unavailable: the"
            " PostgreSQL database out of reach).",
            ["reason"], registry=r,
        )
        self._store_write_failures = {
            reason: self.store_write_failures.labels(reason) for reason in STORE_WRITE_FAILURES}
        self.store_commit_batch_size = Histogram(
            "smppgw_store_commit_batch_size", "Records written by one grouped store commit.",
            buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        self.store_commit_duration = Histogram(
            "smppgw_store_commit_duration_seconds",
            "Time of one grouped store commit, fsync included.",
            buckets=COMMIT_BUCKETS, registry=r,
        )
        self.store_purged = Counter(
            "smppgw_store_purged_total",
            "Records deleted by retention ([store] keep_days), by kind.",
            ["kind"], registry=r,
        )
        for kind in PURGE_KINDS:
            self.store_purged.labels(kind)
        self._queue = _QueueCollector(clock)
        r.register(self._queue)
        if process_metrics:
            # smppgw_process_*: memory, fds, CPU, start time; nothing on non-Linux systems.
            ProcessCollector(namespace="smppgw", registry=r)

    def __repr__(self) -> str:
        return f"<Metrics providers={sorted(self._providers)}>"

    # handles ------------------------------------------------------------------------------------

    def provider(self, name: str, *, binds_configured: int | None = None) -> ProviderMetrics:
        """The handle for provider ``name`` (a configured name), created on first call.

        Creating it exports the series alerts rely on at zero: binds per state, reconnect
        reasons, receipt stats, ESME_ROK submits and the queue gauges.
        """
        handle = self._providers.get(name)
        if handle is None:
            handle = ProviderMetrics(self, name)
            self._providers[name] = handle
        if binds_configured is not None:
            handle.set_binds_configured(binds_configured)
        return handle

    def bind(self, provider: str, bind_name: str, host: str = "") -> BindMetrics:
        """The handle for bind ``bind_name`` (``wavy#2``) of ``provider``; the same object on
        every call until :meth:`BindMetrics.remove`. It starts in state ``closed``.
        """
        p = self.provider(provider)
        handle = p._binds.get(bind_name)
        if handle is None:
            handle = BindMetrics(self, p, bind_name, host)
            p._binds[bind_name] = handle
        elif host:
            handle.set_host(host)
        return handle

    def webhook(self, name: str) -> WebhookMetrics:
        """The handle for one webhook, by index (``"0"``) or configured name; never its URL."""
        handle = self._webhooks.get(name)
        if handle is None:
            handle = WebhookMetrics(self, name)
            self._webhooks[name] = handle
        return handle

    # rarer events ---------------------------------------------------------------------------

    def api_request(self, endpoint: str, code: int, seconds: float | None = None) -> None:
        """One local API request answered. ``endpoint`` is the route pattern
        (``/v1/messages/{tracking_id}``), never the raw path; past API_ENDPOINT_LIMIT distinct
        values, new ones count as ``other``. ``code`` outside 100-599 counts as ``other``.
        """
        if endpoint not in self._api_endpoints:
            if len(self._api_endpoints) >= API_ENDPOINT_LIMIT:
                endpoint = "other"
            else:
                self._api_endpoints.add(endpoint)
        code_text = str(code) if 100 <= code <= 599 else "other"
        # Keyed by the bounded labels, so the cache is as bounded as the series.
        key = (endpoint, code_text)
        child = self._api.get(key)
        if child is None:
            child = self.api_requests.labels(endpoint, code_text)
            self._api[key] = child
        child.inc()
        if seconds is not None:
            latency = self._api_latency.get(endpoint)
            if latency is None:
                latency = self.api_request_duration.labels(endpoint)
                self._api_latency[endpoint] = latency
            latency.observe(seconds)

    def track_store(self, writable: Callable[[], bool]) -> None:
        """``smppgw_store_writable`` is read from ``writable()`` at scrape time."""
        self.store_writable.set_function(lambda: 1.0 if writable() else 0.0)

    def store_write_refused(self, reason: str) -> None:
        """The store refused one write (``disk_full``, ``io_error`` or ``unavailable``)."""
        self._store_write_failures.get(reason, self._store_write_failures["io_error"]).inc()

    def worker_failure(self, worker: str) -> None:
        """A fault of ours in ``worker`` (one of WORKERS, else ``other``) was contained."""
        self._worker_failures.get(worker, self._worker_failures["other"]).inc()

    def store_commit(self, records: int, seconds: float | None = None) -> None:
        """One grouped commit of ``records`` rows; safe to call from the store's writer thread."""
        self.store_commit_batch_size.observe(records)
        if seconds is not None:
            self.store_commit_duration.observe(seconds)

    def store_purge(self, deleted: Mapping[str, int]) -> None:
        """Retention deleted ``deleted[kind]`` records of each kind in PURGE_KINDS."""
        for kind, count in deleted.items():
            if count:
                self.store_purged.labels(kind).inc(count)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, as the scrape endpoint serves it."""
        return generate_latest(self._scraped)

    def providers(self) -> Iterator[ProviderMetrics]:
        """The provider handles created so far (a snapshot: safe while handles are added)."""
        return iter(list(self._providers.values()))


# --- the scrape endpoint -----------------------------------------------------------------------


class MetricsStartError(SmppgwError):
    """The metrics endpoint cannot listen; the message names ``gateway.metrics_listen``."""


class MetricsServer:
    """What :func:`start_metrics_server` returns: the bound port and an async ``close()``."""

    def __init__(self, runner: web.AppRunner | None, port: int | None) -> None:
        self._runner = runner
        self.port = port

    def __repr__(self) -> str:
        return f"<MetricsServer port={self.port}>" if self._runner else "<MetricsServer off>"

    @property
    def enabled(self) -> bool:
        return self._runner is not None

    async def close(self) -> None:
        """Stop listening and finish open scrapes; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_metrics_server(metrics: Metrics, host: str | None, port: int) -> MetricsServer:
    """Serve ``GET /metrics`` on ``host:port`` from the running event loop.

    ``host`` None or "" (``metrics_listen = ""``) returns a closed server and binds nothing.
    Port 0 picks a free port, readable as ``.port``. The exposition is built in the loop: it
    only reads counters, and keeping it there avoids a thread per scrape. An address in use,
    a permission or an address not on this host raises MetricsStartError naming the key, so
    the daemon fails its start with one line the operator can act on.
    """
    if not host:
        return MetricsServer(None, None)

    async def handle_metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def handle_root(request: web.Request) -> web.Response:
        return web.Response(text='smppgw metrics: <a href="/metrics">/metrics</a>\n',
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/", handle_root)
    # Scrapes come every few seconds: an access log line each would drown the useful ones.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        # asyncio's text repeats the address as a tuple; errno alone says what went wrong. A
        # name that does not resolve (socket.gaierror) has a negative EAI_* code instead.
        reason = (os.strerror(exc.errno).lower() if exc.errno and exc.errno > 0
                  else exc.strerror or str(exc))
        raise MetricsStartError(
            f"gateway.metrics_listen: cannot listen on {_host_port(host, port)}: {reason}"
        ) from None
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
        break
    log.info("metrics listening", extra={"kv": {"listen": f"{host}:{bound}"}})
    return MetricsServer(runner, bound)
