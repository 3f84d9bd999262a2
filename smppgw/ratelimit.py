"""Token buckets for send rates: per bind, per host, or both at once.

Pure: every method takes ``now`` (monotonic seconds from the event loop) and nothing reads a
clock, sleeps or waits. The pool asks how long to wait and does the waiting itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["CombinedBucket", "TokenBucket", "time_until_all_available", "try_take_all"]

# Float slack when comparing token counts. ``time_until_available`` returns the exact time at
# which the tokens are there; after waiting that long, rounding in ``elapsed * rate`` may leave
# the count a hair short (0.99999999 of 1). Without the slack the caller would spin for nothing.
_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full.

    One token is one submit (one segment): Wavy allows 80 MT/s per bind, Qikberry e.g. 50 msg/s
    per server (PROVIDERS.md). ``burst`` bounds how many may leave back to back after an idle
    spell; the default of one second's worth matches how SMSCs count ("per second").

    ``now`` may stand still or jump; it must not run backwards (a backwards step is ignored, so a
    caller mixing clocks loses tokens, never gains them).
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_updated_at")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = 0.0
        self._burst = 0.0
        self._set(rate, burst)
        self._tokens = self._burst
        self._updated_at: float | None = None

    # --- observation -----------------------------------------------------------------------

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The most tokens the bucket holds."""
        return self._burst

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (refills first)."""
        self._refill(now)
        return self._tokens

    def __repr__(self) -> str:
        return (
            f"<TokenBucket rate={self._rate:g}/s burst={self._burst:g} tokens={self._tokens:.2f}>"
        )

    # --- commands --------------------------------------------------------------------------

    def try_take(self, now: float, n: float = 1) -> bool:
        """Take ``n`` tokens if they are all there; otherwise take none and return False.

        Raises ValueError when ``n`` exceeds ``burst``: such a request could never be granted
        and the caller would wait forever.
        """
        self._check_n(n)
        self._refill(now)
        if self._tokens + _EPSILON < n:
            return False
        self._tokens = max(0.0, self._tokens - n)
        return True

    def time_until_available(self, now: float, n: float = 1) -> float:
        """Seconds from ``now`` until ``n`` tokens are there; 0.0 when they already are.

        Takes nothing: the caller waits that long and then calls ``try_take`` (which may still
        fail if another taker was faster; ask again then).
        """
        self._check_n(n)
        self._refill(now)
        missing = n - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self._rate

    def give_back(self, now: float, n: float = 1) -> None:
        """Return ``n`` tokens taken but not used (the segment never left); capped at burst."""
        if n < 0:
            raise ValueError(f"cannot give back {n} tokens")
        self._refill(now)
        self._tokens = min(self._burst, self._tokens + n)

    def drain(self, now: float) -> None:
        """Empty the bucket, e.g. after the SMSC answered ESME_RTHROTTLED: our idea of its rate
        was too generous, so the next send waits a full token's time."""
        self._refill(now)
        self._tokens = 0.0

    def set_rate(self, now: float, rate: float, burst: float | None = None) -> None:
        """Change the rate (config reload, or an adaptive limit) from ``now`` on.

        Tokens earned so far at the old rate are kept, clipped to the new burst; the bucket is
        not refilled, so a reload cannot be used to jump the queue.
        """
        self._refill(now)
        self._set(rate, burst)
        self._tokens = min(self._tokens, self._burst)

    # --- internals -------------------------------------------------------------------------

    def _set(self, rate: float, burst: float | None) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if burst is None:
            burst = max(1.0, rate)
        if not (burst >= 1 and math.isfinite(burst)):
            raise ValueError(f"burst must be at least 1 token, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)

    def _check_n(self, n: float) -> None:
        if not 0 < n <= self._burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of burst {self._burst:g}")

    def _refill(self, now: float) -> None:
        updated_at = self._updated_at
        if updated_at is None or now <= updated_at:
            if updated_at is None:
                self._updated_at = now
            return
        self._tokens = min(self._burst, self._tokens + (now - updated_at) * self._rate)
        self._updated_at = now


def try_take_all(buckets: Sequence[TokenBucket], now: float, n: float = 1) -> bool:
    """Take ``n`` from every bucket, or from none of them.

    Used for a bind's own limit together with its host's shared limit (Qikberry counts per
    server): a token taken from one bucket while the other refuses would be lost capacity.
    Synchronous, so nothing can run between the check and the take. A bucket listed twice
    counts once.
    """
    unique = tuple(dict.fromkeys(buckets))
    for bucket in unique:
        if bucket.time_until_available(now, n) > 0.0:
            return False
    for bucket in unique:
        taken = bucket.try_take(now, n)
        # Every bucket was just checked at the same ``now``; a refusal here is a bug.
        if not taken:  # pragma: no cover
            raise AssertionError(f"{bucket!r} refused {n} after granting it")
    return True


def time_until_all_available(buckets: Iterable[TokenBucket], now: float, n: float = 1) -> float:
    """Seconds until every bucket holds ``n`` tokens: the slowest one decides."""
    return max((bucket.time_until_available(now, n) for bucket in buckets), default=0.0)


class CombinedBucket:
    """Several buckets that act as one: a take succeeds only when all of them can give.

    Typical use: ``CombinedBucket(per_bind, per_host)``, with ``per_host`` the same object in
    every bind of that host. The interface matches TokenBucket's taking side, so the pool does
    not care which one it holds.
    """

    __slots__ = ("buckets",)

    def __init__(self, *buckets: TokenBucket) -> None:
        if not buckets:
            raise ValueError("CombinedBucket needs at least one bucket")
        self.buckets: tuple[TokenBucket, ...] = tuple(dict.fromkeys(buckets))

    def try_take(self, now: float, n: float = 1) -> bool:
        """All-or-nothing take; see ``try_take_all``."""
        return try_take_all(self.buckets, now, n)

    def time_until_available(self, now: float, n: float = 1) -> float:
        """Seconds until every bucket can give ``n``."""
        return time_until_all_available(self.buckets, now, n)

    def give_back(self, now: float, n: float = 1) -> None:
        """Return ``n`` tokens to every bucket (the segment was taken but never sent)."""
        for bucket in self.buckets:
            bucket.give_back(now, n)

    def drain(self, now: float) -> None:
        """Empty every bucket (the SMSC said ESME_RTHROTTLED; we cannot tell whose limit)."""
        for bucket in self.buckets:
            bucket.drain(now)

    def __repr__(self) -> str:
        inner = " ".join(repr(bucket) for bucket in self.buckets)
        return f"<CombinedBucket {inner}>"
