"""Flow control against SMSCs that push back: throttling, a full window, a burst after idle.

Each scenario runs the daemon (``python -m smppgw run``, a generic provider over plain TCP on
loopback) against its own SMSC simulator in a child process, which records every submit_sm:
when it arrived, on which connection, and the status it was answered with. The load is queued
through the daemon's unix socket before the clock starts, so the binds always have work.

  throttled  2 binds configured at 4R msg/s each; the simulator throttles each connection
             above R msg/s (a token bucket with one second of burst). Over --seconds (30), and
             counting after the first 5 s: accepted msg/s per bind as a share of R, and the
             share of submits answered ESME_RTHROTTLED. Goal: >= 90 % of R, <= 5 % refused.
  window     2 binds with window 10; the simulator answers in 50 ms and refuses more than 5
             requests in flight per connection with ESME_RMSGQFUL. The share refused.
  burst      2 binds at --limit (80) msg/s; two seconds of traffic, 3 s idle, then a large
             batch. The most submit_sm the simulator saw in any 1 s interval on one
             connection during the burst; it must not exceed the limit.

The last three lines: ``throttled: N% of R, M% refused``, ``window: M% refused``,
``burst: N per 1 s (limit L)``.

Usage: python benchmarks/flow.py [--rate 50] [--seconds 30] [--limit 80] [--dir /var/tmp]
       [--only throttled|window|burst] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

PASSWORD = "bench-pw"  # SMPP 3.4 §4.1.1: at most 8 octets
PROVIDER = "sim"
ROUTE = "46"
BINDS = 2
START_TIMEOUT = 30.0  # seconds for a child to start, or the daemon to bind its binds
REQUEST_TIMEOUT = 60.0  # seconds for one HTTP request
STOP_TIMEOUT = 30.0  # seconds for a child to exit after being asked to
BATCH = 100  # messages per API request
ESME_ROK = 0
MEASURE_AFTER = 5.0  # seconds from the first submit_sm before the throttled figures count


# --- the simulator (child) ------------------------------------------------------------------


async def simulator_main(faults: dict[str, Any]) -> None:
    """Child process: the simulator with ``faults``; line commands on stdin.

    ``count`` → ``count SUBMITS``; ``dump PATH`` writes ``[[at, connection_id, status], ...]``
    for every answered submit_sm (``at`` the arrival, loop seconds) and answers ``dumped N``;
    ``quit`` or EOF stops. The first line written is ``port N``.
    """
    from smppgw.simulator import Faults, SimulatorConfig, SmscSimulator
    from smppgw.smpp.pdu import SubmitSmResp

    sim = SmscSimulator(SimulatorConfig(record=True, faults=Faults(**faults), seed=1))
    await sim.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"port {sim.port}", flush=True)
    try:
        while line := (await reader.readline()).decode().strip():
            command, _, argument = line.partition(" ")
            if command == "count":
                print(f"count {sim.submits_total}", flush=True)
            elif command == "dump":
                arrived = {(r.connection_id, r.pdu.sequence_number): r.at
                           for r in sim.submits if r.pdu is not None}
                rows = []
                for record in sim.sent:
                    if isinstance(record.pdu, SubmitSmResp):
                        key = (record.connection_id, record.pdu.sequence_number)
                        if key in arrived:
                            rows.append((arrived.pop(key), record.connection_id,
                                         record.pdu.command_status))
                Path(argument).write_text(json.dumps(sorted(rows)))
                print(f"dumped {len(rows)}", flush=True)
            elif command == "quit":
                break
    finally:
        await sim.close()


class SimulatorProcess:
    """The simulator child and its line protocol; every wait is bounded."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.port = 0

    @classmethod
    async def start(cls, faults: dict[str, Any], log: Path) -> SimulatorProcess:
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "--role", "simulator",
                "--faults", json.dumps(faults),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                preexec_fn=die_with_parent,
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

    async def submits(self) -> int:
        return int((await self.ask("count")).split()[1])

    async def dump(self, path: Path) -> list[tuple[float, int, int]]:
        await self.ask(f"dump {path}", timeout=60.0)
        return [(float(at), int(conn), int(status)) for at, conn, status
                in json.loads(path.read_text())]

    async def stop(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self.process.stdin is not None and not self.process.stdin.is_closing():
                self.process.stdin.write(b"quit\n")
                self.process.stdin.close()
        await stop_process(self.process, signal.SIGTERM)


# --- the daemon (child) -----------------------------------------------------------------------


def die_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGTERM when the benchmark dies, even by
    SIGKILL, so a killed benchmark leaves nothing behind. Linux only; kept across exec."""
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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


def write_config(workdir: Path, port: int, provider: dict[str, object]) -> Path:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in provider.items())
    path = workdir / "smppgw.toml"
    path.write_text(f"""\
[gateway]
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
routes = ["{ROUTE}"]
{extra}""")
    return path


async def start_daemon(config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "SMPPGW_BENCH_PASSWORD": PASSWORD}
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smppgw", "run", "-c", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output, env=env,
            preexec_fn=die_with_parent,
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


async def queue(http: aiohttp.ClientSession, first: int, count: int) -> None:
    """Accept ``count`` one-part messages (no receipt) through the API."""
    for start in range(first, first + count, BATCH):
        body = {"messages": [
            {"to": f"4670{index:07d}", "from": "Bench", "text": f"flow {index}",
             "receipt": False}
            for index in range(start, min(first + count, start + BATCH))]}
        async with http.post("http://localhost/v1/messages", json=body) as response:
            answer = await response.json()
        refused = [m for m in answer["messages"] if not m.get("accepted")]
        if response.status != 200 or refused:
            raise RuntimeError(f"the API refused messages: {response.status} {refused[:1]}")


async def wait_submits(sim: SimulatorProcess, goal: int, timeout: float) -> int:
    """Until the simulator saw ``goal`` submits or ``timeout`` passed; the count."""
    deadline = time.monotonic() + timeout
    seen = await sim.submits()
    while seen < goal and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling another process: no event to wait on
        seen = await sim.submits()
    return seen


@dataclass
class Run:
    """One scenario's daemon and simulator, and where their files go."""

    sim: SimulatorProcess
    daemon: asyncio.subprocess.Process
    http: aiohttp.ClientSession
    workdir: Path


@contextlib.asynccontextmanager
async def scenario(
    base: Path, name: str, faults: dict[str, Any], provider: dict[str, object], keep: bool
) -> Any:
    workdir = Path(tempfile.mkdtemp(prefix=f"smppgw-flow-{name}-", dir=base))
    sim: SimulatorProcess | None = None
    daemon: asyncio.subprocess.Process | None = None
    try:
        sim = await SimulatorProcess.start(faults, workdir / "simulator.log")
        config = write_config(workdir, sim.port, provider)
        daemon = await start_daemon(config, workdir / "daemon.log")
        connector = aiohttp.UnixConnector(path=str(workdir / "api.sock"), limit=0)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            await wait_bound(http, daemon, workdir / "daemon.log")
            yield Run(sim, daemon, http, workdir)
    finally:
        if daemon is not None:
            await stop_process(daemon, signal.SIGTERM)
        if sim is not None:
            await sim.stop()
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the scenarios ---------------------------------------------------------------------------


def most_in_any_second(instants: Sequence[float]) -> int:
    """The most instants in any half-open interval (t - 1, t]."""
    ordered = sorted(instants)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def throttled(args: argparse.Namespace) -> tuple[float, float]:
    """Accepted msg/s per bind as % of R, and % of submits refused, after the first 5 s."""
    rate = args.rate
    provider = {"rate_per_bind": 4 * rate, "window": 10}
    async with scenario(Path(args.dir), "throttled", {"throttle_above": rate}, provider,
                        args.keep) as run:
        # More than the binds can take in the run, so they never run dry.
        await queue(run.http, 0, int(BINDS * rate * (args.seconds + 10) * 1.2))
        rows = await wait_for_seconds(run, args.seconds)
    first = rows[0][0]
    counted = [r for r in rows if first + MEASURE_AFTER <= r[0] < first + args.seconds]
    span = args.seconds - MEASURE_AFTER
    accepted = sum(1 for r in counted if r[2] == ESME_ROK)
    refused = len(counted) - accepted
    share_of_rate = accepted / BINDS / span / rate * 100
    return share_of_rate, refused / max(1, len(counted)) * 100


async def wait_for_seconds(run: Run, seconds: float) -> list[tuple[float, int, int]]:
    """Let the binds work for ``seconds`` from the first submit_sm; every answered submit."""
    await wait_submits(run.sim, 1, START_TIMEOUT)
    await asyncio.sleep(seconds)  # the measurement window itself, not a wait for a condition
    return await run.sim.dump(run.workdir / "submits.json")


async def window(args: argparse.Namespace) -> float:
    """% of submits refused by an SMSC window of 5 against a configured window of 10."""
    faults = {"window": 5, "latency": 0.05}
    async with scenario(Path(args.dir), "window", faults, {"window": 10}, args.keep) as run:
        await queue(run.http, 0, int(BINDS * 10 / 0.05 * (args.seconds / 2 + 10)))
        rows = await wait_for_seconds(run, args.seconds / 2)
    refused = sum(1 for r in rows if r[2] != ESME_ROK)
    return refused / max(1, len(rows)) * 100


async def burst(args: argparse.Namespace) -> int:
    """The most submit_sm in any 1 s on one connection, in a burst after 3 s idle."""
    limit = args.limit
    provider = {"rate_per_bind": limit, "window": 10}
    async with scenario(Path(args.dir), "burst", {}, provider, args.keep) as run:
        warm = BINDS * limit * 2
        await queue(run.http, 0, warm)
        await wait_submits(run.sim, warm, START_TIMEOUT)
        await asyncio.sleep(3.0)  # the idle spell the scenario is about
        burst_size = BINDS * limit * 4
        started = time.monotonic()
        await queue(run.http, warm, burst_size)
        await wait_submits(run.sim, warm + burst_size, START_TIMEOUT + time.monotonic() - started)
        rows = await run.sim.dump(run.workdir / "submits.json")
    per_connection: dict[int, list[float]] = {}
    for at, connection, _ in rows[warm:]:  # in arrival order: the burst comes after the idle
        per_connection.setdefault(connection, []).append(at)
    return max((most_in_any_second(v) for v in per_connection.values()), default=0)


async def run(args: argparse.Namespace) -> int:
    lines = []
    if args.only in (None, "throttled"):
        share, refused = await throttled(args)
        lines.append(f"throttled: {share:.0f}% of R, {refused:.1f}% refused")
        print(f"  throttled: R = {args.rate} msg/s per connection, configured "
              f"{4 * args.rate}/s per bind, {BINDS} binds, {args.seconds:g} s", flush=True)
    if args.only in (None, "window"):
        refused = await window(args)
        lines.append(f"window: {refused:.1f}% refused")
        print(f"  window: SMSC window 5 (answers in 50 ms), configured 10, {BINDS} binds, "
              f"{args.seconds / 2:g} s", flush=True)
    if args.only in (None, "burst"):
        most = await burst(args)
        lines.append(f"burst: {most} per 1 s (limit {args.limit})")
        print(f"  burst: {BINDS} binds at {args.limit}/s, 2 s of traffic, 3 s idle, then "
              f"{4 * args.limit} per bind at once", flush=True)
    for line in lines:
        print(line)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=50,
                        help="R: msg/s the simulator takes per connection (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="length of the throttled run (default 30; the window run: half)")
    parser.add_argument("--limit", type=int, default=80,
                        help="configured rate per bind of the burst run (default 80)")
    parser.add_argument("--dir", default="/var/tmp", help="where the work dirs go")
    parser.add_argument("--only", choices=("throttled", "window", "burst"))
    parser.add_argument("--keep", action="store_true", help="keep the work dirs (logs, store)")
    parser.add_argument("--role", choices=("bench", "simulator"), default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--faults", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "simulator":
        asyncio.run(simulator_main(json.loads(args.faults)))
        return 0
    if args.seconds <= MEASURE_AFTER:
        parser.error(f"--seconds must be more than {MEASURE_AFTER:g}")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
