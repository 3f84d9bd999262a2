"""Store write throughput: accept_messages on disk (temp dir, WAL, synchronous=FULL), batches of
1 and 100 messages from 1..64 concurrent callers, and the full life of a message (accept, claim,
submit result, receipt) in batches. Prints msg/s and how many messages each commit carried.

Usage: python benchmarks/store.py [--messages 20000] [--dir /path/on/the/target/disk]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid

from smppgw.store import NewMessage, NewSegment, ReceiptRecord, SqliteStore, SubmitOutcome

TEXT = "Your verification code is 482913. It expires in 10 minutes."


def new_message(i: int) -> NewMessage:
    tracking_id = uuid.uuid4().hex
    return NewMessage(
        tracking_id=tracking_id, provider="wavy", source="Acme", destination=f"55119{i:08d}",
        text=TEXT, segments=(NewSegment(TEXT.encode(), 0, 0),), client_id=f"c-{tracking_id}",
        tlvs=((0x1401, b"tenant-1"),),
    )


async def accept_run(base: str, total: int, batch: int, callers: int) -> tuple[float, float]:
    """msg/s and messages per commit for ``callers`` tasks sending ``batch``-sized requests."""
    directory = tempfile.mkdtemp(dir=base, prefix="store-bench-")
    try:
        store = await SqliteStore.open(directory)
        per_caller = max(1, total // (batch * callers))

        async def caller(offset: int) -> None:
            for r in range(per_caller):
                start = (offset * per_caller + r) * batch
                await store.accept_messages([new_message(start + k) for k in range(batch)])

        commits_before = store.commit_count
        started = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(callers)))
        elapsed = time.perf_counter() - started
        commits = store.commit_count - commits_before
        await store.close()
        done = per_caller * batch * callers
        return done / elapsed, done / max(1, commits)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def lifecycle_run(base: str, total: int, batch: int) -> float:
    """Messages per second through accept → claim → ok → delivered receipt, batched."""
    directory = tempfile.mkdtemp(dir=base, prefix="store-bench-")
    try:
        store = await SqliteStore.open(directory)
        started = time.perf_counter()
        done = 0
        while done < total:
            await store.accept_messages([new_message(done + k) for k in range(batch)])
            claimed = await store.claim_segments("wavy", batch)
            await store.record_submit_results(
                [SubmitOutcome.ok(s.segment_id, f"id{s.segment_id}", bind="wavy#1")
                 for s in claimed])
            await store.record_receipts(
                [ReceiptRecord("wavy", f"id{s.segment_id}", "DELIVRD", "000", "delivered", True)
                 for s in claimed])
            done += batch
        elapsed = time.perf_counter() - started
        await store.close()
        return done / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def pipeline_run(base: str, total: int, callers: int) -> float:
    """Delivered messages per second with the gateway's shape: ``callers`` API requests of 10
    messages at a time, while one dispatcher claims, records ok results and receipts."""
    directory = tempfile.mkdtemp(dir=base, prefix="store-bench-")
    try:
        store = await SqliteStore.open(directory)
        per_caller = max(1, total // (10 * callers))
        goal = per_caller * 10 * callers
        delivered = 0

        async def api(offset: int) -> None:
            for r in range(per_caller):
                start = (offset * per_caller + r) * 10
                await store.accept_messages([new_message(start + k) for k in range(10)])

        async def dispatcher() -> None:
            nonlocal delivered
            while delivered < goal:
                claimed = await store.claim_segments("wavy", 500)
                if not claimed:
                    await asyncio.sleep(0.001)
                    continue
                await store.record_submit_results(
                    [SubmitOutcome.ok(s.segment_id, f"id{s.segment_id}") for s in claimed])
                await store.record_receipts(
                    [ReceiptRecord("wavy", f"id{s.segment_id}", "DELIVRD", "000", "delivered",
                                   True) for s in claimed])
                delivered += len(claimed)

        started = time.perf_counter()
        await asyncio.gather(dispatcher(), *(api(c) for c in range(callers)))
        elapsed = time.perf_counter() - started
        await store.close()
        return goal / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="directory on the disk to measure (default: the temp dir)")
    args = parser.parse_args()
    print(f"accept_messages, {args.messages} messages per run, on disk under {args.dir}")
    print(f"{'batch':>5} {'callers':>7} {'msg/s':>10} {'msg/commit':>10}")
    for batch in (1, 100):
        for callers in (1, 4, 16, 64):
            total = args.messages if batch > 1 else args.messages // 4
            rate, per_commit = await accept_run(args.dir, total, batch, callers)
            print(f"{batch:>5} {callers:>7} {rate:>10,.0f} {per_commit:>10.1f}")
    rate = await lifecycle_run(args.dir, args.messages // 2, 100)
    print(f"full life (accept, claim, submit ok, receipt), batches of 100: {rate:,.0f} msg/s")
    rate = await pipeline_run(args.dir, args.messages, 16)
    print(f"pipeline (16 API callers x 10 msgs, 1 dispatcher, receipts): {rate:,.0f} msg/s")


if __name__ == "__main__":
    asyncio.run(main())
