"""Accepting messages: the asyncio shell over flow.submission and the store.

The API (both endpoints) and ``smppgw send`` all come through ``SubmitService.submit``, so a
message is routed, encoded and made durable the same way whatever door it used. "Accepted"
is answered only after the store has committed and fsynced the message. What a request
becomes (provider, parts, or the field error that refuses it, including every part's
submit_sm checked to encode and fit) is decided in smppgw.flow.submission; this module only
numbers messages, batches them into one store write and answers.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from smppgw.config import Config
from smppgw.flow.routing import NoRouteError, RouteProvider, Router
from smppgw.flow.submission import (
    FieldError,
    PreparedMessage,
    ProviderCodec,
    SubmitRequest,
    prepare,
    request_choices,
)
from smppgw.smpp.segment import ReferenceAllocator
from smppgw.store import NewMessage, NewSegment, Store
from smppgw.store.encoding import new_tracking_id


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    """The answer for one message, in the shape of DESIGN.md's local API."""

    client_id: str | None
    tracking_id: str | None
    accepted: bool
    segments: int = 0
    data_coding: int | None = None
    provider: str | None = None
    transient: bool = False
    error: FieldError | None = None
    duplicate: bool = False
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {"id": self.client_id}
        if self.accepted:
            answer.update(
                tracking_id=self.tracking_id, accepted=True, segments=self.segments,
                data_coding=self.data_coding, provider=self.provider,
            )
            if self.duplicate:
                answer["duplicate"] = True
        else:
            answer.update(accepted=False, transient=self.transient)
            if self.tracking_id is not None:
                answer["tracking_id"] = self.tracking_id
            if self.error is not None:
                answer["error"] = self.error.as_json()
        if self.warnings:
            answer["warnings"] = list(self.warnings)
        return answer


@dataclass
class SubmitService:
    """Routes, encodes and durably accepts messages. One per daemon (no global state).

    ``down_since`` reports, per provider, since when (monotonic) it counts as down (no bound
    bind, or refusing every submit: flow.failover); the router uses it for failover.
    ``on_accepted`` is told which providers got new work so their dispatchers wake at once
    instead of at their next poll.
    """

    config: Config
    store: Store
    down_since: Callable[[], Mapping[str, float]] = dict
    on_accepted: Callable[[set[str]], None] = lambda providers: None
    wall_clock: Callable[[], float] = time.time
    _codecs: dict[str, ProviderCodec] = field(init=False, default_factory=dict)
    _router: Router = field(init=False)
    _references: ReferenceAllocator = field(init=False)

    def __post_init__(self) -> None:
        self.reload(self.config)
        # A random start per destination: after a restart, a new long message to the same
        # handset is unlikely to reuse the reference of one still being reassembled there.
        rng = secrets.SystemRandom()
        self._references = ReferenceAllocator(start=lambda destination: rng.randrange(65536))

    def reload(self, config: Config) -> None:
        self.config = config
        self._codecs = {p.name: ProviderCodec.of(p) for p in config.providers}
        self._router = Router.build(
            (RouteProvider(p.name, p.routes, p.failover, p.failover_after)
             for p in config.providers),
            config.gateway.default_provider,
        )

    @property
    def router(self) -> Router:
        return self._router

    def codec(self, provider: str) -> ProviderCodec:
        return self._codecs[provider]

    def prepare(
        self, request: SubmitRequest, provider: str, valid_until_wall: float
    ) -> PreparedMessage | FieldError:
        """``request`` encoded for ``provider`` (also used to move a queued message there)."""
        return prepare(
            request, self._codecs[provider], valid_until_wall=valid_until_wall,
            reference=lambda bits: self._references.next(request.to, bits=bits))

    async def submit(self, requests: Sequence[SubmitRequest | FieldError]) -> list[SubmitAnswer]:
        """One answer per item, in order. FieldErrors pass through as permanent refusals."""
        answers: list[SubmitAnswer | None] = [None] * len(requests)
        batch: list[NewMessage] = []
        batch_index: list[int] = []
        now = asyncio.get_running_loop().time()
        down = self.down_since()
        for index, request in enumerate(requests):
            if isinstance(request, FieldError):
                answers[index] = SubmitAnswer(None, None, False, error=request)
                continue
            built = self._build(request, down, now)
            if isinstance(built, FieldError):
                answers[index] = SubmitAnswer(request.client_id, None, False, error=built)
            else:
                batch.append(built)
                batch_index.append(index)
        if batch:
            results = await self.store.accept_messages(batch)
            woken: set[str] = set()
            for index, message, result in zip(batch_index, batch, results, strict=True):
                request = requests[index]
                assert isinstance(request, SubmitRequest)
                if result.error is not None:
                    answers[index] = SubmitAnswer(
                        request.client_id, None, False, transient=True,
                        error=FieldError("invalid_request", request.field_prefix, result.error),
                    )
                    continue
                stored = dict(result.answer)
                answers[index] = SubmitAnswer(
                    request.client_id,
                    result.tracking_id,
                    bool(stored.get("accepted", True)),
                    segments=int(stored.get("segments", len(message.segments))),  # type: ignore[call-overload]
                    data_coding=stored.get("data_coding", message.data_coding),  # type: ignore[arg-type]
                    provider=str(stored.get("provider", message.provider)),
                    duplicate=result.duplicate,
                    warnings=request.warnings,
                )
                if not result.duplicate:
                    woken.add(message.provider)
            if woken:
                self.on_accepted(woken)
        return [a for a in answers if a is not None]

    def _build(
        self, request: SubmitRequest, down: Mapping[str, float], now: float
    ) -> NewMessage | FieldError:
        prefix = request.field_prefix
        try:
            provider = self._router.route(request.to, request.provider, down_since=down, now=now)
        except NoRouteError as exc:
            if request.provider:
                return FieldError("unknown_provider", f"{prefix}.provider", exc.detail)
            return FieldError("no_route", f"{prefix}.to", exc.detail)
        profile = self._codecs[provider].config.profile
        validity = request.validity_minutes or profile.validity_minutes
        prepared = self.prepare(request, provider, self.wall_clock() + validity * 60)
        if isinstance(prepared, FieldError):
            return prepared
        tracking_id = new_tracking_id(self.wall_clock())
        return new_message(prepared, tracking_id, request.client_id, answer={
            "tracking_id": tracking_id, "accepted": True, "segments": len(prepared.parts),
            "data_coding": prepared.data_coding, "provider": provider,
        }, request=request_choices(request, prepared.source), retry_of=request.retry_of)


def new_message(
    prepared: PreparedMessage, tracking_id: str, client_id: str | None,
    answer: Mapping[str, object] | None = None, *,
    request: Mapping[str, object] | None = None, retry_of: str | None = None,
) -> NewMessage:
    """The store's value for a prepared message; ``request`` and ``retry_of`` as in
    store.NewMessage."""
    return NewMessage(
        tracking_id=tracking_id,
        provider=prepared.provider,
        source=prepared.source,
        destination=prepared.destination,
        text=prepared.text,
        segments=tuple(NewSegment(p.short_message, p.esm_class, p.data_coding, p.tlvs)
                       for p in prepared.parts),
        client_id=client_id,
        data_coding=prepared.data_coding,
        encoding=prepared.encoding,
        flash=prepared.flash,
        esm_class=prepared.esm_class,
        registered_delivery=prepared.registered_delivery,
        tlvs=prepared.tlvs,
        valid_until_wall=prepared.valid_until_wall,
        answer=answer,
        request=request,
        retry_of=retry_of,
    )
