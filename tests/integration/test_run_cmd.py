"""``smppgw run`` refuses to start with one line naming the cause, never a traceback.

Each test runs ``python -m smppgw run -c FILE`` in a child process. Its provider points at a
loopback listener that never accepts: the bind waits quietly, so at log_level = "warning"
the start error is the only thing on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from smppgw.store import DB_FILENAME, LOCK_FILENAME, SCHEMA_VERSION
from smppgw.store.postgres import SCHEMA_VERSION as PG_SCHEMA_VERSION
from smppgw.store.postgres import PostgresStore
from tests.pgserver import PgServer
from tests.store_backends import new_database

RUN_TIMEOUT = 60.0  # seconds; the child exits at once in every test here


@pytest.fixture
def silent_smsc() -> Iterator[int]:
    """A loopback port that listens and never accepts: binds neither fail nor succeed."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def write_config(
    tmp_path: Path, port: int, *, socket_path: Path, log_level: str = "warning",
    metrics_listen: str = "", store_url: str | None = None,
) -> Path:
    path = tmp_path / "smppgw.toml"
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    path.write_text(f"""
{store}
[gateway]
state_dir = "{tmp_path / 'state'}"
submit_socket = "{socket_path}"
metrics_listen = "{metrics_listen}"
log_level = "{log_level}"

[[provider]]
name = "gen"
profile = "generic"
system_id = "acme"
password_env = "SMPPGW_TEST_PASSWORD"
hosts = ["127.0.0.1:{port}"]
tls = false
routes = ["55"]
""")
    return path


