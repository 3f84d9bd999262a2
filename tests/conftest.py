"""Fixtures shared by every smppgw test package."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory under /tmp for unix sockets (submit socket, NOTIFY_SOCKET): pytest's
    tmp_path can exceed the 108-byte sun_path. Removed with everything in it afterwards."""
    path = Path(tempfile.mkdtemp(prefix="smppgw-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
