"""Webhook push against a real aiohttp receiver on 127.0.0.1:0 and a real Store: batches in
commit order, basic/bearer auth, the HMAC header, retry of the same batch after a failure with
the position moved only by a 2xx, type filtering, and resuming from the stored position.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from smppgw.config import Secret, WebhookConfig
from smppgw.metrics import Metrics
from smppgw.services.events_json import event_json
from smppgw.services.webhooks import WebhookPusher, safe_url
from smppgw.store import MoMessage, NewMessage, NewSegment, SqliteStore, Store, StoreWriteError

pytestmark = pytest.mark.timeout(30)

_ids = itertools.count(1)


class IdleStore(SqliteStore):
    """A Store that reports each cursor a pusher goes idle at (wait_for_events), so tests wait
    for "caught up to cursor N" instead of sleeping."""

    idle_at: asyncio.Queue[int]

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        self.idle_at.put_nowait(after)
        return await super().wait_for_events(after, timeout)

    async def until_idle_at(self, cursor: int) -> None:
        while await self.idle_at.get() != cursor:
            pass


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IdleStore]:
    s = cast(IdleStore, await IdleStore.open(tmp_path / "state"))
    s.idle_at = asyncio.Queue()
    yield s
    await s.close()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(json.loads(self.body)["events"])


@dataclass
class Receiver:
    """The webhook endpoint: records every POST and answers the next scripted status (200 once
    the script is used up)."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hang: asyncio.Event | None = None   # the first POST waits on it (set at teardown)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        if self.hang is not None and len(self.received) == 1:
            await self.hang.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    r.url = f"http://{host}:{port}/hook"
    yield r
    if r.hang is not None:
        r.hang.set()
    await runner.cleanup()


def new_message() -> NewMessage:
    n = next(_ids)
    return NewMessage(tracking_id=f"{n:032x}", provider="acme", source="Acme",
                      destination=f"5511{n:09d}", text=f"message {n}",
                      segments=(NewSegment(b"hi"),), client_id=f"c-{n}")


async def add_state_events(store: Store, count: int) -> None:
    await store.accept_messages([new_message() for _ in range(count)])


async def add_mo(store: Store, text: str = "STOP") -> int:
    record = await store.record_mo_message(MoMessage("acme", "5511988887777", "12345", text))
    return record.cursor


@dataclass
class Sleeps:
    """An injected sleep: records each delay and lets a test look at the world mid-retry."""

    delays: list[float] = field(default_factory=list)
    during: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.during is not None:
            await self.during()
        await asyncio.sleep(0)


async def push_until_idle(pusher: WebhookPusher, store: IdleStore, cursor: int) -> None:
    """Run the pusher until it has caught up to ``cursor``, then stop it (as the daemon does)."""
    async with asyncio.timeout(10):
        task = asyncio.ensure_future(pusher.run())
        try:
            await store.until_idle_at(cursor)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


# --- batching, order and shape ---------------------------------------------------------------


