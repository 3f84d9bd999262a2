"""deliver_sm/data_sm from any bind → parse → store (committed) → deliver_sm_resp.

Receipts and MO from every provider queue here; one task drains the queue in batches so many
receipts share one commit (group commit), and each PDU is acknowledged only after its commit.
If the store cannot take it, the answer is a transient error so the SMSC delivers it again.
alert_notification comes the same way and is logged and counted, never answered: it has no
response (SMPP 3.4 §4.12). What status answers which PDU is ``inbound_answer``, a table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from smppgw.config import ProviderConfig
from smppgw.logs import RepeatedLog
from smppgw.metrics import Metrics
from smppgw.pool import Inbound
from smppgw.smpp.constants import CommandStatus, EsmClass, Tag
from smppgw.smpp.pdu import RESPONSE_CLASS, AlertNotification, DataSm, DeliverSm, Pdu
from smppgw.smpp.receipt import (
    Receipt,
    ReceiptError,
    is_receipt,
    message_id_variants,
    parse_receipt,
)
from smppgw.smpp.segment import concat_info, split_udh
from smppgw.smpp.text import TextPolicy, decode_text
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

MO_REASSEMBLY_TIMEOUT = 300.0  # seconds before incomplete MO parts are delivered as they are
MAX_BATCH = 500
FAILURE_LOG_INTERVAL = 30.0  # seconds between two summaries of repeated failures


class Handled(Enum):
    """What became of one PDU from the SMSC; ``inbound_answer`` turns it into a status."""

    STORED = "stored"  # committed (a receipt, parked or matched; an MO or one of its parts)
    UNCORRELATABLE = "uncorrelatable"  # a receipt with no message id anywhere
    NOT_STORED = "not_stored"  # the store could not commit it (disk full, I/O error)
    FAILED = "failed"  # processing it raised: a fault of ours, not of the PDU


# SMPP 3.4 §5.1.3: ESME_RX_T_APPN asks the SMSC to deliver again later, ESME_RX_P_APPN never.
_STATUS_OF: Mapping[Handled, int] = {
    Handled.STORED: CommandStatus.ESME_ROK,
    Handled.UNCORRELATABLE: CommandStatus.ESME_RX_P_APPN,
    Handled.NOT_STORED: CommandStatus.ESME_RX_T_APPN,
    Handled.FAILED: CommandStatus.ESME_RX_T_APPN,
}


def inbound_answer(pdu: Pdu, handled: Handled) -> int | None:
    """The command_status to answer ``pdu`` with once it was ``handled``, or None when the PDU
    has no response at all (alert_notification, SMPP 3.4 §4.12): then nothing is sent, not
    even a generic_nack. Pure: the inbound processor's one decision, tested as a table."""
    if type(pdu) not in RESPONSE_CLASS:
        return None
    return _STATUS_OF[handled]


# SMPP 3.4 §5.3.2.30 ms_availability_status.
_AVAILABILITY = {0: "available", 1: "denied", 2: "unavailable"}


def receipt_details(receipt: Receipt) -> dict[str, object]:
    """What the store keeps of a receipt, and so what the API and webhooks show: everything
    but ``text``, the first characters of the message the SMSC echoes back (often a one-time
    code), which GET /v1/messages deliberately never shows."""
    details = receipt.as_dict()
    details.pop("text", None)
    return details


@dataclass(slots=True)
class _PendingGroup:
    first_seen: float
    parts: tuple[StoredMoPart, ...]


