"""``smppgw run`` as systemd runs it: a child process with $NOTIFY_SOCKET (a datagram socket
this test binds and reads), $WATCHDOG_USEC, and socket activation ($LISTEN_FDS/$LISTEN_PID with
the listening submit socket on fd 3).

READY=1 must mean "the API answers"; the watchdog pings while the loop turns; SIGTERM says
STOPPING=1 and exits 0. An inherited socket is served as is and never unlinked.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smppgw.simulator import SimulatorConfig, SmscSimulator
from tests.integration.daemons import child_env, spawn_daemon, unix_session, write_config

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0
# The wrapper systemd would be: put the passed socket on fd 3 (SD_LISTEN_FDS_START), name
# this process in LISTEN_PID, and exec the daemon, which keeps the pid.
ACTIVATION_WRAPPER = """
import os, sys
fd, config = int(sys.argv[1]), sys.argv[2]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.executable, [sys.executable, "-m", "smppgw", "run", "-c", config])
"""


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    simulator = SmscSimulator(SimulatorConfig.wavy())
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            async with asyncio.timeout(WAIT):
                await proc.wait()


class NotifyListener:
    """The systemd side of sd_notify: a bound datagram socket, every message kept in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            self.messages.extend(data.decode().splitlines())
            self._changed.set()

    async def wait_for(self, count: int, line: str, timeout: float = WAIT) -> int:
        """Until ``count`` lines equal to (or, ending in '=', starting with) ``line`` came;
        returns the index of the count-th one."""
        async with asyncio.timeout(timeout):
            while True:
                hits = [i for i, m in enumerate(self.messages)
                        if m == line or (line.endswith("=") and m.startswith(line))]
                if len(hits) >= count:
                    return hits[count - 1]
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sock.close()


@pytest.fixture
async def notify_listener(sock_dir: Path) -> AsyncIterator[NotifyListener]:
    listener = NotifyListener(sock_dir / "notify")
    yield listener
    await listener.close()


async def test_ready_status_watchdog_and_stopping_over_notify_socket(
    tmp_path: Path, sock_dir: Path, sim: SmscSimulator, notify_listener: NotifyListener,
    processes: list[asyncio.subprocess.Process],
) -> None:
    socket_path = sock_dir / "submit.sock"
    config = write_config(tmp_path, socket_path, sim)
    stderr_path = tmp_path / "daemon.err"
    proc = await spawn_daemon(config, child_env(NOTIFY_SOCKET=str(notify_listener.path),
                                                WATCHDOG_USEC="500000"), stderr_path)
    processes.append(proc)

    ready_at = await notify_listener.wait_for(1, "READY=1")
    # READY=1 is sent only once the API listens: the very first request is answered.
    async with unix_session(socket_path) as http:
        async with http.get("http://smppgw/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
        async with http.get("http://smppgw/v1/status") as resp:
            status = await resp.json()
    assert [p["name"] for p in status["providers"]] == ["wavy"]
    status_at = await notify_listener.wait_for(1, "STATUS=")
    assert status_at > ready_at
    assert "wavy" in notify_listener.messages[status_at]
    # WATCHDOG_USEC=500000: a ping every 0.25 s while the loop turns; two after READY.
    pings_before = sum(m == "WATCHDOG=1" for m in notify_listener.messages[:ready_at])
    await notify_listener.wait_for(pings_before + 2, "WATCHDOG=1")
    await sim.wait_bound(4, timeout=WAIT)
    assert "STOPPING=1" not in notify_listener.messages

    proc.send_signal(signal.SIGTERM)
    stopping_at = await notify_listener.wait_for(1, "STOPPING=1")
    async with asyncio.timeout(WAIT):
        assert await proc.wait() == 0, stderr_path.read_text()
    assert stopping_at > ready_at
    assert not socket_path.exists()  # our own socket file is removed on the way out
    # The binds were unbound, not cut.
    await sim.wait_for(lambda: sim.unbinds_total == 4, timeout=WAIT)


async def test_socket_activation_serves_the_inherited_socket(
    tmp_path: Path, sock_dir: Path, sim: SmscSimulator,
    processes: list[asyncio.subprocess.Process], notify_listener: NotifyListener,
) -> None:
    """With LISTEN_FDS=1 and LISTEN_PID naming it, the daemon serves the socket on fd 3 (made
    and bound by the test, as systemd would) and leaves the configured path alone."""
    configured = sock_dir / "configured.sock"
    activated = sock_dir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(activated))
    listener.listen(16)
    config = write_config(tmp_path, configured, sim)
    stderr_path = tmp_path / "daemon.err"
    try:
        with open(stderr_path, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", ACTIVATION_WRAPPER, str(listener.fileno()), str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=err, pass_fds=(listener.fileno(),),
                env=child_env(NOTIFY_SOCKET=str(notify_listener.path)))
        processes.append(proc)
    finally:
        listener.close()  # the child has its copy; requests now reach only the daemon

    await notify_listener.wait_for(1, "READY=1")
    async with unix_session(activated) as http:
        async with http.get("http://smppgw/healthz") as resp:
            assert resp.status == 200
        async with http.post("http://smppgw/v1/messages", json={"messages": [
                {"id": "activated", "to": "5511999990000", "from": "Acme",
                 "text": "over the inherited socket"}]}) as resp:
            assert resp.status == 200
            (answer,) = (await resp.json())["messages"]
    assert answer["accepted"] is True and answer["id"] == "activated"
    await sim.wait_submits(1, timeout=WAIT)
    assert not configured.exists()  # nothing was bound at the configured path

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(WAIT):
        assert await proc.wait() == 0, stderr_path.read_text()
    # systemd owns the inherited socket: the daemon does not unlink it.
    assert activated.exists()
