"""Send control per bind and per host: the contracted rate kept exactly, and a rate and a window
that adapt to what the SMSC accepts.

Pure: every input takes ``now`` (monotonic seconds from the event loop); nothing here reads a
clock, sleeps or logs. The pool plans with these objects and does the waiting itself.
"""

# Theory of operation
# ===================
#
# Three limits decide whether a bind may send a submit now; a send needs room in all of them
# and takes from all of them at once (BindControl.wait, then BindControl.sent):
#
#   1. The contract: ExactRateLimiter(rate_per_bind), and one ExactRateLimiter(rate_per_host)
#      shared by the binds of a host (Qikberry counts per server). A ring of the last N send
#      instants: a send is allowed iff fewer than N went out in the last WINDOW seconds, so
#      ANY one-second interval carries at most N, the first second after an idle spell too.
#      (A token bucket with a second of burst lets 2N through in the second that starts with
#      a full bucket.) WINDOW is 1 s plus a 5 ms guard: the pool records a send when it hands
#      the PDU to the session, and the octets leave at the end of that loop tick, so without
#      the guard the SMSC's own one-second count could see N+1.
#
#   2. AdaptiveRate: what the SMSC really takes, and how the sends are spaced. It starts at the
#      contracted rate. An
#      ESME_RTHROTTLED answer lowers it: to just below the rate the SMSC accepted over the
#      last second once a second of history exists (MARGIN × accepted), otherwise by
#      DECREASE (× 0.7); never under FLOOR. Answers to requests sent before the last decrease
#      are ignored: those left at the old rate and say nothing of the new one. While answers
#      are OK and the bind is held back by this rate (it had work the pace did not let go),
#      the rate grows by INCREASE per second, never above the contract. The sends are spaced
#      evenly at that rate (GCRA: one per 1/rate s, a TOLERANCE late loop may catch up), at
#      the contracted rate too: an SMSC that counts with a token bucket sees no burst it
#      would refuse, and one that counts per second sees the same count wherever its second
#      starts, however late it reads our first sends (a burst of N at the start of a second,
#      read a few ms late, would let it see N more in the next one).
#
#   3. AdaptiveWindow: how many requests the SMSC takes at once. ESME_RMSGQFUL halves it
#      (at least 1; same "sent before the last decrease" rule); every effective-window's
#      worth of OK answers while the window was full adds 1, never above the configured
#      window. The window at which the SMSC last refused is remembered: growing back into it
#      takes PROBE_AFTER times as many answers, and a refused probe returns to the size below
#      it instead of halving, so an SMSC with a fixed window of 5 sees about one refusal per
#      PROBE_AFTER × 5 answers rather than a sawtooth 3, 4, 5, 6, 3 ...
#
# The session's own window (SessionConfig.window) still bounds what is in flight; the pool
# plans with min(session room, effective window - in flight).

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = [
    "COALESCE_GUARD",
    "RATE_WINDOW",
    "AdaptiveRate",
    "AdaptiveWindow",
    "BindControl",
    "ExactRateLimiter",
    "RateTuning",
]

#: The interval every contracted rate is counted over (providers say "per second").
RATE_WINDOW: Final = 1.0
#: Added to RATE_WINDOW: absorbs the gap between recording a send and writing its octets.
COALESCE_GUARD: Final = 0.005

_INFINITY: Final = math.inf


def _check_rate(name: str, rate: float) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"{name} must be a positive number of messages per second, got {rate!r}")


class ExactRateLimiter:
    """Never more than ``rate`` sends in any interval of ``RATE_WINDOW`` seconds.

    A non-integer rate is rounded DOWN for the count (2.5/s allows 2 in any second): the
    contract is a ceiling, and rounding up would break it. A rate below 1 allows one send per
    1/rate seconds. ``now`` must not run backwards; a send recorded "in the past" only makes
    the limiter stricter.
    """

    __slots__ = ("_count", "_sent", "_span")

    def __init__(self, rate: float, *, guard: float = COALESCE_GUARD) -> None:
        _check_rate("rate", rate)
        if not 0 <= guard < RATE_WINDOW:
            raise ValueError(f"guard must be in [0, {RATE_WINDOW}) seconds, got {guard!r}")
        if rate >= 1:
            self._count = math.floor(rate)
            self._span = RATE_WINDOW + guard
        else:
            self._count = 1
            self._span = RATE_WINDOW / rate + guard
        # The last `count` send instants, oldest first.
        self._sent: deque[float] = deque(maxlen=self._count)

    @property
    def count(self) -> int:
        """Sends allowed per interval."""
        return self._count

    @property
    def span(self) -> float:
        """The interval, in seconds, guard included."""
        return self._span

    def time_until_allowed(self, now: float) -> float:
        """Seconds from ``now`` until a send is allowed; 0.0 when it is now."""
        sent = self._sent
        if len(sent) < self._count:
            return 0.0
        # The oldest of the last `count` sends must have left the interval (now - span, now].
        wait = sent[0] + self._span - now
        return wait if wait > 0.0 else 0.0

    def record(self, now: float) -> None:
        """One send at ``now``. Call only when ``time_until_allowed(now)`` was 0."""
        self._sent.append(now)

    def sent_in_window(self, now: float) -> int:
        """Sends in the interval ending at ``now`` (for tests and ``repr``)."""
        since = now - self._span
        return sum(1 for at in self._sent if at > since)

    def __repr__(self) -> str:
        return f"<ExactRateLimiter {self._count} per {self._span:g}s>"


