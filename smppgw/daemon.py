"""The composition root: builds everything from a Config, owns the tasks, signals and shutdown.

Every task has one owner: ``Daemon.run`` holds ONE asyncio.TaskGroup, and everything the
daemon starts (the receiver, each provider's pool and dispatcher, housekeeping, webhooks, the
watchdog, a reload) is a task of that group; a provider's slots and workers are tasks of the
TaskGroups its pool and dispatcher own inside it. Nothing is created bare, nothing is gathered
and dropped.

Start order: store (recovered, its lock held) → receiver → metrics → API listening → pools
and dispatchers, housekeeping and retention → READY=1: every local resource a second instance
could share is taken before any SMSC connection, so such an instance fails without binding.
Stop order (SIGTERM): from that instant no bind connects or binds again (``request_stop``) →
stop accepting (API) → stop dispatching → pools drain and unbind → receiver drained → the
group's tasks end → store flushed and closed. SIGHUP reloads the config, adding and removing
binds and providers while binds whose settings did not change stay connected.

Supervision: each long-running worker (receiver, each dispatcher, housekeeping, retention,
each webhook) runs under ``_supervise``. A fault that escapes it is logged with its
traceback, counted in smppgw_worker_failures_total and the worker started again after a
growing delay
(flow.policy.RestartPolicy); any other task of the group is contained the same way, without
the restart. Nothing a peer sends, a client posts or a message holds stops the daemon. Only
losing the store does (its writer stopped): then one line says so and the daemon exits 1.

A store that refuses writes (a full disk, an I/O error, a database out of reach) is an outage
the daemon waits out: every writer retries by itself or answers a transient error,
``_on_store_health`` keeps the metrics and one log line (then a summary per period) saying why,
and housekeeping probes the store every few seconds so the daemon notices by itself when it
takes writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from smppgw.config import Config, GatewayConfig, ProviderConfig, load_config
from smppgw.errors import ConfigError
from smppgw.flow.inbound import StaleReceiptWatch
from smppgw.flow.policy import RestartPolicy
from smppgw.logs import RepeatedLog, set_log_level
from smppgw.metrics import Metrics, MetricsServer, start_metrics_server
from smppgw.pool.pool import BindPool
from smppgw.services.control import QueueControl
from smppgw.services.dispatcher import Dispatcher
from smppgw.services.failover import move_queued
from smppgw.services.receiver import Receiver
from smppgw.services.submission import SubmitService
from smppgw.store import Store, StoreClosedError, StoreError, WriteFailure
from smppgw.store.encoding import iso, ms
from smppgw.store.factory import open_store
from smppgw.store.retention import Retention
from smppgw.systemd import Notifier, listen_fds, watchdog_interval

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 5.0  # seconds: expiry, queue gauges, STATUS=, the disk probe
SHUTDOWN_TIMEOUT = 10.0  # seconds for the binds to drain and unbind
STORE_LOG_INTERVAL = 30.0  # seconds between two "the store still cannot write" lines
STALE_RECEIPT_LOG_INTERVAL = 600.0  # seconds between two lines on one provider's stale receipts


class _ProviderRuntime:
    """One provider's pool and dispatcher, run by one task of the daemon's group (``task``),
    which owns a TaskGroup of the two."""

    def __init__(self, config: ProviderConfig, pool: BindPool, dispatcher: Dispatcher) -> None:
        self.config = config
        self.pool = pool
        self.dispatcher = dispatcher
        self.task: asyncio.Task[None] | None = None

    async def run(self, supervise: Callable[[str, str, Callable[[], Awaitable[None]]],
                                            Coroutine[Any, Any, None]]) -> None:
        name = self.config.name
        async with asyncio.TaskGroup() as group:
            group.create_task(self.pool.run(), name=f"pool {name}")
            group.create_task(supervise(f"dispatcher {name}", "dispatcher", self.dispatcher.run),
                              name=f"dispatcher {name}")

    async def stop(self, timeout: float) -> None:
        """Graceful: claim nothing more, let the binds drain their windows and unbind, record
        every answer that came back meanwhile, then end the task. Parts answered during the
        drain are not sent again after a restart or a reload."""
        self.dispatcher.stop_claiming()
        await self.pool.close(timeout)
        await self.dispatcher.finish(timeout)
        task = self.task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


#: [gateway] keys a reload applies; the others (listeners, paths, limits) need a restart.
RELOADABLE_GATEWAY_KEYS = frozenset({"default_provider", "log_level",
                                     "unmatched_receipt_after"})


def _apply_at_reload(running: Config, loaded: Config) -> tuple[Config, list[str]]:
    """The config a reload runs with: providers and routes from ``loaded``, and of [gateway],
    [store] and the webhooks only what can change without a restart. Also the key paths that
    changed but wait for the restart, so the operator is told rather than left to believe them
    live."""
    gateway = dataclasses.replace(running.gateway, **{
        key: getattr(loaded.gateway, key) for key in RELOADABLE_GATEWAY_KEYS})
    deferred = [f"gateway.{field.name}" for field in dataclasses.fields(GatewayConfig)
                if getattr(gateway, field.name) != getattr(loaded.gateway, field.name)]
    if loaded.webhooks != running.webhooks:
        deferred.append("webhook")
    deferred += [f"store.{field.name}" for field in dataclasses.fields(type(running.store))
                 if getattr(running.store, field.name) != getattr(loaded.store, field.name)]
    return dataclasses.replace(loaded, gateway=gateway, webhooks=running.webhooks,
                               store=running.store), deferred


class Daemon:
    """The running gateway. ``await daemon.run()`` until ``daemon.request_stop()``."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        registry: CollectorRegistry | None = None,
        notifier: Notifier | None = None,
        install_signal_handlers: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.metrics = Metrics(registry or CollectorRegistry())
        self.notifier = notifier or Notifier()
        self.install_signal_handlers = install_signal_handlers
        self.wall_clock = wall_clock
        self.store: Store | None = None
        self.submit_service: SubmitService | None = None
        self.inbound: Receiver | None = None
        self.control: QueueControl | None = None
        self.providers: dict[str, _ProviderRuntime] = {}
        self.api_server: object | None = None
        self.metrics_server: MetricsServer | None = None
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._store_log: RepeatedLog  # made in _start, on the running loop
        self._store_outage: WriteFailure | None = None
        self._stale_receipts = StaleReceiptWatch(STALE_RECEIPT_LOG_INTERVAL)
        self.last_reload_error: str | None = None
        #: Why the daemon stopped on its own (its store stopped); None after a requested stop.
        self.failure: BaseException | None = None
        self.started_at = wall_clock()

    def __repr__(self) -> str:
        binds = sum(r.pool.bound_count for r in self.providers.values())
        return f"<Daemon providers={len(self.providers)} bound={binds}>"

    # --- lifecycle ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop (SIGTERM, SIGINT, a test). From this instant no bind connects or binds again;
        the ordered stop follows in ``run``."""
        for runtime in self.providers.values():
            runtime.pool.stop_linking()
        self._stop.set()

    async def run(self) -> None:
        """Start everything, serve until asked to stop, then stop in order. Every task the
        daemon starts belongs to this call's TaskGroup; a failure to start is raised as is,
        once everything started is stopped."""
        failure: Exception | None = None
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                await self._start()
                await self._stop.wait()
            except Exception as exc:
                failure = exc
            finally:
                await self._shutdown()
        self._group = None
        if failure is not None:
            raise failure

    async def _start(self) -> None:
        gateway = self.config.gateway
        store_config = self.config.store
        self._store_log = RepeatedLog(asyncio.get_running_loop(), STORE_LOG_INTERVAL,
                                      self._store_still_failing)
        self.store = store = await open_store(
            gateway.state_dir, url=store_config.url,
            password=store_config.password.reveal() if store_config.password else None,
            clock=self.wall_clock, on_commit=self.metrics.store_commit,
            on_write_health=self._on_store_health)
        self.metrics.track_store(lambda: store.write_failure is None)
        report = await store.recover()
        adopted = await store.adopt_accounts(
            {provider.name: provider.account for provider in self.config.providers})
        if adopted:
            log.info("receipts now matched per SMSC account: parts and parked receipts "
                     "from before took their provider's account", extra={"kv": {
                         "rows": adopted}})
        self.inbound = Receiver(
            store, lambda: {name: r.config for name, r in self.providers.items()},
            metrics=self.metrics,
        )
        # Before its first expiry pass: groups left incomplete by the previous run time out
        # from their first part's arrival, as if it had run all along.
        self.inbound.resume_incomplete(report.incomplete_mo_groups,
                                       asyncio.get_running_loop().time(), self.wall_clock())
        self.submit_service = SubmitService(
            self.config, store, down_since=self._down_since, on_accepted=self._wake_dispatchers,
            wall_clock=self.wall_clock,
        )
        self.control = QueueControl(
            store, self.submit_service, metrics=self.metrics,
            providers=lambda: {p.name: p for p in self.config.providers},
            holders=lambda: {name: r.dispatcher for name, r in self.providers.items()})
        await self.control.load()
        self._spawn(self._watch_store(store), "store watch")
        self._spawn(self._supervise("inbound", "inbound", self.inbound.run), "inbound")
        if report.complete_mo_groups:
            await self.inbound.deliver_recovered(report.complete_mo_groups)
        if gateway.metrics_listen is not None:
            self.metrics_server = await start_metrics_server(
                self.metrics, gateway.metrics_listen.host, gateway.metrics_listen.port
            )
        # Messages the API accepts before the dispatchers run stay queued in the store; each
        # dispatcher claims them when it starts.
        self.api_server = await self._start_api()
        for provider in self.config.providers:
            self._start_provider(provider)
        self._spawn(self._supervise("housekeeping", "housekeeping", self._housekeeping),
                    "housekeeping")
        retention = Retention(
            store, store_config.keep_days * 86_400, clock=self.wall_clock,
            on_purged=lambda purged: self.metrics.store_purge(dataclasses.asdict(purged)))
        self._spawn(self._supervise("retention", "housekeeping", retention.run), "retention")
        for webhook_index, webhook in enumerate(self.config.webhooks):
            name = f"webhook{webhook_index}"
            self._spawn(self._supervise(
                name, "webhook", functools.partial(self._run_webhook, webhook, name)),
                f"webhook {webhook_index}")
        interval = watchdog_interval()
        if interval:
            self._spawn(self._watchdog(interval, store), "watchdog")
        if self.install_signal_handlers:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self.notifier.ready()
        self.notifier.status(self.status_line())
        self.ready.set()
        log.info("smppgw ready", extra={"kv": {
            "providers": len(self.providers), "socket": str(gateway.submit_socket),
            "requeued": report.requeued_segments, "queued": report.queued_segments}})

    async def _start_api(self) -> object:
        from smppgw.api.app import create_app, start_api

        assert self.submit_service is not None and self.store is not None
        app = create_app(submit=self.submit_service, store=self.store, status=self.status,
                         gateway=self.config.gateway, metrics=self.metrics,
                         control=self.control)
        inherited = listen_fds()
        return await start_api(app, gateway=self.config.gateway,
                               inherited_socket=inherited[0] if inherited else None)

    async def _run_webhook(self, webhook: object, name: str) -> None:
        from smppgw.services.webhooks import WebhookPusher

        assert self.store is not None
        pusher = WebhookPusher(webhook, self.store, name=name, metrics=self.metrics)  # type: ignore[arg-type]
        await pusher.run()

    async def _shutdown(self) -> None:
        self.notifier.stopping("stopping: draining binds")
        if self.install_signal_handlers:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        api = self.api_server
        if api is not None:
            with contextlib.suppress(Exception):
                await api.close()  # type: ignore[attr-defined]
        # Stop dispatching and unbind every provider, in parallel, bounded.
        async with asyncio.TaskGroup() as stopping:
            for name, runtime in self.providers.items():
                stopping.create_task(self._contained(f"stop {name}", "other",
                                                     runtime.stop(SHUTDOWN_TIMEOUT)))
        if self.inbound is not None:
            await self._contained("drain inbound", "inbound", self.inbound.drain())
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.metrics_server is not None:
            await self.metrics_server.close()
        if self.store is not None:
            await self.store.close()
            self._store_log.close()
        self.stopped.set()
        if self.ready.is_set():  # a start that failed has its one line from the caller
            log.info("smppgw stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task of the daemon's group, contained: a fault in it is logged and counted and
        ends only that task (a reload, the watchdog); the long-running workers are in
        ``_supervise`` besides, which starts them again."""
        assert self._group is not None
        task = self._group.create_task(self._contained(name, "other", coro), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _contained(self, name: str, worker: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as exc:
            self.metrics.worker_failure(worker)
            log.error("task failed", exc_info=exc, extra={"kv": {"task": name}})

    async def _supervise(
        self, name: str, worker: str, run: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``run()`` until it returns or the daemon cancels it; after a fault, start it
        again (RestartPolicy). ``worker`` is the metric label, ``name`` the log's."""
        loop = asyncio.get_running_loop()
        policy = RestartPolicy()
        while True:
            started = loop.time()
            try:
                await run()
                return
            except Exception as exc:
                if self.store is not None and self.store.closed:
                    return  # the store stopped: _watch_store says so and stops the daemon
                delay = policy.after_failure(loop.time() - started)
                self.metrics.worker_failure(worker)
                log.error("worker failed; starting it again", exc_info=exc, extra={"kv": {
                    "worker": worker, "name": name, "restart_in": f"{delay:.0f}s",
                    "failures_in_a_row": policy.failures_in_a_row}})
                await asyncio.sleep(delay)

    def _on_store_health(self, failure: WriteFailure | None) -> None:
        """The store refused a write (``failure``: a full disk, an I/O error, the database out
        of reach), or takes writes again (None)."""
        if failure is None:
            self._store_log.end()
            outage = self._store_outage
            self._store_outage = None
            log.warning("the store writes again", extra={"kv": {
                "outage": f"{self.wall_clock() - outage.since_wall:.0f}s" if outage else "-",
                "refused": outage.refused if outage else 0}})
            return
        self._store_outage = failure
        self.metrics.store_write_refused(failure.reason)
        if self._store_log.note():
            log.error("the store cannot write; waiting until it can", extra={"kv": {
                "reason": failure.reason, "store": self.store.location if self.store else "-",
                "detail": failure.detail}})

    def _store_still_failing(self, refused: int, period: float) -> None:
        outage = self._store_outage
        log.error("the store still cannot write", extra={"kv": {
            "reason": outage.reason if outage else "-", "refused": refused,
            "period": f"{period:.0f}s"}})

    async def _watch_store(self, store: Store) -> None:
        """The one fault the daemon cannot work around: its store stopped while it runs."""
        fault = await store.wait_stopped()
        if self._stop.is_set():
            return  # stopping anyway: the store is closed last
        reason = repr(fault) if fault is not None else "its writer thread ended"
        self.failure = StoreClosedError(f"the store stopped: {reason}")
        log.critical("the store stopped; smppgw cannot work without it and stops", extra={
            "kv": {"store": store.location, "reason": reason}})
        self.request_stop()

    # --- providers ----------------------------------------------------------------------------

    def _start_provider(self, provider: ProviderConfig) -> None:
        assert self.store is not None and self.inbound is not None
        pool = BindPool(provider, self.inbound.submit, metrics=self.metrics)
        dispatcher = Dispatcher(provider, self.store, pool, wall_clock=self.wall_clock,
                                metrics=self.metrics)
        if self.control is not None:
            dispatcher.set_paused(provider.name in self.control.paused)
        runtime = _ProviderRuntime(provider, pool, dispatcher)
        runtime.task = self._spawn(runtime.run(self._supervise), f"provider {provider.name}")
        self.providers[provider.name] = runtime

    async def _stop_provider(self, name: str, reason: str) -> None:
        """Stop one provider while the daemon runs on: what its stopped dispatcher could not
        record (answers still missing after the drain) is queued again, as at a restart."""
        assert self.store is not None
        await self.providers.pop(name).stop(SHUTDOWN_TIMEOUT)
        await self.store.requeue_sending(name, reason)

    def _down_since(self) -> dict[str, float]:
        """Since when each provider counts as down for failover: no bound bind, or refusing
        every submit for good (flow.failover.ProviderHealth)."""
        return {name: since for name, r in self.providers.items()
                if (since := r.pool.down_since) is not None}

    def _wake_dispatchers(self, providers: set[str]) -> None:
        for name in providers:
            runtime = self.providers.get(name)
            if runtime is not None:
                runtime.dispatcher.wake()

    # --- reload -------------------------------------------------------------------------------

    def _on_sighup(self) -> None:
        async def reload() -> None:
            await self.reload()

        self._spawn(reload(), "reload")

    async def reload(self, config: Config | None = None) -> bool:
        """Apply a new config (read from ``config_path`` when None). False if it was refused.

        A provider whose settings did not change keeps its pool, so its binds stay connected;
        one that changed only in its bind list keeps the binds it still has.
        """
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                if config is None:
                    if self.config_path is None:
                        raise ConfigError([])
                    config = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                self.last_reload_error = str(exc)
                log.error("reload refused: the new config has problems; keeping the old one",
                          extra={"kv": {"problems": str(exc)}})
                self.notifier.ready()
                return False
            config, deferred = _apply_at_reload(self.config, config)
            if deferred:
                log.warning("reload: these settings take effect only at a restart; the running"
                            " values stay", extra={"kv": {"keys": ",".join(deferred)}})
            if config.gateway.log_level != self.config.gateway.log_level:
                set_log_level(config.gateway.log_level)
            old = {p.name: p for p in self.config.providers}
            new = {p.name: p for p in config.providers}
            for name in old.keys() - new.keys():
                await self._stop_provider(name, "provider removed from the config")
                log.info("provider removed", extra={"kv": {"provider": name}})
            for name, provider in new.items():
                runtime = self.providers.get(name)
                if runtime is None:
                    self._start_provider(provider)
                    log.info("provider added", extra={"kv": {"provider": name}})
                elif runtime.config == provider:
                    # Its TLS files are read at every connect: a bind waiting out a bad
                    # one tries the file the operator may have fixed now, not in minutes.
                    runtime.pool.retry_now()
                    continue
                elif dataclasses.replace(runtime.config, bind_targets=provider.bind_targets) \
                        == provider:
                    await runtime.pool.update_targets(provider)
                    runtime.config = provider
                    runtime.dispatcher.provider = provider
                    log.info("provider binds changed", extra={"kv": {"provider": name}})
                else:
                    await self._stop_provider(name, "provider settings changed by a reload")
                    self._start_provider(provider)
                    log.info("provider settings changed; rebound", extra={"kv": {
                        "provider": name}})
            self.config = config
            assert self.submit_service is not None
            self.submit_service.reload(config)
            if self.control is not None:
                self.control.publish()
            self.last_reload_error = None
            self.notifier.ready()
            self.notifier.status(self.status_line())
            log.info("config reloaded")
            return True

    # --- observation --------------------------------------------------------------------------

    def status_line(self) -> str:
        parts = []
        paused = self.control.paused if self.control is not None else {}
        for name, runtime in self.providers.items():
            parts.append(f"{name} {runtime.pool.bound_count}/{len(runtime.pool.slots)} bound"
                         + (" (paused)" if name in paused else ""))
        return "; ".join(parts) or "no providers"

    async def status(self) -> dict[str, object]:
        """What `smppgw status` and GET /v1/status show."""
        assert self.store is not None
        queues = await self.store.queue_stats()
        counts = await self.store.counts()
        now_wall = self.wall_clock()
        unmatched = await self.store.unmatched_receipts(
            now_wall - self.config.gateway.unmatched_receipt_after)
        providers = []
        binds: list[dict[str, object]] = []
        paused = self.control.paused if self.control is not None else {}
        for name, runtime in self.providers.items():
            profile = runtime.config.profile
            pause = paused.get(name)
            providers.append({
                "name": name,
                "profile": profile.name,
                "account": runtime.config.account,
                "binds_configured": len(runtime.pool.slots),
                "binds_bound": runtime.pool.bound_count,
                "paused": pause is not None,
                "paused_since": iso(ms(pause.since_wall)) if pause is not None else None,
            })
            for bind in runtime.pool.status():
                entry = dataclasses.asdict(bind)
                # When a bind in backoff tries again, on the wall clock as well.
                entry["retry_at"] = (_iso(self.wall_clock() + bind.retry_in)
                                     if bind.retry_in is not None else None)
                binds.append(entry)
        return {
            "version": _version(),
            "started_at": _iso(self.started_at),
            "uptime_seconds": round(self.wall_clock() - self.started_at, 1),
            "providers": providers,
            "binds": binds,
            "queues": {
                name: {"queued": q.queued, "sending": q.sending,
                       "oldest_queued_age": q.oldest_queued_age}
                for name, q in queues.items()
            },
            "counts": dataclasses.asdict(counts),
            "unmatched_receipts": [
                {"provider": name, "pending": u.pending, "stale": u.stale,
                 "oldest_age": round(max(0.0, now_wall - u.oldest_received_wall), 1)}
                for name, u in sorted(unmatched.items())],
            "inbound": {"receipts": self.inbound.receipts if self.inbound else 0,
                        "unmatched_receipts": self.inbound.unmatched if self.inbound else 0,
                        "mo": self.inbound.mo if self.inbound else 0},
            "store": {"backend": self.store.backend, "location": self.store.location,
                      **_store_status(self.store.write_failure)},
            "last_reload_error": self.last_reload_error,
        }

    async def _housekeeping(self) -> None:
        assert self.store is not None
        store = self.store
        while True:
            try:
                if store.write_failure is not None:
                    await store.probe_write()  # has space returned? (see the module doc)
                while await store.expire_messages() >= 10_000:
                    pass
                await self._fail_over_queues()
                queues = await store.queue_stats()
                now = self.wall_clock()
                for name in self.providers:
                    queue = queues.get(name)
                    if queue is None or not queue.unsent:
                        self.metrics.provider(name).set_queue(0, None)
                    else:
                        self.metrics.provider(name).set_queue(
                            queue.unsent, now - queue.oldest_unsent_age)
                await self._note_unmatched_receipts(store)
                self.notifier.status(self.status_line())
            except StoreError:
                pass  # the disk refuses writes: _on_store_health says so, the probe goes on
            except Exception:
                log.exception("housekeeping failed; will try again")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    async def _note_unmatched_receipts(self, store: Store) -> None:
        """smppgw_receipts_unmatched_pending/_stale per provider, and one warning per provider
        whose receipts stay unmatched (flow.inbound.StaleReceiptWatch says when)."""
        now_wall = self.wall_clock()
        after = self.config.gateway.unmatched_receipt_after
        unmatched = await store.unmatched_receipts(now_wall - after)
        for name in self.providers:
            counts = unmatched.get(name)
            self.metrics.provider(name).set_receipts_unmatched(
                counts.pending if counts else 0, counts.stale if counts else 0)
        loop_now = asyncio.get_running_loop().time()
        for name in self._stale_receipts.check(
                {name: counts.stale for name, counts in unmatched.items()}, loop_now):
            counts = unmatched[name]
            runtime = self.providers.get(name)
            log.warning(
                "receipts stay unmatched: no message of their SMSC account has their id (do "
                "the account's binds log in with one system_id on the same servers, and read "
                "message ids alike?)", extra={"kv": {
                    "provider": name, "unmatched": counts.stale, "pending": counts.pending,
                    "after": f"{after:g}s",
                    "oldest": f"{max(0.0, now_wall - counts.oldest_received_wall):.0f}s",
                    "account": runtime.config.account if runtime else "-"}})

    async def _fail_over_queues(self) -> None:
        """Each provider failover has taken over from (down for its failover_after: no bind
        bound, or refusing every submit) hands its queued messages to its failover provider."""
        assert self.store is not None and self.submit_service is not None
        router = self.submit_service.router
        down = self._down_since()
        now = asyncio.get_running_loop().time()
        for name, runtime in list(self.providers.items()):
            target = router.failover_for(name, down, now)
            if target is None or target not in self.providers:
                continue
            reason = (f"{name} down ({runtime.pool.health.down_reason}) for "
                      f"{runtime.config.failover_after:g} s or more")
            moved = await move_queued(self.store, self.submit_service, runtime.config, target,
                                      reason, self.wall_clock())
            if moved:
                log.warning("queued messages moved to the failover provider", extra={"kv": {
                    "provider": name, "failover": target, "moved": moved}})
                self.providers[target].dispatcher.wake()

    async def _watchdog(self, interval: float, store: Store) -> None:
        """WATCHDOG=1 only while the event loop turns AND the store's writer answers: each
        ping follows a command through the writer (``Store.flush``), so a writer hung on a
        disk or a lock stops the pings as a stuck loop does, and systemd restarts smppgw.
        A writer that answers with a refusal (a full disk, the database away) is working:
        that outage is waited out (see the module doc) and the pings go on."""
        loop = asyncio.get_running_loop()
        silent_since: float | None = None
        while True:
            started = loop.time()
            if await _writer_answers(store, interval):
                self.notifier.watchdog()
                if silent_since is not None:
                    log.warning("the store writer answers again; watchdog pings resume",
                                extra={"kv": {"silent": f"{loop.time() - silent_since:.0f}s"}})
                    silent_since = None
            elif silent_since is None:
                silent_since = started
                log.error("the store writer has not answered for %.0f s; withholding the "
                          "systemd watchdog, which restarts smppgw after WatchdogSec",
                          interval, extra={"kv": {"store": store.location,
                                                  "pending_writes": store.pending_writes}})
            await asyncio.sleep(max(0.0, started + interval - loop.time()))


async def _writer_answers(store: Store, timeout: float) -> bool:
    """True when a command through the store's writer comes back within ``timeout``, with
    its result or with a refusal; False when it does not, or the writer stopped."""
    try:
        async with asyncio.timeout(timeout):
            await store.flush()
    except TimeoutError:
        return False
    except StoreClosedError:
        return False
    except StoreError:
        return True  # refused: the writer is there, the disk or database is not
    return True


def _store_status(failure: WriteFailure | None) -> dict[str, object]:
    """The store's write health for `smppgw status`: the STORE section."""
    if failure is None:
        return {"writable": True}
    return {"writable": False, "reason": failure.reason, "since": _iso(failure.since_wall),
            "refused_writes": failure.refused, "detail": failure.detail}


def _iso(wall: float) -> str:
    return (datetime.datetime.fromtimestamp(wall, datetime.UTC)
            .isoformat(timespec="seconds").replace("+00:00", "Z"))


def _version() -> str:
    try:
        return version("smppgw")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


async def run_daemon(config: Config, config_path: Path | None = None) -> int:
    """Entry for ``smppgw run``: the daemon with signal handlers; exit status for the CLI."""
    daemon = Daemon(config, config_path=config_path, install_signal_handlers=True)
    await daemon.run()
    return 1 if daemon.failure is not None else 0
