"""Fixtures shared by every smppgw test package."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PgServer, find_bindir
from tests.store_backends import Backend, new_database


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory under /tmp for unix sockets (submit socket, NOTIFY_SOCKET): pytest's
    tmp_path can exceed the 108-byte sun_path. Removed with everything in it afterwards."""
    path = Path(tempfile.mkdtemp(prefix="smppgw-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- store backends ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One private PostgreSQL server for the whole session (tests take a fresh database each),
    started on first use. Missing PostgreSQL skips the test locally and fails it under CI."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing in CI: install the Debian package postgresql")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")
    # fsync off: these tests kill smppgw, never the server or the machine.
    server = PgServer(bindir, fsync=False).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store backend in turn, with a place of its own: a state dir, or a new database."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "state")
    server: PgServer = request.getfixturevalue("pg_server")
    return Backend("postgresql", tmp_path / "state", await new_database(server))
