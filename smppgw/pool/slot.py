"""One configured bind and its life: connect → TLS → (pin check) → bind → serve → backoff →
again, one SmppConnection at a time. A dead slot never blocks the others. The pin is checked
between the handshake and the first byte: the bind carries the password.

The slot reports to its pool through ``SlotOwner`` (state changed, room again, a request from
the SMSC) and holds its bind's flow control (flow.control.BindControl), which the pool plans
with. It decides nothing about messages: answers go back to whoever sent the request, and
why a link went down maps to a backoff curve and a metric label in flow/reasons.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import ssl
from dataclasses import dataclass, field
from typing import Literal, Protocol

from smppgw.config import BindTarget, ProviderConfig
from smppgw.flow import reasons
from smppgw.flow.control import BindControl
from smppgw.flow.outbound import Unanswered
from smppgw.flow.policy import Backoff
from smppgw.flow.reasons import ConnectFault, LinkFailure
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
from smppgw.smpp.pdu import Pdu
from smppgw.smpp.session import Session

__all__ = [
    "BindSlot",
    "BindStatus",
    "ConnectFailure",
    "Inbound",
    "SlotOwner",
    "SlotState",
    "SubmitFailure",
    "tls_settings",
]

log = logging.getLogger(__name__)

SlotState = Literal["connecting", "binding", "bound", "unbinding", "backoff", "closed"]


class SubmitFailure(Exception):
    """A request left without an answer: ``kind`` says why (flow.outbound.Unanswered).

    "connection_lost" and "timeout" may have reached the SMSC (sent again: at-least-once);
    "closing", "no_bind" and "withdrawn" (pool.SubmitTicket) were never sent.
    """

    def __init__(self, kind: Unanswered, bind: str) -> None:
        self.kind: Unanswered = kind
        self.bind = bind
        super().__init__(f"{kind} on {bind}")


class ConnectFailure(Exception):
    """A connect or bind attempt that failed, already translated (STYLE.md §4): ``failure``
    says which backoff curve and which metric label (flow/reasons.py); ``detail`` is for the
    log and `smppgw status`."""

    def __init__(self, failure: LinkFailure, detail: str) -> None:
        self.failure = failure
        self.detail = detail
        super().__init__(detail)


@dataclass(slots=True)
class Inbound:
    """A deliver_sm/data_sm/alert_notification from the SMSC, to be stored, then acknowledged.

    ``acknowledge`` answers on the connection it came from; if that link is gone by then,
    nothing is sent and the SMSC will redeliver (which the store de-duplicates downstream).
    ``account`` is the SMSC account of the bind (ProviderConfig.account): a receipt is
    matched among the messages of the account, whichever table sent them.
    """

    provider: str
    bind: str
    sequence_number: int
    pdu: Pdu
    _connection: SmppConnection = field(repr=False)
    acknowledged: bool = False
    account: str | None = None

    def acknowledge(self, status: int = CommandStatus.ESME_ROK) -> None:
        if self.acknowledged:
            return
        self.acknowledged = True
        if not self._connection.closed.done():
            self._connection.acknowledge(self.sequence_number, status)


@dataclass(frozen=True, slots=True)
class BindStatus:
    """One bind as `smppgw status` and /v1/status see it. ``rate`` and ``window`` are
    configured; the effective ones are what flow control uses now (rates in msg/s, None for
    no limit)."""

    name: str
    provider: str
    host: str
    kind: str  # transceiver, transmitter or receiver
    transport: str  # tls or tcp
    address: str | None
    state: SlotState
    in_flight: int
    window: int
    effective_window: int
    rate: float | None
    effective_rate: float | None
    connects: int
    last_error: str | None
    #: In backoff: seconds until the next attempt, and why the bind is down (the reason label
    #: of smppgw_reconnects_total: connect_refused, tls, bind_rejected, ...). None otherwise.
    retry_in: float | None = None
    retry_reason: str | None = None


class SlotOwner(Protocol):
    """What a slot needs from its pool, and the three things it tells it."""

    @property
    def provider(self) -> ProviderConfig: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def metrics(self) -> Metrics | None: ...
    @property
    def provider_metrics(self) -> ProviderMetrics | None: ...
    @property
    def log_interval(self) -> float: ...

    def slot_changed(self, slot: BindSlot) -> None:
        """The slot's state moved (bound, lost, in backoff, closed)."""

    def slot_has_room(self, slot: BindSlot) -> None:
        """An answer or a timeout freed a window slot, or the link is writable again."""

    def inbound(self, item: Inbound) -> None:
        """A request from the SMSC (deliver_sm, data_sm, alert_notification)."""


