"""Drives one sans-IO Session over one asyncio transport (TCP or TLS).

After every input it does the same three things: write ``data_to_send()``, hand each event to
its one owner, re-arm the one timer (aioquic's shape). Nothing else lives here.

Requests made in the same loop pass are coalesced, a third of the window (at least 3) per
``transport.write``; the rest go at the end of the pass. One write per window would save a few
system calls, but then the SMSC waits idle while the whole window is prepared, and we wait
while it answers it all: writing in parts lets both ends work at once. (One bind against the
simulator on a 2-core machine, medians of 10 runs: 1.3x the segments per second at window 10,
1.7x at window 100, the same CPU per segment; nothing gained when both share one core.)

The one timer is armed at a deadline no later than the session's next one, and moved only
when that deadline comes EARLIER: the usual change, a response that makes the oldest request
a younger one, moves it later, and re-arming for that after every read and every write cost
two timer handles per window of answers. A timer that fires early is harmless: the session
acts on what is due (nothing, then) and the timer is armed again at its real deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from smppgw.smpp.events import Event
from smppgw.smpp.pdu import Pdu
from smppgw.smpp.session import Session, SessionState


class SmppConnection(asyncio.Protocol):
    """An asyncio.Protocol around a Session (no task per read, as asyncpg and aioquic do).

    ``on_event`` is the single consumer of the session's events (the BindSlot). ``closed``
    resolves when the transport is gone, whatever the cause. ``may_bind`` is asked with the
    transport once it is up (TCP connected, TLS handshake done): False cuts it before a
    single byte is written, so the bind and its password never leave (the owner is
    stopping, or the peer's certificate is not the pinned one).
    """

    def __init__(
        self,
        session: Session,
        on_event: Callable[[Event], None],
        *,
        on_writable: Callable[[], None] | None = None,
        may_bind: Callable[[asyncio.Transport], bool] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.session = session
        self._on_event = on_event
        self._on_writable = on_writable
        self._may_bind = may_bind
        self._loop = loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.writable = True
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when _timer fires; meaningful only while _timer is set
        self._flush_scheduled = False
        # Requests queued since the last write, and how many make a write at once.
        self._unwritten = 0
        self._write_every = max(3, session.window_size // 3)
        self.bytes_in = 0
        self.bytes_out = 0

    def __repr__(self) -> str:
        return f"<SmppConnection {self.session!r}>"

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._may_bind is not None and not self._may_bind(transport):
            self.abort()  # no bind goes out on this connection: not one byte is written
            return
        self.session.bind(self._loop.time())
        self._after_input()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.session.receive_data(data, self._loop.time())
        if self._after_input():
            # Answers just handed up usually make their waiters send again in the next loop
            # pass: flush after them in that pass, rather than one pass (and one more
            # poll of the selector) later.
            self._schedule_flush()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session.state is not SessionState.CLOSED:
            self.session.receive_data(b"", self._loop.time())
            self._drain_events()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        # The kernel buffer is full: the pool stops choosing this bind until it drains.
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        if self._on_writable is not None:
            self._on_writable()

    # --- commands from the owner ----------------------------------------------------------------

    def send_request(self, body: Pdu, tag: object, now: float) -> int:
        """Queue a request at ``now`` (loop time, as the caller planned the send); its bytes
        go out with others, at once when a third of the window is queued, else at the end of
        this loop pass."""
        sequence_number = self.session.send_request(body, now, tag=tag)
        self._unwritten += 1
        if self._unwritten >= self._write_every:
            self._write()
        self._schedule_flush()  # the rest, the events and the timer
        return sequence_number

    def acknowledge(self, sequence_number: int, status: int) -> None:
        """Answer a deliver_sm/data_sm once the store has it (or with a transient error)."""
        if self.transport is None:
            return  # the link is gone: the SMSC will deliver it again on another bind
        self.session.acknowledge(sequence_number, status, self._loop.time())
        self._schedule_flush()

    def unbind(self) -> None:
        """Graceful close: drain outstanding requests (bounded), unbind, then close."""
        if self.session.state in (SessionState.CLOSED, SessionState.UNBINDING):
            return
        self.session.unbind(self._loop.time())
        self._after_input()

    def abort(self) -> None:
        """Cut the link now; every unanswered request leaves in the Closed event."""
        if self.session.state is not SessionState.CLOSED:
            self.session.close(self._loop.time())
            self._after_input()
        if self.transport is not None:
            self.transport.abort()

    # --- the three steps after every input ------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._after_input()

    def _write(self) -> None:
        self._unwritten = 0
        data = self.session.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            self.bytes_out += len(data)
            transport.write(data)

    def _after_input(self) -> bool:
        """Write, hand events over, re-arm the timer. True if any event was handed over."""
        self._write()
        session = self.session
        transport = self.transport
        handed_over = self._drain_events()
        if session.state is SessionState.CLOSED:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if transport is not None and not transport.is_closing():
                transport.close()
            return handed_over
        deadline = session.next_deadline()
        if deadline is not None and (self._timer is None or deadline < self._timer_at):
            self._arm_timer(deadline)
        return handed_over

    def _drain_events(self) -> bool:
        next_event = self.session.next_event
        on_event = self._on_event
        handed_over = False
        while (event := next_event()) is not None:
            on_event(event)
            handed_over = True
        return handed_over

    def _arm_timer(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.handle_timer(self._loop.time())
        self._after_input()
