"""The SMSC simulator in a child process, driven over its stdin/stdout, for the benchmarks.

Run as a script, this file starts ``SmscSimulator`` (recording off) on 127.0.0.1, prints one
JSON line with its port, then answers one JSON line per command line read from stdin:
``stats`` (counters and the child's own CPU seconds), ``latency SECONDS`` (swap the faults) and
``quit``. It exits on ``quit``, on EOF (its parent is gone) or after ``--max-seconds``.

Imported, ``SimulatorProcess`` is the parent's side: it starts the child, sends commands with a
timeout on every answer, and always ends the child (``close``, or a context manager).
``JsonLineChild`` is that parent's side for any child speaking one JSON object per line (the
node-smpp peer of session.py uses it too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 20.0  # seconds for the child to print its port
ANSWER_TIMEOUT = 10.0  # seconds for the child to answer one command
STOP_TIMEOUT = 5.0  # seconds for the child to exit once asked, before it is killed
MAX_LINE = 4096  # octets; an answer is one short JSON line


# --- the child ------------------------------------------------------------------------------


async def _serve(max_seconds: float) -> None:
    from smppgw.simulator import Faults, SimulatorConfig, SmscSimulator

    sim = SmscSimulator(SimulatorConfig(host="127.0.0.1", record=False))
    await sim.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(payload: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    answer({"port": sim.port})
    try:
        async with asyncio.timeout(max_seconds):
            while True:
                line = (await reader.readline()).decode().strip()
                if not line or line == "quit":  # EOF: the parent is gone
                    break
                command, _, argument = line.partition(" ")
                if command == "stats":
                    answer({
                        "accepted": sim.accepted_total,
                        "submits": sim.submits_total,
                        "throttled": sim.throttled_total,
                        "binds": sim.binds_total,
                        "open": len(sim.open_connection_ids()),
                        "cpu": time.process_time(),
                    })
                elif command == "latency":
                    sim.set_faults(Faults(latency=float(argument)))
                    answer({"latency": sim.faults.latency})
                else:
                    answer({"error": f"unknown command {command!r}"})
    except TimeoutError:
        pass
    finally:
        await sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    asyncio.run(_serve(args.max_seconds))


# --- the parent's side ----------------------------------------------------------------------


class SimulatorError(RuntimeError):
    """The child did not start, answered badly or too late."""


class JsonLineChild:
    """A child process that answers one JSON object per line on stdout. Every wait is
    bounded; ``close`` always leaves no child behind."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self._buffer = b""

    def __enter__(self) -> JsonLineChild:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int:
        return self._process.pid

    def send_line(self, line: str) -> None:
        stdin = self._process.stdin
        if stdin is None or self._process.poll() is not None:
            raise SimulatorError("the child process is not running")
        stdin.write(line.encode() + b"\n")
        stdin.flush()

    def read(self, timeout: float) -> dict[str, object]:
        """One JSON line from the child, within ``timeout`` seconds."""
        stdout = self._process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SimulatorError(f"no answer from the child within {timeout:.0f} s")
            ready, _, _ = select.select([stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(stdout.fileno(), MAX_LINE)
            if not chunk:
                raise SimulatorError(f"the child exited ({self._process.poll()})")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise SimulatorError("the child's answer is too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise SimulatorError(f"unexpected answer {line!r}")
        return answer

    def close(self) -> None:
        """Ask the child to quit, then terminate, then kill it; always reaps it."""
        process = self._process
        if process.poll() is None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.write(b"quit\n")
                process.stdin.flush()
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


class SimulatorProcess(JsonLineChild):
    """The child simulator."""

    def __init__(self, max_seconds: float = 900.0) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        super().__init__(
            [sys.executable, str(Path(__file__).resolve()), "--max-seconds", str(max_seconds)],
            env,
        )
        try:
            self.port = int(self.read(START_TIMEOUT)["port"])  # type: ignore[call-overload]
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SimulatorProcess:
        return self

    def stats(self) -> dict[str, float]:
        """Counters of the simulator since it started, and the child's CPU seconds."""
        answer = self._command("stats")
        return {key: float(value) for key, value in answer.items()}  # type: ignore[arg-type]

    def set_latency(self, seconds: float) -> None:
        """Answer every submit_sm ``seconds`` after it arrives, from the next PDU on."""
        self._command(f"latency {seconds}")

    def _command(self, line: str) -> dict[str, object]:
        self.send_line(line)
        answer = self.read(ANSWER_TIMEOUT)
        if "error" in answer:
            raise SimulatorError(str(answer["error"]))
        return answer


if __name__ == "__main__":
    main()
