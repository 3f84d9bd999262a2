"""Log lines are key=value, quoted where needed, with the bind prefix; under journald each
starts with its syslog priority; aiohttp's access lines only at debug."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smppgw.logs import (
    ACCESS_LOGGER,
    BindLogger,
    KeyValueFormatter,
    set_log_level,
    setup_logging,
    stream_is_journal,
    syslog_priority,
)


def render(record_logger: logging.Logger | BindLogger, message: str, **extra: object) -> str:
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    base = record_logger.logger if isinstance(record_logger, BindLogger) else record_logger
    handler = Capture()
    base.addHandler(handler)
    base.setLevel(logging.INFO)
    try:
        record_logger.info(message, extra=extra)
    finally:
        base.removeHandler(handler)
    return KeyValueFormatter(with_time=False).format(captured[0])


def test_key_value_line_with_quoting_and_bind() -> None:
    log = BindLogger(logging.getLogger("smppgw.test"), {"bind": "wavy#2"})
    line = render(log, "bind refused", kv={"status": "ESME_RINVPASWD", "host": "a b"})
    assert line == (
        'level=info logger=smppgw.test bind=wavy#2 msg="bind refused" '
        'status=ESME_RINVPASWD host="a b"'
    )


# --- journald priorities --------------------------------------------------------------------


def make_record(level: int, message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("smppgw.test", level, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(("level", "priority"), [
    (logging.CRITICAL, 3), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6),
    (logging.DEBUG, 7),
])
def test_syslog_priority_of_each_level(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority
    line = KeyValueFormatter(with_time=False, syslog_prefix=True).format(
        make_record(level, "x"))
    assert line.startswith(f"<{priority}>level=")


def test_prefixed_record_stays_one_line() -> None:
    formatter = KeyValueFormatter(with_time=False, syslog_prefix=True)
    line = formatter.format(make_record(logging.WARNING, "two\nlines", kv={"detail": "a\nb"}))
    assert "\n" not in line
    assert line == r'<4>level=warning logger=smppgw.test msg="two\nlines" detail="a\nb"'


def test_without_the_prefix_the_line_is_unchanged() -> None:
    record = make_record(logging.ERROR, "boom")
    assert KeyValueFormatter(with_time=False).format(record) == (
        "level=error logger=smppgw.test msg=boom")


def journal_identity(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def test_stream_is_journal_only_when_journal_stream_names_that_stream(tmp_path: Path) -> None:
    target, other = tmp_path / "journal", tmp_path / "other"
    other.touch()
    with open(target, "w") as stream:
        assert stream_is_journal(stream, {"JOURNAL_STREAM": journal_identity(target)})
        assert not stream_is_journal(stream, {})
        # Inherited by a child whose stderr went elsewhere: not the journal.
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": journal_identity(other)})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
    assert not stream_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def run_child(code: str, stderr_path: Path, env: dict[str, str]) -> list[str]:
    """Run ``code`` in a fresh interpreter with stderr into ``stderr_path``; its lines."""
    with open(stderr_path, "wb") as err:
        result = subprocess.run([sys.executable, "-c", code], stderr=err, env=env, timeout=60,
                                check=False)
    assert result.returncode == 0, stderr_path.read_text()
    return stderr_path.read_text().splitlines()


LOG_EACH_LEVEL = """
import logging
from smppgw.logs import print_error, setup_logging
setup_logging("debug")
log = logging.getLogger("smppgw.test")
log.debug("d"); log.info("i"); log.warning("w"); log.error("e"); log.critical("c")
print_error("smppgw: cannot start: because")
"""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "INVOCATION_ID")}


def test_under_journald_every_line_carries_its_priority(tmp_path: Path) -> None:
    stderr_path = tmp_path / "stderr"
    stderr_path.touch()
    env = {**clean_env(), "JOURNAL_STREAM": journal_identity(stderr_path)}
    lines = run_child(LOG_EACH_LEVEL, stderr_path, env)
    assert lines == [
        "<7>level=debug logger=smppgw.test msg=d",
        "<6>level=info logger=smppgw.test msg=i",
        "<4>level=warning logger=smppgw.test msg=w",
        "<3>level=error logger=smppgw.test msg=e",
        "<3>level=critical logger=smppgw.test msg=c",
        "<3>smppgw: cannot start: because",
    ]


def test_without_journald_lines_have_a_time_and_no_prefix(tmp_path: Path) -> None:
    lines = run_child(LOG_EACH_LEVEL, tmp_path / "stderr", clean_env())
    assert len(lines) == 6
    assert all(line.startswith("time=") for line in lines[:5])
    assert [line.split(" ", 1)[1] for line in lines[:5]] == [
        "level=debug logger=smppgw.test msg=d",
        "level=info logger=smppgw.test msg=i",
        "level=warning logger=smppgw.test msg=w",
        "level=error logger=smppgw.test msg=e",
        "level=critical logger=smppgw.test msg=c",
    ]
    assert lines[5] == "smppgw: cannot start: because"


# --- aiohttp access lines -------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging configures process-wide loggers: put them back after the test."""
    root = logging.getLogger()
    access = logging.getLogger(ACCESS_LOGGER)
    handlers, level, access_level = root.handlers[:], root.level, access.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.setLevel(access_level)


@pytest.mark.usefixtures("restore_logging")
def test_access_lines_only_at_debug() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    setup_logging("info")
    # aiohttp asks exactly this before it formats an access line.
    assert not access.isEnabledFor(logging.INFO)
    assert access.isEnabledFor(logging.WARNING)
    set_log_level("debug")  # a reload to debug shows them
    assert access.isEnabledFor(logging.INFO)
    set_log_level("warning")
    assert not access.isEnabledFor(logging.INFO)