def tls_settings(provider: ProviderConfig, target: BindTarget) -> TlsSettings:
    """The TLS of one bind: its host's transport, the provider's trust settings."""
    profile = provider.profile
    pin = provider.tls_pin_sha256.hex() if provider.tls_pin_sha256 else None
    return TlsSettings(
        enabled=target.tls,
        verify=provider.tls_verify,
        check_hostname=provider.tls_verify,
        ca_file=str(provider.ca_file) if provider.ca_file else None,
        client_cert=str(provider.client_cert) if provider.client_cert else None,
        client_key=str(provider.client_key) if provider.client_key else None,
        min_version=profile.tls_min_version,
        pin_sha256=pin,
        server_hostname=target.host,
    )


class BindSlot:
    """One configured bind and its life: connect, bind, serve, back off, again.

    From ``stop_linking()`` on it makes no new TCP connection and sends no new bind: a slot in
    backoff stays down, a connection not yet bound is cut; a bound link is left to ``stop``,
    which drains and unbinds it.
    """

    def __init__(
        self, owner: SlotOwner, target: BindTarget, control: BindControl,
        metrics: BindMetrics | None,
    ) -> None:
        self.owner = owner
        self.target = target
        self.name = f"{owner.provider.name}#{target.index}"
        self.control = control
        self.metrics = metrics
        self.log = BindLogger(log, {"bind": self.name})
        self.connection: SmppConnection | None = None
        self.state: SlotState = "closed"
        self.address: str | None = None
        self.connects = 0
        self.last_error: str | None = None
        self.backoff = Backoff(owner.rng)
        self._bound: asyncio.Future[None] | None = None
        self._stopping = False
        # Why the connection just made was cut before its bind (a pin mismatch), for
        # _connect_and_serve to raise once create_connection returns.
        self._refused: ConnectFailure | None = None
        # Ends a backoff wait early: stop_linking(), or retry_now() for a file problem.
        self._wake = asyncio.Event()
        self._last_failure: LinkFailure | None = None
        self._last_close = CloseReason.PEER_CLOSED
        # Set by rebind(): why this slot dropped its own bound link.
        self._rebind: LinkFailure | None = None
        self.throttle_log = RepeatedLog(owner.loop, owner.log_interval, self._throttle_summary)
        self.violation_log = RepeatedLog(owner.loop, owner.log_interval,
                                         self._violation_summary)
        self._bound_at: float | None = None
        # Set when a bound link closes without us asking: (reason, requests handed back,
        # seconds it had been bound); logged by run() with the retry delay.
        self._lost: tuple[CloseReason, int, float] | None = None
        # While in backoff: when (loop time) the next attempt comes, and why the bind is down.
        self._retry: tuple[float, str] | None = None
        if metrics is not None:
            metrics.track_flow(
                self.in_flight, owner.provider.profile.window,
                effective_rate=lambda: control.rate.effective,
                effective_window=lambda: control.window.effective)

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

    # --- sending (the pool plans, the slot sends) ------------------------------------------

    def until_sendable(self, now: float) -> float | None:
        """What the pool plans with: 0.0 when one request may go now; the seconds until the
        rates (bind, host, adaptive) allow one; None when only an event can make room (not
        bound or not writable, no session window slot, the effective window full)."""
        conn = self.connection
        if conn is None or self.state != "bound" or not conn.writable:
            return None
        session = conn.session
        if not session.can_send:
            return None
        return self.control.wait(now, session.in_flight)

    def send(self, pdu: Pdu, now: float) -> asyncio.Future[ResponseReceived]:
        """Send ``pdu`` at ``now`` (loop time; until_sendable(now) said 0.0 in this same
        step); the future gets the answer, or SubmitFailure. The send is counted in every
        limit."""
        assert self.connection is not None
        future: asyncio.Future[ResponseReceived] = self.owner.loop.create_future()
        self.connection.send_request(pdu, future, now)
        self.control.sent(now)
        return future

    def throttled(self, status: int, lowered: bool) -> None:
        """The SMSC said this bind sends too fast or too many (the control already adapted):
        the first of a streak is logged with the effective rate and window, the rest summed
        per period."""
        if self.throttle_log.note():
            self.log.warning("SMSC throttling; flow control adapts", extra={"kv": {
                "status": CommandStatus.name_of(status),
                "effective_rate": f"{self.control.rate.effective:.3g}/s",
                "effective_window": self.control.window.effective,
                "lowered": "yes" if lowered else "no"}})

    def rebind(self, failure: LinkFailure, status: int) -> None:
        """The SMSC answered a submit with a status that says this bind is bad (a `reconnect`
        row): stop sending on it, drain, unbind, and bind again on ``failure``'s curve."""
        connection = self.connection
        if connection is None or self.state != "bound" or self._stopping:
            return
        self._rebind = failure
        self.last_error = f"rebinding: submit answered {CommandStatus.name_of(status)}"
        self.log.warning("SMSC refused the bind on a submit; binding again", extra={"kv": {
            "status": CommandStatus.name_of(status)}})
        self._set_state("unbinding")
        self.owner.slot_changed(self)
        connection.unbind()

    def _violation_summary(self, violations: int, period: float) -> None:
        """End of a period that counted SMPP violations after the one logged: one line."""
        self.log.warning("peer kept violating SMPP", extra={"kv": {
            "violations": violations, "period": f"{period:.0f}s"}})

    def _throttle_summary(self, answers: int, period: float) -> None:
        """End of a throttle log period that counted answers: one line for them."""
        self.log.warning("SMSC throttling continued", extra={"kv": {
            "answers": answers, "effective_rate": f"{self.control.rate.effective:.3g}/s",
            "effective_window": self.control.window.effective, "period": f"{period:.0f}s"}})

    # --- events from the connection (its one consumer) --------------------------------------

    def on_event(self, event: Event) -> None:
        owner = self.owner
        if isinstance(event, ResponseReceived):
            tag = event.tag
            if isinstance(tag, asyncio.Future) and not tag.done():
                tag.set_result(event)
            owner.slot_has_room(self)
        elif isinstance(event, RequestReceived):
            assert self.connection is not None
            owner.inbound(Inbound(owner.provider.name, self.name, event.sequence_number,
                                  event.pdu, self.connection,
                                  account=owner.provider.account))
        elif isinstance(event, RequestTimedOut):
            tag = event.tag
            if isinstance(tag, asyncio.Future) and not tag.done():
                tag.set_exception(SubmitFailure("timeout", self.name))
            if owner.provider_metrics is not None:
                owner.provider_metrics.response_timeout(event.request.command_id)
            owner.slot_has_room(self)
        elif isinstance(event, Bound):
            self._set_state("bound")
            self._bound_at = owner.loop.time()
            self.backoff.success()
            if self._bound is not None and not self._bound.done():
                self._bound.set_result(None)
            self.log.info("bound", extra={"kv": {"address": self.address,
                                                   "system_id": event.system_id}})
            owner.slot_changed(self)
        elif isinstance(event, BindRejected):
            name = CommandStatus.name_of(event.status)
            self.last_error = f"bind refused: {name}"
            if self._bound is not None and not self._bound.done():
                self._bound.set_exception(
                    ConnectFailure(reasons.bind_rejected(event.status), self.last_error))
        elif isinstance(event, PeerViolation):
            if owner.provider_metrics is not None:
                owner.provider_metrics.peer_violation(event.status)
            # A broken or hostile SMSC can send these as fast as the link carries them:
            # the first of a streak is logged, the rest summed per period.
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
                now = owner.loop.time()
                bound_for = now - self._bound_at if self._bound_at is not None else 0.0
                self._lost = (event.reason, handed_back, bound_for)
            if self._bound is not None and not self._bound.done():
                self._bound.set_exception(ConnectFailure(
                    reasons.link_closed(event.reason),
                    f"closed before bound: {event.reason.value}"))
            if event.reason not in (CloseReason.UNBOUND, CloseReason.LOCAL_CLOSE):
                self.last_error = f"link closed: {event.reason.value}"
            self._last_close = event.reason
            if self.state in ("bound", "unbinding"):
                self._set_state("closed")
                owner.slot_changed(self)

    def _set_state(self, state: SlotState) -> None:
        self.state = state
        if self.metrics is not None:
            self.metrics.set_state(state)

    # --- the slot's life ---------------------------------------------------------------------

    async def run(self) -> None:
        """Keep this bind up until stopped; never raises except on cancellation: a failure
        of any kind is logged, shown as ``last_error`` and tried again after its backoff."""
        loop = self.owner.loop
        while not self._stopping:
            try:
                await self._connect_and_serve()
                rebind, self._rebind = self._rebind, None
                failure = rebind or reasons.link_closed(self._last_close)
                delay = self.backoff.failure(failure.kind) if not self._stopping else 0.0
                lost, self._lost = self._lost, None
                if lost is not None and not self._stopping and rebind is None:
                    # The requests handed back fail with SubmitFailure("connection_lost");
                    # the dispatcher queues them again (at-least-once).
                    reason, handed_back, bound_for = lost
                    self.log.warning("bind lost", extra={"kv": {
                        "reason": reason.value, "requeued": handed_back,
                        "bound_for": f"{bound_for:.0f}s", "retry_in": f"{delay:.1f}s"}})
            except ConnectFailure as exc:
                failure = exc.failure
                self.last_error = exc.detail
                delay = self.backoff.failure(failure.kind)
                loud = failure.kind in ("bind_rejected_credentials", "local")
                (self.log.error if loud else self.log.warning)(
                    "bind attempt failed",
                    extra={"kv": {"reason": failure.reason, "detail": exc.detail,
                                  "retry_in": f"{delay:.1f}s"}},
                )
            except Exception as exc:
                # A fault of smppgw's own: this bind tries again later (the others go on),
                # with the traceback in the log and the count in the worker metric.
                self.last_error = f"internal error: {type(exc).__name__}: {exc}"
                failure = LinkFailure("local", "other")
                delay = self.backoff.failure(failure.kind)
                if self.owner.metrics is not None:
                    self.owner.metrics.worker_failure("bind")
                self.log.error("bind attempt failed", exc_info=exc, extra={"kv": {
                    "reason": "other", "detail": self.last_error,
                    "retry_in": f"{delay:.1f}s"}})
            if self._stopping:
                break
            if self.metrics is not None:
                self.metrics.reconnect(failure.reason)
            self._retry = (loop.time() + delay, failure.reason)
            self._last_failure = failure
            self._wake.clear()
            self._set_state("backoff")
            self.owner.slot_changed(self)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(self._retry[0]):
                    await self._wake.wait()
            self._retry = None
        self._set_state("closed")
        self.owner.slot_changed(self)

    def retry_now(self) -> None:
        """End a backoff that waits out a local or TLS failure (a certificate, key or CA file
        the operator may just have fixed: they are read at every attempt), so the bind
        tries again at once. Other waits keep their delay: the network decides those."""
        failure = self._last_failure
        if self.state == "backoff" and failure is not None and failure.kind in ("local", "tls"):
            self._wake.set()

    async def _connect_and_serve(self) -> None:
        owner = self.owner
        loop = owner.loop
        provider = owner.provider
        host, port = self.target.host, self.target.port
        self._set_state("connecting")
        # What the bind needs from here first: when it cannot be built (an unreadable or
        # invalid certificate file, a setting the session refuses) no network attempt could
        # help, and the reason is the operator's to read, at every attempt.
        settings = tls_settings(provider, self.target)
        try:
            # The files are read at every attempt (a replaced one is used), off the loop.
            context = await asyncio.to_thread(client_context, settings) if settings.enabled \
                else None
            session = Session(provider.session_config(self.target.kind))
        except (TlsError, LocalProtocolError) as exc:
            raise ConnectFailure(reasons.connect_failed(ConnectFault.LOCAL),
                                 f"cannot build the bind: {exc}") from None
        if context is not None and not settings.verify:
            self.log.warning("TLS certificate verification is OFF for this provider",
                             extra={"kv": {"host": host}})
        address = await self._resolve(host, port)
        self.address = f"{address[0]}:{address[1]}"
        if self.metrics is not None:
            self.metrics.set_host(f"{host}:{port}")
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
        self._refused = None
        if self._stopping:
            return  # stopped while resolving: no connection is made
        self.connects += 1
        try:
            async with asyncio.timeout(provider.connect_timeout):
                _transport, connection = await loop.create_connection(
                    lambda: SmppConnection(
                        session, self.on_event, on_writable=lambda: owner.slot_has_room(self),
                        may_bind=lambda transport: self._may_bind(transport, settings),
                        loop=loop),
                    host=address[0],
                    port=address[1],
                    ssl=context,
                    server_hostname=server_hostname(settings, host) if context else None,
                )
        except TimeoutError:
            raise ConnectFailure(reasons.connect_failed(ConnectFault.CONNECT_TIMEOUT),
                                 f"connect to {host}:{port} timed out") from None
        except ssl.SSLError as exc:
            why = exc.reason or str(exc)
            if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
                why = f"{why}: {exc.verify_message}"  # e.g. "unable to get local issuer ..."
            raise ConnectFailure(reasons.connect_failed(ConnectFault.TLS),
                                 f"TLS with {host}:{port} failed: {why}") from None
        except OSError as exc:
            raise ConnectFailure(
                reasons.connect_failed(ConnectFault.CONNECT_REFUSED),
                f"connect to {host}:{port} failed: {exc.strerror or exc}") from None
        refused, self._refused = self._refused, None
        if refused is not None:
            raise refused  # cut in connection_made: nothing was written
        self.connection = connection
        try:
            transport = connection.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport else None
            if ssl_object is not None:
                expiry = peer_certificate_expiry(ssl_object)
                if expiry is not None and owner.provider_metrics is not None:
                    owner.provider_metrics.set_tls_expiry(f"{host}:{port}", expiry)
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
            owner.slot_changed(self)

    def _may_bind(self, transport: asyncio.Transport, settings: TlsSettings) -> bool:
        """Asked by the connection once TCP and TLS are up, before it writes anything: no
        bind while stopping, and none to a peer whose certificate is not the pinned one (the
        bind carries the password; verification may be off, the pin being all that
        identifies the SMSC)."""
        if self._stopping:
            return False
        ssl_object = transport.get_extra_info("ssl_object")
        if settings.pin_sha256 and ssl_object is not None:
            try:
                check_pin(ssl_object, settings.pin_sha256)
            except (TlsError, ValueError) as exc:  # ValueError: a certificate not X.509
                self._refused = ConnectFailure(reasons.connect_failed(ConnectFault.TLS),
                                               str(exc))
                return False
        return True

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        """Resolve at every (re)connect; spread the provider's binds over the addresses."""
        loop = self.owner.loop
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectFailure(reasons.connect_failed(ConnectFault.DNS),
                                 f"cannot resolve {host}: {exc}") from None
        addresses = sorted({(str(info[4][0]), int(info[4][1])) for info in infos})
        if not addresses:
            raise ConnectFailure(reasons.connect_failed(ConnectFault.DNS),
                                 f"{host} resolved to no address")
        return addresses[(self.target.index + self.connects) % len(addresses)]

    # --- stopping --------------------------------------------------------------------------

    def stop_linking(self) -> None:
        """From now on no new connection and no new bind: a backoff ends (the slot stays
        down), and a connection that completes from now on is cut before its bind goes out
        (SmppConnection's ``may_bind``). A link bound, or binding, is left to ``stop``."""
        self._stopping = True
        self._wake.set()

    async def stop(self, timeout: float) -> None:
        """Graceful, all bounded by ``timeout``: no new link; a bind already on the wire is
        let finish, so the SMSC does not keep a session we dropped; then stop taking
        requests, drain, unbind."""
        self.stop_linking()
        connection = self.connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(timeout):
                bound = self._bound
                if self.state == "binding" and bound is not None:
                    with contextlib.suppress(ConnectFailure):
                        await asyncio.shield(bound)
                if self.state == "bound":
                    self._set_state("unbinding")
                    self.owner.slot_changed(self)
                connection.unbind()
                await asyncio.shield(connection.closed)
        except TimeoutError:
            connection.abort()

    def terminate(self) -> None:
        self.stop_linking()
        if self.connection is not None:
            self.connection.abort()
        # Say now what the periods counted so far rather than lose it with the bind.
        self.throttle_log.close()
        self.violation_log.close()

    def status(self) -> BindStatus:
        profile = self.owner.provider.profile
        rate = self.control.rate.effective
        retry_in: float | None = None
        retry_reason: str | None = None
        if self._retry is not None and self.state == "backoff":
            retry_in = round(max(0.0, self._retry[0] - self.owner.loop.time()), 1)
            retry_reason = self._retry[1]
        return BindStatus(
            name=self.name,
            provider=self.owner.provider.name,
            host=str(self.target),
            kind=self.target.kind,
            transport="tls" if self.target.tls else "tcp",
            address=self.address,
            state=self.state,
            in_flight=self.in_flight(),
            window=profile.window,
            effective_window=self.control.window.effective,
            rate=profile.rate_per_bind or profile.rate_per_host,
            effective_rate=None if math.isinf(rate) else round(rate, 2),
            connects=self.connects,
            last_error=self.last_error,
            retry_in=retry_in,
            retry_reason=retry_reason,
        )


def _retrieve_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
