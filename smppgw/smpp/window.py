"""The requests one SMPP session has sent and not yet seen answered: sequence numbers and room.

A small pure class, in the manner of h2's ``windows.py``: no I/O, no clock (``sent_at`` is
whatever the session was told), no knowledge of what a response means.
"""

from __future__ import annotations

from collections.abc import ItemsView

from smppgw.smpp.constants import MAX_SEQUENCE_NUMBER
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.pdu import Pdu

#: One outstanding request: the caller's tag, the instant it was sent (monotonic seconds), and
#: the request PDU. A plain tuple: one is built per request on the hot path.
InFlight = tuple[object, float, Pdu]


class Window:
    """Outstanding requests keyed by sequence number, oldest first.

    SMPP 3.4 §2.3 (sequence numbers): a number identifies a request until its response
    arrives, in the range 0x00000001..0x7FFFFFFF; we count up from ``first_sequence_number``,
    wrap from 0x7FFFFFFF back to 1 and skip any number still outstanding, so two outstanding
    requests never share one, even after two thousand million requests on one bind.

    The dict is insertion ordered, so lookup by sequence number is O(1) and the first entry is
    the oldest request, hence the next response deadline when every request has the same
    timeout. ``capacity`` is the SMSC's window (Wavy: 10): adding beyond it raises
    LocalProtocolError, because waiting for room is the caller's job (back-pressure, not an
    error on the wire).
    """

    __slots__ = ("_entries", "_next_sequence_number", "capacity")

    def __init__(self, capacity: int, *, first_sequence_number: int = 1) -> None:
        if not 1 <= capacity < MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(
                f"window capacity {capacity} outside 1..{MAX_SEQUENCE_NUMBER - 1}"
            )
        if not 1 <= first_sequence_number <= MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(
                f"first sequence number {first_sequence_number} outside 1..0x7FFFFFFF"
            )
        self.capacity = capacity
        self._entries: dict[int, InFlight] = {}
        self._next_sequence_number = first_sequence_number

    # --- observation ---------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests sent and neither answered nor given up."""
        return len(self._entries)

    @property
    def room(self) -> int:
        """How many more requests may be sent now."""
        return self.capacity - len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, sequence_number: object) -> bool:
        return sequence_number in self._entries

    def __repr__(self) -> str:
        return (
            f"<Window {len(self._entries)}/{self.capacity} "
            f"next_sequence_number={self._next_sequence_number}>"
        )

    # --- changes -------------------------------------------------------------------------

    def allocate(self) -> int:
        """The sequence number the next request must carry; raises LocalProtocolError if full.

        Advances the counter (a number allocated and never added is simply skipped). The loop
        ends: fewer than ``capacity`` numbers are taken and capacity is below 0x7FFFFFFF.
        """
        entries = self._entries
        if len(entries) >= self.capacity:
            raise LocalProtocolError(f"window full ({self.capacity} requests outstanding)")
        candidate = self._next_sequence_number
        while candidate in entries:
            candidate = candidate + 1 if candidate < MAX_SEQUENCE_NUMBER else 1
        self._next_sequence_number = candidate + 1 if candidate < MAX_SEQUENCE_NUMBER else 1
        return candidate

    def add(self, sequence_number: int, tag: object, sent_at: float, request: Pdu) -> None:
        """Record a request as outstanding. Raises LocalProtocolError with no room, for a
        number outside 1..0x7FFFFFFF, or for one already outstanding (SMPP 3.4 §2.3)."""
        entries = self._entries
        if len(entries) >= self.capacity:
            raise LocalProtocolError(f"window full ({self.capacity} requests outstanding)")
        if sequence_number in entries:
            raise LocalProtocolError(f"sequence number {sequence_number} is already outstanding")
        if not 1 <= sequence_number <= MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(f"sequence number {sequence_number} outside 1..0x7FFFFFFF")
        entries[sequence_number] = (tag, sent_at, request)

    def add_next(self, tag: object, sent_at: float, request: Pdu) -> int:
        """allocate() and add() in one step, the send path's: record ``request`` under the
        next free sequence number and return that number. Raises LocalProtocolError if full.
        """
        entries = self._entries
        if len(entries) >= self.capacity:
            raise LocalProtocolError(f"window full ({self.capacity} requests outstanding)")
        candidate = self._next_sequence_number
        while candidate in entries:
            candidate = candidate + 1 if candidate < MAX_SEQUENCE_NUMBER else 1
        self._next_sequence_number = candidate + 1 if candidate < MAX_SEQUENCE_NUMBER else 1
        entries[candidate] = (tag, sent_at, request)
        return candidate

    def get(self, sequence_number: int) -> InFlight | None:
        return self._entries.get(sequence_number)

    def pop(self, sequence_number: int) -> InFlight | None:
        """Remove and return the request a response (or a timeout) settles; None if unknown."""
        return self._entries.pop(sequence_number, None)

    def oldest(self) -> tuple[int, InFlight] | None:
        """The request sent first among those outstanding, with its sequence number."""
        for item in self._entries.items():
            return item
        return None

    def items(self) -> ItemsView[int, InFlight]:
        """Outstanding requests, oldest first. Do not add or pop while iterating."""
        return self._entries.items()

    def take_all(self) -> list[tuple[int, InFlight]]:
        """Empty the window and return what was in it, oldest first: the hand-back on close."""
        taken = list(self._entries.items())
        self._entries.clear()
        return taken
