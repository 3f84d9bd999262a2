"""Stand-ins shared by tests that drive a dispatcher without sockets."""

from __future__ import annotations

from typing import Any

from smppgw.flow.outbound import SubmitDecision
from smppgw.pool.pool import SubmitResult, SubmitTicket
from smppgw.smpp.pdu import SubmitSmResp


class StandInPool:
    """What the dispatcher needs of a BindPool, with one bind that can submit always bound;
    subclasses answer ``submit``. Every decision handed back is kept in ``decisions``."""

    provider_metrics = None
    submit_bound_count = 1

    def __init__(self) -> None:
        self.decisions: list[SubmitDecision] = []

    async def wait_bound(self) -> None:
        return None

    def apply(self, result: SubmitResult, decision: SubmitDecision) -> None:
        self.decisions.append(decision)

    @staticmethod
    def withdraw(ticket: SubmitTicket) -> None:
        if not ticket.sent:
            ticket.withdrawn = True

    @staticmethod
    def answer(status: int, message_id: str | None, bind: str = "sim#0") -> SubmitResult:
        slot: Any = None  # nothing here reads the slot: apply() is the stand-in's
        return SubmitResult(status, message_id, bind, SubmitSmResp(message_id=message_id or ""),
                            0.0, slot)
