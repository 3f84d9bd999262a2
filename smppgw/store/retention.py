"""Retention: the background task that deletes what is older than ``keep_days``.

Final messages (with their parts and notes), events, parked receipts and MO messages whose last
change is older than the retention are deleted in small batches, one store write each, so the
work shares group commits with the hot path instead of holding the writer; between batches the
task yields, and between rounds it sleeps. SQLite reuses the freed pages, so under steady
traffic the file stops growing; PostgreSQL's autovacuum reclaims the dead rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smppgw.store.interface import Store
from smppgw.store.models import PurgeReport, StoreError

__all__ = ["BATCH", "INTERVAL", "Retention"]

log = logging.getLogger(__name__)

BATCH: Final = 500        # rows of each kind per purge call
INTERVAL: Final = 60.0    # seconds between rounds (less when the retention itself is shorter)


@dataclass
class Retention:
    """Deletes from ``store`` what is older than ``keep_seconds`` on ``clock`` (wall seconds).

    ``run()`` loops until cancelled; ``run_once()`` does one round (every batch due now) and
    returns the rows it deleted, per kind.
    """

    store: Store
    keep_seconds: float
    clock: Callable[[], float] = time.time
    batch: int = BATCH
    interval: float = INTERVAL
    on_purged: Callable[[PurgeReport], None] | None = None

    async def run_once(self) -> PurgeReport:
        cutoff = self.clock() - self.keep_seconds
        total = PurgeReport(0, 0, 0, 0)
        while True:
            report = await self.store.purge(cutoff, self.batch)
            total = PurgeReport(total.messages + report.messages, total.events + report.events,
                                total.parked_receipts + report.parked_receipts,
                                total.mo_messages + report.mo_messages)
            if self.on_purged is not None and report.total:
                self.on_purged(report)
            if max(report.messages, report.events, report.parked_receipts,
                   report.mo_messages) < self.batch:
                return total
            await asyncio.sleep(0)   # let the hot path's writes queue between batches

    async def run(self) -> None:
        interval = min(self.interval, max(1.0, self.keep_seconds / 10))
        while True:
            try:
                report = await self.run_once()
            except StoreError as exc:
                log.warning("retention: purge failed; will try again",
                            extra={"kv": {"error": str(exc)}})
            else:
                if report.total:
                    log.debug("retention: deleted old records", extra={"kv": {
                        "messages": report.messages, "events": report.events,
                        "parked_receipts": report.parked_receipts,
                        "mo_messages": report.mo_messages}})
            await asyncio.sleep(interval)
