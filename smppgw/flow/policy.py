"""ONE table of delays: how long smppgw waits before trying again, for every kind of retry.

Pure: no clock, no sleep, no global random state (the caller passes a ``random.Random``, so
tests fix the seed and two slots never share one by accident).
"""

# Which delay applies where
# =========================
#
#   - a bind that could not connect or bind, or a bound link that dropped: ``Backoff`` per
#     bind slot, one curve per FailureKind (reasons.py says which kind a failure is);
#   - a part the SMSC refused with a transient status (ESME_RSYSERR, ESME_RSUBMITFAIL, ...):
#     ``submit_retry_delay(attempts, "refused")``, 1 s doubling to 5 minutes;
#   - a part that left without an answer (link lost, response timeout): it was never refused,
#     so it goes again sooner: ``submit_retry_delay(attempts, "unanswered")``, at most 5 s;
#   - a webhook POST that failed: ``webhook_retry_delay``, tenfold per attempt (Qikberry's
#     schedule), with jitter;
#   - a claim or a record of answers the store refused: ``store_retry_delay``, 1 s doubling
#     to 30 s (tried again at once when the disk takes writes again);
#   - a worker of the daemon that failed: ``RestartPolicy``, 1 s doubling to a minute, the
#     streak ended by a run that lasted a minute;
#   - ESME_RTHROTTLED / ESME_RMSGQFUL: no delay here. They are flow control, not failures:
#     control.py lowers that bind's rate or window and the part goes again at the new pace.

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "DEFAULT_POLICIES",
    "FAILURE_KINDS",
    "WEBHOOK_JITTER",
    "Backoff",
    "BackoffPolicy",
    "FailureKind",
    "Jitter",
    "RestartPolicy",
    "RetryCause",
    "next_delay",
    "store_retry_delay",
    "submit_retry_delay",
    "webhook_retry_delay",
]

FailureKind = Literal[
    "network",  # connection refused, reset, unreachable
    "dns",  # name resolution failed
    "tls",  # handshake failed, certificate rejected, pin mismatch
    "timeout",  # connect, bind or response timed out
    "closed",  # the peer closed a working link (maintenance, idle drop)
    "protocol",  # the peer broke SMPP (bad frame, unexpected PDU)
    "throttled",  # ESME_RTHROTTLED answering the bind
    "bind_rejected",  # bind_resp error other than credentials (ESME_RBINDFAIL, too many binds)
    "bind_rejected_credentials",  # ESME_RINVPASWD / ESME_RINVSYSID
    "local",  # the bind cannot even be built here: an unreadable certificate, a bad setting
]
FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)

