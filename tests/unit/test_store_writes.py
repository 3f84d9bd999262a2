"""Store writes: accepting (idempotency, per-message errors), group commit and its failure
isolation, the state dir or database lock, claiming parts, submit outcomes, expiry and restart
recovery. Every test runs on both backends (the ``backend`` fixture) unless it says otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from smppgw.store import (
    AcceptResult,
    MessageMove,
    NewMessage,
    NewSegment,
    ReceiptRecord,
    SqliteStore,
    Store,
    StoreClosedError,
    StoreLockedError,
    SubmitOutcome,
    SubmitRecorded,
)
from tests.store_backends import Backend

T0 = 1_700_000_000.0
_ids = itertools.count(1)


class Clock:
    """Wall clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(
    parts: int = 1, *, client_id: str | None = None, provider: str = "wavy",
    valid_until_wall: float | None = None, tracking_id: str | None = None,
) -> NewMessage:
    n = next(_ids)
    return NewMessage(
        tracking_id=tracking_id or f"{n:032x}", provider=provider, source="Acme",
        destination=f"5511{n:09d}", text=f"message {n}",
        segments=tuple(NewSegment(f"part {i}".encode(), 0x40 if parts > 1 else 0, 0,
                                  ((0x020C, bytes([i + 1])),)) for i in range(parts)),
        client_id=client_id, tlvs=((0x1401, b"tenant"),), valid_until_wall=valid_until_wall,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(backend: Backend, clock: Clock) -> AsyncIterator[Store]:
    s = await backend.open(clock=clock)
    yield s
    await s.close()


def raw_write(store: Store, fn: Callable[[Any], object]) -> Awaitable[Any]:
    """Run ``fn(tx)`` alone in a group of ``store``'s writer (a test's way behind the
    interface): on SQLite on the writer thread, on PostgreSQL as a coroutine function."""
    return store._write(fn)  # type: ignore[attr-defined, no-any-return]


def failing_write(store: Store, name: str, error: str) -> Callable[[Any], object]:
    """A write that stores a webhook position, then raises ValueError(error)."""
    sql = f"INSERT INTO webhook_positions (name, cursor, updated_unix_ms) VALUES ('{name}', 9, 0)"
    if isinstance(store, SqliteStore):
        def broken(tx: Any) -> None:
            tx.conn.execute(sql)
            raise ValueError(error)
        return broken

    async def broken_async(tx: Any) -> None:
        await tx.conn.execute(sql)
        raise ValueError(error)
    return broken_async


async def _wait_pending(store: Store, n: int) -> None:
    """Let queued tasks reach the writer queue (bounded; yields, never sleeps)."""
    for _ in range(10_000):
        if store.pending_writes >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {store.pending_writes} of {n} writes queued")


class Blocker:
    """Holds the writer inside a transaction so the next writes queue up as one group (the
    SQLite writer thread on a threading.Event, the PostgreSQL writer task on an asyncio one)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started = threading.Event()
        self.release = threading.Event()
        self.released = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _block(self, tx: object) -> None:
        self.started.set()
        self.release.wait(10)

    async def _block_async(self, tx: object) -> None:
        self.started.set()
        await self.released.wait()

    async def __aenter__(self) -> Blocker:
        sqlite = isinstance(self.store, SqliteStore)
        self.task = asyncio.create_task(
            raw_write(self.store, self._block if sqlite else self._block_async))
        assert await asyncio.to_thread(self.started.wait, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        self.released.set()
        assert self.task is not None
        await self.task


# --- accept --------------------------------------------------------------------------------------


async def test_accept_stores_message_segments_and_a_queued_event(store: Store) -> None:
    m = message(parts=2, client_id="app-1", valid_until_wall=T0 + 3600)
    (result,) = await store.accept_messages([m])
    assert result == AcceptResult(m.tracking_id, "app-1", {
        "tracking_id": m.tracking_id, "accepted": True, "segments": 2, "data_coding": 0})
    view = await store.get_message(m.tracking_id)
    assert view is not None
    assert (view.state, view.parts, view.client_id, view.valid_until_wall) == (
        "queued", 2, "app-1", T0 + 3600)
    assert view.tlvs == ((0x1401, b"tenant"),)
    assert [(s.part_index, s.state, s.short_message, s.esm_class, s.tlvs)
            for s in view.segments] == [
        (0, "queued", b"part 0", 0x40, ((0x020C, b"\x01"),)),
        (1, "queued", b"part 1", 0x40, ((0x020C, b"\x02"),)),
    ]
    (event,) = await store.events_after(0)
    assert event.as_dict() == {
        "cursor": 1, "type": "state", "at": "2023-11-14T22:13:20.000Z",
        "tracking_id": m.tracking_id, "id": "app-1", "state": "queued", "segments": 2}
    assert store.last_cursor == 1


async def test_same_client_id_returns_the_first_answer(store: Store) -> None:
    first = message(client_id="dup")
    custom = {"tracking_id": first.tracking_id, "accepted": True, "segments": 1,
              "data_coding": 0, "note": "first"}
    first = replace(first, answer=custom)
    (a,) = await store.accept_messages([first])
    second, third = await store.accept_messages([message(client_id="dup"),
                                                 message(client_id="dup")])
    for r in (second, third):
        assert r.duplicate and r.tracking_id == first.tracking_id and r.answer == custom
    assert not a.duplicate
    counts = await store.counts()
    assert counts.messages == {"queued": 1}


async def test_duplicate_client_ids_inside_one_batch(store: Store) -> None:
    a, b = message(client_id="same"), message(client_id="same")
    ra, rb = await store.accept_messages([a, b])
    assert not ra.duplicate and rb.duplicate and rb.tracking_id == a.tracking_id


async def test_idempotency_survives_close_and_reopen(backend: Backend) -> None:
    first = message(client_id="persist")
    async with await backend.open() as s:
        (r1,) = await s.accept_messages([first])
    async with await backend.open() as s:
        (r2,) = await s.accept_messages([message(client_id="persist")])
        assert r2.duplicate and r2.tracking_id == first.tracking_id and r2.answer == r1.answer
        assert (await s.counts()).messages == {"queued": 1}


async def test_a_bad_message_does_not_reject_the_others(store: Store) -> None:
    good1, good2 = message(), message()
    taken = message()
    await store.accept_messages([taken])
    results = await store.accept_messages([
        good1,
        message(tracking_id="NOT-HEX"),
        replace(message(), segments=()),
        message(tracking_id=taken.tracking_id),
        good2,
    ])
    assert [r.stored for r in results] == [True, False, False, False, True]
    assert "32 lower-case hex" in (results[1].error or "")
    assert "at least one segment" in (results[2].error or "")
    assert "already in use" in (results[3].error or "")
    assert (await store.counts()).messages == {"queued": 3}


# --- group commit --------------------------------------------------------------------------------


async def test_concurrent_accepts_share_commits(store: Store) -> None:
    async with Blocker(store):
        before = store.commit_count
        tasks = [asyncio.create_task(store.accept_messages([message()])) for _ in range(200)]
        await _wait_pending(store, 200)
    results = await asyncio.gather(*tasks)
    assert all(r[0].stored for r in results)
    # One commit for the blocker's group, one for all 200 requests.
    assert store.commit_count - before == 2
    assert (await store.counts()).messages == {"queued": 200}


async def test_one_failing_command_does_not_fail_its_group(store: Store) -> None:
    # Writes something, then fails: its write must be rolled back alone.
    broken = failing_write(store, "x", "boom")
    async with Blocker(store):
        before = store.commit_count
        first = asyncio.create_task(store.accept_messages([message(client_id="a")]))
        failing = asyncio.create_task(raw_write(store, broken))
        last = asyncio.create_task(store.accept_messages([message(client_id="b")]))
        await _wait_pending(store, 3)
    with pytest.raises(ValueError, match="boom"):
        await failing
    assert (await first)[0].stored and (await last)[0].stored
    assert store.commit_count - before == 2
    assert await store.get_webhook_position("x") == 0
    assert (await store.counts()).messages == {"queued": 2}
    assert [e.client_id for e in await store.events_after(0)] == ["a", "b"]


async def test_a_failing_command_alone_is_rolled_back(store: Store) -> None:
    with pytest.raises(ValueError, match="alone"):
        await raw_write(store, failing_write(store, "y", "alone"))
    assert await store.get_webhook_position("y") == 0
    (r,) = await store.accept_messages([message()])   # the writer carries on
    assert r.stored


async def test_a_cancelled_caller_loses_only_its_wait(store: Store) -> None:
    m = message(client_id="cancelled")
    async with Blocker(store):
        task = asyncio.create_task(store.accept_messages([m]))
        await _wait_pending(store, 1)
        task.cancel()
    await store.flush()
    assert task.cancelled()
    assert await store.get_tracking_id("cancelled") == m.tracking_id


# --- life cycle ----------------------------------------------------------------------------------


async def test_a_second_store_on_the_same_place_is_refused(backend: Backend) -> None:
    async with await backend.open():
        with pytest.raises(StoreLockedError) as info:
            await backend.open(**({} if backend.sqlite else {"lock_wait": 0}))
        if backend.sqlite:
            lock = str(backend.state_dir / "smppgw.lock")
            assert lock in str(info.value) and info.value.path == lock
        else:
            assert "is in use: another smppgw holds its store lock" in str(info.value)
    async with await backend.open():   # released by close
        pass


async def test_two_stores_in_one_process(backend: Backend) -> None:
    async with await backend.open(place="a") as a, await backend.open(place="b") as b:
        await a.accept_messages([message(), message()])
        await b.accept_messages([message()])
        assert (a.last_cursor, b.last_cursor) == (2, 1)
        assert len(await b.events_after(0)) == 1


async def test_close_commits_queued_writes_then_refuses(backend: Backend) -> None:
    s = await backend.open()
    tasks = [asyncio.create_task(s.accept_messages([message()])) for _ in range(20)]
    await _wait_pending(s, 1)
    await s.close()
    await s.close()   # idempotent
    assert all(t.done() and t.result()[0].stored for t in tasks)
    with pytest.raises(StoreClosedError):
        await s.accept_messages([message()])
    with pytest.raises(StoreClosedError):
        await s.events_after(0)
    async with await backend.open() as again:
        assert (await again.counts()).messages == {"queued": 20}
        assert again.last_cursor == 20


# --- dispatch ------------------------------------------------------------------------------------


async def test_claim_oldest_first_parts_in_order_per_provider(
    store: Store, clock: Clock
) -> None:
    a = message(parts=3)
    await store.accept_messages([a])
    clock.now += 1
    b = message()
    other = message(provider="qikberry")
    await store.accept_messages([b, other])
    claimed = await store.claim_segments("wavy", 2, now_wall=clock.now)
    assert [(s.tracking_id, s.part_index) for s in claimed] == [
        (a.tracking_id, 0), (a.tracking_id, 1)]
    first = claimed[0]
    assert (first.parts, first.source, first.destination, first.esm_class, first.attempts) == (
        3, "Acme", a.destination, 0x40, 0)
    # message TLVs first, then the part's own
    assert first.tlvs == ((0x1401, b"tenant"), (0x020C, b"\x01"))
    # Part 3 waits until parts 1 and 2 are answered: claimed apart, it could overtake them.
    rest = await store.claim_segments("wavy", 10, now_wall=clock.now)
    assert [(s.tracking_id, s.part_index) for s in rest] == [(b.tracking_id, 0)]
    assert await store.claim_segments("wavy", 10, now_wall=clock.now) == []
    (q,) = await store.claim_segments("qikberry", 10, now_wall=clock.now)
    assert q.tracking_id == other.tracking_id and q.provider == "qikberry"
    stats = await store.queue_stats()
    assert stats["wavy"].queued == 1 and stats["wavy"].sending == 3
    await store.record_submit_results([SubmitOutcome.ok(p.segment_id, f"id-{p.part_index}")
                                       for p in claimed])
    (last,) = await store.claim_segments("wavy", 10, now_wall=clock.now)
    assert (last.tracking_id, last.part_index) == (a.tracking_id, 2)


async def test_a_part_is_claimed_only_with_or_after_every_part_before_it(
    store: Store, clock: Clock
) -> None:
    """Parts in order: a part refused for a while (retry due later) holds back the parts
    after it, even those due now; they go when it has been answered, never before it."""
    m = message(parts=3)
    await store.accept_messages([m])
    p0, p1, p2 = await store.claim_segments("wavy", 10, now_wall=clock.now)
    await store.record_submit_results([
        SubmitOutcome.ok(p0.segment_id, "id-0"),
        SubmitOutcome.transient(p1.segment_id, clock.now + 30, status_name="ESME_RSYSERR"),
        SubmitOutcome.released(p2.segment_id),  # the run stopped at part 2: never sent
    ])
    # Part 3 is due; part 2 is not: nothing may go.
    assert await store.claim_segments("wavy", 10, now_wall=clock.now + 1) == []
    clock.now += 31
    # Both due now, part 3 with the earlier due time: claimed together, parts in order
    # for the dispatcher, which sends a message's parts one after another.
    again = await store.claim_segments("wavy", 10, now_wall=clock.now)
    assert sorted(p.part_index for p in again) == [1, 2]
    # A batch that can take part 3 but not part 2 (a LIMIT cut between them) leaves part 3.
    await store.record_submit_results([SubmitOutcome.released(p2.segment_id)])
    clock.now += 1
    await store.record_submit_results([SubmitOutcome.released(p1.segment_id)])  # due later
    assert await store.claim_segments("wavy", 1, now_wall=clock.now) == []
    assert [p.part_index for p in await store.claim_segments("wavy", 2, now_wall=clock.now)
            ] == [2, 1]  # oldest due first: the dispatcher sorts a message's parts


async def test_submit_ok_on_every_part_makes_the_message_submitted(store: Store) -> None:
    m = message(parts=2, client_id="two")
    await store.accept_messages([m])
    p0, p1 = await store.claim_segments("wavy", 10, now_wall=T0)
    assert await store.record_submit_results(
        [SubmitOutcome.ok(p0.segment_id, "ID-0", "id-0", bind="wavy#1")]) == ["queued"]
    assert await store.record_submit_results(
        [SubmitOutcome.ok(p1.segment_id, "ID-1", "id-1", bind="wavy#2")]) == ["submitted"]
    view = await store.get_message(m.tracking_id)
    assert view is not None and view.state == "submitted" and view.attempts == 2
    assert [(s.state, s.smsc_message_id, s.submit_status, s.bind, s.attempts)
            for s in view.segments] == [
        ("submitted", "ID-0", "ESME_ROK", "wavy#1", 1),
        ("submitted", "ID-1", "ESME_ROK", "wavy#2", 1)]
    states = [(e.type, e.state, e.payload.get("previous")) for e in await store.events_after(0)]
    assert states == [("state", "queued", None), ("state", "submitted", "queued")]


async def test_transient_failure_requeues_at_the_retry_time(store: Store, clock: Clock) -> None:
    m = message()
    await store.accept_messages([m])
    (s,) = await store.claim_segments("wavy", 10, now_wall=T0)
    await store.record_submit_results([SubmitOutcome.transient(
        s.segment_id, T0 + 30, status_name="ESME_RTHROTTLED", command_status=0x58,
        bind="wavy#1")])
    assert await store.claim_segments("wavy", 10, now_wall=T0 + 29) == []
    assert (await store.queue_stats())["wavy"].queued == 1
    (again,) = await store.claim_segments("wavy", 10, now_wall=T0 + 30)
    assert again.segment_id == s.segment_id and again.attempts == 1
    view = await store.get_message(m.tracking_id)
    assert view is not None and view.state == "queued"
    assert view.last_error == "ESME_RTHROTTLED"
    (retry,) = [h for h in view.history if h.type == "retry"]
    assert retry.detail["status"] == "ESME_RTHROTTLED"
    assert retry.detail["retry_at"] == "2023-11-14T22:13:50.000Z"
    assert len(await store.events_after(0)) == 1   # a retry is not an event


async def test_permanent_failure_fails_the_message_and_cancels_waiting_parts(
    store: Store,
) -> None:
    m = message(parts=3, client_id="perm")
    await store.accept_messages([m])
    p0, _p1 = await store.claim_segments("wavy", 2, now_wall=T0)
    states = await store.record_submit_results([
        SubmitOutcome.permanent(p0.segment_id, "ESME_RINVDSTADR", command_status=0x0B)])
    assert states == ["failed"]
    view = await store.get_message(m.tracking_id)
    assert view is not None and view.state == "failed"
    assert [s.state for s in view.segments] == ["failed", "sending", "failed"]
    assert "ESME_RINVDSTADR" in (view.last_error or "")
    event = (await store.events_after(0))[-1]
    assert (event.type, event.state, event.payload["error"]) == (
        "state", "failed", "ESME_RINVDSTADR")
    assert await store.claim_segments("wavy", 10, now_wall=T0) == []
    # The part that was in flight still gets its result recorded; the message stays failed.
    assert await store.record_submit_results(
        [SubmitOutcome.ok(_p1.segment_id, "late")]) == ["failed"]


async def test_released_parts_are_queued_without_an_attempt(store: Store) -> None:
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 10, now_wall=T0)
    assert await store.record_submit_results([SubmitOutcome.released(s.segment_id)]) == [
        "queued"]
    (again,) = await store.claim_segments("wavy", 10, now_wall=T0)
    assert again.attempts == 0


async def test_unknown_segment_is_reported_not_fatal(store: Store) -> None:
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 10, now_wall=T0)
    assert await store.record_submit_results(
        [SubmitOutcome.ok(999_999, "x"), SubmitOutcome.ok(s.segment_id, "y")]) == [
        None, "submitted"]


async def test_expire_messages_past_validity(store: Store) -> None:
    soon, later, never = (message(valid_until_wall=T0 + 10), message(valid_until_wall=T0 + 99),
                          message())
    await store.accept_messages([soon, later, never])
    # Parts past validity are not handed out, even before expire_messages runs.
    claimed = await store.claim_segments("wavy", 10, now_wall=T0 + 10)
    assert {s.tracking_id for s in claimed} == {later.tracking_id, never.tracking_id}
    assert await store.expire_messages(T0 + 10) == 1
    assert await store.expire_messages(T0 + 10) == 0
    view = await store.get_message(soon.tracking_id)
    assert view is not None and view.state == "expired"
    assert [s.state for s in view.segments] == ["expired"]
    event = (await store.events_after(0))[-1]
    assert (event.tracking_id, event.state) == (soon.tracking_id, "expired")
    # 'later' has its part in flight: its submit result decides first.
    assert await store.expire_messages(T0 + 100) == 0
    (in_flight,) = [s for s in claimed if s.tracking_id == later.tracking_id]
    await store.record_submit_results(
        [SubmitOutcome.transient(in_flight.segment_id, T0 + 100, status_name="ESME_RMSGQFUL")])
    assert await store.expire_messages(T0 + 100) == 1


async def test_a_message_no_receipt_can_match_ends_unknown_when_its_validity_runs_out(
    store: Store,
) -> None:
    """submit_sm_resp ESME_ROK with an empty message_id: the part is submitted, but no
    receipt can ever find it. Instead of 'submitted' forever, its message ends 'unknown' when
    its validity runs out; one with a message id waits for its receipt as before."""
    blind, keyed, unasked = (message(valid_until_wall=T0 + 60), message(valid_until_wall=T0 + 60),
                             replace(message(valid_until_wall=T0 + 60), registered_delivery=0))
    await store.accept_messages([blind, keyed, unasked])
    parts = {p.tracking_id: p for p in await store.claim_segments("wavy", 10, now_wall=T0)}
    await store.record_submit_results([
        SubmitOutcome.ok(parts[blind.tracking_id].segment_id, ""),
        SubmitOutcome.ok(parts[keyed.tracking_id].segment_id, "ID-1", "id-1"),
        SubmitOutcome.ok(parts[unasked.tracking_id].segment_id, ""),
    ])
    assert await store.expire_messages(T0 + 59) == 0
    assert await store.expire_messages(T0 + 61) == 1
    assert await store.expire_messages(T0 + 61) == 0
    view = await store.get_message(blind.tracking_id)
    assert view is not None and view.state == "unknown"
    assert [s.state for s in view.segments] == ["unknown"]
    assert "no receipt can be matched" in (view.last_error or "")
    event = (await store.events_after(0))[-1]
    assert (event.tracking_id, event.state) == (blind.tracking_id, "unknown")
    # The others are as they were: one waits for its receipt, one asked for none.
    for other in (keyed, unasked):
        seen = await store.get_message(other.tracking_id)
        assert seen is not None and seen.state == "submitted"
    assert (await store.counts()).messages == {"unknown": 1, "submitted": 2}


async def test_queued_messages_move_to_another_provider_encoded_anew(
    store: Store, clock: Clock
) -> None:
    """Failover of the queue: a message none of whose parts left yet is taken with what
    encoding it again needs, and moved whole, its parts replaced by the new provider's, with
    the move in its history. A message with a part sent stays where it is."""
    started = message(parts=2)
    await store.accept_messages([started])
    clock.now += 1
    waiting = message(parts=2, client_id="w")
    await store.accept_messages([waiting])
    [first] = await store.claim_segments("wavy", 1, now_wall=clock.now)
    assert first.tracking_id == started.tracking_id
    await store.record_submit_results([SubmitOutcome.ok(first.segment_id, "ID-1", "id-1")])

    [queued] = await store.queued_messages("wavy", 10)
    assert (queued.tracking_id, queued.client_id, queued.provider) == (
        waiting.tracking_id, "w", "wavy")
    assert (queued.text, queued.source, queued.destination) == (
        waiting.text, "Acme", waiting.destination)
    assert queued.tlvs == ((0x1401, b"tenant"),) and queued.registered_delivery == 1
    moved = replace(waiting, provider="qikberry", source="ACMEIN", data_coding=8,
                    encoding="ucs2", segments=(NewSegment(b"\x00h\x00i", 0, 8),), tlvs=())
    assert await store.move_messages([MessageMove(moved, "wavy", "no bind to wavy for 60 s")]) == 1
    # Moving again from wavy finds it moved already: nothing happens twice.
    assert await store.move_messages([MessageMove(moved, "wavy", "again")]) == 0
    assert await store.queued_messages("wavy", 10) == []
    [part] = await store.claim_segments("qikberry", 10, now_wall=clock.now + 2)
    assert (part.tracking_id, part.parts, part.short_message, part.data_coding, part.source) == (
        waiting.tracking_id, 1, b"\x00h\x00i", 8, "ACMEIN")
    view = await store.get_message(waiting.tracking_id)
    assert view is not None and view.provider == "qikberry" and view.state == "queued"
    assert view.encoding == "ucs2" and len(view.segments) == 1
    [note] = [h for h in view.history if h.type == "failover"]
    assert note.detail == {"part": None, "from": "wavy", "to": "qikberry",
                           "reason": "no bind to wavy for 60 s"}
    still = await store.get_message(started.tracking_id)
    assert still is not None and still.provider == "wavy"
    # The accepted answer of a client id stays the first one (idempotency).
    again = await store.accept_messages([replace(waiting, tracking_id=f"{999:032x}")])
    assert again[0].duplicate and again[0].tracking_id == waiting.tracking_id


async def test_recover_requeues_parts_left_sending(backend: Backend) -> None:
    clock = Clock()
    async with await backend.open(clock=clock) as s:
        await s.accept_messages([message(parts=2), message()])
        claimed = await s.claim_segments("wavy", 10, now_wall=T0)
        await s.record_submit_results([SubmitOutcome.ok(claimed[0].segment_id, "done")])
    # As after a crash: two parts were claimed and never answered.
    async with await backend.open(clock=clock) as s:
        report = await s.recover()
        assert (report.requeued_segments, report.queued_segments) == (2, 2)
        again = await s.claim_segments("wavy", 10, now_wall=T0)
        assert sorted(x.segment_id for x in again) == sorted(
            x.segment_id for x in claimed[1:])
        view = await s.get_message(claimed[1].tracking_id)
        assert view is not None
        assert "requeued" in [h.type for h in view.history]
        assert (await s.recover()).requeued_segments == 2   # those claimed just now


async def test_queue_stats_depth_and_oldest_age(store: Store, clock: Clock) -> None:
    assert await store.queue_stats() == {}
    await store.accept_messages([message(parts=2)])
    clock.now += 5
    await store.accept_messages([message(), message(provider="qikberry")])
    clock.now += 2
    stats = await store.queue_stats()
    assert (stats["wavy"].queued, stats["wavy"].sending, stats["wavy"].oldest_queued_age) == (
        3, 0, 7.0)
    assert stats["qikberry"].oldest_queued_age == 2.0


async def test_queue_stats_count_claimed_parts_as_unsent(store: Store, clock: Clock) -> None:
    """A part claimed while no bind is up sits in 'sending': the unsent depth and age keep it
    (the queue metrics read these), while ``queued`` counts only what is left in the queue."""
    await store.accept_messages([message()])
    clock.now += 4
    await store.accept_messages([message()])
    clock.now += 1
    await store.claim_segments("wavy", 1, now_wall=clock.now)
    stats = (await store.queue_stats())["wavy"]
    assert (stats.queued, stats.sending, stats.unsent) == (1, 1, 2)
    assert (stats.oldest_queued_age, stats.oldest_unsent_age) == (1.0, 5.0)


async def test_each_message_is_answered_once(store: Store) -> None:
    """SubmitRecorded.answered marks the outcome that gave a message its submit answer: the
    last of its parts accepted (ESME_ROK), or the permanent refusal that failed it. A resend
    accepted again and a late result after a failure answer nothing."""
    two, refused = message(parts=2), message()
    await store.accept_messages([two, refused])
    a, b, r = await store.claim_segments("wavy", 10, now_wall=T0)
    first = await store.apply_submit_results([SubmitOutcome.ok(a.segment_id, "A")])
    assert first == [SubmitRecorded("queued", None)]
    last = await store.apply_submit_results([
        SubmitOutcome.ok(b.segment_id, "B"),
        SubmitOutcome.permanent(r.segment_id, "ESME_RINVDSTADR", command_status=0x0B)])
    assert last == [SubmitRecorded("submitted", 0), SubmitRecorded("failed", 0x0B)]
    again = await store.apply_submit_results([
        SubmitOutcome.ok(b.segment_id, "B"), SubmitOutcome.ok(r.segment_id, "R")])
    assert again == [SubmitRecorded("submitted", None), SubmitRecorded("failed", None)]


async def test_claims_commit_without_fsync_but_results_with(store: Store) -> None:
    """Only claim-only groups relax durability (SQLite synchronous NORMAL, PostgreSQL
    synchronous_commit off); everything else commits with FULL / on."""
    seen: list[object] = []
    if isinstance(store, SqliteStore):
        def probe(tx: Any) -> None:
            seen.append(tx.conn.execute("PRAGMA synchronous").fetchone()[0])
        expected: list[object] = [1, 2]   # NORMAL, FULL
    else:
        async def probe(tx: Any) -> None:  # type: ignore[misc]
            seen.append(await tx.conn.fetchval("SHOW synchronous_commit"))
        expected = ["off", "on"]

    await store.accept_messages([message()])
    await store._write(probe, durable=False)  # type: ignore[attr-defined]
    await raw_write(store, probe)
    assert seen == expected



async def test_an_empty_smsc_message_id_never_matches_receipts(store: Store) -> None:
    await store.accept_messages([message(), message()])
    a, b = await store.claim_segments("wavy", 2, now_wall=T0)
    assert await store.claim_segments("wavy", 0, now_wall=T0) == []
    await store.record_submit_results([SubmitOutcome.ok(a.segment_id, ""),
                                       SubmitOutcome.ok(b.segment_id, "")])
    (r,) = await store.record_receipts(
        [ReceiptRecord("wavy", "", "DELIVRD", "000", "delivered", True)])
    assert r.parked


async def test_on_commit_reports_each_group_from_the_writer(
    backend: Backend, clock: Clock
) -> None:
    """The commit observer (the store commit metrics) sees every committed group's size, on
    the SQLite writer thread or on the loop (PostgreSQL's writer is a task)."""
    seen: list[tuple[int, float, str]] = []

    def on_commit(commands: int, seconds: float) -> None:
        seen.append((commands, seconds, threading.current_thread().name))

    async with await backend.open(clock=clock, on_commit=on_commit) as s:
        seen.clear()  # opening and migrating are commits too
        async with Blocker(s):
            writes = [asyncio.ensure_future(s.accept_messages([message()])) for _ in range(3)]
            await _wait_pending(s, 3)
        await asyncio.gather(*writes)
    assert [n for n, _, _ in seen] == [1, 3]
    writer = "smppgw-store-writer" if backend.sqlite else threading.main_thread().name
    assert all(seconds >= 0 and name.startswith(writer) for _, seconds, name in seen)


async def test_requeue_sending_is_per_provider_and_noted(store: Store) -> None:
    """After a reload stopped one provider's dispatcher, its unanswered parts are queued again;
    another provider's parts in flight are left alone."""
    wavy, qik = message(), message(provider="qikberry")
    await store.accept_messages([wavy, qik])
    await store.claim_segments("wavy", 10, now_wall=T0)
    await store.claim_segments("qikberry", 10, now_wall=T0)
    assert await store.requeue_sending("wavy", "provider settings changed by a reload") == 1
    stats = await store.queue_stats()
    assert (stats["wavy"].queued, stats["wavy"].sending) == (1, 0)
    assert (stats["qikberry"].queued, stats["qikberry"].sending) == (0, 1)
    view = await store.get_message(wavy.tracking_id)
    assert view is not None
    (note,) = [h for h in view.history if h.type == "requeued"]
    assert note.detail == {"part": 0, "reason": "provider settings changed by a reload"}
