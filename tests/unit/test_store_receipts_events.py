"""Store receipts, MO and the event log: correlation across binds, parking and late matching,
the multi-part state rules, MO parts that survive a restart, cursors that resume without gaps,
the long-poll wake-up, webhook positions and a message's history. Both backends.
"""

from __future__ import annotations

import asyncio
import dataclasses

from smppgw.store import (
    MoMessage,
    MoPart,
    ReceiptOutcomeName,
    ReceiptRecord,
    ReceiptResult,
    SegmentToSend,
    Store,
    SubmitOutcome,
)
from tests.store_backends import Backend
from tests.unit.test_store_writes import T0, Clock, clock, message, raw_write, store

__all__ = ["clock", "store"]   # fixtures shared with test_store_writes


def receipt(
    message_id: str, outcome: ReceiptOutcomeName = "delivered", *, provider: str = "wavy",
    stat: str | None = None, keys: tuple[str, ...] = (), bind: str | None = None,
) -> ReceiptRecord:
    stat = stat or {"delivered": "DELIVRD", "undeliverable": "UNDELIV", "expired": "EXPIRED",
                    "rejected": "REJECTD", "accepted": "ACCEPTD"}.get(outcome, "ENROUTE")
    return ReceiptRecord(provider, message_id, stat, "000", outcome,
                         outcome not in ("accepted", "enroute"), message_keys=keys,
                         details={"stat": stat, "text": "hello"}, bind=bind)


async def submitted(store: Store, parts: int = 1, *, prefix: str = "ID") -> list[SegmentToSend]:
    """Accept one message and record an ok submit for each part: SMSC ids PREFIX-<part>."""
    await store.accept_messages([message(parts=parts)])
    claimed = await store.claim_segments("wavy", parts, now_wall=T0)
    await store.record_submit_results(
        [SubmitOutcome.ok(s.segment_id, f"{prefix}-{s.part_index}") for s in claimed])
    return claimed


# --- receipts ------------------------------------------------------------------------------------


async def test_receipt_on_any_bind_matches_by_provider_and_key(store: Store) -> None:
    (part,) = await submitted(store)
    (result,) = await store.record_receipts([receipt("ID-0", bind="wavy#3")])
    assert result == ReceiptResult(True, part.tracking_id, 0, "delivered")
    view = await store.get_message(part.tracking_id)
    assert view is not None and view.state == "delivered"
    (segment,) = view.segments
    assert (segment.state, segment.receipt_stat, segment.receipt_err) == (
        "delivered", "DELIVRD", "000")
    assert segment.receipt is not None and segment.receipt["bind"] == "wavy#3"
    receipt_event, state_event = (await store.events_after(0))[-2:]
    assert receipt_event.as_dict()["type"] == "receipt"
    assert (receipt_event.state, receipt_event.payload["stat"]) == ("delivered", "DELIVRD")
    assert receipt_event.payload["receipt"] == {"stat": "DELIVRD", "text": "hello"}
    assert (state_event.type, state_event.state) == ("state", "delivered")


ACCOUNT = "acme@smpp.example:2775"


async def test_receipts_match_per_account_whatever_table_sent_or_received(
    store: Store,
) -> None:
    """Two provider tables on one SMSC account: a message sent by "wavy" (its submit answered
    on that account) is matched by a receipt that came on a receiver bind of "wavy-rx"."""
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    await store.record_submit_results([SubmitOutcome.ok(s.segment_id, "ID-0", account=ACCOUNT)])
    on_rx = dataclasses.replace(receipt("ID-0", provider="wavy-rx", bind="wavy-rx#0"),
                                account=ACCOUNT)
    (result,) = await store.record_receipts([on_rx])
    assert result == ReceiptResult(True, s.tracking_id, 0, "delivered")
    (receipt_event,) = [e for e in await store.events_after(0) if e.type == "receipt"]
    assert receipt_event.payload["provider"] == "wavy-rx"


