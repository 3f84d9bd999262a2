"""``smppgw demo`` left running, as a new user tries it: after its summary it prints its submit
socket and the exact ``send`` and ``status`` lines to try, and those lines, run as printed in
another process, work against it. Ctrl-C (SIGINT) then stops it cleanly.

The demo runs as a child process from the installed console script, so the printed lines name
the program as the user started it. Its output is read line by line, each read bounded.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

WAIT = 30.0  # seconds for the demo's summary (its samples wait for their receipts)
COMMAND_TIMEOUT = 30.0


def console_script() -> Path:
    script = Path(sys.executable).parent / "smppgw"
    if not script.exists():
        pytest.fail(f"the smppgw console script is not installed next to {sys.executable}: "
                    "pip install -e .")
    return script


async def read_until(stream: asyncio.StreamReader, wanted: int,
                     pick: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Lines up to and including the ``wanted``-th line that contains one of ``pick``."""
    lines: list[str] = []
    found: dict[str, str] = {}
    async with asyncio.timeout(WAIT):
        while len(found) < wanted:
            raw = await stream.readline()
            if not raw:
                raise AssertionError("the demo ended early:\n" + "\n".join(lines))
            line = raw.decode().rstrip("\n")
            lines.append(line)
            for fragment in pick:
                if fragment in line:
                    found[fragment] = line.strip()
    return lines, found


async def run(argv: list[str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(COMMAND_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_demo_kept_running_prints_its_socket_and_lines_that_work() -> None:
    script = console_script()
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS")}
    demo = await asyncio.create_subprocess_exec(
        str(script), "demo", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert demo.stdout is not None
        lines, found = await read_until(demo.stdout, 3,
                                        ("submit socket:", " send --socket ", " status --socket "))
        text = "\n".join(lines)
        assert "every sample reached a final state" in text, text
        socket_path = Path(found["submit socket:"].split(":", 1)[1].strip())
        assert socket_path.is_socket(), text

        send = shlex.split(found[" send --socket "])
        status = shlex.split(found[" status --socket "])
        for argv in (send, status):
            # The program as the user started it, and the demo's own socket.
            assert argv[0] == str(script), argv
            assert argv[argv.index("--socket") + 1] == str(socket_path), argv

        code, out, err = await run(send)
        assert code == 0, err + out  # with --wait: 0 only once delivered
        assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("state")][-1] \
            == "delivered", out

        code, out, err = await run(status)
        assert code == 0, err
        assert "BINDS" in out and "bound" in out, out
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
        async with asyncio.timeout(COMMAND_TIMEOUT):
            _, err_text = await demo.communicate()
    assert demo.returncode == 0, err_text.decode()
    assert not socket_path.exists()  # its temporary directory went with it
