"""The store's interface: the operations the message flow needs, whatever keeps the data.

Two backends implement it: ``SqliteStore`` (the embedded default: one file, one writer thread)
and ``PostgresStore`` (asyncpg; one database that several nodes may later share). The domain
rules both follow live in ``rules.py``; here are the contracts callers rely on, and the few
pieces of asyncio plumbing both backends share (waiting for events, grouping MO parts).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from types import TracebackType

from smppgw.store.models import (
    AcceptResult,
    CancelResult,
    Event,
    MessageMove,
    MessagePage,
    MessageQuery,
    MessageState,
    MessageView,
    MoMessage,
    MoPart,
    MoPartResult,
    MoRecord,
    NewMessage,
    ProviderPause,
    PurgeReport,
    QueuedMessage,
    QueueStats,
    ReceiptRecord,
    ReceiptResult,
    RecoveryReport,
    SegmentToSend,
    StoreCounts,
    StoredMoPart,
    StoreWriteError,
    SubmitOutcome,
    SubmitRecorded,
    UnmatchedReceipts,
    WriteFailure,
)

__all__ = [
    "CursorWatch",
    "Store",
    "WriteHealth",
    "is_complete",
    "mo_groups",
    "recovery_report",
]

# Theory of operation (both backends)
# -----------------------------------
# Durability. "Accepted" means committed and on disk (DESIGN.md "Delivery guarantees"): SQLite
# with synchronous=FULL, PostgreSQL with synchronous_commit=on. Only a group made of claims
# commits without waiting for the disk: a lost claim is harmless (see recovery).
#
# Group commit. Writes queue for one writer (a thread for SQLite, a task for PostgreSQL) that
# commits whatever is queued in one transaction, commands of one kind merged into whole-batch
# statements; under load one commit carries hundreds of messages, alone a write commits at once.
#
# Dispatch. The database is the only queue: ``claim_segments`` marks the oldest due parts of a
# provider 'sending' and hands them over; the dispatcher reports each with
# ``apply_submit_results``. Nothing is lost between an accept and a claim, retries are just
# ``next_attempt``, and a second claimer (a cluster node, later) takes other parts.
#
# Message state. Derived from the parts by ``rules.derive_message_state``, only forward; once
# final it never changes, and later results or receipts are recorded on the part and in the
# event log.
#
# Recovery (at-least-once). ``recover()`` at start queues again every part left 'sending': it
# was claimed by the previous run and either never sent or sent without its answer recorded, so
# a duplicate can only come from a submit whose response was lost.
#
# Operator commands. ``cancel_message`` takes a message's waiting parts out of the queue in
# the writer, where claims also run, so a part is either claimed or cancelled (then no claim
# ever sees it): never both. A claimed part its dispatcher withdrew unwritten counts as
# waiting (``not_sent``); any other claimed part is "in flight": its answer is recorded, and
# if the SMSC did not take it, it is not queued again. A retry is an accept with
# ``retry_of``. Pauses are rows, so they outlive a reload and a restart.
#
# Events. Cursors grow in commit order: a reader that has seen cursor N has seen every event
# below it, so resuming after the last cursor seen misses nothing and repeats nothing.
#
# Outage. A store that cannot write for a cause outside the command (a full disk, an I/O error,
# a database out of reach) refuses the write with StoreWriteError naming the cause, commits
# nothing of it, and goes on. ``write_failure`` then says what, since when and how many writes
# were refused, until a write that changed rows commits again, which the callers' own retries
# or ``probe_write`` bring about once the cause is gone; ``on_write_health`` (given at open)
# hears both moves, on the loop. Only a writer that stopped is the end (``wait_stopped``).

log = logging.getLogger("smppgw.store")


class Store(abc.ABC):
    """The gateway's durable queue, receipt correlation, MO storage and event log.

    Every write returns once its data is committed (durably, except claims: a lost claim only
    means the part is queued again). Writes from many callers share commits (group commit);
    a caller cancelled while waiting loses only its wait, the write still commits. A write the
    store cannot commit raises StoreError and leaves nothing of that write behind.
    """

    # --- life cycle ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit everything queued, stop, release what the store holds. Idempotent."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Return once every write queued before this call is committed."""

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- observation -----------------------------------------------------------------------------

    #: "sqlite" or "postgresql", as ``[store]`` and ``smppgw status`` name it.
    backend: str = ""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data is: the database file, or the URL (never with a password)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once closed (or broken for good): no more commands are taken."""

    @property
    @abc.abstractmethod
    def write_failure(self) -> WriteFailure | None:
        """Why the store refuses writes now (full disk, I/O error, database away), or None
        while it takes them (see the theory of operation)."""

    @abc.abstractmethod
    async def wait_writable(self) -> None:
        """Return at once while the store writes, else once a write succeeded again."""

    @abc.abstractmethod
    async def probe_write(self) -> None:
        """A write that leaves nothing behind, so that a store whose writes fail notices by
        itself that the cause is gone. Raises StoreWriteError while it is not."""

    @abc.abstractmethod
    async def wait_stopped(self) -> BaseException | None:
        """Return once the writer has ended, by ``close()`` or by a fault: the fault, or None.
        For the daemon, which cannot work without its store."""

    @property
    @abc.abstractmethod
    def last_cursor(self) -> int:
        """Cursor of the newest committed event this store knows of (0 when none yet)."""

    @property
    @abc.abstractmethod
    def commit_count(self) -> int:
        """Transactions committed since open: far fewer than writes under load."""

    @property
    @abc.abstractmethod
    def command_count(self) -> int:
        """Write commands completed (committed or failed) since open."""

    @property
    @abc.abstractmethod
    def pending_writes(self) -> int:
        """Write commands queued and not yet taken by the writer."""

    # --- accept ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def accept_messages(self, messages: Sequence[NewMessage]) -> list[AcceptResult]:
        """Store new messages, queued; results in input order.

        A known client id answers its first answer (``duplicate``) and stores nothing. Each
        stored message gets its segments queued and a 'state' event (queued). Returns once
        committed durably: only then may the API answer ``accepted``.
        """

    # --- dispatch --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_segments(
        self, provider: str, limit: int, now_wall: float | None = None
    ) -> list[SegmentToSend]:
        """Mark up to ``limit`` due queued parts of ``provider`` 'sending' and return them,
        oldest due first. Parts of messages past their validity are left for
        ``expire_messages``. Two claimers never get the same part.

        Parts in order: a part is claimed only together with, or after, every earlier part of
        its message that still waits (queued, even if due later, or sending), so a later part
        can never be sent before an earlier one; the caller sends a message's parts of one
        claim one after another, by part index."""

    @abc.abstractmethod
    async def apply_submit_results(
        self, outcomes: Sequence[SubmitOutcome]
    ) -> list[SubmitRecorded | None]:
        """Apply submit_sm_resp outcomes (see SubmitOutcome); per outcome the message's state
        after it and whether it gave the message its submit answer; None for an unknown
        segment id (logged, skipped).

        ``ok`` marks the part submitted (the message 'submitted' once all parts are, with a
        'state' event) and applies any receipt parked under its message id key. ``transient``
        queues the part again at ``retry_at_wall`` with a 'retry' note. ``permanent`` fails
        the part, cancels the message's parts not yet sent, and moves the message to 'failed'
        with the status name in the event. ``released`` queues it again, no attempt counted.
        """

    async def record_submit_results(
        self, outcomes: Sequence[SubmitOutcome]
    ) -> list[MessageState | None]:
        """apply_submit_results, reporting only each message's state."""
        recorded = await self.apply_submit_results(outcomes)
        return [r.state if r is not None else None for r in recorded]

    # --- inbound ---------------------------------------------------------------------------------

    @abc.abstractmethod
    async def record_receipts(self, receipts: Sequence[ReceiptRecord]) -> list[ReceiptResult]:
        """Correlate receipts by (account, message id key): a receipt finds a part submitted
        on any bind of its SMSC account, whichever provider table sent it or received the
        receipt (ReceiptRecord.account; the provider's name when None).

        A matched receipt updates its part (only forward: accepted < final), appends a
        'receipt' event and, when the message state changes, a 'state' event. An unmatched one
        is parked, never dropped, and applied when its submit result is recorded. Returns once
        committed durably: then, and only then, answer deliver_sm_resp.
        """

    @abc.abstractmethod
    async def record_mo_part(self, part: MoPart) -> MoPartResult:
        """Store one part of a concatenated MO so it survives a crash before reassembly;
        acknowledge the deliver_sm after this returns. When ``complete``, reassemble ``parts``
        and call ``record_mo_message`` with their ids."""

    @abc.abstractmethod
    async def record_mo_message(
        self, message: MoMessage, consumed_part_ids: Sequence[int] = ()
    ) -> MoRecord:
        """Store a complete MO, delete the parts it was built from, append its 'mo' event;
        all in one transaction, so a part is never both pending and delivered."""

    # --- housekeeping ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def expire_messages(self, now_wall: float | None = None, limit: int = 10_000) -> int:
        """Messages still 'queued' past their validity, with no part in flight, become
        'expired' (their waiting parts too) with a 'state' event. Returns how many; call
        again at once while it returns ``limit``."""

    @abc.abstractmethod
    async def purge(self, older_than_wall: float, limit: int = 10_000) -> PurgeReport:
        """Retention: delete final messages (with parts and notes), events, parked receipts
        and MO messages older than ``older_than_wall``, at most ``limit`` of each per call.

        Queued and in-flight messages and incomplete MO parts are kept whatever their age. A
        purged client id is forgotten (the same id is then a new message), and a consumer
        resuming from a purged cursor gets the oldest events still kept. Call again while any
        count equals ``limit``.
        """

    @abc.abstractmethod
    async def recover(self) -> RecoveryReport:
        """Run once after open, before dispatching: parts left 'sending' by the previous run
        are queued again (at-least-once). Reports what it found."""

    @abc.abstractmethod
    async def adopt_accounts(self, accounts: Mapping[str, str]) -> int:
        """Parts submitted and receipts parked before receipts were correlated per SMSC
        account carry their provider's name as their account: give them their provider's
        account key (``accounts``: provider name → ProviderConfig.account), so the receipts
        that arrive after an upgrade still find them. Idempotent; run at start, after
        ``recover``. Returns how many rows changed."""

    @abc.abstractmethod
    async def requeue_sending(self, provider: str, reason: str) -> int:
        """Queue again the parts of ``provider`` left 'sending' (a provider whose dispatcher
        was stopped by a reload); returns how many."""

    # --- failover --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def queued_messages(self, provider: str, limit: int) -> list[QueuedMessage]:
        """Up to ``limit`` messages of ``provider`` none of whose parts has left (all queued,
        none claimed), oldest first: what failover may move to another provider."""

    @abc.abstractmethod
    async def move_messages(self, moves: Sequence[MessageMove]) -> int:
        """Move each message to its new provider, encoded anew: its parts replaced (queued,
        due now, as old as the message), its provider, sender, encoding and TLVs set, and a
        'failover' note in its history. A message no longer all queued with ``from_provider``
        (claimed, sent, moved, expired meanwhile) is left as it is. Returns how many moved."""

    @abc.abstractmethod
    async def set_webhook_position(self, name: str, cursor: int) -> None:
        """Remember the last event cursor webhook ``name`` acknowledged (never moves back)."""

    # --- operator commands -----------------------------------------------------------------------

    @abc.abstractmethod
    async def cancel_message(
        self, tracking_id: str, reason: str, not_sent: Collection[int] = (),
    ) -> CancelResult | None:
        """Cancel a message: its parts still waiting are never sent, it ends 'cancelled' with
        a 'state' event (``reason`` in it and in its last error). ``not_sent``: segment ids
        of claimed parts their dispatcher withdrew unwritten, which count as waiting. Other
        parts in flight keep whatever their answers say, but one the SMSC does not take is
        not sent again. A message already final, or whose every part the SMSC took, is left
        as it is (see CancelResult). None for an unknown tracking id."""

    @abc.abstractmethod
    async def record_cancel_sm(
        self, tracking_id: str, answers: Sequence[tuple[int, str, bool]], reason: str,
    ) -> MessageState | None:
        """Record the SMSC's answers to the cancel_sm of a message's sent parts: (part index,
        status name, cancelled), each with a 'cancel_sm' note. A part the SMSC cancelled
        becomes 'cancelled'; a message not cancelled yet (its parts had all been sent) ends
        'cancelled' once one was, with a 'state' event (``reason`` and the parts). The
        message's state after; None for an unknown tracking id."""

    @abc.abstractmethod
    async def set_provider_paused(self, provider: str, paused: bool) -> ProviderPause | None:
        """Pause (or resume) ``provider``, durably. The pause as stored (a second pause keeps
        the first one's time); None once resumed."""

    @abc.abstractmethod
    async def provider_pauses(self) -> dict[str, ProviderPause]:
        """The providers paused now, by name."""

    # --- events ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def events_after(self, cursor: int, limit: int = 1000) -> list[Event]:
        """Events with a cursor greater than ``cursor``, in commit order, at most ``limit``.
        Cursors only grow and an event is readable only once every lower cursor is, so
        resuming from the last cursor seen misses nothing."""

    @abc.abstractmethod
    async def wait_for_events(self, after: int, timeout: float) -> bool:
        """Wait until an event newer than ``after`` is committed, at most ``timeout`` seconds.
        True when there is one (possibly at once), False on timeout or close."""

    @abc.abstractmethod
    async def get_webhook_position(self, name: str) -> int:
        """The last cursor webhook ``name`` acknowledged; 0 when it never did."""

    # --- views -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_message(self, tracking_id: str) -> MessageView | None:
        """A message with its parts and history (events and notes, oldest first)."""

    @abc.abstractmethod
    async def find_messages(self, client_id: str) -> list[MessageView]:
        """The messages stored under an application's own id (at most one: the id is an
        idempotency key); empty when unknown or purged."""

    @abc.abstractmethod
    async def list_messages(self, query: MessageQuery) -> MessagePage:
        """Messages newest first, filtered by ``query``, one page of them (see search.py: each
        call walks a bounded stretch of one index, so a page may be short while ``next`` is
        set)."""

    @abc.abstractmethod
    async def get_tracking_id(self, client_id: str) -> str | None:
        """The tracking id stored under an application's client id."""

    @abc.abstractmethod
    async def queue_stats(self, now_wall: float | None = None) -> dict[str, QueueStats]:
        """Per provider: parts queued and sending and the age of the oldest of each, for the
        queue metrics and ``smppgw status``."""

    @abc.abstractmethod
    async def counts(self) -> StoreCounts:
        """Messages and parts by state and the other table sizes (status and metrics, not per
        request)."""

    @abc.abstractmethod
    async def unmatched_receipt_count(self) -> int:
        """Receipts parked without a matching part."""

    @abc.abstractmethod
    async def unmatched_receipts(self, stale_before_wall: float) -> dict[str, UnmatchedReceipts]:
        """Per provider whose binds brought them: receipts parked without a matching part,
        and how many of them since before ``stale_before_wall`` (for the metrics, the
        warning and `smppgw status`). Providers with none are absent."""


