"""One bind's submit throughput: smppgw's BindPool against four other clients, same run.

The SMSC is smppgw's simulator (recording off) in a child process (``_simproc.py``), so the CPU
seconds reported here (``time.process_time()`` of this process, every thread) are the client's
alone. Every client binds once over plain TCP on 127.0.0.1 and sends N copies of one
160-character GSM submit_sm with registered_delivery=0 (no receipts):

  smppgw      ``BindPool`` (profile "generic", binds=1, window=W, no rate limit); W submitter
              coroutines each ``await pool.submit(SubmitSm(...))``, the text GSM-encoded per
              segment with ``smppgw.smpp.text.encode_gsm7``. The row "+metrics +apply" adds
              what the daemon does per segment around submit: metrics on, and each answer
              decided (flow.outbound) and applied to the bind's flow control (pool.apply).
  aiosmpplib  ``ESME`` fed by a broker, counting submit_sm_resp in a hook; throttle handler
              and rate limiter off; its ``SimpleCorrelator`` minus receipt correlation (none
              is asked for; kept, it sweeps every segment sent so far on each send, and a run
              of 10,000 slows to about 140/s). It has no window setting, so it runs twice: with
              the broker handing out a segment only while fewer than W await their response
              (the same window), and as it is (the broker never holds back), where the table
              shows the most segments it had in flight. A client that reports errors (say
              aiosmpplib expiring requests it has not seen answered within 15 s) gave up: its
              row shows why, and no rate.
  smpplib     the synchronous ``Client`` over ``send_message`` / ``read_pdu``: a sliding window
              of W (W sends, then one more per response read); W=1 is the usual lockstep.
  smpp34      the Rust-backed asyncio ``Client`` (window_size=W): W coroutines each
              ``await smsc.submit_sm(...)`` with the GSM octets. Its tokio threads are this
              process's, so they are in the CPU column.
  node-smpp   npm ``smpp``'s client in a node child process (``_nodesmpp.js``), when ``node``
              is on PATH: installed by this script with npm into a temporary folder, removed at
              the end (nothing from npm is kept). W senders, each sending its next submit_sm
              when its last is answered, the text GSM-encoded by node-smpp; its CPU column is
              the node process's own (``process.cpuUsage``) over its timed phase.

Scenarios: (a) no latency, window 10 (and smpplib lockstep); (b) no latency, window 100;
(c) the simulator answers each submit_sm after 50 ms, window 10, fewer segments: the rate
against the window/latency bound (10 / 0.05 s = 200/s) is the window efficiency.

Each run binds, warms up with a tenth of N (at most 1,000, untimed), then times N segments
from the first send to the last response. Counts are checked: the simulator's accepted count
over the timed part must equal N and what the client saw answered ESME_ROK, so a client that
drops work cannot look fast. The rows behind the summary lines (smppgw in every scenario,
each other client at window W in (a)) are run ``--runs`` times (default 3) and show the
medians, since the machines these run on are shared and noisy. Columns: segments/s; client
CPU seconds per 10,000 segments; the simulator process's CPU use over the same interval (near
100% means the SMSC, not the client, set the pace).

Usage: python benchmarks/session.py [--segments 10000] [--latency-segments 1000]
       [--latency 0.05] [--window 10] [--big-window 100] [--runs 3] [--profile N]
``--profile N`` runs smppgw's scenario (a) once more under cProfile and prints the N most
expensive functions (by own time) before the summary. The summary lines come last:
``bind w10: N seg/s, C µs CPU/seg``, ``bind w100: N seg/s``, ``window efficiency: N%`` and
one ``peer NAME w10: N seg/s, C µs CPU/seg`` per other client measured (the W of (a) and (b)
is in the names even when --window or --big-window change it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiosmpplib
import smpp34
import smpplib.client
import smpplib.exceptions
from _simproc import JsonLineChild, SimulatorProcess
from aiosmpplib import (
    ESME,
    AbstractBroker,
    AbstractHook,
    AbstractThrottleHandler,
    PhoneNumber,
    SmppCommand,
    SmppCommandStatus,
    SmppMessage,
    SmppSessionState,
)
from aiosmpplib.correlator import SimpleCorrelator
from prometheus_client import CollectorRegistry

from smppgw.config import ProviderConfig, parse_config
from smppgw.flow.outbound import decide_answer
from smppgw.metrics import Metrics
from smppgw.pool.pool import BindPool
from smppgw.pool.slot import Inbound
from smppgw.smpp.pdu import SubmitSm
from smppgw.smpp.text import encode_gsm7

TEXT = ("Hello from smppgw! Your code is 482913. " * 4)[:160]
SOURCE = "Acme"
DESTINATION = "5511999990000"
SYSTEM_ID = "bench"
PASSWORD = "bench-pw"  # SMPP 3.4 §4.1.1: at most 8 octets (aiosmpplib checks)
BIND_TIMEOUT = 10.0  # seconds for any client to connect and bind
RUN_TIMEOUT = 120.0  # seconds for one timed phase, whatever the client
SOCKET_TIMEOUT = 10.0  # seconds smpplib waits for one PDU
STOP_TIMEOUT = 10.0  # seconds for a client to unbind and close
NPM_TIMEOUT = 300.0  # seconds for npm to install node-smpp
NODE_SMPP = "smpp@0.5.1"  # node-smpp, the version measured
WARMUP_CAP = 1000


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    latency: float
    window: int
    segments: int

    @property
    def label(self) -> str:
        return f"({self.key}) {self.latency * 1000:.0f} ms"


@dataclass(slots=True)
class Timed:
    """What one client reported over its timed phase."""

    ok: int  # submit_sm_resp with ESME_ROK
    failed: int  # any other answer
    seconds: float  # wall clock, first send to last response
    cpu: float  # this process's CPU seconds over the same interval
    smsc_before: dict[str, float]
    smsc_after: dict[str, float]
    max_in_flight: int | None = None
    errors: list[str] = field(default_factory=list)  # what the client library reported


@dataclass(slots=True)
class Row:
    """One client in one scenario: one run, or ``--runs`` of them shown by their medians."""

    client: str
    scenario: Scenario
    window: str
    runs: list[Timed] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # any run's: the row has no figures
    gave_up: bool = False  # the client library failed (a result), not a count mismatch

    @property
    def valid(self) -> bool:
        return bool(self.runs) and not self.problems

    def _median(self, figure: Callable[[Timed], float]) -> float:
        """The median over the runs; NaN when any run did not complete as counted."""
        if not self.valid:
            return float("nan")
        return statistics.median(figure(timed) for timed in self.runs)

    @property
    def rate(self) -> float:
        """Segments/s answered ESME_ROK."""
        return self._median(lambda timed: timed.ok / timed.seconds)

    @property
    def cpu_per_10k(self) -> float:
        segments = self.scenario.segments
        return self._median(lambda timed: timed.cpu / segments * 10_000)

    @property
    def cpu_per_segment_us(self) -> float:
        return self.cpu_per_10k * 100  # seconds per 10,000 -> µs per one

    @property
    def smsc_cpu_share(self) -> float:
        return self._median(
            lambda timed: (timed.smsc_after["cpu"] - timed.smsc_before["cpu"]) / timed.seconds
        )

    @property
    def max_in_flight(self) -> int | None:
        counts = [timed.max_in_flight for timed in self.runs if timed.max_in_flight is not None]
        return max(counts) if counts else None


Probe = Callable[[], dict[str, float]]


def warmup_count(segments: int, window: int) -> int:
    return min(WARMUP_CAP, max(2 * window, segments // 10))


# --- smppgw -----------------------------------------------------------------------------------


def smppgw_provider(port: int, window: int, state_dir: Path) -> ProviderConfig:
    config = parse_config(
        {
            "gateway": {"state_dir": str(state_dir)},
            "provider": [{
                "name": "bench",
                "profile": "generic",
                "system_id": SYSTEM_ID,
                "password_env": "SMPPGW_BENCH_PASSWORD",
                "hosts": [f"127.0.0.1:{port}"],
                "tls": False,
                "binds": 1,
                "window": window,
                "routes": ["55"],
            }],
        },
        base_dir=state_dir,
        environ={"SMPPGW_BENCH_PASSWORD": PASSWORD},
    )
    return config.providers[0]


def smppgw_segment() -> SubmitSm:
    return SubmitSm(
        source_addr_ton=5,
        source_addr=SOURCE,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=DESTINATION,
        registered_delivery=0,
        data_coding=0,
        short_message=encode_gsm7(TEXT),
    )


async def run_smppgw(
    port: int,
    window: int,
    segments: int,
    probe: Probe,
    profiler: cProfile.Profile | None = None,
    *,
    daemon_path: bool = False,
) -> Timed:
    """``daemon_path``: what the daemon adds per segment around ``submit`` too: metrics on
    (every PDU counted, each answer's status and latency), and each answer decided
    (flow.outbound.decide_answer) and applied to the bind's flow control (``pool.apply``), as
    the dispatcher does."""

    def on_inbound(inbound: Inbound) -> None:
        inbound.acknowledge()  # no receipts are asked for; answer anything that comes anyway

    metrics = Metrics(CollectorRegistry(), process_metrics=False) if daemon_path else None
    with tempfile.TemporaryDirectory(prefix="smppgw-bench-") as state_dir:
        pool = BindPool(smppgw_provider(port, window, Path(state_dir)), on_inbound,
                        metrics=metrics)
        running = asyncio.create_task(pool.run())
        try:
            async with asyncio.timeout(BIND_TIMEOUT):
                while pool.bound_count < 1:
                    await asyncio.sleep(0.005)

            async def phase(count: int) -> tuple[int, int]:
                claimed = ok = failed = 0

                async def submitter() -> None:
                    nonlocal claimed, ok, failed
                    while claimed < count:
                        claimed += 1
                        result = await pool.submit(smppgw_segment())
                        if daemon_path:
                            pool.apply(result, decide_answer(
                                result.status, result.message_id, attempts=0))
                        if result.status == 0:
                            ok += 1
                        else:
                            failed += 1

                async with asyncio.timeout(RUN_TIMEOUT), asyncio.TaskGroup() as group:
                    for _ in range(window):
                        group.create_task(submitter())
                return ok, failed

            await phase(warmup_count(segments, window))
            return await timed(lambda: phase(segments), probe, profiler)
        finally:
            await pool.close(STOP_TIMEOUT)
            await running


async def timed(
    work: Callable[[], Awaitable[tuple[int, int]]],
    probe: Probe,
    profiler: cProfile.Profile | None = None,
) -> Timed:
    """Run ``work`` between two probes of the simulator, timing wall clock and our CPU."""
    before = probe()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        ok, failed = await work()
    finally:
        if profiler is not None:
            profiler.disable()
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return Timed(ok, failed, wall1 - wall0, cpu1 - cpu0, before, probe())


# --- aiosmpplib -------------------------------------------------------------------------------


class _Counter:
    """Shared by the broker and the hook: segments handed out, in flight, answered."""

    def __init__(self, window: int | None) -> None:
        self.window = window
        self.room = asyncio.Semaphore(window) if window is not None else None
        self.to_hand_out = 0
        self.more = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.ok = 0
        self.failed = 0
        self.target = 0
        self.done = asyncio.Event()
        self.errors: list[str] = []

    def start_phase(self, count: int) -> None:
        self.ok = self.failed = 0
        self.max_in_flight = self.in_flight
        self.target = count
        self.done.clear()
        self.to_hand_out += count
        self.more.set()

    def answered(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        if self.room is not None:
            self.room.release()
        if self.ok + self.failed >= self.target:
            self.done.set()


class _Broker(AbstractBroker):
    """Builds each SubmitSm when the ESME asks for it; with a window, only while there is room."""

    def __init__(self, counter: _Counter) -> None:
        self.counter = counter

    async def enqueue(self, message: SmppMessage) -> None:
        raise NotImplementedError("the benchmark feeds the ESME through start_phase")

    async def dequeue(self) -> SmppMessage:
        counter = self.counter
        while counter.to_hand_out == 0:
            counter.more.clear()
            await counter.more.wait()
        if counter.room is not None:
            await counter.room.acquire()
        counter.to_hand_out -= 1
        return aiosmpplib.SubmitSm(
            short_message=TEXT,
            source=PhoneNumber(SOURCE, ton=aiosmpplib.TON.ALPHANUMERIC),
            destination=PhoneNumber(
                DESTINATION, ton=aiosmpplib.TON.INTERNATIONAL, npi=aiosmpplib.NPI.ISDN
            ),
            registered_delivery=0,
        )


class _Hook(AbstractHook):
    def __init__(self, counter: _Counter) -> None:
        self.counter = counter

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        if smpp_message.smpp_command == SmppCommand.SUBMIT_SM:
            counter = self.counter
            counter.in_flight += 1
            counter.max_in_flight = max(counter.max_in_flight, counter.in_flight)

    async def received(
        self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str
    ) -> None:
        if smpp_message is None:
            return
        command = smpp_message.smpp_command
        if command == SmppCommand.SUBMIT_SM_RESP:
            self.counter.answered(smpp_message.command_status == SmppCommandStatus.ESME_ROK)
        elif command == SmppCommand.GENERIC_NACK:
            self.counter.answered(False)

    async def send_error(
        self, smpp_message: SmppMessage, error: Exception, client_id: str
    ) -> None:
        self.counter.errors.append(repr(error))
        self.counter.done.set()


class _LogTally(logging.Handler):
    """aiosmpplib's log handler: counts ERROR records and keeps the first, instead of printing
    one line per uncorrelated response (thousands when its correlator expires requests)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
            if not self.first:
                self.first = str(record.msg).partition(" >>>")[0][:80]
        else:
            print(f"aiosmpplib: {record.getMessage()[:200]}", file=sys.stderr)


class _NoReceiptCorrelator(SimpleCorrelator):
    """SimpleCorrelator without receipt correlation, since no receipt is asked for here.

    SimpleCorrelator keeps every accepted submit_sm for receipt correlation (for 3 days) and
    sweeps that store on every send and every response, so one ESME's cost per segment grows
    with the number it has sent: about 140/s after 10,000 segments, against about 1,800/s over
    2,000. Requests awaiting their response are still stored, swept and expired as usual."""

    async def put_delivery(self, smsc_message_id: str, submit_sm: aiosmpplib.SubmitSm) -> None:
        return None


class _NoThrottle(AbstractThrottleHandler):
    """Never holds a request back (the simulator never throttles here)."""

    async def throttled(self) -> None:
        return None

    async def not_throttled(self) -> None:
        return None

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


async def run_aiosmpplib(
    port: int, window: int | None, segments: int, probe: Probe
) -> Timed:
    counter = _Counter(window)
    logged = _LogTally()
    esme = ESME(
        smsc_host="127.0.0.1",
        smsc_port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        log_level="WARNING",
        log_handler=logged,
        hook=_Hook(counter),
        broker=_Broker(counter),
        throttle_handler=_NoThrottle(),
        correlator=_NoReceiptCorrelator(SYSTEM_ID),
        rate_limiter=None,
        enquire_link_interval=300.0,
        socket_timeout=SOCKET_TIMEOUT,
    )
    task = asyncio.create_task(esme.start(), name="aiosmpplib ESME")
    try:
        async with asyncio.timeout(BIND_TIMEOUT):
            while esme.session_state != SmppSessionState.BOUND_TRX:
                if task.done():
                    task.result()  # raises what ended it
                    raise RuntimeError("aiosmpplib's ESME stopped before binding")
                await asyncio.sleep(0.005)

        async def phase(count: int) -> tuple[int, int]:
            counter.start_phase(count)
            async with asyncio.timeout(RUN_TIMEOUT):
                await counter.done.wait()  # every answer counted, or the first send_error
            return counter.ok, counter.failed

        await phase(warmup_count(segments, window or 10))
        if counter.errors or logged.errors:
            raise RuntimeError(f"aiosmpplib failed in the warm-up: {counter.errors[:1]}"
                               f"{logged.first}")
        result = await timed(lambda: phase(segments), probe)
        result.max_in_flight = counter.max_in_flight
        if counter.errors:
            result.errors.append(f"aiosmpplib reported {len(counter.errors):,} send_error "
                                 f"(first {counter.errors[0]})")
        if logged.errors:
            result.errors.append(f"logged {logged.errors:,} errors (first {logged.first!r})")
        return result
    finally:
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await esme.stop()
        except TimeoutError:
            pass
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- smpplib ----------------------------------------------------------------------------------


def run_smpplib(port: int, window: int, segments: int, probe: Probe) -> Timed:
    """Sliding window over smpplib's own send_message/read_pdu; window 1 is lockstep."""
    client = smpplib.client.Client(
        "127.0.0.1", port, timeout=SOCKET_TIMEOUT, allow_unknown_opt_params=True
    )
    short_message = TEXT.encode("ascii")  # GSM 03.38 and ASCII agree on every character here
    client.connect()
    try:
        client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)

        def phase(count: int) -> tuple[int, int]:
            sent = ok = failed = in_flight = 0
            deadline = time.monotonic() + RUN_TIMEOUT
            while ok + failed < count:  # each pass reads one PDU or raises (socket timeout)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"smpplib: {ok + failed:,} of {count:,} answered "
                                       f"after {RUN_TIMEOUT:.0f} s")
                while in_flight < window and sent < count:
                    client.send_message(
                        source_addr_ton=5,
                        source_addr=SOURCE,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        destination_addr=DESTINATION,
                        data_coding=0,
                        registered_delivery=0,
                        short_message=short_message,
                    )
                    sent += 1
                    in_flight += 1
                pdu = client.read_pdu()
                if pdu.command in ("submit_sm_resp", "generic_nack"):
                    in_flight -= 1
                    if pdu.command == "submit_sm_resp" and pdu.status == 0:
                        ok += 1
                    else:
                        failed += 1
                else:
                    raise RuntimeError(f"smpplib got an unexpected {pdu.command}")
            return ok, failed

        phase(warmup_count(segments, window))
        before = probe()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ok, failed = phase(segments)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        result = Timed(ok, failed, wall1 - wall0, cpu1 - cpu0, before, probe())
        with contextlib.suppress(
            smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError
        ):
            client.unbind()
        return result
    finally:
        client.disconnect()


