"""The store's side of the operator's commands, on both backends: cancelling a message (and
the race with a dispatcher that claimed one of its parts), a retry linked to the message it
retries, provider pauses that outlive a restart, and the message list (filters, keyset pages,
the bounded walk). The indexes behind the list are checked in the plans each backend makes.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smppgw.store import (
    CancelResult,
    MessageQuery,
    NewMessage,
    NewSegment,
    PageKey,
    ProviderPause,
    ReceiptRecord,
    Store,
    SubmitOutcome,
    search,
)
from smppgw.store.search import SCAN_LIMIT, decode_cursor, encode_cursor, plan
from tests.pgserver import PgServer
from tests.store_backends import Backend, new_database

T0 = 1_700_000_000.0
_ids = itertools.count(1)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(
    parts: int = 1, *, client_id: str | None = None, provider: str = "wavy",
    destination: str | None = None, retry_of: str | None = None,
    request: dict[str, object] | None = None,
) -> NewMessage:
    n = next(_ids)
    return NewMessage(
        tracking_id=f"{n:032x}", provider=provider, source="Acme",
        destination=destination or f"5511{n:09d}", text=f"message {n}",
        segments=tuple(NewSegment(f"part {i}".encode()) for i in range(parts)),
        client_id=client_id, retry_of=retry_of, request=request,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(backend: Backend, clock: Clock) -> AsyncIterator[Store]:
    s = await backend.open(clock=clock)
    yield s
    await s.close()


async def states(store: Store, tracking_id: str) -> tuple[str, list[str]]:
    view = await store.get_message(tracking_id)
    assert view is not None
    return view.state, [s.state for s in view.segments]


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_stops_waiting_parts_and_says_where_each_part_stands(store: Store) -> None:
    m = message(parts=3, client_id="app-7")
    await store.accept_messages([m])
    first, second = await store.claim_segments("wavy", 2)
    await store.record_submit_results([SubmitOutcome.ok(first.segment_id, "SMSC-1")])
    # Part 1 is claimed (a dispatcher holds it), part 2 waits.
    result = await store.cancel_message(m.tracking_id, "by the operator")
    assert result == CancelResult(m.tracking_id, "cancelled", "cancelled", not_sent=(2,),
                                  in_flight=(1,), sent=(0,))
    assert await states(store, m.tracking_id) == ("cancelled",
                                                  ["submitted", "sending", "cancelled"])
    view = await store.get_message(m.tracking_id)
    assert view is not None and view.last_error == "cancelled: by the operator"
    assert view.segments[2].last_error == "cancelled: by the operator"
    event = (await store.events_after(0))[-1]
    assert event.as_dict() | {"at": None} == {
        "cursor": event.cursor, "type": "state", "at": None, "tracking_id": m.tracking_id,
        "id": "app-7", "state": "cancelled", "previous": "queued",
        "reason": "by the operator", "not_sent": [2], "in_flight": [1], "sent": [0]}
    # Nothing of it is claimed again, and it is final.
    assert await store.claim_segments("wavy", 10) == []
    assert (await store.counts()).messages == {"cancelled": 1}
    assert second.part_index == 1


async def test_claimed_parts_withdrawn_unwritten_count_as_not_sent(store: Store) -> None:
    m = message(parts=3)
    await store.accept_messages([m])
    first, second = await store.claim_segments("wavy", 2)
    # The dispatcher wrote part 0 and took part 1 back unwritten (Dispatcher.withdraw).
    result = await store.cancel_message(m.tracking_id, "x", {second.segment_id})
    assert result == CancelResult(m.tracking_id, "cancelled", "cancelled", not_sent=(1, 2),
                                  in_flight=(0,))
    assert await states(store, m.tracking_id) == ("cancelled",
                                                  ["sending", "cancelled", "cancelled"])
    await store.record_submit_results([SubmitOutcome.released(second.segment_id),
                                       SubmitOutcome.ok(first.segment_id, "S-0")])
    assert await states(store, m.tracking_id) == ("cancelled",
                                                  ["submitted", "cancelled", "cancelled"])


async def test_a_part_in_flight_is_recorded_as_answered_and_never_queued_again(
    store: Store,
) -> None:
    a, b = message(), message()
    await store.accept_messages([a, b])
    part_a, part_b = await store.claim_segments("wavy", 2)
    for m in (a, b):
        result = await store.cancel_message(m.tracking_id, "x")
        assert result is not None and result.in_flight == (0,) and result.not_sent == ()
    # The SMSC took a's part: recorded, the message stays cancelled (final), its receipt too.
    # It did not take b's (throttled): b's part is not queued again.
    await store.record_submit_results([
        SubmitOutcome.ok(part_a.segment_id, "SMSC-A"),
        SubmitOutcome.transient(part_b.segment_id, T0, status_name="ESME_RTHROTTLED")])
    await store.record_receipts([ReceiptRecord("wavy", "SMSC-A", "DELIVRD", "000",
                                               "delivered", True)])
    assert await states(store, a.tracking_id) == ("cancelled", ["delivered"])
    assert await states(store, b.tracking_id) == ("cancelled", ["cancelled"])
    assert await store.claim_segments("wavy", 10, now_wall=T0 + 3600) == []
    again = await store.cancel_message(b.tracking_id, "x")
    assert again == CancelResult(b.tracking_id, "already_cancelled", "cancelled",
                                 not_sent=(0,))
    again = await store.cancel_message(a.tracking_id, "x")
    assert again == CancelResult(a.tracking_id, "already_cancelled", "cancelled", sent=(0,))


async def test_a_released_part_of_a_cancelled_message_is_not_queued_again(store: Store) -> None:
    m = message()
    await store.accept_messages([m])
    (part,) = await store.claim_segments("wavy", 1)
    await store.cancel_message(m.tracking_id, "x")
    await store.record_submit_results([SubmitOutcome.released(part.segment_id)])
    assert await states(store, m.tracking_id) == ("cancelled", ["cancelled"])


async def test_cancel_leaves_final_and_fully_sent_messages_alone(store: Store) -> None:
    done, sent = message(), message(parts=2)
    await store.accept_messages([done, sent])
    parts = await store.claim_segments("wavy", 3)
    await store.record_submit_results([
        SubmitOutcome.permanent(parts[0].segment_id, "ESME_RINVDSTADR", command_status=0xB),
        SubmitOutcome.ok(parts[1].segment_id, "S-1"), SubmitOutcome.ok(parts[2].segment_id,
                                                                       "S-2")])
    cursor = store.last_cursor
    assert await store.cancel_message(done.tracking_id, "x") == CancelResult(
        done.tracking_id, "final", "failed")
    assert await store.cancel_message(sent.tracking_id, "x") == CancelResult(
        sent.tracking_id, "all_sent", "submitted", sent=(0, 1))
    assert await store.cancel_message("f" * 32, "x") is None
    assert store.last_cursor == cursor   # no event for what changed nothing
    assert await states(store, sent.tracking_id) == ("submitted", ["submitted", "submitted"])


async def test_answers_to_cancel_sm_end_the_parts_the_smsc_stopped(store: Store) -> None:
    stopped, refused = message(parts=2), message()
    await store.accept_messages([stopped, refused])
    parts = await store.claim_segments("wavy", 3)
    await store.record_submit_results([SubmitOutcome.ok(p.segment_id, f"S-{p.segment_id}")
                                       for p in parts])
    assert (await store.cancel_message(stopped.tracking_id, "x")).outcome == "all_sent"
    state = await store.record_cancel_sm(
        stopped.tracking_id, [(0, "ESME_ROK", True), (1, "ESME_RCANCELFAIL", False)], "x")
    assert state == "cancelled"
    assert await states(store, stopped.tracking_id) == ("cancelled", ["cancelled", "submitted"])
    event = (await store.events_after(0))[-1]
    assert (event.state, event.payload["previous"], event.payload["cancelled_at_smsc"]) == (
        "cancelled", "submitted", [0])
    view = await store.get_message(stopped.tracking_id)
    assert view is not None
    assert [(h.type, dict(h.detail)) for h in view.history if h.cursor is None] == [
        ("cancel_sm", {"part": 0, "status": "ESME_ROK"}),
        ("cancel_sm", {"part": 1, "status": "ESME_RCANCELFAIL"})]
    again = await store.cancel_message(stopped.tracking_id, "x")
    assert again is not None and (again.sent, again.not_sent) == ((0, 1), ())
    # Nothing stopped: the message goes on, the refusal is in its history.
    cursor = store.last_cursor
    assert await store.record_cancel_sm(
        refused.tracking_id, [(0, "no answer", False)], "x") == "submitted"
    assert store.last_cursor == cursor
    assert await store.record_cancel_sm("f" * 32, [], "x") is None


async def test_a_restart_does_not_queue_again_the_parts_of_a_cancelled_message(
    backend: Backend,
) -> None:
    m, other = message(), message()
    async with await backend.open() as s:
        await s.accept_messages([m, other])
        await s.claim_segments("wavy", 2)
        await s.cancel_message(m.tracking_id, "x")
    async with await backend.open() as s:
        report = await s.recover()
        assert report.requeued_segments == 1     # only the other message's part
        assert await states(s, m.tracking_id) == ("cancelled", ["cancelled"])
        assert [p.tracking_id for p in await s.claim_segments("wavy", 10)] == [
            other.tracking_id]
        assert await s.requeue_sending("wavy", "reload") == 1
        view = await s.get_message(m.tracking_id)
        assert view is not None and [h.type for h in view.history if h.cursor is None] == []


async def test_a_sibling_in_flight_of_a_failed_message_is_not_sent_again(store: Store) -> None:
    m = message(parts=2)
    await store.accept_messages([m])
    first, second = await store.claim_segments("wavy", 2)
    await store.record_submit_results([
        SubmitOutcome.permanent(first.segment_id, "ESME_RINVDSTADR", command_status=0xB)])
    await store.record_submit_results([
        SubmitOutcome.transient(second.segment_id, T0, status_name="ESME_RTHROTTLED")])
    assert await states(store, m.tracking_id) == ("failed", ["failed", "failed"])
    assert await store.claim_segments("wavy", 10, now_wall=T0 + 3600) == []


# --- retry ---------------------------------------------------------------------------------------


async def test_a_retry_is_a_new_message_linked_both_ways_and_takes_the_client_id(
    store: Store,
) -> None:
    old = message(client_id="order-9")
    await store.accept_messages([old])
    (part,) = await store.claim_segments("wavy", 1)
    await store.record_submit_results([
        SubmitOutcome.permanent(part.segment_id, "ESME_RSYSERR", command_status=8)])
    new = message(client_id="order-9", retry_of=old.tracking_id,
                  request={"from": "Acme", "receipt": False})
    (result,) = await store.accept_messages([new])
    assert not result.duplicate and result.tracking_id == new.tracking_id
    fresh, stale = await store.get_message(new.tracking_id), await store.get_message(
        old.tracking_id)
    assert fresh is not None and stale is not None
    assert (fresh.retry_of, fresh.retried_as, fresh.client_id) == (
        old.tracking_id, None, "order-9")
    assert (stale.retry_of, stale.retried_as, stale.client_id, stale.state) == (
        None, new.tracking_id, None, "failed")
    assert fresh.request == {"from": "Acme", "receipt": False}
    assert stale.request == {}
    queued = fresh.history[0]
    assert (queued.type, queued.state, dict(queued.detail)) == (
        "state", "queued", {"segments": 1, "retry_of": old.tracking_id})
    assert [(h.type, dict(h.detail)) for h in stale.history if h.cursor is None] == [
        ("retried", {"part": None, "tracking_id": new.tracking_id})]
    assert [v.tracking_id for v in await store.find_messages("order-9")] == [new.tracking_id]
    # The events of the new attempt carry the client id, so the app follows it.
    assert (await store.events_after(0))[-1].client_id == "order-9"
    # The same message retried again (a second click): the first retry's answer, nothing new.
    (again,) = await store.accept_messages([message(retry_of=old.tracking_id)])
    assert again.duplicate and again.tracking_id == new.tracking_id
    assert again.answer == result.answer
    (dup,) = await store.accept_messages([message(client_id="order-9")])
    assert dup.duplicate and dup.tracking_id == new.tracking_id
    assert sum((await store.counts()).messages.values()) == 2


async def test_two_retries_of_one_message_in_one_batch_store_one(store: Store) -> None:
    old = message()
    await store.accept_messages([old])
    first, second = await store.accept_messages([message(retry_of=old.tracking_id),
                                                 message(retry_of=old.tracking_id)])
    assert not first.duplicate and second.duplicate
    assert second.tracking_id == first.tracking_id


# --- pauses --------------------------------------------------------------------------------------


async def test_pauses_are_kept_across_a_restart(backend: Backend) -> None:
    clock = Clock()
    async with await backend.open(clock=clock) as s:
        assert await s.provider_pauses() == {}
        assert await s.set_provider_paused("wavy", True) == ProviderPause("wavy", T0)
        clock.now += 60
        # Paused again: it stays paused since the first time.
        assert await s.set_provider_paused("wavy", True) == ProviderPause("wavy", T0)
        await s.set_provider_paused("qikberry", True)
        assert await s.set_provider_paused("qikberry", False) is None
        assert await s.set_provider_paused("nobody", False) is None
    async with await backend.open(clock=clock) as s:
        assert await s.provider_pauses() == {"wavy": ProviderPause("wavy", T0)}


# --- the message list ----------------------------------------------------------------------------


async def fill(store: Store, clock: Clock, specs: list[dict[str, Any]]) -> list[NewMessage]:
    """One message per spec, each a millisecond after the one before (``final``: the state
    to bring it to: failed, delivered or cancelled)."""
    made = []
    for spec in specs:
        clock.now += 0.001
        final = spec.pop("final", None)
        m = message(**spec)
        await store.accept_messages([m])
        if final == "cancelled":
            await store.cancel_message(m.tracking_id, "x")
        elif final is not None:
            claimed = await store.claim_segments(m.provider, 100)
            (part,) = [p for p in claimed if p.tracking_id == m.tracking_id]
            await store.record_submit_results([SubmitOutcome.released(p.segment_id)
                                               for p in claimed if p is not part])
            if final == "failed":
                await store.record_submit_results([SubmitOutcome.permanent(
                    part.segment_id, "ESME_RINVDSTADR", command_status=0xB)])
            else:
                await store.record_submit_results([SubmitOutcome.ok(part.segment_id,
                                                                    f"S{m.tracking_id}")])
                await store.record_receipts([ReceiptRecord(
                    m.provider, f"S{m.tracking_id}", "DELIVRD", "000", "delivered", True)])
        made.append(m)
    return made


def ids(page: Any) -> list[str]:
    return [v.tracking_id for v in page.messages]


async def test_list_filters_newest_first(store: Store, clock: Clock) -> None:
    made = await fill(store, clock, [
        {"provider": "wavy", "destination": "5511900000001", "final": "delivered"},
        {"provider": "qikberry", "destination": "919800000001", "final": "failed"},
        {"provider": "wavy", "destination": "5511900000002", "final": "failed"},
        {"provider": "wavy", "destination": "5521900000003"},
        {"provider": "qikberry", "destination": "919800000002", "final": "cancelled"},
        {"provider": "wavy", "destination": "5511900000004", "final": "delivered"},
    ])
    t = [m.tracking_id for m in made]

    async def listed(**filters: Any) -> list[str]:
        return ids(await store.list_messages(MessageQuery(**filters)))

    assert await listed() == t[::-1]
    assert await listed(state="failed") == [t[2], t[1]]
    assert await listed(state="cancelled") == [t[4]]
    assert await listed(state="delivered") == [t[5], t[0]]
    assert await listed(state="queued") == [t[3]]
    assert await listed(state="submitted") == []
    assert await listed(provider="qikberry") == [t[4], t[1]]
    assert await listed(provider="wavy", state="failed") == [t[2]]
    assert await listed(to_prefix="5511") == [t[5], t[2], t[0]]
    assert await listed(to_prefix="5511900000002") == [t[2]]
    assert await listed(to_prefix="55", provider="qikberry") == []
    assert await listed(to_prefix="91", state="failed") == [t[1]]
    assert await listed(to_prefix="5519") == []
    created = [T0 + 0.001 * (i + 1) for i in range(6)]
    assert await listed(since_wall=created[2], until_wall=created[4]) == [t[3], t[2]]
    assert await listed(since_wall=created[5] + 1) == []
    page = await store.list_messages(MessageQuery(state="failed", limit=1))
    view = page.messages[0]
    assert view.state == "failed" and view.segments[0].submit_status == "ESME_RINVDSTADR"
    assert [h.state for h in view.history] == ["queued", "failed"]


async def test_pages_follow_next_without_losing_or_repeating(store: Store, clock: Clock) -> None:
    made = await fill(store, clock, [{} for _ in range(7)])
    # Two messages created in the same millisecond: the tracking id breaks the tie.
    clock.now += 0.001
    twins = [message(), message()]
    await store.accept_messages(twins)
    expected = [m.tracking_id for m in made + twins]
    expected = expected[:7][::-1]
    expected[:0] = sorted((m.tracking_id for m in twins), reverse=True)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await store.list_messages(MessageQuery(limit=2, after=after))
        assert len(page.messages) <= 2
        seen += ids(page)
        if page.next is None:
            break
        after = page.next
        # A message accepted meanwhile does not shift the pages already read.
        clock.now += 1
        await store.accept_messages([message()])
    assert seen == expected
    # Exactly a page's worth left: the last page says there is no more.
    page = await store.list_messages(MessageQuery(limit=len(expected), after=None,
                                                  until_wall=T0 + 0.009))
    assert ids(page) == expected and page.next is None


async def test_a_walk_stops_after_its_limit_and_says_where(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = await fill(store, clock, [{"final": "delivered"} if i % 4 == 0 else {}
                                     for i in range(12)])
    # 'delivered' is no walk's key: the walk is over all messages, the state is filtered.
    assert plan(MessageQuery(state="delivered")).source == "created"
    monkeypatch.setattr(search, "SCAN_LIMIT", 4)
    pages: list[list[str]] = []
    after = None
    for _ in range(10):
        page = await store.list_messages(MessageQuery(state="delivered", after=after))
        pages.append(ids(page))
        if page.next is None:
            break
        after = page.next
    # Each call walked 4 messages, found the one delivered among them and said where it
    # stopped; the fourth walked nothing more.
    t = [m.tracking_id for m in made]
    assert pages == [[t[8]], [t[4]], [t[0]], []]


async def test_a_prefix_with_more_messages_than_a_walk_is_filtered_on_a_walk_by_time(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = await fill(store, clock, [{"destination": f"55119000000{i:02d}"} for i in range(7)]
                      + [{"destination": "919800000001"}])
    monkeypatch.setattr(search, "SCAN_LIMIT", 4)
    pages: list[list[str]] = []
    after = None
    for _ in range(10):
        page = await store.list_messages(MessageQuery(to_prefix="5511", limit=3, after=after))
        pages.append(ids(page))
        if page.next is None:
            break
        after = page.next
    t = [m.tracking_id for m in made]
    # Seven messages to 5511: more than a walk of 4, so the list walks by time and filters
    # (4 entries a call: the first sees the 91 message too). Once four or fewer are left, the
    # prefix index serves the rest. Nothing lost, nothing twice, newest first.
    assert [x for page in pages for x in page] == t[6::-1]
    assert pages[0] == [t[6], t[5], t[4]]
    assert ids(await store.list_messages(MessageQuery(to_prefix="5511900000003"))) == [t[3]]


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    key = PageKey(1_700_000_000_123, "0" * 31 + "a")
    assert decode_cursor(encode_cursor(key)) == key
    for bad in ("", "x", "bTEuMS4y", encode_cursor(key) + "A", "!" * 10, "é"):
        with pytest.raises(ValueError):
            decode_cursor(bad)
    assert SCAN_LIMIT >= 1000


# --- the indexes behind the list -----------------------------------------------------------------

# Each walk and the index it must use; 'sorted': the walk reads a range and sorts it (the
# messages to one number or block), every other one reads its index in list order.
WALKS = [
    (MessageQuery(), "messages_created", False),
    (MessageQuery(after=PageKey(T0_MS := 1_700_000_100_000, "a" * 32)), "messages_created", False),
    (MessageQuery(provider="rare"), "messages_provider", False),
    (MessageQuery(to_prefix="55119000012"), "messages_destination", True),
    (MessageQuery(state="failed"), "messages_undelivered", False),
    (MessageQuery(state="cancelled", since_wall=T0, until_wall=T0 + 3600,
                  after=PageKey(T0_MS, "a" * 32)), "messages_undelivered", False),
    (MessageQuery(state="queued"), "segments_unsent", False),
]


def test_sqlite_walks_read_their_index_in_list_order(tmp_path: Any) -> None:
    import sqlite3

    from smppgw.store.sqlite.reads import QUEUE_STATS_SQL, walk_sql
    from smppgw.store.sqlite.schema import migrate

    conn = sqlite3.connect(tmp_path / "plans.db", isolation_level=None)
    migrate(conn)
    for query, index, sorted_ in WALKS:
        sql, params = walk_sql(plan(query))
        steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        assert f"COVERING INDEX {index}" in steps[0], (query, steps)
        assert any("TEMP B-TREE" in s for s in steps) == sorted_, (query, steps)
    steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + QUEUE_STATS_SQL)]
    assert "COVERING INDEX segments_unsent" in steps[0], steps


async def test_postgresql_walks_read_their_index_in_list_order(
    pg_server: PgServer, tmp_path: Any,
) -> None:
    import asyncpg

    from smppgw.store.postgres.reads import page_sql, walk_sql

    backend = Backend("postgresql", tmp_path, await new_database(pg_server))
    await (await backend.open()).close()   # the schema
    assert backend.url is not None
    conn = await asyncpg.connect(backend.url)
    try:
        # 20 000 delivered messages, one in a hundred failed, one in a thousand queued, a few
        # of a rare provider: what the planner must see to prefer each index.
        await conn.execute("""
            INSERT INTO messages (tracking_id, provider, source, destination, text, data_coding,
                                  encoding, created_unix_ms, updated_unix_ms, state, parts,
                                  answer, undelivered_state)
            SELECT lpad(to_hex(i), 32, '0'), CASE WHEN i % 500 = 0 THEN 'rare' ELSE 'wavy' END,
                   'Acme', (5511900000000 + i)::text, 'x', 0, 'gsm7', $1 + i, $1 + i,
                   CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 1000 = 1 THEN 'queued'
                        ELSE 'delivered' END, 1, '{}',
                   CASE WHEN i % 100 = 0 THEN 'failed' END
              FROM generate_series(1, 20000) AS i""".replace("$1", "$1::bigint"),
            T0_MS - 100_000)
        await conn.execute("""
            INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,
                                  data_coding, state, created_unix_ms, next_attempt_unix_ms)
            SELECT tracking_id, 0, provider, 'x', 0, 0, state, created_unix_ms, created_unix_ms
              FROM messages""")
        await conn.execute("ANALYZE")
        for query, index, sorted_ in WALKS:
            sql, params = walk_sql(plan(query))
            steps = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *params))
            assert index in steps, (query, steps)
            assert ("Sort" in steps) == sorted_, (query, steps)
        steps = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN SELECT provider, state, COUNT(*), MIN(created_unix_ms) FROM segments"
            " WHERE state IN ('queued', 'sending') GROUP BY provider, state"))
        assert "segments_unsent" in steps, steps
        # A page takes the walk's rows as they come and stops with the page: never a sort,
        # never a scan of the table, even for a state the statistics say no message has.
        for query in (MessageQuery(state="submitted"), MessageQuery(state="failed",
                                                                    provider="rare")):
            sql, params = page_sql(plan(query))
            steps = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *params))
            assert "Nested Loop" in steps and "messages_pkey" in steps, (query, steps)
            assert "Sort" not in steps and "Seq Scan" not in steps, (query, steps)
    finally:
        await conn.close()


# --- an older store ------------------------------------------------------------------------------


async def test_a_store_from_before_the_list_finds_its_undelivered_messages(
    backend: Backend,
) -> None:
    """A database written before the list existed (SQLite v3, PostgreSQL v1): migrating marks
    the messages that had ended undelivered, so the list finds them."""
    if backend.sqlite:
        from smppgw.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
        old_store = await backend.open(migrations=SQLITE_MIGRATIONS[:3])
    else:
        from smppgw.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
        old_store = await backend.open(migrations=PG_MIGRATIONS[:1])
    old = NewMessage("ab" * 16, "wavy", "Acme", "5511999", "before", (NewSegment(b"x"),))
    async with old_store as s:
        await s._write(_old_insert(backend, old.tracking_id))  # type: ignore[attr-defined]
    async with await backend.open() as s:
        page = await s.list_messages(MessageQuery(state="failed"))
        assert [v.tracking_id for v in page.messages] == [old.tracking_id]
        view = page.messages[0]
        assert (view.request, view.retry_of, view.retried_as) == (None, None, None)


def _old_insert(backend: Backend, tracking_id: str) -> Any:
    """A failed message as an older smppgw wrote it (no new columns)."""
    sql = ("INSERT INTO messages (tracking_id, provider, source, destination, text, data_coding,"
           " encoding, created_unix_ms, updated_unix_ms, state, parts, answer)"
           f" VALUES ('{tracking_id}', 'wavy', 'Acme', '5511999', 'before', 0, 'gsm7', 1, 1,"
           " 'failed', 1, '{}')")
    if backend.sqlite:
        return lambda tx: tx.conn.execute(sql)

    async def insert(tx: Any) -> None:
        await tx.conn.execute(sql)
    return insert