async def test_the_same_id_on_another_account_does_not_match(store: Store) -> None:
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    await store.record_submit_results([SubmitOutcome.ok(s.segment_id, "ID-0", account=ACCOUNT)])
    other = dataclasses.replace(receipt("ID-0"), account="acme@other.example:2775")
    (result,) = await store.record_receipts([other])
    assert result.parked
    # Nor does a receipt without an account (its provider's name is its space).
    (result,) = await store.record_receipts([receipt("ID-0")])
    assert result.parked


async def test_a_receipt_parked_on_the_account_matches_the_other_tables_submit(
    store: Store,
) -> None:
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    early = dataclasses.replace(receipt("EARLY", provider="wavy-rx"), account=ACCOUNT)
    (parked,) = await store.record_receipts([early])
    assert parked.parked
    assert await store.record_submit_results(
        [SubmitOutcome.ok(s.segment_id, "EARLY", account=ACCOUNT)]) == ["delivered"]
    assert await store.unmatched_receipt_count() == 0


async def test_rows_from_before_accounts_are_adopted_by_their_providers_account(
    store: Store,
) -> None:
    """After the upgrade (schema: a part's or parked receipt's account is its provider's
    name), adopt_accounts gives them their provider's account key, so the receipts that now
    come with the key still find them; what is keyed already is left as it is."""
    sent = await submitted(store)                        # no account: the provider's name
    await store.accept_messages([message()])
    (waiting,) = await store.claim_segments("wavy", 1, now_wall=T0)
    assert (await store.record_receipts([receipt("PARKED")]))[0].parked
    assert await store.adopt_accounts({"wavy": ACCOUNT, "qikberry": "x@q:1"}) >= 3
    assert await store.adopt_accounts({"wavy": ACCOUNT}) == 0    # idempotent
    keyed = dataclasses.replace(receipt("ID-0"), account=ACCOUNT)
    assert (await store.record_receipts([keyed]))[0].tracking_id == sent[0].tracking_id
    assert await store.record_submit_results(
        [SubmitOutcome.ok(waiting.segment_id, "PARKED", account=ACCOUNT)]) == ["delivered"]


async def test_same_id_at_another_provider_does_not_match(store: Store) -> None:
    await submitted(store)
    (result,) = await store.record_receipts([receipt("ID-0", provider="qikberry")])
    assert result.parked
    assert await store.unmatched_receipt_count() == 1


async def test_receipt_matched_by_a_key_variant(store: Store) -> None:
    await store.accept_messages([message()])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    # submit_sm_resp said hex 00001A2B; the receipt says decimal 6699 (same number).
    await store.record_submit_results([SubmitOutcome.ok(s.segment_id, "00001A2B", "1a2b")])
    (result,) = await store.record_receipts([receipt("6699", keys=("6699", "1a2b"))])
    assert result.matched and result.tracking_id == s.tracking_id


async def test_receipt_before_submit_result_is_parked_then_matched(store: Store) -> None:
    await store.accept_messages([message(client_id="early")])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    (parked,) = await store.record_receipts([receipt("EARLY", keys=("early",))])
    assert parked.parked and await store.unmatched_receipt_count() == 1
    assert (await store.counts()).unmatched_receipts == 1
    states = await store.record_submit_results([SubmitOutcome.ok(s.segment_id, "EARLY", "early")])
    assert states == ["delivered"]
    assert await store.unmatched_receipt_count() == 0
    events = [(e.type, e.state) for e in await store.events_after(0)]
    assert events == [("state", "queued"), ("state", "submitted"), ("receipt", "delivered"),
                      ("state", "delivered")]


async def test_parked_receipts_survive_a_restart(backend: Backend) -> None:
    async with await backend.open(clock=Clock()) as s:
        await s.accept_messages([message()])
        assert len(await s.claim_segments("wavy", 1, now_wall=T0)) == 1
        await s.record_receipts([receipt("LATE")])
    async with await backend.open(clock=Clock()) as s:
        report = await s.recover()
        assert report.unmatched_receipts == 1 and report.requeued_segments == 1
        (again,) = await s.claim_segments("wavy", 1, now_wall=T0)
        assert await s.record_submit_results([SubmitOutcome.ok(again.segment_id, "LATE")]) == [
            "delivered"]


