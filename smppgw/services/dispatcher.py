"""Store → pool for one provider, and submit outcomes back to the store, in batches.

A feeder claims due parts from the store while a bind is bound and the workers have room,
and queues each message's claimed parts as one run, in part order. Workers (as many as the
provider's binds × window, so the windows can be full) take a run and send its parts one
after another: each becomes a submit_sm, goes through the pool, and the SMSC's answer becomes
a decision with flow.outbound, the part's fate and what it means for the bind (handed to
``pool.apply``). A part refused for flow control goes again at once; the next part goes only
once the one before it was submitted, and any other fate stops the run, its later parts going
back to the queue untouched (the store claims a part only with or after the parts before it).
Different messages go out concurrently. Outcomes are written by a recorder, in groups.
Nothing here blocks on one message: waiting for capacity happens in the pool, and when no
bind is bound the part goes back to the queue at once, where it shows in `smppgw status`
and can expire.

Pause and cancel. A paused dispatcher claims nothing; what it holds and has not written goes
back to the queue, what is on the wire gets its answer as usual (the binds stay up for receipts
and MO). A cancel first withdraws the message from the dispatcher (``withdraw``): its parts
not yet written are never written (pool.SubmitTicket), and the store cancel counts them "not
sent"; only the parts already on the wire are "in flight".

Nothing here ends on one fault either: a part whose send raises gets a retry outcome (logged,
counted in smppgw_worker_failures_total), a claim or a record the store refuses is tried
again later, and outcomes not yet recorded stay in memory until the store takes them, so a
part the SMSC answered is never sent again because its answer could not be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from smppgw.config import ProviderConfig
from smppgw.flow.outbound import (
    PartFate,
    RepeatedEndings,
    SubmitDecision,
    decide_answer,
    decide_encoding_error,
    decide_repeated,
    decide_unanswered,
    part_submit_sm,
)
from smppgw.flow.policy import store_retry_delay
from smppgw.logs import RepeatedLog
from smppgw.metrics import Metrics
from smppgw.pool.pool import BindPool, SubmitResult, SubmitTicket
from smppgw.pool.slot import SubmitFailure
from smppgw.smpp.errors import PduEncodeError
from smppgw.smpp.pdu import CancelSm
from smppgw.smpp.receipt import message_id_key
from smppgw.store import (
    SegmentToSend,
    Store,
    StoreError,
    StoreWriteError,
    SubmitOutcome,
)

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # seconds between store polls when nothing woke the feeder
MAX_WORKERS = 512
FAILURE_LOG_INTERVAL = 30.0  # seconds between two summaries of repeated failures
#: Messages remembered as withdrawn (cancelled): more than a dispatcher ever holds at once.
WITHDRAWN_KEPT = 10_000


class Dispatcher:
    """Moves one provider's queued parts through its BindPool."""

    def __init__(
        self,
        provider: ProviderConfig,
        store: Store,
        pool: BindPool,
        *,
        wall_clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        log_interval: float = FAILURE_LOG_INTERVAL,
    ) -> None:
        self.provider = provider
        self.store = store
        self.pool = pool
        self.wall_clock = wall_clock
        self.metrics = metrics
        profile = provider.profile
        senders = sum(1 for target in provider.bind_targets if target.can_submit)
        self.workers = max(1, min(MAX_WORKERS, senders * profile.window))
        # Runs: the claimed parts of one message, in part order.
        self._queue: asyncio.Queue[list[SegmentToSend]] = asyncio.Queue()
        self._outcomes: list[SubmitOutcome] = []
        self._outcomes_ready = asyncio.Event()
        self._work = asyncio.Event()
        self._busy = 0
        # Claimed parts a worker holds (sending, or building the outcome), by segment id:
        # what a run that failed must give back.
        self._in_hand: dict[int, SegmentToSend] = {}
        # The ticket of each part in hand while it is with the pool (written or waiting).
        self._tickets: dict[int, SubmitTicket] = {}
        # Messages withdrawn by a cancel, oldest first: none of their parts is written again.
        self._withdrawn: dict[str, None] = {}
        self._paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._endings = RepeatedEndings()
        self._suspect_lane = asyncio.Lock()
        self._idle = asyncio.Event()
        self._stopping = False
        loop = asyncio.get_running_loop()
        name = provider.name
        self._send_failures = RepeatedLog(loop, log_interval, lambda count, period: log.error(
            "sending parts kept failing; each is retried", extra={"kv": {
                "provider": name, "failures": count, "period": f"{period:.0f}s"}}))
        self._store_refusals = RepeatedLog(loop, log_interval, lambda count, period: (
            log.warning("the store still refuses claims or answers; claiming waits, answers "
                        "are kept", extra={"kv": {"provider": name, "refusals": count,
                                                  "period": f"{period:.0f}s"}})))
        self._unknown_statuses = RepeatedLog(loop, log_interval, lambda count, period: (
            log.warning("the SMSC kept answering statuses smppgw does not know",
                        extra={"kv": {"provider": name, "answers": count,
                                      "period": f"{period:.0f}s"}})))
        self._empty_ids = RepeatedLog(loop, log_interval, lambda count, period: (
            log.warning("the SMSC kept answering ESME_ROK with an empty message_id",
                        extra={"kv": {"provider": name, "parts": count,
                                      "period": f"{period:.0f}s"}})))

    def __repr__(self) -> str:
        paused = " paused" if self._paused else ""
        return (
            f"<Dispatcher {self.provider.name}{paused} queued={self._queue.qsize()}"
            f" busy={self._busy}/{self.workers}>"
        )

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """The operator paused (or resumed) the provider: while paused nothing is claimed,
        and the parts held and not written go back to the queue at once; those on the wire
        get their answers as usual."""
        if paused == self._paused:
            return
        self._paused = paused
        if paused:
            self._resumed.clear()
            self._release_queued()
            for ticket in self._tickets.values():
                self.pool.withdraw(ticket)
        else:
            self._resumed.set()
        self._work.set()

    def withdraw(self, tracking_id: str) -> frozenset[int]:
        """A cancel takes ``tracking_id`` back: none of its parts this dispatcher holds and
        has not written is written from now on (they go back as released). Returns the
        segment ids of those parts, which the store may count as not sent; parts already on
        the wire are not among them. Undo with ``restore`` when the cancel did not happen."""
        self._withdrawn[tracking_id] = None
        while len(self._withdrawn) > WITHDRAWN_KEPT:
            del self._withdrawn[next(iter(self._withdrawn))]
        held: set[int] = set()
        kept: list[list[SegmentToSend]] = []
        while not self._queue.empty():
            run = self._queue.get_nowait()
            if run[0].tracking_id == tracking_id:   # a run is the parts of one message
                held.update(segment.segment_id for segment in run)
                self._outcomes += [SubmitOutcome.released(s.segment_id) for s in run]
            else:
                kept.append(run)
        for run in kept:
            self._queue.put_nowait(run)
        for segment_id, segment in self._in_hand.items():
            if segment.tracking_id != tracking_id:
                continue
            ticket = self._tickets.get(segment_id)
            if ticket is None or not ticket.sent:
                held.add(segment_id)
                if ticket is not None:
                    self.pool.withdraw(ticket)
        if self._outcomes:
            self._outcomes_ready.set()
        return frozenset(held)

    def restore(self, tracking_id: str) -> None:
        """The cancel ``withdraw`` prepared did not happen (refused, or the store failed): the
        message's parts are sent again as they come back from the queue."""
        self._withdrawn.pop(tracking_id, None)
        self._work.set()

    async def cancel_on_smsc(self, pdu: CancelSm) -> int | None:
        """Send a cancel_sm through this provider's binds: the SMSC's command_status, or
        None when it did not answer (no bind, the link lost, a timeout)."""
        try:
            answer = await self.pool.request(pdu)
        except SubmitFailure as failure:
            log.warning("cancel_sm got no answer", extra={"kv": {
                "provider": self.provider.name, "reason": failure.kind}})
            return None
        return answer.status

    def _held_back(self, segment: SegmentToSend) -> bool:
        """Not to be written now: paused, stopping, or its message withdrawn."""
        return self._paused or self._stopping or segment.tracking_id in self._withdrawn

    def wake(self) -> None:
        """New work was accepted for this provider: claim it now rather than at the next poll."""
        self._work.set()

    async def run(self) -> None:
        """Run until cancelled; call stop_claiming() and finish() first, so claimed parts
        are given back and the answers of those in flight are recorded.

        Nothing in it is meant to raise; if it does all the same, the owner may call run()
        again: the parts the failed run held are given back first (queued again and sent
        again: at-least-once), and the outcomes it had not recorded are recorded."""
        self._give_back_held()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._record_loop(), name=f"record {self.provider.name}")
            for index in range(self.workers):
                group.create_task(self._worker(), name=f"send {self.provider.name}/{index}")
            group.create_task(self._feed_loop(), name=f"feed {self.provider.name}")

    def stop_claiming(self) -> None:
        """First step of a graceful stop: claim nothing more and give back what was claimed
        but not handed to the pool. Parts already in the pool keep waiting for their
        answers while the pool drains its windows."""
        self._stopping = True
        self._release_queued()
        self._work.set()

    async def finish(self, timeout: float) -> None:
        """Last step, once the pool is closed: wait (up to ``timeout``) until every worker has
        the outcome of the part it held, then write all outcomes. A part the pool answered
        during the drain is recorded as answered, not sent again after a restart."""
        self._stopping = True
        if self._busy:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        self._release_queued()
        try:
            await self._flush_outcomes()
        except StoreError as exc:
            log.error("answers could not be recorded at stop; their parts are sent again after "
                      "a restart", extra={"kv": {"provider": self.provider.name,
                                                 "answers": len(self._outcomes),
                                                 "error": str(exc)}})
        self._send_failures.close()
        self._store_refusals.close()
        self._empty_ids.close()
        self._unknown_statuses.close()

    def _release_queued(self) -> None:
        while not self._queue.empty():
            for segment in self._queue.get_nowait():
                self._outcomes.append(SubmitOutcome.released(segment.segment_id))
        if self._outcomes:
            self._outcomes_ready.set()

    def _give_back_held(self) -> None:
        """Before a run: release what a previous run left claimed (nothing after a clean
        stop, whose workers emptied their hands)."""
        self._release_queued()
        for segment_id in self._in_hand:
            self._outcomes.append(SubmitOutcome.released(segment_id))
        self._in_hand.clear()
        self._busy = 0
        if self._outcomes:
            self._outcomes_ready.set()

    # --- feeding -------------------------------------------------------------------------------

    async def _feed_loop(self) -> None:
        store = self.store
        name = self.provider.name
        refused = 0
        while not self._stopping:
            if store.write_failure is not None:
                # The disk refuses writes: claim nothing until it takes them again.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_INTERVAL):
                        await store.wait_writable()
                continue
            if self._paused:
                # The operator paused the provider: claim nothing until resumed.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_INTERVAL):
                        await self._resumed.wait()
                continue
            if not self.pool.submit_bound_count:
                # No bind could take a part: leave them queued, where they show and expire.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_INTERVAL):
                        await self.pool.wait_bound()
                continue
            room = self.workers * 2 - self._queue.qsize() - self._busy
            claimed: list[SegmentToSend] = []
            if room > 0:
                try:
                    claimed = await store.claim_segments(name, min(room, 1000))
                except StoreError as exc:
                    refused += 1
                    self._store_refused("claim", exc)
                    await self._wait_for_work(store_retry_delay(refused))
                    continue
                refused = 0
                for run in _runs(claimed):
                    self._queue.put_nowait(run)
                if self._stopping:  # stop_claiming() came during the claim
                    self._release_queued()
                    return
                if self._paused:    # a pause came during the claim
                    self._release_queued()
                    continue
            if claimed and len(claimed) >= room:
                # The workers are full: wait until some finish before claiming more.
                await self._wait_for_work(POLL_INTERVAL)
                continue
            if claimed:
                continue  # there may be more due right now
            await self._wait_for_work(POLL_INTERVAL)

    async def _wait_for_work(self, timeout: float) -> None:
        """Until wake() or a worker's finish sets the work event, at most ``timeout`` s."""
        self._work.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._work.wait()

    def _store_refused(self, what: str, exc: StoreError) -> None:
        """Log a refusal, unless the disk refused the write: the daemon says that once, for
        the whole store (smppgw_store_writable)."""
        if not isinstance(exc, StoreWriteError) and self._store_refusals.note():
            log.warning("the store refused a %s; claiming waits, answers are kept", what,
                        extra={"kv": {"provider": self.provider.name, "error": str(exc)}})

    # --- sending -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            run = await queue.get()
            self._busy += 1
            for segment in run:
                self._in_hand[segment.segment_id] = segment
            try:
                await self._send_run(run)
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
            self._outcomes_ready.set()
            if queue.qsize() < self.workers:
                self._work.set()

    async def _send_run(self, run: list[SegmentToSend]) -> None:
        """One message's claimed parts, one after another: the next only once the one before
        it was submitted (flow.outbound PartFate.continues); once a part ends otherwise, or the
        dispatcher stops, the parts after it go back to the queue untouched."""
        going = True
        for segment in run:
            if going and not self._held_back(segment):
                try:
                    outcome = await self._send(segment)
                except Exception as exc:
                    outcome = self._send_failed(segment, exc)
                going = outcome.kind == "ok"
            else:
                outcome = SubmitOutcome.released(segment.segment_id)
            self._in_hand.pop(segment.segment_id, None)
            self._tickets.pop(segment.segment_id, None)
            self._outcomes.append(outcome)

    async def _send(self, segment: SegmentToSend) -> SubmitOutcome:
        """Send one part until its fate is settled: a part refused for flow control goes
        again at once (flow.outbound SEND_AGAIN, bounded), so it leaves before any later part
        of its message; every other fate becomes the outcome to record."""
        sent_at = self.wall_clock()
        part = segment.segment_id
        pdu = part_submit_sm(self.provider.profile, segment)
        sent_again = 0
        while True:
            result: SubmitResult | None = None
            # A new ticket per write: one sent again (flow control) can still be held back.
            ticket = self._tickets[part] = SubmitTicket(withdrawn=self._held_back(segment))
            try:
                if self._endings.suspect(part):
                    async with self._suspect_lane:  # see flow.outbound's RepeatedEndings
                        result = await self.pool.submit(pdu, ticket)
                else:
                    result = await self.pool.submit(pdu, ticket)
            except PduEncodeError as exc:
                # A stored part our encoder refuses (stored before accept checked it, or a
                # rule that changed): the same every time, so it fails now, loudly.
                self._endings.note(part, None)
                decision = decide_encoding_error(str(exc))
            except SubmitFailure as failure:
                lost = failure.kind == "connection_lost"
                if self._endings.note(part, "link_lost" if lost else None):
                    decision = decide_repeated("link_lost")
                else:
                    decision = decide_unanswered(failure.kind, attempts=segment.attempts)
                return self._outcome(segment, decision, failure.bind, sent_at)
            else:
                self._endings.note(part, None)
                decision = decide_answer(result.status, result.message_id,
                                         attempts=segment.attempts, sent_again=sent_again)
                self.pool.apply(result, decision)
            if decision.fate is not PartFate.SEND_AGAIN:
                return self._outcome(segment, decision, result.bind if result else None,
                                     sent_at, result)
            sent_again += 1

    def _outcome(
        self, segment: SegmentToSend, decision: SubmitDecision, bind: str | None,
        sent_at: float, result: SubmitResult | None = None,
    ) -> SubmitOutcome:
        """The store's record of ``decision`` for ``segment``, with the line an operator
        needs when it fails the message (never its text or number: DESIGN.md)."""
        part = segment.segment_id
        fate = decision.fate
        if fate is PartFate.RELEASE:
            return SubmitOutcome.released(part)
        if fate is PartFate.SUBMITTED:
            message_id = decision.message_id or ""
            if decision.unmatchable:
                self._empty_message_id(segment, bind)
            return SubmitOutcome.ok(
                part, message_id,
                message_id_key(message_id, self.provider.profile.message_id_format)
                if message_id else None,
                bind=bind, sent_at_wall=sent_at, account=self.provider.account)
        status = result.status if result is not None else None
        row = decision.status
        if fate is PartFate.RETRY:
            if row is not None and row.alert:
                self._status_unknown(decision, bind)
            return SubmitOutcome.transient(
                part, self.wall_clock() + (decision.retry_in or 0.0),
                status_name=decision.status_name, command_status=status,
                error=decision.reason if status is not None else f"{decision.reason} on {bind}",
                bind=bind, sent_at_wall=sent_at)
        # FAIL
        details: dict[str, object] = {
            "tracking_id": segment.tracking_id,
            "part": f"{segment.part_index + 1}/{segment.parts}",
            "status": decision.status_name,
        }
        if row is None:
            details["reason"] = decision.reason
            log.warning("part failed; not sent again", extra={"bind": bind, "kv": details})
        elif row.is_permanent:
            log.warning("submit refused permanently", extra={"bind": bind, "kv": details})
        else:
            details["attempts"] = segment.attempts + 1
            log.warning("submit refused; retries exhausted", extra={"bind": bind, "kv": details})
        return SubmitOutcome.permanent(
            part, decision.status_name or "FAILED", command_status=status,
            error=row.description if row is not None else decision.reason, bind=bind,
            sent_at_wall=sent_at if bind is not None else None)

    def _status_unknown(self, decision: SubmitDecision, bind: str | None) -> None:
        """A status whose row says ``alert`` (smpp/status.py: undocumented, or the SMSC's
        own "unknown error"): retried a few times, and the operator told, once per streak,
        so the table can get a row for it."""
        row = decision.status
        assert row is not None
        if self._unknown_statuses.note():
            log.warning("the SMSC answered a status smppgw does not know; retried a few times",
                        extra={"bind": bind, "kv": {"provider": self.provider.name,
                                                    "status": row.name,
                                                    "detail": row.description}})

    def _empty_message_id(self, segment: SegmentToSend, bind: str | None) -> None:
        """ESME_ROK without a message id: the part is submitted, but no receipt can find it;
        its message ends ``unknown`` when its validity runs out. Counted, and said once per
        streak with the provider (then a summary per period)."""
        if self.pool.provider_metrics is not None:
            self.pool.provider_metrics.empty_message_id()
        if self._empty_ids.note():
            log.warning("submit_sm_resp ESME_ROK with an empty message_id; no receipt can be "
                        "matched to this part", extra={"bind": bind, "kv": {
                            "provider": self.provider.name,
                            "tracking_id": segment.tracking_id,
                            "part": f"{segment.part_index + 1}/{segment.parts}"}})

    def _send_failed(self, segment: SegmentToSend, exc: Exception) -> SubmitOutcome:
        """A fault of ours while sending ``segment``: logged (the first of a streak with its
        traceback), counted, and the part retried like a transient failure, or failed once
        its sends ended so REPEAT_LIMITS times in a row."""
        if self.metrics is not None:
            self.metrics.worker_failure("dispatcher")
        if self._send_failures.note():
            log.error("sending a part failed; it will be retried", exc_info=exc, extra={"kv": {
                "provider": self.provider.name, "tracking_id": segment.tracking_id,
                "part": f"{segment.part_index + 1}/{segment.parts}"}})
        error = f"internal error: {type(exc).__name__}: {exc}"
        if self._endings.note(segment.segment_id, "send_error"):
            return self._outcome(segment, decide_repeated("send_error", error), None,
                                 self.wall_clock())
        decision = decide_unanswered("timeout", attempts=segment.attempts)
        return SubmitOutcome.transient(
            segment.segment_id, self.wall_clock() + (decision.retry_in or 0.0), error=error)

    # --- recording -----------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        refused = 0
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            try:
                await self._flush_outcomes()
            except StoreError as exc:
                # Kept (see _flush_outcomes) and tried again after a growing delay, with
                # whatever came meanwhile.
                refused += 1
                self._store_refused("record of answers", exc)
                delay = store_retry_delay(refused)
                if self.store.write_failure is None:
                    await asyncio.sleep(delay)
                else:  # tried again as soon as the disk takes writes
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self.store.wait_writable()
                self._outcomes_ready.set()
            else:
                refused = 0

    async def _flush_outcomes(self) -> None:
        """Record every queued outcome in one write. When the store refuses it, the outcomes
        stay queued (oldest first) and StoreError propagates: nothing is recorded half, since
        the write is one transaction."""
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            recorded = await self.store.apply_submit_results(batch)
        except BaseException:
            self._outcomes[:0] = batch
            raise
        metrics = self.pool.provider_metrics
        if metrics is not None:
            for result in recorded:
                if result is not None and result.answered is not None:
                    metrics.message_answered(result.answered)
        # Released and retried parts may be due again, and the next part of a message whose
        # part was just submitted may be claimed now: look again at once.
        self._work.set()


def _runs(claimed: list[SegmentToSend]) -> list[list[SegmentToSend]]:
    """The claimed parts grouped by message, each group in part order; messages in the order
    their first part was claimed (oldest due first)."""
    runs: dict[str, list[SegmentToSend]] = {}
    for segment in claimed:
        runs.setdefault(segment.tracking_id, []).append(segment)
    for run in runs.values():
        run.sort(key=lambda segment: segment.part_index)
    return list(runs.values())
