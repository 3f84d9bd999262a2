"""The external programs the system tests drive (haproxy, promtool, systemd-analyze, ...)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The path of executable ``name``. Missing, it skips the test locally, naming the Debian
    ``package`` to install, and fails it under CI (``$CI`` set), where .ci/run installs it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: install the Debian package {package}")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return path
