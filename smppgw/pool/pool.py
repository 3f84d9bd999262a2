"""All binds of one provider, and the one way to send through them: ``submit``.

Choosing a bind for a submit is a synchronous function over the slots' states and their flow
control (httpcore's planning): bound, writable, a session window slot, room in the effective
window, and the exact contracted rate of the bind and of its host (flow/control.py). Waiting
for capacity happens outside it, FIFO. The pool acts on what the dispatcher decided about
each answer (lower the rate, shrink the window, rebind) and keeps the provider's health for
failover. Deliver_sm/data_sm from any bind go up with the provider's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from smppgw.config import BindTarget, ProviderConfig
from smppgw.flow.control import BindControl, ExactRateLimiter, RateTuning
from smppgw.flow.failover import ProviderHealth
from smppgw.flow.outbound import BindAction, PartFate, SubmitDecision
from smppgw.metrics import Metrics, ProviderMetrics
from smppgw.pool.slot import BindSlot, BindStatus, Inbound, SubmitFailure
from smppgw.smpp.events import ResponseReceived
from smppgw.smpp.pdu import Pdu, SubmitSmResp, become, writable_twin

__all__ = ["THROTTLE_LOG_INTERVAL", "BindPool", "SubmitResult", "SubmitTicket"]

#: Seconds between two summary lines of one bind's throttling, and of its SMSC's SMPP
#: violations (logs.RepeatedLog).
THROTTLE_LOG_INTERVAL = 30.0


@dataclass(slots=True)
class SubmitTicket:
    """One submit's standing in the pool, shared with the caller: ``sent`` once its PDU is
    written (from then it may reach the SMSC); ``withdrawn`` (``BindPool.withdraw``) makes the
    pool drop it before that, with SubmitFailure "withdrawn". The check and the write happen
    in one step of the loop, so a ticket withdrawn while ``sent`` is False is never written:
    what a pause and a cancel rely on to say "not sent"."""

    sent: bool = False
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The SMSC's answer to one submitted PDU, and where and when the PDU went (``sent_at``
    is loop time), so the answer's meaning for that bind can be applied (``BindPool.apply``)."""

    status: int
    message_id: str | None
    bind: str
    pdu: Pdu
    sent_at: float
    slot: BindSlot = field(repr=False, compare=False)


_new_submit_result = writable_twin(SubmitResult)


def _submit_result(
    status: int, message_id: str | None, bind: str, pdu: Pdu, sent_at: float, slot: BindSlot
) -> SubmitResult:
    """SubmitResult(...) at about a third of the cost (pdu.writable_twin): one per segment."""
    result = _new_submit_result()
    result.status = status
    result.message_id = message_id
    result.bind = bind
    result.pdu = pdu
    result.sent_at = sent_at
    result.slot = slot
    return become(result, SubmitResult)


