"""The operator's commands over a real daemon (in this process, against the SMSC simulator),
through the API and through the command line: find messages, cancel one, retry one, pause and
resume a provider. Waits are on conditions (events, simulator records), never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from smppgw import cli
from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import CancelSm, SubmitSm
from tests.integration.test_daemon_e2e import (
    WAIT,
    Gateway,
    gateways,
    make_config,
    provider_table,
)

__all__ = ["gateways"]   # the fixture, shared with test_daemon_e2e

pytestmark = pytest.mark.timeout(90)

LONG = " ".join(f"Part of a long message number {i}." for i in range(12))  # 3 GSM7 parts


async def call(gw: Gateway, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Any request on the daemon's socket: (status, JSON body)."""
    async with gw.http.request(method, f"http://smppgw{path}", json=body) as resp:
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


async def smppgw(*argv: str) -> int:
    """The real command line, in a worker thread (it runs its own event loop); its exit
    status, argparse's refusals included."""
    def main() -> int:
        try:
            return cli.main(list(argv))
        except SystemExit as exc:
            return int(exc.code or 0)
    return await asyncio.to_thread(main)


def socket_of(gw: Gateway) -> str:
    return str(gw.daemon.config.gateway.submit_socket)


def submits_of(sim: SmscSimulator, marker: bytes) -> list[SubmitSm]:
    return [r.pdu for r in sim.submits
            if isinstance(r.pdu, SubmitSm) and marker in r.pdu.short_message]


async def start(
    tmp_path: Path, sock_dir: Path, sim: SmscSimulator, gateways: Any, **overrides: Any,
) -> Gateway:
    config = make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "generic", sim, ["55"], binds=1, **overrides)], metrics=True)
    gw = await gateways(config)
    await sim.wait_bound(1, timeout=WAIT)
    return gw


# --- find a message ------------------------------------------------------------------------------