async def test_multipart_is_delivered_only_when_every_part_is(store: Store) -> None:
    parts = await submitted(store, 3)
    tid = parts[0].tracking_id
    r = await store.record_receipts([receipt("ID-0"), receipt("ID-1")])
    assert [x.message_state for x in r] == ["submitted", "submitted"]
    (last,) = await store.record_receipts([receipt("ID-2")])
    assert last.message_state == "delivered"
    view = await store.get_message(tid)
    assert view is not None and [s.state for s in view.segments] == ["delivered"] * 3


async def test_multipart_final_state_waits_for_all_parts(store: Store) -> None:
    parts = await submitted(store, 3)
    await store.record_receipts([receipt("ID-0", "undeliverable")])
    (r,) = await store.record_receipts([receipt("ID-1", "accepted")])
    assert r.message_state == "submitted"          # part 2 only submitted
    (r,) = await store.record_receipts([receipt("ID-2", "delivered")])
    assert r.message_state == "accepted"           # part 1 not final yet
    (r,) = await store.record_receipts([receipt("ID-1", "expired")])
    assert r.message_state == "undeliverable"      # all final: undeliverable beats expired
    view = await store.get_message(parts[0].tracking_id)
    assert view is not None and view.state == "undeliverable"


async def test_receipts_only_move_a_part_forward(store: Store) -> None:
    (part,) = await submitted(store)
    await store.record_receipts([receipt("ID-0", "delivered")])
    (late,) = await store.record_receipts([receipt("ID-0", "accepted")])
    assert late.message_state == "delivered"
    view = await store.get_message(part.tracking_id)
    assert view is not None and view.segments[0].state == "delivered"


async def test_enroute_and_unknown_receipts_are_recorded_without_a_state_change(
    store: Store,
) -> None:
    await submitted(store)
    before = store.last_cursor
    results = await store.record_receipts([receipt("ID-0", "enroute"),
                                           receipt("ID-0", "unknown", stat="UNKNOWN")])
    assert [r.message_state for r in results] == ["submitted", "submitted"]
    events = await store.events_after(before)
    assert [e.type for e in events] == ["receipt", "receipt"]


async def test_a_resent_receipt_is_a_duplicate(store: Store) -> None:
    await submitted(store)
    await store.record_receipts([receipt("ID-0")])
    cursor = store.last_cursor
    (again,) = await store.record_receipts([receipt("ID-0")])
    assert again.duplicate and again.message_state == "delivered"
    assert store.last_cursor == cursor


async def test_a_final_message_keeps_its_state(store: Store) -> None:
    await store.accept_messages([message(parts=2)])
    p0, p1 = await store.claim_segments("wavy", 2, now_wall=T0)
    await store.record_submit_results([SubmitOutcome.ok(p0.segment_id, "OK-0"),
                                       SubmitOutcome.permanent(p1.segment_id, "ESME_RSYSERR")])
    (r,) = await store.record_receipts([receipt("OK-0")])
    assert r.matched and r.message_state == "failed"
    assert (await store.events_after(0))[-1].type == "receipt"


# --- MO ------------------------------------------------------------------------------------------


def mo_part(seq: int, total: int = 3, reference: int = 7) -> MoPart:
    return MoPart("wavy", "5511988887777", "29000", reference, total, seq, 0,
                  f"part{seq}".encode(), bind="wavy#1")


