"""PostgresStore: the store on a PostgreSQL database (15 or later), through asyncpg.

One writer connection committing in groups (writer.py), a small pool for reads (reads.py), and
one connection that LISTENs for other writers' commits. Selected by ``[store] url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Final, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from smppgw.store.encoding import ms
from smppgw.store.interface import CursorWatch, Store, WriteHealth, recovery_report
from smppgw.store.models import (
    AcceptResult,
    CancelResult,
    Event,
    MessageMove,
    MessagePage,
    MessageQuery,
    MessageState,
    MessageView,
    MoMessage,
    MoPart,
    MoPartResult,
    MoRecord,
    NewMessage,
    ProviderPause,
    PurgeReport,
    QueuedMessage,
    QueueStats,
    ReceiptRecord,
    ReceiptResult,
    RecoveryReport,
    SegmentToSend,
    StoreClosedError,
    StoreCounts,
    StoredMoPart,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
    StoreUnavailableError,
    SubmitOutcome,
    SubmitRecorded,
    UnmatchedReceipts,
    WriteFailure,
)
from smppgw.store.postgres import commands, reads
from smppgw.store.postgres.schema import MIGRATIONS, SCHEMA_LOCK
from smppgw.store.postgres.writer import (
    RECONNECT_INTERVAL,
    Command,
    Tx,
    Writer,
    is_connection_error,
)

__all__ = ["PostgresStore", "display_url"]

# Waiting for events. This store's own commits wake its long-polls at once. Commits by other
# connections (another node, later) arrive as NOTIFY smppgw_events, which is only a hint: it
# makes the watcher read event_counter now instead of at its next poll (every POLL_INTERVAL
# while someone waits), so a notification lost with the listening connection delays a
# long-poll by at most that, and never makes it skip anything.
#
# One daemon per database, for now: the writer connection holds a session advisory lock
# (STORE_LOCK); a second daemon is refused as a second one on a SQLite state dir is. Recovery
# queues again every part left 'sending', which is only right when no other process sends.

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_INTERVAL: Final = 1.0        # seconds between event_counter reads while a long-poll waits
# A daemon restarted at once after a crash may find the dead one's session still ending on the
# server, its lock not yet released: wait this long for it.
LOCK_WAIT: Final = 5.0
STORE_LOCK: Final = 0x736D7070_67770002
_CHANNEL: Final = "smppgw_events"


def display_url(url: str) -> str:
    """``url`` without a password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(Store):
    """Create with ``await PostgresStore.open(url, password=...)``; it belongs to the event loop
    that opened it. Close with ``await store.close()`` (or ``async with``)."""

    def __init__(
        self, url: str, password: str | None, clock: Callable[[], float],
        connect_timeout: float,
        on_write_health: Callable[[WriteFailure | None], None] | None = None,
    ) -> None:
        """Internal: use ``PostgresStore.open``."""
        self.url = url
        self.where = display_url(url)
        self._password = password
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._watch = CursorWatch()
        self._hinted = asyncio.Event()
        self._writer: Writer | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._watcher_task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._closed = False
        self._closing = False
        self._exclusive = True
        self._health = WriteHealth(clock, on_write_health)
        #: The schema version found at open (0: a new database).
        self.schema_migrated_from = 0

    # --- life cycle ------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, url: str, *, password: str | None = None, clock: Callable[[], float] = time.time,
        max_group: int = 4096, on_commit: Callable[[int, float], None] | None = None,
        on_write_health: Callable[[WriteFailure | None], None] | None = None,
        migrations: tuple[tuple[str, ...], ...] = MIGRATIONS, connect_timeout: float = 10.0,
        read_connections: int = 4, lock_wait: float = LOCK_WAIT, exclusive: bool = True,
        reconnect_interval: float = RECONNECT_INTERVAL,
    ) -> PostgresStore:
        """Connect, take the store lock, migrate, start the writer and the watcher.

        Raises StoreError when the database cannot be reached (the message names the cause),
        StoreLockedError when another smppgw uses it, StoreSchemaError when its schema is newer
        than this smppgw knows. ``on_write_health``: as SqliteStore.open's (a database out of
        reach is its ``unavailable``). ``lock_wait``: seconds to wait for the store
        lock of a daemon that just died. ``exclusive=False`` shares the database with other
        writers (no store lock): their commits are numbered and seen in order all the same,
        but ``recover`` would queue again the parts they are sending, so only a cluster that
        knows its nodes may do it.
        """
        store = cls(url, password, clock, connect_timeout, on_write_health)
        store._exclusive = exclusive
        try:
            conn = await store._connect(writer=True)
            try:
                if exclusive:
                    await _take_store_lock(conn, store.where, lock_wait)
                store.schema_migrated_from = await _migrate(conn, migrations, store.where)
                if await conn.fetchval("SHOW fsync") != "on":
                    log.warning("store: PostgreSQL runs with fsync off: accepted messages do"
                                " not survive a power loss", extra={"kv": {
                                    "database": store.where}})
                store._watch.advance(await reads.read_last_cursor(conn))
            except BaseException:
                conn.terminate()
                raise
            store._pool = await store._wrap_connect(asyncpg.create_pool(
                url, password=password, min_size=0, max_size=max(1, read_connections),
                timeout=connect_timeout, server_settings=_SERVER_SETTINGS))
            store._writer = Writer(
                conn, connect=store._connect_writer, clock=clock, max_group=max_group,
                on_commit=on_commit, on_cursor=store._watch.advance, health=store._health,
                reconnect_interval=reconnect_interval)
            store._writer_task = asyncio.get_running_loop().create_task(
                store._writer.run(), name="smppgw-store-writer")
            await store._listen()
            store._watcher_task = asyncio.get_running_loop().create_task(
                store._watch_loop(), name="smppgw-store-watcher")
        except StoreUnavailableError as exc:
            await store._teardown()
            raise StoreError(exc.detail) from exc   # at start it is not an outage: one line
        except BaseException:
            await store._teardown()
            raise
        return store

    async def close(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self._writer is not None:
            self._writer.stop()
        if self._writer_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer_task)
        await self._teardown()

    async def _teardown(self) -> None:
        self._closed = True
        self._watch.close()
        if self._watcher_task is not None:
            self._watcher_task.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher_task
        if self._writer_task is not None and not self._writer_task.done():
            self._writer_task.cancel()
            with contextlib.suppress(BaseException):
                await self._writer_task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=5)
            self._listener = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 5)
            self._pool = None

    async def flush(self) -> None:
        await self._write(lambda tx: None)

    @property
    def write_failure(self) -> WriteFailure | None:
        return self._health.failure

    async def wait_writable(self) -> None:
        await self._health.wait_writable()

    async def probe_write(self) -> None:
        """An empty transaction: committing one needs the database, and reconnects to it."""
        await self._write(lambda tx: None)

    async def wait_stopped(self) -> BaseException | None:
        task = self._writer_task
        if task is None:
            return None
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)
        return None if task.cancelled() else task.exception()

    # --- observation -----------------------------------------------------------------------------

    backend = "postgresql"

    @property
    def location(self) -> str:
        return self.where

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_cursor(self) -> int:
        return self._watch.last_cursor

    @property
    def commit_count(self) -> int:
        return self._writer.commit_count if self._writer else 0

    @property
    def command_count(self) -> int:
        return self._writer.command_count if self._writer else 0

    @property
    def pending_writes(self) -> int:
        return self._writer.pending if self._writer else 0

    def __repr__(self) -> str:
        state = ("closed" if self._closed else "open" if self._health.failure is None
                 else "unavailable")
        return (f"<PostgresStore {self.where} {state} last_cursor={self.last_cursor}"
                f" commits={self.commit_count} commands={self.command_count}"
                f" pending={self.pending_writes}>")

    # --- writes ----------------------------------------------------------------------------------

    async def accept_messages(self, messages: Sequence[NewMessage]) -> list[AcceptResult]:
        return await self._batch("accept", commands.accept, tuple(messages))

    async def claim_segments(
        self, provider: str, limit: int, now_wall: float | None = None
    ) -> list[SegmentToSend]:
        if limit <= 0:
            return []
        now_ms = ms(self._clock() if now_wall is None else now_wall)
        return cast(list[SegmentToSend], await self._submit(Command(
            commands.claim, (provider, limit, now_ms), self._future(), kind="claim",
            durable=False)))

    async def apply_submit_results(
        self, outcomes: Sequence[SubmitOutcome]
    ) -> list[SubmitRecorded | None]:
        return await self._batch("submit", commands.record_submit_results, tuple(outcomes))

    async def record_receipts(self, receipts: Sequence[ReceiptRecord]) -> list[ReceiptResult]:
        return await self._batch("receipts", commands.record_receipts, tuple(receipts))

    async def record_mo_part(self, part: MoPart) -> MoPartResult:
        return cast(MoPartResult, await self._command(commands.record_mo_part, (part,)))

    async def record_mo_message(
        self, message: MoMessage, consumed_part_ids: Sequence[int] = ()
    ) -> MoRecord:
        return cast(MoRecord, await self._command(
            commands.record_mo_message, (message, tuple(consumed_part_ids))))

    async def expire_messages(self, now_wall: float | None = None, limit: int = 10_000) -> int:
        now_ms = ms(self._clock() if now_wall is None else now_wall)
        return cast(int, await self._command(commands.expire, (now_ms, limit)))

    async def set_webhook_position(self, name: str, cursor: int) -> None:
        await self._command(commands.set_webhook_position, (name, cursor))

    async def purge(self, older_than_wall: float, limit: int = 10_000) -> PurgeReport:
        return cast(PurgeReport, await self._command(
            commands.purge, (ms(older_than_wall), limit)))

    async def recover(self) -> RecoveryReport:
        requeued, unmatched, queued, mo_parts = cast(
            tuple[int, int, int, list[StoredMoPart]], await self._command(commands.recover, ()))
        return recovery_report(requeued, unmatched, queued, mo_parts)

    async def cancel_message(
        self, tracking_id: str, reason: str, not_sent: Collection[int] = (),
    ) -> CancelResult | None:
        return cast("CancelResult | None", await self._command(
            commands.cancel, (tracking_id, reason, frozenset(not_sent))))

    async def record_cancel_sm(
        self, tracking_id: str, answers: Sequence[tuple[int, str, bool]], reason: str,
    ) -> MessageState | None:
        return cast("MessageState | None", await self._command(
            commands.record_cancel_sm, (tracking_id, tuple(answers), reason)))

    async def set_provider_paused(self, provider: str, paused: bool) -> ProviderPause | None:
        return cast("ProviderPause | None",
                    await self._command(commands.set_provider_paused, (provider, paused)))

    async def adopt_accounts(self, accounts: Mapping[str, str]) -> int:
        if not accounts:
            return 0
        return cast(int, await self._command(commands.adopt_accounts,
                                             tuple(accounts.items())))

    async def requeue_sending(self, provider: str, reason: str) -> int:
        count = cast(int, await self._command(commands.requeue_sending, (provider, reason)))
        if count:
            log.warning("%d part(s) of %s were sending and are queued again", count, provider)
        return count

    async def move_messages(self, moves: Sequence[MessageMove]) -> int:
        if not moves:
            return 0
        return cast(int, await self._command(commands.move_messages, tuple(moves)))

    # --- reads -----------------------------------------------------------------------------------

    async def queued_messages(self, provider: str, limit: int) -> list[QueuedMessage]:
        return await self._read(lambda conn: reads.read_queued_messages(conn, provider, limit))

    async def get_message(self, tracking_id: str) -> MessageView | None:
        return await self._read(lambda conn: reads.read_message(conn, tracking_id))

    async def find_messages(self, client_id: str) -> list[MessageView]:
        return await self._read(lambda conn: reads.read_messages_by_client_id(conn, client_id))

    async def list_messages(self, query: MessageQuery) -> MessagePage:
        return await self._read(lambda conn: reads.read_message_page(conn, query))

    async def provider_pauses(self) -> dict[str, ProviderPause]:
        return await self._read(reads.read_provider_pauses)

    async def get_tracking_id(self, client_id: str) -> str | None:
        return await self._read(lambda conn: reads.read_tracking_id(conn, client_id))

    async def events_after(self, cursor: int, limit: int = 1000) -> list[Event]:
        limit = max(1, min(limit, reads.MAX_EVENTS_PER_READ))
        return await self._read(lambda conn: reads.read_events(conn, cursor, limit))

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        if self._watch.last_cursor <= after and not self._closed:
            self._hinted.set()   # check the database now: another writer may be ahead
        return await self._watch.wait(after, timeout)

    async def get_webhook_position(self, name: str) -> int:
        return await self._read(lambda conn: reads.read_webhook_position(conn, name))

    async def queue_stats(self, now_wall: float | None = None) -> dict[str, QueueStats]:
        now = self._clock() if now_wall is None else now_wall
        return await self._read(lambda conn: reads.read_queue_stats(conn, now))

    async def counts(self) -> StoreCounts:
        return await self._read(reads.read_counts)

    async def unmatched_receipt_count(self) -> int:
        return await self._read(reads.read_unmatched_receipt_count)

    async def unmatched_receipts(self, stale_before_wall: float) -> dict[str, UnmatchedReceipts]:
        return await self._read(
            lambda conn: reads.read_unmatched_receipts(conn, stale_before_wall))

    # --- machinery -------------------------------------------------------------------------------

    def _future(self) -> asyncio.Future[object]:
        if self._closed or self._closing:
            raise StoreClosedError(f"store {self.where} is closed")
        return asyncio.get_running_loop().create_future()

    async def _submit(self, command: Command) -> object:
        assert self._writer is not None
        self._writer.put(command)
        return await command.future

    async def _batch(
        self, kind: str, fn: Callable[[Tx, Sequence[object]], Awaitable[list[T]]],
        items: tuple[object, ...],
    ) -> list[T]:
        if not items:
            return []
        return cast(list[T], await self._submit(
            Command(fn, items, self._future(), kind=kind)))  # type: ignore[arg-type]

    async def _command(
        self, fn: Callable[[Tx, Sequence[object]], Awaitable[object]],
        items: tuple[object, ...],
    ) -> object:
        return await self._submit(Command(fn, items, self._future()))

    async def _write(
        self, fn: Callable[[Tx], T | Awaitable[T]], *, durable: bool = True
    ) -> T:
        """Run ``fn(tx)`` (a function or a coroutine function) alone inside a group (tests,
        flush)."""
        async def command(tx: Tx, _items: Sequence[object]) -> object:
            value = fn(tx)
            return await value if inspect.isawaitable(value) else value

        return cast(T, await self._submit(Command(command, (), self._future(),
                                                  durable=durable)))

    async def _read(self, fn: Callable[[reads.Connection], Awaitable[T]]) -> T:
        """``fn`` on a pooled connection. A connection the server dropped (a restart) is
        replaced once; a database still away is StoreUnavailableError."""
        retried = False
        while True:
            if self._closed or self._pool is None:
                raise StoreClosedError(f"store {self.where} is closed")
            try:
                async with self._pool.acquire(timeout=self._connect_timeout) as conn:
                    return await fn(conn)
            except StoreError:
                raise
            except Exception as exc:
                if is_connection_error(exc):
                    if not retried:
                        retried = True
                        continue
                    raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
                if isinstance(exc, asyncpg.PostgresError):
                    raise StoreError(f"read failed: {exc}") from exc
                raise

    async def _connect(self, writer: bool = False) -> asyncpg.Connection:
        return await self._wrap_connect(asyncpg.connect(
            self.url, password=self._password, timeout=self._connect_timeout,
            server_settings=_WRITER_SETTINGS if writer else _SERVER_SETTINGS))

    async def _connect_writer(self) -> asyncpg.Connection:
        """A new writer connection after an outage: the store lock first (another daemon may
        have started meanwhile), and the same settings."""
        conn = await self._connect(writer=True)
        try:
            if self._exclusive:
                await _take_store_lock(conn, self.where, 0.0)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _wrap_connect(self, pending: Awaitable[T]) -> T:
        """``pending`` (a connect), with its failure said in one line that names the cause."""
        try:
            return await pending
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = _connect_failure(exc)
            raise StoreUnavailableError(
                f"cannot connect to the database {self.where}: {reason}") from exc

    async def _listen(self) -> None:
        """(Re)open the connection that LISTENs for other writers' commits; a failure leaves
        the watcher polling."""
        try:
            listener = await self._connect()
            await listener.add_listener(_CHANNEL, self._notified)
        except StoreError as exc:
            log.warning("store: cannot listen for commits; polling instead",
                        extra={"kv": {"error": str(exc)}})
            return
        self._listener = listener

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            if int(str(payload)) <= self._watch.last_cursor:
                return   # our own commit, already known
        self._hinted.set()

    async def _watch_loop(self) -> None:
        """Read event_counter when hinted, and every POLL_INTERVAL while someone waits."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL):
                    await self._hinted.wait()
            hinted = self._hinted.is_set()
            self._hinted.clear()
            if self._listener is None or self._listener.is_closed():
                self._listener = None
                await self._listen()
            if not (hinted or self._watch.waiting):
                continue
            try:
                self._watch.advance(await self._read(reads.read_last_cursor))
            except StoreError as exc:
                log.debug("store: cannot read the last cursor: %s", exc)


_SERVER_SETTINGS: Final = {
    "application_name": "smppgw",
    # "Accepted" means committed and flushed: never rely on the server's default.
    "synchronous_commit": "on",
    # A plan per execution, from the tables' current size: a generic plan made while a table
    # was small (a new database) would keep scanning it whole once it grew, until the next
    # autoanalyze. The statements are small; planning them costs far less than such a scan.
    "plan_cache_mode": "force_custom_plan",
}
# The writer runs the same few statements thousands of times a second, and every one of them
# reaches rows by key (a batch joined to a table's index): one generic plan each, planned once
# per connection, and never a hash join or a scan of a whole table, which a plan made while the
# tables were small would otherwise choose and keep.
_WRITER_SETTINGS: Final = {
    **_SERVER_SETTINGS,
    "plan_cache_mode": "force_generic_plan",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_seqscan": "off",
}


async def _take_store_lock(conn: asyncpg.Connection, where: str, wait: float) -> None:
    """The session advisory lock that makes this the database's only daemon; StoreLockedError
    when another session still holds it after ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", STORE_LOCK):
        if loop.time() >= deadline:
            raise StoreLockedError(where, (
                f"the database {where} is in use: another smppgw holds its store lock"
                " (stop it, or give this instance its own database)"))
        await asyncio.sleep(0.1)   # the holder is another process: no event to wait on


async def _migrate(
    conn: asyncpg.Connection, steps: tuple[tuple[str, ...], ...], where: str,
) -> int:
    """Bring the database to ``len(steps)``; every step in its own transaction with its version
    bump, under an advisory lock so daemons starting together take turns. Returns the version
    found. A newer database is refused: this smppgw does not know its schema."""
    target = len(steps)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS smppgw_schema (version integer NOT NULL)")
        current = await conn.fetchval("SELECT version FROM smppgw_schema")
        if current is None:
            await conn.execute("INSERT INTO smppgw_schema (version) VALUES (0)")
            current = 0
    if current > target:
        raise StoreSchemaError(
            f"{where}: database schema version {current} is newer than this smppgw knows"
            f" ({target})")
    for version in range(current + 1, target + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            if await conn.fetchval("SELECT version FROM smppgw_schema") >= version:
                continue   # another daemon applied it meanwhile
            for statement in steps[version - 1]:
                await conn.execute(statement)
            await conn.execute("UPDATE smppgw_schema SET version = $1", version)
    return int(current)


def _connect_failure(exc: BaseException) -> str:
    """Why a connection failed, in words an operator acts on."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no such socket (is PostgreSQL running, and is host= its socket directory?)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