@dataclass(frozen=True, slots=True)
class RateTuning:
    """How AdaptiveRate reacts; see the theory of operation. Rates in msg/s, times in s.

    ``increase`` is a fraction per second: 0.03 grows the rate by 3 % for each second in which
    the bind is held back by it and its answers are OK. ``tolerance``: how far behind its
    smooth schedule the pace may fall and catch up (the burst after idle is
    1 + tolerance × rate sends).
    """

    floor: float = 1.0
    decrease: float = 0.7
    margin: float = 0.95
    increase: float = 0.03
    history: float = 1.0
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        _check_rate("floor", self.floor)
        for name in ("decrease", "margin"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
        if not (0 < self.increase < 1):
            raise ValueError(f"increase must lie strictly between 0 and 1, got {self.increase!r}")
        for name in ("history", "tolerance"):
            value = getattr(self, name)
            if not (0 <= value < _INFINITY):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")


class AdaptiveRate:
    """The rate one bind sends at: the contracted rate, or less while the SMSC throttles.

    ``configured`` None means no contracted rate: unlimited until the first ESME_RTHROTTLED,
    then adaptive with no ceiling. ``effective`` is what the metric
    ``smppgw_bind_effective_rate`` shows (+Inf for unlimited).
    """

    __slots__ = (
        "_accepted",
        "_decreased_at",
        "_effective",
        "_first_send_at",
        "_grown_at",
        "_held_at",
        "_next_send_at",
        "_tuning",
        "configured",
    )

    def __init__(self, configured: float | None, tuning: RateTuning | None = None) -> None:
        if configured is not None:
            _check_rate("configured rate", configured)
        self.configured = _INFINITY if configured is None else float(configured)
        self._tuning = tuning or RateTuning()
        self._effective = self.configured
        self._accepted: deque[float] = deque()  # OK answers in the last `history` seconds
        self._first_send_at: float | None = None
        self._decreased_at = -_INFINITY
        self._grown_at = -_INFINITY
        self._held_at = -_INFINITY
        self._next_send_at = -_INFINITY  # GCRA's theoretical arrival time

    @property
    def effective(self) -> float:
        return self._effective

    @property
    def adapted(self) -> bool:
        """Below the contract because the SMSC throttled."""
        return self._effective < self.configured

    def __repr__(self) -> str:
        return f"<AdaptiveRate {self._effective:.3g}/{self.configured:g} msg/s>"

    # --- pacing ------------------------------------------------------------------------

    def time_until_allowed(self, now: float) -> float:
        """Seconds until this rate lets one more send go; 0.0 when it does now (always, for
        a bind with no rate)."""
        wait = self._next_send_at - self._tuning.tolerance - now
        return wait if wait > 0.0 else 0.0

    def record_send(self, now: float) -> None:
        if self._first_send_at is None:
            self._first_send_at = now
        if self._effective < _INFINITY:
            self._next_send_at = max(self._next_send_at, now) + 1.0 / self._effective

    def note_held(self, now: float) -> None:
        """The bind had work that this rate held back: it is using its rate, so OK answers
        may raise it."""
        self._held_at = now

    # --- answers -----------------------------------------------------------------------

    def on_accepted(self, sent_at: float, now: float) -> None:
        """An OK answer at ``now`` to a request sent at ``sent_at``."""
        accepted = self._accepted
        accepted.append(now)
        self._trim(now)
        if sent_at <= self._decreased_at or not self.adapted:
            return
        elapsed = now - self._grown_at
        self._grown_at = now
        if now - self._held_at > self._tuning.history or elapsed <= 0.0:
            return  # not using its rate: an idle bind learns nothing about the SMSC's limit
        grown = self._effective * (1.0 + self._tuning.increase) ** elapsed
        self._effective = min(self.configured, grown)

    def on_throttled(self, sent_at: float, now: float) -> bool:
        """ESME_RTHROTTLED at ``now`` for a request sent at ``sent_at``; True if the rate was
        lowered (False: that request left before the last decrease, or at the floor)."""
        if sent_at <= self._decreased_at:
            return False
        tuning = self._tuning
        self._trim(now)
        current = self._effective
        measured = len(self._accepted) / tuning.history if tuning.history else None
        enough_history = (
            self._first_send_at is not None and now - self._first_send_at >= tuning.history
        )
        if measured is not None and (enough_history or current == _INFINITY):
            target = tuning.margin * min(current, measured)
        else:
            target = tuning.decrease * current
        target = max(min(tuning.floor, self.configured), target)
        self._decreased_at = now
        self._grown_at = now
        if target >= current:
            return False
        self._effective = target
        return True

    def _trim(self, now: float) -> None:
        accepted = self._accepted
        since = now - self._tuning.history
        while accepted and accepted[0] <= since:
            accepted.popleft()


class AdaptiveWindow:
    """How many requests one bind keeps in flight: the configured window, or fewer while the
    SMSC answers ESME_RMSGQFUL. ``effective`` is what ``smppgw_bind_effective_window`` shows.
    """

    __slots__ = ("_answers", "_decreased_at", "_effective", "_filled", "_refused_at",
                 "configured", "probe_after")

    def __init__(self, configured: int, *, probe_after: int = 16) -> None:
        if configured < 1:
            raise ValueError(f"window must be at least 1, got {configured}")
        if probe_after < 1:
            raise ValueError(f"probe_after must be at least 1, got {probe_after}")
        self.configured = configured
        self.probe_after = probe_after
        self._effective = configured
        self._answers = 0  # OK answers towards the next step up
        self._filled = False  # the window was full since the last step
        self._refused_at: int | None = None  # the window at the last refusal
        self._decreased_at = -_INFINITY

    @property
    def effective(self) -> int:
        return self._effective

    def __repr__(self) -> str:
        return f"<AdaptiveWindow {self._effective}/{self.configured}>"

    def room(self, in_flight: int) -> int:
        """Requests that may go now with ``in_flight`` outstanding; a full window is noted,
        since only a window in use may grow."""
        room = self._effective - in_flight
        if room <= 0:
            self._filled = True
            return 0
        return room

    def on_accepted(self, sent_at: float, now: float) -> None:
        if self._effective >= self.configured or sent_at <= self._decreased_at:
            return
        if not self._filled:
            return
        self._answers += 1
        needed = self._effective
        refused_at = self._refused_at
        if refused_at is not None and self._effective + 1 >= refused_at:
            needed *= self.probe_after  # growing back into the size the SMSC refused
        if self._answers >= needed:
            self._effective += 1
            self._answers = 0
            self._filled = False
            if refused_at is not None and self._effective > refused_at:
                self._refused_at = None  # that size holds now: the SMSC's limit moved

    def on_queue_full(self, sent_at: float, now: float) -> bool:
        """ESME_RMSGQFUL at ``now`` for a request sent at ``sent_at``; True if the window
        shrank."""
        if sent_at <= self._decreased_at:
            return False
        self._decreased_at = now
        current = self._effective
        refused_at = self._refused_at
        if refused_at is not None and current >= refused_at:
            smaller = refused_at - 1  # a probe into the known limit: back to the size below
        else:
            smaller = current // 2
        self._refused_at = current
        self._effective = max(1, smaller)
        self._answers = 0
        self._filled = False
        return self._effective < current


class BindControl:
    """Everything that decides whether one bind may send a submit now; see the theory of
    operation. The pool asks ``wait``; when it says 0.0 it sends and calls ``sent`` in the
    same loop tick, and reports each answer with the instant its request was sent.
    """

    __slots__ = ("host", "limiter", "rate", "window")

    def __init__(
        self,
        rate: float | None,
        window: int,
        *,
        host: ExactRateLimiter | None = None,
        tuning: RateTuning | None = None,
        probe_after: int = 16,
    ) -> None:
        self.limiter = ExactRateLimiter(rate) if rate is not None else None
        self.host = host
        self.rate = AdaptiveRate(rate, tuning)
        self.window = AdaptiveWindow(window, probe_after=probe_after)

    def __repr__(self) -> str:
        return (
            f"<BindControl rate={self.rate.effective:.3g}/{self.rate.configured:g} "
            f"window={self.window.effective}/{self.window.configured}>"
        )

    def wait(self, now: float, in_flight: int) -> float | None:
        """0.0: one submit may go now. A positive number: seconds until the rates allow one.
        None: the effective window is full; only an answer makes room."""
        if not self.window.room(in_flight):
            return None
        wait = 0.0
        if self.limiter is not None:
            wait = self.limiter.time_until_allowed(now)
        if self.host is not None:
            wait = max(wait, self.host.time_until_allowed(now))
        pace = self.rate.time_until_allowed(now)
        if pace > 0.0:
            self.rate.note_held(now)
            wait = max(wait, pace)
        return wait

    def sent(self, now: float) -> None:
        """One submit went at ``now``: taken from every limit at once (bind, host, pace)."""
        if self.limiter is not None:
            self.limiter.record(now)
        if self.host is not None:
            self.host.record(now)
        self.rate.record_send(now)

    def accepted(self, sent_at: float, now: float) -> None:
        self.rate.on_accepted(sent_at, now)
        self.window.on_accepted(sent_at, now)

    def throttled(self, sent_at: float, now: float) -> bool:
        """ESME_RTHROTTLED: True if the effective rate went down."""
        return self.rate.on_throttled(sent_at, now)

    def queue_full(self, sent_at: float, now: float) -> bool:
        """ESME_RMSGQFUL: True if the effective window went down."""
        return self.window.on_queue_full(sent_at, now)
