"""The operator's commands on a large store, on either backend: each kind of message list
(newest, by state, provider, number, time, deep pages), a cancel and a retry-shaped accept,
timed on a store filled with ``--messages`` messages (default one million).

The store is filled by SQL, not through accept_messages (this measures reads, not the accept
path: benchmarks/store.py does that): one message in a hundred failed, one in a thousand
queued, a provider with one message in five hundred, 20 000 distinct numbers. Prints the
median and the worst of ``--repeat`` calls per query, in milliseconds.

Usage: python benchmarks/messages.py [--store sqlite|postgresql] [--messages 1000000]
       [--repeat 20] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from smppgw.store import MessageQuery, NewMessage, NewSegment, SqliteStore, Store
from smppgw.store.encoding import new_tracking_id

T0_MS = 1_700_000_000_000

# One row per message and per part: (i) → columns. Destinations repeat every 20 000 messages,
# states and providers as the module says; created one millisecond apart.
_MESSAGES_SELECT = """
    SELECT printf('%012x', {t0} + i) || printf('%020x', i),
           CASE WHEN i % 500 = 0 THEN 'rare' ELSE 'wavy' END, 'Acme',
           '55119' || printf('%08d', i % 20000), 'x', 0, 'gsm7', {t0} + i, {t0} + i,
           CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 1000 = 1 THEN 'queued'
                ELSE 'delivered' END, 1, '{{}}',
           CASE WHEN i % 100 = 0 THEN 'failed' END
"""
_SEGMENTS_SELECT = """
    SELECT tracking_id, 0, provider, x'78', 0, 0,
           CASE state WHEN 'queued' THEN 'queued' WHEN 'failed' THEN 'failed'
                ELSE 'delivered' END, created_unix_ms, created_unix_ms FROM messages
"""
_MESSAGE_COLUMNS = ("tracking_id, provider, source, destination, text, data_coding, encoding,"
                    " created_unix_ms, updated_unix_ms, state, parts, answer,"
                    " undelivered_state")
_SEGMENT_COLUMNS = ("tracking_id, part_index, provider, short_message, esm_class, data_coding,"
                    " state, created_unix_ms, next_attempt_unix_ms")


def fill_sqlite(path: Path, count: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO messages ({_MESSAGE_COLUMNS})"
                 " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                 + _MESSAGES_SELECT.format(t0=T0_MS) + " FROM n", (count,))
    conn.execute(f"INSERT INTO segments ({_SEGMENT_COLUMNS})" + _SEGMENTS_SELECT)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


async def fill_postgres(url: str, count: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        select = (_MESSAGES_SELECT.format(t0=T0_MS)
                  .replace(f"printf('%012x', {T0_MS} + i)",
                           f"lpad(to_hex({T0_MS}::bigint + i), 12, '0')")
                  .replace("printf('%020x', i)", "lpad(to_hex(i), 20, '0')")
                  .replace("printf('%08d', i % 20000)", "lpad((i % 20000)::text, 8, '0')")
                  .replace(f"{T0_MS} + i", f"{T0_MS}::bigint + i"))
        await conn.execute(f"INSERT INTO messages ({_MESSAGE_COLUMNS})" + select
                           + " FROM generate_series(1, $1) AS i", count)
        await conn.execute(f"INSERT INTO segments ({_SEGMENT_COLUMNS})"
                           + _SEGMENTS_SELECT.replace("x'78'", "'\\x78'::bytea"))
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Median and worst of ``repeat`` calls, in ms (after one call to warm the caches)."""
    await call()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


async def run(store: Store, count: int, repeat: int) -> None:
    middle = (T0_MS + count // 2) / 1000
    deep = MessageQuery(limit=50)
    for _ in range(100):   # a hundred pages in: the keyset makes it as cheap as the first
        page = await store.list_messages(deep)
        deep = MessageQuery(limit=50, after=page.next)
    queries = {
        "newest 50": MessageQuery(),
        "page 101 of the newest": deep,
        "state=failed (1%)": MessageQuery(state="failed"),
        "state=queued (0.1%, the queue)": MessageQuery(state="queued"),
        "state=delivered (98.9%)": MessageQuery(state="delivered"),
        "provider=rare (0.2%)": MessageQuery(provider="rare"),
        "to_prefix=one number (50 messages)": MessageQuery(to_prefix="5511900012345"),
        "to_prefix=55, since the last hour": MessageQuery(to_prefix="55",
                                                          since_wall=(T0_MS + count) / 1000
                                                          - 3600),
        "since/until one minute, mid-store": MessageQuery(since_wall=middle,
                                                          until_wall=middle + 60),
        "state=failed, provider=rare": MessageQuery(state="failed", provider="rare"),
        "state=submitted (none: walks its limit)": MessageQuery(state="submitted"),
    }
    print(f"{'query':<42} {'median ms':>10} {'worst ms':>9} {'found':>6}")
    for name, query in queries.items():
        page = await store.list_messages(query)
        median, worst = await timed(repeat, lambda q=query: store.list_messages(q))
        print(f"{name:<42} {median:>10.2f} {worst:>9.2f} {len(page.messages):>6}")

    index = iter(range(10**6))

    async def accept_and_cancel() -> None:
        n = next(index)
        tracking_id = new_tracking_id(time.time())
        await store.accept_messages([NewMessage(
            tracking_id, "wavy", "Acme", f"5521{n:09d}", "x", (NewSegment(b"x"),))])
        await store.cancel_message(tracking_id, "benchmark")

    median, worst = await timed(repeat, accept_and_cancel)
    print(f"{'accept + cancel (two commits)':<42} {median:>10.2f} {worst:>9.2f}")
    failed = (await store.list_messages(MessageQuery(state="failed", limit=200))).messages
    retried = iter(failed)

    async def retry() -> None:
        old = next(retried)
        await store.accept_messages([NewMessage(
            new_tracking_id(time.time()), "wavy", "Acme", old.destination, "x",
            (NewSegment(b"x"),), retry_of=old.tracking_id)])

    median, worst = await timed(min(repeat, len(failed) - 1), retry)
    print(f"{'accept of a retry (linked, one commit)':<42} {median:>10.2f} {worst:>9.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(dir=args.dir, prefix="queue-bench-"))
    server: Any = None
    try:
        started = time.perf_counter()
        if args.store == "sqlite":
            await (await SqliteStore.open(directory)).close()
            fill_sqlite(directory / "smppgw.db", args.messages)
            store: Store = await SqliteStore.open(directory)
            where = f"SQLite under {args.dir}"
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from smppgw.store.postgres import PostgresStore
            from tests.pgserver import PgServer, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
            # Its own directory under --dir: the server runs as an unprivileged user.
            server = PgServer(bindir, fsync=True, base=args.dir,
                              shared_buffers="128MB").start()
            await (await PostgresStore.open(server.url())).close()
            await fill_postgres(server.url(), args.messages)
            store = await PostgresStore.open(server.url())
            where = f"a private PostgreSQL under {args.dir}"
        print(f"operator commands on {args.messages:,} messages, {where}"
              f" (filled in {time.perf_counter() - started:.0f} s)")
        try:
            await run(store, args.messages, args.repeat)
        finally:
            await store.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
