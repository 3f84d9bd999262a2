"""The SQLite writer: one thread, one connection, write commands committed in groups.

Owns the transaction and the fsync; knows nothing of what the commands do. The store queues
commands from the event loop and gets each result back on the loop once its group committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Final

from smppgw.store.encoding import iso, ms
from smppgw.store.grouping import MERGED_KINDS, Deferred, order, runs
from smppgw.store.models import StoreError, StoreSchemaError, StoreWriteError, WriteFailureReason
from smppgw.store.rules import EventLog
from smppgw.store.sqlite.bulk import STATEMENT_CACHE, insert_rows
from smppgw.store.sqlite.schema import migrate

__all__ = ["Command", "Tx", "Writer", "configure", "read_last_cursor"]

# Theory of operation
# -------------------
# Group commit. The thread takes everything queued (up to ``max_group`` commands) and runs it
# in one ``BEGIN IMMEDIATE … COMMIT`` (one fsync), then resolves every future of the group with
# one ``loop.call_soon_threadsafe``. Under load a commit carries hundreds of commands, so the
# cost of an fsync is shared; alone, a command commits at once.
#
# Set-based. Commands of one kind (accepts, submit outcomes, receipts) are merged: the group
# runs each kind once over the concatenation of their items, with whole-batch statements, and
# hands every command its slice of the results (kinds run in grouping.py's order). Events are
# buffered and inserted once per group with consecutive cursors.
#
# Failure isolation. If anything in the merged run raises, the transaction is rolled back and
# the group runs again command by command, each under its own SAVEPOINT, so the one that raises
# fails alone and the others commit. A failed COMMIT fails the whole group: nothing of it was
# stored. A full disk or an I/O error (SQLITE_FULL, SQLITE_IOERR, ...) fails the whole group at
# once with StoreWriteError naming the cause: every command of it would meet the same refusal.
# An unexpected fault of ours fails its group only; the writer goes on with the next.
#
# Durability. ``synchronous=FULL`` (set by ``configure``) fsyncs the WAL at every commit. A
# group made only of claims commits with NORMAL: losing a claim is harmless (recovery queues
# claimed parts again), and the next durable commit's fsync covers its frames anyway.

log = logging.getLogger(__name__)


class Tx:
    """One group's transaction as the commands see it: the connection, the group's clock
    reading and the events appended so far."""

    __slots__ = ("conn", "events", "now_iso", "now_ms")

    def __init__(self, conn: sqlite3.Connection, now_ms: int) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.now_iso = iso(now_ms)
        self.events = EventLog()


class Command:
    """One write. With ``kind`` set, ``fn(tx, items)`` returns one result per item and commands
    of the same kind in a group run as one call over all their items; the command's value is
    its own slice, as a list. Without, ``fn(tx, items)`` returns the value itself."""

    __slots__ = ("durable", "fn", "future", "items", "kind")

    def __init__(
        self, fn: Callable[[Tx, Sequence[object]], object], items: Sequence[object],
        future: asyncio.Future[object], *, kind: str | None = None, durable: bool = True,
    ) -> None:
        self.fn = fn
        self.items = items
        self.future = future
        self.kind = kind
        self.durable = durable


_Delivery = tuple["asyncio.Future[object]", object, bool]   # future, value or exception, ok

# SQLite primary result codes (the low byte of an extended code) that mean the disk, not the
# command, refused the write: https://sqlite.org/rescode.html
_FULL_CODES: Final = frozenset({13})             # SQLITE_FULL
_IO_CODES: Final = frozenset({8, 10, 14})        # SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN


def write_failure_reason(exc: BaseException) -> WriteFailureReason | None:
    """``disk_full`` or ``io_error`` when SQLite refused for the disk's sake, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or not isinstance(code, int):
        return None
    if code & 0xFF in _FULL_CODES:
        return "disk_full"
    if code & 0xFF in _IO_CODES:
        return "io_error"
    return None


