"""Store → pool for one provider, and submit outcomes back to the store, in batches.

A feeder claims due segments from the store while the workers have room; workers (as many as
the provider's binds × window, so the pool's windows can be full) turn each into a submit_sm,
wait for the SMSC's answer through the pool and queue the outcome; a recorder writes outcomes
in groups. Nothing here blocks on one message: waiting for bind capacity happens in the pool.

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
from collections.abc import Callable, Mapping
from typing import Literal

from smppgw.config import ProviderConfig
from smppgw.logs import RepeatedLog
from smppgw.metrics import Metrics
from smppgw.pool import BindPool, SubmitFailure
from smppgw.profiles import ProviderProfile
from smppgw.smpp import status as status_table
from smppgw.smpp.constants import CommandStatus, Tag, Ton
from smppgw.smpp.errors import PduEncodeError
from smppgw.smpp.pdu import SubmitSm, Tlv
from smppgw.smpp.receipt import message_id_key
from smppgw.store import (
    SegmentToSend,
    Store,
    StoreError,
    StoreWriteError,
    SubmitOutcome,
    Tlvs,
)

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # seconds between store polls when nothing woke the feeder
MAX_WORKERS = 512
STORE_RETRY_MAX = 30.0  # seconds: the longest wait before a refused claim or record is retried
FAILURE_LOG_INTERVAL = 30.0  # seconds between two summaries of repeated failures


def validity_period(valid_until_wall: float | None) -> str:
    """Absolute validity_period in UTC, SMPP 3.4 §7.1.1: YYMMDDhhmmsstnnp, here t=0 nn=00 +."""
    if valid_until_wall is None:
        return ""
    # time.gmtime, not datetime: the same text at a third of the cost (accept and send paths).
    return time.strftime("%y%m%d%H%M%S", time.gmtime(valid_until_wall)) + "000+"


def build_submit_sm(
    profile: ProviderProfile, *, source: str, destination: str, esm_class: int,
    registered_delivery: int, valid_until_wall: float | None, data_coding: int,
    short_message: bytes, tlvs: Tlvs,
) -> SubmitSm:
    """The submit_sm (SMPP 3.4 §4.4.1) of one stored part, as it goes to ``profile``'s SMSC.
    Pure; the accept path builds the same PDU to check that it encodes and fits."""
    if source and not source.lstrip("+").isdigit():
        source_ton, source_npi = int(Ton.ALPHANUMERIC), 0
    else:
        source_ton, source_npi = profile.default_ton, profile.default_npi
    return SubmitSm(
        service_type="",
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=source.lstrip("+"),
        dest_addr_ton=profile.default_ton,
        dest_addr_npi=profile.default_npi,
        destination_addr=destination,
        esm_class=esm_class,
        registered_delivery=registered_delivery,
        validity_period=validity_period(valid_until_wall),
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tuple(Tlv(tag, raw) for tag, raw in tlvs),
    )


def retry_delay(attempts: int) -> float:
    """Seconds before a transient failure is retried: 1 s doubling, at most 5 minutes."""
    return float(min(300, 2 ** min(attempts, 9)))


# How a send ended, for the repeat rule: "link_lost" = the link went while the part awaited
# its answer (the SMSC may drop a bind on a PDU it cannot take, instead of answering it);
# "send_error" = a fault of ours while sending it. Any other ending (an answer, a timeout, a
# throttle) ends a streak: a slow or busy SMSC never fails a message by this rule.
Ending = Literal["link_lost", "send_error"]
#: Sends in a row that end the same way before the part's message fails.
REPEAT_LIMITS: Mapping[Ending, int] = {"link_lost": 3, "send_error": 3}


class RepeatedEndings:
    """Parts whose sends keep ending the same way: the one decision that ends a poison part,
    which no SMPP status reports. Pure: counts per part (a segment id), no clock, no I/O.

    A part that was in flight when a link was lost is a *suspect* until a send of it ends
    another way; the dispatcher sends suspects one at a time, so an innocent part is not in
    flight with the culprit at the next drop, and only the culprit reaches the limit.
    At most ``capacity`` parts are remembered (the oldest are forgotten first).
    """

    __slots__ = ("_capacity", "_limits", "_streaks")

    def __init__(
        self, limits: Mapping[Ending, int] = REPEAT_LIMITS, capacity: int = 100_000
    ) -> None:
        self._limits = limits
        self._capacity = capacity
        self._streaks: dict[int, tuple[Ending, int]] = {}

    def note(self, part: int, ending: Ending | None) -> bool:
        """One send of ``part`` ended ``ending`` (None: any other way, which forgets it).
        True when that makes ``limit`` in a row: fail the part's message."""
        streaks = self._streaks
        previous = streaks.pop(part, None)
        if ending is None:
            return False
        count = previous[1] + 1 if previous is not None and previous[0] == ending else 1
        if count >= self._limits[ending]:
            return True
        streaks[part] = (ending, count)
        if len(streaks) > self._capacity:
            del streaks[next(iter(streaks))]
        return False

    def suspect(self, part: int) -> bool:
        """The last send of ``part`` was in flight when its link was lost."""
        streak = self._streaks.get(part)
        return streak is not None and streak[0] == "link_lost"

    def __len__(self) -> int:
        return len(self._streaks)


