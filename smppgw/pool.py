"""The bind pool of one provider: N independent binds kept up, segments spread over them.

One BindSlot per configured bind runs connect → TLS → bind → serve → backoff → again; a dead
slot never blocks the others. Choosing a slot for a segment (bound, window room, rate tokens,
not paused) is a synchronous function over current state (httpcore's planning); waiting for
capacity happens outside it. Deliver_sm/data_sm from any bind go up with the provider's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from smppgw.config import BindTarget, ProviderConfig
from smppgw.flow.policy import Backoff
from smppgw.logs import BindLogger, RepeatedLog
from smppgw.metrics import BindMetrics, Metrics, ProviderMetrics
from smppgw.net.connection import SmppConnection
from smppgw.net.tls import (
    TlsError,
    TlsSettings,
    check_pin,
    client_context,
    peer_certificate_expiry,
    server_hostname,
)
from smppgw.ratelimit import CombinedBucket, TokenBucket
from smppgw.smpp import status as status_table
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.events import (
    BindRejected,
    Bound,
    Closed,
    CloseReason,
    Event,
    PeerViolation,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
)
from smppgw.smpp.pdu import Pdu, SubmitSmResp
from smppgw.smpp.session import Session, SessionState

log = logging.getLogger(__name__)

SlotState = Literal["connecting", "binding", "bound", "unbinding", "backoff", "closed"]

# How many times one segment is offered again after ESME_RTHROTTLED/ESME_RMSGQFUL before the
# status goes up to the dispatcher (which then retries it later with its own backoff).
THROTTLE_RETRIES = 5
# Seconds between two summary lines of one bind's throttling pauses, and of the SMPP
# violations of its SMSC (see logs.ThrottleLog).
THROTTLE_LOG_INTERVAL = 30.0


class SubmitFailure(Exception):
    """A request left without an answer: the link was lost or the response timed out.

    Always transient for the message: the dispatcher sends it again (at-least-once; a
    duplicate can only come from a request whose response was lost with the connection).
    """

    def __init__(self, kind: Literal["connection_lost", "timeout", "closing"], bind: str) -> None:
        self.kind = kind
        self.bind = bind
        super().__init__(f"{kind} on {bind}")


class ConnectFailure(Exception):
    """Boundary translation of OSError/ssl.SSLError/TimeoutError (STYLE.md §4).

    ``kind`` is both the backoff curve and the ``reason`` label of the reconnect metric.
    """

    def __init__(self, kind: str, reason: str, detail: str) -> None:
        self.kind = kind
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The SMSC's answer to one submitted PDU."""

    status: int
    message_id: str | None
    bind: str
    pdu: Pdu


@dataclass(slots=True)
class Inbound:
    """A deliver_sm/data_sm from the SMSC, to be stored, then acknowledged.

    ``acknowledge`` answers on the connection it came from; if that link is gone by then,
    nothing is sent and the SMSC will redeliver (which the store de-duplicates downstream).
    """

    provider: str
    bind: str
    sequence_number: int
    pdu: Pdu
    _connection: SmppConnection = field(repr=False)
    acknowledged: bool = False

    def acknowledge(self, status: int = CommandStatus.ESME_ROK) -> None:
        if self.acknowledged:
            return
        self.acknowledged = True
        if not self._connection.closed.done():
            self._connection.acknowledge(self.sequence_number, status)


@dataclass(frozen=True, slots=True)
class BindStatus:
    """One bind as `smppgw status`, /v1/status and metrics see it."""

    name: str
    provider: str
    host: str
    address: str | None
    state: SlotState
    in_flight: int
    window: int
    connects: int
    last_error: str | None
    paused_for: float


def tls_settings(provider: ProviderConfig, host: str) -> TlsSettings:
    profile = provider.profile
    pin = provider.tls_pin_sha256.hex() if provider.tls_pin_sha256 else None
    return TlsSettings(
        enabled=profile.tls,
        verify=provider.tls_verify,
        check_hostname=provider.tls_verify,
        ca_file=str(provider.ca_file) if provider.ca_file else None,
        client_cert=str(provider.client_cert) if provider.client_cert else None,
        client_key=str(provider.client_key) if provider.client_key else None,
        min_version=profile.tls_min_version,
        pin_sha256=pin,
        server_hostname=host,
    )


