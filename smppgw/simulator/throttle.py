"""The simulator's throttle: a token bucket, as many SMSCs count "messages per second".

``rate`` tokens per second, holding at most one second's worth (``burst``), starting full;
each submit_sm takes one, and one that finds none is answered ESME_RTHROTTLED. smppgw itself
never sends by a token bucket (flow/control.py keeps the contract exactly); this one is the
SMSC side that its adaptive rate is tested against. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import math

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` (default: one second's worth, at least
    one); starts full. ``now`` must not run backwards (a step back is ignored)."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated_at")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = 0.0
        self._burst = 0.0
        self._set(rate, burst)
        self._tokens = self._burst
        self._updated_at: float | None = None

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def __repr__(self) -> str:
        return f"<TokenBucket rate={self._rate:g}/s burst={self._burst:g}>"

    def try_take(self, now: float) -> bool:
        """Take one token if there is one."""
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def set_rate(self, now: float, rate: float, burst: float | None = None) -> None:
        """Change the rate from ``now`` on (Faults swapped at run time); tokens earned so far
        are kept, clipped to the new burst."""
        self._refill(now)
        self._set(rate, burst)
        self._tokens = min(self._tokens, self._burst)

    def _set(self, rate: float, burst: float | None) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        burst = max(1.0, rate) if burst is None else burst
        if not (burst >= 1 and math.isfinite(burst)):
            raise ValueError(f"burst must be at least 1 token, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)

    def _refill(self, now: float) -> None:
        updated_at = self._updated_at
        if updated_at is None:
            self._updated_at = now
        elif now > updated_at:
            self._tokens = min(self._burst, self._tokens + (now - updated_at) * self._rate)
            self._updated_at = now