Jitter = Literal["full", "equal", "decorrelated", "none"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How delays grow for one kind of failure. Seconds throughout.

    ``initial`` is the delay scale of attempt 1, growing by ``multiplier`` per attempt up to
    ``cap``. ``jitter`` spreads the binds of a pool so they do not reconnect in lockstep
    (AWS Architecture Blog, "Exponential Backoff And Jitter"): ``full`` draws uniformly
    below the exponential curve, ``equal`` keeps half of it, ``decorrelated`` draws between
    ``initial`` and three times the previous delay, ``none`` is the bare curve (tests, tools).
    ``floor`` is a delay no draw goes under: full jitter alone can give 0 s, which is a
    reconnect storm when a provider restarts.
    """

    initial: float
    cap: float
    multiplier: float = 2.0
    jitter: Jitter = "full"
    floor: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.cap and math.isfinite(self.cap)):
            raise ValueError(f"need 0 < initial <= cap < inf, got {self.initial}, {self.cap}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.floor <= self.cap:
            raise ValueError(f"floor must lie in 0..cap, got {self.floor}")
        if self.jitter not in get_args(Jitter):
            raise ValueError(f"unknown jitter {self.jitter!r}")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay of ``attempt`` (1-based): initial × multiplier^(attempt-1),
        capped."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        try:
            grown = self.initial * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.cap
        return min(self.cap, grown)

    def delay(self, attempt: int, rng: random.Random, previous: float | None = None) -> float:
        """The delay before attempt ``attempt + 1``, after ``attempt`` failures in a row.

        ``previous`` is the delay returned for the attempt before; only ``decorrelated``
        jitter uses it (without it, the first draw is ``initial``).
        """
        ceiling = self.ceiling(attempt)
        if self.jitter == "none":
            drawn = ceiling
        elif self.jitter == "full":
            drawn = rng.uniform(0.0, ceiling)
        elif self.jitter == "equal":
            drawn = ceiling / 2 + rng.uniform(0.0, ceiling / 2)
        else:  # decorrelated
            if previous is None or attempt == 1:
                drawn = self.initial
            else:
                drawn = rng.uniform(self.initial, max(self.initial, previous * 3))
        return min(self.cap, max(self.floor, drawn))


# Starting points an operator of SMPP links would pick; config may override them per provider.
DEFAULT_POLICIES: Mapping[str, BackoffPolicy] = MappingProxyType(
    {
        "network": BackoffPolicy(initial=1.0, cap=60.0, floor=0.5),
        "dns": BackoffPolicy(initial=1.0, cap=60.0, floor=0.5),
        # A certificate problem rarely fixes itself within seconds, and every handshake costs
        # the provider's TLS terminator CPU.
        "tls": BackoffPolicy(initial=5.0, cap=600.0, floor=5.0),
        "timeout": BackoffPolicy(initial=2.0, cap=120.0, floor=1.0),
        "closed": BackoffPolicy(initial=1.0, cap=60.0, floor=0.5),
        "protocol": BackoffPolicy(initial=5.0, cap=300.0, floor=5.0),
        # The SMSC refused the bind as too many too fast: decorrelated jitter keeps the
        # binds apart.
        "throttled": BackoffPolicy(initial=1.0, cap=30.0, jitter="decorrelated", floor=1.0),
        "bind_rejected": BackoffPolicy(initial=30.0, cap=900.0, floor=30.0),
        # A wrong password must never hammer the provider: some lock the account after a few
        # failed binds. One minute at least, then doubling to one hour.
        "bind_rejected_credentials": BackoffPolicy(initial=60.0, cap=3600.0, floor=60.0),
        # Nothing on the network changes it: only a replaced file (read at every attempt)
        # or a restart. Tried now and then, each attempt logged with its cause.
        "local": BackoffPolicy(initial=30.0, cap=300.0, floor=30.0),
    }
)


def _policy(kind: str, policies: Mapping[str, BackoffPolicy]) -> BackoffPolicy:
    try:
        return policies[kind]
    except KeyError:
        raise ValueError(
            f"unknown failure kind {kind!r}; known: {', '.join(sorted(policies))}"
        ) from None


def next_delay(
    attempt: int,
    kind: str,
    rng: random.Random,
    *,
    previous: float | None = None,
    policies: Mapping[str, BackoffPolicy] = DEFAULT_POLICIES,
) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row of ``kind``.

    ``kind`` is one of FAILURE_KINDS (or a key of ``policies``); an unknown kind raises
    ValueError rather than quietly using some default, since the kind is also the ``reason``
    label of the reconnect metric.
    """
    return _policy(kind, policies).delay(attempt, rng, previous)


class Backoff:
    """Consecutive failures per kind for one bind slot; ``success()`` forgets them all.

    Counting per kind keeps a wrong password on its own slow curve even when network errors
    come in between (a fresh network failure must not reset the credentials delay to its
    first step, nor should a credentials failure inherit a long network streak).
    """

    __slots__ = ("_attempts", "_policies", "_previous", "_rng")

    def __init__(
        self, rng: random.Random, policies: Mapping[str, BackoffPolicy] = DEFAULT_POLICIES
    ) -> None:
        self._rng = rng
        self._policies = policies
        self._attempts: dict[str, int] = {}
        self._previous: dict[str, float] = {}

    def failure(self, kind: str) -> float:
        """Count one failure of ``kind`` and return the delay before the next attempt."""
        policy = _policy(kind, self._policies)
        attempt = self._attempts.get(kind, 0) + 1
        delay = policy.delay(attempt, self._rng, self._previous.get(kind))
        self._attempts[kind] = attempt
        self._previous[kind] = delay
        return delay

    def success(self) -> None:
        """The link is up (bound): the next failure starts every curve from its first step."""
        self._attempts.clear()
        self._previous.clear()

    def attempts(self, kind: str) -> int:
        """Failures of ``kind`` since the last success."""
        return self._attempts.get(kind, 0)

    def __repr__(self) -> str:
        streaks = " ".join(f"{kind}={count}" for kind, count in self._attempts.items())
        return f"<Backoff {streaks or 'clean'}>"


# --- parts and webhooks -------------------------------------------------------------------------

RetryCause = Literal["refused", "unanswered"]

#: A part refused with a transient status waits 1 s, doubling per attempt, at most 5 minutes.
SUBMIT_RETRY_CAP = 300.0
#: A part that got no answer (link lost, response timeout) goes again within 5 s.
UNANSWERED_RETRY_CAP = 5.0


def submit_retry_delay(attempts: int, cause: RetryCause) -> float:
    """Seconds before a part goes to the SMSC again, after ``attempts`` earlier sends of it
    (0 for the send that just failed when it was the first).

    No jitter: parts of many messages fail at different moments anyway, and a fixed curve
    lets an operator read a message's history.
    """
    if attempts < 0:
        raise ValueError(f"attempts cannot be negative, got {attempts}")
    delay = float(min(SUBMIT_RETRY_CAP, 2 ** min(attempts, 9)))
    return min(UNANSWERED_RETRY_CAP, delay) if cause == "unanswered" else delay


#: ±10 % on every webhook delay, so many gateways retrying one receiver do not hit it in step.
WEBHOOK_JITTER = 0.1


def webhook_retry_delay(
    attempt: int, *, min_delay: float, max_delay: float, rng: random.Random | None = None,
) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry): ``min_delay`` × 10^(n-1)
    (Qikberry's schedule: 10 s, 100 s, 1000 s …), capped at ``max_delay``, with ±10 % jitter
    when ``rng`` is given."""
    base = min(max_delay, min_delay * 10.0 ** min(attempt - 1, 30))
    if rng is not None:
        base *= 1.0 + rng.uniform(-WEBHOOK_JITTER, WEBHOOK_JITTER)
    return max(0.0, min(max_delay, base))


#: The longest wait before a claim or a record the store refused is tried again.
STORE_RETRY_MAX = 30.0


def store_retry_delay(failures: int) -> float:
    """Seconds before a claim or a record the store refused ``failures`` times in a row is
    tried again: 1 s doubling, at most STORE_RETRY_MAX."""
    return min(STORE_RETRY_MAX, 2.0 ** max(0, min(failures - 1, 10)))


class RestartPolicy:
    """When to start a failed worker again; the caller says how long the run lasted.

    The delay doubles from ``initial`` for each failure in a row, up to ``cap``, so a worker
    that fails at once every time costs a traceback a minute, not a busy loop; a run that
    lasted ``healthy_after`` seconds or more ends the streak.
    """

    __slots__ = ("cap", "failures_in_a_row", "healthy_after", "initial")

    def __init__(
        self, initial: float = 1.0, cap: float = 60.0, healthy_after: float = 60.0
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.healthy_after = healthy_after
        self.failures_in_a_row = 0

    def after_failure(self, ran_for: float) -> float:
        """Seconds to wait before the next run, after a run of ``ran_for`` seconds failed."""
        if ran_for >= self.healthy_after:
            self.failures_in_a_row = 0
        self.failures_in_a_row += 1
        return min(self.cap, self.initial * 2.0 ** min(self.failures_in_a_row - 1, 30))
