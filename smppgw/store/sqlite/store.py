"""SqliteStore: the embedded backend. One SQLite file in WAL mode under state_dir, a writer
thread that commits in groups (writer.py), a reader thread (reads.py), and the asyncio surface
of the Store interface over both. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar, cast

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
    StoreWriteError,
    SubmitOutcome,
    SubmitRecorded,
    UnmatchedReceipts,
    WriteFailure,
)
from smppgw.store.sqlite import commands, reads
from smppgw.store.sqlite.schema import MIGRATIONS
from smppgw.store.sqlite.writer import Command, Tx, Writer

__all__ = ["DB_FILENAME", "LOCK_FILENAME", "SqliteStore"]

# The rules every backend follows are in interface.py's theory of operation.
#
# A full disk (or an I/O error) is an outage, not a crash: the writer fails the group with
# StoreWriteError and goes on (writer.py), reads keep working, and the health follows the
# interface's theory of operation.
#
# One process per file: an flock on LOCK_FILENAME, held for the store's life, refuses a second
# daemon on the same state dir (the kernel drops it when the process dies).

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILENAME: Final = "smppgw.db"
LOCK_FILENAME: Final = "smppgw.lock"

_Delivery = tuple["asyncio.Future[object]", object, bool]

# The name probe_write uses for its transient row; the daemon names webhooks "webhook<N>".
_PROBE_NAME: Final = "\x00write probe"


class SqliteStore(Store):
    """Create with ``await SqliteStore.open(state_dir)``; the store belongs to the event loop
    that opened it. Close with ``await store.close()`` (or ``async with``), which commits
    whatever is queued and releases the state dir lock."""

    def __init__(
        self, state_dir: Path, lock_fd: int, loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float], busy_timeout: float, max_group: int,
        migrations: tuple[tuple[str, ...], ...],
        on_commit: Callable[[int, float], None] | None,
        on_write_health: Callable[[WriteFailure | None], None] | None,
    ) -> None:
        """Internal: use ``SqliteStore.open``."""
        self.state_dir = state_dir
        self.db_path = state_dir / DB_FILENAME
        self.lock_path = state_dir / LOCK_FILENAME
        self._lock_fd: int | None = lock_fd
        self._loop = loop
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._queue: queue.SimpleQueue[Command | None] = queue.SimpleQueue()
        self._closed = False
        self._writer_failed: BaseException | None = None
        self._writer_done: asyncio.Future[None] = loop.create_future()
        self._writer = Writer(
            str(self.db_path), self._queue, clock=clock, busy_timeout=busy_timeout,
            max_group=max_group, migrations=migrations, post=self._post,
            deliver=self._deliver, on_commit=on_commit)
        self._thread = threading.Thread(
            target=self._writer_main, name=f"smppgw-store-writer:{state_dir.name}", daemon=True)
        self._reader = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"smppgw-store-reader:{state_dir.name}",
            initializer=self._reader_init)
        self._read_conn: sqlite3.Connection | None = None
        self._watch = CursorWatch()
        self._health = WriteHealth(clock, on_write_health)
        self._commit_count = 0
        self._command_count = 0
        self._ready: asyncio.Future[None] = loop.create_future()
        self._reader_shut = False
        #: user_version found at open (0: a new file); SCHEMA_VERSION after migration.
        self.schema_migrated_from = 0

    # --- life cycle ------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, state_dir: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0, max_group: int = 4096,
        migrations: tuple[tuple[str, ...], ...] = MIGRATIONS,
        on_commit: Callable[[int, float], None] | None = None,
        on_write_health: Callable[[WriteFailure | None], None] | None = None,
    ) -> SqliteStore:
        """Lock ``state_dir``, open (create, migrate) its database, start the threads.

        ``clock`` gives wall-clock unix seconds for created/updated/event times. Raises
        StoreLockedError when another store holds the directory, StoreSchemaError when the file
        is from a newer smppgw. ``migrations`` exists for the migration tests. ``on_commit``
        is called on the writer thread after each group commit with the number of commands in
        the group and the seconds the transaction took (for metrics; it must be thread-safe).
        ``on_write_health`` is called on the loop with the WriteFailure each time the disk
        refuses a write, and with None when a write succeeds again (see write_failure).
        """
        path = Path(state_dir)
        try:
            path.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the state directory {path}: {exc.strerror}") from exc
        lock_fd = _take_lock(path / LOCK_FILENAME)
        store = cls(path, lock_fd, asyncio.get_running_loop(), clock, busy_timeout, max_group,
                    migrations, on_commit, on_write_health)
        store._thread.start()
        try:
            await store._ready
        except BaseException:
            store._closed = True
            store._queue.put(None)
            await asyncio.shield(store._writer_done)
            store._reader.shutdown(wait=False)
            store._release_lock()
            raise
        return store

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        await asyncio.shield(self._writer_done)
        if not self._reader_shut:
            self._reader_shut = True
            if self._read_conn is not None:
                await self._loop.run_in_executor(self._reader, self._reader_close)
            await asyncio.to_thread(self._reader.shutdown, True)
        self._release_lock()
        self._watch.close()

    async def flush(self) -> None:
        await self._write(lambda tx: None)

    @property
    def write_failure(self) -> WriteFailure | None:
        return self._health.failure

    async def wait_writable(self) -> None:
        await self._health.wait_writable()

    async def probe_write(self) -> None:
        """A row written and removed in one transaction, so its pages go to the disk."""
        def probe(tx: Tx) -> None:
            tx.conn.execute(
                "INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES (?, 0, ?)",
                (_PROBE_NAME, tx.now_ms))
            tx.conn.execute("DELETE FROM webhook_positions WHERE name = ?", (_PROBE_NAME,))
        await self._write(probe)

    async def wait_stopped(self) -> BaseException | None:
        await asyncio.shield(self._writer_done)
        return self._writer_failed

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # closing the descriptor drops the flock
            self._lock_fd = None

    # --- observation -----------------------------------------------------------------------------

    backend = "sqlite"

    @property
    def location(self) -> str:
        return str(self.db_path)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_cursor(self) -> int:
        return self._watch.last_cursor

    @property
    def commit_count(self) -> int:
        return self._commit_count

    @property
    def command_count(self) -> int:
        return self._command_count

    @property
    def pending_writes(self) -> int:
        return self._queue.qsize()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<SqliteStore {self.db_path} {state} last_cursor={self.last_cursor}"
                f" commits={self._commit_count} commands={self._command_count}"
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
        """Woken by the commit itself, so a long-poll answers as soon as the data is
        readable (this process is the only writer of the file)."""
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
        if self._closed:
            raise StoreClosedError(f"store {self.db_path} is closed")
        return self._loop.create_future()

    async def _submit(self, command: Command) -> object:
        """Queue ``command`` for the writer thread and wait until its group committed."""
        self._queue.put(command)
        return await command.future

    async def _batch(
        self, kind: str, fn: Callable[[Tx, Sequence[object]], list[T]],
        items: tuple[object, ...],
    ) -> list[T]:
        if not items:
            return []
        return cast(list[T], await self._submit(
            Command(fn, items, self._future(), kind=kind)))  # type: ignore[arg-type]

    async def _command(
        self, fn: Callable[[Tx, Sequence[object]], object], items: tuple[object, ...],
    ) -> object:
        return await self._submit(Command(fn, items, self._future()))

    async def _write(self, fn: Callable[[Tx], T], *, durable: bool = True) -> T:
        """Run ``fn(tx)`` alone on the writer thread inside a group (tests, flush)."""
        return cast(T, await self._submit(Command(
            lambda tx, _items: fn(tx), (), self._future(), durable=durable)))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosedError(f"store {self.db_path} is closed")
        return await self._loop.run_in_executor(self._reader, self._run_read, fn)

    def _reader_init(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        self._read_conn = conn

    def _reader_close(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn
        if conn is None:
            raise StoreClosedError(f"store {self.db_path} is closed")
        conn.execute("BEGIN")   # one snapshot for all the statements of this read
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc
        finally:
            conn.execute("COMMIT")

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):   # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _writer_main(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            try:
                conn, before = self._writer.open()
            except BaseException as exc:
                if not isinstance(exc, StoreError):
                    exc = StoreError(f"cannot open {self.db_path}: {exc}")
                self._post(_set_future_exception, self._ready, exc)
                return
            self.schema_migrated_from = before
            self._post(self._on_ready, self._writer.last_cursor)
            self._writer.loop(conn)
        except BaseException as exc:
            self._writer_failed = exc
            log.critical("store writer thread died: %r", exc)
            raise
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA optimize")
                conn.close()
            self._post(self._on_writer_exit)

    def _on_ready(self, last_cursor: int) -> None:
        self._watch.advance(last_cursor)
        if not self._ready.done():
            self._ready.set_result(None)

    def _on_writer_exit(self) -> None:
        self._closed = True
        # Whatever is still queued (writer died) fails instead of waiting forever.
        while True:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                break
            if command is not None and not command.future.done():
                command.future.set_exception(StoreClosedError(
                    f"store {self.db_path} writer stopped: {self._writer_failed!r}"))
        if not self._writer_done.done():
            self._writer_done.set_result(None)
        self._watch.close()

    def _deliver(
        self, deliveries: list[_Delivery], last_cursor: int, committed: bool, changed: bool,
    ) -> None:
        """On the loop: count, publish the new cursor and the write health, resolve every
        waiter of the group."""
        if committed:
            self._commit_count += 1
        self._command_count += len(deliveries)
        self._watch.advance(last_cursor)
        refused = next((value for _, value, ok in deliveries
                        if not ok and isinstance(value, StoreWriteError)), None)
        if refused is not None:
            self._health.refused(refused)
        elif changed:
            self._health.succeeded()
        for future, value, ok in deliveries:
            if future.done():   # the caller was cancelled: it loses only its wait
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(cast(BaseException, value))


def _set_future_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _take_lock(path: Path) -> int:
    """An exclusive flock on ``path``, held for the store's life (the kernel drops it when the
    process dies, so a crash never leaves a stale lock)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(str(path)) from None
    except BaseException:
        os.close(fd)
        raise
    # For the operator: which process holds it.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
