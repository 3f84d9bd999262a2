"""Retention ([store] keep_days): under steady traffic the store stays bounded in rows on both
backends, and the SQLite file stops growing (freed pages are reused); what is still going on
is never deleted; the purge goes in small batches.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from smppgw.store import DB_FILENAME, ReceiptRecord, Store, SubmitOutcome
from smppgw.store.retention import Retention
from tests.store_backends import Backend
from tests.unit.test_store_writes import Clock, message

KEEP = 5.0          # seconds of retention (keep_days = KEEP / 86400)
PER_TICK = 200      # messages through their whole life per simulated second
TICKS = 60


async def one_second_of_traffic(store: Store, clock: Clock) -> None:
    """PER_TICK messages accepted, claimed, submitted and delivered, then the clock moves."""
    for batch in range(PER_TICK // 100):
        await store.accept_messages([message(client_id=f"c-{clock.now}-{batch}-{i}")
                                     for i in range(100)])
    claimed = await store.claim_segments("wavy", PER_TICK, now_wall=clock.now)
    await store.record_submit_results(
        [SubmitOutcome.ok(s.segment_id, f"S{s.segment_id}") for s in claimed])
    await store.record_receipts([ReceiptRecord("wavy", f"S{s.segment_id}", "DELIVRD", "000",
                                               "delivered", True) for s in claimed])
    clock.now += 1


def checkpointed_size(state_dir: Path) -> int:
    """The database file's size once everything in the WAL was copied into it (the WAL is
    reused from its start after a checkpoint, so its size is not the data's)."""
    path = state_dir / DB_FILENAME
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    return path.stat().st_size


async def test_a_store_under_steady_traffic_stays_bounded(backend: Backend) -> None:
    clock = Clock()
    store = await backend.open(clock=clock)
    retention = Retention(store, KEEP, clock=clock, batch=100)
    sizes: dict[int, int] = {}
    rows: dict[int, int] = {}
    try:
        for tick in range(TICKS):
            await one_second_of_traffic(store, clock)
            await retention.run_once()
            if tick in (TICKS // 3, TICKS - 1):
                counts = await store.counts()
                rows[tick] = sum(counts.messages.values())
                events = await store.events_after(0, limit=10_000)
                assert len(events) <= PER_TICK * 4 * (KEEP + 2)
                if backend.sqlite:
                    sizes[tick] = checkpointed_size(backend.state_dir)
        kept = sum((await store.counts()).messages.values())
    finally:
        await store.close()
    # Only what changed in the last KEEP seconds (+ the tick in progress) is left.
    assert kept <= PER_TICK * (KEEP + 1)
    assert rows[TICKS - 1] == rows[TICKS // 3]
    if backend.sqlite:
        # Three times as many messages went through by the end: the file did not grow.
        assert sizes[TICKS - 1] <= sizes[TICKS // 3] * 1.05, sizes


async def test_retention_spares_what_is_not_final_and_goes_in_batches(
    backend: Backend,
) -> None:
    clock = Clock()
    store = await backend.open(clock=clock)
    try:
        await one_second_of_traffic(store, clock)            # PER_TICK delivered
        waiting = message(client_id="still-queued")
        await store.accept_messages([waiting])
        clock.now += 10 * KEEP
        purged = []
        retention = Retention(store, KEEP, clock=clock, batch=50,
                              on_purged=purged.append)
        total = await retention.run_once()
        assert total.messages == PER_TICK
        assert all(max(p.messages, p.events) <= 50 for p in purged) and len(purged) >= 4
        view = await store.get_message(waiting.tracking_id)
        assert view is not None and view.state == "queued"    # kept whatever its age
        assert await store.find_messages("still-queued") != []
        # The idempotency of a purged client id ends with its message.
        assert await store.find_messages(f"c-{clock.now - 10 * KEEP - 1}-0-0") == []
        assert (await retention.run_once()).total == 0
    finally:
        await store.close()
