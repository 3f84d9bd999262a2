"""Provider health as failover reads it: since when a provider counts as down.

A provider is down while it has no bound session, and also while it refuses every submit for
good (an account-level permanent status such as Qikberry's 0x040B insufficient credits: the
binds are up, but nothing gets through). The router fails a provider over once it has been
down for its ``failover_after``; the failover service then moves its queued messages too.

Pure: the pool reports bound counts, the dispatcher each submit decision, both with ``now``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REFUSALS_TO_COUNT_AS_DOWN", "ProviderHealth"]

#: Account-level refusals in a row, with no submit accepted in between, before a provider
#: counts as refusing (one could be a glitch of the SMSC; three in a row with no success is
#: the account).
REFUSALS_TO_COUNT_AS_DOWN: Final = 3


class ProviderHealth:
    """One provider: bound sessions and account-level refusals → ``down_since``.

    Starts down (nothing is bound before the first bind completes), since ``now``.
    """

    __slots__ = ("_refusals", "_refusing_since", "_unbound_since", "failover_after")

    def __init__(self, failover_after: float, now: float) -> None:
        if not failover_after >= 0:
            raise ValueError(f"failover_after must be >= 0 seconds, got {failover_after!r}")
        self.failover_after = failover_after
        self._unbound_since: float | None = now
        self._refusing_since: float | None = None
        self._refusals = 0

    def __repr__(self) -> str:
        bound = "unbound" if self._unbound_since is not None else "bound"
        refusing = " refusing" if self.refusing else ""
        return f"<ProviderHealth {bound}{refusing}>"

    # --- inputs ------------------------------------------------------------------------

    def bound_changed(self, bound: int, now: float) -> None:
        """The pool's count of bound sessions changed (or was read) at ``now``."""
        if bound:
            self._unbound_since = None
        elif self._unbound_since is None:
            self._unbound_since = now

    def submit_answered(self, *, accepted: bool, refusing: bool, now: float) -> None:
        """One submit was answered: ``accepted`` (ESME_ROK) or, ``refusing``, with an
        account-level permanent status (outbound.SubmitDecision.refusing). Other answers
        say nothing about the account and change nothing."""
        if accepted:
            self._refusals = 0
            self._refusing_since = None
        elif refusing:
            self._refusals += 1
            if self._refusals == REFUSALS_TO_COUNT_AS_DOWN:
                self._refusing_since = now

    # --- observation -------------------------------------------------------------------

    @property
    def refusing(self) -> bool:
        """Every recent submit was refused for good: the alert metric
        ``smppgw_provider_refusing``."""
        return self._refusing_since is not None

    @property
    def down_since(self) -> float | None:
        """Since when the provider counts as down (the earlier cause), None while it works."""
        causes = [at for at in (self._unbound_since, self._refusing_since) if at is not None]
        return min(causes) if causes else None

    def failed_over(self, now: float) -> bool:
        """Down for at least ``failover_after``: new and queued traffic goes elsewhere."""
        since = self.down_since
        return since is not None and now - since >= self.failover_after
