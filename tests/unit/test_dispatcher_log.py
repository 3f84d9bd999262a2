"""A submit the SMSC refuses for good is logged: tracking id, part, status and bind, and
never the text or the destination (DESIGN.md: no numbers or message content in logs).

The pool is a stand-in that answers with a given status; no socket, no store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from smppgw.config import parse_config
from smppgw.logs import KeyValueFormatter
from smppgw.pool.pool import SubmitResult
from smppgw.services.dispatcher import Dispatcher
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import Pdu
from smppgw.store import SegmentToSend
from tests.standins import StandInPool

DESTINATION = "5511987654321"
TEXT = b"your code is 482913"


class AnsweringPool(StandInPool):
    """Answers every submit with ``status`` from bind ``sim#1``."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    async def submit(self, pdu: Pdu, ticket: object = None) -> SubmitResult:
        return self.answer(self.status, "m-1" if self.status == 0 else None, "sim#1")


def dispatcher(tmp_path: Path, status: int) -> Dispatcher:
    provider = parse_config(
        {"gateway": {"state_dir": str(tmp_path)},
         "provider": [{"name": "sim", "profile": "generic", "system_id": "acme",
                       "password_env": "PW", "hosts": ["127.0.0.1:9"], "routes": ["55"]}]},
        base_dir=tmp_path, environ={"PW": "x"}).providers[0]
    pool: Any = AnsweringPool(status)
    store: Any = None  # _send never touches the store
    return Dispatcher(provider, store, pool)


def segment(attempts: int = 0) -> SegmentToSend:
    return SegmentToSend(
        segment_id=7, tracking_id="0123456789abcdef0123456789abcdef", client_id="c-1",
        provider="sim", part_index=1, parts=2, source="Acme", destination=DESTINATION,
        short_message=TEXT, esm_class=0x40, data_coding=0, registered_delivery=1, tlvs=(),
        flash=False, valid_until_wall=None, attempts=attempts)


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "smppgw.services.dispatcher"]


async def test_permanent_refusal_is_one_warning_without_text_or_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.services.dispatcher")
    outcome = await dispatcher(tmp_path, CommandStatus.ESME_RINVDSTADR)._send(segment())
    assert outcome.kind == "permanent"
    [record] = refusals(caplog)
    assert record.levelno == logging.WARNING
    line = KeyValueFormatter(with_time=False).format(record)
    assert line == (
        "level=warning logger=smppgw.services.dispatcher bind=sim#1 "
        'msg="submit refused permanently" tracking_id=0123456789abcdef0123456789abcdef '
        "part=2/2 status=ESME_RINVDSTADR")
    assert DESTINATION not in line and "482913" not in line and "Acme" not in line


async def test_retries_exhausted_is_one_warning_with_the_attempts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.services.dispatcher")
    # A code no table knows: transient, but only for a few tries (UNKNOWN_RETRY_LIMIT = 3).
    outcome = await dispatcher(tmp_path, 0x00000401)._send(segment(attempts=2))
    assert outcome.kind == "permanent"
    [record] = refusals(caplog)
    line = KeyValueFormatter(with_time=False).format(record)
    assert line == (
        'level=warning logger=smppgw.services.dispatcher bind=sim#1 '
        'msg="submit refused; retries exhausted" '
        "tracking_id=0123456789abcdef0123456789abcdef part=2/2 status=0x00000401 attempts=3")


@pytest.mark.parametrize("status", [CommandStatus.ESME_ROK, CommandStatus.ESME_RSYSERR,
                                    CommandStatus.ESME_RTHROTTLED])
async def test_accepted_and_transient_answers_log_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.INFO, logger="smppgw.services.dispatcher")
    outcome = await dispatcher(tmp_path, status)._send(segment())
    assert outcome.kind in ("ok", "transient")
    assert refusals(caplog) == []
