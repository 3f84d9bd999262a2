"""Webhook push: one WebhookPusher per ``[[webhook]]`` sends the event log, in commit order and
in batches, to a URL, and remembers in the store how far the receiver acknowledged (2xx).

Owns the POST, its TLS (the receiver's CA, a client certificate), its auth, signature and
custom headers, and the retry delays; no HTTP server, no SQL. The TLS files are read when the
pusher starts (and again after a failure to load them, as a POST that failed is tried again).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from smppgw.config import WebhookConfig
from smppgw.flow.policy import webhook_retry_delay
from smppgw.metrics import Metrics, WebhookMetrics
from smppgw.net.tls import TlsError, TlsSettings, client_context
from smppgw.services.events_json import encode_events
from smppgw.store import Event, Store, StoreClosedError, StoreWriteError

__all__ = ["IDLE_WAIT", "READ_LIMIT", "WebhookPusher", "client_session", "safe_url",
           "tls_settings"]

log = logging.getLogger(__name__)

#: How long one wait for new events lasts before the pusher looks again (it is woken at once
#: by a commit; the timeout only bounds how stale a missed wake-up could leave it).
IDLE_WAIT: Final = 30.0
#: Events read per look: more than a batch, so types filtered out cost few reads.
READ_LIMIT: Final = 1000
SIGNATURE_HEADER: Final = "X-Smppgw-Signature"
TIMESTAMP_HEADER: Final = "X-Smppgw-Timestamp"
USER_AGENT: Final = "smppgw-webhook"

SessionFactory = Callable[[ssl.SSLContext | None], aiohttp.ClientSession]
Sleep = Callable[[float], Awaitable[None]]


def client_session(context: ssl.SSLContext | None) -> aiohttp.ClientSession:
    """A session whose HTTPS connections use ``context`` (None: aiohttp's default, for
    http:// URLs)."""
    if context is None:
        return aiohttp.ClientSession()
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


def tls_settings(config: WebhookConfig) -> TlsSettings:
    """The TLS of ``config``'s POSTs, as net.tls builds contexts for the SMSC links."""
    return TlsSettings(
        enabled=True, verify=config.tls_verify,
        ca_file=str(config.ca_file) if config.ca_file is not None else None,
        client_cert=str(config.client_cert) if config.client_cert is not None else None,
        client_key=str(config.client_key) if config.client_key is not None else None,
        min_version=config.tls_min_version)


def safe_url(url: str) -> str:
    """The URL as logs may show it: scheme, host, port and path; never userinfo or a query
    (either may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class WebhookPusher:
    """Pushes events of ``config.events`` types to ``config.url``; owned by the daemon's task
    group, which cancels :meth:`run` to stop it.

    Delivery is at-least-once and in order: the position (``store.set_webhook_position``)
    moves only after a 2xx, so a crash or a failed POST resends the batch. Receivers dedupe by
    the event ``cursor``. ``session_factory``, ``min_delay``, ``sleep`` and ``rng`` exist so
    tests run without real waits.
    """

    def __init__(
        self,
        config: WebhookConfig,
        store: Store,
        *,
        name: str,
        metrics: Metrics | None = None,
        session_factory: SessionFactory = client_session,
        min_delay: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = name
        self._store = store
        self._metrics: WebhookMetrics | None = (
            metrics.webhook(name) if metrics is not None else None
        )
        self._session_factory = session_factory
        self._min_delay = min_delay
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._types = frozenset(config.events)
        self._url = safe_url(config.url)
        #: Last cursor the receiver acknowledged (or that was skipped as filtered out).
        self.position = 0
        #: Failed POSTs of the current batch; 0 after a success.
        self.failures = 0
        self.last_error: str | None = None
        self.delivered_events = 0

    def __repr__(self) -> str:
        return (f"<WebhookPusher {self.name} {self._url} position={self.position}"
                f" failures={self.failures}>")

    async def run(self) -> None:
        """Push forever. Returns only if the store is closed (the daemon is stopping)."""
        try:
            await self._run()
        except StoreClosedError:
            log.info("webhook %s: store closed; stopping at cursor %d", self.name, self.position)

    async def _run(self) -> None:
        self.position = await self._store.get_webhook_position(self.name)
        log.info("webhook %s: pushing %s to %s from cursor %d", self.name,
                 ",".join(sorted(self._types)), self._url, self.position)
        context = await self._tls_context()
        async with self._session_factory(context) as session:
            while not self._store.closed:
                events = await self._store.events_after(
                    self.position, max(READ_LIMIT, self.config.batch_size))
                if not events:
                    await self._store.wait_for_events(self.position, IDLE_WAIT)
                    continue
                batch, upto = self._take_batch(events)
                if batch:
                    await self._deliver(session, batch)
                self.position = upto
                # The disk may refuse writes (the daemon says so): go on from memory; the next
                # position that can be written covers this one. A restart before then resends
                # these batches (at-least-once; receivers dedupe by cursor).
                with contextlib.suppress(StoreWriteError):
                    await self._store.set_webhook_position(self.name, upto)

    async def _tls_context(self) -> ssl.SSLContext | None:
        """The SSLContext of an https:// webhook (None for http://). While its files cannot
        be loaded, each try counts as a failed POST (reason tls) and waits as one does."""
        if urlsplit(self.config.url).scheme != "https":
            return None
        settings = tls_settings(self.config)
        while True:
            try:
                return await asyncio.to_thread(client_context, settings)
            except TlsError as exc:
                self.last_error = f"TLS: {exc}"
                await self._failed("tls", f"TLS for {self._url} cannot be set up")

    async def _failed(self, reason: str, what: str) -> None:
        """One more failed try: counted, logged with the delay, waited out."""
        self.failures += 1
        if self._metrics is not None:
            self._metrics.failed(reason)
        delay = webhook_retry_delay(self.failures, min_delay=self._min_delay,
                                    max_delay=self.config.max_delay, rng=self._rng)
        log.warning("webhook %s: %s (%s), try %d; next in %.1f s", self.name, what,
                    self.last_error, self.failures, delay)
        await self._sleep(delay)

    def _take_batch(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        """Up to batch_size wanted events, and the cursor up to which every read event is
        either in the batch or filtered out (so the position also moves past skipped ones)."""
        batch: list[Event] = []
        upto = self.position
        for event in events:
            if event.type in self._types:
                if len(batch) == self.config.batch_size:
                    break
                batch.append(event)
            upto = event.cursor
        return batch, upto

    async def _deliver(self, session: aiohttp.ClientSession, batch: Sequence[Event]) -> None:
        """POST the batch until a 2xx; the same body every time, so a receiver that saw an
        earlier try can recognise it. Only this pusher waits: nothing else is blocked."""
        body = encode_events(batch)
        while True:
            reason = await self._post(session, body)
            if reason is None:
                if self.failures:
                    log.info("webhook %s: delivered after %d failed tries", self.name,
                             self.failures)
                self.failures = 0
                self.last_error = None
                self.delivered_events += len(batch)
                if self._metrics is not None:
                    self._metrics.delivered(len(batch))
                return
            await self._failed(reason, f"POST {self._url} failed")

    def _headers(self, body: bytes) -> dict[str, str]:
        config = self.config
        timestamp = str(int(self._wall_clock()))
        # The configured ones first: none of them is one of ours (config.py refuses those).
        headers = dict(config.headers)
        headers.update({
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp,
        })
        if config.auth == "basic" and config.username is not None and config.password is not None:
            # RFC 7617 with UTF-8; built here since aiohttp.BasicAuth is deprecated.
            pair = f"{config.username}:{config.password.reveal()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif config.auth == "bearer" and config.token is not None:
            headers["Authorization"] = f"Bearer {config.token.reveal()}"
        if config.hmac_secret is not None:
            # Over "<timestamp>.<body>": the receiver checks the timestamp is recent, so a
            # captured POST replayed later fails (README: verifying webhook signatures).
            signed = timestamp.encode("ascii") + b"." + body
            digest = hmac.new(config.hmac_secret.reveal().encode(), signed, hashlib.sha256)
            headers[SIGNATURE_HEADER] = f"sha256={digest.hexdigest()}"
        return headers

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> str | None:
        """One POST; None on 2xx, else the failure reason (a WEBHOOK_FAILURE_REASONS word),
        with ``last_error`` set to a line fit for logs (no URL credentials, no body)."""
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with session.post(
                self.config.url, data=body, headers=self._headers(body), timeout=timeout,
                # A redirect could carry the Authorization header somewhere else: refuse.
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return None
                self.last_error = f"HTTP {response.status}"
                return "http_status"
        except TimeoutError:
            self.last_error = f"no answer within {self.config.timeout:g} s"
            return "timeout"
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            self.last_error = f"TLS: {type(exc).__name__}"
            return "tls"
        except aiohttp.ClientConnectorError as exc:
            self.last_error = f"connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
            return "connect"
        except (aiohttp.ClientError, OSError) as exc:
            self.last_error = type(exc).__name__
            return "other"