# --- smpp34 -----------------------------------------------------------------------------------


async def run_smpp34(port: int, window: int, segments: int, probe: Probe) -> Timed:
    """smpp34's asyncio Client: W coroutines awaiting one submit_sm each at a time."""
    client = smpp34.Client(
        "127.0.0.1", port, SYSTEM_ID, PASSWORD, bind_type="TRX", window_size=window
    )
    short_message = encode_gsm7(TEXT)
    try:
        async with asyncio.timeout(BIND_TIMEOUT):
            smsc = await client.connect()

        async def phase(count: int) -> tuple[int, int]:
            claimed = ok = failed = 0

            async def submitter() -> None:
                nonlocal claimed, ok, failed
                while claimed < count:
                    claimed += 1
                    response = await smsc.submit_sm(
                        DESTINATION,
                        short_message,
                        source_addr=SOURCE,
                        source_addr_ton=5,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        registered_delivery=0,
                        data_coding=0,
                    )
                    if response.is_success:
                        ok += 1
                    else:
                        failed += 1

            async with asyncio.timeout(RUN_TIMEOUT), asyncio.TaskGroup() as group:
                for _ in range(window):
                    group.create_task(submitter())
            return ok, failed

        await phase(warmup_count(segments, window))
        result = await timed(lambda: phase(segments), probe)
        with contextlib.suppress(Exception):  # its unbind is not measured
            async with asyncio.timeout(STOP_TIMEOUT):
                await smsc.unbind()
        return result
    finally:
        async with asyncio.timeout(STOP_TIMEOUT):
            await client.stop()


