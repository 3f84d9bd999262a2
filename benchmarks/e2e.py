"""End to end: messages through the daemon's unix socket to the SMSC simulator on loopback.

Three processes, so each has its own CPU time: the daemon (``python -m smppgw run``, a generic
provider with 4 plain-TCP binds, window 10 by default, no rate limit, metrics off), the SMSC
simulator (``SmscSimulator`` with recording on, in a child process of this script) and this
process, the load generator (asyncio + aiohttp over the unix socket). ``--store`` picks the
daemon's store: ``sqlite`` (a file on disk under ``--dir``) or ``postgresql`` (a private server,
fsync on, started for the run under ``--dir``, or the database at ``--pg-url``).

Two phases, one after the other on the same daemon: batched (``--messages`` in requests of 100,
8 in flight), then single (``--single-messages``, one per request, 64 in flight). Every message
carries a unique client id in its text, so the simulator's record of each submit_sm (arrival
time, short_message) is matched to the moment its 200 ``accepted: true`` answer reached this
process. Per phase: accepted msg/s = accepted / (last accept - first send); submitted msg/s =
messages the simulator received / (last submit_sm - first send); p50/p99 of accept ->
submit_sm. Over the run: the daemon's CPU per accepted message (and PostgreSQL's, for a private
server), its peak RSS (VmHWM), and ``lost`` = accepted messages the simulator never received.
The ``check`` row, and the exit status (1), say when the run was not clean: anything lost,
refused or unanswered, or a daemon that did not exit 0 on SIGTERM. The daemon, the simulator
and a private PostgreSQL end with this process.
Receipts flow by default (the simulator sends a DELIVRD receipt ``--receipt-delay`` seconds
after each submit_sm_resp, and the daemon stores them while it sends); ``--receipts off``
sends with ``receipt: false`` instead. The last line is
``e2e[BACKEND] batched: N msg/s accepted, N msg/s submitted; single: N msg/s accepted, N msg/s
submitted; N µs/msg; lost N`` (on one line).

Usage: python benchmarks/e2e.py [--store sqlite|postgresql] [--pg-url URL] [--messages 20000]
       [--single-messages 10000] [--window 10] [--receipts on|off] [--dir /var/tmp]
       [--timeout 300] [--profile PREFIX]
``--profile`` runs the daemon under cProfile, every thread, timing each with its own CPU time
(time.thread_time): PREFIX.main.prof, PREFIX.<thread>.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

PASSWORD = "bench-pw"  # SMPP 3.4 §4.1.1: at most 8 octets
PROVIDER = "sim"
ROUTE = "46"
BINDS = 4
CLIENT_ID = re.compile(rb"e2e-([0-9]{7})")
START_TIMEOUT = 30.0  # seconds for a child to start, or the daemon to bind all its binds
REQUEST_TIMEOUT = 60.0  # seconds for one HTTP request
STOP_TIMEOUT = 30.0  # seconds for a child to exit after being asked to
STALL_TIMEOUT = 30.0  # seconds without a new submit_sm before the drain gives up


def client_id(index: int) -> str:
    return f"e2e-{index:07d}"


def message(index: int, receipt: bool) -> dict[str, object]:
    # Digits, letters, '-' and spaces are the same octets in GSM 03.38 and ASCII, so the
    # simulator finds the client id in short_message without decoding it.
    return {
        "id": client_id(index),
        "to": f"4670{index:07d}",
        "from": "Bench",
        "text": f"{client_id(index)} smppgw end to end benchmark, a typical one-part text",
        "receipt": receipt,
    }


# --- the simulator child ---------------------------------------------------------------------


async def simulator_main(receipt_delay: float) -> None:
    """Child process: run the simulator and answer line commands on stdin.

    ``count`` → ``count SUBMITS DELIVERED ACKNOWLEDGED``; ``dump PATH`` writes
    ``{"submits": [[index, wall_time], ...], ...}`` and answers ``dumped N``; ``quit`` or EOF
    stops. The first line written is ``port N``.
    """
    from smppgw.simulator import ReceiptPlan, SimulatorConfig, SmscSimulator

    plan = ReceiptPlan(delay=receipt_delay)
    sim = SmscSimulator(SimulatorConfig(record=True, receipts=plan, seed=1))
    await sim.start()
    loop = asyncio.get_running_loop()
    # Record.at is loop.time() when the octets arrived; this turns it into wall clock.
    wall_offset = time.time() - loop.time()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"port {sim.port}", flush=True)
    try:
        while line := (await reader.readline()).decode().strip():
            command, _, argument = line.partition(" ")
            if command == "count":
                print(f"count {sim.submits_total} {sim.delivered_total} "
                      f"{sim.acknowledged_total}", flush=True)
            elif command == "dump":
                submits: list[tuple[int, float]] = []
                unknown = 0
                for record in sim.submits:
                    short_message = getattr(record.pdu, "short_message", b"")
                    match = CLIENT_ID.search(short_message)
                    if match is None:
                        unknown += 1
                        continue
                    submits.append((int(match[1]), record.at + wall_offset))
                Path(argument).write_text(json.dumps({
                    "submits": submits, "unknown": unknown,
                    "receipts_sent": sim.delivered_total,
                    "receipts_acknowledged": sim.acknowledged_total,
                    "connections": len(sim.connections),
                }))
                print(f"dumped {len(submits)}", flush=True)
            elif command == "quit":
                break
    finally:
        await sim.close()


# --- the daemon (child) -----------------------------------------------------------------------


def die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when ``parent`` (the benchmark) dies, even
    by SIGKILL, so a killed benchmark leaves no daemon behind. Linux only; kept across exec."""
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent was gone before prctl took effect
        sys.exit(1)