async def test_find_messages_by_state_provider_number_and_time(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await start(tmp_path, sock_dir, sim, gateways)
    sim.answer_next_submits(CommandStatus.ESME_RINVDSTADR)
    failed = (await gw.submit({"id": "bad-1", "to": "5511900000001", "from": "Acme",
                               "text": "refused"}))["bad-1"]["tracking_id"]
    await gw.wait_states({failed: "failed"})
    delivered = []
    for i in range(5):
        answer = await gw.submit({"id": f"ok-{i}", "to": f"552190000000{i}", "from": "Acme",
                                  "text": f"fine {i}"})
        delivered.append(answer[f"ok-{i}"]["tracking_id"])
    await gw.wait_states({t: "delivered" for t in delivered})

    status, body = await call(gw, "GET", "/v1/messages?state=failed")
    assert status == 200 and body["next"] is None
    (view,) = body["messages"]
    assert view == await gw.message(failed)   # the view of GET /v1/messages/{tracking_id}
    status, body = await call(gw, "GET", "/v1/messages?to_prefix=%2B5521&state=delivered")
    assert [v["tracking_id"] for v in body["messages"]] == delivered[::-1]
    status, body = await call(gw, "GET", "/v1/messages?provider=wavy&limit=2")
    assert [v["tracking_id"] for v in body["messages"]] == delivered[:-3:-1]
    seen = [v["tracking_id"] for v in body["messages"]]
    while body["next"] is not None:
        status, body = await call(gw, "GET", f"/v1/messages?provider=wavy&limit=2"
                                             f"&after={body['next']}")
        assert status == 200
        seen += [v["tracking_id"] for v in body["messages"]]
    assert seen == [*delivered[::-1], failed]
    created = (await gw.message(delivered[2]))["created"]
    status, body = await call(gw, "GET", f"/v1/messages?since={created}&state=delivered")
    assert [v["tracking_id"] for v in body["messages"]][-1] == delivered[2]
    status, body = await call(gw, "GET", f"/v1/messages?until={created}&limit=200")
    assert delivered[2] not in [v["tracking_id"] for v in body["messages"]]

    # Clear refusals, each naming its parameter.
    for query, field in [("state=lost", "state"), ("limit=0", "limit"), ("limit=201", "limit"),
                         ("after=nonsense", "after"), ("to_prefix=55x", "to_prefix"),
                         ("since=yesterday", "since"), ("provider=Wavy!", "provider"),
                         ("until=2020-01-01T00:00:00Z&since=2021-01-01T00:00:00Z", "until"),
                         ("colour=red", "colour"), ("state=failed&state=queued", "state"),
                         ("id=ok-1&state=failed", "state")]:
        status, body = await call(gw, "GET", f"/v1/messages?{query}")
        assert status == 400 and body["error"]["field"] == field, (query, body)

    socket = socket_of(gw)
    assert await smppgw("messages", "--socket", socket, "--state", "failed") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CREATED", "TRACKING_ID", "ID", "PROVIDER", "TO", "STATE",
                                "PARTS", "LAST_ERROR"]
    (row,) = lines[1:]
    assert row.split()[1:7] == [failed, "bad-1", "wavy", "5511900000001", "failed", "1"]
    assert "ESME_RINVDSTADR" in row
    assert await smppgw("messages", "--socket", socket, "--provider", "wavy", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["tracking_id"] for v in listed["messages"]] == [*delivered[::-1], failed]
    assert listed["next"] is None
    # --limit stops after that many and says how to go on.
    assert await smppgw("messages", "--socket", socket, "--limit", "2") == 0
    out, err = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines()[1:]] == delivered[:-3:-1]
    (more,) = err.splitlines()
    assert more.startswith(f"more: smppgw messages --socket {socket} --limit 2 --after ")
    cursor = more.split()[-1]
    assert await smppgw("messages", "--socket", socket, "--limit", "2", "--after", cursor) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]] == (
        delivered[-3:-5:-1])
    assert await smppgw("messages", "--socket", socket, "--state", "cancelled") == 0
    assert capsys.readouterr().out == "(no messages)\n"
    assert await smppgw("messages", "--socket", socket, "--to-prefix", "5521",
                        "--since", "1h", "--until", "2999-01-01") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 5
    assert await smppgw("messages", "--socket", socket, "--since", "someday") == 2
    assert "--since" in capsys.readouterr().err


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_stops_what_was_not_sent_and_says_what_was(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 3-part message on one bind with a window of 1, the SMSC holding its answers: part 1
    is on the wire, part 2 claimed by the dispatcher, part 3 waiting. Cancel takes part 2
    back from the dispatcher: parts 2 and 3 are not sent, part 1 is in flight; the SMSC never
    sees parts 2 and 3, the message ends 'cancelled' with its event in /v1/events and at a
    webhook."""
    pushed: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        pushed.extend((await request.json())["events"])
        arrived.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        sim = await sim_factory(SimulatorConfig())
        config = make_config(
            tmp_path, sock_dir / "s.sock",
            [provider_table("wavy", "generic", sim, ["55"], binds=1, window=1)],
            webhooks=[{"url": f"http://127.0.0.1:{runner.addresses[0][1]}/hook",
                       "events": ["state"]}])
        gw = await gateways(config)
        await sim.wait_bound(1, timeout=WAIT)
        sim.hold_answers()
        tracking_id = (await gw.submit({"id": "long-1", "to": "5511900000001",
                                        "from": "Acme", "text": LONG}))["long-1"]["tracking_id"]
        await sim.wait_submits(1, timeout=WAIT)
        # One claim took parts 1 and 2 (as many as two windows) before part 1 went out; the
        # held answer keeps the only worker busy, so nothing more is claimed.
        view = await gw.message(tracking_id)
        assert [s["state"] for s in view["segments"]] == ["sending", "sending", "queued"]

        status, body = await call(gw, "DELETE", f"/v1/messages/{tracking_id}")
        assert status == 200, body
        assert body == {"tracking_id": tracking_id, "id": "long-1", "state": "cancelled",
                        "cancelled": True, "already_cancelled": False, "not_sent": [1, 2],
                        "in_flight": [0], "sent": []}
        sim.release_answers()
        # The SMSC took the part in flight (its answer is recorded once its receipt matches
        # it); the message stays cancelled, the receipt is recorded all the same.
        await gw.wait_events(lambda events: any(
            e["type"] == "receipt" and e["tracking_id"] == tracking_id for e in events))
        view = await gw.message(tracking_id)
        assert view["state"] == "cancelled"
        assert [s["state"] for s in view["segments"]] == ["delivered", "cancelled",
                                                          "cancelled"]
        # Parts 2 and 3 never reached the SMSC.
        assert [r.pdu.short_message[5] for r in sim.submits
                if isinstance(r.pdu, SubmitSm)] == [1]
        await gw.wait_states({tracking_id: "cancelled"})
        (event,) = [e for e in gw.events if e["type"] == "state" and e["state"] == "cancelled"]
        assert (event["previous"], event["not_sent"], event["in_flight"]) == (
            "queued", [1, 2], [0])
        async with asyncio.timeout(WAIT):
            while not any(e.get("state") == "cancelled" for e in pushed):
                arrived.clear()
                await arrived.wait()
        (hooked,) = [e for e in pushed if e["type"] == "state" and e["state"] == "cancelled"]
        assert hooked == event

        # Again: the same answer, marked; a final message and an unknown one are refused.
        status, body = await call(gw, "DELETE", f"/v1/messages/{tracking_id}")
        assert status == 200 and body["already_cancelled"] is True
        assert body["not_sent"] == [1, 2] and body["sent"] == [0]
        done = (await gw.submit({"id": "done", "to": "5511900000002", "from": "Acme",
                                 "text": "delivered already"}))["done"]["tracking_id"]
        await gw.wait_states({done: "delivered"})
        status, body = await call(gw, "DELETE", f"/v1/messages/{done}")
        assert status == 409 and body["error"]["code"] == "not_cancellable"
        assert "delivered" in body["error"]["message"]
        status, body = await call(gw, "DELETE", f"/v1/messages/{'0' * 32}")
        assert status == 404 and body["error"]["field"] == "tracking_id"
        status, body = await call(gw, "DELETE", "/v1/messages/not-an-id")
        assert status == 400 and body["error"]["field"] == "tracking_id"

        # The command line, by the application's id.
        socket = socket_of(gw)
        sim.hold_answers()
        await gw.submit({"id": "first", "to": "5511900000003", "from": "Acme", "text": "a"},
                        {"id": "second", "to": "5511900000004", "from": "Acme", "text": "b"},
                        {"id": "third", "to": "5511900000005", "from": "Acme", "text": "c"})
        assert await smppgw("cancel", "--socket", socket, "third") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("cancelled ") and lines[1].split() == [
            "not", "sent", "part", "0"], lines
        assert await smppgw("cancel", "--socket", socket, "done") == 1
        err = capsys.readouterr().err
        assert err.startswith("smppgw cancel: not_cancellable: ") and "delivered" in err
        assert await smppgw("cancel", "--socket", socket, "nope") == 1
        assert capsys.readouterr().err == (
            "smppgw cancel: no message with tracking id or id 'nope'\n")
        sim.release_answers()
    finally:
        await runner.cleanup()


# --- retry ---------------------------------------------------------------------------------------


async def test_retry_sends_a_failed_message_again_as_a_new_attempt(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await start(tmp_path, sock_dir, sim, gateways)
    sim.answer_next_submits(CommandStatus.ESME_RINVDSTADR)
    first = (await gw.submit({"id": "order-77", "to": "5511900000001", "from": "Acme",
                              "text": "retry me", "tlvs": {"0x1401": "tenant"},
                              "validity_minutes": 30}))["order-77"]["tracking_id"]
    await gw.wait_states({first: "failed"})

    status, body = await call(gw, "POST", f"/v1/messages/{first}/retry")
    assert status == 200, body
    second = body["tracking_id"]
    assert second != first
    assert body == {"id": "order-77", "tracking_id": second, "accepted": True, "segments": 1,
                    "data_coding": 0, "provider": "wavy", "retry_of": first}
    await gw.wait_states({second: "delivered"})
    old, new = await gw.message(first), await gw.message(second)
    assert (old["state"], old["retried_as"], old["retry_of"], old["id"]) == (
        "failed", second, None, None)
    assert (new["retry_of"], new["retried_as"], new["id"]) == (first, None, "order-77")
    assert any(h["type"] == "retried" and h["detail"]["tracking_id"] == second
               for h in old["history"])
    assert new["history"][0]["detail"] == {"segments": 1, "retry_of": first}
    # The app's id now finds the new attempt; the wire saw the same text and TLV twice.
    status, body = await call(gw, "GET", "/v1/messages?id=order-77")
    assert [v["tracking_id"] for v in body["messages"]] == [second]
    sent = submits_of(sim, b"retry me")
    assert len(sent) == 2 and {p.destination_addr for p in sent} == {"5511900000001"}
    assert all(any(t.tag == 0x1401 for t in p.tlvs) for p in sent)

    # A second retry of the same message answers the first retry; a delivered one is refused.
    status, body = await call(gw, "POST", f"/v1/messages/{first}/retry")
    assert status == 200 and body["tracking_id"] == second and body["duplicate"] is True
    status, body = await call(gw, "POST", f"/v1/messages/{second}/retry")
    assert status == 409 and body["error"]["code"] == "not_retryable"
    assert "delivered" in body["error"]["message"]
    status, body = await call(gw, "POST", f"/v1/messages/{first}/retry",
                              {"provider": "nowhere"})
    assert status == 200 and body["duplicate"] is True   # already retried: nothing is sent
    status, body = await call(gw, "POST", f"/v1/messages/{'0' * 32}/retry")
    assert status == 404

    # The command line: a failed message retried through another named provider is refused
    # by name when that provider does not exist, and retried as asked otherwise.
    sim.answer_next_submits(CommandStatus.ESME_RINVDSTADR)
    third = (await gw.submit({"id": "order-78", "to": "5511900000002", "from": "Acme",
                              "text": "again please"}))["order-78"]["tracking_id"]
    await gw.wait_states({third: "failed"})
    socket = socket_of(gw)
    assert await smppgw("retry", "--socket", socket, "--provider", "nowhere", "order-78") == 1
    err = capsys.readouterr().err
    assert err.startswith("smppgw retry: unknown_provider: provider: ")
    assert await smppgw("retry", "--socket", socket, "order-78") == 0
    words = capsys.readouterr().out.split()
    assert words[:3] == ["retried", third, "as"], words
    await gw.wait_states({words[3]: "delivered"})


# --- pause a provider ----------------------------------------------------------------------------


async def test_pause_and_resume_survive_a_reload_and_a_restart(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await start(tmp_path, sock_dir, sim, gateways)
    status, body = await call(gw, "POST", "/v1/providers/wavy/pause")
    assert status == 200 and body["provider"] == "wavy" and body["paused"] is True
    since = body["since"]
    status, body = await call(gw, "POST", "/v1/providers/wavy/pause")
    assert status == 200 and body["since"] == since   # paused since the first time

    async def provider_status(g: Gateway) -> dict[str, Any]:
        (provider,) = (await g.get("/v1/status"))["providers"]
        return dict(provider)

    assert (await provider_status(gw))["paused"] is True
    assert (await provider_status(gw))["paused_since"] == since
    assert gw.daemon.metrics.registry.get_sample_value(
        "smppgw_provider_paused", {"provider": "wavy"}) == 1
    assert await gw.daemon.reload(gw.daemon.config)
    assert (await provider_status(gw))["paused"] is True

    config = gw.daemon.config
    await gw.stop()
    gw = await gateways(config)
    assert (await provider_status(gw))["paused"] is True
    assert gw.daemon.metrics.registry.get_sample_value(
        "smppgw_provider_paused", {"provider": "wavy"}) == 1

    status, body = await call(gw, "POST", "/v1/providers/wavy/resume")
    assert status == 200 and body == {"provider": "wavy", "paused": False, "since": None}
    assert (await provider_status(gw))["paused"] is False
    assert gw.daemon.metrics.registry.get_sample_value(
        "smppgw_provider_paused", {"provider": "wavy"}) == 0
    status, body = await call(gw, "POST", "/v1/providers/nowhere/pause")
    assert status == 404 and body["error"]["code"] == "unknown_provider"
    assert "wavy" in body["error"]["message"]

    socket = socket_of(gw)
    assert await smppgw("provider", "pause", "wavy", "--socket", socket) == 0
    words = capsys.readouterr().out.split()
    assert words[:3] == ["wavy", "paused", "since"]
    since = words[3]
    assert await smppgw("status", "--socket", socket) == 0
    lines = capsys.readouterr().out.splitlines()
    providers = lines[lines.index("PROVIDERS") + 1:]
    assert providers[0].split() == ["PROVIDER", "PROFILE", "BINDS", "PAUSED"]
    assert providers[1].split()[:5] == ["wavy", "generic", "1/1", "since", since]
    assert await smppgw("provider", "resume", "wavy", "--socket", socket) == 0
    assert capsys.readouterr().out == "wavy resumed\n"
    assert await smppgw("provider", "pause", "nowhere", "--socket", socket) == 1
    assert capsys.readouterr().err.startswith("smppgw provider: unknown_provider: ")


async def queue_of(gw: Gateway, provider: str = "wavy") -> tuple[int, int]:
    """(queued, sending) parts of ``provider`` in the store."""
    assert gw.daemon.store is not None
    stats = (await gw.daemon.store.queue_stats()).get(provider)
    return (stats.queued, stats.sending) if stats is not None else (0, 0)


async def until_queue(gw: Gateway, wanted: tuple[int, int]) -> None:
    """Until the store's queue of wavy is ``wanted`` (a released part is recorded by the
    dispatcher's recorder, without an event to wait on: the store is asked on each turn)."""
    async with asyncio.timeout(WAIT):
        while await queue_of(gw) != wanted:
            await asyncio.sleep(0.01)


async def test_a_paused_provider_claims_nothing_and_keeps_its_binds_for_receipts_and_mo(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await start(tmp_path, sock_dir, sim, gateways, window=1)
    sim.hold_answers()
    answers = await gw.submit(*({"id": f"m{i}", "to": f"551190000000{i}", "from": "Acme",
                                 "text": f"held {i}"} for i in range(3)))
    tracking = [answers[f"m{i}"]["tracking_id"] for i in range(3)]
    await sim.wait_submits(1, timeout=WAIT)
    # m0 is on the wire, m1 claimed and waiting for the window, m2 queued.
    assert await queue_of(gw) == (1, 2)
    status, _ = await call(gw, "POST", "/v1/providers/wavy/pause")
    assert status == 200
    await until_queue(gw, (2, 1))          # m1 went back to the queue, unsent
    sim.release_answers()                  # m0's answer and receipt still come in
    await gw.wait_states({tracking[0]: "delivered"})
    sim.inject_mo("5511988887777", "acme-wavy", "STOP")
    await gw.wait_events(lambda events: any(e["type"] == "mo" for e in events))
    assert await queue_of(gw) == (2, 0)
    assert [r.pdu.destination_addr for r in sim.submits] == ["5511900000000"]
    assert sim.bound_count() == 1
    # Accepted while paused: queued, not sent.
    late = (await gw.submit({"id": "late", "to": "5511900000009", "from": "Acme",
                             "text": "while paused"}))["late"]["tracking_id"]
    assert await queue_of(gw) == (3, 0)
    status, _ = await call(gw, "POST", "/v1/providers/wavy/resume")
    await gw.wait_states({t: "delivered" for t in [*tracking[1:], late]})
    assert len(sim.submits) == 4


async def test_a_provider_paused_before_a_restart_stays_paused_after_it(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await start(tmp_path, sock_dir, sim, gateways)
    await call(gw, "POST", "/v1/providers/wavy/pause")
    config = gw.daemon.config
    await gw.stop()
    gw = await gateways(config)
    await sim.wait_bound(1, timeout=WAIT)
    queued = (await gw.submit({"id": "q", "to": "5511900000001", "from": "Acme",
                               "text": "after restart"}))["q"]["tracking_id"]
    await sim.wait_bound(1, timeout=WAIT)
    assert await queue_of(gw) == (1, 0)
    assert (await gw.message(queued))["state"] == "queued"
    await call(gw, "POST", "/v1/providers/wavy/resume")
    await gw.wait_states({queued: "delivered"})


async def test_status_says_when_a_bind_in_backoff_tries_again_and_why(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = await sim_factory(SimulatorConfig(accounts=(Account("acme-wavy", "other"),)))
    config = make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "generic", sim, ["55"], binds=1)])
    gw = await gateways(config)
    async with asyncio.timeout(WAIT):
        while (bind := (await gw.get("/v1/status"))["binds"][0])["state"] != "backoff":
            await asyncio.sleep(0.01)   # the refused bind is one round trip away
    assert bind["retry_reason"] == "bind_rejected"
    assert 30.0 <= bind["retry_in"] <= 3600.0
    assert bind["retry_at"].endswith("Z")
    assert "ESME_RINVPASWD" in bind["last_error"]
    assert await smppgw("status", "--socket", socket_of(gw)) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("wavy ") and "wavy#0" in line]
    assert "backoff, retry in " in row and "(bind_rejected)" in row


