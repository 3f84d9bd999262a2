"""The operator's commands on the queue: cancel a message, send a finished one again, pause
and resume a provider. The API and the command line come through ``QueueControl``; what may
be cancelled is the store's rule, what a retry sends is flow.retry's, and a retry is accepted
by SubmitService as any message is.

A cancel first withdraws the message from every dispatcher (its parts not yet written are
never written), then cancels it in the store, which counts those parts "not sent"; parts
already on the wire are "in flight". Where the provider has ``cancel_sm`` on, the parts the
SMSC took and has not delivered are then cancelled there too (SMPP 3.4 §4.9).

Pauses live in the store, so they outlive a reload and a restart; this object keeps the
current set for status, metrics and the dispatchers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Final, Protocol

from smppgw.config import ProviderConfig
from smppgw.flow.cancel import cancel_sm_pdu, cancelled_on_smsc, parts_on_smsc
from smppgw.flow.retry import RETRYABLE, retry_request
from smppgw.metrics import Metrics
from smppgw.services.submission import SubmitAnswer, SubmitService
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import CancelSm
from smppgw.store import CancelResult, MessageView, ProviderPause, Store

__all__ = [
    "CANCEL_REASON",
    "Holder",
    "QueueControl",
    "RetryAnswer",
    "UnknownProviderError",
]

log = logging.getLogger(__name__)

#: The reason a cancel gives (the message's last error and its 'cancelled' event say it).
CANCEL_REASON: Final = "by the operator"


class Holder(Protocol):
    """What holds a provider's claimed parts and its binds (services.dispatcher.Dispatcher)."""

    def set_paused(self, paused: bool) -> None: ...

    def withdraw(self, tracking_id: str) -> frozenset[int]: ...

    def restore(self, tracking_id: str) -> None: ...

    async def cancel_on_smsc(self, pdu: CancelSm) -> int | None: ...


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


class QueueControl:
    """Cancel, retry, pause and resume; one per daemon.

    ``providers`` gives the configured providers by name (they change at reload);
    ``holders`` the dispatchers running now, by provider.
    """

    def __init__(
        self, store: Store, submit: SubmitService, *, metrics: Metrics | None = None,
        providers: Callable[[], Mapping[str, ProviderConfig]] | None = None,
        holders: Callable[[], Mapping[str, Holder]] = dict,
    ) -> None:
        self.store = store
        self.submit = submit
        self.metrics = metrics
        self._providers = providers or (
            lambda: {p.name: p for p in submit.config.providers})
        self._holders = holders
        self._paused: dict[str, ProviderPause] = {}

    def __repr__(self) -> str:
        return f"<QueueControl paused={sorted(self._paused)}>"

    @property
    def paused(self) -> Mapping[str, ProviderPause]:
        """The providers paused now, by name (configured or not)."""
        return self._paused

    async def load(self) -> None:
        """Read the pauses from the store (at start, before any dispatcher runs)."""
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
        """Cancel one message (see the module doc and Store.cancel_message); None when
        unknown."""
        holders = list(self._holders().values())
        not_sent = frozenset().union(*(h.withdraw(tracking_id) for h in holders))
        try:
            result = await self.store.cancel_message(tracking_id, CANCEL_REASON, not_sent)
        except BaseException:
            for holder in holders:
                holder.restore(tracking_id)
            raise
        if result is None or result.outcome in ("final", "all_sent"):
            for holder in holders:
                holder.restore(tracking_id)
        if result is not None and result.outcome != "final" and result.sent:
            # Cancelled again too: parts in flight at the first cancel may have been taken
            # by the SMSC since.
            result = await self._cancel_on_smsc(result)
        if result is not None and result.outcome == "cancelled":
            log.info("message cancelled", extra={"kv": {
                "tracking_id": tracking_id, "not_sent": len(result.not_sent),
                "in_flight": len(result.in_flight), "sent": len(result.sent),
                "cancel_sm": ",".join(status for _, status in result.cancel_sm) or "-"}})
        return result

    async def _cancel_on_smsc(self, result: CancelResult) -> CancelResult:
        """Where the provider has cancel_sm on: ask the SMSC to stop each part it took and
        has not delivered (flow.cancel), all at once, and record what it answered."""
        view = await self.store.get_message(result.tracking_id)
        if view is None:
            return result
        config = self._providers().get(view.provider)
        holder = self._holders().get(view.provider)
        targets = parts_on_smsc(view.segments)
        if config is None or not config.profile.cancel_sm or holder is None or not targets:
            return result
        async with asyncio.TaskGroup() as group:
            asked = [(index, group.create_task(holder.cancel_on_smsc(cancel_sm_pdu(
                config.profile, message_id=message_id, source=view.source,
                destination=view.destination)))) for index, message_id in targets]
        answers = [(index, _status_name(task.result()), cancelled_on_smsc(task.result()))
                   for index, task in asked]
        state = await self.store.record_cancel_sm(result.tracking_id, answers, CANCEL_REASON)
        outcome = result.outcome
        if outcome == "all_sent" and state == "cancelled":
            outcome = "cancelled"
        return replace(result, outcome=outcome, state=state or result.state,
                       cancel_sm=tuple((index, name) for index, name, _ in answers))

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
        if view.state not in RETRYABLE:
            return RetryAnswer(view)
        request = retry_request(view, self._providers().get(view.provider), provider)
        (answer,) = await self.submit.submit([request])
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
        holder = self._holders().get(provider)
        if holder is not None:
            holder.set_paused(paused)
        return pause


def _status_name(status: int | None) -> str:
    return "no answer" if status is None else CommandStatus.name_of(status)


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