def daemon_main(parent: int, config: str) -> None:
    """Child process: ``python -m smppgw run -c config``, the same process image as typing
    it (exec), bound to the benchmark's life."""
    die_with_parent(parent)
    os.execv(sys.executable, [sys.executable, "-m", "smppgw", "run", "-c", config])


# --- the daemon under the profiler (child) ----------------------------------------------------


def profiled_daemon_main(parent: int, prefix: str, config: str) -> int:
    """Child process: ``smppgw run -c config`` with cProfile on every thread.

    The main thread's stats go to ``PREFIX.main.prof``, each other thread's (the store's writer
    and reader) to ``PREFIX.<thread name>.prof`` when it ends; SIGTERM ends the daemon cleanly.
    """
    import cProfile
    import threading

    from smppgw.cli import main as smppgw_main

    die_with_parent(parent)

    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            original_run(thread)
        finally:
            profiler.disable()
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", thread.name)
            profiler.dump_stats(f"{prefix}.{name}.prof")

    threading.Thread.run = profiled_run  # type: ignore[method-assign, assignment]
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        return smppgw_main(["run", "-c", config])
    finally:
        profiler.disable()
        profiler.dump_stats(f"{prefix}.main.prof")


# --- children, bounded -----------------------------------------------------------------------


class SimulatorProcess:
    """The simulator child and its line protocol; every wait is bounded."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.port = 0

    @classmethod
    async def start(cls, args: argparse.Namespace, log: Path) -> SimulatorProcess:
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "--role", "simulator",
                "--receipts", args.receipts, "--receipt-delay", str(args.receipt_delay),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )
        child = cls(process)
        line = await child._readline(START_TIMEOUT)
        if not line.startswith("port "):
            raise RuntimeError(f"simulator did not start: {line!r}; see {log}")
        child.port = int(line.split()[1])
        return child

    async def _readline(self, timeout: float) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            return (await self.process.stdout.readline()).decode().strip()

    async def ask(self, command: str, timeout: float = 30.0) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self._readline(timeout)

    async def counts(self) -> tuple[int, int, int]:
        _, submits, delivered, acknowledged = (await self.ask("count")).split()
        return int(submits), int(delivered), int(acknowledged)

    async def stop(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self.process.stdin is not None and not self.process.stdin.is_closing():
                self.process.stdin.write(b"quit\n")
                self.process.stdin.close()
        await stop_process(self.process, signal.SIGTERM)


async def stop_process(process: asyncio.subprocess.Process, sig: signal.Signals) -> int | None:
    """Ask ``process`` to end with ``sig``; SIGKILL it after STOP_TIMEOUT. Its exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode


