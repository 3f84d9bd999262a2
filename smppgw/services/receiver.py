"""deliver_sm/data_sm from any bind → (flow.inbound) → store (committed) → deliver_sm_resp.

Receipts and MO from every provider queue here; one task drains the queue in batches so many
receipts share one commit (group commit), and each PDU is acknowledged only after its commit.
If the store cannot take it, the answer is a transient error so the SMSC delivers it again.
alert_notification comes the same way and is logged and counted, never answered: it has no
response (SMPP 3.4 §4.12). What each PDU is, what answers it, when an MO group is whole or
given up on, and its text, are decided in flow/inbound.py; this module stores and answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from smppgw.config import ProviderConfig
from smppgw.flow.inbound import (
    MO_REASSEMBLY_TIMEOUT,
    AlertIn,
    GroupKey,
    Handled,
    MoGroups,
    MoIn,
    ReceiptIn,
    Uncorrelatable,
    assemble,
    classify,
    inbound_answer,
    receipt_details,
)
from smppgw.logs import RepeatedLog
from smppgw.metrics import Metrics
from smppgw.pool.slot import Inbound
from smppgw.smpp.pdu import Pdu
from smppgw.smpp.text import Ia5Alphabet, TextPolicy
from smppgw.store import (
    MoMessage,
    MoPart,
    ReceiptRecord,
    Store,
    StoredMoPart,
    StoreError,
    StoreWriteError,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
FAILURE_LOG_INTERVAL = 30.0  # seconds between two summaries of repeated failures


class Receiver:
    """Owns the path from a received deliver_sm to its deliver_sm_resp.

    Every PDU that has a response gets exactly one: a fault while processing one PDU answers
    that PDU ESME_RX_T_APPN (the SMSC delivers it again), is logged and counted
    (``smppgw_worker_failures_total{worker="inbound"}``), and the processor goes on.
    """

    def __init__(
        self,
        store: Store,
        providers: Callable[[], Mapping[str, ProviderConfig]],
        *,
        metrics: Metrics | None = None,
        mo_timeout: float = MO_REASSEMBLY_TIMEOUT,
        log_interval: float = FAILURE_LOG_INTERVAL,
    ) -> None:
        self.store = store
        self.providers = providers
        self.metrics = metrics
        self.mo_timeout = mo_timeout
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._groups = MoGroups(mo_timeout)
        # What the store holds of each incomplete group, for delivering it as it is.
        self._pending_parts: dict[GroupKey, tuple[StoredMoPart, ...]] = {}
        loop = asyncio.get_running_loop()
        self._failures_log = RepeatedLog(loop, log_interval, _summarize_failures)
        self._store_log = RepeatedLog(loop, log_interval, _summarize_store_refusals)
        self.receipts = 0
        self.unmatched = 0
        self.mo = 0

    def __repr__(self) -> str:
        return f"<Receiver queued={self._queue.qsize()} mo_pending={len(self._groups)}>"

    def submit(self, inbound: Inbound) -> None:
        """Called by the pools for every deliver_sm/data_sm, on whatever bind it came."""
        self._queue.put_nowait(inbound)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(min(self.mo_timeout, 5.0)):
                    first = await self._queue.get()
            except TimeoutError:
                await self.expire_mo(loop.time())
                continue
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # Shielded: a shutdown cancel must not leave a stored PDU unacknowledged (the
            # SMSC would redeliver it; harmless, but avoidable) nor an ack before a commit.
            await asyncio.shield(self._process_contained(batch, loop.time()))
            await self.expire_mo(loop.time())

    async def drain(self) -> None:
        """Process whatever is queued (at shutdown, before the binds unbind)."""
        loop = asyncio.get_running_loop()
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._process_contained(batch, loop.time())
        self._failures_log.close()
        self._store_log.close()

    # --- one batch -------------------------------------------------------------------------

    async def _process_contained(self, batch: list[Inbound], now: float) -> None:
        """``_process``, and whatever it left unanswered after a fault of ours answered
        ESME_RX_T_APPN: no PDU that has a response leaves without one."""
        try:
            await self._process(batch, now)
        except Exception as exc:
            self._failed(exc, batch[0])
            for inbound in batch:
                if not inbound.acknowledged:
                    _answer(inbound, Handled.FAILED)

    async def _process(self, batch: list[Inbound], now: float) -> None:
        receipts: list[tuple[Inbound, ReceiptRecord]] = []
        mo: list[tuple[Inbound, MoIn]] = []
        providers = self.providers()
        for inbound in batch:
            try:
                provider = providers.get(inbound.provider)
                what = self._classify(inbound.pdu, provider)
                if isinstance(what, AlertIn):
                    self._note_alert(inbound, what)
                elif isinstance(what, ReceiptIn):
                    receipts.append((inbound, self._receipt_record(inbound, what)))
                elif isinstance(what, MoIn):
                    mo.append((inbound, what))
                else:  # no message id anywhere: nothing can be correlated; refuse for good
                    log.warning("receipt without a message id", extra={"kv": {
                        "bind": inbound.bind, "detail": what.detail}})
                    _answer(inbound, Handled.UNCORRELATABLE)
            except Exception as exc:
                self._failed(exc, inbound)
                _answer(inbound, Handled.FAILED)
        if receipts:
            try:
                results = await self.store.record_receipts([record for _, record in receipts])
            except Exception as exc:
                handled = self._not_stored(exc, receipts[0][0], len(receipts))
                for inbound, _ in receipts:
                    _answer(inbound, handled)
            else:
                for (inbound, record), result in zip(receipts, results, strict=True):
                    _answer(inbound, Handled.STORED)
                    self.receipts += 1
                    if not result.matched:
                        self.unmatched += 1
                    if self.metrics is not None:
                        self.metrics.provider(inbound.provider).receipt(
                            record.stat, matched=result.matched
                        )
        for inbound, message in mo:
            try:
                await self._store_mo(inbound, message, providers.get(inbound.provider), now)
            except Exception as exc:
                _answer(inbound, self._not_stored(exc, inbound, 1))
            else:
                _answer(inbound, Handled.STORED)

    @staticmethod
    def _classify(
        pdu: Pdu, provider: ProviderConfig | None
    ) -> ReceiptIn | Uncorrelatable | MoIn | AlertIn:
        if provider is None:
            return classify(pdu)
        base = provider.receipt_id_base
        return classify(
            pdu, receipt_style=provider.profile.receipt_style,
            id_format=provider.profile.message_id_format if base == "same" else base,
            ia5_as=_ia5(provider))

    def _not_stored(self, exc: Exception, inbound: Inbound, count: int) -> Handled:
        """A store call failed for ``count`` PDUs: NOT_STORED when the store refused (the
        store says why in its own line), FAILED (logged, counted) for anything else."""
        if not isinstance(exc, StoreError):
            self._failed(exc, inbound)
            return Handled.FAILED
        # A disk that refuses writes is said once for the whole store, by the daemon.
        if not isinstance(exc, StoreWriteError) and self._store_log.note():
            log.warning("the store cannot take PDUs from the SMSC; answering ESME_RX_T_APPN so "
                        "it delivers them again", extra={"bind": inbound.bind, "kv": {
                            "pdus": count, "error": str(exc)}})
        return Handled.NOT_STORED

    def _failed(self, exc: Exception, inbound: Inbound) -> None:
        """A fault of ours while processing ``inbound``: logged (the first of a streak with
        its traceback, then one summary per period) and counted."""
        if self.metrics is not None:
            self.metrics.worker_failure("inbound")
        if self._failures_log.note():
            log.error("processing a PDU from the SMSC failed; answered ESME_RX_T_APPN so it "
                      "is delivered again", exc_info=exc, extra={"bind": inbound.bind, "kv": {
                          "command": type(inbound.pdu).__name__}})

    def _note_alert(self, inbound: Inbound, alert: AlertIn) -> None:
        """SMPP 3.4 §4.12: the SMSC says a mobile it could not reach is reachable again (for
        a message sent with set_dpf). smppgw does not park messages for that, so it only
        says so: one line without the number, and a counter. Nothing is answered."""
        log.info("alert_notification received; nothing to answer", extra={
            "bind": inbound.bind,
            "kv": {"ms_availability_status": alert.ms_availability_status}})
        if self.metrics is not None:
            self.metrics.provider(inbound.provider).alert_notification()

    @staticmethod
    def _receipt_record(inbound: Inbound, what: ReceiptIn) -> ReceiptRecord:
        receipt = what.receipt
        return ReceiptRecord(
            provider=inbound.provider,
            message_id=receipt.message_id,
            stat=receipt.stat,
            err=receipt.err,
            outcome=receipt.outcome.value,
            final=receipt.final,
            message_keys=what.message_keys,
            details=receipt_details(receipt),
            bind=inbound.bind,
            account=inbound.account,
        )

    async def _store_mo(
        self, inbound: Inbound, message: MoIn, provider: ProviderConfig | None, now: float
    ) -> None:
        if self.metrics is not None:
            self.metrics.provider(inbound.provider).mo_received()
        if message.concat is None:
            assert message.text is not None
            await self.store.record_mo_message(
                MoMessage(inbound.provider, message.source, message.destination, message.text,
                          message.data_coding, 1, inbound.bind)
            )
            self.mo += 1
            return
        reference, total, seq = message.concat
        result = await self.store.record_mo_part(
            MoPart(inbound.provider, message.source, message.destination, reference, total,
                   seq, message.data_coding, message.body, inbound.bind)
        )
        key: GroupKey = (inbound.provider, message.source, message.destination, reference,
                         total)
        if result.complete:
            await self._deliver_parts(result.parts, _ia5(provider))
            self._groups.done(key)
            self._pending_parts.pop(key, None)
        elif not result.duplicate:
            self._groups.seen(key, now)
            self._pending_parts[key] = result.parts

    async def deliver_recovered(self, groups: tuple[tuple[StoredMoPart, ...], ...]) -> None:
        """Complete MO groups found at start (their last part came just before a crash)."""
        providers = self.providers()
        for parts in groups:
            await self._deliver_parts(parts, _ia5(providers.get(parts[0].provider)))

    def resume_incomplete(
        self, groups: tuple[tuple[StoredMoPart, ...], ...], now: float, now_wall: float
    ) -> None:
        """Incomplete MO groups found at start wait for their other parts and time out like
        groups seen while running, counted from their first part's arrival (``now`` is loop
        time, ``now_wall`` the wall clock the store's times are in): one whose first part
        came longer ago than the timeout is delivered as it is at the next expiry pass."""
        for parts in groups:
            first = parts[0]
            key: GroupKey = (first.provider, first.source, first.destination,
                             first.reference, first.total)
            age = max(0.0, now_wall - min(p.received_wall for p in parts))
            self._groups.seen(key, now - age)
            self._pending_parts[key] = parts

    async def _deliver_parts(self, parts: tuple[StoredMoPart, ...], ia5: Ia5Alphabet) -> None:
        first = min(parts, key=lambda p: p.seq)
        await self.store.record_mo_message(
            MoMessage(first.provider, first.source, first.destination, assemble(parts, ia5),
                      first.data_coding, len(parts), None),
            [p.part_id for p in sorted(parts, key=lambda p: p.seq)],
        )
        self.mo += 1

    async def expire_mo(self, now: float) -> None:
        """Deliver groups incomplete for longer than the timeout as they are. A group the
        store cannot take now stays pending and is tried again at the next call."""
        providers = self.providers()
        for key in self._groups.expired(now):
            parts = self._pending_parts[key]
            try:
                await self._deliver_parts(parts, _ia5(providers.get(key[0])))
            except StoreError as exc:
                if not isinstance(exc, StoreWriteError) and self._store_log.note():
                    log.warning("MO parts incomplete after timeout could not be stored; "
                                "trying again", extra={"kv": {"provider": key[0],
                                                               "error": str(exc)}})
                continue
            except Exception as exc:
                if self.metrics is not None:
                    self.metrics.worker_failure("inbound")
                if self._failures_log.note():
                    log.error("delivering incomplete MO parts failed; trying again",
                              exc_info=exc, extra={"kv": {"provider": key[0]}})
                continue
            self._groups.done(key)
            del self._pending_parts[key]
            log.warning("MO parts incomplete after timeout; delivered what arrived",
                        extra={"kv": {"provider": key[0], "parts": len(parts),
                                      "total": key[4]}})


def _ia5(provider: ProviderConfig | None) -> Ia5Alphabet:
    """How this provider's IA5 (data_coding 1) is read: GSM 7-bit unless its profile says."""
    return TextPolicy.from_profile(provider.profile).ia5_as if provider else "gsm7"


def _answer(inbound: Inbound, handled: Handled) -> None:
    """Answer ``inbound`` as ``inbound_answer`` says, or not at all when it has no response."""
    status = inbound_answer(inbound.pdu, handled)
    if status is not None:
        inbound.acknowledge(status)


def _summarize_failures(failures: int, period: float) -> None:
    log.error("processing PDUs from the SMSC kept failing; each answered ESME_RX_T_APPN",
              extra={"kv": {"failures": failures, "period": f"{period:.0f}s"}})


def _summarize_store_refusals(refusals: int, period: float) -> None:
    log.warning("the store still cannot take PDUs from the SMSC",
                extra={"kv": {"refusals": refusals, "period": f"{period:.0f}s"}})
