"""The PostgreSQL writer: one asyncio task, one connection, write commands committed in groups.

Owns the transaction, the event numbering and the connection's life (reconnecting after an
outage); knows nothing of what the commands do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import asyncpg

from smppgw.store.encoding import dumps, iso, ms
from smppgw.store.grouping import MERGED_KINDS, Deferred, order, runs
from smppgw.store.interface import WriteHealth
from smppgw.store.models import (
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    StoreWriteError,
)
from smppgw.store.rules import EventLog

__all__ = ["Command", "Tx", "Writer", "is_connection_error"]

# Theory of operation
# -------------------
# Group commit, set-based, failure isolation: as the SQLite writer (sqlite/writer.py), with
# asyncpg: the task takes every queued command (up to ``max_group``), runs each merged kind
# once inside one transaction, numbers the group's events and COMMITs; if a command raises, the
# transaction is rolled back and the group runs again command by command, each in a SAVEPOINT.
#
# Durability. The connection runs with synchronous_commit = on, so COMMIT returns once the WAL
# is flushed: a caller is told "committed" only then. A group made only of claims sets
# synchronous_commit = off for itself: a lost claim is harmless (recovery queues it again).
#
# Event cursors. The group's events are numbered last, just before COMMIT, by one statement
# that bumps the single row of event_counter and inserts the events: the row lock it takes is
# held until COMMIT, so transactions that append events commit in cursor order, and a reader
# that sees cursor N sees every cursor below it (a sequence would not: numbers taken in one
# order can commit in another). The same statement NOTIFYs smppgw_events, a wake-up hint for
# long-polls on other connections; it is delivered only if the transaction commits.
#
# Outage. A lost connection, or a server that refuses it, fails the group with
# StoreUnavailableError, a StoreWriteError (the API answers 503, inbound asks the SMSC to
# redeliver, the dispatcher stops claiming): whether a COMMIT cut mid-way landed is unknown, and
# both callers' retries are safe (client ids and receipt duplicates). The next group
# reconnects; while the database stays away, attempts are spaced RECONNECT_INTERVAL apart and
# the commands in between fail at once. The first commit after it ends the outage.

log = logging.getLogger(__name__)

RECONNECT_INTERVAL: Final = 1.0   # seconds between connection attempts during an outage

_FLUSH_EVENTS_SQL: Final = """
    WITH counter AS (
        UPDATE event_counter SET last = last + $1 WHERE id = 1 RETURNING last
    ), appended AS (
        INSERT INTO events (cursor, type, at_utc, tracking_id, client_id, state, payload)
        SELECT counter.last - $1 + e.n, e.r->>0, $2, e.r->>1, e.r->>2, e.r->>3, e.r->>4
          FROM counter, json_array_elements($3::json) WITH ORDINALITY AS e(r, n)
    )
    SELECT last, pg_notify('smppgw_events', last::text) FROM counter
"""


def is_connection_error(exc: BaseException) -> bool:
    """The connection is gone or the server will not serve it: an outage, not a bad command."""
    return isinstance(exc, (
        OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,         # admin shutdown, crash shutdown
        asyncpg.exceptions.InsufficientResourcesError,        # disk full, too many connections
    ))


class Tx:
    """One group's transaction as the commands see it."""

    __slots__ = ("conn", "events", "now_iso", "now_ms")

    def __init__(self, conn: asyncpg.Connection, now_ms: int) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.now_iso = iso(now_ms)
        self.events = EventLog()


class Command:
    """As sqlite.writer.Command, with a coroutine function: ``await fn(tx, items)``."""

    __slots__ = ("durable", "fn", "future", "items", "kind")

    def __init__(
        self, fn: Callable[[Tx, Sequence[object]], Awaitable[object]],
        items: Sequence[object], future: asyncio.Future[object], *,
        kind: str | None = None, durable: bool = True,
    ) -> None:
        self.fn = fn
        self.items = items
        self.future = future
        self.kind = kind
        self.durable = durable


_Delivery = tuple["asyncio.Future[object]", object, bool]


class _CommandFailed(Exception):
    """Internal: a command (not the connection) raised during the merged run."""