class CursorWatch:
    """The newest committed cursor and the waiters for a newer one, on the event loop.

    A backend calls ``advance`` after each commit it learns of (its own, or a hint that another
    writer committed); ``wait`` returns when the cursor passes ``after``, on timeout, or when
    the watch is closed.
    """

    def __init__(self) -> None:
        self.last_cursor = 0
        self.closed = False
        self._generation = asyncio.Event()
        self._waiters = 0

    def advance(self, cursor: int) -> None:
        if cursor > self.last_cursor:
            self.last_cursor = cursor
            self.wake()

    def close(self) -> None:
        self.closed = True
        self.wake()

    def wake(self) -> None:
        generation = self._generation
        self._generation = asyncio.Event()
        generation.set()

    @property
    def waiting(self) -> bool:
        """Someone waits for the next event (the backend may then poll for other writers)."""
        return self._waiters > 0

    async def wait(self, after: int, timeout: float) -> bool:
        if self.last_cursor > after:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        self._waiters += 1
        try:
            while self.last_cursor <= after and not self.closed:
                generation = self._generation
                try:
                    async with asyncio.timeout_at(deadline):
                        await generation.wait()
                except TimeoutError:
                    break
        finally:
            self._waiters -= 1
        return self.last_cursor > after


class WriteHealth:
    """A store's write health, on the event loop: the failure of the moment (None while writes
    succeed), an event to wait for the way back, and the listener given at open."""

    def __init__(
        self, clock: Callable[[], float],
        listener: Callable[[WriteFailure | None], None] | None = None,
    ) -> None:
        self.failure: WriteFailure | None = None
        self._clock = clock
        self._listener = listener
        self._writable = asyncio.Event()
        self._writable.set()

    def refused(self, error: StoreWriteError) -> None:
        """A write was refused for ``error``'s cause."""
        failure = self.failure
        if failure is None:
            failure = WriteFailure(error.reason, error.detail, self._clock())
            self._writable.clear()
        else:
            failure = replace(failure, reason=error.reason, detail=error.detail,
                              refused=failure.refused + 1)
        self.failure = failure
        self._report(failure)

    def succeeded(self) -> None:
        """A write that changed rows committed: the outage, if any, is over."""
        if self.failure is not None:
            self.failure = None
            self._writable.set()
            self._report(None)

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def _report(self, failure: WriteFailure | None) -> None:
        if self._listener is not None:
            try:
                self._listener(failure)
            except Exception:
                log.exception("store write health listener failed")


