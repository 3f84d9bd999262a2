"""smppgw.systemd against the real protocols: datagrams on a unix socket bound where
$NOTIFY_SOCKET points, and a listening socket inherited as fd 3 by a child process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smppgw.systemd import (
    Notifier,
    listen_fds,
    listen_fds_with_names,
    notify,
    watchdog_interval,
    watchdog_loop,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_notifier_sends_each_message(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert received(sock) == "READY=1"
    assert notifier.status("binds wavy 4/4\nqikberry  5/6")
    assert received(sock) == "STATUS=binds wavy 4/4 qikberry 5/6"  # one line, always
    assert notifier.watchdog()
    assert received(sock) == "WATCHDOG=1"
    assert notifier.reloading()
    lines = received(sock).split("\n")
    assert lines[0] == "RELOADING=1"
    key, _, usec = lines[1].partition("=")
    assert key == "MONOTONIC_USEC" and int(usec) > 0
    assert notifier.stopping("draining 3 in flight")
    assert received(sock) == "STOPPING=1\nSTATUS=draining 3 in flight"
    assert notifier.extend_timeout(1.5)
    assert received(sock) == "EXTEND_TIMEOUT_USEC=1500000"
    assert notify("READY=1", environ={"NOTIFY_SOCKET": path})
    assert received(sock) == "READY=1"


def test_abstract_namespace_socket() -> None:
    name = f"smppgw-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_no_op_outside_systemd() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": ""})
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": "vsock:2:1234"})
    assert repr(notifier) == "<Notifier off>"


def test_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="smppgw.systemd"):
        assert not notifier.watchdog()
    assert "sd_notify failed" in caplog.text


def test_notifier_reads_the_environment_once(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notifier.ready()
    assert received(sock) == "READY=1"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ) == expected


async def test_watchdog_loop_pings_until_cancelled(
    notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(watchdog_loop(Notifier({"NOTIFY_SOCKET": path}), 0.01))
    try:
        for _ in range(3):
            assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 5) == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_listen_fds_ignores_another_process_and_unsets() -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "submit",
           "OTHER": "kept"}
    assert listen_fds(env) == []
    assert env == {"OTHER": "kept"}
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"}
    assert listen_fds_with_names(env, unset_environment=False) == []
    assert "LISTEN_FDS" in env
    assert listen_fds({}) == []


# The child: socket-activated as systemd would do it (fd 3, LISTEN_PID = its own pid), then
# serves one connection to prove the fd is the listening socket the parent made.
CHILD = textwrap.dedent(
    """
    import os, sys
    from smppgw.systemd import listen_fds_with_names
    found = listen_fds_with_names()
    leftover = sorted(k for k in os.environ if k.startswith("LISTEN_"))
    (name, sock), = found
    conn, _ = sock.accept()
    conn.sendall(
        f"name={name} family={sock.family.name} inheritable={os.get_inheritable(3)} "
        f"leftover={','.join(leftover) or '-'}".encode()
    )
    conn.close()
    """
)

# What systemd does before exec: put the socket at fd 3 and name the pid that may use it.
# exec keeps the pid, so LISTEN_PID set here names the child.
WRAPPER = textwrap.dedent(
    """
    import os, sys
    fd = int(sys.argv[1])
    os.dup2(fd, 3)
    os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_FDNAMES"] = "submit"
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2]])
    """
)


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_listen_fds_in_a_socket_activated_child(tmp_path: Path, family: str) -> None:
    if family == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = str(tmp_path / "submit.sock")
        listener.bind(address)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        address = listener.getsockname()
    listener.listen(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env["PYTHONPATH"] = str(ROOT)
    fd = listener.fileno()
    with subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(fd), CHILD], pass_fds=[fd], env=env,
        stderr=subprocess.PIPE,
    ) as child:
        listener.close()  # only the child holds it now
        client = socket.socket(socket.AF_UNIX if family == "unix" else socket.AF_INET)
        client.settimeout(30)
        try:
            client.connect(address)
            chunks = []
            while chunk := client.recv(4096):
                chunks.append(chunk)
        finally:
            client.close()
        _, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr.decode()
    expected_family = "AF_UNIX" if family == "unix" else "AF_INET"
    assert b"".join(chunks).decode() == (
        f"name=submit family={expected_family} inheritable=False leftover=-"
    )
