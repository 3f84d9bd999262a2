"""`smppgw show` against the real API and store: found by tracking id or by the client's own
id, printed as lines or as the API's JSON, and clear exit codes when it is not there."""

from __future__ import annotations

import asyncio
import json

import pytest

from smppgw import cli
from smppgw.store import ReceiptRecord, SubmitOutcome
from tests.integration.test_api import Api, api, ok_message

__all__ = ["api"]   # the fixture, shared with test_api

pytestmark = pytest.mark.timeout(30)


async def smppgw(*argv: str) -> int:
    """The real command line, in a worker thread (it runs its own event loop)."""
    return await asyncio.to_thread(cli.main, list(argv))


async def test_show_by_client_id_and_by_tracking_id(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    (answer,) = await api.post_messages(ok_message(id="invoice-42"))
    tracking_id = answer["tracking_id"]
    (part,) = await api.store.claim_segments("acme", 10)
    await api.store.record_submit_results([SubmitOutcome.ok(part.segment_id, "SMSC-1",
                                                            bind="acme#0")])
    await api.store.record_receipts([ReceiptRecord("acme", "SMSC-1", "DELIVRD", "000",
                                                   "delivered", True)])
    socket = str(api.gateway.submit_socket)
    assert await smppgw("show", "--socket", socket, "invoice-42") == 0
    by_id = capsys.readouterr().out
    assert await smppgw("show", "--socket", socket, tracking_id) == 0
    assert capsys.readouterr().out == by_id
    lines = by_id.splitlines()
    assert lines[0].split() == ["tracking_id", tracking_id]
    assert ["id", "invoice-42"] in [line.split() for line in lines]
    assert ["state", "delivered"] in [line.split() for line in lines]
    assert any("part 0" in line and "smsc_message_id=SMSC-1" in line
               and "receipt stat=DELIVRD err=000" in line for line in lines)
    assert "history" in lines
    assert [line.split()[1:3] for line in lines[lines.index("history") + 1:]] == [
        ["state", "queued"], ["state", "submitted"], ["receipt", "delivered"],
        ["state", "delivered"]]
    assert "text" not in by_id.lower().split()

    assert await smppgw("show", "--json", "--socket", socket, "invoice-42") == 0
    _, view = await api.call("GET", f"/v1/messages/{tracking_id}")
    assert json.loads(capsys.readouterr().out) == view


async def test_a_client_id_that_looks_like_a_tracking_id(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    (answer,) = await api.post_messages(ok_message(id="ab" * 16))
    assert await smppgw("show", "--socket", str(api.gateway.submit_socket), "ab" * 16) == 0
    assert capsys.readouterr().out.split()[:2] == ["tracking_id", answer["tracking_id"]]


async def test_unknown_message_exits_1_and_no_daemon_exits_2(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await smppgw("show", "--socket", str(api.gateway.submit_socket), "nope") == 1
    assert capsys.readouterr().err == (
        "smppgw show: no message with tracking id or id 'nope'\n")
    missing = api.gateway.submit_socket.parent / "missing.sock"
    assert await smppgw("show", "--socket", str(missing), "nope") == 2
    err = capsys.readouterr().err
    assert err.startswith("smppgw show: ") and len(err.splitlines()) == 1
