"""`smppgw send` and `smppgw status` against a small fake daemon on a unix socket: what they
send, what they print, their exit codes, --wait following the event log, and the one clear
line when the daemon cannot be reached.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from smppgw import cli
from smppgw.status_cmd import format_duration, render_status

pytestmark = pytest.mark.timeout(30)

TRACKING_ID = "ab" * 16
STATUS = {
    "version": "0.1.0",
    "binds": [
        {"provider": "wavy", "name": "wavy#0", "host": "10.0.0.1:2775", "kind": "transmitter",
         "transport": "tcp", "state": "bound",
         "in_flight": 3, "window": 10, "effective_window": 5, "rate": 50,
         "effective_rate": 31.5, "last_error": None},
        {"provider": "wavy", "name": "wavy#1", "host": "10.0.0.1:2775", "kind": "receiver",
         "transport": "tls", "state": "bound",
         "in_flight": 9, "window": 10, "effective_window": 10, "rate": 50,
         "effective_rate": 50, "last_error": None},
        {"provider": "qikberry", "name": "qikberry#12", "host": "q.example:2776",
         "state": "backoff", "in_flight": 0, "window": 100, "effective_window": 100,
         "rate": None, "effective_rate": None, "last_error": "connect: Connection refused",
         "retry_in": 42.4, "retry_reason": "connect_refused",
         "retry_at": "2026-11-23T10:00:42Z"},
    ],
    "queues": {"wavy": {"queued": 12, "sending": 3, "oldest_queued_age": 4.25},
               "qikberry": {"queued": 0, "sending": 0, "oldest_queued_age": 0}},
    "unmatched_receipts": [{"provider": "wavy", "pending": 5, "stale": 4,
                            "oldest_age": 1830.0}],
    "counts": {"messages": {"queued": 12, "delivered": 40}, "segments": {"queued": 14},
               "last_cursor": 99, "unmatched_receipts": 1, "mo_messages": 2,
               "mo_parts_pending": 0},
}


@dataclass
class FakeDaemon:
    """Answers like smppgw would. ``final`` is the state the message reaches once the client
    follows the event log; None means it never gets there."""

    path: Path
    final: str | None = "delivered"
    state: str = "queued"
    submitted: list[Any] = field(default_factory=list)
    event_queries: list[dict[str, str]] = field(default_factory=list)
    status_code: int = 200

    async def post_messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.submitted.append(body)
        message = body["messages"][0]
        if message["to"] == "400":
            return web.json_response({"error": {"code": "invalid_request", "field": "",
                                                "message": "bad envelope"}}, status=400)
        if message["to"] == "000":
            return web.json_response({"messages": [{
                "id": None, "accepted": False, "transient": False,
                "error": {"code": "invalid_destination", "field": "messages[0].to",
                          "message": "'to' must be 1 to 20 digits"}}]})
        return web.json_response({"messages": [{
            "id": message.get("id"), "tracking_id": TRACKING_ID, "accepted": True,
            "segments": 2, "data_coding": 8, "provider": "wavy"}]})

    async def get_message(self, request: web.Request) -> web.Response:
        assert request.match_info["tracking_id"] == TRACKING_ID
        receipt = ({"stat": "UNDELIV", "err": "001"} if self.state == "undeliverable"
                   else None)
        return web.json_response({
            "tracking_id": TRACKING_ID, "state": self.state,
            "history": [{"at": "2025-01-01T00:00:00.000Z", "type": "state", "state": "queued",
                         "detail": {}, "cursor": 3}],
            "segments": [{"part_index": 0, "state": self.state, "receipt": receipt}],
        })

    async def get_events(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.event_queries.append(query)
        after = int(query["after"])
        if self.final is None:
            # A long-poll that sees nothing: hold for `wait`, answer empty.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(float(query["wait"])):
                    await asyncio.Event().wait()
            return web.json_response({"events": [], "cursor": after})
        self.state = self.final
        return web.json_response({"events": [
            {"cursor": after + 1, "type": "state", "tracking_id": "cd" * 16, "state": "queued"},
            {"cursor": after + 2, "type": "receipt", "tracking_id": TRACKING_ID,
             "state": self.final},
        ], "cursor": after + 2})

    async def get_status(self, request: web.Request) -> web.Response:
        if self.status_code != 200:
            return web.json_response({"error": {"code": "internal", "field": "",
                                                "message": "boom"}}, status=self.status_code)
        return web.json_response(STATUS)


@pytest.fixture
async def daemon(sock_dir: Path) -> AsyncIterator[FakeDaemon]:
    fake = FakeDaemon(sock_dir / "submit.sock")
    app = web.Application()
    app.router.add_post("/v1/messages", fake.post_messages)
    app.router.add_get("/v1/messages/{tracking_id}", fake.get_message)
    app.router.add_get("/v1/events", fake.get_events)
    app.router.add_get("/v1/status", fake.get_status)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(fake.path)).start()
    yield fake
    await runner.cleanup()


async def smppgw(*argv: str) -> int:
    """Run the real command line in a worker thread (it runs its own event loop)."""
    return await asyncio.to_thread(cli.main, list(argv))


# --- send ------------------------------------------------------------------------------------


async def test_send_prints_the_tracking_id_and_segments(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    code = await smppgw("send", "--socket", str(daemon.path), "--to", "+5511999990000",
                        "--from", "Acme", "--provider", "wavy", "--flash", "--id", "order-7",
                        "--template-id", "1107161234567890123", "Olá")
    out = capsys.readouterr().out
    assert code == 0
    assert daemon.submitted == [{"messages": [{
        "to": "+5511999990000", "text": "Olá", "from": "Acme", "provider": "wavy",
        "flash": True, "template_id": "1107161234567890123", "id": "order-7"}]}]
    lines = out.splitlines()
    assert lines[0].split() == ["tracking_id", TRACKING_ID]
    assert ["segments", "2"] in [line.split() for line in lines]
    assert ["data_coding", "8"] in [line.split() for line in lines]


async def test_send_reads_the_text_from_stdin(
    daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from a pipe\n"))
    assert await smppgw("send", "--socket", str(daemon.path), "--to", "5511", "-") == 0
    assert daemon.submitted[0]["messages"][0]["text"] == "from a pipe"


async def test_send_refused_names_the_field_and_exits_1(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    code = await smppgw("send", "--socket", str(daemon.path), "--to", "000", "hi")
    err = capsys.readouterr().err
    assert code == 1
    assert "invalid_destination: messages[0].to: 'to' must be 1 to 20 digits" in err


async def test_send_envelope_error_exits_1(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await smppgw("send", "--socket", str(daemon.path), "--to", "400", "hi") == 1
    assert "HTTP 400" in capsys.readouterr().err


async def test_send_without_a_daemon_exits_2_with_one_clear_line(
    sock_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    missing = sock_dir / "nobody.sock"
    code = await smppgw("send", "--socket", str(missing), "--to", "5511", "hi")
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"smppgw send: cannot reach smppgw at {missing}: No such file or directory"]


@pytest.mark.parametrize(("final", "code"), [("delivered", 0), ("undeliverable", 1),
                                            ("cancelled", 1)])
async def test_send_wait_follows_events_to_the_final_state(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], final: str, code: int,
) -> None:
    daemon.final = final
    got = await smppgw("send", "--socket", str(daemon.path), "--to", "5511", "--wait", "hi")
    out = capsys.readouterr().out
    assert got == code
    states = [line.split()[1] for line in out.splitlines() if line.startswith("state")]
    assert states == ["queued", final]
    # It resumed from the newest cursor of the message's history, not from 0.
    assert daemon.event_queries[0]["after"] == "3"
    if final == "undeliverable":
        assert "stat=UNDELIV err=001" in out


async def test_send_wait_gives_up_after_the_timeout_with_exit_3(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    daemon.final = None
    code = await smppgw("send", "--socket", str(daemon.path), "--to", "5511", "--wait",
                        "--timeout", "0.3", "hi")
    assert code == 3
    assert "still queued after 0.3 s" in capsys.readouterr().err


async def test_send_finds_the_socket_in_the_config_even_without_credentials(
    daemon: FakeDaemon, sock_dir: Path,
) -> None:
    config = sock_dir / "smppgw.toml"
    config.write_text(
        '[gateway]\nsubmit_socket = "submit.sock"\n\n'
        '[[provider]]\nname = "wavy"\nprofile = "wavy"\nsystem_id = "acme"\n'
        'password_env = "SMPPGW_TEST_UNSET_PASSWORD"\nroutes = ["55"]\n')
    assert await smppgw("send", "-c", str(config), "--to", "5511", "hi") == 0
    assert len(daemon.submitted) == 1


async def test_send_with_an_unreadable_config_exits_2(
    sock_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = sock_dir / "broken.toml"
    config.write_text("[gateway\n")
    assert await smppgw("send", "-c", str(config), "--to", "5511", "hi") == 2
    err = capsys.readouterr().err
    assert str(config) in err and "invalid TOML" in err


# --- status ----------------------------------------------------------------------------------


async def test_status_prints_aligned_tables(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await smppgw("status", "--socket", str(daemon.path)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[lines.index("BINDS") + 1]
    assert header.split("  ")[0] == "PROVIDER"
    throttled, wavy, qik = lines[lines.index("BINDS") + 2:lines.index("BINDS") + 5]
    # Aligned: every column starts at the same offset in each row. While flow control holds
    # a bind below its configuration, the effective value shows, the configured one after.
    for column, value in (("STATE", "bound"), ("IN-FLIGHT", "3/5 (10)"),
                          ("RATE", "31.5/s (50)")):
        assert throttled.index(value) == header.index(column)
    for column, value in (("IN-FLIGHT", "9/10 "), ("RATE", "50/s ")):
        assert wavy.index(value) == header.index(column)
    # A bind in backoff says when it tries again, and why it is down.
    assert qik.index("backoff, retry in 42.4s (connect_refused)") == header.index("STATE")
    assert qik.index("- ", header.index("RATE")) == header.index("RATE")
    # The kind of each bind, and the transport of its host when the daemon says it.
    assert throttled.index("tx ") == header.index("KIND") == wavy.index("rx ")
    assert throttled.index("tcp://10.0.0.1:2775") == header.index("HOST")
    assert wavy.index("tls://10.0.0.1:2775") == header.index("HOST")
    assert qik.index("q.example:2776") == header.index("HOST")
    assert "PAUSED" not in header
    assert "connect: Connection refused" in qik
    queue_header = lines[lines.index("QUEUES") + 1]
    assert queue_header.split() == ["PROVIDER", "QUEUED", "SENDING", "OLDEST"]
    assert lines[lines.index("QUEUES") + 2].split() == ["wavy", "12", "3", "4.2s"]
    assert "messages  queued 12  delivered 40" in out
    assert "unmatched receipts 1" in out
    unmatched = lines[lines.index("UNMATCHED RECEIPTS") + 1:lines.index("UNMATCHED RECEIPTS") + 3]
    assert [line.split() for line in unmatched] == [
        ["PROVIDER", "PENDING", "STALE", "OLDEST"], ["wavy", "5", "4", "30m30s"]]


async def test_status_json_prints_the_raw_answer(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await smppgw("status", "--json", "--socket", str(daemon.path)) == 0
    assert json.loads(capsys.readouterr().out) == STATUS


async def test_status_errors_exit_2(
    daemon: FakeDaemon, sock_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await smppgw("status", "--socket", str(sock_dir / "none.sock")) == 2
    assert "cannot reach smppgw at" in capsys.readouterr().err
    daemon.status_code = 500
    assert await smppgw("status", "--socket", str(daemon.path)) == 2
    assert "HTTP 500" in capsys.readouterr().err


def test_render_status_tolerates_missing_and_unknown_keys() -> None:
    text = render_status({"binds": [{"provider": "x"}], "queues": [{"provider": "x"}],
                          "webhooks": [{"name": "0", "position": 5}], "uptime": 3.5})
    assert "uptime 3.5" in text and "WEBHOOKS" in text
    assert render_status({}).startswith("BINDS\n(none)")


@pytest.mark.parametrize(("seconds", "text"), [
    (4.25, "4.2s"), (75, "1m15s"), (7260, "2h01m"), (200_000, "2d07h"), (None, "-"),
    (-1, "-"), ("x", "-"),
])
def test_format_duration(seconds: object, text: str) -> None:
    assert format_duration(seconds) == text
