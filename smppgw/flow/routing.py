"""Destination → provider: explicit choice, longest matching prefix, default, failover.

Pure: the submit service passes in which providers are down and since when (monotonic
seconds, from failover.ProviderHealth); the router never looks at a clock or a socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class NoRouteError(LookupError):
    """No provider serves this destination; a permanent error for the message."""

    def __init__(self, destination: str, detail: str) -> None:
        self.destination = destination
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class RouteProvider:
    """What the router needs to know of a provider."""

    name: str
    routes: tuple[str, ...] = ()
    failover: str | None = None
    failover_after: float = 60.0  # seconds without a bound session before failing over


@dataclass(slots=True)
class Router:
    """Longest-prefix routing over every provider's ``routes``.

    Prefixes are digits; the destination is compared without a leading ``+``. Lookups are
    O(length of the destination) through a dict of prefixes, since every message passes here.
    """

    providers: Mapping[str, RouteProvider]
    default: str | None = None
    _by_prefix: dict[str, str] = field(init=False, default_factory=dict)
    _max_prefix: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        for provider in self.providers.values():
            for prefix in provider.routes:
                # Config validation rejects ambiguous prefixes; first one wins otherwise.
                self._by_prefix.setdefault(prefix, provider.name)
                self._max_prefix = max(self._max_prefix, len(prefix))
        if self.default is not None and self.default not in self.providers:
            raise ValueError(f"default provider {self.default!r} is not configured")

    @classmethod
    def build(cls, providers: Iterable[RouteProvider], default: str | None = None) -> Router:
        return cls({p.name: p for p in providers}, default)

    def route(
        self,
        destination: str,
        provider: str | None = None,
        *,
        down_since: Mapping[str, float] | None = None,
        now: float = 0.0,
    ) -> str:
        """The provider name for ``destination``.

        ``provider`` (the message's explicit choice) wins when configured. ``down_since`` maps
        providers with no bound session to the monotonic instant that began; a provider down
        for longer than its ``failover_after`` hands over to its ``failover``, once (no chains,
        so two providers failing over to each other cannot loop).
        """
        if provider is not None:
            if provider not in self.providers:
                raise NoRouteError(destination, f"unknown provider {provider!r}")
            chosen = provider
        else:
            chosen = self._longest_prefix(destination)
        if down_since:
            chosen = self._failover(chosen, down_since, now)
        return chosen

    def _longest_prefix(self, destination: str) -> str:
        digits = destination[1:] if destination.startswith("+") else destination
        by_prefix = self._by_prefix
        for length in range(min(len(digits), self._max_prefix), 0, -1):
            name = by_prefix.get(digits[:length])
            if name is not None:
                return name
        if self.default is not None:
            return self.default
        raise NoRouteError(
            destination, f"no provider route matches {destination!r} and no default provider"
        )

    def _failover(self, chosen: str, down_since: Mapping[str, float], now: float) -> str:
        return self.failover_for(chosen, down_since, now) or chosen

    def failover_for(
        self, provider: str, down_since: Mapping[str, float], now: float
    ) -> str | None:
        """Where ``provider``'s traffic goes now, when it has been down for its
        ``failover_after`` and its ``failover`` is not down too; None while it stays. Both
        new messages (``route``) and its queued ones (the failover mover) follow this."""
        since = down_since.get(provider)
        config = self.providers.get(provider)
        if since is None or config is None or config.failover is None:
            return None
        if now - since < config.failover_after or config.failover not in self.providers:
            return None
        if config.failover in down_since:
            return None  # both down: keep the message where it was meant to go
        return config.failover