class BindSlot:
    """One configured bind and its life: connect, bind, serve, back off, again."""

    def __init__(
        self,
        pool: BindPool,
        target: BindTarget,
        bucket: CombinedBucket | None,
        metrics: BindMetrics | None,
    ) -> None:
        self.pool = pool
        self.target = target
        self.name = f"{pool.name}#{target.index}"
        self.bucket = bucket
        self.metrics = metrics
        self.log = BindLogger(log, {"bind": self.name})
        self.connection: SmppConnection | None = None
        self.state: SlotState = "closed"
        self.address: str | None = None
        self.paused_until = 0.0
        self.connects = 0
        self.last_error: str | None = None
        self.backoff = Backoff(pool.rng)
        self._bound: asyncio.Future[None] | None = None
        self._stopping = False
        self._last_close = CloseReason.PEER_CLOSED
        self.throttle_streak = 0
        self.throttle_log = RepeatedLog(pool.loop, pool.throttle_log_interval,
                                        self._throttle_summary)
        self.violation_log = RepeatedLog(pool.loop, pool.throttle_log_interval,
                                         self._violation_summary)
        self._bound_at: float | None = None
        # Set when a bound link closes without us asking: (reason, requests handed back,
        # seconds it had been bound); logged by run() with the retry delay.
        self._lost: tuple[CloseReason, int, float] | None = None
        if metrics is not None:
            metrics.track_flow(self.in_flight, pool.provider.profile.window)

    def in_flight(self) -> int:
        """Requests of the current connection awaiting a response (0 with none)."""
        conn = self.connection
        return conn.session.in_flight if conn is not None else 0

    def __repr__(self) -> str:
        conn = self.connection
        if conn is None:
            return f"<BindSlot {self.name} {self.state.upper()}>"
        session = conn.session
        return (
            f"<BindSlot {self.name} {self.state.upper()} "
            f"in_flight={session.in_flight}/{session.window_size}>"
        )

    # --- choosing (synchronous) -----------------------------------------------------------

    def ready(self, now: float) -> bool:
        """Bound, writable, not paused and with window room: may take a request now."""
        conn = self.connection
        return (
            conn is not None
            and self.state == "bound"
            and conn.writable
            and now >= self.paused_until
            and conn.session.can_send
        )

    def send(self, pdu: Pdu) -> asyncio.Future[ResponseReceived]:
        assert self.connection is not None
        future: asyncio.Future[ResponseReceived] = self.pool.loop.create_future()
        self.connection.send_request(pdu, tag=future)
        return future

    def pause(self, seconds: float, now: float, status: int) -> None:
        """Back off this bind only (ESME_RTHROTTLED / ESME_RMSGQFUL): others keep sending.

        ``status`` is the SMSC's answer that asked for it, for the log (see ThrottleLog).
        """
        self.paused_until = max(self.paused_until, now + seconds)
        self.pool._wake_at(self.paused_until)
        if self.throttle_log.note(seconds):
            self.log.warning("SMSC throttling; bind paused", extra={"kv": {
                "status": CommandStatus.name_of(status),
                "pause": f"{seconds:.1f}s"}})

    def _violation_summary(self, violations: int, _longest: float, period: float) -> None:
        """End of a period that counted SMPP violations after the one logged: one line."""
        self.log.warning("peer kept violating SMPP", extra={"kv": {
            "violations": violations, "period": f"{period:.0f}s"}})

    def _throttle_summary(self, pauses: int, longest: float, period: float) -> None:
        """End of a throttle log period that counted pauses: one line for them."""
        self.log.warning("SMSC throttling continued", extra={"kv": {
            "pauses": pauses, "longest_pause": f"{longest:.1f}s", "period": f"{period:.0f}s"}})

    # --- events from the connection -----------------------------------------------------

    def on_event(self, event: Event) -> None:
        pool = self.pool
        if isinstance(event, ResponseReceived):
            tag = event.tag
            if isinstance(tag, asyncio.Future) and not tag.done():
                tag.set_result(event)
            pool._wake(1)
        elif isinstance(event, RequestReceived):
            assert self.connection is not None
            pool.on_inbound(
                Inbound(pool.name, self.name, event.sequence_number, event.pdu, self.connection)
            )
        elif isinstance(event, RequestTimedOut):
            tag = event.tag
            if isinstance(tag, asyncio.Future) and not tag.done():
                tag.set_exception(SubmitFailure("timeout", self.name))
            if self.pool.provider_metrics is not None:
                self.pool.provider_metrics.response_timeout(event.request.command_id)
            pool._wake(1)
        elif isinstance(event, Bound):
            self._set_state("bound")
            self._bound_at = self.pool.loop.time()
            self.backoff.success()
            if self._bound is not None and not self._bound.done():
                self._bound.set_result(None)
            self.log.info("bound", extra={"kv": {"address": self.address,
                                                   "system_id": event.system_id}})
            pool._bound_changed()
        elif isinstance(event, BindRejected):
            name = CommandStatus.name_of(event.status)
            self.last_error = f"bind refused: {name}"
            if self._bound is not None and not self._bound.done():
                self._bound.set_exception(
                    ConnectFailure(self._bind_failure_kind(event.status), "bind_rejected",
                                   self.last_error)
                )
        elif isinstance(event, PeerViolation):
            if pool.provider_metrics is not None:
                pool.provider_metrics.peer_violation(event.status)
            # A broken or hostile SMSC can send these as fast as the link carries them:
            # the first of a streak is logged, the rest summed per period (ThrottleLog).
            if self.violation_log.note():
                self.log.warning(
                    "peer violated SMPP; answered",
                    extra={"kv": {"status": CommandStatus.name_of(event.status),
                                  "detail": event.detail}},
                )
        elif isinstance(event, Closed):
            handed_back = 0
            for tag, _request in event.unanswered:
                if isinstance(tag, asyncio.Future) and not tag.done():
                    tag.set_exception(SubmitFailure("connection_lost", self.name))
                    handed_back += 1
            if self.state == "bound" and not self._stopping:
                now = pool.loop.time()
                bound_for = now - self._bound_at if self._bound_at is not None else 0.0
                self._lost = (event.reason, handed_back, bound_for)
            if self._bound is not None and not self._bound.done():
                self._bound.set_exception(
                    ConnectFailure(_close_kind(event.reason), _close_reason(event.reason),
                                   f"closed before bound: {event.reason.value}")
                )
            if event.reason not in (CloseReason.UNBOUND, CloseReason.LOCAL_CLOSE):
                self.last_error = f"link closed: {event.reason.value}"
            self._last_close = event.reason
            if self.state == "bound":
                pool._bound_changed()

    @staticmethod
    def _bind_failure_kind(status: int) -> str:
        if status in (CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID):
            return "bind_rejected_credentials"
        if status == CommandStatus.ESME_RTHROTTLED:
            return "throttled"
        return "bind_rejected"

    def _set_state(self, state: SlotState) -> None:
        self.state = state
        if self.metrics is not None:
            self.metrics.set_state(state)

    # --- the slot's life ------------------------------------------------------------------

    async def run(self) -> None:
        """Keep this bind up until the pool stops; never raises except on cancellation: a
        failure of any kind is logged, shown as ``last_error`` and tried again later."""
        loop = self.pool.loop
        while not self._stopping:
            try:
                await self._connect_and_serve()
                delay = self.backoff.failure("closed") if not self._stopping else 0.0
                kind_for_metric = _close_reason(self._last_close)
                lost, self._lost = self._lost, None
                if lost is not None and not self._stopping:
                    # The requests handed back fail with SubmitFailure("connection_lost");
                    # the dispatcher queues them again (at-least-once).
                    reason, handed_back, bound_for = lost
                    self.log.warning("bind lost", extra={"kv": {
                        "reason": reason.value, "requeued": handed_back,
                        "bound_for": f"{bound_for:.0f}s", "retry_in": f"{delay:.1f}s"}})
            except ConnectFailure as failure:
                self.last_error = failure.detail
                delay = self.backoff.failure(failure.kind)
                kind_for_metric = failure.reason
                loud = failure.kind in ("bind_rejected_credentials", "local")
                (self.log.error if loud else self.log.warning)(
                    "bind attempt failed",
                    extra={"kv": {"reason": failure.reason, "detail": failure.detail,
                                  "retry_in": f"{delay:.1f}s"}},
                )
            except Exception as exc:
                # A fault of smppgw's own: this bind tries again later (the others go on),
                # with the traceback in the log and the count in the worker metric.
                self.last_error = f"internal error: {type(exc).__name__}: {exc}"
                delay = self.backoff.failure("local")
                kind_for_metric = "other"
                if self.pool.metrics is not None:
                    self.pool.metrics.worker_failure("bind")
                self.log.error("bind attempt failed", exc_info=exc, extra={"kv": {
                    "reason": "other", "detail": self.last_error,
                    "retry_in": f"{delay:.1f}s"}})
            if self._stopping:
                break
            if self.metrics is not None:
                self.metrics.reconnect(kind_for_metric)
            self._set_state("backoff")
            self.pool._bound_changed()
            wake = self.pool._stop_event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(loop.time() + delay):
                    await wake.wait()
        self._set_state("closed")

    async def _connect_and_serve(self) -> None:
        pool = self.pool
        loop = pool.loop
        provider = pool.provider
        host, port = self.target.host, self.target.port
        self._set_state("connecting")
        # What the bind needs from here first: when it cannot be built (an unreadable or
        # invalid certificate file, a setting the session refuses) no network attempt could
        # help, and the reason is the operator's to read, at every attempt.
        settings = tls_settings(provider, host)
        try:
            context = client_context(settings) if settings.enabled else None
            session = Session(provider.session_config())
        except (TlsError, LocalProtocolError) as exc:
            raise ConnectFailure("local", "local", f"cannot build the bind: {exc}") from None
        if context is not None and not settings.verify:
            self.log.warning("TLS certificate verification is OFF for this provider",
                             extra={"kv": {"host": host}})
        address = await self._resolve(host, port)
        self.address = f"{address[0]}:{address[1]}"
        if self.metrics is not None:
            self.metrics.set_host(f"{host}:{port}")
        if self.metrics is not None:
            # Every PDU either way, those the session answers by itself included.
            session.on_pdu_in = self.metrics.provider.pdu_in
            session.on_pdu_out = self.metrics.provider.pdu_out
        self._bound = loop.create_future()
        # Stopped while connecting, nobody awaits _bound when the torn-down link's Closed
        # sets its ConnectFailure; without this asyncio logs "Future exception was never
        # retrieved" at shutdown. An await still raises it.
        self._bound.add_done_callback(_retrieve_exception)
        self._bound_at = None
        self._lost = None
        self.connects += 1
        try:
            async with asyncio.timeout(provider.connect_timeout):
                _transport, connection = await loop.create_connection(
                    lambda: SmppConnection(session, self.on_event,
                                           on_writable=lambda: pool._wake(None), loop=loop),
                    host=address[0],
                    port=address[1],
                    ssl=context,
                    server_hostname=server_hostname(settings, host) if context else None,
                )
        except TimeoutError:
            detail = f"connect to {host}:{port} timed out"
            raise ConnectFailure("timeout", "timeout", detail) from None
        except ssl.SSLError as exc:
            detail = f"TLS with {host}:{port} failed: {exc.reason or exc}"
            raise ConnectFailure("tls", "tls", detail) from None
        except OSError as exc:
            detail = f"connect to {host}:{port} failed: {exc.strerror or exc}"
            raise ConnectFailure("network", "connect_refused", detail) from None
        self.connection = connection
        try:
            transport = connection.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport else None
            if ssl_object is not None:
                if settings.pin_sha256:
                    try:
                        check_pin(ssl_object, settings.pin_sha256)
                    except Exception as exc:
                        connection.abort()
                        raise ConnectFailure("tls", "tls", str(exc)) from None
                expiry = peer_certificate_expiry(ssl_object)
                if expiry is not None and pool.provider_metrics is not None:
                    pool.provider_metrics.set_tls_expiry(f"{host}:{port}", expiry)
            self._set_state("binding")
            await self._bound  # Bound, or ConnectFailure from BindRejected/Closed
            await asyncio.shield(connection.closed)
        except asyncio.CancelledError:
            connection.abort()
            raise
        finally:
            if not connection.closed.done():
                connection.abort()
            self.connection = None
            if self.state in ("bound", "binding", "unbinding"):
                self._set_state("closed")
            pool._bound_changed()

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        """Resolve at every (re)connect; spread the provider's binds over the addresses."""
        loop = self.pool.loop
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            detail = f"cannot resolve {host}: {exc}"
            raise ConnectFailure("dns", "dns", detail) from None
        addresses = sorted({(str(info[4][0]), int(info[4][1])) for info in infos})
        if not addresses:
            raise ConnectFailure("dns", "dns", f"{host} resolved to no address")
        return addresses[(self.target.index + self.connects) % len(addresses)]

    async def stop(self, timeout: float) -> None:
        """Graceful: stop taking requests, drain, unbind (all bounded by ``timeout``)."""
        self._stopping = True
        connection = self.connection
        if connection is None:
            return
        self._set_state("unbinding")
        connection.unbind()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(connection.closed)
        except TimeoutError:
            connection.abort()

    def terminate(self) -> None:
        self._stopping = True
        if self.connection is not None:
            self.connection.abort()
        # Say now what the periods counted so far rather than lose it with the bind.
        self.throttle_log.close()
        self.violation_log.close()

    def status(self, now: float) -> BindStatus:
        return BindStatus(
            name=self.name,
            provider=self.pool.name,
            host=f"{self.target.host}:{self.target.port}",
            address=self.address,
            state=self.state,
            in_flight=self.in_flight(),
            window=self.pool.provider.profile.window,
            connects=self.connects,
            last_error=self.last_error,
            paused_for=max(0.0, self.paused_until - now),
        )


