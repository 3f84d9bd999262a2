"""The whole gateway end to end: a Daemon in this process against the SMSC simulator on
loopback, driven through the real unix-socket API with an aiohttp client.

Each test starts its simulators on 127.0.0.1:0 and its daemons on a fresh state dir, and the
fixtures stop them. Waits are on conditions (READY, a record in the simulator, an event from
the long-poll), each bounded; nothing sleeps in place of a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from smppgw.config import Config, HostPort, parse_config
from smppgw.daemon import Daemon
from smppgw.simulator import Faults, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.simulator.receipts import build_receipt, outcome_of_key
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp
from smppgw.store import SqliteStore
from smppgw.systemd import Notifier

pytestmark = pytest.mark.timeout(60)

PASSWORD = "sim-pw"  # SMPP 3.4 §4.1.1: at most 8 octets
FINAL = frozenset({"delivered", "undeliverable", "expired", "rejected", "failed"})
WAIT = 15.0  # seconds any single condition may take before the test fails


# --- simulators and daemons --------------------------------------------------------------------


def provider_table(
    name: str, profile: str, sim: SmscSimulator, routes: list[str], **overrides: Any
) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": name,
        "profile": profile,
        "system_id": f"acme-{name}",
        "password_env": "SIM_PASSWORD",
        "hosts": [f"127.0.0.1:{sim.port}"],
        "routes": routes,
    }
    if sim.config.tls:
        assert sim.cert_paths is not None
        table.update(tls=True, ca_file=str(sim.cert_paths.ca))
    else:
        table["tls"] = False
    table.update(overrides)
    return table


def make_config(
    root: Path, socket_path: Path, providers: list[dict[str, Any]], *,
    webhooks: list[dict[str, Any]] | None = None, environ: dict[str, str] | None = None,
    metrics: bool = False, store: dict[str, Any] | None = None,
) -> Config:
    data: dict[str, Any] = {
        "gateway": {
            "state_dir": str(root / "state"),
            "submit_socket": str(socket_path),
            "metrics_listen": "",
            "log_level": "warning",
        },
        "provider": providers,
    }
    if webhooks:
        data["webhook"] = webhooks
    if store:
        data["store"] = store
    config = parse_config(data, base_dir=root, environ={"SIM_PASSWORD": PASSWORD,
                                                        **(environ or {})})
    if metrics:
        # An ephemeral metrics port, as smppgw demo does.
        config = dataclasses.replace(config, gateway=dataclasses.replace(
            config.gateway, metrics_listen=HostPort("127.0.0.1", 0)))
    return config


@dataclass
class Gateway:
    """One running Daemon and an HTTP client on its unix socket."""

    daemon: Daemon
    task: asyncio.Task[None]
    http: aiohttp.ClientSession
    cursor: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    async def submit_list(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
        """POST /v1/messages; the answers, in request order."""
        async with self.http.post("http://smppgw/v1/messages",
                                  json={"messages": list(messages)}) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        answers = list(body["messages"])
        assert len(answers) == len(messages)
        return answers

    async def submit(self, *messages: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """POST /v1/messages; the answers by client id, each one accepted."""
        answers = await self.submit_list(*messages)
        for message, answer in zip(messages, answers, strict=True):
            assert answer["id"] == message["id"] and answer["accepted"] is True, answer
        return {answer["id"]: answer for answer in answers}

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(f"http://smppgw{path}", params=params) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def message(self, tracking_id: str) -> dict[str, Any]:
        return dict(await self.get(f"/v1/messages/{tracking_id}"))

    async def poll(self, after: int, wait: float = 0.0, limit: int = 1000) -> dict[str, Any]:
        return dict(await self.get("/v1/events", after=str(after), wait=f"{wait:g}",
                                   limit=str(limit)))

    async def wait_events(self, done: Callable[[list[dict[str, Any]]], bool],
                          timeout: float = WAIT) -> list[dict[str, Any]]:
        """Long-poll from the last cursor seen until ``done(all events so far)`` holds."""
        async with asyncio.timeout(timeout):
            while not done(self.events):
                if self.task.done():
                    self.task.result()
                    raise AssertionError("the daemon stopped")
                batch = await self.poll(self.cursor, wait=5)
                self.events.extend(batch["events"])
                self.cursor = batch["cursor"]
        return self.events

    def state_of(self, tracking_id: str) -> str | None:
        states = [e["state"] for e in self.events if e.get("tracking_id") == tracking_id]
        return states[-1] if states else None

    async def wait_states(self, wanted: dict[str, str | frozenset[str]]) -> None:
        def reached(_: list[dict[str, Any]]) -> bool:
            for tracking_id, state in wanted.items():
                current = self.state_of(tracking_id)
                if isinstance(state, str) and current != state:
                    return False
                if isinstance(state, frozenset) and current not in state:
                    return False
            return True

        await self.wait_events(reached)

    async def stop(self) -> None:
        self.daemon.request_stop()
        try:
            async with asyncio.timeout(WAIT):
                await asyncio.shield(self.task)
        finally:
            await self.http.close()


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Any]]:
    running: list[Gateway] = []

    async def start(config: Config, **options: Any) -> Gateway:
        daemon = Daemon(config, notifier=Notifier(environ={}), **options)
        task = asyncio.create_task(daemon.run())
        ready = asyncio.create_task(daemon.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=WAIT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()
            task.cancel()
            raise AssertionError("the daemon did not become ready")
        http = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(config.gateway.submit_socket)),
            timeout=aiohttp.ClientTimeout(total=WAIT + 5),
        )
        gateway = Gateway(daemon, task, http)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        if not gateway.task.done() or not gateway.http.closed:
            with contextlib.suppress(Exception):
                await gateway.stop()
        if not gateway.task.done():
            gateway.task.cancel()
            with contextlib.suppress(BaseException):
                await gateway.task


def submits_to(sim: SmscSimulator, marker: bytes) -> list[SubmitSm]:
    """The submit_sm the simulator received whose short_message contains ``marker``."""
    return [r.pdu for r in sim.submits
            if isinstance(r.pdu, SubmitSm) and marker in r.pdu.short_message]


def accepted_at_least(sim: SmscSimulator, count: int) -> Callable[[], bool]:
    return lambda: sim.accepted_total >= count


def deliver_answered(sim: SmscSimulator, connection_id: int,
                     sequence_number: int) -> Callable[[], bool]:
    """True once the daemon answered the deliver_sm ``sequence_number`` on that connection."""
    return lambda: any(
        isinstance(r.pdu, DeliverSmResp) and r.connection_id == connection_id
        and r.pdu.sequence_number == sequence_number for r in sim.received)


def answered_id(sim: SmscSimulator, submit: SubmitSm) -> str:
    """The message_id the simulator answered ``submit`` with (ESME_ROK)."""
    (connection_id,) = {r.connection_id for r in sim.submits if r.pdu is submit}
    (message_id,) = [r.pdu.message_id for r in sim.sent
                     if r.connection_id == connection_id and isinstance(r.pdu, SubmitSmResp)
                     and r.pdu.sequence_number == submit.sequence_number
                     and r.pdu.command_status == 0]
    return message_id


# --- submit: encodings, concatenation, flash, Wavy receipts -----------------------------------

LONG_GSM = " ".join(f"Part of a long message number {i}." for i in range(12))  # 3 parts


async def test_every_encoding_through_wavy_with_two_stage_receipts(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """Single and batch submits over the socket reach the SMSC encoded as the Wavy profile
    says: GSM7 (0), Latin-1 (1), UCS-2 with an emoji (8), a 3-part concatenated GSM7 message
    (UDH 05 00 03 ref 03 n, esm_class 0x40, one reference) and flash (0x10). Each ends
    'delivered' after ACCEPTD then DELIVRD, whose vendor TLVs 0x1403-0x1406 are decoded in
    GET /v1/messages; TLS on the links, as Wavy runs it."""
    sim = await sim_factory(SimulatorConfig.wavy(
        tls=True, cert_dir=str(tmp_path / "certs"),
        # Both stages on the submitting bind, so they arrive in order (receipts split over
        # binds, in any order, are the Qikberry test's and the out-of-order test's business).
        receipts=ReceiptPlan(style="wavy", two_stage=True, routing="same")))
    gw = await gateways(make_config(
        tmp_path, sock_dir / "s.sock",
        [provider_table("wavy", "wavy", sim, ["55"])], metrics=True))
    assert len(gw.daemon.providers["wavy"].pool.slots) == 4
    await sim.wait_bound(4, timeout=WAIT)

    single = await gw.submit({"id": "gsm", "to": "5511999990001", "from": "Acme",
                              "text": "Hello from smppgw 482913"})
    assert single["gsm"]["accepted"] is True
    assert single["gsm"]["data_coding"] == 0 and single["gsm"]["segments"] == 1
    latin = "Olá! Promoção válida até às 18h"
    ucs2 = "Entrega confirmada ✅ Obrigado 😀"
    answer_list = await gw.submit_list(
        {"id": "latin", "to": "5511999990002", "from": "Acme", "text": latin},
        {"id": "ucs2", "to": "5511999990003", "from": "Acme", "text": ucs2},
        {"id": "bad", "to": "not-a-number", "from": "Acme", "text": "x"},
        {"id": "long", "to": "5511999990004", "from": "Acme", "text": LONG_GSM},
        {"id": "flash", "to": "5511999990005", "from": "Acme", "text": "Flash now 5 min",
         "flash": True},
    )
    # Bad input in one message never rejects the others; its answer names the field.
    bad = answer_list.pop(2)
    assert bad["accepted"] is False and bad["transient"] is False
    assert bad["error"]["field"] == "messages[2].to"
    batch = {a["id"]: a for a in answer_list}
    assert all(a["accepted"] for a in answer_list)
    assert [batch[i]["data_coding"] for i in ("latin", "ucs2", "long", "flash")] == [
        1, 8, 0, 0x10]
    assert batch["long"]["segments"] == 3
    answers = {**single, **batch}
    tracking = {cid: a["tracking_id"] for cid, a in answers.items()}
    await gw.wait_states({t: "delivered" for t in tracking.values()})

    by_dest = {}
    for record in sim.submits:
        assert isinstance(record.pdu, SubmitSm)
        by_dest.setdefault(record.pdu.destination_addr, []).append(record.pdu)
    assert len(sim.submits) == 7
    gsm = by_dest["5511999990001"][0]
    assert (gsm.data_coding, gsm.esm_class) == (0, 0)
    assert gsm.short_message == b"Hello from smppgw 482913"  # GSM7 unpacked: ASCII letters
    assert gsm.registered_delivery & 1
    latin_pdu = by_dest["5511999990002"][0]
    assert latin_pdu.data_coding == 1 and latin_pdu.short_message == latin.encode("latin-1")
    ucs2_pdu = by_dest["5511999990003"][0]
    assert ucs2_pdu.data_coding == 8 and ucs2_pdu.short_message == ucs2.encode("utf-16-be")
    flash_pdu = by_dest["5511999990005"][0]
    assert flash_pdu.data_coding == 0x10 and flash_pdu.short_message == b"Flash now 5 min"

    parts = by_dest["5511999990004"]
    assert len(parts) == 3
    udhs = [p.short_message[:6] for p in parts]
    assert all(p.esm_class == 0x40 and p.data_coding == 0 for p in parts)
    assert all(u[:3] == b"\x05\x00\x03" and u[4] == 3 for u in udhs)
    assert len({u[3] for u in udhs}) == 1  # one reference for every part
    assert sorted(u[5] for u in udhs) == [1, 2, 3]
    ordered = sorted(parts, key=lambda p: p.short_message[5])
    assert b"".join(p.short_message[6:] for p in ordered) == LONG_GSM.encode("ascii")

    # Two receipts per part (ACCEPTD, then DELIVRD), each acknowledged by the daemon.
    assert len(sim.receipts) == 2 * 7
    await sim.wait_acknowledged(14, timeout=WAIT)
    receipts = [e for e in gw.events if e["type"] == "receipt"]
    assert sorted(e["stat"] for e in receipts) == ["ACCEPTD"] * 7 + ["DELIVRD"] * 7
    for tracking_id in tracking.values():
        states = [e["state"] for e in gw.events if e.get("tracking_id") == tracking_id
                  and e["type"] == "state"]
        assert "submitted" in states and states[-1] == "delivered", states

    view = await gw.message(tracking["ucs2"])
    assert view["state"] == "delivered" and view["data_coding"] == 8 and view["id"] == "ucs2"
    (segment,) = view["segments"]
    assert segment["smsc_message_id"] == answered_id(sim, ucs2_pdu)
    receipt = segment["receipt"]
    assert receipt["stat"] == "DELIVRD" and receipt["err"] == "000"
    assert receipt["details"]["vendor"] == {
        "sent_status_code": 2, "sent_status": "SENT_SUCCESS",
        "delivered_status_code": 4, "delivered_status": "DELIVERED_SUCCESS",
    }
    long_view = await gw.message(tracking["long"])
    assert long_view["parts"] == 3 and len(long_view["segments"]) == 3
    assert all(s["state"] == "delivered" for s in long_view["segments"])
    assert len({s["smsc_message_id"] for s in long_view["segments"]}) == 3
    flash_view = await gw.message(tracking["flash"])
    assert flash_view["flash"] is True

    # The metrics listener runs on its own port and counts what happened.
    assert gw.daemon.metrics_server is not None
    port = gw.daemon.metrics_server.port
    async with aiohttp.ClientSession() as plain, plain.get(
            f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    assert resp.status == 200 and "smppgw_" in text


# --- Qikberry: Latin-1 (3) when opted in, err-coded final receipts, receipts on another bind


async def test_qikberry_err_coded_receipts_map_to_final_states_on_another_bind(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """Qikberry relays receipts to another bind of the account and reports the outcome in
    stat/err only: UNDELIV err 034 → 'undeliverable', REJECTD err 458 → 'rejected',
    DELIVRD → 'delivered'. Latin-1 goes out as data_coding 3 on Qikberry once the provider
    opts in (its document: 3 "if and only if told so explicitly")."""
    sim = await sim_factory(SimulatorConfig.qikberry(
        receipts=ReceiptPlan(style="qikberry", outcomes={"UNDELIV": 1}, routing="other")))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("qik", "qikberry", sim, ["91"], binds_per_host=3,
                       data_coding={"latin1": 3}, template_id="1107000000000000001")]))
    await sim.wait_bound(3, timeout=WAIT)

    tracking = {}
    for client_id, text, plan in (
        ("undeliv", "Namaste ação 1", {"REJECTD": 1}),
        ("rejected", "Plain text 2", {"DELIVRD": 1}),
        ("delivered", "Plain text 3", None),
    ):
        answers = await gw.submit({"id": client_id, "to": "919812345678", "from": "ACMEIN",
                                   "text": text})
        tracking[client_id] = answers[client_id]["tracking_id"]
        # The simulator draws a message's outcome when it answers the submit: switch the plan
        # for the next one only once this one was answered.
        await sim.wait_for(accepted_at_least(sim, len(tracking)), timeout=WAIT)
        if plan is not None:
            sim.set_receipt_plan(ReceiptPlan(style="qikberry", outcomes=plan, routing="other"))
    assert (await gw.message(tracking["undeliv"]))["data_coding"] == 3
    (latin,) = submits_to(sim, b"Namaste")
    assert latin.data_coding == 3 and latin.short_message == "Namaste ação 1".encode("latin-1")

    await gw.wait_states({
        tracking["undeliv"]: "undeliverable",
        tracking["rejected"]: "rejected",
        tracking["delivered"]: "delivered",
    })
    expected = {"undeliv": ("UNDELIV", "034"), "rejected": ("REJECTD", "458"),
                "delivered": ("DELIVRD", "000")}
    for client_id, (stat, err) in expected.items():
        view = await gw.message(tracking[client_id])
        (segment,) = view["segments"]
        assert (segment["receipt"]["stat"], segment["receipt"]["err"]) == (stat, err), view
        # A history entry names the stat and err that decided the state.
        assert any(h["detail"].get("stat") == stat and h["detail"].get("err") == err
                   for h in view["history"]), view["history"]
        # The receipt came on another bind than the submit went out on.
        assert segment["bind"] and segment["receipt"]["bind"]
        assert segment["receipt"]["bind"] != segment["bind"]
    for receipt in sim.receipts:
        assert receipt.acknowledged and receipt.connection_id != receipt.origin_connection_id


# --- a receipt that overtakes its submit_sm_resp -----------------------------------------------


async def test_a_receipt_before_its_submit_sm_resp_is_parked_then_applied(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """The SMSC holds the submit_sm_resp (an hour of latency) while a DELIVRD receipt for the
    id it chose arrives on another bind: the daemon commits and acknowledges it at once
    (parked, unmatched), and applies it the moment the submit_sm_resp is recorded."""
    sim = await sim_factory(SimulatorConfig(faults=Faults(latency=3600.0)))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("gen", "generic", sim, ["55"], binds=2)]))
    await sim.wait_bound(2, timeout=WAIT)

    answers = await gw.submit({"id": "early", "to": "5511999990000", "from": "Acme",
                               "text": "Receipt overtakes resp"})
    tracking_id = answers["early"]["tracking_id"]
    await sim.wait_submits(1, timeout=WAIT)
    (record,) = sim.submits
    submit = record.pdu
    assert isinstance(submit, SubmitSm)
    (message_id,) = sim.messages  # the id the held submit_sm_resp will carry
    (other,) = [c.id for c in sim.bound_connections() if c.id != record.connection_id]
    now = datetime.datetime.now(datetime.UTC)
    receipt = build_receipt(submit, message_id, outcome_of_key("DELIVRD", "standard"),
                            "standard", submitted_at_wall=now, done_at_wall=now)
    sequence_number = sim.send_pdu(other, receipt)

    await sim.wait_for(deliver_answered(sim, other, sequence_number), timeout=WAIT)
    (resp,) = [r.pdu for r in sim.received if isinstance(r.pdu, DeliverSmResp)
               and r.connection_id == other and r.pdu.sequence_number == sequence_number]
    assert resp.command_status == CommandStatus.ESME_ROK  # committed, though unmatched yet
    # Nothing has answered the submit yet: the message waits, the receipt is parked.
    assert not [r for r in sim.sent if isinstance(r.pdu, SubmitSmResp)]
    view = await gw.message(tracking_id)
    assert view["state"] == "queued" and view["segments"][0]["receipt"] is None
    status = await gw.get("/v1/status")
    assert status["counts"]["unmatched_receipts"] == 1
    started = datetime.datetime.fromisoformat(status["started_at"])  # ISO 8601 UTC
    assert started.tzinfo is not None and status["started_at"].endswith("Z")

    # Now the submit_sm_resp, on the submit's own connection.
    sim.send_pdu(record.connection_id,
                 SubmitSmResp(sequence_number=submit.sequence_number, message_id=message_id))
    await gw.wait_states({tracking_id: "delivered"})
    view = await gw.message(tracking_id)
    (segment,) = view["segments"]
    assert segment["smsc_message_id"] == message_id
    assert segment["receipt"]["stat"] == "DELIVRD"
    # In commit order: accepted (queued), then in the commit of the submit_sm_resp: submitted,
    # the parked receipt, delivered.
    assert [(e["type"], e["state"]) for e in gw.events if e.get("tracking_id") == tracking_id
            ] == [("state", "queued"), ("state", "submitted"), ("receipt", "delivered"),
                  ("state", "delivered")]
    assert (await gw.get("/v1/status"))["counts"]["unmatched_receipts"] == 0


async def test_receipts_out_of_order_on_two_binds_never_move_a_message_back(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """Wavy's DELIVRD arrives on one bind before the ACCEPTD of the same message on another
    (receipts relayed over binds have no order): the message stays 'delivered', and both
    receipts are in the event log and acknowledged."""
    # The simulator's own receipts would come in an hour; the test sends them itself.
    sim = await sim_factory(SimulatorConfig.wavy(receipts=ReceiptPlan(style="wavy", delay=3600.0)))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "wavy", sim, ["55"])]))
    await sim.wait_bound(4, timeout=WAIT)
    answers = await gw.submit({"id": "reordered", "to": "5511999990000", "from": "Acme",
                               "text": "Stages swapped"})
    tracking_id = answers["reordered"]["tracking_id"]
    await gw.wait_states({tracking_id: "submitted"})
    (record,) = sim.submits
    submit = record.pdu
    assert isinstance(submit, SubmitSm)
    message_id = answered_id(sim, submit)
    first, second = [c.id for c in sim.bound_connections() if c.id != record.connection_id][:2]
    now = datetime.datetime.now(datetime.UTC)
    for connection_id, key in ((first, "DELIVRD"), (second, "ACCEPTD")):
        receipt = build_receipt(submit, message_id, outcome_of_key(key, "wavy"), "wavy",
                                submitted_at_wall=now, done_at_wall=now)
        sequence_number = sim.send_pdu(connection_id, receipt)
        # The next one goes only once this one is committed and answered.
        await sim.wait_for(deliver_answered(sim, connection_id, sequence_number), timeout=WAIT)
    await gw.wait_events(lambda ev: len([e for e in ev if e["type"] == "receipt"]) == 2)
    receipts = [e for e in gw.events if e["type"] == "receipt"]
    assert [(e["stat"], e["state"]) for e in receipts] == [
        ("DELIVRD", "delivered"), ("ACCEPTD", "delivered")]
    view = await gw.message(tracking_id)
    assert view["state"] == "delivered"
    assert view["segments"][0]["state"] == "delivered"
    assert [e["state"] for e in gw.events if e["type"] == "state"] == [
        "queued", "submitted", "delivered"]


# --- MO, the event stream, webhooks ------------------------------------------------------------

MO_TEXT = "".join(f"Reply line {i:03d} from the handset, please call me back. " for i in range(7))


async def test_concatenated_mo_out_of_order_and_events_resume_from_any_cursor(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3-part MO sent as parts 2, 1, 3 becomes one 'mo' event with the whole text. The event
    stream read page by page from any cursor gives exactly the events of one full read, in
    increasing cursor order; a waiting long-poll is answered by the next commit."""
    assert 307 <= len(MO_TEXT) <= 459  # three GSM7 parts of 153
    sim = await sim_factory(SimulatorConfig.wavy(
        receipts=ReceiptPlan(style="wavy", two_stage=True)))
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "wavy", sim, ["55"])]))
    await sim.wait_bound(4, timeout=WAIT)

    parts = sim.inject_mo("5511988887777", "acme", MO_TEXT, concatenated=True,
                          parts_order=(2, 1, 3))
    assert [p.pdu.short_message[5] for p in parts] == [2, 1, 3]
    events = await gw.wait_events(lambda ev: any(e["type"] == "mo" for e in ev))
    (mo,) = [e for e in events if e["type"] == "mo"]
    assert mo["text"] == MO_TEXT
    assert (mo["from"], mo["to"], mo["provider"]) == ("5511988887777", "acme", "wavy")
    await sim.wait_acknowledged(3, timeout=WAIT)
    sent_order = [r.pdu.short_message[5] for r in sim.sent
                  if isinstance(r.pdu, DeliverSm) and r.pdu.esm_class & 0x40]
    assert sent_order == [2, 1, 3]

    # Some message traffic, then the whole log one way and page by page the other.
    answers = await gw.submit(*({"id": f"ev-{i}", "to": f"551199999{i:04d}", "from": "Acme",
                                 "text": f"event {i}"} for i in range(4)))
    await gw.wait_states({a["tracking_id"]: "delivered" for a in answers.values()})
    full = (await gw.poll(0))["events"]
    cursors = [e["cursor"] for e in full]
    assert cursors == sorted(set(cursors)) and len(full) >= 1 + 4 * 4
    for event in full:
        assert {"cursor", "type", "at"} <= event.keys() and event["at"].endswith("Z")
        if event["type"] != "mo":
            assert event["tracking_id"] and event["id"].startswith("ev-") and event["state"]
    for start in (0, cursors[0], cursors[len(cursors) // 2]):
        paged: list[dict[str, Any]] = []
        cursor = start
        for _ in range(len(full) + 1):
            page = await gw.poll(cursor, limit=3)
            if not page["events"]:
                assert page["cursor"] == cursor
                break
            paged.extend(page["events"])
            cursor = page["cursor"]
            assert cursor == page["events"][-1]["cursor"]
        assert paged == [e for e in full if e["cursor"] > start]

    # A long-poll waiting at the end of the log is answered by the next commit: the store
    # says when the request starts waiting, and only then does the MO arrive.
    store = gw.daemon.store
    assert store is not None
    started_waiting = asyncio.Event()
    wait_for_events = store.wait_for_events

    async def signalling_wait(after: int, timeout: float) -> bool:
        started_waiting.set()
        return await wait_for_events(after, timeout)

    monkeypatch.setattr(store, "wait_for_events", signalling_wait)
    last = cursors[-1]
    waiting = asyncio.create_task(gw.poll(last, wait=30))
    async with asyncio.timeout(WAIT):
        await started_waiting.wait()
        sim.inject_mo("5511988887777", "acme", "STOP")
        page = await waiting
    assert [(e["type"], e["text"]) for e in page["events"]] == [("mo", "STOP")]
    assert page["cursor"] == page["events"][0]["cursor"] > last


async def test_a_webhook_receives_the_events_signed(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """A configured webhook gets the same events as the long-poll, as signed JSON POSTs.
    (Retries with their 10 s minimum delay are covered by test_webhooks against the pusher.)"""
    posts: list[tuple[dict[str, str], bytes]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        posts.append((dict(request.headers), await request.read()))
        arrived.set()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        sim = await sim_factory(SimulatorConfig())
        gw = await gateways(make_config(
            tmp_path, sock_dir / "s.sock", [provider_table("gen", "generic", sim, ["55"])],
            webhooks=[{"url": f"http://127.0.0.1:{port}/hook", "events": ["receipt", "mo"],
                       "auth": "bearer", "token_env": "HOOK_TOKEN",
                       "hmac_secret_env": "HOOK_HMAC"}],
            environ={"HOOK_TOKEN": "hook-token", "HOOK_HMAC": "hook-hmac"}))
        await sim.wait_bound(1, timeout=WAIT)
        answers = await gw.submit({"id": "hooked", "to": "5511999990000", "from": "Acme",
                                   "text": "webhook please"})
        sim.inject_mo("5511988887777", "acme", "hello hook")

        def pushed() -> list[dict[str, Any]]:
            return [e for _, body in posts for e in json.loads(body)["events"]]

        async with asyncio.timeout(WAIT):
            while not ({"receipt", "mo"} <= {e["type"] for e in pushed()}):
                arrived.clear()
                await arrived.wait()
    finally:
        await runner.cleanup()
    events = pushed()
    assert {e["type"] for e in events} == {"receipt", "mo"}  # 'state' is filtered out
    (receipt,) = [e for e in events if e["type"] == "receipt"]
    assert receipt["tracking_id"] == answers["hooked"]["tracking_id"]
    assert receipt["id"] == "hooked" and receipt["stat"] == "DELIVRD"
    assert [e["text"] for e in events if e["type"] == "mo"] == ["hello hook"]
    polled = {e["cursor"]: e for e in (await gw.poll(0))["events"]}
    for event in events:
        assert polled[event["cursor"]] == event
    for headers, body in posts:
        assert headers["Authorization"] == "Bearer hook-token"
        signed = headers["X-Smppgw-Timestamp"].encode() + b"." + body  # README's recipe
        digest = hmac.new(b"hook-hmac", signed, hashlib.sha256).hexdigest()
        assert headers["X-Smppgw-Signature"] == f"sha256={digest}"


# --- idempotency across a restart, SMSC refusals -----------------------------------------------


async def test_the_same_client_id_after_a_restart_returns_the_first_answer(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """Submit id X, stop the daemon, start a new one on the same state dir, submit X again:
    same tracking id, and the SMSC saw exactly one submit for it."""
    sim = await sim_factory(SimulatorConfig())
    config = make_config(tmp_path, sock_dir / "s.sock",
                         [provider_table("gen", "generic", sim, ["55"])])
    message = {"id": "once-only", "to": "5511999990000", "from": "Acme", "text": "only once X"}
    first = await gateways(config)
    answer = (await first.submit(message))["once-only"]
    assert "duplicate" not in answer
    await first.wait_states({answer["tracking_id"]: "delivered"})
    await first.stop()
    assert first.daemon.failure is None

    second = await gateways(config)
    again = (await second.submit(message))["once-only"]
    assert again["tracking_id"] == answer["tracking_id"] and again["duplicate"] is True
    assert {k: v for k, v in again.items() if k != "duplicate"} == answer
    # A new message after the duplicate: once it reached the SMSC, anything the duplicate
    # could have queued would have gone before it.
    later = await second.submit({"id": "after", "to": "5511999990000", "from": "Acme",
                                 "text": "after restart"})
    await second.wait_states({later["after"]["tracking_id"]: "delivered"})
    assert len(submits_to(sim, b"only once X")) == 1
    assert len(submits_to(sim, b"after restart")) == 1
    view = await second.message(answer["tracking_id"])
    assert view["state"] == "delivered" and view["attempts"] == 1


async def test_permanent_and_transient_smsc_refusals(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """ESME_RINVDSTADR fails the message with the status name in its history; ESME_RSYSERR is
    retried (after the dispatcher's 1 s first retry delay) and then delivered."""
    sim = await sim_factory(SimulatorConfig())
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock",
                                    [provider_table("gen", "generic", sim, ["55"])]))
    await sim.wait_bound(1, timeout=WAIT)

    sim.answer_next_submits(CommandStatus.ESME_RINVDSTADR)
    refused = (await gw.submit({"id": "refused", "to": "5511999990000", "from": "Acme",
                                "text": "permanent refusal"}))["refused"]
    await gw.wait_states({refused["tracking_id"]: "failed"})
    view = await gw.message(refused["tracking_id"])
    assert view["state"] == "failed"
    assert "ESME_RINVDSTADR" in view["last_error"]
    assert any(h["state"] == "failed" and h["detail"].get("error") == "ESME_RINVDSTADR"
               for h in view["history"]), view["history"]
    assert view["segments"][0]["submit_status"] == "ESME_RINVDSTADR"
    assert len(submits_to(sim, b"permanent refusal")) == 1

    sim.answer_next_submits(CommandStatus.ESME_RSYSERR)
    retried = (await gw.submit({"id": "retried", "to": "5511999990000", "from": "Acme",
                                "text": "transient refusal"}))["retried"]
    await gw.wait_states({retried["tracking_id"]: "delivered"})
    view = await gw.message(retried["tracking_id"])
    retries = [h for h in view["history"] if h["type"] == "retry"]
    assert [r["detail"]["status"] for r in retries] == ["ESME_RSYSERR"], view["history"]
    assert view["attempts"] == 2 and view["segments"][0]["submit_status"] == "ESME_ROK"
    statuses = [r.pdu.command_status for r in sim.sent if isinstance(r.pdu, SubmitSmResp)]
    assert statuses == [CommandStatus.ESME_RINVDSTADR, CommandStatus.ESME_RSYSERR,
                        CommandStatus.ESME_ROK]
    assert len(submits_to(sim, b"transient refusal")) == 2


# --- reload ------------------------------------------------------------------------------------


async def test_reload_keeps_unchanged_binds_and_adds_changes_and_removes_providers(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """daemon.reload(new config), as SIGHUP does: adding a provider binds it while the
    untouched provider keeps its very connections; changing only the second provider rebinds
    that one alone; removing it unbinds its binds. Traffic flows after each step."""
    wavy_sim = await sim_factory(SimulatorConfig.wavy())
    qik_sim = await sim_factory(SimulatorConfig.qikberry())
    socket_path = sock_dir / "s.sock"
    wavy = provider_table("wavy", "wavy", wavy_sim, ["55"])
    qik = provider_table("qik", "qikberry", qik_sim, ["91"], binds_per_host=2,
                         template_id="1107000000000000001")
    gw = await gateways(make_config(tmp_path, socket_path, [wavy]))
    await wavy_sim.wait_bound(4, timeout=WAIT)
    wavy_links = wavy_sim.open_connection_ids()
    assert len(wavy_links) == 4 and wavy_sim.connects_total == 4

    def wavy_untouched() -> None:
        assert wavy_sim.open_connection_ids() == wavy_links
        assert wavy_sim.connects_total == 4 and wavy_sim.unbinds_total == 0

    # 1. Add a provider.
    assert await gw.daemon.reload(make_config(tmp_path, socket_path, [wavy, qik])) is True
    await qik_sim.wait_bound(2, timeout=WAIT)
    wavy_untouched()
    assert set(gw.daemon.providers) == {"wavy", "qik"}
    answers = await gw.submit(
        {"id": "to-wavy", "to": "5511999990000", "from": "Acme", "text": "via wavy"},
        {"id": "to-qik", "to": "919812345678", "from": "ACMEIN", "text": "via qik"})
    await gw.wait_states({a["tracking_id"]: "delivered" for a in answers.values()})
    assert answers["to-qik"]["provider"] == "qik" and len(submits_to(qik_sim, b"via qik")) == 1

    # 2. Change only the second provider: it rebinds, the first keeps its links.
    qik_links = qik_sim.open_connection_ids()
    changed = {**qik, "enquire_link_interval": 45}
    assert await gw.daemon.reload(make_config(tmp_path, socket_path, [wavy, changed])) is True
    await qik_sim.wait_for(
        lambda: qik_sim.bound_count() == 2 and not set(qik_links) & set(
            qik_sim.open_connection_ids()), timeout=WAIT)
    assert qik_sim.unbinds_total == 2  # the old binds left gracefully
    wavy_untouched()

    # 3. Remove it: its binds unbind and close; the first provider still untouched.
    assert await gw.daemon.reload(make_config(tmp_path, socket_path, [wavy])) is True
    await qik_sim.wait_for(lambda: not qik_sim.open_connection_ids(), timeout=WAIT)
    assert qik_sim.unbinds_total == 4
    assert set(gw.daemon.providers) == {"wavy"}
    wavy_untouched()
    gone = await gw.submit_list({"id": "no-route", "to": "919812345678", "from": "ACMEIN",
                                 "text": "nowhere"})
    assert gone[0]["accepted"] is False and gone[0]["error"]["code"] == "no_route"
    final = await gw.submit({"id": "still", "to": "5511999990000", "from": "Acme",
                             "text": "still there"})
    await gw.wait_states({final["still"]["tracking_id"]: "delivered"})
    wavy_untouched()


# --- answers that arrive while binds drain ------------------------------------------------------

IN_FLIGHT = 10


async def in_flight_gateway(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> tuple[SmscSimulator, Gateway, dict[str, Any], list[str]]:
    """One generic bind (window 10) to an SMSC that answers each submit_sm after 0.5 s, and
    IN_FLIGHT messages all sent and not yet answered."""
    sim = await sim_factory(SimulatorConfig(
        faults=Faults(latency=0.5), receipts=ReceiptPlan(delay=3600.0)))
    table = provider_table("gen", "generic", sim, ["55"], binds=1)
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [table]))
    await sim.wait_bound(1, timeout=WAIT)
    answers = await gw.submit(*({"id": f"drain-{i}", "to": f"55119999900{i:02d}",
                                 "from": "Acme", "text": f"in flight {i}"}
                                for i in range(IN_FLIGHT)))
    await sim.wait_for(lambda: len(submits_to(sim, b"in flight")) == IN_FLIGHT, timeout=WAIT)
    assert not any(isinstance(r.pdu, SubmitSmResp) for r in sim.sent)  # all still in flight
    return sim, gw, table, [a["tracking_id"] for a in answers.values()]


async def test_sigterm_records_the_answers_that_come_while_the_window_drains(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """A graceful stop (SIGTERM) with a full window waits for the answers before it unbinds
    and records them: after the restart nothing is sent again (at-least-once stays 'once'
    when the SMSC answers in time)."""
    sim, gw, _table, tracking_ids = await in_flight_gateway(
        tmp_path, sock_dir, sim_factory, gateways)
    # The in-flight gauge is read from the session at scrape time.
    scrape = gw.daemon.metrics.exposition().decode()
    assert 'smppgw_bind_in_flight{bind="gen#0",provider="gen"} 10.0' in scrape
    await gw.stop()
    assert gw.daemon.failure is None
    assert sim.unbinds_total == 1
    answered = [r.pdu for r in sim.sent if isinstance(r.pdu, SubmitSmResp)]
    assert len(answered) == IN_FLIGHT
    async with await SqliteStore.open(tmp_path / "state") as store:
        assert (await store.recover()).requeued_segments == 0
        for tracking_id in tracking_ids:
            view = await store.get_message(tracking_id)
            assert view is not None and view.state == "submitted", view
            assert view.segments[0].smsc_message_id


async def test_reload_of_a_changed_provider_strands_nothing_in_flight(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """Changing a provider's settings rebinds it; the answers its old binds were waiting for
    are recorded during their drain, and each message was sent exactly once."""
    sim, gw, table, tracking_ids = await in_flight_gateway(
        tmp_path, sock_dir, sim_factory, gateways)
    changed = make_config(tmp_path, sock_dir / "s.sock",
                          [{**table, "enquire_link_interval": 45}])
    assert await gw.daemon.reload(changed) is True
    await gw.wait_states({tracking_id: "submitted" for tracking_id in tracking_ids})
    assert len(submits_to(sim, b"in flight")) == IN_FLIGHT
    assert (await gw.daemon.store.queue_stats()) == {}  # type: ignore[union-attr]


async def test_retention_deletes_what_is_older_than_keep_days(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any
) -> None:
    """[store] keep_days: a delivered message (and its client id) is deleted once its last
    change is older than that; a queued one is kept however old. The wall clock is the test's,
    so "older" is one step of it; the retention task's own rounds come every second."""
    sim = await sim_factory(SimulatorConfig(receipts=ReceiptPlan(delay=0.0)))
    wall = FakeWall()
    keep = 10.0
    gw = await gateways(make_config(
        tmp_path, sock_dir / "s.sock", [provider_table("gen", "generic", sim, ["55"])],
        store={"keep_days": keep / 86_400}), wall_clock=wall)
    await sim.wait_bound(1, timeout=WAIT)
    purged = asyncio.Event()
    counted = gw.daemon.metrics.store_purge

    def store_purge(deleted: dict[str, int]) -> None:
        counted(deleted)
        if deleted.get("messages"):
            purged.set()

    gw.daemon.metrics.store_purge = store_purge  # type: ignore[method-assign]
    answers = await gw.submit({"id": "old", "to": "5511999990001", "from": "Acme",
                               "text": "delivered long ago"})
    await gw.wait_states({answers["old"]["tracking_id"]: "delivered"})
    wall.now += keep + 1
    async with asyncio.timeout(WAIT):
        await purged.wait()
    async with gw.http.get("http://smppgw/v1/messages", params={"id": "old"}) as resp:
        assert (await resp.json()) == {"messages": [], "next": None}
    again = await gw.submit({"id": "old", "to": "5511999990001", "from": "Acme",
                             "text": "a new message under the same id"})
    assert again["old"]["accepted"] is True and "duplicate" not in again["old"]
    assert again["old"]["tracking_id"] != answers["old"]["tracking_id"]
    scrape = gw.daemon.metrics.exposition().decode()
    assert 'smppgw_store_purged_total{kind="messages"} 1.0' in scrape


class FakeWall:
    """A wall clock that starts now and moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now