def configure(conn: sqlite3.Connection, busy_timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot put the database in WAL mode (got {mode!r})")
    # FULL, not NORMAL: in WAL mode NORMAL syncs only at checkpoints, so a power loss could
    # drop messages already answered "accepted" and receipts already acknowledged.
    conn.execute("PRAGMA synchronous = FULL")
    # F_FULLFSYNC on macOS (a plain fsync there does not reach the platter); no-op elsewhere.
    conn.execute("PRAGMA fullfsync = ON")
    conn.execute("PRAGMA checkpoint_fullfsync = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")   # KiB
    # Checkpoint every 8192 pages (32 MiB of WAL) rather than 1000: the pages a busy gateway
    # writes are the few at the right edge of each table and index, rewritten by every commit,
    # and a checkpoint copies each page once however often the WAL holds it.
    conn.execute("PRAGMA wal_autocheckpoint = 8192")
    # The WAL is reused from its start after each checkpoint; this truncates it back when a
    # burst (or a reader holding a snapshot) made it grow, so it does not keep its peak size.
    conn.execute("PRAGMA journal_size_limit = 67108864")


def read_last_cursor(conn: sqlite3.Connection) -> int:
    """The largest cursor ever given (sqlite_sequence keeps it even after events are purged)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row is not None else 0


class Writer:
    """The writer thread's body: ``open`` the database, then ``loop`` commits groups until it
    takes a ``None``. Each group's results go back through ``post(deliver, deliveries,
    last_cursor, committed, changed)`` (the loop's call_soon_threadsafe); ``changed``: the
    group committed and changed rows (a full disk then took writes again)."""

    def __init__(
        self, path: str, commands: queue.SimpleQueue[Command | None], *,
        clock: Callable[[], float], busy_timeout: float, max_group: int,
        migrations: tuple[tuple[str, ...], ...],
        post: Callable[..., None],
        deliver: Callable[[list[_Delivery], int, bool, bool], None],
        on_commit: Callable[[int, float], None] | None,
    ) -> None:
        self.path = path
        self.queue = commands
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.max_group = max_group
        self.migrations = migrations
        self.post = post
        self.deliver = deliver
        self.on_commit = on_commit
        self.last_cursor = 0
        self._sync_full = True

    def open(self) -> tuple[sqlite3.Connection, int]:
        """Connect, configure, migrate; returns the connection and the version found."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               cached_statements=STATEMENT_CACHE)
        try:
            configure(conn, self.busy_timeout)
            try:
                before, _after = migrate(conn, self.migrations)
            except sqlite3.DatabaseError as exc:
                raise StoreSchemaError(f"{self.path}: {exc}") from exc
            self.last_cursor = read_last_cursor(conn)
        except BaseException:
            conn.close()
            raise
        return conn, before

    def loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_group:
                try:
                    command = self.queue.get_nowait()
                except queue.Empty:
                    break
                if command is None:
                    stop = True
                    break
                group.append(command)
            try:
                self.run_group(conn, group)
            except Exception as exc:
                # Not SQLite's refusal (handled inside): a fault of ours. The group fails, the
                # writer goes on with the next one.
                log.error("store writer: a group failed unexpectedly", exc_info=exc)
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                error = StoreError(f"write failed unexpectedly: {exc!r}")
                self.post(self.deliver, [(c.future, error, False) for c in group],
                          self.last_cursor, False, False)
            if stop:
                return

    def run_group(self, conn: sqlite3.Connection, group: list[Command]) -> None:
        durable = any(c.durable for c in group)
        started = time.perf_counter()
        now_ms = ms(self.clock())
        group.sort(key=order)
        committed = False
        last_cursor = self.last_cursor
        first_cursor = last_cursor + 1
        changes_before = conn.total_changes
        try:
            if durable != self._sync_full:
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._sync_full = durable
            deliveries, tx = self._merged(conn, group, now_ms)
            if deliveries is None:
                deliveries, tx = self._isolated(conn, group, now_ms)
            if conn.in_transaction:
                if any(ok for _, _, ok in deliveries):
                    last_cursor = self._flush_events(tx, first_cursor)
                    conn.execute("COMMIT")
                    committed = True
                else:
                    conn.execute("ROLLBACK")
            deliveries = [
                (f, v.resolve(first_cursor) if ok and isinstance(v, Deferred) else v, ok)
                for f, v, ok in deliveries]
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            error = _as_store_error(exc, "commit failed, nothing of this group was stored")
            deliveries = [(c.future, error, False) for c in group]
            committed = False
        if committed:
            self.last_cursor = last_cursor
            if self.on_commit is not None:
                with contextlib.suppress(Exception):  # a metrics fault must not stop the writer
                    self.on_commit(len(group), time.perf_counter() - started)
        changed = committed and conn.total_changes != changes_before
        self.post(self.deliver, deliveries, self.last_cursor, committed, changed)

    def _merged(
        self, conn: sqlite3.Connection, group: list[Command], now_ms: int,
    ) -> tuple[list[_Delivery] | None, Tx]:
        """The fast path: each kind once over all its items. None when anything raised (the
        transaction is then rolled back)."""
        tx = Tx(conn, now_ms)
        conn.execute("BEGIN IMMEDIATE")
        deliveries: list[_Delivery] = []
        try:
            for run in runs(group):
                first = run[0]
                if first.kind not in MERGED_KINDS:
                    deliveries.append((first.future, first.fn(tx, first.items), True))
                    continue
                items = [item for c in run for item in c.items]
                results = first.fn(tx, items)
                assert isinstance(results, list) and len(results) == len(items)
                offset = 0
                for c in run:
                    deliveries.append((c.future, results[offset:offset + len(c.items)], True))
                    offset += len(c.items)
        except Exception as exc:
            if write_failure_reason(exc) is not None:
                raise   # the disk's refusal: the whole group fails with it (see above)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if len(group) == 1:
                return [(group[0].future, _as_store_error(exc), False)], tx
            return None, tx
        return deliveries, tx

    def _isolated(
        self, conn: sqlite3.Connection, group: list[Command], now_ms: int,
    ) -> tuple[list[_Delivery], Tx]:
        """The slow path after a failure: command by command, each under a savepoint."""
        tx = Tx(conn, now_ms)
        conn.execute("BEGIN IMMEDIATE")
        deliveries: list[_Delivery] = []
        for command in group:
            mark = len(tx.events)
            conn.execute("SAVEPOINT command")
            try:
                value = command.fn(tx, command.items)
            except Exception as exc:
                if write_failure_reason(exc) is not None:
                    raise   # the disk's refusal: the whole group fails with it
                conn.execute("ROLLBACK TO command")
                conn.execute("RELEASE command")
                tx.events.truncate(mark)
                deliveries.append((command.future, _as_store_error(exc), False))
            else:
                conn.execute("RELEASE command")
                deliveries.append((command.future, value, True))
        return deliveries, tx

    def _flush_events(self, tx: Tx, first: int) -> int:
        """Insert the group's events with consecutive cursors from ``first``; the new last
        cursor."""
        rows = tx.events.rows
        if not rows:
            return first - 1
        at = tx.now_iso
        insert_rows(
            tx.conn,
            "INSERT INTO events (cursor, type, at_utc, tracking_id, client_id, state, payload)",
            [(first + i, r[0], at, r[1], r[2], r[3], r[4]) for i, r in enumerate(rows)],
            "(?,?,?,?,?,?,?)")
        return first + len(rows) - 1


def _as_store_error(exc: Exception, prefix: str = "write failed") -> Exception:
    if isinstance(exc, sqlite3.Error):
        reason = write_failure_reason(exc)
        error: StoreError = (StoreWriteError(reason, str(exc)) if reason is not None
                             else StoreError(f"{prefix}: {exc}"))
        error.__cause__ = exc
        return error
    return exc