class Writer:
    """Runs until ``stop()``: takes groups, commits them on its connection, delivers results.

    ``connect()`` gives a fresh, set-up connection (or raises); ``on_commit(commands,
    seconds)`` observes each committed group; ``on_cursor(last)`` is told the last cursor after
    each commit that appended events; ``health`` hears every refused group (the database out
    of reach) and every commit (it is back).
    """

    def __init__(
        self, conn: asyncpg.Connection, *,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        clock: Callable[[], float], max_group: int,
        on_commit: Callable[[int, float], None] | None,
        on_cursor: Callable[[int], None],
        health: WriteHealth,
        reconnect_interval: float = RECONNECT_INTERVAL,
    ) -> None:
        self._conn: asyncpg.Connection | None = conn
        self._reconnect_interval = reconnect_interval
        self._connect = connect
        self._clock = clock
        self._max_group = max_group
        self._on_commit = on_commit
        self._on_cursor = on_cursor
        self._health = health
        self._queue: deque[Command] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_attempt = 0.0
        self.commit_count = 0
        self.command_count = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, command: Command) -> None:
        if self._stopping:
            raise StoreClosedError("the store is closed")
        self._queue.append(command)
        self._wake.set()

    def stop(self) -> None:
        """Commit what is queued, then return from ``run``."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._stopping:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                group: list[Command] = []
                while self._queue and len(group) < self._max_group:
                    group.append(self._queue.popleft())
                # Shielded: a cancelled writer task must not leave a group half-delivered.
                await asyncio.shield(self._run_group(group))
        finally:
            error = StoreClosedError("the store is closed")
            while self._queue:
                command = self._queue.popleft()
                if not command.future.done():
                    command.future.set_exception(error)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._conn.close(timeout=5))
                self._conn = None

    async def _run_group(self, group: list[Command]) -> None:
        started = time.perf_counter()
        group.sort(key=order)
        try:
            conn = await self._connection()
            deliveries, last = await self._attempt(conn, group, merged=True)
            if deliveries is None:
                deliveries, last = await self._attempt(conn, group, merged=False)
            assert deliveries is not None
        except Exception as exc:
            deliveries = [(c.future, self._outage(exc), False) for c in group]
            last = None
        committed = any(ok for _, _, ok in deliveries)
        if committed:
            self.commit_count += 1
            if self._on_commit is not None:
                with contextlib.suppress(Exception):  # a metrics fault must not stop the writer
                    self._on_commit(len(group), time.perf_counter() - started)
        if last is not None:
            self._on_cursor(last)
        refused = next((value for _, value, ok in deliveries
                        if not ok and isinstance(value, StoreWriteError)), None)
        if refused is not None:
            self._health.refused(refused)
        elif committed:
            self._health.succeeded()
        self.command_count += len(deliveries)
        for future, value, ok in deliveries:
            if future.done():   # the caller was cancelled: it loses only its wait
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value if isinstance(value, BaseException)
                                     else StoreError(str(value)))

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        now = time.monotonic()
        if now < self._next_attempt:
            raise StoreUnavailableError("unreachable; the next connection attempt is soon")
        self._next_attempt = now + self._reconnect_interval
        self._conn = await self._connect()
        return self._conn

    def _outage(self, exc: Exception) -> Exception:
        """The error every command of a group gets when the database failed under it."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        if isinstance(exc, StoreError):
            return exc
        error = StoreUnavailableError(f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    async def _attempt(
        self, conn: asyncpg.Connection, group: list[Command], *, merged: bool,
    ) -> tuple[list[_Delivery] | None, int | None]:
        """One transaction over the group: merged (None when a command raised: rolled back)
        or command by command under savepoints. Connection errors propagate."""
        tx = Tx(conn, ms(self._clock()))
        transaction = conn.transaction()
        await transaction.start()
        try:
            if not any(c.durable for c in group):
                await conn.execute("SET LOCAL synchronous_commit = off")
            deliveries = (await self._merged(tx, group) if merged
                          else await self._isolated(tx, group))
            last: int | None = None
            first = 0
            if any(ok for _, _, ok in deliveries):
                if tx.events.rows:
                    last = await self._flush_events(tx)
                    first = last - len(tx.events) + 1
                await transaction.commit()
            else:
                await transaction.rollback()
        except _CommandFailed as failed:
            await _quiet_rollback(transaction)
            if len(group) == 1:
                cause = failed.__cause__
                assert isinstance(cause, Exception)
                return [(group[0].future, _as_store_error(cause), False)], None
            return None, None
        except BaseException:
            await _quiet_rollback(transaction)
            raise
        return [(f, v.resolve(first) if ok and isinstance(v, Deferred) else v, ok)
                for f, v, ok in deliveries], last

    async def _merged(self, tx: Tx, group: list[Command]) -> list[_Delivery]:
        deliveries: list[_Delivery] = []
        for run in runs(group):
            first = run[0]
            try:
                if first.kind not in MERGED_KINDS:
                    deliveries.append((first.future, await first.fn(tx, first.items), True))
                    continue
                items = [item for c in run for item in c.items]
                results = await first.fn(tx, items)
            except Exception as exc:
                if is_connection_error(exc):
                    raise
                raise _CommandFailed from exc
            assert isinstance(results, list) and len(results) == len(items)
            offset = 0
            for c in run:
                deliveries.append((c.future, results[offset:offset + len(c.items)], True))
                offset += len(c.items)
        return deliveries

    async def _isolated(self, tx: Tx, group: list[Command]) -> list[_Delivery]:
        deliveries: list[_Delivery] = []
        for command in group:
            mark = len(tx.events)
            savepoint = tx.conn.transaction()
            await savepoint.start()
            try:
                value = await command.fn(tx, command.items)
            except Exception as exc:
                if is_connection_error(exc):
                    raise
                await savepoint.rollback()
                tx.events.truncate(mark)
                deliveries.append((command.future, _as_store_error(exc), False))
            else:
                await savepoint.commit()
                deliveries.append((command.future, value, True))
        return deliveries

    async def _flush_events(self, tx: Tx) -> int:
        rows = tx.events.rows
        last = await tx.conn.fetchval(_FLUSH_EVENTS_SQL, len(rows), tx.now_iso, dumps(rows))
        return int(last)


async def _quiet_rollback(transaction: asyncpg.transaction.Transaction) -> None:
    with contextlib.suppress(Exception):
        await transaction.rollback()


def _as_store_error(exc: Exception) -> Exception:
    if isinstance(exc, asyncpg.PostgresError):
        error = StoreError(f"write failed: {exc}")
        error.__cause__ = exc
        return error
    return exc