def run_smppgw(config: Path, tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``smppgw run -c CONFIG``; stderr is a file so that a
    test can name it in JOURNAL_STREAM."""
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("JOURNAL_STREAM", "INVOCATION_ID", "NOTIFY_SOCKET",
                              "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC")}
    child_env.update(SMPPGW_TEST_PASSWORD="pw", **env)
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "wb") as err:
        result = subprocess.run(
            [sys.executable, "-m", "smppgw", "run", "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=child_env,
            timeout=RUN_TIMEOUT, check=False)
    return result.returncode, stderr_path.read_text().splitlines()


def assert_one_line(lines: list[str], *fragments: str) -> str:
    assert len(lines) == 1, "\n".join(lines)
    line = lines[0]
    assert "Traceback" not in line
    assert line.startswith("smppgw: cannot start: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def make_newer_store(state_dir: Path) -> Path:
    state_dir.mkdir()
    db = state_dir / DB_FILENAME
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return db


def test_store_from_a_newer_smppgw(tmp_path: Path, sock_dir: Path, silent_smsc: int) -> None:
    db = make_newer_store(tmp_path / "state")
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock")
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, str(db), f"schema version {SCHEMA_VERSION + 1} is newer")
    with sqlite3.connect(db) as conn:  # refused, not touched
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)


def test_store_error_at_the_default_level_ends_with_the_cause(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    make_newer_store(tmp_path / "state")
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          log_level="info")
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    # Info log lines may come first (key=value, one each); the cause is the last line.
    assert all(line.startswith("time=") for line in lines[:-1]), "\n".join(lines)
    assert lines[-1].startswith("smppgw: cannot start: ") and "is newer" in lines[-1]


def test_postgresql_unreachable(tmp_path: Path, sock_dir: Path, silent_smsc: int) -> None:
    nowhere = sock_dir / "no-postgres"
    nowhere.mkdir()
    url = f"postgresql://smppgw@/smppgw?host={nowhere}"
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          store_url=url)
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, f"cannot connect to the database {url}", "no such socket")


async def test_postgresql_database_missing(
    tmp_path: Path, sock_dir: Path, silent_smsc: int, pg_server: PgServer
) -> None:
    url = pg_server.url("no_such_database")
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          store_url=url)
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, f"cannot connect to the database {url}",
                    'database "no_such_database" does not exist')


async def test_postgresql_schema_from_a_newer_smppgw(
    tmp_path: Path, sock_dir: Path, silent_smsc: int, pg_server: PgServer
) -> None:
    url = await new_database(pg_server)
    async with await PostgresStore.open(url):
        pass
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE smppgw_schema SET version = $1", PG_SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          store_url=url)
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, url, f"schema version {PG_SCHEMA_VERSION + 1} is newer")


async def test_postgresql_database_used_by_another_daemon(
    tmp_path: Path, sock_dir: Path, silent_smsc: int, pg_server: PgServer
) -> None:
    url = await new_database(pg_server)
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          store_url=url)
    async with await PostgresStore.open(url):
        status, lines = await asyncio.to_thread(run_smppgw, config, tmp_path)
    assert status == 1
    assert_one_line(lines, f"the database {url} is in use")


def test_submit_socket_path_is_a_regular_file(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    taken = sock_dir / "submit.sock"
    taken.write_text("not a socket")
    config = write_config(tmp_path, silent_smsc, socket_path=taken)
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, str(taken), "is not a socket")
    assert taken.read_text() == "not a socket"


def test_submit_socket_directory_cannot_be_created(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    # A directory that does not exist and cannot be made (its parent is a file): a
    # permission problem would not do, the tests may run as root.
    blocker = sock_dir / "file"
    blocker.write_text("")
    socket_path = blocker / "missing" / "submit.sock"
    config = write_config(tmp_path, silent_smsc, socket_path=socket_path)
    status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, "cannot create the socket directory", str(socket_path.parent),
                    "Not a directory")


def test_submit_socket_held_by_a_live_listener(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    socket_path = sock_dir / "submit.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(socket_path))
        other.listen(1)
        config = write_config(tmp_path, silent_smsc, socket_path=socket_path)
        status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert_one_line(lines, "another smppgw is listening on", str(socket_path))


def test_state_dir_held_by_another_daemon(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    fd = os.open(state / LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running smppgw holds
        config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock")
        status, lines = run_smppgw(config, tmp_path)
    finally:
        os.close(fd)
    assert status == 1
    assert_one_line(lines, "state directory is in use", LOCK_FILENAME)


def test_metrics_address_in_use(tmp_path: Path, sock_dir: Path, silent_smsc: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                              metrics_listen=f"127.0.0.1:{port}")
        status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    line = assert_one_line(lines, f"gateway.metrics_listen: cannot listen on 127.0.0.1:{port}: "
                                  "address already in use")
    assert "[Errno" not in line and "('127.0.0.1'" not in line


@pytest.mark.parametrize("taken", ["metrics port", "state lock"])
def test_a_daemon_that_never_started_does_not_say_it_stopped(
    tmp_path: Path, sock_dir: Path, silent_smsc: int, taken: str
) -> None:
    """At log_level = "info" the log lines before the cause are the start's own; no
    "smppgw stopped" follows, since nothing ran."""
    with contextlib.ExitStack() as held:
        metrics_listen = ""
        if taken == "metrics port":
            listener = held.enter_context(socket.socket())
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            metrics_listen = f"127.0.0.1:{listener.getsockname()[1]}"
        else:
            state = tmp_path / "state"
            state.mkdir()
            fd = os.open(state / LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o640)
            held.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                              log_level="info", metrics_listen=metrics_listen)
        status, lines = run_smppgw(config, tmp_path)
    assert status == 1
    assert lines[-1].startswith("smppgw: cannot start: "), "\n".join(lines)
    assert not any("stopped" in line for line in lines), "\n".join(lines)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)


def test_config_problems_one_line_each_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "smppgw.toml"
    config.write_text('[gateway]\nbogus = 1\n')
    status, lines = run_smppgw(config, tmp_path)
    assert status == 2
    assert lines and not any("Traceback" in line for line in lines), "\n".join(lines)
    assert all(line.startswith(f"{config}: ") for line in lines), "\n".join(lines)
    assert any("gateway.bogus" in line for line in lines), "\n".join(lines)
    assert any("provider" in line for line in lines), "\n".join(lines)


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    status, lines = run_smppgw(missing, tmp_path)
    assert status == 2
    assert lines == [f"{missing}: cannot read: No such file or directory"]


def test_under_journald_the_cause_has_error_priority(
    tmp_path: Path, sock_dir: Path, silent_smsc: int
) -> None:
    make_newer_store(tmp_path / "state")
    config = write_config(tmp_path, silent_smsc, socket_path=sock_dir / "submit.sock",
                          log_level="info")
    stderr_path = tmp_path / "stderr"
    stderr_path.touch()  # run_smppgw reopens it without replacing it: same inode
    st = os.stat(stderr_path)
    status, lines = run_smppgw(config, tmp_path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    assert status == 1
    assert lines[-1].startswith("<3>smppgw: cannot start: ") and "is newer" in lines[-1]
    # The info lines before it are filed at priority 6, without a time (journald adds it).
    assert all(line.startswith("<6>level=info ") for line in lines[:-1]), "\n".join(lines)