class BindPool:
    """All binds of one provider. ``await pool.run()`` keeps them up (the slots' tasks live in
    its TaskGroup) until ``close()`` or ``terminate()``."""

    def __init__(
        self,
        provider: ProviderConfig,
        on_inbound: Callable[[Inbound], None],
        *,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        log_interval: float = THROTTLE_LOG_INTERVAL,
        tuning: RateTuning | None = None,
    ) -> None:
        self._provider = provider
        self.name = provider.name
        self._on_inbound = on_inbound
        self._loop = asyncio.get_running_loop()
        self._rng = rng or random.Random()
        self._metrics = metrics
        self._log_interval = log_interval
        self._tuning = tuning
        self._provider_metrics: ProviderMetrics | None = None
        if metrics is not None:
            self._provider_metrics = metrics.provider(
                provider.name, binds_configured=len(provider.bind_targets))
        self.health = ProviderHealth(self._loop.time())
        if self._provider_metrics is not None:
            health = self.health
            self._provider_metrics.track_refusing(lambda: health.refusing)
        # One exact limiter per host, shared by that host's binds (Qikberry counts per server).
        self._host_limits: dict[tuple[str, int], ExactRateLimiter] = {}
        self.slots: list[BindSlot] = [self._make_slot(t) for t in provider.bind_targets]
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[BindSlot, asyncio.Task[None]] = {}
        self._closed = asyncio.Event()
        self._bound = asyncio.Event()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._wake_handle: asyncio.TimerHandle | None = None
        self._wake_handle_at = 0.0
        self._next_slot = 0
        self._closing = False

    def __repr__(self) -> str:
        return f"<BindPool {self.name} bound={self.bound_count}/{len(self.slots)}>"

    # --- SlotOwner ------------------------------------------------------------------------

    @property
    def provider(self) -> ProviderConfig:
        return self._provider

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def metrics(self) -> Metrics | None:
        return self._metrics

    @property
    def provider_metrics(self) -> ProviderMetrics | None:
        return self._provider_metrics

    @property
    def log_interval(self) -> float:
        return self._log_interval

    def slot_changed(self, slot: BindSlot) -> None:
        self._bound_changed()

    def _bound_changed(self) -> None:
        # Only binds that can submit make the provider up: a bound receiver sends nothing.
        bound = self.submit_bound_count
        self.health.bound_changed(bound, self._loop.time())
        if bound:
            self._bound.set()
        else:
            self._bound.clear()
        self._wake(None)  # a waiter may now have a bind, or learn that none is left

    def slot_has_room(self, slot: BindSlot) -> None:
        self._wake(1)

    def inbound(self, item: Inbound) -> None:
        self._on_inbound(item)

    # --- life -------------------------------------------------------------------------------

    def _make_slot(self, target: BindTarget) -> BindSlot:
        """A slot with its own flow control, sharing its host's exact limit (Qikberry)."""
        profile = self._provider.profile
        host: ExactRateLimiter | None = None
        if profile.rate_per_host:
            key = (target.host, target.port)
            host = self._host_limits.get(key)
            if host is None:
                host = self._host_limits[key] = ExactRateLimiter(profile.rate_per_host)
        control = BindControl(profile.rate_per_bind or None, profile.window, host=host,
                              tuning=self._tuning)
        bind_metrics = None
        if self._metrics is not None:
            bind_metrics = self._metrics.bind(
                self.name, f"{self.name}#{target.index}", f"{target.host}:{target.port}")
        return BindSlot(self, target, control, bind_metrics)

    async def run(self) -> None:
        """Keep every bind up until ``close()``/``terminate()``; the slots' tasks belong to
        this call's TaskGroup (a slot added by a reload joins it)."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for slot in self.slots:
                self._start(slot)
            await self._closed.wait()
        self._group = None

    def _start(self, slot: BindSlot) -> None:
        assert self._group is not None
        self._tasks[slot] = self._group.create_task(slot.run(), name=f"bind {slot.name}")

    async def update_targets(self, provider: ProviderConfig, timeout: float = 10.0) -> None:
        """Reload with only the bind list changed: keep the binds that remain, as they are."""
        wanted = {(t.host, t.port, t.index): t for t in provider.bind_targets}
        keep: list[BindSlot] = []
        for slot in self.slots:
            key = (slot.target.host, slot.target.port, slot.target.index)
            if wanted.pop(key, None) is not None:
                keep.append(slot)
            else:
                await slot.stop(timeout)
                slot.terminate()
                task = self._tasks.pop(slot, None)
                if task is not None:
                    task.cancel()
                if slot.metrics is not None:
                    slot.metrics.remove()
        self._provider = provider
        added = [self._make_slot(target) for target in wanted.values()]
        self.slots = keep + added
        if self._group is not None:
            for slot in added:
                self._start(slot)
        if self._provider_metrics is not None:
            self._provider_metrics.set_binds_configured(len(self.slots))
        self._bound_changed()

    @property
    def bound_count(self) -> int:
        """Binds bound, of every kind."""
        return sum(1 for slot in self.slots if slot.state == "bound")

    @property
    def submit_bound_count(self) -> int:
        """Transmitters and transceivers bound: what can take a submit."""
        return sum(1 for slot in self.slots
                   if slot.state == "bound" and slot.target.can_submit)

    async def wait_bound(self) -> None:
        """Until some bind that can submit is bound (the dispatcher claims work only then)."""
        await self._bound.wait()

    def stop_linking(self) -> None:
        """From now on no bind of this pool connects or binds again (SIGTERM, a reload that
        removes the provider); bound links keep serving until ``close``."""
        for slot in self.slots:
            slot.stop_linking()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking work, connect nothing new, drain windows and unbind each bind, all
        within ``timeout``; then the slots' tasks end."""
        self._closing = True
        self.stop_linking()
        self._wake(None)
        async with asyncio.TaskGroup() as group:
            for slot in self.slots:
                group.create_task(slot.stop(timeout), name=f"unbind {slot.name}")
        self.terminate()

    def terminate(self) -> None:
        """Cut every link now; ``run()`` returns once the slots' tasks end."""
        self._closing = True
        for slot in self.slots:
            slot.terminate()
        for task in self._tasks.values():
            task.cancel()
        self._closed.set()
        self._wake(None)

    def retry_now(self) -> None:
        """Binds waiting out a certificate or key problem try again at once (a reload: the
        operator may have fixed the file)."""
        for slot in self.slots:
            slot.retry_now()

    def status(self) -> list[BindStatus]:
        return [slot.status() for slot in self.slots]

    # --- capacity ---------------------------------------------------------------------------

    def _choose(self, now: float) -> tuple[BindSlot | None, float | None]:
        """A slot that may send now, or how long until one may (None = wait for an event).
        Round robin over the slots that are bound, writable, with session window room, room
        in their effective window, and allowed by their rates (bind, host, adaptive)."""
        slots = self.slots
        count = len(slots)
        soonest: float | None = None
        start = self._next_slot
        for offset in range(count):
            slot = slots[(start + offset) % count]
            wait = slot.until_sendable(now)
            if wait is None:
                continue  # not sendable, or its window is full: an event wakes us
            if wait > 0.0:
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            self._next_slot = (start + offset + 1) % count
            return slot, None
        return None, soonest

    async def acquire(self, ticket: SubmitTicket | None = None) -> BindSlot:
        """Wait (FIFO) until some bind may take one request now. Raises SubmitFailure
        "closing" once the pool closes, "no_bind" while no bind that can submit is bound and
        "withdrawn" once ``ticket`` is: the dispatcher then gives the part back to the queue,
        where it shows and can expire."""
        loop = self._loop
        waited_from: float | None = None
        while True:
            if self._closing:
                raise SubmitFailure("closing", self.name)
            if not self._bound.is_set():
                raise SubmitFailure("no_bind", self.name)
            if ticket is not None and ticket.withdrawn:
                raise SubmitFailure("withdrawn", self.name)
            now = loop.time()
            if not self._waiters or waited_from is not None:
                slot, wait = self._choose(now)
                if slot is not None:
                    if waited_from is not None and self._provider_metrics is not None:
                        self._provider_metrics.rate_limit_wait(now - waited_from)
                    if self._waiters:
                        self._wake(1)  # maybe more room: let the next waiter look
                    return slot
                if wait is not None:
                    self._wake_at(now + wait)
            if waited_from is None:
                waited_from = now
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _wake(self, count: int | None) -> None:
        """Let ``count`` waiters (all when None) look for capacity again."""
        waiters = self._waiters
        woken = 0
        while waiters and (count is None or woken < count):
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                woken += 1

    def _wake_at(self, when: float) -> None:
        handle = self._wake_handle
        if handle is not None and not handle.cancelled() and self._wake_handle_at <= when:
            return
        if handle is not None:
            handle.cancel()
        self._wake_handle_at = when
        self._wake_handle = self._loop.call_at(when, self._on_wake_timer)

    def _on_wake_timer(self) -> None:
        self._wake_handle = None
        self._wake(None)

    # --- the one way to send ------------------------------------------------------------------

    async def request(self, pdu: Pdu) -> ResponseReceived:
        """Send a request that is not a part (cancel_sm) on the bind the plan chooses, within
        the same window and rates as the parts, and return its answer. Raises SubmitFailure
        when no answer came or nothing was sent."""
        slot = await self.acquire()
        return await slot.send(pdu, self._loop.time())

    def withdraw(self, ticket: SubmitTicket) -> None:
        """Drop ``ticket``'s submit unless its PDU is written already (see SubmitTicket)."""
        if not ticket.sent:
            ticket.withdrawn = True
            self._wake(None)   # its waiter leaves now, and whoever it was ahead of looks again

    async def submit(self, pdu: Pdu, ticket: SubmitTicket | None = None) -> SubmitResult:
        """Send ``pdu`` on the bind the plan chooses and return the SMSC's answer, whatever
        it is: the dispatcher decides what it means (flow.outbound) and hands the decision
        back to ``apply``. Raises SubmitFailure when no answer came or nothing was sent
        (``ticket``: see SubmitTicket)."""
        loop = self._loop
        sent_at = loop.time()
        slot = None
        if (
            not self._waiters
            and not self._closing
            and self._bound.is_set()
            and (ticket is None or not ticket.withdrawn)
        ):
            # acquire()'s first look, without its coroutine: under load there is usually
            # room, and then the plan, the send and the time it is recorded at are one step.
            slot, _ = self._choose(sent_at)
        if slot is None:
            slot = await self.acquire(ticket)
            sent_at = loop.time()
        # No await between the last check (acquire's, or the one above) and the write: a
        # withdrawal sees either a ticket not yet sent (and the PDU is then never written)
        # or one already sent.
        if ticket is not None:
            ticket.sent = True
        answer: ResponseReceived = await slot.send(pdu, sent_at)
        status = answer.status
        if self._provider_metrics is not None:
            self._provider_metrics.segment_answered(status, loop.time() - sent_at)
        response = answer.pdu
        message_id = response.message_id if type(response) is SubmitSmResp else None
        if message_id is None:
            message_id = getattr(response, "message_id", None)
        return _submit_result(status, message_id or None, slot.name, response, sent_at, slot)

    def apply(self, result: SubmitResult, decision: SubmitDecision) -> None:
        """What the answer means for the bind that got it and for the provider's health:
        feed its flow control, rebind it, count a refusal of the account."""
        now = self._loop.time()
        slot = result.slot
        control = slot.control
        accepted = decision.fate is PartFate.SUBMITTED
        if accepted:
            control.accepted(result.sent_at, now)
        action = decision.bind
        if action is BindAction.LOWER_RATE:
            slot.throttled(result.status, control.throttled(result.sent_at, now))
        elif action is BindAction.SHRINK_WINDOW:
            slot.throttled(result.status, control.queue_full(result.sent_at, now))
        elif action is BindAction.REBIND and decision.rebind is not None:
            slot.rebind(decision.rebind, result.status)
        self.health.submit_answered(accepted=accepted, refusing=decision.refusing, now=now)
        if accepted:
            self._wake(1)  # the effective window may have grown

    @property
    def down_since(self) -> float | None:
        """Since when this provider counts as down for failover (flow.failover)."""
        return self.health.down_since