async def test_events_go_out_in_batches_in_commit_order(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 5)
    mo_cursor = await add_mo(store)
    pusher = WebhookPusher(WebhookConfig(url=receiver.url, batch_size=2), store, name="w0")
    await push_until_idle(pusher, store, mo_cursor)

    assert [len(r.events) for r in receiver.received] == [2, 2, 2]
    cursors = [e["cursor"] for r in receiver.received for e in r.events]
    assert cursors == sorted(cursors) and cursors[-1] == mo_cursor and len(set(cursors)) == 6
    expected = [event_json(e) for e in await store.events_after(0)]
    assert [e for r in receiver.received for e in r.events] == expected
    mo = receiver.received[-1].events[-1]
    assert (mo["type"], mo["from"], mo["to"], mo["text"], mo["provider"]) == (
        "mo", "5511988887777", "12345", "STOP", "acme")
    headers = receiver.received[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Smppgw-Timestamp"].isdigit()
    assert "Authorization" not in headers and "X-Smppgw-Signature" not in headers
    assert await store.get_webhook_position("w0") == mo_cursor
    assert pusher.position == mo_cursor


async def test_a_new_pusher_resumes_from_the_stored_position(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 2)
    config = WebhookConfig(url=receiver.url)
    await push_until_idle(WebhookPusher(config, store, name="w0"), store, 2)
    await add_state_events(store, 1)
    await push_until_idle(WebhookPusher(config, store, name="w0"), store, 3)
    assert [[e["cursor"] for e in r.events] for r in receiver.received] == [[1, 2], [3]]


# --- auth and signature ----------------------------------------------------------------------


async def test_basic_auth(store: IdleStore, receiver: Receiver) -> None:
    await add_state_events(store, 1)
    config = WebhookConfig(url=receiver.url, auth="basic", username="acme",
                           password=Secret("s3cr:et"))
    await push_until_idle(WebhookPusher(config, store, name="w"), store, 1)
    scheme, _, encoded = receiver.received[0].headers["Authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", "acme:s3cr:et")


async def test_bearer_auth(store: IdleStore, receiver: Receiver) -> None:
    await add_state_events(store, 1)
    config = WebhookConfig(url=receiver.url, auth="bearer", token=Secret("tok-123"))
    await push_until_idle(WebhookPusher(config, store, name="w"), store, 1)
    assert receiver.received[0].headers["Authorization"] == "Bearer tok-123"


async def test_hmac_signature_covers_the_timestamp_and_the_exact_body(
    store: IdleStore, receiver: Receiver,
) -> None:
    """X-Smppgw-Signature is HMAC-SHA256 over "<X-Smppgw-Timestamp>.<body>": a captured POST
    replayed later, with a fresh timestamp, no longer verifies; nor does a changed body."""
    await add_state_events(store, 3)
    config = WebhookConfig(url=receiver.url, hmac_secret=Secret("shared-key"))
    pusher = WebhookPusher(config, store, name="w", wall_clock=lambda: 1_800_000_000.5)
    await push_until_idle(pusher, store, 3)
    (got,) = receiver.received
    timestamp = got.headers["X-Smppgw-Timestamp"]
    assert timestamp == "1800000000"
    signed = timestamp.encode() + b"." + got.body
    expected = hmac.new(b"shared-key", signed, hashlib.sha256).hexdigest()
    assert got.headers["X-Smppgw-Signature"] == f"sha256={expected}"
    replayed = b"1800000600." + got.body  # the same body, ten minutes later
    assert hmac.new(b"shared-key", replayed, hashlib.sha256).hexdigest() != expected
    tampered = timestamp.encode() + b"." + got.body.replace(b"queued", b"delivered")
    assert hmac.new(b"shared-key", tampered, hashlib.sha256).hexdigest() != expected


def readme_recipe() -> dict[str, Any]:
    """The verification snippet from README.md, run as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Verifying webhook signatures"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    namespace: dict[str, Any] = {}
    exec(code[:code.index("```")], namespace)  # our own README, run as written
    return namespace


async def test_the_readme_recipe_accepts_a_fresh_post_and_refuses_a_replay(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 1)
    config = WebhookConfig(url=receiver.url, hmac_secret=Secret("shared-key"))
    pusher = WebhookPusher(config, store, name="w", wall_clock=lambda: 1_800_000_000.0)
    await push_until_idle(pusher, store, 1)
    (got,) = receiver.received
    verify = readme_recipe()["verify"]
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert verify(b"shared-key", headers, got.body, now=1_800_000_010.0)
    assert not verify(b"shared-key", headers, got.body, now=1_800_000_000.0 + 301)  # replayed
    assert not verify(b"other-key", headers, got.body, now=1_800_000_010.0)
    assert not verify(b"shared-key", headers, got.body + b" ", now=1_800_000_010.0)
    forged = {**headers, "x-smppgw-timestamp": "1800000290"}  # a fresh time on an old POST
    assert not verify(b"shared-key", forged, got.body, now=1_800_000_300.0)


# --- failures and retries --------------------------------------------------------------------


async def test_a_position_the_disk_refuses_is_kept_in_memory_and_pushing_goes_on(
    store: IdleStore, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk must not stop a webhook: the batches go on from the position in memory;
    the stored position catches up at the first write the disk takes."""
    real_set = store.set_webhook_position
    refusing = True

    async def set_position(name: str, cursor: int) -> None:
        if refusing:
            raise StoreWriteError("disk_full", "database or disk is full")
        await real_set(name, cursor)

    monkeypatch.setattr(store, "set_webhook_position", set_position)
    await add_state_events(store, 1)
    config = WebhookConfig(url=receiver.url)
    pusher = WebhookPusher(config, store, name="w0")
    task = asyncio.ensure_future(pusher.run())
    try:
        async with asyncio.timeout(10):
            await store.until_idle_at(1)
            await add_state_events(store, 1)
            await store.until_idle_at(2)
            assert await store.get_webhook_position("w0") == 0
            refusing = False
            await add_state_events(store, 1)
            await store.until_idle_at(3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [[e["cursor"] for e in r.events] for r in receiver.received] == [[1], [2], [3]]
    assert await store.get_webhook_position("w0") == 3


async def test_a_failed_post_is_retried_and_only_a_2xx_moves_the_position(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 2)
    receiver.statuses = [500, 503]
    positions: list[int] = []

    async def look() -> None:
        positions.append(await store.get_webhook_position("w"))

    sleeps = Sleeps(during=look)
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    pusher = WebhookPusher(WebhookConfig(url=receiver.url, max_delay=0.05), store, name="w",
                           metrics=metrics, min_delay=0.001, sleep=sleeps,
                           rng=random.Random(7))
    await push_until_idle(pusher, store, 2)

    assert len(receiver.received) == 3
    assert receiver.received[0].body == receiver.received[1].body == receiver.received[2].body
    assert positions == [0, 0]   # still 0 while retrying
    assert await store.get_webhook_position("w") == 2
    # Growing delays: ×10 per try (±10 % jitter), never above max_delay.
    assert 0.0009 <= sleeps.delays[0] <= 0.0011
    assert 0.009 <= sleeps.delays[1] <= 0.011
    assert pusher.failures == 0 and pusher.last_error is None
    text = metrics.exposition().decode()
    assert 'smppgw_webhook_failures_total{reason="http_status",webhook="w"} 2.0' in text
    assert 'smppgw_webhook_deliveries_total{webhook="w"} 1.0' in text
    assert 'smppgw_webhook_events_total{webhook="w"} 2.0' in text


async def test_a_timeout_is_a_failure_and_the_batch_is_sent_again(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 1)
    receiver.hang = asyncio.Event()   # the first POST never gets an answer
    sleeps = Sleeps()
    pusher = WebhookPusher(WebhookConfig(url=receiver.url, timeout=0.2), store, name="w",
                           min_delay=0.001, sleep=sleeps)
    await push_until_idle(pusher, store, 1)
    assert len(receiver.received) == 2 and len(sleeps.delays) == 1
    assert await store.get_webhook_position("w") == 1


async def test_an_unreachable_receiver_is_retried_and_the_log_hides_credentials(
    store: IdleStore, caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await add_state_events(store, 1)
    url = f"http://127.0.0.1:{port}/hook?key=QUERY-SECRET"
    config = WebhookConfig(url=url, auth="bearer", token=Secret("TOKEN-SECRET"))
    stop = asyncio.Event()
    sleeps = Sleeps()

    async def after_two_failures() -> None:
        if len(sleeps.delays) == 2:
            stop.set()
            await asyncio.Event().wait()   # parked until cancelled

    sleeps.during = after_two_failures
    pusher = WebhookPusher(config, store, name="w", min_delay=0.001, sleep=sleeps)
    caplog.set_level(logging.DEBUG)
    async with asyncio.timeout(10):
        task = asyncio.ensure_future(pusher.run())
        await stop.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert pusher.failures == 2 and pusher.last_error is not None
    assert pusher.last_error.startswith("connect")
    assert await store.get_webhook_position("w") == 0
    assert f"http://127.0.0.1:{port}/hook" in caplog.text
    for secret in ("QUERY-SECRET", "TOKEN-SECRET"):
        assert secret not in caplog.text and secret not in repr(pusher)


# --- filtering -------------------------------------------------------------------------------


async def test_only_configured_event_types_are_sent_and_skipped_ones_advance_the_position(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 2)
    mo_cursor = await add_mo(store, "first")
    await add_state_events(store, 3)   # trailing events nobody wants
    pusher = WebhookPusher(WebhookConfig(url=receiver.url, events=("mo",)), store, name="mo")
    await push_until_idle(pusher, store, mo_cursor + 3)
    (got,) = receiver.received
    assert [(e["type"], e["cursor"], e["text"]) for e in got.events] == [
        ("mo", mo_cursor, "first")]
    assert await store.get_webhook_position("mo") == mo_cursor + 3


async def test_nothing_wanted_means_no_post_but_the_position_moves(
    store: IdleStore, receiver: Receiver,
) -> None:
    await add_state_events(store, 4)
    pusher = WebhookPusher(WebhookConfig(url=receiver.url, events=("receipt",)), store,
                           name="r")
    await push_until_idle(pusher, store, 4)
    assert receiver.received == []
    assert await store.get_webhook_position("r") == 4


# --- pure helpers ----------------------------------------------------------------------------


def test_safe_url_drops_userinfo_and_query() -> None:
    assert safe_url("https://user:pw@hooks.example.com:8443/p/x?token=abc#f") == (
        "https://hooks.example.com:8443/p/x")
    assert safe_url("http://[::1]/h") == "http://[::1]/h"


# --- TLS, client certificates and custom headers (what Wiraya's callbacks allow) ---------------


@dataclass
class TlsReceiver(Receiver):
    """An HTTPS receiver on a self-signed certificate (Wiraya permits those), optionally
    asking for a client certificate signed by ``client_ca``."""

    server: Any = None
    client: Any = None


async def tls_receiver(tmp_path: Path, *, client_ca: Path | None = None) -> tuple[
        TlsReceiver, web.AppRunner]:
    from smppgw.net.certs import generate_self_signed

    r = TlsReceiver()
    r.server = generate_self_signed(tmp_path / "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(r.server.cert, r.server.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    r.url = f"https://localhost:{runner.addresses[0][1]}/hook"
    return r, runner


async def test_a_self_signed_receiver_is_verified_with_its_ca_file_and_gets_custom_headers(
    store: IdleStore, tmp_path: Path,
) -> None:
    receiver, runner = await tls_receiver(tmp_path)
    try:
        await add_state_events(store, 1)
        config = WebhookConfig(url=receiver.url, ca_file=receiver.server.ca,
                               headers=(("X-ApiKey", "wiraya-key-1"), ("X-Tenant", "acme")))
        await push_until_idle(WebhookPusher(config, store, name="w"), store, 1)
    finally:
        await runner.cleanup()
    (got,) = receiver.received
    assert (got.headers["X-ApiKey"], got.headers["X-Tenant"]) == ("wiraya-key-1", "acme")
    assert got.headers["Content-Type"] == "application/json"


async def test_without_its_ca_a_self_signed_receiver_fails_verification_unless_told_not_to(
    store: IdleStore, tmp_path: Path,
) -> None:
    receiver, runner = await tls_receiver(tmp_path)
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    try:
        await add_state_events(store, 1)
        failed = asyncio.Event()

        async def stop_after_first_failure(_: float) -> None:
            failed.set()
            await asyncio.Event().wait()   # the pusher waits here until cancelled

        pusher = WebhookPusher(WebhookConfig(url=receiver.url), store, name="w",
                               metrics=metrics, sleep=stop_after_first_failure)
        task = asyncio.ensure_future(pusher.run())
        async with asyncio.timeout(10):
            await failed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pusher.last_error is not None and pusher.last_error.startswith("TLS:")
        assert metrics.registry.get_sample_value(
            "smppgw_webhook_failures_total", {"webhook": "w", "reason": "tls"}) == 1
        assert receiver.received == []
        # tls_verify = false (which check-config warns about) takes any certificate.
        insecure = WebhookConfig(url=receiver.url, tls_verify=False)
        await push_until_idle(WebhookPusher(insecure, store, name="w2"), store, 1)
    finally:
        await runner.cleanup()
    assert len(receiver.received) == 1


async def test_a_receiver_that_asks_for_a_client_certificate_gets_ours(
    store: IdleStore, tmp_path: Path,
) -> None:
    from smppgw.net.certs import generate_ca_and_leaf

    client = generate_ca_and_leaf(tmp_path / "client", prefix="client")
    receiver, runner = await tls_receiver(tmp_path, client_ca=client.ca)
    try:
        await add_state_events(store, 1)
        config = WebhookConfig(url=receiver.url, ca_file=receiver.server.ca,
                               client_cert=client.cert, client_key=client.key)
        await push_until_idle(WebhookPusher(config, store, name="w"), store, 1)
    finally:
        await runner.cleanup()
    assert len(receiver.received) == 1


async def test_a_ca_file_that_cannot_be_read_is_a_failed_try_not_a_dead_pusher(
    store: IdleStore, tmp_path: Path, receiver: Receiver,
) -> None:
    """The file is read when the pusher starts; while it cannot be loaded each try fails with
    reason tls and the pusher waits and tries again, as after a failed POST."""
    broken = tmp_path / "ca.pem"
    broken.write_text("not a certificate")
    sleeps = Sleeps()
    tried_twice = asyncio.Event()

    async def count() -> None:
        if len(sleeps.delays) == 2:
            tried_twice.set()

    sleeps.during = count
    await add_state_events(store, 1)
    config = WebhookConfig(url=receiver.url.replace("http://", "https://"), ca_file=broken)
    pusher = WebhookPusher(config, store, name="w", sleep=sleeps)
    task = asyncio.ensure_future(pusher.run())
    async with asyncio.timeout(10):
        await tried_twice.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pusher.failures == 2 and receiver.received == []
    assert pusher.last_error is not None
    assert pusher.last_error.startswith(f"TLS: cannot load ca_file {broken}")
