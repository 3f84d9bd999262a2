"""Store crash safety, on both backends: a process under load is killed with SIGKILL;
everything it was told was committed must be there after a restart, and recovery leaves no part
in 'sending'. (Power loss rests on synchronous=FULL / synchronous_commit=on, checked in
test_store_writes and test_store_schema.)
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time

import asyncpg
import pytest

from smppgw.store import DB_FILENAME, StoreLockedError
from tests.store_backends import Backend

# The child prints a line only after the await that stored it returned:
#   A <tracking_id>   accepted (committed, fsynced)
#   S <tracking_id>   submit result ok recorded (single part → message 'submitted')
#   D <tracking_id>   delivered receipt recorded
CHILD = r"""
import asyncio, sys, uuid
from pathlib import Path
from smppgw.store import NewMessage, NewSegment, ReceiptRecord, SubmitOutcome
from smppgw.store.factory import open_store

LIMIT = 200_000   # bounded load: the parent kills long before

async def main(state_dir, url):
    store = await open_store(Path(state_dir), url=url or None)
    print("READY", flush=True)
    accepted = 0

    async def accept(worker):
        nonlocal accepted
        while accepted < LIMIT:
            batch = [NewMessage(uuid.uuid4().hex, "wavy", "Acme", "5511999990000", "crash",
                                (NewSegment(b"crash"),), client_id=uuid.uuid4().hex)
                     for _ in range(1 + worker % 8)]
            accepted += len(batch)
            results = await store.accept_messages(batch)
            sys.stdout.write("".join(f"A {r.tracking_id}\n" for r in results))
            sys.stdout.flush()

    async def dispatch():
        while accepted < LIMIT:
            claimed = await store.claim_segments("wavy", 50)
            if not claimed:
                await asyncio.sleep(0.001)
                continue
            # Answer half of them; the rest stay 'sending' like parts lost with a connection.
            answered = claimed[: len(claimed) // 2]
            await store.record_submit_results(
                [SubmitOutcome.ok(s.segment_id, f"smsc-{s.segment_id}") for s in answered])
            sys.stdout.write("".join(f"S {s.tracking_id}\n" for s in answered))
            sys.stdout.flush()
            results = await store.record_receipts(
                [ReceiptRecord("wavy", f"smsc-{s.segment_id}", "DELIVRD", "000", "delivered",
                               True) for s in answered[::2]])
            sys.stdout.write("".join(f"D {r.tracking_id}\n" for r in results if r.matched))
            sys.stdout.flush()

    await asyncio.gather(*(accept(w) for w in range(16)), dispatch())
    print("DONE", flush=True)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _read_line(stream: asyncio.StreamReader, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return b""
    try:
        return await asyncio.wait_for(stream.readline(), remaining)
    except TimeoutError:
        return b""


async def committed_rows(backend: Backend) -> dict[str, str]:
    """tracking_id → state of every message, read behind the store (after checking the
    SQLite file's integrity)."""
    if backend.sqlite:
        conn = sqlite3.connect(backend.state_dir / DB_FILENAME)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            return dict(conn.execute("SELECT tracking_id, state FROM messages").fetchall())
        finally:
            conn.close()
    assert backend.url is not None
    pg = await asyncpg.connect(backend.url)
    try:
        return {r[0]: r[1] for r in await pg.fetch("SELECT tracking_id, state FROM messages")}
    finally:
        await pg.close()


@pytest.mark.slow
async def test_everything_acknowledged_survives_sigkill(backend: Backend) -> None:
    state_dir = backend.state_dir
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(state_dir), backend.url or "",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        first = await _read_line(proc.stdout, deadline)
        assert first == b"READY\n", first + await proc.stderr.read()
        # The running daemon holds the state dir or database: a second one must refuse.
        with pytest.raises(StoreLockedError, match="smppgw.lock" if backend.sqlite
                           else "is in use"):
            await backend.open(**({} if backend.sqlite else {"lock_wait": 0}))
        accepted = delivered = 0
        while accepted < 3000 or delivered < 100:
            line = await _read_line(proc.stdout, deadline)
            if not line:
                break
            lines.append(line)
            accepted += line.startswith(b"A ")
            delivered += line.startswith(b"D ")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        rest = await proc.stdout.read()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == -signal.SIGKILL
    # Lines flushed before the kill were printed after their commit too; a cut line is not.
    lines.extend(line + b"\n" for line in rest.split(b"\n")[:-1])
    printed: dict[str, set[str]] = {"A": set(), "S": set(), "D": set()}
    for line in lines:
        kind, _, tracking_id = line.decode().strip().partition(" ")
        if kind in printed:
            printed[kind].add(tracking_id)
    assert len(printed["A"]) >= 3000 and len(printed["D"]) >= 100, (
        {k: len(v) for k, v in printed.items()})

    states = await committed_rows(backend)
    missing = printed["A"] - states.keys()
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"
    assert all(states[t] in ("submitted", "delivered") for t in printed["S"])
    assert all(states[t] == "delivered" for t in printed["D"])

    async with await backend.open() as store:   # the dead process's lock is gone
        report = await store.recover()
        assert report.requeued_segments > 0          # half of every claim was never answered
        counts = await store.counts()
        assert "sending" not in counts.segments
        assert sum(counts.segments.values()) == sum(counts.messages.values()) == len(states)