async def test_mo_parts_are_kept_until_the_message_is_recorded(store: Store) -> None:
    r1 = await store.record_mo_part(mo_part(1))
    r3 = await store.record_mo_part(mo_part(3))
    assert not r1.complete and not r3.complete and not r1.duplicate
    again = await store.record_mo_part(mo_part(3))
    assert again.duplicate and again.part_id == r3.part_id
    r2 = await store.record_mo_part(mo_part(2))
    assert r2.complete and [p.seq for p in r2.parts] == [1, 2, 3]
    assert b"".join(p.payload for p in r2.parts) == b"part1part2part3"
    record = await store.record_mo_message(
        MoMessage("wavy", "5511988887777", "29000", "part1part2part3", parts=3),
        [p.part_id for p in r2.parts])
    assert (await store.counts()).mo_parts_pending == 0
    (event,) = await store.events_after(0)
    assert event.cursor == record.cursor
    body = event.as_dict()
    assert {k: body[k] for k in ("type", "from", "to", "text", "provider")} == {
        "type": "mo", "from": "5511988887777", "to": "29000", "text": "part1part2part3",
        "provider": "wavy"}
    assert "tracking_id" not in body


async def test_complete_mo_group_is_reported_after_a_restart(backend: Backend) -> None:
    async with await backend.open() as s:
        await s.record_mo_part(mo_part(1, total=2))
        await s.record_mo_part(mo_part(2, total=2))
        await s.record_mo_part(mo_part(1, total=2, reference=8))   # incomplete
    async with await backend.open() as s:
        report = await s.recover()
        (group,) = report.complete_mo_groups
        assert [p.seq for p in group] == [1, 2] and group[0].reference == 7


# --- events --------------------------------------------------------------------------------------


async def test_cursors_increase_and_resuming_misses_nothing(store: Store) -> None:
    async def producer(n: int) -> None:
        for _ in range(n):
            await store.accept_messages([message(), message()])

    async def consumer(stop: asyncio.Event) -> list[int]:
        seen: list[int] = []
        cursor = 0
        for _ in range(10_000):   # bounded
            events = await store.events_after(cursor, limit=7)
            seen.extend(e.cursor for e in events)
            if events:
                cursor = events[-1].cursor
            elif stop.is_set() and cursor == store.last_cursor:
                return seen
            else:
                await store.wait_for_events(cursor, timeout=5)
        raise AssertionError("consumer did not finish")

    stop = asyncio.Event()
    reading = asyncio.create_task(consumer(stop))
    await asyncio.gather(*(producer(20) for _ in range(8)))
    stop.set()
    seen = await reading
    assert seen == list(range(1, 321)) == [e.cursor for e in
                                            await store.events_after(0, limit=1000)]
    # A consumer restarting from a remembered cursor gets exactly the rest.
    assert [e.cursor for e in await store.events_after(150, limit=1000)] == seen[150:]


async def test_cursors_are_never_reused_after_restart(backend: Backend) -> None:
    async with await backend.open() as s:
        await s.accept_messages([message()])
        await raw_write(s, lambda tx: tx.conn.execute("DELETE FROM events"))
    async with await backend.open() as s:
        assert s.last_cursor == 1
        await s.accept_messages([message()])
        assert [e.cursor for e in await s.events_after(0)] == [2]