async def test_cancel_sm_stops_sent_parts_on_the_smsc_where_enabled(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A message the SMSC took but has not delivered yet (its receipt is an hour away): with
    ``cancel_sm = true`` the cancel sends cancel_sm for each part (SMPP 3.4 §4.9, the
    addresses as submitted), the SMSC cancels them and the message ends 'cancelled'. Without
    it (the default: the provider may not support it), such a message cannot be cancelled."""
    sim = await sim_factory(SimulatorConfig(receipts=ReceiptPlan(delay=3600)))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "generic", sim, ["55"], binds=1, cancel_sm=True),
        provider_table("plain", "generic", sim, ["91"], binds=1)]))
    await sim.wait_bound(2, timeout=WAIT)
    long_one = (await gw.submit({"id": "long", "to": "5511900000001", "from": "Acme",
                                 "text": LONG}))["long"]["tracking_id"]
    other = (await gw.submit({"id": "other", "to": "919800000001", "from": "Acme",
                              "text": "no cancel_sm here"}))["other"]["tracking_id"]
    await gw.wait_states({long_one: "submitted", other: "submitted"})

    status, body = await call(gw, "DELETE", f"/v1/messages/{long_one}")
    assert status == 200, body
    assert (body["state"], body["not_sent"], body["in_flight"], body["sent"]) == (
        "cancelled", [], [], [0, 1, 2])
    assert body["cancel_sm"] == [{"part": i, "status": "ESME_ROK"} for i in range(3)]
    view = await gw.message(long_one)
    assert [s["state"] for s in view["segments"]] == ["cancelled"] * 3
    assert sorted(sim.cancelled) == sorted(s["smsc_message_id"] for s in view["segments"])
    cancels = [r.pdu for r in sim.received if isinstance(r.pdu, CancelSm)]
    assert {(p.source_addr, p.source_addr_ton, p.destination_addr) for p in cancels} == {
        ("Acme", 5, "5511900000001")}
    assert [h["detail"]["status"] for h in view["history"] if h["type"] == "cancel_sm"] == [
        "ESME_ROK"] * 3
    await gw.wait_states({long_one: "cancelled"})
    (event,) = [e for e in gw.events if e["type"] == "state" and e["state"] == "cancelled"]
    assert (event["previous"], event["cancelled_at_smsc"]) == ("submitted", [0, 1, 2])

    # Cancelled again: its parts were sent (and cancelled there), nothing more to ask.
    status, body = await call(gw, "DELETE", f"/v1/messages/{long_one}")
    assert (status, body["already_cancelled"], body["sent"], body["not_sent"]) == (
        200, True, [0, 1, 2], [])
    assert "cancel_sm" not in body and len(sim.cancelled) == 3

    status, body = await call(gw, "DELETE", f"/v1/messages/{other}")
    assert status == 409 and body["error"]["code"] == "not_cancellable"
    assert "cancel_sm = false" in body["error"]["message"]
    assert len(sim.cancelled) == 3
    assert (await gw.message(other))["state"] == "submitted"

    # A part the SMSC will not cancel (delivered meanwhile, here: unknown to it) is said so.
    third = (await gw.submit({"id": "third", "to": "5511900000002", "from": "Acme",
                              "text": "short"}))["third"]["tracking_id"]
    await gw.wait_states({third: "submitted"})
    sim.messages.clear()   # the SMSC forgot it: cancel_sm is refused
    assert await smppgw("cancel", "--socket", socket_of(gw), "third") == 1
    err = capsys.readouterr().err
    assert "not_cancellable" in err and "ESME_RCANCELFAIL" in err
