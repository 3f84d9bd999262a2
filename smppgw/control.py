"""The operator's commands on the queue: cancel a message, send a finished one again, pause
and resume a provider. The API and the command line come through ``QueueControl``; the store
decides what a cancel may stop, ``SubmitService`` accepts a retry as it accepts any message.

A retry is the old message's request run through the accept path once more (routed, encoded
and checked again, so a changed route or profile applies): ``retry_request`` rebuilds that
request from what the store kept. Pauses live in the store, so they outlive a reload and a
restart; this object keeps the current set for status, metrics and the dispatchers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, cast

from smppgw.flow.submission import FieldError, SubmitRequest
from smppgw.metrics import Metrics
from smppgw.services.submission import SubmitAnswer, SubmitService
from smppgw.smpp.text import ENCODINGS
from smppgw.store import (
    RETRYABLE_STATES,
    CancelResult,
    MessageView,
    ProviderPause,
    Store,
)

__all__ = [
    "CANCEL_REASON",
    "QueueControl",
    "RetryAnswer",
    "UnknownProviderError",
    "refusal_field",
    "retry_request",
]

log = logging.getLogger(__name__)

#: The reason a cancel gives (the message's last error and its 'cancelled' event say it).
CANCEL_REASON: Final = "by the operator"


class UnknownProviderError(LookupError):
    """The command names a provider the running config does not have."""

    def __init__(self, name: str, known: Collection[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"no provider named {name!r}; configured: "
                         f"{', '.join(self.known) or 'none'}")


@dataclass(frozen=True, slots=True)
class RetryAnswer:
    """What a retry did. ``view`` is None when no message has the tracking id; ``answer`` is
    None when the message is not in a state that retries (``view.state`` says which), else the
    accept path's answer for the new attempt (accepted, a duplicate of the retry made before,
    or refused with its field error)."""

    view: MessageView | None
    answer: SubmitAnswer | None = None


def retry_request(view: MessageView, provider: str | None = None) -> SubmitRequest:
    """The request that sends ``view``'s message again: its text to its number, with the
    request's own choices as stored (a message stored before they were kept gives its
    columns: its sender and TLVs as sent, its validity span). ``provider`` names the
    provider to use instead of the route (or of the provider the request named)."""
    choices = view.request
    if choices is None:
        validity = None
        if view.valid_until_wall is not None:
            validity = max(1, round((view.valid_until_wall - view.created_wall) / 60))
        sender, tlvs, named, encoding = view.source, view.tlvs, None, None
        receipt = view.registered_delivery != 0
    else:
        sender = str(choices.get("from", view.source))
        tlvs = tuple((int(tag), bytes.fromhex(raw)) for tag, raw in cast(
            list[tuple[int, str]], choices.get("tlvs", [])))
        named = cast("str | None", choices.get("provider"))
        encoding_name = choices.get("encoding")
        encoding = encoding_name if encoding_name in ENCODINGS else None
        raw_validity = choices.get("validity_minutes")
        validity = raw_validity if isinstance(raw_validity, int) else None
        receipt = choices.get("receipt", True) is not False
    return SubmitRequest(
        index=0, client_id=view.client_id, to=view.destination, sender=sender,
        text=view.text, provider=provider or named, flash=view.flash,
        validity_minutes=validity, tlvs=tlvs, receipt=receipt, encoding=encoding,
        retry_of=view.tracking_id)


class QueueControl:
    """Cancel, retry, pause and resume; one per daemon.

    ``providers`` gives the names of the configured providers (they change at reload);
    ``on_pause`` hears every change of a provider's pause (the dispatchers' business).
    """

    def __init__(
        self, store: Store, submit: SubmitService, *, metrics: Metrics | None = None,
        providers: Callable[[], Collection[str]] | None = None,
        on_pause: Callable[[str, bool], None] = lambda name, paused: None,
    ) -> None:
        self.store = store
        self.submit = submit
        self.metrics = metrics
        self._providers = providers or (lambda: [p.name for p in submit.config.providers])
        self._on_pause = on_pause
        self._paused: dict[str, ProviderPause] = {}

    def __repr__(self) -> str:
        return f"<QueueControl paused={sorted(self._paused)}>"

    @property
    def paused(self) -> Mapping[str, ProviderPause]:
        """The providers paused now, by name (configured or not)."""
        return self._paused

    async def load(self) -> None:
        """Read the pauses from the store (at start, before dispatching)."""
        self._paused = await self.store.provider_pauses()
        for name in self._paused:
            log.warning("provider paused: nothing of it is sent until it is resumed",
                        extra={"kv": {"provider": name}})
        self.publish()

    def publish(self) -> None:
        """Set the paused gauge of every configured provider (at start and after a reload)."""
        if self.metrics is not None:
            for name in self._providers():
                self.metrics.provider(name).set_paused(name in self._paused)

    # --- cancel ----------------------------------------------------------------------------------

    async def cancel(self, tracking_id: str) -> CancelResult | None:
        """Cancel one message (Store.cancel_message); None when unknown."""
        result = await self.store.cancel_message(tracking_id, CANCEL_REASON)
        if result is not None and result.outcome == "cancelled":
            log.info("message cancelled", extra={"kv": {
                "tracking_id": tracking_id, "not_sent": len(result.not_sent),
                "in_flight": len(result.in_flight), "sent": len(result.sent)}})
        return result

    # --- retry -----------------------------------------------------------------------------------

    async def retry(self, tracking_id: str, provider: str | None = None) -> RetryAnswer:
        """Send a failed, undeliverable or expired message again as a new message linked to
        it. A message retried before answers that retry (``duplicate``), whatever is asked."""
        view = await self.store.get_message(tracking_id)
        if view is None:
            return RetryAnswer(None)
        if view.retried_as is not None:
            earlier = await self.store.get_message(view.retried_as)
            if earlier is not None:
                return RetryAnswer(view, _duplicate(earlier))
        if view.state not in RETRYABLE_STATES:
            return RetryAnswer(view)
        (answer,) = await self.submit.submit([retry_request(view, provider)])
        if answer.accepted and not answer.duplicate:
            log.info("message retried", extra={"kv": {
                "tracking_id": tracking_id, "as": answer.tracking_id,
                "provider": answer.provider}})
        return RetryAnswer(view, answer)

    # --- pause -----------------------------------------------------------------------------------

    async def set_paused(self, provider: str, paused: bool) -> ProviderPause | None:
        """Pause or resume a configured provider, durably; the pause as it stands."""
        if provider not in self._providers():
            raise UnknownProviderError(provider, self._providers())
        pause = await self.store.set_provider_paused(provider, paused)
        was = provider in self._paused
        if pause is None:
            self._paused.pop(provider, None)
        else:
            self._paused[provider] = pause
        if was != paused:
            log.warning("provider paused: nothing of it is sent until it is resumed" if paused
                        else "provider resumed", extra={"kv": {"provider": provider}})
        if self.metrics is not None:
            self.metrics.provider(provider).set_paused(paused)
        self._on_pause(provider, paused)
        return pause


def _duplicate(earlier: MessageView) -> SubmitAnswer:
    """The answer of the retry made before, as the accept path answers a duplicate."""
    answer = earlier.answer
    segments = answer.get("segments", earlier.parts)
    data_coding = answer.get("data_coding", earlier.data_coding)
    return SubmitAnswer(
        earlier.client_id, earlier.tracking_id, True,
        segments=segments if isinstance(segments, int) else earlier.parts,
        data_coding=data_coding if isinstance(data_coding, int) else earlier.data_coding,
        provider=str(answer.get("provider", earlier.provider)), duplicate=True)


def refusal_field(error: FieldError) -> str:
    """A field error of the accept path named by the message's own field (``to``), not by its
    place in a request (``messages[0].to``): a retry has no request body of that shape."""
    prefix, dot, rest = error.field.partition(".")
    return rest if dot and prefix.startswith("messages[") else error.field
