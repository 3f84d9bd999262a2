"""``smppgw run`` as a child process of a test, against an SMSC simulator in the test process:
its config file, its environment, its launch and an HTTP client on its submit socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import aiohttp

from smppgw.simulator import SmscSimulator

SIM_PASSWORD = "child-pw"  # SMPP 3.4 §4.1.1: at most 8 octets
HTTP_TIMEOUT = 20.0  # seconds for any request to the child daemon
# What systemd hands a service; the test's own environment must not leak it into the child.
SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                     "LISTEN_PID", "LISTEN_FDNAMES")


def write_config(
    tmp_path: Path, socket_path: Path, sim: SmscSimulator, *, binds: int | None = None,
    store_url: str | None = None,
) -> Path:
    """tmp_path/smppgw.toml: state in tmp_path/state (or the PostgreSQL database at
    ``store_url``), the API on ``socket_path``, no metrics, and one Wavy provider bound to
    ``sim`` in plain SMPP (``binds`` of them if given, else the profile's)."""
    binds_line = "" if binds is None else f"binds = {binds}\n"
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    path = tmp_path / "smppgw.toml"
    path.write_text(f"""
{store}
[gateway]
state_dir = "{tmp_path / 'state'}"
submit_socket = "{socket_path}"
metrics_listen = ""
log_level = "warning"

[[provider]]
name = "wavy"
profile = "wavy"
system_id = "acme"
password_env = "SIM_PASSWORD"
hosts = ["127.0.0.1:{sim.port}"]
tls = false
{binds_line}routes = ["55"]
""")
    return path


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without the systemd variables, with the provider password
    write_config names and ``extra`` (the systemd variables a test means to pass)."""
    env = {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARIABLES}
    env.update(SIM_PASSWORD=SIM_PASSWORD, **extra)
    return env


async def spawn_daemon(
    config: Path, env: dict[str, str], stderr_path: Path, stdout_path: Path | None = None
) -> asyncio.subprocess.Process:
    """``python -m smppgw run -c CONFIG`` with stdin closed, stderr into ``stderr_path`` and
    stdout into ``stdout_path`` (discarded without one)."""
    with contextlib.ExitStack() as files:
        err = files.enter_context(open(stderr_path, "wb"))
        out = (files.enter_context(open(stdout_path, "wb")) if stdout_path is not None
               else asyncio.subprocess.DEVNULL)
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smppgw", "run", "-c", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, env=env)


def unix_session(socket_path: Path) -> aiohttp.ClientSession:
    """An HTTP client on the daemon's submit socket (URLs name any host: http://smppgw/...)."""
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path)),
                                 timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