def store_retry_delay(failures: int) -> float:
    """Seconds before a claim or a record the store refused ``failures`` times in a row is
    tried again: 1 s doubling, at most STORE_RETRY_MAX."""
    return min(STORE_RETRY_MAX, 2.0 ** max(0, min(failures - 1, 10)))


class Dispatcher:
    """Moves one provider's queued segments through its BindPool."""

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
        self.workers = max(1, min(MAX_WORKERS, len(provider.bind_targets) * profile.window))
        self._queue: asyncio.Queue[SegmentToSend] = asyncio.Queue()
        self._outcomes: list[SubmitOutcome] = []
        self._outcomes_ready = asyncio.Event()
        self._work = asyncio.Event()
        self._busy = 0
        # Claimed segments a worker holds (sending, or building the outcome), by segment id:
        # what a run that failed must give back.
        self._in_hand: dict[int, SegmentToSend] = {}
        self._endings = RepeatedEndings()
        self._suspect_lane = asyncio.Lock()
        self._idle = asyncio.Event()
        self._stopping = False
        self.submitted = 0
        self.message_id_format = profile.message_id_format
        loop = asyncio.get_running_loop()
        name = provider.name
        self._send_failures = RepeatedLog(loop, log_interval, lambda count, _, period: log.error(
            "sending parts kept failing; each is retried", extra={"kv": {
                "provider": name, "failures": count, "period": f"{period:.0f}s"}}))
        self._store_refusals = RepeatedLog(loop, log_interval, lambda count, _, period: (
            log.warning("the store still refuses claims or answers; claiming waits, answers "
                        "are kept", extra={"kv": {"provider": name, "refusals": count,
                                                  "period": f"{period:.0f}s"}})))

    def __repr__(self) -> str:
        return (
            f"<Dispatcher {self.provider.name} queued={self._queue.qsize()} busy={self._busy}"
            f"/{self.workers}>"
        )

    def wake(self) -> None:
        """New work was accepted for this provider: claim it now rather than at the next poll."""
        self._work.set()

    async def run(self) -> None:
        """Run until cancelled; call stop_claiming() and finish() first, so claimed segments
        are given back and the answers of those in flight are recorded.

        Nothing in it is meant to raise; if it does all the same, the owner may call run()
        again: the segments the failed run held are given back first (queued again and sent
        again: at-least-once), and the outcomes it had not recorded are recorded."""
        self._give_back_held()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._record_loop(), name=f"record {self.provider.name}")
            for index in range(self.workers):
                group.create_task(self._worker(), name=f"send {self.provider.name}/{index}")
            group.create_task(self._feed_loop(), name=f"feed {self.provider.name}")

    def stop_claiming(self) -> None:
        """First step of a graceful stop: claim nothing more and give back what was claimed
        but not handed to the pool. Segments already in the pool keep waiting for their
        answers while the pool drains its windows."""
        self._stopping = True
        self._release_queued()
        self._work.set()

    async def finish(self, timeout: float) -> None:
        """Last step, once the pool is closed: wait (up to ``timeout``) until every worker has
        the outcome of the segment it held, then write all outcomes. A segment the pool
        answered during the drain is recorded as answered, not sent again after a restart."""
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

    def _release_queued(self) -> None:
        while not self._queue.empty():
            segment = self._queue.get_nowait()
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
                for segment in claimed:
                    self._queue.put_nowait(segment)
                if self._stopping:  # stop_claiming() came during the claim
                    self._release_queued()
                    return
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

    def build_pdu(self, segment: SegmentToSend) -> SubmitSm:
        return build_submit_sm(
            self.provider.profile, source=segment.source, destination=segment.destination,
            esm_class=segment.esm_class, registered_delivery=segment.registered_delivery,
            valid_until_wall=segment.valid_until_wall, data_coding=segment.data_coding,
            short_message=segment.short_message, tlvs=segment.tlvs)

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            segment = await queue.get()
            if self._stopping:
                self._outcomes.append(SubmitOutcome.released(segment.segment_id))
                self._outcomes_ready.set()
                continue
            self._busy += 1
            self._in_hand[segment.segment_id] = segment
            try:
                outcome = await self._send(segment)
            except Exception as exc:
                outcome = self._send_failed(segment, exc)
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
            self._in_hand.pop(segment.segment_id, None)
            self._outcomes.append(outcome)
            self._outcomes_ready.set()
            if queue.qsize() < self.workers:
                self._work.set()

    async def _send(self, segment: SegmentToSend) -> SubmitOutcome:
        sent_at = self.wall_clock()
        part = segment.segment_id
        try:
            pdu = self.build_pdu(segment)
            if self._endings.suspect(part):
                async with self._suspect_lane:  # see RepeatedEndings
                    result = await self.pool.submit(pdu)
            else:
                result = await self.pool.submit(pdu)
        except PduEncodeError as exc:
            # A stored part our encoder refuses (stored before accept checked it, or a rule
            # that changed): the same every time, so it fails now, loudly.
            self._endings.note(part, None)
            return self._fail(segment, "ENCODING", f"the submit_sm does not encode: {exc}")
        except SubmitFailure as failure:
            if failure.kind == "closing":
                return SubmitOutcome.released(part)
            lost = failure.kind == "connection_lost"
            if self._endings.note(part, "link_lost" if lost else None):
                return self._fail(
                    segment, "BIND_DROPPED",
                    f"the SMSC dropped the bind right after this part, "
                    f"{REPEAT_LIMITS['link_lost']} times in a row; it is not sent again",
                    bind=failure.bind, sent_at_wall=sent_at)
            # Lost with the connection or timed out: sent again soon (at-least-once).
            return SubmitOutcome.transient(
                part, self.wall_clock() + min(5.0, retry_delay(segment.attempts)),
                error=f"{failure.kind} on {failure.bind}", bind=failure.bind,
                sent_at_wall=sent_at,
            )
        self._endings.note(part, None)
        status = result.status
        if status == CommandStatus.ESME_ROK:
            message_id = result.message_id or ""
            self.submitted += 1
            return SubmitOutcome.ok(
                segment.segment_id, message_id,
                message_id_key(message_id, self.message_id_format) if message_id else None,
                bind=result.bind, sent_at_wall=sent_at,
            )
        klass = status_table.classify(status)
        retry_limit = klass.retry_limit
        exhausted = retry_limit is not None and segment.attempts + 1 >= retry_limit
        if klass.is_permanent or exhausted:
            # The message fails here, so the operator needs one line to find it by; never the
            # text or the destination (DESIGN.md: no numbers or message content in logs).
            details: dict[str, object] = {
                "tracking_id": segment.tracking_id,
                "part": f"{segment.part_index + 1}/{segment.parts}",
                "status": klass.name,
            }
            if not klass.is_permanent:
                details["attempts"] = segment.attempts + 1
            log.warning(
                "submit refused permanently" if klass.is_permanent
                else "submit refused; retries exhausted",
                extra={"bind": result.bind, "kv": details},
            )
            return SubmitOutcome.permanent(
                segment.segment_id, klass.name, command_status=status,
                error=klass.description, bind=result.bind, sent_at_wall=sent_at,
            )
        # Transient (throttled after the pool's own retries, system error, bind state...).
        return SubmitOutcome.transient(
            segment.segment_id, self.wall_clock() + retry_delay(segment.attempts),
            status_name=klass.name, command_status=status, error=klass.description,
            bind=result.bind, sent_at_wall=sent_at,
        )

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
            return self._fail(segment, "SEND_ERROR", f"sending this part failed "
                              f"{REPEAT_LIMITS['send_error']} times in a row; last: {error}")
        return SubmitOutcome.transient(
            segment.segment_id, self.wall_clock() + retry_delay(segment.attempts), error=error)

    def _fail(
        self, segment: SegmentToSend, status_name: str, reason: str, *, bind: str | None = None,
        sent_at_wall: float | None = None,
    ) -> SubmitOutcome:
        """Fail ``segment``'s message for a reason of smppgw's own, not an SMSC status: one
        warning line (tracking id, never the text or the number) and the reason in its
        history."""
        log.warning("part failed; not sent again", extra={"bind": bind, "kv": {
            "tracking_id": segment.tracking_id,
            "part": f"{segment.part_index + 1}/{segment.parts}", "status": status_name,
            "reason": reason}})
        return SubmitOutcome.permanent(segment.segment_id, status_name, error=reason, bind=bind,
                                       sent_at_wall=sent_at_wall)

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
        if any(outcome.kind in ("transient", "released") for outcome in batch):
            self._work.set()


def has_payload(segment: SegmentToSend) -> bool:
    return any(tag == Tag.MESSAGE_PAYLOAD for tag, _ in segment.tlvs)
