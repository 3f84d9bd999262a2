"""The SMSC simulator: a real SMPP 3.4 server on asyncio, on smppgw's own codec.

Owns listening, binds, answers, receipts, MO and injected faults, and records every PDU so
tests wait on what it saw instead of sleeping. One asyncio.Protocol per connection, no task
per read (fast enough for benchmarks). Loopback by default; never meant to face the Internet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import random
import shutil
import ssl
import struct
import tempfile
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from smppgw.net.certs import CertificatePaths, generate_ca_and_leaf
from smppgw.net.tls import apply_min_version
from smppgw.smpp.codec import DEFAULT_MAX_COMMAND_LENGTH, HEADER, decode, encode
from smppgw.smpp.constants import (
    INTERFACE_VERSION_34,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
)
from smppgw.smpp.errors import RemoteProtocolError
from smppgw.smpp.pdu import (
    RESPONSE_CLASS,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
)

from .receipts import Outcome, build_receipt, choose_outcome, mo_parts, receipt_stages
from .scenario import BindKind, Faults, ReceiptPlan, SimulatorConfig
from .throttle import TokenBucket

__all__ = [
    "Delivery",
    "MalformedKind",
    "Record",
    "SimConnection",
    "SmscSimulator",
]

log = logging.getLogger(__name__)

_S = CommandStatus
_U32 = struct.Struct(">I")

MalformedKind = Literal["bad_command_length", "unknown_command_id", "truncated_body", "bad_tlv"]
ConnectionState = Literal["open", "bound", "unbinding", "closed"]

_BindRequest = BindTransmitter | BindReceiver | BindTransceiver
_BIND_KIND: dict[type[Pdu], BindKind] = {
    BindTransmitter: "transmitter",
    BindReceiver: "receiver",
    BindTransceiver: "transceiver",
}


class Record(NamedTuple):
    """One PDU as it crossed the wire. ``pdu`` is None when the octets did not decode (or were
    sent malformed on purpose); ``raw`` is exact; ``at`` is ``loop.time()``."""

    connection_id: int
    pdu: Pdu | None
    raw: bytes
    at: float


@dataclass(slots=True, eq=False)
class Delivery:
    """A deliver_sm the simulator owes an ESME: a receipt or an MO part.

    ``connection_id``/``sequence_number`` say where it last went; ``status`` is the
    command_status of the last deliver_sm_resp (or generic_nack) for it, None while
    unanswered; ``acknowledged`` turns True on ESME_ROK. A delivery cut off by a lost link or
    answered with an error is queued again (an SMSC redelivers), so ``attempts`` can exceed 1.
    """

    kind: Literal["receipt", "mo"]
    pdu: DeliverSm
    system_id: str | None
    message_id: str | None = None
    stat: str | None = None
    origin_connection_id: int | None = None
    connection_id: int | None = None
    sequence_number: int | None = None
    attempts: int = 0
    status: int | None = None
    acknowledged: bool = False


class SimConnection(asyncio.Protocol):
    """One ESME connection. Tests read its attributes; only the simulator changes them.

    ``id`` is unique per simulator (1, 2, ...); ``state``, ``bind_kind``, ``system_id``;
    ``received_count`` PDUs so far; ``outstanding`` deliver_sm awaiting deliver_sm_resp;
    ``opened_at``/``closed_at`` are loop times, ``close_reason`` says who ended it.
    """

    def __init__(self, sim: SmscSimulator, connection_id: int) -> None:
        self.sim = sim
        self.id = connection_id
        self.transport: asyncio.Transport | None = None
        self.peer: object = None
        self.state: ConnectionState = "open"
        self.bind_kind: BindKind | None = None
        self.system_id: str | None = None
        self.received_count = 0
        self.sent_count = 0
        self.outstanding: dict[int, Delivery] = {}
        self.unanswered = 0
        self.opened_at = 0.0
        self.closed_at: float | None = None
        self.close_reason: str | None = None
        self.last_received_at = 0.0
        self.paused = False
        self._buffer = bytearray()
        self._next_sequence = 0
        self._bucket: TokenBucket | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self._close_after_write = False

    # --- observation -----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state != "closed"

    @property
    def can_receive(self) -> bool:
        """Bound as receiver or transceiver: receipts and MO may go here."""
        return self.state == "bound" and self.bind_kind in ("receiver", "transceiver")

    def __repr__(self) -> str:
        bind = f" {self.bind_kind}:{self.system_id}" if self.bind_kind else ""
        return (
            f"<SimConnection #{self.id} {self.state.upper()}{bind} received={self.received_count}"
            f" outstanding={len(self.outstanding)}>"
        )

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        now = self.sim.loop.time()
        self.opened_at = now
        self.last_received_at = now
        self.sim._connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_reason is None:
            self.close_reason = "peer closed" if exc is None else f"lost: {exc}"
        self.state = "closed"
        self.closed_at = self.sim.loop.time()
        for handle in (self._idle_handle, self._probe_handle):
            if handle is not None:
                handle.cancel()
        self._idle_handle = self._probe_handle = None
        self.transport = None
        self.sim._connection_lost(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.sim._schedule_pump()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        sim = self.sim
        now = sim.loop.time()
        self.last_received_at = now
        pos = 0
        size = len(buffer)
        while size - pos >= 4 and self.transport is not None and not self._close_after_write:
            (length,) = _U32.unpack_from(buffer, pos)
            if length < HEADER.size or length > DEFAULT_MAX_COMMAND_LENGTH:
                self._framing_broken(bytes(buffer[pos:]), length, now, out)
                buffer.clear()
                return
            if size - pos < length:
                break
            frame = bytes(buffer[pos : pos + length])
            pos += length
            if not self._on_frame(frame, now, out):
                break
        del buffer[:pos]
        if out:
            self._write_many(out)
        if self._close_after_write and self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        if self.close_reason is None:
            self.close_reason = "peer closed"
        return None  # close our side too

    # --- frames ----------------------------------------------------------------------------

    def _framing_broken(self, raw: bytes, length: int, now: float, out: list[bytes]) -> None:
        """SMPP 3.4 §3.2.1: a command_length we cannot trust loses the stream; answer
        generic_nack ESME_RINVCMDLEN and close, as SMSCs do."""
        self.received_count += 1
        self.sim._record_received(self, None, raw, now)
        sequence_number = _U32.unpack_from(raw, 12)[0] if len(raw) >= 16 else 0
        log.debug("connection #%d: command_length %d, closing", self.id, length)
        if not self._silent():
            nack = GenericNack(sequence_number=sequence_number, command_status=_S.ESME_RINVCMDLEN)
            out.append(self._sent(nack, now))
        self._write_many(out)
        self.close("bad command_length")

    def _on_frame(self, frame: bytes, now: float, out: list[bytes]) -> bool:
        """Handle one whole frame; False when the connection must stop reading."""
        sim = self.sim
        self.received_count += 1
        error: RemoteProtocolError | None = None
        pdu: Pdu | None = None
        try:
            pdu = decode(frame)
        except RemoteProtocolError as exc:
            error = exc
        sim._record_received(self, pdu, frame, now)
        faults = sim.faults
        if faults.drop_after is not None and self.received_count >= faults.drop_after:
            self._write_many(out)
            out.clear()
            self.abort(f"drop_after {faults.drop_after}")
            return False
        if self._silent():
            return True
        if pdu is None:
            assert error is not None
            # SMPP 3.4 §4.3: generic_nack for a PDU we cannot read, with the status the
            # decoder chose and its sequence number when the header was readable.
            nack = GenericNack(
                sequence_number=error.sequence_number or 0, command_status=error.status
            )
            out.append(self._sent(nack, now))
            return True
        handler = _HANDLERS.get(type(pdu))
        if handler is None:
            if not pdu.is_response:
                # Outbind, alert_notification and anything else an ESME must not send.
                nack = GenericNack(
                    sequence_number=pdu.sequence_number, command_status=_S.ESME_RINVCMDID
                )
                out.append(self._sent(nack, now))
            return True
        handler(self, pdu, now, out)
        return True

    def _silent(self) -> bool:
        faults = self.sim.faults
        return faults.silent or (
            faults.silent_after is not None and self.received_count >= faults.silent_after
        )

    # --- writing ---------------------------------------------------------------------------

    def _sent(self, pdu: Pdu, now: float) -> bytes:
        raw = encode(pdu)
        self.sim._record_sent(self, pdu, raw, now)
        self.sent_count += 1
        return raw

    def _write_many(self, chunks: list[bytes]) -> None:
        if chunks and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])

    def write_pdu(self, pdu: Pdu) -> bytes:
        """Encode, record and send one PDU now; returns its octets."""
        raw = self._sent(pdu, self.sim.loop.time())
        self._write_many([raw])
        return raw

    def write_raw(self, raw: bytes) -> None:
        """Send octets as they are (recorded with pdu None)."""
        self.sim._record_sent(self, None, raw, self.sim.loop.time())
        self._write_many([raw])

    def next_sequence_number(self) -> int:
        """Sequence numbers of requests the simulator originates: 1..0x7FFFFFFF, wrapping."""
        self._next_sequence = self._next_sequence % 0x7FFFFFFF + 1
        return self._next_sequence

    def close(self, reason: str) -> None:
        """Close after pending writes go out."""
        if self.transport is not None:
            self.close_reason = self.close_reason or reason
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Cut the connection at once; unsent octets are lost (what a crash looks like)."""
        if self.transport is not None:
            self.close_reason = self.close_reason or reason
            self.transport.abort()

    # --- the SMSC's own enquire_link --------------------------------------------------------

    def _arm_probe(self) -> None:
        interval = self.sim.config.enquire_link_interval
        if interval is not None:
            self._probe_handle = self.sim.loop.call_later(interval, self._probe)

    def _probe(self) -> None:
        """SMPP 3.4 §4.11: either side may check the link; this one does it on a clock,
        answered or not, whatever the ESME sends meanwhile."""
        self._probe_handle = None
        if self.state != "bound" or self.transport is None:
            return
        if not self._silent():
            self.write_pdu(EnquireLink(sequence_number=self.next_sequence_number()))
            self.sim.enquire_links_total += 1
            self.sim._notify()
        self._arm_probe()

    # --- idle timeout ----------------------------------------------------------------------

    def arm_idle_timer(self) -> None:
        timeout = self.sim.faults.idle_timeout
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if timeout is None or self.transport is None:
            return
        self._idle_handle = self.sim.loop.call_at(self.last_received_at + timeout, self._idle_check)

    def _idle_check(self) -> None:
        # One timer per connection, re-armed lazily from the last receive time: no per-PDU
        # timer churn on the hot path.
        self._idle_handle = None
        timeout = self.sim.faults.idle_timeout
        if timeout is None or self.transport is None:
            return
        if self.sim.loop.time() - self.last_received_at >= timeout:
            log.debug("connection #%d idle for %ss, closing", self.id, timeout)
            self.close(f"idle_timeout {timeout}")
        else:
            self.arm_idle_timer()

    # --- handlers --------------------------------------------------------------------------

    def _on_bind(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        assert isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver)
        sim = self.sim
        kind = _BIND_KIND[type(pdu)]
        status = self._bind_status(pdu, kind)
        resp_class = _BIND_RESPONSE[type(pdu)]
        resp = resp_class(
            sequence_number=pdu.sequence_number,
            command_status=status,
            system_id=sim.config.smsc_system_id,
            # SMPP 3.4 §4.1.2: sc_interface_version tells the ESME we speak 3.4.
            tlvs=(Tlv(Tag.SC_INTERFACE_VERSION, bytes((INTERFACE_VERSION_34,))),)
            if status == _S.ESME_ROK
            else (),
        )
        out.append(self._sent(resp, now))
        if status == _S.ESME_ROK:
            self.state = "bound"
            self.bind_kind = kind
            self.system_id = pdu.system_id
            sim._bound(self)
            self._arm_probe()
        else:
            sim.bind_failures_total += 1
            sim._notify()

    def _bind_status(self, pdu: _BindRequest, kind: BindKind) -> int:
        sim = self.sim
        if self.state == "bound":
            return _S.ESME_RALYBND
        if kind not in sim.config.bind_kinds:
            return _S.ESME_RBINDFAIL
        accounts = sim.config.accounts
        if accounts:
            account = next((a for a in accounts if a.system_id == pdu.system_id), None)
            if account is None:
                return _S.ESME_RINVSYSID
            if account.password != pdu.password:
                return _S.ESME_RINVPASWD
            if (
                account.max_binds is not None
                and sim.bound_count(pdu.system_id) >= account.max_binds
            ):
                return _S.ESME_RBINDFAIL
        return sim.faults.bind_status

    def _on_unbind(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        out.append(self._sent(UnbindResp(sequence_number=pdu.sequence_number), now))
        was_bound = self.state == "bound"
        self.state = "unbinding"
        self.close_reason = "unbind"
        self._close_after_write = True
        if was_bound:
            self.sim._unbound(self)

    def _on_enquire_link(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        out.append(self._sent(EnquireLinkResp(sequence_number=pdu.sequence_number), now))

    def _on_submit(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        assert isinstance(pdu, SubmitSm | DataSm)
        sim = self.sim
        resp_class: type[SubmitSmResp] | type[DataSmResp] = (
            SubmitSmResp if isinstance(pdu, SubmitSm) else DataSmResp
        )
        seq = pdu.sequence_number
        if self.state != "bound" or self.bind_kind == "receiver":
            out.append(
                self._sent(resp_class(sequence_number=seq, command_status=_S.ESME_RINVBNDSTS), now)
            )
            return
        faults = sim.faults
        if faults.window is not None and self.unanswered >= faults.window:
            # Beyond the SMSC's window: its queue for us is full, refused at once whatever
            # the latency (SMPP 3.4 §5.1.3 ESME_RMSGQFUL).
            sim.queue_full_total += 1
            out.append(
                self._sent(resp_class(sequence_number=seq, command_status=_S.ESME_RMSGQFUL), now)
            )
            return
        status = sim._submit_status(self, now)
        if status != _S.ESME_ROK:
            resp: Pdu = resp_class(sequence_number=seq, command_status=status)
            self._respond(resp, now, out, None)
            return
        message_id = sim._new_message_id()
        sim.accepted_total += 1
        sim._set_message_state(message_id, MessageState.ENROUTE)
        sim._origins[message_id] = (pdu.source_addr, pdu.destination_addr)
        resp = resp_class(sequence_number=seq, message_id=message_id)
        after = None
        if pdu.registered_delivery & 0x01:
            after = _ReceiptTrigger(sim, self, pdu, message_id)
        self._respond(resp, now, out, after)

    def _respond(
        self, resp: Pdu, now: float, out: list[bytes], after: Callable[[], None] | None
    ) -> None:
        """Answer now or after the configured latency (or when released, while answers are
        held); ``after`` runs once it is written."""
        held = self.sim._held
        if held is not None:
            self.unanswered += 1
            held.append((self, resp, after))
            return
        latency = self.sim.faults.latency
        if latency <= 0:
            out.append(self._sent(resp, now))
            if after is not None:
                after()
            return
        self.unanswered += 1
        self.sim.loop.call_later(latency, self._respond_late, resp, after)

    def _respond_late(self, resp: Pdu, after: Callable[[], None] | None) -> None:
        self.unanswered -= 1
        if self.transport is None or self.transport.is_closing():
            return
        self.write_pdu(resp)
        if after is not None:
            after()

    def _on_submit_multi(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        seq = pdu.sequence_number
        if self.state != "bound" or self.bind_kind == "receiver":
            out.append(
                self._sent(
                    SubmitMultiResp(sequence_number=seq, command_status=_S.ESME_RINVBNDSTS), now
                )
            )
            return
        resp = SubmitMultiResp(sequence_number=seq, message_id=self.sim._new_message_id())
        self._respond(resp, now, out, None)

    def _on_query(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        assert isinstance(pdu, QuerySm)
        state = self.sim.messages.get(pdu.message_id)
        resp: Pdu
        if self.state != "bound":
            resp = QuerySmResp(
                sequence_number=pdu.sequence_number, command_status=_S.ESME_RINVBNDSTS
            )
        elif state is None:
            resp = QuerySmResp(
                sequence_number=pdu.sequence_number, command_status=_S.ESME_RQUERYFAIL
            )
        else:
            resp = QuerySmResp(
                sequence_number=pdu.sequence_number, message_id=pdu.message_id, message_state=state
            )
        self._respond(resp, now, out, None)

    def _on_cancel(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        """cancel_sm (SMPP 3.4 §4.9): a message still pending delivery (its receipt not yet
        sent) is cancelled; anything else is ESME_RCANCELFAIL."""
        assert isinstance(pdu, CancelSm)
        status: int
        if self.state != "bound" or self.bind_kind == "receiver":
            status = _S.ESME_RINVBNDSTS
        else:
            status = self.sim._cancel(pdu)
        self._respond(CancelSmResp(sequence_number=pdu.sequence_number, command_status=status),
                      now, out, None)

    def _on_refused(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        """replace_sm: there is nothing to replace here (SMPP 3.4 §4.10 failure code)."""
        status = _S.ESME_RREPLACEFAIL
        if self.state != "bound":
            status = _S.ESME_RINVBNDSTS
        resp = RESPONSE_CLASS[type(pdu)](sequence_number=pdu.sequence_number, command_status=status)
        self._respond(resp, now, out, None)

    def _on_deliver_answer(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        delivery = self.outstanding.pop(pdu.sequence_number, None)
        if delivery is not None:
            self.sim._delivery_answered(self, delivery, pdu.command_status)

    def _on_ignored(self, pdu: Pdu, now: float, out: list[bytes]) -> None:
        """Responses to what the simulator sent (enquire_link_resp, unbind_resp): recorded."""


class _ReceiptTrigger:
    """Schedules a message's receipts once its submit_sm_resp is on the wire, so the receipt
    delay counts from the response and a receipt never overtakes it (with ``latency`` set,
    counting from the submit would let it)."""

    __slots__ = ("connection", "message_id", "sim", "submit", "submitted_at_wall")

    def __init__(
        self,
        sim: SmscSimulator,
        connection: SimConnection,
        submit: SubmitSm | DataSm,
        message_id: str,
    ) -> None:
        self.sim = sim
        self.connection = connection
        self.submit = submit
        self.message_id = message_id
        self.submitted_at_wall = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> None:
        self.sim._schedule_receipts(self)


_Handler = Callable[[SimConnection, Pdu, float, list[bytes]], None]
_HANDLERS: dict[type[Pdu], _Handler] = {
    BindTransmitter: SimConnection._on_bind,
    BindReceiver: SimConnection._on_bind,
    BindTransceiver: SimConnection._on_bind,
    Unbind: SimConnection._on_unbind,
    EnquireLink: SimConnection._on_enquire_link,
    SubmitSm: SimConnection._on_submit,
    DataSm: SimConnection._on_submit,
    SubmitMulti: SimConnection._on_submit_multi,
    QuerySm: SimConnection._on_query,
    CancelSm: SimConnection._on_cancel,
    ReplaceSm: SimConnection._on_refused,
    DeliverSmResp: SimConnection._on_deliver_answer,
    GenericNack: SimConnection._on_deliver_answer,
    EnquireLinkResp: SimConnection._on_ignored,
    UnbindResp: SimConnection._on_ignored,
    DataSmResp: SimConnection._on_ignored,
}
_SUBMITS = frozenset({SubmitSm, DataSm})
_BIND_RESPONSE: dict[
    type[Pdu], type[BindTransmitterResp] | type[BindReceiverResp] | type[BindTransceiverResp]
] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
}


class SmscSimulator:
    """An SMSC on loopback for tests, `smppgw demo`, `smppgw simulate` and benchmarks.

    Start with ``await sim.start()`` (or ``async with SmscSimulator(config) as sim``), read
    ``sim.port``, stop with ``await sim.close()``, which cuts every connection. Everything runs
    on the loop that started it; call its methods from that loop only.

    Recording (with ``config.record``): ``received`` and ``sent`` hold every PDU as a Record;
    ``submits`` the submit_sm/data_sm received; ``deliveries`` every receipt and MO part
    created. ``messages``: message id → last reported message_state, what query_sm answers
    (kept without recording too, for the newest ``config.message_states_kept``). Counters
    always run.
    Waiting: ``await sim.wait_for(lambda: len(sim.submits) >= 3, timeout=5)``, or the
    ``wait_*`` shorthands; each raises TimeoutError naming the simulator's state.
    Connections: ``connections`` maps id → SimConnection for every connection seen (only the
    open ones without ``record``); ``open_connection_ids()`` tells which are still up, so a
    test can check that a link survived something (a config reload) by its id.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._faults = self.config.faults
        self._receipt_plan = self.config.receipts
        self._rng = random.Random(self.config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._tempdir: str | None = None
        self._closed = False
        self.host = self.config.host
        self.port = 0
        self.cert_paths: CertificatePaths | None = None
        # recording
        self.received: list[Record] = []
        self.sent: list[Record] = []
        self.submits: list[Record] = []
        self.deliveries: list[Delivery] = []
        # An OrderedDict: without recording, the oldest state is dropped at every new message
        # once message_states_kept are kept, and a plain dict finds its first key by scanning
        # past every slot deleted so far (tens of µs per submit after 100,000 messages).
        self.messages: OrderedDict[str, MessageState] = OrderedDict()
        #: Ids of the messages a cancel_sm cancelled, in order.
        self.cancelled: list[str] = []
        self.connections: dict[
            int, SimConnection
        ] = {}  # every connection (open ones without record)
        self._open: dict[int, SimConnection] = {}
        # counters
        self.connects_total = 0
        self.binds_total = 0
        self.bind_failures_total = 0
        self.unbinds_total = 0
        self.disconnects_total = 0
        self.received_total = 0
        self.sent_total = 0
        self.submits_total = 0
        self.accepted_total = 0
        self.throttled_total = 0
        self.queue_full_total = 0
        self.enquire_links_total = 0  # enquire_link the simulator sent on its own
        self.delivered_total = 0  # deliver_sm sent (attempts)
        self.acknowledged_total = 0  # deliver_sm answered ESME_ROK
        # internals
        self._next_connection_id = 0
        self._queues: dict[str | None, deque[Delivery]] = {}
        self._rr = 0
        self._pump_scheduled = False
        self._waiters: list[asyncio.Future[None]] = []
        self._wake_scheduled = False
        self._server_bucket: TokenBucket | None = None
        self._scripted: deque[int] = deque()
        # Answers to requests held by hold_answers(), in arrival order, until release_answers().
        self._held: list[tuple[SimConnection, Pdu, Callable[[], None] | None]] | None = None
        self._id_base = self._rng.getrandbits(40)
        self._id_counter = 0
        self._mo_reference = self._rng.randrange(256)
        # Per message: its (source_addr, destination_addr), what cancel_sm is checked against,
        # and the receipts scheduled and not yet sent (a cancel drops them).
        self._origins: dict[str, tuple[str, str]] = {}
        self._receipt_timers: dict[str, list[asyncio.TimerHandle]] = {}

    # --- life cycle ------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the simulator is not started")
        return self._loop

    async def start(self) -> None:
        """Listen. With TLS and no certificate given, make a CA and a server certificate.

        ``config.host`` should be an address (127.0.0.1, ::1): a name that resolves to both
        families would get one socket per family, each with its own ephemeral port.
        """
        if self._server is not None:
            raise RuntimeError("already started")
        self._loop = asyncio.get_running_loop()
        config = self.config
        try:
            context = self._server_context() if config.tls else None
            self._server = await self._loop.create_server(
                self._new_connection, config.host, config.port, ssl=context, reuse_address=True
            )
        except BaseException:
            self._remove_tempdir()
            raise
        sockname = self._server.sockets[0].getsockname()
        self.host = str(sockname[0])
        self.port = int(sockname[1])
        log.info("SMSC simulator listening on %s", self.address)

    def _server_context(self) -> ssl.SSLContext:
        config = self.config
        if config.cert_file is not None and config.key_file is not None:
            paths = CertificatePaths(
                cert=Path(config.cert_file), key=Path(config.key_file), ca=Path(config.cert_file)
            )
        else:
            directory = config.cert_dir
            if directory is None:
                self._tempdir = directory = tempfile.mkdtemp(prefix="smppgw-sim-")
            # A CA and a leaf, so clients can verify the chain and check the hostname.
            paths = generate_ca_and_leaf(directory)
        self.cert_paths = paths
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        apply_min_version(context, config.tls_min_version)
        context.load_cert_chain(str(paths.cert), str(paths.key))
        if config.tls_client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=config.tls_client_ca)
        return context

    def _new_connection(self) -> SimConnection:
        self._next_connection_id += 1
        return SimConnection(self, self._next_connection_id)

    async def close(self) -> None:
        """Stop listening and cut every connection (TCP abort). Idempotent."""
        if self._closed:
            return
        self._closed = True
        server = self._server
        if server is not None:
            server.close()
        for connection in list(self._open.values()):
            connection.abort("simulator closed")
        if server is not None:
            await server.wait_closed()
        if self._loop is not None:
            try:
                # Aborted transports report connection_lost on the next loop iterations.
                await self.wait_for(lambda: not self.open_connection_ids(), timeout=5.0)
            except TimeoutError:
                log.warning("simulator closed with connections still open: %r", self)
        # Whoever still waits re-checks its condition now, then times out on its own.
        self._wake()
        self._remove_tempdir()

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def address(self) -> str:
        """``host:port`` (``[::1]:port`` for IPv6) as bound."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # --- observation -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def receipt_plan(self) -> ReceiptPlan:
        return self._receipt_plan

    def open_connection_ids(self) -> list[int]:
        """Ids of connections still open, oldest first."""
        return list(self._open)

    def bound_connections(self, system_id: str | None = None) -> list[SimConnection]:
        return [
            c
            for c in self._open.values()
            if c.state == "bound" and (system_id is None or c.system_id == system_id)
        ]

    def bound_count(self, system_id: str | None = None) -> int:
        return len(self.bound_connections(system_id))

    def connection(self, connection_id: int) -> SimConnection:
        return self.connections[connection_id]

    @property
    def receipts(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.kind == "receipt"]

    @property
    def mo(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.kind == "mo"]

    @property
    def queued(self) -> int:
        """Deliveries waiting for a receiver bind (or for window room)."""
        return sum(len(q) for q in self._queues.values())

    def pdus_by_connection(self) -> dict[int, int]:
        """PDUs received per connection id."""
        return {cid: c.received_count for cid, c in self.connections.items()}

    def __repr__(self) -> str:
        return (
            f"<SmscSimulator {self.address if self._server else 'stopped'} "
            f"connections={len(self.open_connection_ids())} bound={self.bound_count()} "
            f"received={self.received_total} sent={self.sent_total} "
            f"submits={self.submits_total} deliveries={self.delivered_total} "
            f"acknowledged={self.acknowledged_total} queued={self.queued}>"
        )

    # --- waiting ---------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` holds; it is checked after every change the simulator
        sees (connection, PDU, delivery). Raises TimeoutError after ``timeout`` seconds."""
        loop = self.loop
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s: {self!r}") from None

    async def wait_bound(
        self, count: int = 1, system_id: str | None = None, timeout: float = 5.0
    ) -> None:
        await self.wait_for(lambda: self.bound_count(system_id) >= count, timeout)

    async def wait_submits(self, count: int, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: self.submits_total >= count, timeout)

    async def wait_acknowledged(self, count: int, timeout: float = 5.0) -> None:
        """Until ``count`` deliveries (receipts and MO parts) were answered ESME_ROK."""
        await self.wait_for(lambda: self.acknowledged_total >= count, timeout)

    def _notify(self) -> None:
        # Coalesced: one wake-up per loop iteration however many PDUs arrived in it.
        if self._waiters and not self._wake_scheduled:
            self._wake_scheduled = True
            self.loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_scheduled = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- run-time control ------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        """Swap the fault set; applies to the next PDU of every connection."""
        self._faults = faults
        for connection in self._open.values():
            connection.arm_idle_timer()
        self._schedule_pump()

    def set_receipt_plan(self, plan: ReceiptPlan) -> None:
        """Swap the receipt plan; applies to submits accepted from now on."""
        self._receipt_plan = plan

    def answer_next_submits(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` submits with ``status`` (e.g. ESME_RMSGQFUL), server-wide."""
        self._scripted.extend([status] * count)

    def hold_answers(self) -> None:
        """Keep every answer to submit_sm, data_sm, query_sm, cancel_sm, replace_sm from now
        on until ``release_answers`` (binds, enquire_link and unbind are still answered):
        lets a test act while it knows the ESME's requests are in flight."""
        if self._held is None:
            self._held = []

    def release_answers(self) -> int:
        """Send every held answer now, in the order the requests came; returns how many.
        Answers are no longer held afterwards."""
        held, self._held = self._held or [], None
        for connection, resp, after in held:
            connection._respond_late(resp, after)
        return len(held)

    def drop(self, connection_id: int) -> None:
        """Cut one connection (TCP abort)."""
        self.connections[connection_id].abort("dropped on request")

    def send_pdu(self, connection_id: int, pdu: Pdu) -> int:
        """Send any PDU on a connection; a request with sequence_number 0 gets the next one.
        Returns the sequence number used."""
        connection = self.connections[connection_id]
        if pdu.sequence_number == 0 and not pdu.is_response:
            pdu = dataclasses.replace(pdu, sequence_number=connection.next_sequence_number())
        connection.write_pdu(pdu)
        return pdu.sequence_number

    def send_enquire_link(self, connection_id: int) -> int:
        return self.send_pdu(connection_id, EnquireLink())

    def send_unbind(self, connection_id: int) -> int:
        """Ask the ESME to unbind (the SMSC going down for maintenance)."""
        return self.send_pdu(connection_id, Unbind())

    def send_raw(self, connection_id: int, data: bytes) -> None:
        self.connections[connection_id].write_raw(data)

    def send_malformed(self, connection_id: int, kind: MalformedKind) -> bytes:
        """Send a broken PDU; returns its octets. What a correct ESME does with each:

        ``bad_command_length``: length 8 (< 16), the stream is lost → close.
        ``unknown_command_id``: command_id 0x00000555 → generic_nack ESME_RINVCMDID.
        ``truncated_body``: a deliver_sm whose body stops inside its fields →
        generic_nack ESME_RINVCMDLEN (or the deliver_sm_resp with that status).
        ``bad_tlv``: a deliver_sm whose last TLV claims more octets than remain →
        ESME_RINVOPTPARSTREAM.
        """
        connection = self.connections[connection_id]
        seq = connection.next_sequence_number()
        if kind == "bad_command_length":
            raw = HEADER.pack(8, CommandId.DELIVER_SM, 0, seq)
        elif kind == "unknown_command_id":
            raw = HEADER.pack(16, 0x00000555, 0, seq)
        elif kind == "truncated_body":
            body = b"\x00\x01\x01"  # service_type "", then source TON/NPI, then nothing
            raw = HEADER.pack(16 + len(body), CommandId.DELIVER_SM, 0, seq) + body
        elif kind == "bad_tlv":
            good = encode(DeliverSm(sequence_number=seq, source_addr="1", destination_addr="2"))
            tlv = struct.pack(">HH", Tag.RECEIPTED_MESSAGE_ID, 40) + b"ab"
            body = good[16:] + tlv
            raw = HEADER.pack(16 + len(body), CommandId.DELIVER_SM, 0, seq) + body
        else:
            raise ValueError(f"unknown malformed kind {kind!r}")
        connection.write_raw(raw)
        return raw

    def inject_mo(
        self,
        source: str,
        destination: str,
        text: str | bytes,
        data_coding: int = 0,
        *,
        concatenated: bool = False,
        parts_order: Sequence[int] | None = None,
        system_id: str | None = None,
        reference: int | None = None,
        part_octets: int | None = None,
        tlvs: Sequence[Tlv] = (),
    ) -> list[Delivery]:
        """Queue an MO message for a receiver bind of ``system_id`` (any bind when None and
        no single account decides). Returns its parts as Delivery, in sending order.

        ``concatenated`` splits behind an 8-bit UDH (reference ``reference`` or the next of
        the simulator's own); ``parts_order`` sends the parts in that order, 1-based
        (``(2, 1, 3)``) — SMSCs do not promise order. Text encodes per ``data_coding``.
        """
        if reference is None:
            self._mo_reference = (self._mo_reference + 1) % 256
            reference = self._mo_reference
        parts = mo_parts(
            source,
            destination,
            text,
            data_coding,
            concatenated=concatenated,
            reference=reference,
            part_octets=part_octets,
            tlvs=tlvs,
        )
        order = list(parts_order) if parts_order is not None else list(range(1, len(parts) + 1))
        if sorted(order) != list(range(1, len(parts) + 1)):
            raise ValueError(f"parts_order {order} is not a permutation of 1..{len(parts)}")
        if system_id is None and len(self.config.accounts) == 1:
            system_id = self.config.accounts[0].system_id
        deliveries = [Delivery("mo", parts[number - 1], system_id) for number in order]
        for delivery in deliveries:
            self._enqueue(delivery)
        return deliveries

    # --- internals: connections ------------------------------------------------------------

    def _connection_made(self, connection: SimConnection) -> None:
        if self._closed:
            connection.abort("simulator closed")
            return
        self.connections[connection.id] = connection
        self._open[connection.id] = connection
        self.connects_total += 1
        log.debug("connection #%d from %s", connection.id, connection.peer)
        connection.arm_idle_timer()
        self._notify()

    def _connection_lost(self, connection: SimConnection) -> None:
        self.disconnects_total += 1
        self._open.pop(connection.id, None)
        if not self.config.record:
            # A long-running `smppgw simulate` must not keep every connection it ever had.
            self.connections.pop(connection.id, None)
        log.debug("connection #%d closed: %s", connection.id, connection.close_reason)
        # An SMSC redelivers what was never answered; keep the original order.
        pending = list(connection.outstanding.values())
        connection.outstanding.clear()
        for delivery in reversed(pending):
            self._queues.setdefault(delivery.system_id, deque()).appendleft(delivery)
        if pending:
            self._schedule_pump()
        self._notify()

    def _bound(self, connection: SimConnection) -> None:
        self.binds_total += 1
        log.debug(
            "connection #%d bound %s as %s",
            connection.id,
            connection.system_id,
            connection.bind_kind,
        )
        self._schedule_pump()
        self._notify()

    def _unbound(self, connection: SimConnection) -> None:
        self.unbinds_total += 1
        self._notify()

    def _record_received(
        self, connection: SimConnection, pdu: Pdu | None, raw: bytes, now: float
    ) -> None:
        self.received_total += 1
        submit = type(pdu) in _SUBMITS
        if submit:
            self.submits_total += 1
        if self.config.record:
            record = Record(connection.id, pdu, raw, now)
            self.received.append(record)
            if submit:
                self.submits.append(record)
        if self._waiters:
            self._notify()

    def _record_sent(
        self, connection: SimConnection, pdu: Pdu | None, raw: bytes, now: float
    ) -> None:
        self.sent_total += 1
        if self.config.record:
            self.sent.append(Record(connection.id, pdu, raw, now))

    # --- internals: answers ----------------------------------------------------------------

    def _set_message_state(self, message_id: str, state: MessageState) -> None:
        messages = self.messages
        messages[message_id] = state
        if not self.config.record and len(messages) > self.config.message_states_kept:
            oldest, _ = messages.popitem(last=False)  # the oldest
            self._origins.pop(oldest, None)

    def _cancel(self, pdu: CancelSm) -> int:
        """The status of a cancel_sm: ESME_ROK when ``pdu.message_id`` names a message still
        pending delivery whose addresses match those given (§4.9.1: "used for verification
        purposes"); its scheduled receipts are dropped."""
        message_id = pdu.message_id
        if self.messages.get(message_id) not in (MessageState.ENROUTE, MessageState.ACCEPTED):
            return _S.ESME_RCANCELFAIL
        source, destination = self._origins.get(message_id, ("", ""))
        if (pdu.source_addr and pdu.source_addr != source) or (
                pdu.destination_addr and pdu.destination_addr != destination):
            return _S.ESME_RCANCELFAIL
        self._set_message_state(message_id, MessageState.DELETED)
        for handle in self._receipt_timers.pop(message_id, ()):
            handle.cancel()
        self.cancelled.append(message_id)
        return _S.ESME_ROK

    @property
    def pending_receipts(self) -> int:
        """Receipts scheduled and not yet sent."""
        return sum(len(timers) for timers in self._receipt_timers.values())

    def _new_message_id(self) -> str:
        self._id_counter += 1
        fmt = self.config.id_format
        if fmt == "uuid":
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        value = self._id_base + self._id_counter
        if fmt == "hex":
            return f"{value:010x}"
        return str(value)

    def _submit_status(self, connection: SimConnection, now: float) -> int:
        """ESME_ROK, or the fault that answers this submit instead."""
        faults = self._faults
        if faults.throttle_above is not None:
            bucket = self._bucket_for(connection, faults.throttle_above, faults.throttle_scope)
            if not bucket.try_take(now):
                self.throttled_total += 1
                return _S.ESME_RTHROTTLED
        if self._scripted:
            status = self._scripted.popleft()
            if status == _S.ESME_RMSGQFUL:
                self.queue_full_total += 1
            return status
        if (
            faults.queue_full_every is not None
            and self.submits_total % faults.queue_full_every == 0
        ):
            self.queue_full_total += 1
            return _S.ESME_RMSGQFUL
        return _S.ESME_ROK

    def _bucket_for(self, connection: SimConnection, rate: float, scope: str) -> TokenBucket:
        bucket = self._server_bucket if scope == "server" else connection._bucket
        if bucket is None:
            bucket = TokenBucket(rate)
        elif bucket.rate != rate:
            bucket.set_rate(self.loop.time(), rate, max(1.0, rate))
        if scope == "server":
            self._server_bucket = bucket
        else:
            connection._bucket = bucket
        return bucket

    # --- internals: receipts and deliveries ------------------------------------------------

    def _schedule_receipts(self, trigger: _ReceiptTrigger) -> None:
        if self._closed:
            return
        plan = self._receipt_plan
        final = choose_outcome(plan, self._rng)
        stages = receipt_stages(plan, final)
        delay = plan.delay
        for index, outcome in enumerate(stages):
            if index:
                delay += plan.final_delay
            if delay <= 0:
                self._emit_receipt(trigger, outcome)
            else:
                self._receipt_timers.setdefault(trigger.message_id, []).append(
                    self.loop.call_later(delay, self._emit_receipt, trigger, outcome))

    def _emit_receipt(self, trigger: _ReceiptTrigger, outcome: Outcome) -> None:
        timers = self._receipt_timers.get(trigger.message_id)
        if timers:
            timers.pop(0)   # this one: a message's stages fire in the order they were set
            if not timers:
                del self._receipt_timers[trigger.message_id]
        if self._closed or self.messages.get(trigger.message_id) == MessageState.DELETED:
            return
        pdu = build_receipt(
            trigger.submit,
            trigger.message_id,
            outcome,
            self._receipt_plan.style,
            submitted_at_wall=trigger.submitted_at_wall,
            done_at_wall=datetime.datetime.now(datetime.UTC),
        )
        self._set_message_state(trigger.message_id, outcome.state)
        delivery = Delivery(
            "receipt",
            pdu,
            trigger.connection.system_id,
            message_id=trigger.message_id,
            stat=outcome.stat,
            origin_connection_id=trigger.connection.id,
        )
        self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        if self.config.record:
            self.deliveries.append(delivery)
        self._queues.setdefault(delivery.system_id, deque()).append(delivery)
        self._schedule_pump()

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled and self._loop is not None and not self._closed:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Send queued deliveries to receivers with window room, in queue order per system."""
        self._pump_scheduled = False
        if self._closed or self._faults.silent:
            return
        sent_any = False
        for system_id, queue in self._queues.items():
            while queue:
                delivery = queue[0]
                connection = self._pick_receiver(system_id, delivery)
                if connection is None:
                    break
                queue.popleft()
                self._send_delivery(connection, delivery)
                sent_any = True
        if sent_any:
            self._notify()

    def _receivers(self, system_id: str | None) -> list[SimConnection]:
        return [
            c
            for c in self._open.values()
            if c.can_receive and (system_id is None or c.system_id == system_id)
        ]

    def _pick_receiver(self, system_id: str | None, delivery: Delivery) -> SimConnection | None:
        receivers = self._receivers(system_id)
        if not receivers:
            return None
        routing = self._receipt_plan.routing if delivery.kind == "receipt" else "round_robin"
        origin = delivery.origin_connection_id
        if routing == "same":
            preferred = [c for c in receivers if c.id == origin]
            if preferred:
                receivers = preferred
        elif routing == "other":
            others = [c for c in receivers if c.id != origin]
            if others:
                receivers = others
        window = self.config.deliver_window
        ready = [
            c for c in receivers if len(c.outstanding) < window and not c.paused and not c._silent()
        ]
        if not ready:
            return None
        self._rr += 1
        return ready[self._rr % len(ready)]

    def _send_delivery(self, connection: SimConnection, delivery: Delivery) -> None:
        seq = connection.next_sequence_number()
        pdu = dataclasses.replace(delivery.pdu, sequence_number=seq)
        delivery.connection_id = connection.id
        delivery.sequence_number = seq
        delivery.attempts += 1
        delivery.status = None
        connection.outstanding[seq] = delivery
        self.delivered_total += 1
        connection.write_pdu(pdu)

    def _delivery_answered(
        self, connection: SimConnection, delivery: Delivery, status: int
    ) -> None:
        delivery.status = status
        if status == _S.ESME_ROK:
            delivery.acknowledged = True
            self.acknowledged_total += 1
        else:
            # The ESME could not take it (e.g. its store failed): redeliver later, as an
            # SMSC does with a transient deliver_sm_resp error.
            self.loop.call_later(self._receipt_plan.retry_delay, self._requeue, delivery)
        self._schedule_pump()
        self._notify()

    def _requeue(self, delivery: Delivery) -> None:
        if not self._closed:
            self._queues.setdefault(delivery.system_id, deque()).append(delivery)
            self._schedule_pump()