def _retrieve_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _close_reason(reason: CloseReason) -> str:
    return {
        CloseReason.PEER_CLOSED: "peer_closed",
        CloseReason.BIND_REJECTED: "bind_rejected",
        CloseReason.BIND_TIMEOUT: "timeout",
        CloseReason.ENQUIRE_LINK_TIMEOUT: "enquire_link_timeout",
        CloseReason.TOO_MANY_TIMEOUTS: "timeout",
        CloseReason.FRAME_ERROR: "frame_error",
        CloseReason.UNBOUND: "unbound",
        CloseReason.PEER_UNBOUND: "unbound",
        CloseReason.UNBIND_TIMEOUT: "timeout",
        CloseReason.DRAIN_TIMEOUT: "timeout",
    }.get(reason, "other")


def _close_kind(reason: CloseReason) -> str:
    if reason in (CloseReason.BIND_TIMEOUT, CloseReason.ENQUIRE_LINK_TIMEOUT,
                  CloseReason.TOO_MANY_TIMEOUTS, CloseReason.UNBIND_TIMEOUT):
        return "timeout"
    if reason is CloseReason.FRAME_ERROR:
        return "protocol"
    return "closed"


class BindPool:
    """All binds of one provider, and the one way to send through them: ``submit``."""

    def __init__(
        self,
        provider: ProviderConfig,
        on_inbound: Callable[[Inbound], None],
        *,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        throttle_log_interval: float = THROTTLE_LOG_INTERVAL,
    ) -> None:
        self.provider = provider
        self.throttle_log_interval = throttle_log_interval
        self.name = provider.name
        self.on_inbound = on_inbound
        self.loop = asyncio.get_running_loop()
        self.rng = rng or random.Random()
        self.provider_metrics: ProviderMetrics | None = None
        if metrics is not None:
            self.provider_metrics = metrics.provider(
                provider.name, binds_configured=len(provider.bind_targets)
            )
        self.metrics = metrics
        self._host_buckets: dict[tuple[str, int], TokenBucket] = {}
        self.slots: list[BindSlot] = [self._make_slot(t) for t in provider.bind_targets]
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._wake_handle: asyncio.TimerHandle | None = None
        self._wake_handle_at = 0.0
        self._next_slot = 0
        self._stop_event = asyncio.Event()
        self._closing = False
        self.down_since: float | None = self.loop.time()

    def __repr__(self) -> str:
        return f"<BindPool {self.name} bound={self.bound_count}/{len(self.slots)}>"

    def _make_slot(self, target: BindTarget) -> BindSlot:
        """A slot with its own rate bucket plus the bucket shared by its host (Qikberry)."""
        profile = self.provider.profile
        buckets: list[TokenBucket] = []
        if profile.rate_per_bind:
            buckets.append(TokenBucket(profile.rate_per_bind))
        if profile.rate_per_host:
            key = (target.host, target.port)
            if key not in self._host_buckets:
                self._host_buckets[key] = TokenBucket(profile.rate_per_host)
            buckets.append(self._host_buckets[key])
        bind_metrics = None
        if self.metrics is not None:
            bind_metrics = self.metrics.bind(
                self.name, f"{self.name}#{target.index}", f"{target.host}:{target.port}"
            )
        return BindSlot(self, target, CombinedBucket(*buckets) if buckets else None, bind_metrics)

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
                if slot.metrics is not None:
                    slot.metrics.remove()
        self.provider = provider
        added = [self._make_slot(target) for target in wanted.values()]
        self.slots = keep + added
        for slot in added:
            task = self.loop.create_task(slot.run(), name=f"bind {slot.name}")
            self._tasks.append(task)
        if self.provider_metrics is not None:
            self.provider_metrics.set_binds_configured(len(self.slots))
        self._bound_changed()

    @property
    def bound_count(self) -> int:
        return sum(1 for slot in self.slots if slot.state == "bound")

    def start(self, group: asyncio.TaskGroup | None = None) -> None:
        """Start every slot's task (in ``group`` when given, so the owner sees failures)."""
        for slot in self.slots:
            coro = slot.run()
            task = group.create_task(coro) if group else self.loop.create_task(coro)
            task.set_name(f"bind {slot.name}")
            self._tasks.append(task)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking work, drain windows, unbind each bind, all within ``timeout``."""
        self._closing = True
        self._stop_event.set()
        await asyncio.gather(*(slot.stop(timeout) for slot in self.slots))
        self.terminate()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._wake(None)

    def terminate(self) -> None:
        self._closing = True
        self._stop_event.set()
        for slot in self.slots:
            slot.terminate()
        for task in self._tasks:
            task.cancel()

    def status(self) -> list[BindStatus]:
        now = self.loop.time()
        return [slot.status(now) for slot in self.slots]

    # --- capacity ---------------------------------------------------------------------------

    def _choose(self, now: float) -> tuple[BindSlot | None, float | None]:
        """A slot that may send now, or how long until one may (None = wait for an event)."""
        slots = self.slots
        count = len(slots)
        soonest: float | None = None
        start = self._next_slot
        for offset in range(count):
            slot = slots[(start + offset) % count]
            if not slot.ready(now):
                if slot.state == "bound" and now < slot.paused_until:
                    wait = slot.paused_until - now
                    soonest = wait if soonest is None else min(soonest, wait)
                continue
            bucket = slot.bucket
            if bucket is not None and not bucket.try_take(now):
                wait = bucket.time_until_available(now)
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            self._next_slot = (start + offset + 1) % count
            return slot, None
        return None, soonest

    async def acquire(self) -> BindSlot:
        """Wait (FIFO) until some bind may take one request now; never fails, only waits."""
        loop = self.loop
        waited_from: float | None = None
        while True:
            if self._closing:
                raise SubmitFailure("closing", self.name)
            now = loop.time()
            if not self._waiters or waited_from is not None:
                slot, wait = self._choose(now)
                if slot is not None:
                    if waited_from is not None and self.provider_metrics is not None:
                        self.provider_metrics.rate_limit_wait(now - waited_from)
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
        self._wake_handle = self.loop.call_at(when, self._on_wake_timer)

    def _on_wake_timer(self) -> None:
        self._wake_handle = None
        self._wake(None)

    def _bound_changed(self) -> None:
        bound = self.bound_count
        if bound:
            self.down_since = None
        elif self.down_since is None:
            self.down_since = self.loop.time()
        self._wake(None)

    # --- the one way to send ---------------------------------------------------------------------

    async def submit(self, pdu: Pdu) -> SubmitResult:
        """Send ``pdu`` on some bound bind and return the SMSC's answer.

        Waits while no bind is up (work is never failed for that). ESME_RTHROTTLED and
        ESME_RMSGQFUL pause the bind that said it and offer the PDU again (bounded), so a
        throttling SMSC slows us down instead of failing messages. Raises SubmitFailure
        (transient) when the link is lost or the response times out.
        """
        loop = self.loop
        result: ResponseReceived | None = None
        slot: BindSlot | None = None
        for attempt in range(THROTTLE_RETRIES + 1):
            slot = await self.acquire()
            sent_at = loop.time()
            result = await slot.send(pdu)
            if self.provider_metrics is not None:
                self.provider_metrics.segment_answered(result.status, loop.time() - sent_at)
            klass = status_table.classify(result.status)
            if not klass.slow_down:
                slot.throttle_streak = 0
                break
            if attempt == THROTTLE_RETRIES:
                break
            # Pause only the bind that said so: 0.5 s, doubling per throttle in a row, ≤ 10 s.
            slot.throttle_streak += 1
            slot.pause(min(10.0, 0.5 * 2 ** (slot.throttle_streak - 1)), loop.time(),
                       result.status)
        assert result is not None and slot is not None
        response = result.pdu
        message_id = response.message_id if isinstance(response, SubmitSmResp) else None
        if message_id is None:
            message_id = getattr(response, "message_id", None)
        return SubmitResult(result.status, message_id or None, slot.name, response)


def sessions_bound(pools: Iterable[BindPool]) -> int:
    return sum(pool.bound_count for pool in pools)


__all__ = [
    "BindPool",
    "BindSlot",
    "BindStatus",
    "ConnectFailure",
    "Inbound",
    "SessionState",
    "SubmitFailure",
    "SubmitResult",
]