def write_config(workdir: Path, port: int, window: int, store_url: str | None) -> Path:
    path = workdir / "smppgw.toml"
    store = f'[store]\nurl = "{store_url}"\n\n' if store_url else ""
    path.write_text(f"""\
{store}[gateway]
state_dir = "{workdir / 'state'}"
submit_socket = "{workdir / 'api.sock'}"
socket_mode = "0600"
metrics_listen = ""
log_level = "warning"

[[provider]]
name = "{PROVIDER}"
profile = "generic"
system_id = "bench"
password_env = "SMPPGW_BENCH_PASSWORD"
hosts = ["127.0.0.1:{port}"]
tls = false
binds = {BINDS}
window = {window}
routes = ["{ROUTE}"]
""")
    return path


async def start_daemon(
    config: Path, log: Path, profile: str | None
) -> asyncio.subprocess.Process:
    command = [sys.executable, str(Path(__file__).resolve()), "--parent", str(os.getpid()),
               "--config", str(config)]
    if profile:
        command += ["--role", "profiled-daemon", "--profile", profile]
    else:
        command += ["--role", "daemon"]
    env = {**os.environ, "SMPPGW_BENCH_PASSWORD": PASSWORD}
    with log.open("wb") as stderr:
        return await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env,
        )


async def wait_bound(
    http: aiohttp.ClientSession, daemon: asyncio.subprocess.Process, log: Path
) -> None:
    """Until GET /v1/status shows every bind bound; bounded by START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if daemon.returncode is not None:
            raise RuntimeError(f"daemon exited with {daemon.returncode}; see {log}")
        try:
            async with http.get("http://localhost/v1/status") as response:
                status = await response.json()
            bound = sum(p["binds_bound"] for p in status["providers"])
            last = f"{bound}/{BINDS} binds bound"
            if bound >= BINDS:
                return
        except (aiohttp.ClientError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(0.1)  # polling an external process: no event to wait on
    raise RuntimeError(f"daemon not ready after {START_TIMEOUT:.0f} s ({last}); see {log}")


# --- /proc -----------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of ``pid`` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """utime + stime per thread of ``pid`` (thread id → seconds); the main thread's id is pid."""
    result: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            result[int(task.name)] = cpu_seconds_of(task / "stat")
    return result


