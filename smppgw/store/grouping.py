"""What both writers share about a group commit: the order kinds run in, which commands merge,
and results that wait for their events' cursors. Pure: no I/O, no threads, no asyncio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar

__all__ = ["MERGED_KINDS", "Deferred", "GroupCommand", "order", "runs"]

# Kinds run in this order inside a group: accepts, submit outcomes, receipts, the rest in queue
# order, claims last so they see what the group queued. Commands in one group were all waiting
# at once, so none depends on another's effect and any order is one a caller could have seen.
_ORDER: Final = {"accept": 0, "submit": 1, "receipts": 2, "other": 3, "claim": 4}

#: Kinds whose commands of one group run as one call over all their items.
MERGED_KINDS: Final = frozenset({"accept", "submit", "receipts"})


class GroupCommand(Protocol):
    @property
    def kind(self) -> str | None: ...


C = TypeVar("C", bound=GroupCommand)


def order(command: GroupCommand) -> int:
    return _ORDER.get(command.kind or "other", _ORDER["other"])


def runs(group: Sequence[C]) -> list[list[C]]:
    """``group`` (already sorted by ``order``) cut into runs: consecutive commands of one
    merged kind together, every other command alone."""
    out: list[list[C]] = []
    for command in group:
        if (command.kind in MERGED_KINDS and out and out[-1][0].kind == command.kind):
            out[-1].append(command)
        else:
            out.append([command])
    return out


class Deferred:
    """A command result that needs the cursors of its events, known only when the group's
    events are numbered: ``resolve(first_cursor)`` gives the value."""

    __slots__ = ("resolve",)

    def __init__(self, resolve: Callable[[int], object]) -> None:
        self.resolve = resolve
