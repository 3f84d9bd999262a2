"""Failover of the queue: the queued messages of a provider failover has taken over from move
to its failover provider, encoded anew for it, with the move in their history.

New traffic is already routed there by the submit service (flow.routing); this moves what
waited. Which provider moves where is flow.routing.Router.failover_for over the providers'
health (flow.failover); what each message becomes is flow.failover.resubmission and
flow.submission. This module only reads, calls those, and writes.
"""

from __future__ import annotations

import logging
from typing import Final

from smppgw.config import ProviderConfig
from smppgw.flow.failover import resubmission
from smppgw.flow.submission import FieldError
from smppgw.services.submission import SubmitService, new_message
from smppgw.store import MessageMove, Store

__all__ = ["MOVE_BATCH", "move_queued"]

log = logging.getLogger(__name__)

#: Messages moved per call; the next call (housekeeping, every few seconds) takes the rest.
MOVE_BATCH: Final = 500


async def move_queued(
    store: Store, service: SubmitService, old: ProviderConfig, new: str, reason: str,
    wall_now: float,
) -> int:
    """Move up to MOVE_BATCH of ``old``'s messages none of whose parts left to ``new``;
    returns how many moved. A message the new provider cannot take (its text or TLVs break a
    rule of that profile) stays where it is, with one line saying why."""
    moves: list[MessageMove] = []
    validity = service.codec(new).config.profile.validity_minutes * 60
    for message in await store.queued_messages(old.name, MOVE_BATCH):
        request = resubmission(message, old)
        valid_until = message.valid_until_wall or wall_now + validity
        prepared = service.prepare(request, new, valid_until)
        if isinstance(prepared, FieldError):
            log.warning("queued message cannot move to the failover provider; it stays",
                        extra={"kv": {"tracking_id": message.tracking_id, "provider": old.name,
                                      "failover": new, "error": prepared.message}})
            continue
        moves.append(MessageMove(new_message(prepared, message.tracking_id, message.client_id),
                                 old.name, reason))
    return await store.move_messages(moves)
