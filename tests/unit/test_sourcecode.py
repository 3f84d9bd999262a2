"""The source keeps its own rules: the protocol core and the flow layer do no I/O, and ruff and
mypy are clean.

As asyncpg's test__sourcecode.py does, these run inside the test command so a violation
fails the build instead of waiting for someone to remember the linters.
"""

from __future__ import annotations

import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import smppgw.flow
import smppgw.services
import smppgw.smpp

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = ("asyncio", "socket", "ssl", "sqlite3", "threading", "time")
# The flow layer decides a message's fate from values and `now`: no clock, no I/O, and no
# logging either (a decision is returned, the driver logs it).
FORBIDDEN_IN_FLOW = (*FORBIDDEN_IN_CORE, "logging", "asyncpg", "aiohttp")


def _imported(modules: list[str], forbidden: tuple[str, ...], *, site: bool = False) -> str:
    """Which of ``forbidden`` importing ``modules`` pulls in, in a fresh interpreter (without
    site-packages unless ``site``: the core and the flow layer need none)."""
    script = (
        "import sys\n"
        f"before = set(sys.modules)\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        f"bad = sorted(m for m in {forbidden!r} if m in sys.modules and m not in before)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, *([] if site else ["-S"]), "-c", script], capture_output=True,
        text=True, env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_protocol_core_imports_no_io_module() -> None:
    modules = [f"smppgw.smpp.{m.name}" for m in pkgutil.iter_modules(smppgw.smpp.__path__)]
    assert "smppgw.smpp.codec" in modules
    bad = _imported(modules, FORBIDDEN_IN_CORE)
    assert bad == "", f"smppgw.smpp imported {bad}"


def test_flow_layer_imports_no_io_clock_or_logging_module() -> None:
    modules = [f"smppgw.flow.{m.name}" for m in pkgutil.iter_modules(smppgw.flow.__path__)]
    assert {"smppgw.flow.control", "smppgw.flow.policy", "smppgw.flow.reasons"} <= set(modules)
    bad = _imported(["smppgw.flow", *modules], FORBIDDEN_IN_FLOW)
    assert bad == "", f"smppgw.flow imported {bad}"


def test_services_never_import_the_api() -> None:
    # Layers point inward (STYLE.md §1): the API calls the services, never the reverse.
    modules = [f"smppgw.services.{m.name}"
               for m in pkgutil.iter_modules(smppgw.services.__path__)]
    assert "smppgw.services.dispatcher" in modules
    bad = _imported(modules, ("smppgw.api",), site=True)
    assert bad == "", f"smppgw.services imported {bad}"


# A task must have an owner (STYLE.md §5): a TaskGroup's create_task, never one of these.
_BARE_TASK = re.compile(r"\b(?:asyncio\.create_task|ensure_future|loop\.create_task)\(")


def test_no_task_without_an_owner() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "smppgw").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _BARE_TASK.search(line)
    ]
    assert offenders == [], f"tasks created outside a TaskGroup: {offenders}"


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install the 'test' extra")
    return path


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "--no-cache", "smppgw", "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_the_package() -> None:
    result = subprocess.run(
        [_tool("mypy"), "--no-incremental", "--cache-dir=/dev/null"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
