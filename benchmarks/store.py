"""The store alone, on either backend: accept_messages in batches of 1 and 100 from 1..64
concurrent callers, the full life of a message (accept, claim, submit result, receipt) in
batches, and a pipeline shaped like the gateway's (API callers, a dispatcher, receipts).

Prints msg/s, messages per commit and CPU per message: this process's threads (for SQLite the
writer thread is where the store works; for PostgreSQL it is this event loop) and, for a
private PostgreSQL, the server's processes. The store is on disk under ``--dir``; PostgreSQL is
a private server started there (fsync on), or the database at ``--pg-url``.

Usage: python benchmarks/store.py [--store sqlite|postgresql] [--pg-url URL]
       [--messages 20000] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smppgw.store import NewMessage, NewSegment, ReceiptRecord, SqliteStore, Store, SubmitOutcome
from smppgw.store.encoding import new_tracking_id

TEXT = "Your verification code is 482913. It expires in 10 minutes."


def new_message(i: int) -> NewMessage:
    tracking_id = new_tracking_id(time.time())
    return NewMessage(
        tracking_id=tracking_id, provider="wavy", source="Acme", destination=f"55119{i:08d}",
        text=TEXT, segments=(NewSegment(TEXT.encode(), 0, 0),), client_id=f"c-{tracking_id}",
        tlvs=((0x1401, b"tenant-1"),),
    )


# --- CPU --------------------------------------------------------------------------------------


def _stat_cpu(path: Path) -> float:
    stat = path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by Python thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            name = names.get(int(task.name), f"thread {task.name}")
            out[name] = out.get(name, 0.0) + _stat_cpu(task / "stat")
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every process below it (a PostgreSQL server)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, ValueError):
            total += _stat_cpu(Path(f"/proc/{pid}/stat"))
        todo.extend(children.get(pid, ()))
    return total


@dataclass
class Meter:
    """CPU per message over one measured run."""

    server_pid: int | None
    threads: dict[str, float] = field(default_factory=dict)
    server: float = 0.0

    def __enter__(self) -> Meter:
        self.threads = thread_cpu()
        self.server = tree_cpu(self.server_pid) if self.server_pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        after = thread_cpu()
        self.threads = {name: cpu - self.threads.get(name, 0.0) for name, cpu in after.items()}
        if self.server_pid:
            self.server = tree_cpu(self.server_pid) - self.server

    def per_message(self, messages: int) -> str:
        busy = sorted(((cpu, name) for name, cpu in self.threads.items() if cpu >= 0.01),
                      reverse=True)
        parts = [f"{name.split(':')[0]} {cpu / messages * 1e6:.0f}" for cpu, name in busy]
        if self.server_pid:
            parts.append(f"postgres {self.server / messages * 1e6:.0f}")
        return "µs/msg: " + ", ".join(parts)


# --- the backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    base: Path
    pg_url: str | None = None
    server: Any = None
    databases: int = 0

    @property
    def server_pid(self) -> int | None:
        if self.server is None:
            return None
        return int((Path(self.server.data) / "postmaster.pid").read_text().split()[0])

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """A new, empty store for one run."""
        if self.name == "sqlite":
            directory = tempfile.mkdtemp(dir=self.base, prefix="store-bench-")
            try:
                store = await SqliteStore.open(directory)
                try:
                    yield store
                finally:
                    await store.close()
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            return
        import asyncpg

        from smppgw.store.postgres import PostgresStore

        url = self.pg_url
        if url is None:
            self.databases += 1
            name = f"bench{self.databases}"
            conn = await asyncpg.connect(self.server.url())
            try:
                await conn.execute(f"CREATE DATABASE {name}")
            finally:
                await conn.close()
            url = self.server.url(name)
        store = await PostgresStore.open(url)
        try:
            yield store
        finally:
            await store.close()


def start_postgres(base: Path) -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql); or --pg-url")
    return PgServer(bindir, fsync=True, base=str(base), shared_buffers="128MB").start()


# --- the runs ---------------------------------------------------------------------------------


async def accept_run(
    backend: Backend, total: int, batch: int, callers: int,
) -> tuple[float, float, Meter]:
    """msg/s and messages per commit for ``callers`` tasks sending ``batch``-sized requests."""
    async with backend.store() as store:
        per_caller = max(1, total // (batch * callers))

        async def caller(offset: int) -> None:
            for r in range(per_caller):
                start = (offset * per_caller + r) * batch
                await store.accept_messages([new_message(start + k) for k in range(batch)])

        commits_before = store.commit_count
        with Meter(backend.server_pid) as meter:
            started = time.perf_counter()
            await asyncio.gather(*(caller(c) for c in range(callers)))
            elapsed = time.perf_counter() - started
        done = per_caller * batch * callers
        return done / elapsed, done / max(1, store.commit_count - commits_before), meter


async def lifecycle_run(backend: Backend, total: int, batch: int) -> tuple[float, Meter]:
    """Messages per second through accept → claim → ok → delivered receipt, batched."""
    async with backend.store() as store:
        done = 0
        with Meter(backend.server_pid) as meter:
            started = time.perf_counter()
            while done < total:
                await store.accept_messages([new_message(done + k) for k in range(batch)])
                claimed = await store.claim_segments("wavy", batch)
                await store.record_submit_results(
                    [SubmitOutcome.ok(s.segment_id, f"id{s.segment_id}", bind="wavy#1")
                     for s in claimed])
                await store.record_receipts(
                    [ReceiptRecord("wavy", f"id{s.segment_id}", "DELIVRD", "000", "delivered",
                                   True) for s in claimed])
                done += batch
            elapsed = time.perf_counter() - started
        return done / elapsed, meter


async def pipeline_run(backend: Backend, total: int, callers: int) -> tuple[float, Meter]:
    """Delivered messages per second with the gateway's shape: ``callers`` API requests of 10
    messages at a time, while one dispatcher claims and records ok results, and the inbound
    side records receipts, each waiting for its own previous write."""
    async with backend.store() as store:
        per_caller = max(1, total // (10 * callers))
        goal = per_caller * 10 * callers
        submitted: asyncio.Queue[list[int]] = asyncio.Queue()
        delivered = 0

        async def api(offset: int) -> None:
            for r in range(per_caller):
                start = (offset * per_caller + r) * 10
                await store.accept_messages([new_message(start + k) for k in range(10)])

        async def dispatcher() -> None:
            sent = 0
            while sent < goal:
                claimed = await store.claim_segments("wavy", 80)
                if not claimed:
                    await asyncio.sleep(0.001)  # nothing due: poll as the dispatcher does
                    continue
                await store.record_submit_results(
                    [SubmitOutcome.ok(s.segment_id, f"id{s.segment_id}") for s in claimed])
                submitted.put_nowait([s.segment_id for s in claimed])
                sent += len(claimed)

        async def inbound() -> None:
            nonlocal delivered
            while delivered < goal:
                ids = await submitted.get()
                while not submitted.empty():
                    ids += submitted.get_nowait()
                await store.record_receipts(
                    [ReceiptRecord("wavy", f"id{i}", "DELIVRD", "000", "delivered", True)
                     for i in ids])
                delivered += len(ids)

        with Meter(backend.server_pid) as meter:
            started = time.perf_counter()
            await asyncio.gather(dispatcher(), inbound(), *(api(c) for c in range(callers)))
            elapsed = time.perf_counter() - started
        return goal / elapsed, meter


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", metavar="URL",
                        help="with --store postgresql: an empty database to use (every run"
                             " starts from it as it is)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--dir", default="/var/tmp",
                        help="directory on the disk to measure (default /var/tmp)")
    args = parser.parse_args()
    backend = Backend(args.store, Path(args.dir), args.pg_url)
    if args.store == "postgresql" and args.pg_url is None:
        backend.server = await asyncio.to_thread(start_postgres, Path(args.dir))
    try:
        where = args.pg_url or (f"a private PostgreSQL under {args.dir}, fsync on"
                                if args.store == "postgresql" else f"SQLite under {args.dir}")
        print(f"store benchmark: {where}, {args.messages} messages per run")
        print(f"{'batch':>5} {'callers':>7} {'msg/s':>10} {'msg/commit':>10}  cpu")
        for batch in (1, 100):
            for callers in (1, 4, 16, 64):
                total = args.messages if batch > 1 else args.messages // 4
                rate, per_commit, meter = await accept_run(backend, total, batch, callers)
                print(f"{batch:>5} {callers:>7} {rate:>10,.0f} {per_commit:>10.1f}  "
                      f"{meter.per_message(total)}")
        rate, meter = await lifecycle_run(backend, args.messages // 2, 100)
        print(f"full life (accept, claim, submit ok, receipt), batches of 100: {rate:,.0f}"
              f" msg/s; {meter.per_message(args.messages // 2)}")
        rate, meter = await pipeline_run(backend, args.messages, 16)
        print(f"pipeline (16 API callers x 10 msgs, a dispatcher, receipts): {rate:,.0f} msg/s;"
              f" {meter.per_message(args.messages)}")
    finally:
        if backend.server is not None:
            await asyncio.to_thread(backend.server.stop)


if __name__ == "__main__":
    asyncio.run(main())