# --- node-smpp --------------------------------------------------------------------------------


def install_node_smpp(folder: Path) -> str | None:
    """npm-install node-smpp into ``folder``; None when done, else why not."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not on PATH"
    try:
        subprocess.run(
            [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
             "--no-package-lock", "--silent", NODE_SMPP],
            check=True, capture_output=True, timeout=NPM_TIMEOUT, text=True,
        )
    except subprocess.TimeoutExpired:
        return f"npm install {NODE_SMPP} took over {NPM_TIMEOUT:.0f} s"
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        return f"npm install {NODE_SMPP} failed: {detail[-1] if detail else exc.returncode}"
    return None


def run_node_smpp(
    node: str, module_dir: Path, port: int, window: int, segments: int, probe: Probe
) -> Timed:
    """node-smpp in its own process: it reports its timed phase (wall and CPU seconds)."""
    script = Path(__file__).resolve().parent / "_nodesmpp.js"
    command = [node, str(script), str(module_dir), str(port), str(window),
               str(warmup_count(segments, window)), str(segments), SYSTEM_ID, PASSWORD, TEXT]
    with JsonLineChild(command) as child:
        ready = child.read(BIND_TIMEOUT + RUN_TIMEOUT)
        if "error" in ready:
            raise RuntimeError(f"node-smpp: {ready['error']}")
        before = probe()
        child.send_line("go")
        report = child.read(RUN_TIMEOUT)
        after = probe()
    if "error" in report:
        raise RuntimeError(f"node-smpp: {report['error']}")
    return Timed(int(report["ok"]), int(report["failed"]),  # type: ignore[call-overload]
                 float(report["seconds"]), float(report["cpu"]),  # type: ignore[arg-type]
                 before, after)


# --- the run ----------------------------------------------------------------------------------


def check(row: Row, timed: Timed, label: str) -> None:
    """The simulator must have accepted exactly what the client counted, and N of them.

    A client library that reported errors (or raised) gave up: its row is a result, shown with
    the reason and no rate. Any other mismatch means the counts cannot be trusted."""
    segments = row.scenario.segments
    if timed.errors:
        row.gave_up = True
        row.problems.append(f"{label}{timed.ok:,} of {segments:,} submit_sm_resp ok came back, "
                            "but " + " and ".join(timed.errors))
        return
    accepted = int(timed.smsc_after["accepted"] - timed.smsc_before["accepted"])
    submits = int(timed.smsc_after["submits"] - timed.smsc_before["submits"])
    if timed.ok != segments or timed.failed:
        row.problems.append(
            f"{label}client counted {timed.ok} ok + {timed.failed} failed of {segments}")
    if accepted != timed.ok:
        row.problems.append(f"{label}simulator accepted {accepted}, client counted {timed.ok} ok")
    if submits != segments:
        row.problems.append(f"{label}simulator received {submits} submit_sm, expected {segments}")


def measure(
    rows: list[Row],
    client: str,
    scenario: Scenario,
    window_label: str,
    run: Callable[[], Timed],
    runs: int = 1,
) -> Row:
    """``runs`` runs into one row; a run that raises makes the row one that gave up, and the
    other rows still run."""
    print(f"  {client:<24} {scenario.label:<9} window {window_label} ...", end="", flush=True)
    row = Row(client, scenario, window_label)
    for number_of in range(runs):
        label = f"run {number_of + 1}: " if runs > 1 else ""
        try:
            timed_run = run()
        except Exception as exc:
            row.problems.append(f"{label}raised {exc!r}"[:300])
            row.gave_up = True
            break
        row.runs.append(timed_run)
        check(row, timed_run, label)
        if row.problems:
            break
        print(f" {timed_run.ok / timed_run.seconds:,.0f}/s", end="", flush=True)
    rows.append(row)
    print(f" (median {row.rate:,.0f}/s)" if row.valid and runs > 1 else
          "" if row.valid else f" {status(row)}")
    return row


def status(row: Row) -> str:
    if row.valid:
        return "ok"
    return ("gave up: " if row.gave_up else "FAILED: ") + "; ".join(row.problems)


def number(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)  # NaN: the run has no figure


def print_table(rows: list[Row]) -> None:
    print()
    header = (
        f"{'client':<24} {'scenario':<9} {'window':<22} {'segments':>8} {'runs':>4} "
        f"{'segments/s':>11} {'CPU s/10k':>10} {'SMSC CPU':>9}  check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        window = row.window
        if row.max_in_flight is not None:
            window += f" (max {row.max_in_flight:,})"
        print(
            f"{row.client:<24} {row.scenario.label:<9} {window:<22} {row.scenario.segments:>8,} "
            f"{len(row.runs):>4} {number(row.rate, ',.0f'):>11} "
            f"{number(row.cpu_per_10k, '.2f'):>10} {number(row.smsc_cpu_share, '.0%'):>9}  "
            f"{status(row)}"
        )


def profile_smppgw(sim: SimulatorProcess, scenario: Scenario, top: int) -> str:
    profiler = cProfile.Profile()
    asyncio.run(run_smppgw(sim.port, scenario.window, scenario.segments, sim.stats, profiler))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10_000, help="per zero-latency run")
    parser.add_argument("--latency-segments", type=int, default=1_000, help="per 50 ms run")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds, scenario (c)")
    parser.add_argument("--window", type=int, default=10, help="scenarios (a) and (c)")
    parser.add_argument("--big-window", type=int, default=100, help="scenario (b)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs behind each summary line (their median is shown)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions of smppgw in scenario (a)")
    args = parser.parse_args()
    if min(args.segments, args.latency_segments, args.window, args.big_window, args.runs) < 1:
        parser.error("segment counts, windows and runs must be at least 1")
    if not args.latency > 0:
        parser.error("--latency must be positive")

    a = Scenario("a", 0.0, args.window, args.segments)
    b = Scenario("b", 0.0, args.big_window, args.segments)
    c = Scenario("c", args.latency, args.window, args.latency_segments)
    runs = args.runs
    rows: list[Row] = []
    peers: dict[str, Row] = {}  # the other clients' rows at window W in (a), by peer name
    notes: list[str] = []
    profile_text = ""
    node = shutil.which("node")
    print("one bind, 160-char GSM submit_sm, registered_delivery=0; "
          f"python {sys.version.split()[0]}")
    with SimulatorProcess() as sim, tempfile.TemporaryDirectory(prefix="smppgw-npm-") as npm_dir:
        print(f"SMSC simulator: pid {sim.pid}, 127.0.0.1:{sim.port}")
        port, probe = sim.port, sim.stats
        node_problem = "node is not on PATH" if node is None else install_node_smpp(
            Path(npm_dir))
        if node_problem is not None:
            notes.append(f"node-smpp not measured: {node_problem}")

        def smppgw(s: Scenario, daemon_path: bool = False) -> Callable[[], Timed]:
            return lambda: asyncio.run(
                run_smppgw(port, s.window, s.segments, probe, daemon_path=daemon_path))

        def aio(s: Scenario, window: int | None) -> Callable[[], Timed]:
            return lambda: asyncio.run(run_aiosmpplib(port, window, s.segments, probe))

        def sync(s: Scenario, window: int) -> Callable[[], Timed]:
            return lambda: run_smpplib(port, window, s.segments, probe)

        def rust(s: Scenario) -> Callable[[], Timed]:
            return lambda: asyncio.run(run_smpp34(port, s.window, s.segments, probe))

        def nodejs(s: Scenario) -> Callable[[], Timed]:
            assert node is not None
            return lambda: run_node_smpp(node, Path(npm_dir), port, s.window, s.segments, probe)

        sim.set_latency(0.0)
        ours_a = measure(rows, "smppgw BindPool", a, str(a.window), smppgw(a), runs)
        measure(rows, "smppgw +metrics +apply", a, str(a.window), smppgw(a, True))
        peers["aiosmpplib"] = measure(rows, "aiosmpplib ESME", a, f"{a.window} (broker)",
                                      aio(a, a.window), runs)
        measure(rows, "aiosmpplib ESME", a, "none", aio(a, None))
        peers["smpplib"] = measure(rows, "smpplib Client", a, f"{a.window} (pipelined)",
                                   sync(a, a.window), runs)
        measure(rows, "smpplib Client", a, "1 (lockstep)", sync(a, 1))
        peers["smpp34"] = measure(rows, "smpp34 Client", a, str(a.window), rust(a), runs)
        if node_problem is None:
            peers["node-smpp"] = measure(rows, "node-smpp", a, f"{a.window} (senders)",
                                         nodejs(a), runs)

        ours_b = measure(rows, "smppgw BindPool", b, str(b.window), smppgw(b), runs)
        measure(rows, "aiosmpplib ESME", b, f"{b.window} (broker)", aio(b, b.window))
        measure(rows, "smpplib Client", b, f"{b.window} (pipelined)", sync(b, b.window))
        measure(rows, "smpp34 Client", b, str(b.window), rust(b))
        if node_problem is None:
            measure(rows, "node-smpp", b, f"{b.window} (senders)", nodejs(b))

        sim.set_latency(c.latency)
        ours_c = measure(rows, "smppgw BindPool", c, str(c.window), smppgw(c), runs)
        measure(rows, "aiosmpplib ESME", c, f"{c.window} (broker)", aio(c, c.window))
        measure(rows, "smpplib Client", c, f"{c.window} (pipelined)", sync(c, c.window))

        if args.profile:
            sim.set_latency(0.0)
            try:
                profile_text = profile_smppgw(sim, a, args.profile)
            except Exception as exc:
                profile_text = f"the profiled run raised {exc!r}"

    print_table(rows)
    bound = c.window / c.latency
    print()
    print("window: (broker) = aiosmpplib's broker hands out a segment only while fewer than W")
    print("await their response (it has no window of its own); none = as it is, (max N) = the")
    print("most segments it had in flight. smpplib (pipelined) = W sends, then one per response.")
    print("node-smpp (senders) = W senders, each sending again when answered.")
    print(f"(c) bound: window / latency = {c.window} / {c.latency:g} s = {bound:,.0f}/s; smppgw "
          f"reached {number(ours_c.rate, ',.1f')}/s")
    for note in notes:
        print(note)
    if profile_text:
        print()
        print(f"cProfile of smppgw, scenario {a.label}, window {a.window}, "
              f"{a.segments:,} segments (own time):")
        print(profile_text.rstrip())
    # A peer that gave up is a result; smppgw failing, or counts that do not add up, is not.
    failed = [row for row in rows
              if not row.valid and (row.client.startswith("smppgw") or not row.gave_up)]
    headline = (ours_a, ours_b, ours_c)
    if failed or not all(row.valid for row in headline):
        print()
        print(f"check FAILED for {len(failed)} run(s); figures above are not valid")
    print(f"bind w{a.window}: {number(ours_a.rate, '.0f')} seg/s, "
          f"{number(ours_a.cpu_per_segment_us, '.1f')} µs CPU/seg")
    print(f"bind w{b.window}: {number(ours_b.rate, '.0f')} seg/s")
    print(f"window efficiency: {number(ours_c.rate / bound * 100, '.0f')}%")
    for name, row in peers.items():
        if row.valid:
            print(f"peer {name} w{a.window}: {row.rate:.0f} seg/s, "
                  f"{row.cpu_per_segment_us:.1f} µs CPU/seg")
    return 1 if failed or not all(row.valid for row in headline) else 0


if __name__ == "__main__":
    sys.exit(main())