def cpu_seconds_of(stat_path: Path) -> float:
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def filesystem_of(path: Path) -> str:
    """The type of the file system ``path`` is on (to be sure the store is not on tmpfs)."""
    best, kind = "", "?"
    target = str(path.resolve())
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        mount = parts[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, kind = mount, parts[2]
    return f"{kind} at {best}"


# --- the load --------------------------------------------------------------------------------


@dataclass
class Load:
    """What the load generator saw in one phase, per client index; wall clock from time.time()."""

    name: str
    indexes: list[int]
    first_send: float = 0.0
    accepted_at: dict[int, float] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    failed_requests: int = 0
    requests: int = 0
    request_seconds: list[float] = field(default_factory=list)
    timed_out: bool = False  # the run's --timeout ended the sending

    @property
    def last_accept(self) -> float:
        return max(self.accepted_at.values(), default=self.first_send)


async def post(
    http: aiohttp.ClientSession, load: Load, indexes: Sequence[int], receipt: bool
) -> None:
    body = {"messages": [message(i, receipt) for i in indexes]}
    started = time.perf_counter()
    try:
        async with http.post("http://localhost/v1/messages", json=body) as response:
            answer: Any = await response.json()
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        load.failed_requests += 1
        for index in indexes:
            load.refused[index] = f"request failed: {type(exc).__name__}"
        return
    now = time.time()
    load.requests += 1
    load.request_seconds.append(time.perf_counter() - started)
    if status != 200:
        load.failed_requests += 1
        for index in indexes:
            load.refused[index] = f"HTTP {status}"
        return
    for index, item in zip(indexes, answer["messages"], strict=True):
        if item.get("accepted"):
            load.accepted_at[index] = now
        else:
            load.refused[index] = str(item.get("error", {}).get("code", "refused"))


async def generate(
    http: aiohttp.ClientSession, load: Load, per_request: int, concurrency: int,
    receipt: bool, deadline: float,
) -> None:
    """Send every message of ``load`` once, ``per_request`` per request, ``concurrency``
    requests in flight."""
    jobs = [load.indexes[k : k + per_request]
            for k in range(0, len(load.indexes), per_request)][::-1]

    async def worker() -> None:
        while jobs:
            await post(http, load, jobs.pop(), receipt)

    load.first_send = time.time()
    try:
        async with asyncio.timeout(deadline - time.monotonic()), asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except TimeoutError:
        load.timed_out = True  # what was answered is still reported; the rest is unanswered


async def drain(sim: SimulatorProcess, goal: int, deadline: float) -> tuple[int, int, int]:
    """Until the simulator has seen ``goal`` submits, nothing new for STALL_TIMEOUT, or the
    deadline. Returns its last counts (submits, receipts sent, receipts acknowledged)."""
    counts = await sim.counts()
    last_change = time.monotonic()
    while counts[0] < goal and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling another process: no event to wait on
        new = await sim.counts()
        if new[0] != counts[0]:
            last_change = time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            counts = new
            break
        counts = new
    return counts


# --- PostgreSQL --------------------------------------------------------------------------------


def start_postgres(base: Path) -> tuple[Any, str]:
    """A private PostgreSQL server (fsync on, as a production one) in a directory of its own
    under ``base`` (its server user must reach it), with a database for smppgw; the server
    handle (its ``stop()`` removes it) and the database URL."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql), or give"
                           " --pg-url")
    server = PgServer(bindir, fsync=True, base=str(base), shared_buffers="128MB").start()
    try:
        subprocess.run([str(bindir / "createdb"), "-h", str(server.socket_dir), "-U",
                        "smppgw_test", "smppgw"], check=True, capture_output=True, timeout=60)
    except BaseException:
        server.stop()
        raise
    return server, server.url("smppgw")


def process_tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every process below it (a PostgreSQL server's backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(pid)
        todo.extend(children.get(pid, ()))
    return total


def postmaster_pid(server: Any) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((Path(server.data) / "postmaster.pid").read_text().split()[0])
    return None


# --- the run ---------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class PhaseResult:
    load: Load
    received: list[int]
    accept_rate: float
    submit_rate: float
    latencies: list[float]


def phase_result(load: Load, first_submit: dict[int, float]) -> PhaseResult:
    received = [i for i in load.accepted_at if i in first_submit]
    last_submit = max((first_submit[i] for i in received), default=load.first_send)
    return PhaseResult(
        load, received,
        len(load.accepted_at) / max(1e-9, load.last_accept - load.first_send),
        len(received) / max(1e-9, last_submit - load.first_send),
        sorted((first_submit[i] - load.accepted_at[i]) * 1000 for i in received))


async def run(args: argparse.Namespace) -> int:
    base = Path(args.dir)
    workdir = Path(tempfile.mkdtemp(prefix="smppgw-e2e-", dir=base))
    sim: SimulatorProcess | None = None
    daemon: asyncio.subprocess.Process | None = None
    postgres: Any = None
    started = time.monotonic()
    deadline = started + args.timeout
    receipt = args.receipts == "on"
    try:
        store_url: str | None = None
        if args.store == "postgresql":
            store_url = args.pg_url
            if store_url is None:
                postgres, store_url = await asyncio.to_thread(start_postgres, base)
        sim = await SimulatorProcess.start(args, workdir / "simulator.log")
        config = write_config(workdir, sim.port, args.window, store_url)
        daemon_log = workdir / "daemon.log"
        daemon = await start_daemon(config, daemon_log, args.profile)
        connector = aiohttp.UnixConnector(path=str(workdir / "api.sock"), limit=0)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        batched = Load("batched", list(range(args.messages)))
        single = Load("single", list(range(args.messages,
                                           args.messages + args.single_messages)))
        pg_root = postmaster_pid(postgres) if postgres is not None else None
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            await wait_bound(http, daemon, daemon_log)
            cpu_before = cpu_seconds(daemon.pid), cpu_seconds(sim.process.pid)
            pg_before = process_tree_cpu_seconds(pg_root) if pg_root else 0.0
            threads_before = thread_cpu_seconds(daemon.pid)
            self_before = time.process_time()
            await generate(http, batched, args.batch_size, args.batch_concurrency, receipt,
                           deadline)
            await drain(sim, len(batched.accepted_at), deadline)
            await generate(http, single, 1, args.single_concurrency, receipt, deadline)
        accepted = len(batched.accepted_at) + len(single.accepted_at)
        counts = await drain(sim, accepted, deadline)
        await drain_receipts(sim, accepted if receipt else 0, deadline)
        cpu_daemon = cpu_seconds(daemon.pid) - cpu_before[0]
        cpu_sim = cpu_seconds(sim.process.pid) - cpu_before[1]
        cpu_pg = process_tree_cpu_seconds(pg_root) - pg_before if pg_root else None
        cpu_self = time.process_time() - self_before
        threads = thread_cpu_seconds(daemon.pid)
        main_thread = threads.pop(daemon.pid, 0.0) - threads_before.get(daemon.pid, 0.0)
        others = sorted((cpu - threads_before.get(tid, 0.0) for tid, cpu in threads.items()),
                        reverse=True)
        rss = peak_rss_mib(daemon.pid)
        dump_path = workdir / "submits.json"
        await sim.ask(f"dump {dump_path}", timeout=60.0)
        dump = json.loads(dump_path.read_text())
        daemon_exit = await stop_process(daemon, signal.SIGTERM)
        counts = await sim.counts()

        first_submit: dict[int, float] = {}
        duplicates = 0
        for index, at in dump["submits"]:
            if index in first_submit:
                duplicates += 1
                first_submit[index] = min(first_submit[index], at)
            else:
                first_submit[index] = at
        results = [phase_result(load, first_submit) for load in (batched, single)]
        lost = sum(len(r.load.accepted_at) - len(r.received) for r in results)
        accepted_all = set(batched.accepted_at) | set(single.accepted_at)
        unexpected = len(set(first_submit) - accepted_all)
        refused = {**batched.refused, **single.refused}
        unanswered = args.messages + args.single_messages - len(refused) - accepted
        timed_out = batched.timed_out or single.timed_out
        per_message = cpu_daemon / max(1, accepted) * 1e6
        where = (f"{workdir / 'state'} ({filesystem_of(workdir)})" if store_url is None
                 else f"PostgreSQL {'private server, fsync on' if postgres else store_url}")

        rows = [
            ("store", f"{args.store}: {where}"),
            ("messages sent", f"{args.messages:,} batched ({args.batch_size} per request x"
                              f"{args.batch_concurrency} concurrent), then"
                              f" {args.single_messages:,} single (x{args.single_concurrency}"
                              f" concurrent); {unanswered:,} unanswered"),
            ("binds / window", f"{BINDS} / {args.window}, plain TCP on loopback, no rate limit"),
            ("receipts", f"on, DELIVRD {args.receipt_delay:g} s after submit_sm_resp"
             if receipt else "off (receipt: false)"),
        ]
        for r in results:
            load = r.load
            requests = sorted(load.request_seconds)
            rows += [
                (f"{load.name}: requests", f"{load.requests:,} answered,"
                 f" {load.failed_requests} failed, p50"
                 f" {percentile(requests, 0.5) * 1000:.1f} ms, p99"
                 f" {percentile(requests, 0.99) * 1000:.1f} ms"),
                (f"{load.name}: accepted", f"{len(load.accepted_at):,} in"
                 f" {load.last_accept - load.first_send:.2f} s = {r.accept_rate:,.0f} msg/s"),
                (f"{load.name}: submitted", f"{len(r.received):,} = {r.submit_rate:,.0f} msg/s"
                 f" (first send to last submit_sm)"),
                (f"{load.name}: accept -> submit_sm", f"p50 {percentile(r.latencies, 0.5):.1f}"
                 f" ms, p99 {percentile(r.latencies, 0.99):.1f} ms"),
            ]
        rows += [
            ("refused", f"{len(refused):,}"
             + (f" (first: {next(iter(refused.values()))})" if refused else "")),
            ("duplicates / unexpected",
             f"{duplicates} / {unexpected} (unparsed {dump['unknown']})"),
            ("receipts", f"{counts[1]:,} sent, {counts[2]:,} acknowledged by the daemon"),
            ("cpu (s)", f"daemon {cpu_daemon:.1f}, simulator {cpu_sim:.1f}, "
                        f"load generator {cpu_self:.1f}"
                        + (f", postgres {cpu_pg:.1f}" if cpu_pg is not None else "")),
            ("daemon threads (cpu s)", f"main {main_thread:.1f}, others "
             + (", ".join(f"{cpu:.1f}" for cpu in others[:4] if cpu >= 0.05) or "idle")),
            ("daemon cpu per message", f"{per_message:.0f} µs"
             + (f" (+ postgres {cpu_pg / max(1, accepted) * 1e6:.0f} µs)"
                if cpu_pg is not None else "")),
            ("daemon peak RSS", f"{rss:.1f} MiB (VmHWM)"),
            ("daemon exit", f"{daemon_exit} after SIGTERM"
             + (f", profiles in {args.profile}.*.prof" if args.profile else "")),
            ("lost", f"{lost:,}"),
        ]
        # Lost messages, a daemon that did not stop cleanly, or messages the run did not get
        # accepted (refused, unanswered) mean the figures do not describe a clean run.
        problems = [
            text for bad, text in (
                (lost != 0, f"{lost:,} lost"),
                (daemon_exit != 0, f"daemon exit {daemon_exit}"),
                (bool(refused), f"{len(refused):,} refused"),
                (unanswered != 0, f"{unanswered:,} unanswered"
                 + (f" (--timeout {args.timeout:g} s reached)" if timed_out else "")),
            ) if bad
        ]
        rows.append(("check", "FAILED: " + ", ".join(problems) if problems else "ok"))
        width = max(len(name) for name, _ in rows)
        print(f"smppgw end to end: API (unix socket) -> store ({args.store}) -> {BINDS} binds"
              " -> SMSC simulator")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        b, s1 = results
        print(f"e2e[{args.store}] batched: {b.accept_rate:.0f} msg/s accepted,"
              f" {b.submit_rate:.0f} msg/s submitted; single: {s1.accept_rate:.0f} msg/s"
              f" accepted, {s1.submit_rate:.0f} msg/s submitted; {per_message:.0f} µs/msg;"
              f" lost {lost}")
        return 1 if problems else 0
    finally:
        if daemon is not None:
            await stop_process(daemon, signal.SIGKILL if daemon.returncode is None
                               and time.monotonic() > deadline else signal.SIGTERM)
        if sim is not None:
            await sim.stop()
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def drain_receipts(sim: SimulatorProcess, goal: int, deadline: float) -> None:
    """Until the daemon has acknowledged ``goal`` receipts, stalls for STALL_TIMEOUT, or the
    deadline (so a SIGTERM does not cut receipts in flight; they are not measured)."""
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        _, _, acknowledged = await sim.counts()
        if acknowledged >= goal:
            return
        if acknowledged != last:
            last, last_change = acknowledged, time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            return
        await asyncio.sleep(0.05)  # polling another process: no event to wait on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the daemon's store (default sqlite)")
    parser.add_argument("--pg-url", metavar="URL",
                        help="with --store postgresql: this database instead of a private"
                             " server started for the run (it must be empty or smppgw's)")
    parser.add_argument("--messages", type=int, default=20_000,
                        help="messages of the batched phase (default 20000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batch-concurrency", type=int, default=8)
    parser.add_argument("--single-messages", type=int, default=10_000,
                        help="messages of the single phase, one per request (default 10000)")
    parser.add_argument("--single-concurrency", type=int, default=64)
    parser.add_argument("--window", type=int, default=10, help="window per bind (default 10)")
    parser.add_argument("--receipts", choices=("on", "off"), default="on")
    parser.add_argument("--receipt-delay", type=float, default=1.0,
                        help="seconds from submit_sm_resp to the receipt (default 1)")
    parser.add_argument("--dir", default="/var/tmp",
                        help="where the work dir (store, socket, logs) goes; must be on disk")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="the whole run stops after this many seconds (default 300)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="run the daemon under cProfile, every thread: PREFIX.main.prof, "
                             "PREFIX.<thread>.prof (read them with python -m pstats)")
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, store)")
    parser.add_argument("--role", choices=("bench", "simulator", "daemon", "profiled-daemon"),
                        default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "simulator":
        asyncio.run(simulator_main(args.receipt_delay))
        return 0
    if args.role == "daemon":
        daemon_main(args.parent, args.config)  # does not return
    if args.role == "profiled-daemon":
        return profiled_daemon_main(args.parent, args.profile, args.config)
    if not 1 <= args.messages + args.single_messages < 10_000_000 or min(
            args.messages, args.single_messages) < 0:
        parser.error("--messages + --single-messages must be 1..9999999 (client ids have 7"
                     " digits)")
    if args.pg_url is not None and args.store != "postgresql":
        parser.error("--pg-url goes with --store postgresql")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