def mo_groups(
    parts: Sequence[StoredMoPart],
) -> tuple[tuple[tuple[StoredMoPart, ...], ...], tuple[tuple[StoredMoPart, ...], ...]]:
    """The groups (same provider, addresses, reference and total) of which every part is
    stored, and the others; ``parts`` ordered by group then seq."""
    groups: dict[tuple[str, str, str, int, int], list[StoredMoPart]] = {}
    for p in parts:
        groups.setdefault((p.provider, p.source, p.destination, p.reference, p.total),
                          []).append(p)
    complete = tuple(tuple(g) for g in groups.values() if is_complete(g))
    incomplete = tuple(tuple(g) for g in groups.values() if not is_complete(g))
    return complete, incomplete


def is_complete(parts: Sequence[StoredMoPart]) -> bool:
    """Every seq 1..total of the group is there."""
    if not parts:
        return False
    return {p.seq for p in parts} >= set(range(1, parts[0].total + 1))


def recovery_report(
    requeued: int, unmatched: int, queued: int, mo_parts: Sequence[StoredMoPart],
) -> RecoveryReport:
    """What recover() found, logged for the operator (both backends say it the same way)."""
    complete, incomplete = mo_groups(mo_parts)
    if requeued:
        log.warning("recovery: %d part(s) were sending at shutdown and are queued again",
                    requeued)
    log.info("recovery: queued=%d unmatched_receipts=%d complete_mo_groups=%d "
             "incomplete_mo_groups=%d", queued, unmatched, len(complete), len(incomplete))
    return RecoveryReport(requeued, unmatched, queued, complete, incomplete)