async def test_wait_for_events_is_woken_by_the_commit(store: Store) -> None:
    await store.accept_messages([message()])
    after = store.last_cursor
    assert await store.wait_for_events(after - 1, timeout=0)   # already there
    waiter = asyncio.create_task(store.wait_for_events(after, timeout=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.accept_messages([message()])
    assert await asyncio.wait_for(waiter, 5) is True


async def test_wait_for_events_times_out_and_close_wakes_it(backend: Backend) -> None:
    s = await backend.open()
    assert await s.wait_for_events(s.last_cursor, timeout=0.01) is False
    waiter = asyncio.create_task(s.wait_for_events(s.last_cursor, timeout=30))
    await asyncio.sleep(0)
    await s.close()
    assert await asyncio.wait_for(waiter, 5) is False


async def test_webhook_positions_only_move_forward(store: Store) -> None:
    assert await store.get_webhook_position("crm") == 0
    await store.set_webhook_position("crm", 42)
    await store.set_webhook_position("crm", 17)
    await store.set_webhook_position("billing", 3)
    assert await store.get_webhook_position("crm") == 42
    assert await store.get_webhook_position("billing") == 3


# --- reads ---------------------------------------------------------------------------------------


async def test_get_message_history_and_unknown_id(store: Store, clock: Clock) -> None:
    assert await store.get_message("0" * 32) is None
    await store.accept_messages([message(client_id="h")])
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0)
    clock.now += 1
    await store.record_submit_results([SubmitOutcome.transient(
        s.segment_id, T0 + 5, status_name="ESME_RTHROTTLED")])
    clock.now += 5
    (s,) = await store.claim_segments("wavy", 1, now_wall=T0 + 5)
    await store.record_submit_results([SubmitOutcome.ok(s.segment_id, "H-1", bind="wavy#2")])
    clock.now += 1
    await store.record_receipts([receipt("H-1")])
    view = await store.get_message(s.tracking_id)
    assert view is not None
    assert [(h.type, h.state) for h in view.history] == [
        ("state", "queued"), ("retry", None), ("state", "submitted"), ("receipt", "delivered"),
        ("state", "delivered")]
    assert view.history[1].at == "2023-11-14T22:13:21.000Z"
    assert (view.created_wall, view.updated_wall) == (T0, T0 + 7)
    assert view.segments[0].attempts == 2 and view.attempts == 2
    assert await store.get_tracking_id("h") == s.tracking_id
    counts = await store.counts()
    assert counts.messages == {"delivered": 1} and counts.segments == {"delivered": 1}
    assert counts.last_cursor == store.last_cursor


async def test_purge_keeps_what_is_still_going_on(store: Store, clock: Clock) -> None:
    done = await submitted(store, prefix="OLD")
    await store.record_receipts([receipt("OLD-0"), receipt("STRAY")])
    await store.record_mo_message(MoMessage("wavy", "5511", "290", "hi"))
    waiting = message()
    await store.accept_messages([waiting])
    events_before = store.last_cursor
    clock.now += 100
    await store.accept_messages([message()])
    report = await store.purge(T0 + 50, limit=2)
    assert (report.messages, report.events, report.parked_receipts, report.mo_messages) == (
        1, 2, 1, 1)
    report = await store.purge(T0 + 50)
    assert report.messages == 0 and report.events == events_before - 2
    assert await store.get_message(done[0].tracking_id) is None
    assert await store.get_message(waiting.tracking_id) is not None   # still queued
    assert await store.unmatched_receipt_count() == 0         # parked longer than kept: gone
    assert [e.cursor for e in await store.events_after(0)] == [events_before + 1]
    await store.accept_messages([message()])
    assert store.last_cursor == events_before + 2                       # never reused


async def test_unmatched_receipts_per_provider_with_the_stale_ones(
    backend: Backend, clock: Clock,
) -> None:
    """Per provider whose binds brought them: parked receipts, and those parked before the
    limit; a receipt matched late leaves both counts."""
    async with await backend.open(clock=clock) as s:
        await s.accept_messages([message()])
        (part,) = await s.claim_segments("wavy", 1, now_wall=T0)
        await s.record_receipts([receipt("OLD-1"), receipt("LATE")])
        clock.now += 600
        await s.record_receipts([receipt("NEW-1"), receipt("Q-1", provider="qikberry")])
        found = await s.unmatched_receipts(stale_before_wall=clock() - 300)
        assert {p: (u.pending, u.stale) for p, u in found.items()} == {
            "wavy": (3, 2), "qikberry": (1, 0)}
        assert found["wavy"].oldest_received_wall == clock() - 600
        await s.record_submit_results([SubmitOutcome.ok(part.segment_id, "LATE")])
        found = await s.unmatched_receipts(stale_before_wall=clock() - 300)
        assert (found["wavy"].pending, found["wavy"].stale) == (2, 1)