class InboundProcessor:
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
        self._pending_mo: dict[tuple[str, str, str, int, int], _PendingGroup] = {}
        loop = asyncio.get_running_loop()
        self._failures_log = RepeatedLog(loop, log_interval, _summarize_failures)
        self._store_log = RepeatedLog(loop, log_interval, _summarize_store_refusals)
        self.receipts = 0
        self.unmatched = 0
        self.mo = 0

    def __repr__(self) -> str:
        return f"<InboundProcessor queued={self._queue.qsize()} mo_pending={len(self._pending_mo)}>"

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
        others: list[Inbound] = []
        providers = self.providers()
        for inbound in batch:
            pdu = inbound.pdu
            try:
                if isinstance(pdu, AlertNotification):
                    self._note_alert(inbound, pdu)
                    continue
                if not isinstance(pdu, DeliverSm | DataSm):  # the session hands up no other
                    raise TypeError(f"{type(pdu).__name__} handed up as a delivery")
                provider = providers.get(inbound.provider)
                if is_receipt(pdu.esm_class):
                    record = self._receipt_record(inbound, pdu, provider)
                    if record is None:
                        # No message id anywhere: nothing can be correlated; refuse for good.
                        _answer(inbound, Handled.UNCORRELATABLE)
                        continue
                    receipts.append((inbound, record))
                else:
                    others.append(inbound)
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
        for inbound in others:
            try:
                await self._store_mo(inbound, providers.get(inbound.provider), now)
            except Exception as exc:
                _answer(inbound, self._not_stored(exc, inbound, 1))
            else:
                _answer(inbound, Handled.STORED)

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

    def _note_alert(self, inbound: Inbound, pdu: AlertNotification) -> None:
        """SMPP 3.4 §4.12: the SMSC says a mobile it could not reach is reachable again (for
        a message sent with set_dpf). smppgw does not park messages for that, so it only
        says so: one line without the number, and a counter. Nothing is answered."""
        availability = pdu.tlv(Tag.MS_AVAILABILITY_STATUS)
        value = int.from_bytes(availability.raw, "big") if availability is not None else 0
        log.info("alert_notification received; nothing to answer", extra={
            "bind": inbound.bind,
            "kv": {"ms_availability_status": _AVAILABILITY.get(value, str(value))}})
        if self.metrics is not None:
            self.metrics.provider(inbound.provider).alert_notification()

    @staticmethod
    def _receipt_record(
        inbound: Inbound, pdu: DeliverSm | DataSm, provider: ProviderConfig | None
    ) -> ReceiptRecord | None:
        style = provider.profile.receipt_style if provider else "standard"
        try:
            receipt = parse_receipt(pdu, style)
        except ReceiptError:
            log.warning("receipt without a message id", extra={"kv": {"bind": inbound.bind}})
            return None
        id_format = "hex"
        if provider is not None:
            base = provider.receipt_id_base
            id_format = provider.profile.message_id_format if base == "same" else base
        return ReceiptRecord(
            provider=inbound.provider,
            message_id=receipt.message_id,
            stat=receipt.stat,
            err=receipt.err,
            outcome=receipt.outcome.value,
            final=receipt.final,
            message_keys=message_id_variants(receipt.message_id, id_format),  # type: ignore[arg-type]
            details=receipt_details(receipt),
            bind=inbound.bind,
        )

    async def _store_mo(
        self, inbound: Inbound, provider: ProviderConfig | None, now: float
    ) -> None:
        pdu = inbound.pdu
        assert isinstance(pdu, DeliverSm | DataSm)
        ia5 = TextPolicy.from_profile(provider.profile).ia5_as if provider else "gsm7"
        payload_tlv = pdu.tlv(Tag.MESSAGE_PAYLOAD)
        body = payload_tlv.raw if payload_tlv is not None else getattr(pdu, "short_message", b"")
        reference = total = seq = None
        if pdu.esm_class & EsmClass.UDHI:
            elements, body = split_udh(body)
            info = concat_info(elements)
            if info is not None:
                reference, total, seq = info.reference, info.total, info.seq
        else:
            sar_ref, sar_total, sar_seq = (
                pdu.tlv(Tag.SAR_MSG_REF_NUM), pdu.tlv(Tag.SAR_TOTAL_SEGMENTS),
                pdu.tlv(Tag.SAR_SEGMENT_SEQNUM),
            )
            if sar_ref is not None and sar_total is not None and sar_seq is not None:
                reference, total, seq = (int(sar_ref.value), int(sar_total.value),  # type: ignore[arg-type]
                                         int(sar_seq.value))  # type: ignore[arg-type]
        if self.metrics is not None:
            self.metrics.provider(inbound.provider).mo_received()
        if reference is None or total is None or seq is None or total <= 1:
            text = decode_text(body, pdu.data_coding, ia5_as=ia5)
            await self.store.record_mo_message(
                MoMessage(inbound.provider, pdu.source_addr, pdu.destination_addr, text,
                          pdu.data_coding, 1, inbound.bind)
            )
            self.mo += 1
            return
        result = await self.store.record_mo_part(
            MoPart(inbound.provider, pdu.source_addr, pdu.destination_addr, reference, total,
                   seq, pdu.data_coding, body, inbound.bind)
        )
        key = (inbound.provider, pdu.source_addr, pdu.destination_addr, reference, total)
        if result.complete:
            self._pending_mo.pop(key, None)
            await self._deliver_parts(result.parts, ia5)
        elif not result.duplicate:
            group = self._pending_mo.get(key)
            first_seen = group.first_seen if group else now
            self._pending_mo[key] = _PendingGroup(first_seen, result.parts)

    async def deliver_recovered(self, groups: tuple[tuple[StoredMoPart, ...], ...]) -> None:
        """Complete MO groups found at start (their last part came just before a crash)."""
        providers = self.providers()
        for parts in groups:
            provider = providers.get(parts[0].provider)
            ia5 = TextPolicy.from_profile(provider.profile).ia5_as if provider else "gsm7"
            await self._deliver_parts(parts, ia5)

    async def _deliver_parts(self, parts: tuple[StoredMoPart, ...], ia5: str) -> None:
        ordered = sorted(parts, key=lambda p: p.seq)
        first = ordered[0]
        # Decode per part: a UCS-2 part boundary never splits a character (segment.py's rule),
        # and a missing part then costs only its own text.
        text = "".join(
            decode_text(p.payload, p.data_coding, ia5_as=ia5) for p in ordered  # type: ignore[arg-type]
        )
        await self.store.record_mo_message(
            MoMessage(first.provider, first.source, first.destination, text, first.data_coding,
                      len(ordered), None),
            [p.part_id for p in ordered],
        )
        self.mo += 1

    async def expire_mo(self, now: float) -> None:
        """Deliver groups incomplete for longer than the timeout as they are. A group the
        store cannot take now stays pending and is tried again at the next call."""
        expired = [key for key, group in self._pending_mo.items()
                   if now - group.first_seen >= self.mo_timeout]
        providers = self.providers()
        for key in expired:
            group = self._pending_mo[key]
            provider = providers.get(key[0])
            ia5 = TextPolicy.from_profile(provider.profile).ia5_as if provider else "gsm7"
            try:
                await self._deliver_parts(group.parts, ia5)
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
            del self._pending_mo[key]
            log.warning("MO parts incomplete after timeout; delivered what arrived",
                        extra={"kv": {"provider": key[0], "parts": len(group.parts),
                                      "total": key[4]}})


def _answer(inbound: Inbound, handled: Handled) -> None:
    """Answer ``inbound`` as ``inbound_answer`` says, or not at all when it has no response."""
    status = inbound_answer(inbound.pdu, handled)
    if status is not None:
        inbound.acknowledge(status)


def _summarize_failures(failures: int, _longest: float, period: float) -> None:
    log.error("processing PDUs from the SMSC kept failing; each answered ESME_RX_T_APPN",
              extra={"kv": {"failures": failures, "period": f"{period:.0f}s"}})


def _summarize_store_refusals(refusals: int, _longest: float, period: float) -> None:
    log.warning("the store still cannot take PDUs from the SMSC",
                extra={"kv": {"refusals": refusals, "period": f"{period:.0f}s"}})
