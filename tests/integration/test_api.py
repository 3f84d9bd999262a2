"""The local submit API end to end: a real Store and SubmitService behind the aiohttp app on a
real unix socket (and a loopback TCP listener), driven by an aiohttp client. Covers every
input error, idempotency, Wiraya's endpoint, the long-poll, the listeners and secrecy.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from smppgw.api.app import ApiServer, ApiStartError, create_app, start_api
from smppgw.config import Config, GatewayConfig, HostPort, Secret, parse_config
from smppgw.metrics import Metrics
from smppgw.services.submission import SubmitService
from smppgw.store import MoMessage, ReceiptRecord, SqliteStore, SubmitOutcome

pytestmark = pytest.mark.timeout(30)

PASSWORD = "pw-S4711"  # SMPP 3.4 §4.1.1: at most 8 octets
TOKEN = "tok-Secret-0815"
TRACKING_ID = re.compile(r"[0-9a-f]{32}")


class SignallingStore(SqliteStore):
    """A Store that says when a long-poll starts waiting, so a test can commit an event
    exactly while the request waits (no sleeping to guess when that is)."""

    waiting: asyncio.Event

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        self.waiting.set()
        return await super().wait_for_events(after, timeout)


def make_config(state_dir: Path, submit_socket: Path) -> Config:
    return parse_config(
        {
            "gateway": {"state_dir": str(state_dir), "submit_socket": str(submit_socket)},
            "provider": [{
                "name": "acme", "profile": "generic", "hosts": ["127.0.0.1:1"],
                "system_id": "acme-sys", "password": PASSWORD, "routes": ["55"],
            }],
        },
        base_dir=state_dir.parent, environ={},
    )


@dataclass
class Api:
    config: Config
    gateway: GatewayConfig
    store: SignallingStore
    submit: SubmitService
    metrics: Metrics
    server: ApiServer
    session: aiohttp.ClientSession
    status_answer: dict[str, object] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | str | None = None,
        headers: dict[str, str] | None = None, session: aiohttp.ClientSession | None = None,
        base: str = "http://localhost",
    ) -> tuple[int, Any]:
        async with (session or self.session).request(
            method, base + path, json=json, data=data, headers=headers,
        ) as response:
            text = await response.text()
            self.bodies.append(text + repr(dict(response.headers)))
            assert response.content_type == "application/json", text
            return response.status, await response.json()

    async def post_messages(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
        status, body = await self.call("POST", "/v1/messages", json={"messages": list(messages)})
        assert status == 200, body
        return list(body["messages"])

    async def message_count(self) -> int:
        return sum((await self.store.counts()).messages.values())


def unix_session(path: Path) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)))


@pytest.fixture
async def api(tmp_path: Path, sock_dir: Path) -> AsyncIterator[Api]:
    config = make_config(tmp_path / "state", sock_dir / "run" / "submit.sock")
    gateway = config.gateway
    store = cast(SignallingStore, await SignallingStore.open(gateway.state_dir))
    store.waiting = asyncio.Event()
    submit = SubmitService(config, store)
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    status_answer: dict[str, object] = {"binds": [], "queues": {}, "version": "test"}

    async def status() -> dict[str, object]:
        return status_answer

    app = create_app(submit=submit, store=store, status=status, gateway=gateway,
                     metrics=metrics)
    server = await start_api(app, gateway=gateway)
    session = unix_session(gateway.submit_socket)
    yield Api(config, gateway, store, submit, metrics, server, session, status_answer)
    await session.close()
    await server.close()
    await store.close()


def minimal_app(api: Api, gateway: GatewayConfig) -> Any:
    """Another app on the same store and submit service, for a second listener."""
    async def status() -> dict[str, object]:
        return api.status_answer

    return create_app(submit=api.submit, store=api.store, status=status, gateway=gateway)


def ok_message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"to": "5511999990000", "from": "Acme", "text": "hello"}
    message.update(overrides)
    return message


# --- POST /v1/messages -----------------------------------------------------------------------


async def test_submit_one_message_is_stored_and_answered(api: Api) -> None:
    (answer,) = await api.post_messages(ok_message(id="a-1"))
    assert answer["accepted"] is True
    assert TRACKING_ID.fullmatch(answer["tracking_id"])
    assert (answer["id"], answer["segments"], answer["data_coding"], answer["provider"]) == (
        "a-1", 1, 0, "acme")
    assert await api.store.get_tracking_id("a-1") == answer["tracking_id"]
    assert (await api.store.counts()).messages == {"queued": 1}


async def test_batch_answers_in_order_and_one_bad_message_rejects_only_itself(api: Api) -> None:
    answers = await api.post_messages(
        ok_message(id="m0"), ok_message(id="m1", to="55-11"), ok_message(id="m2", text="é€"))
    assert [a["accepted"] for a in answers] == [True, False, True]
    assert [a["id"] for a in answers] == ["m0", "m1", "m2"]   # refusals carry the id too
    assert answers[1]["transient"] is False
    assert answers[1]["error"]["code"] == "invalid_destination"
    assert answers[1]["error"]["field"] == "messages[1].to"
    assert "tracking_id" not in answers[1]
    assert await api.message_count() == 2
    assert await api.store.get_tracking_id("m1") is None



async def test_every_refusal_carries_the_client_id_in_request_order(api: Api) -> None:
    answers = await api.post_messages(
        ok_message(id="r0", to="55-11"),            # refused by validation
        ok_message(id="r1", to="4915112345678"),    # refused by routing
        ok_message(id="r2"),
        ok_message(id="r2"),                        # the same id twice in one request
        ok_message(id=5),                           # not an id: nothing to echo
        ok_message(id="r5", colour="red"),
        ok_message(id="r6", text=""),
    )
    assert [a["id"] for a in answers] == ["r0", "r1", "r2", "r2", None, "r5", "r6"]
    assert [a["accepted"] for a in answers] == [False, False, True, False, False, False, False]
    assert [a.get("error", {}).get("field") for a in answers] == [
        "messages[0].to", "messages[1].to", None, "messages[3].id", "messages[4].id",
        "messages[5].colour", "messages[6].text"]
    assert await api.message_count() == 1

LONG_UCS2 = "ж" * (255 * 67 + 1)   # under the schema's length cap, but 256 UCS-2 parts


async def test_a_text_over_max_parts_is_refused_before_it_is_billed(api: Api) -> None:
    """max_parts (default 10, Kannel's max-messages): 10 parts pass, 11 are too_many_parts
    naming the text, the count and the key, and nothing is stored."""
    ten, eleven = "x" * (153 * 10), "x" * (153 * 10 + 1)
    answers = await api.post_messages(ok_message(text=ten), ok_message(text=eleven))
    assert answers[0]["accepted"] is True and answers[0]["segments"] == 10
    error = answers[1]["error"]
    assert (answers[1]["accepted"], answers[1]["transient"]) == (False, False)
    assert (error["code"], error["field"]) == ("too_many_parts", "messages[1].text")
    assert error["message"] == ("the text needs 11 parts; provider acme takes at most 10 per "
                                "message (max_parts)")
    assert await api.message_count() == 1


@pytest.mark.parametrize(("message", "code", "field"), [
    (ok_message(flash="yes"), "invalid_type", "messages[0].flash"),
    (ok_message(to=5511999990000), "invalid_type", "messages[0].to"),
    (ok_message(text=["hello"]), "invalid_type", "messages[0].text"),
    (ok_message(id=7), "invalid_type", "messages[0].id"),
    (ok_message(validity_minutes="60"), "invalid_type", "messages[0].validity_minutes"),
    (ok_message(encoding=["gsm7"]), "invalid_type", "messages[0].encoding"),
    (ok_message(tlvs=["0x1401"]), "invalid_type", "messages[0].tlvs"),
    ({"from": "Acme", "text": "hi"}, "missing_field", "messages[0].to"),
    ({"to": "5511999990000"}, "missing_field", "messages[0].text"),
    (ok_message(to="+55 11 9999"), "invalid_destination", "messages[0].to"),
    (ok_message(to="5511abc"), "invalid_destination", "messages[0].to"),
    (ok_message(**{"from": "A!"}), "invalid_sender", "messages[0].from"),
    (ok_message(**{"from": "ThisIsTooLongASender"}), "invalid_sender", "messages[0].from"),
    (ok_message(text="x" * (255 * 153 + 1)), "too_many_parts", "messages[0].text"),
    (ok_message(text=LONG_UCS2), "too_many_parts", "messages[0].text"),
    (ok_message(provider="nobody"), "unknown_provider", "messages[0].provider"),
    (ok_message(to="4915112345678"), "no_route", "messages[0].to"),
    (ok_message(tlvs={"0x1401": 5}), "invalid_tlv", "messages[0].tlvs.0x1401"),
    (ok_message(tlvs={"tag": "x"}), "invalid_tlv", "messages[0].tlvs.tag"),
    (ok_message(colour="red"), "unknown_field", "messages[0].colour"),
    ("just a string", "invalid_type", "messages[0]"),
])
async def test_bad_message_is_refused_with_its_field_and_nothing_is_stored(
    api: Api, message: Any, code: str, field: str,
) -> None:
    status, body = await api.call("POST", "/v1/messages", json={"messages": [message]})
    assert status == 200, body
    (answer,) = body["messages"]
    assert answer["accepted"] is False and answer["transient"] is False
    assert (answer["error"]["code"], answer["error"]["field"]) == (code, field)
    assert answer["error"]["message"]
    assert await api.message_count() == 0


@pytest.mark.parametrize(("data", "content_type", "status", "code", "detail"), [
    (b'{"messages": [', "application/json", 400, "invalid_json", "line 1, column 15"),
    (b'{"messages": [{"to": "55"},]}', "application/json", 400, "invalid_json", "line 1"),
    (b"", "application/json", 400, "invalid_json", "empty"),
    (b'\xff\xfe{"messages": []}', "application/json", 400, "invalid_json", "UTF-8"),
    (b'{"messages": [NaN]}', "application/json", 400, "invalid_json", "NaN"),
    (b'["not", "an", "object"]', "application/json", 400, "invalid_request", "object"),
    (b'{"message": []}', "application/json", 400, "unknown_field", "message"),
    (b'{"messages": "hi"}', "application/json", 400, "invalid_type", "messages"),
    (b'{"messages": {"to": "5511999990000"}}', "application/json", 400, "invalid_type",
     "messages"),
    (b'{}', "application/json", 400, "missing_field", "messages"),
    (b'{"messages": []}', "application/json", 400, "invalid_request", "1 to"),
    (b'{"messages": [{}]}', "application/xml", 415, "unsupported_media_type",
     "application/json"),
    (b'{"messages": [{}]}', "text/plain", 415, "unsupported_media_type", "application/json"),
    (b"to=5511999990000&text=hi", "application/x-www-form-urlencoded", 400, "invalid_json",
     "sent as a form"),
    (b'{"messages": [{}]}', "application/json; charset=latin-1", 415,
     "unsupported_media_type", "application/json"),
])
async def test_bad_envelope_is_a_4xx_and_nothing_is_stored(
    api: Api, data: bytes, content_type: str, status: int, code: str, detail: str,
) -> None:
    got, body = await api.call("POST", "/v1/messages", data=data,
                               headers={"Content-Type": content_type})
    assert got == status, body
    assert body["error"]["code"] == code
    assert detail in body["error"]["message"] or detail in body["error"]["field"]
    assert await api.message_count() == 0


async def test_body_over_the_limit_is_413_naming_the_limit(api: Api) -> None:
    path = api.gateway.submit_socket.with_name("small.sock")
    gateway = replace(api.gateway, submit_socket=path, max_body_bytes=4096)
    server = await start_api(minimal_app(api, gateway), gateway=gateway)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000
        yield b'{"messages": []}'

    try:
        async with unix_session(path) as session:
            big = {"messages": [ok_message(text="x" * 5000)]}
            status, body = await api.call("POST", "/v1/messages", json=big, session=session)
            assert status == 413
            assert body["error"]["code"] == "body_too_large"
            assert "4096 bytes" in body["error"]["message"]
            # Without a Content-Length (chunked), the limit holds as well.
            status, body = await api.call(
                "POST", "/v1/messages", data=chunks(),  # type: ignore[arg-type]
                headers={"Content-Type": "application/json"}, session=session)
            assert status == 413 and body["error"]["code"] == "body_too_large"
    finally:
        await server.close()
    assert await api.message_count() == 0


async def test_missing_content_type_text_json_and_curl_default_are_accepted(api: Api) -> None:
    body = b'{"messages": [{"to": "5511999990000", "text": "curl"}]}'
    async with api.session.post("http://localhost/v1/messages", data=body,
                                skip_auto_headers=["Content-Type"]) as response:
        assert response.status == 200
        assert (await response.json())["messages"][0]["accepted"] is True
    for content_type in ("text/json; charset=utf-8", "application/x-www-form-urlencoded"):
        status, answer = await api.call("POST", "/v1/messages", data=body,
                                        headers={"Content-Type": content_type})
        assert status == 200 and answer["messages"][0]["accepted"] is True


async def test_same_client_id_twice_gives_the_first_answer_and_stores_one(api: Api) -> None:
    (first,) = await api.post_messages(ok_message(id="dup-1"))
    (second,) = await api.post_messages(ok_message(id="dup-1", text="different text"))
    assert second["tracking_id"] == first["tracking_id"]
    assert second["accepted"] is True and second.get("duplicate") is True
    assert await api.message_count() == 1


async def test_same_client_id_twice_in_one_request_refuses_the_second(api: Api) -> None:
    answers = await api.post_messages(ok_message(id="x"), ok_message(id="x"))
    assert answers[0]["accepted"] is True
    assert answers[1]["error"]["code"] == "duplicate_id"
    assert await api.message_count() == 1


# --- POST /api/EnqueueCommunications ---------------------------------------------------------


async def test_wiraya_enqueue_answers_in_their_shape(api: Api) -> None:
    request = {"communications": [
        {"clientMessageId": "54321", "recipient": "5511999990000",
         "content": {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": "Your code is 1"}},
        {"clientMessageId": "12345", "recipient": "5511999990001",
         "content": {"$type": "SMSProject", "projectId": 123, "placeholders": ["John"]}},
        {"clientMessageId": "777", "recipient": "not-a-number",
         "content": {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": "x"}},
    ]}
    status, body = await api.call("POST", "/api/EnqueueCommunications", json=request)
    assert status == 200, body
    results = body["results"]
    assert list(results) == ["54321", "12345", "777"]
    ok = results["54321"]
    assert ok["success"] is True and ok["isTransientError"] is False
    assert TRACKING_ID.fullmatch(ok["trackingId"])
    template = results["12345"]
    assert template["success"] is False and template["isTransientError"] is False
    assert template["trackingId"] is None
    assert template["error"]["field"] == "communications[1].content.$type"
    assert results["777"]["error"]["field"] == "communications[2].recipient"
    assert await api.message_count() == 1
    assert await api.store.get_tracking_id("54321") == ok["trackingId"]


async def test_wiraya_envelope_error_is_400_and_nothing_is_stored(api: Api) -> None:
    status, body = await api.call("POST", "/api/EnqueueCommunications", json={
        "communications": [{"recipient": "5511999990000",
                            "content": {"$type": "SMSFromAlpha", "text": "x"}}]})
    assert status == 400
    assert body["error"]["field"] == "communications[0].clientMessageId"
    assert await api.message_count() == 0


# --- GET /v1/messages/{tracking_id} ----------------------------------------------------------


async def test_get_message_shows_state_parts_and_history(api: Api) -> None:
    (answer,) = await api.post_messages(
        ok_message(id="g-1", text="x" * 200, tlvs={"0x1401": "tenant"}))
    status, view = await api.call("GET", f"/v1/messages/{answer['tracking_id']}")
    assert status == 200
    assert (view["tracking_id"], view["id"], view["provider"], view["to"], view["from"]) == (
        answer["tracking_id"], "g-1", "acme", "5511999990000", "Acme")
    assert view["state"] == "queued" and view["data_coding"] == 0 and view["parts"] == 2
    assert [s["part_index"] for s in view["segments"]] == [0, 1]
    segment = view["segments"][0]
    assert segment["state"] == "queued" and segment["smsc_message_id"] is None
    assert segment["receipt"] is None
    assert {"tag": "0x1401", "hex": b"tenant\0".hex()} in view["tlvs"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", view["created"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", view["updated"])
    (entry,) = view["history"]
    assert (entry["type"], entry["state"]) == ("state", "queued")
    assert isinstance(entry["cursor"], int) and entry["at"].endswith("Z")
    assert "text" not in view   # see message_json: tracking ids travel in the event stream


async def test_receipts_with_vendor_fields_and_mo_show_in_message_and_events(api: Api) -> None:
    (answer,) = await api.post_messages(ok_message(id="dlr-1"))
    tracking_id = answer["tracking_id"]
    (part,) = await api.store.claim_segments("acme", 10)
    await api.store.record_submit_results([SubmitOutcome.ok(part.segment_id, "SMSC-77")])
    details = {"stat": "DELIVRD", "err": "000", "vendor": {"0x1403": "TIM", "0x1404": "72402"}}
    await api.store.record_receipts([ReceiptRecord(
        "acme", "SMSC-77", "DELIVRD", "000", "delivered", True, details=details,
        bind="acme#0")])
    await api.store.record_mo_message(MoMessage("acme", "5511988887777", "12345", "STOP"))

    status, view = await api.call("GET", f"/v1/messages/{tracking_id}")
    assert status == 200 and view["state"] == "delivered"
    (segment,) = view["segments"]
    assert (segment["smsc_message_id"], segment["submit_status"]) == ("SMSC-77", "ESME_ROK")
    receipt = segment["receipt"]
    assert (receipt["stat"], receipt["err"], receipt["bind"]) == ("DELIVRD", "000", "acme#0")
    assert receipt["details"]["vendor"] == {"0x1403": "TIM", "0x1404": "72402"}
    assert receipt["at"].endswith("Z") and segment["submitted"] is not None
    assert [(h["type"], h["state"]) for h in view["history"]] == [
        ("state", "queued"), ("state", "submitted"), ("receipt", "delivered"),
        ("state", "delivered")]

    status, body = await api.call("GET", "/v1/events?after=0")
    types = [e["type"] for e in body["events"]]
    assert types == ["state", "state", "receipt", "state", "mo"]
    receipt_event = body["events"][2]
    assert (receipt_event["tracking_id"], receipt_event["id"]) == (tracking_id, "dlr-1")
    mo = body["events"][-1]
    assert (mo["from"], mo["to"], mo["text"], mo["provider"]) == (
        "5511988887777", "12345", "STOP", "acme")
    assert "tracking_id" not in mo


async def test_get_message_with_a_bad_or_unknown_id(api: Api) -> None:
    status, body = await api.call("GET", "/v1/messages/ABCDEF")
    assert status == 400
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_value", "tracking_id")
    status, body = await api.call("GET", "/v1/messages/" + "A" * 32)
    assert status == 400
    status, body = await api.call("GET", "/v1/messages/" + "0" * 32)
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def test_find_a_message_by_its_client_id(api: Api) -> None:
    (answer,) = await api.post_messages(ok_message(id="order 7/ü"))
    await api.post_messages(ok_message(id="other"))
    status, body = await api.call("GET", "/v1/messages?id=order%207/%C3%BC")
    assert status == 200
    (view,) = body["messages"]
    _, by_tracking_id = await api.call("GET", f"/v1/messages/{answer['tracking_id']}")
    assert view == by_tracking_id and view["id"] == "order 7/ü"
    assert await api.call("GET", "/v1/messages?id=never-sent") == (
        200, {"messages": [], "next": None})


@pytest.mark.parametrize(("query", "field"), [
    ("?id=", "id"), ("?id=a&id=b", "id"), ("?id=" + "x" * 129, "id"),
    ("?id=a&state=queued", "state"),
])
async def test_find_messages_needs_exactly_one_id(api: Api, query: str, field: str) -> None:
    status, body = await api.call("GET", "/v1/messages" + query)
    assert status == 400 and body["error"]["field"] == field, body


# --- GET /v1/events --------------------------------------------------------------------------


async def test_long_poll_answers_as_soon_as_an_event_is_committed(api: Api) -> None:
    status, body = await api.call("GET", "/v1/events?after=0")
    assert (status, body) == (200, {"events": [], "cursor": 0})

    async with asyncio.timeout(10):   # far below the 60 s wait: only a wake-up can pass
        poll = asyncio.ensure_future(api.call("GET", "/v1/events?after=0&wait=60"))
        await api.store.waiting.wait()
        (answer,) = await api.post_messages(ok_message(id="ev-1"))
        status, body = await poll
    assert status == 200
    (event,) = body["events"]
    assert event["type"] == "state" and event["state"] == "queued"
    assert (event["tracking_id"], event["id"]) == (answer["tracking_id"], "ev-1")
    assert event["at"].endswith("Z")
    assert body["cursor"] == event["cursor"] > 0

    status, again = await api.call("GET", f"/v1/events?after={body['cursor']}")
    assert again == {"events": [], "cursor": body["cursor"]}


async def test_resuming_from_the_last_cursor_misses_nothing(api: Api) -> None:
    await api.post_messages(*(ok_message(id=f"r-{i}") for i in range(5)))
    await api.post_messages(ok_message(id="r-5"), ok_message(id="r-6"))
    seen: list[int] = []
    cursor = 0
    for _ in range(10):
        status, body = await api.call("GET", f"/v1/events?after={cursor}&limit=2")
        assert status == 200 and len(body["events"]) <= 2
        if not body["events"]:
            break
        seen += [e["cursor"] for e in body["events"]]
        cursor = body["cursor"]
    _, everything = await api.call("GET", "/v1/events?after=0&limit=1000")
    assert seen == [e["cursor"] for e in everything["events"]]
    assert len(seen) == 7 and seen == sorted(set(seen))
    assert {e["id"] for e in everything["events"]} == {f"r-{i}" for i in range(7)}


async def test_long_poll_ends_when_the_server_closes(api: Api) -> None:
    async with asyncio.timeout(10):
        poll = asyncio.ensure_future(api.call("GET", "/v1/events?after=0&wait=60"))
        await api.store.waiting.wait()
        await api.server.close()
        status, body = await poll
    assert (status, body) == (200, {"events": [], "cursor": 0})


@pytest.mark.parametrize(("query", "field"), [
    ("after=-1", "after"), ("after=abc", "after"), ("after=1.5", "after"),
    ("after=99999999999999999999", "after"), ("wait=61", "wait"), ("wait=-1", "wait"),
    ("wait=soon", "wait"), ("wait=nan", "wait"), ("limit=0", "limit"),
    ("limit=1001", "limit"), ("limit=x", "limit"), ("cursor=5", "cursor"),
    ("after=1&after=2", "after"),
])
async def test_events_parameters_are_validated(api: Api, query: str, field: str) -> None:
    status, body = await api.call("GET", f"/v1/events?{query}")
    assert status == 400
    assert body["error"]["field"] == field
    assert field in body["error"]["message"]


# --- status, health, errors ------------------------------------------------------------------


async def test_status_and_healthz(api: Api) -> None:
    api.status_answer["binds"] = [{"provider": "acme", "name": "acme#0", "state": "bound"}]
    status, body = await api.call("GET", "/v1/status")
    assert status == 200 and body == api.status_answer
    status, body = await api.call("GET", "/healthz")
    assert (status, body) == (200, {"ok": True})
    await api.store.close()
    status, body = await api.call("GET", "/healthz")
    assert status == 503 and body["ok"] is False
    status, body = await api.call("POST", "/v1/messages", json={"messages": [ok_message()]})
    assert status == 503 and body["error"]["code"] == "unavailable"


async def test_unknown_route_and_wrong_method_answer_json(api: Api) -> None:
    status, body = await api.call("GET", "/v2/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    async with api.session.put("http://localhost/v1/messages") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD, POST"
        assert (await response.json())["error"]["code"] == "method_not_allowed"
    status, body = await api.call("DELETE", "/v1/status")
    assert status == 405


async def test_unexpected_exception_is_a_500_without_details(
    api: Api, caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing_status() -> dict[str, object]:
        raise RuntimeError(f"boom with {PASSWORD}")

    app = create_app(submit=api.submit, store=api.store, status=failing_status,
                     gateway=api.gateway)
    path = api.gateway.submit_socket.with_name("fail.sock")
    server = await start_api(app, gateway=replace(api.gateway, submit_socket=path))
    try:
        async with unix_session(path) as session:
            status, body = await api.call("GET", "/v1/status", session=session)
    finally:
        await server.close()
    assert status == 500
    assert body["error"]["code"] == "internal"
    text = repr(body)
    assert "boom" not in text and PASSWORD not in text and "Traceback" not in text
    reference = re.search(r"ref ([0-9a-f]{8})", body["error"]["message"])
    assert reference is not None and reference.group(1) in caplog.text


async def test_metrics_count_requests_by_route_name_never_by_path(api: Api) -> None:
    (answer,) = await api.post_messages(ok_message())
    await api.call("GET", f"/v1/messages/{answer['tracking_id']}")
    await api.call("GET", "/v1/messages/" + "0" * 32)
    await api.call("GET", "/nope/" + "1" * 32)
    exposition = api.metrics.exposition().decode()
    assert 'smppgw_api_requests_total{code="200",endpoint="submit"} 1.0' in exposition
    assert 'smppgw_api_requests_total{code="200",endpoint="get_message"} 1.0' in exposition
    assert 'smppgw_api_requests_total{code="404",endpoint="get_message"} 1.0' in exposition
    assert 'smppgw_api_requests_total{code="404",endpoint="unmatched"} 1.0' in exposition
    assert answer["tracking_id"] not in exposition and "1" * 32 not in exposition


# --- listeners -------------------------------------------------------------------------------


async def test_listener_modes_and_cleanup(api: Api, sock_dir: Path) -> None:
    run_dir = sock_dir / "fresh"
    path = run_dir / "api.sock"
    gateway = replace(api.gateway, submit_socket=path, socket_mode=0o600)
    server = await start_api(minimal_app(api, gateway), gateway=gateway)
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o750 & ~_umask()
        # The fixture's own socket has the configured default mode.
        assert stat.S_IMODE(os.stat(api.gateway.submit_socket).st_mode) == 0o660
    finally:
        await server.close()
    assert not path.exists()
    await server.close()   # idempotent


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_a_stale_socket_file_is_replaced(api: Api, sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(path))
    leftover.close()   # the file stays, nobody listens: what a crash leaves behind
    gateway = replace(api.gateway, submit_socket=path)
    server = await start_api(minimal_app(api, gateway), gateway=gateway)
    try:
        async with unix_session(path) as session:
            status, _ = await api.call("GET", "/healthz", session=session)
        assert status == 200
    finally:
        await server.close()


async def test_a_live_socket_is_never_taken_over(api: Api) -> None:
    with pytest.raises(ApiStartError, match="another smppgw is listening on"):
        await start_api(minimal_app(api, api.gateway), gateway=api.gateway)
    status, _ = await api.call("GET", "/healthz")   # the first server is untouched
    assert status == 200


async def test_a_regular_file_is_never_deleted(api: Api, sock_dir: Path) -> None:
    path = sock_dir / "notes.txt"
    path.write_text("important")
    gateway = replace(api.gateway, submit_socket=path)
    with pytest.raises(ApiStartError, match="not a socket"):
        await start_api(minimal_app(api, gateway), gateway=gateway)
    assert path.read_text() == "important"


async def test_an_inherited_socket_is_used_and_not_unlinked(api: Api, sock_dir: Path) -> None:
    path = sock_dir / "activated.sock"
    inherited = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    inherited.bind(str(path))
    inherited.listen()
    gateway = replace(api.gateway, submit_socket=sock_dir / "unused.sock")
    server = await start_api(minimal_app(api, gateway), gateway=gateway,
                             inherited_socket=inherited)
    try:
        assert not gateway.submit_socket.exists()
        async with unix_session(path) as session:
            status, _ = await api.call("GET", "/v1/status", session=session)
        assert status == 200
    finally:
        await server.close()
    assert path.exists()   # systemd owns it


async def test_tcp_listener_requires_the_bearer_token(api: Api, sock_dir: Path) -> None:
    gateway = replace(api.gateway, submit_socket=sock_dir / "tcp.sock",
                      api_listen=HostPort("127.0.0.1", 0), api_token=Secret(TOKEN))
    server = await start_api(minimal_app(api, gateway), gateway=gateway)
    try:
        assert server.tcp_port
        base = f"http://127.0.0.1:{server.tcp_port}"
        async with aiohttp.ClientSession() as tcp:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                            {"Authorization": f"Basic {TOKEN}"}, {"X-ApiKey": TOKEN}):
                status, body = await api.call("GET", "/v1/status", session=tcp, base=base,
                                              headers=headers)
                assert status == 401, headers
                assert body["error"]["code"] == "unauthorized"
            status, _ = await api.call("GET", "/v2/unknown", session=tcp, base=base)
            assert status == 401   # no route discovery without the token
            status, _ = await api.call("GET", "/v1/status", session=tcp, base=base,
                                       headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            status, body = await api.call("GET", "/healthz", session=tcp, base=base)
            assert (status, body) == (200, {"ok": True})
            wiraya = {"communications": [
                {"clientMessageId": "w-tcp", "recipient": "5511999990000",
                 "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "hi"}}]}
            status, body = await api.call("POST", "/api/EnqueueCommunications", json=wiraya,
                                          session=tcp, base=base, headers={"X-ApiKey": TOKEN})
            assert status == 200 and body["results"]["w-tcp"]["success"] is True
            status, _ = await api.call("POST", "/api/EnqueueCommunications", json=wiraya,
                                       session=tcp, base=base, headers={"X-ApiKey": "nope"})
            assert status == 401
        async with unix_session(gateway.submit_socket) as local:
            status, _ = await api.call("GET", "/v1/status", session=local)
            assert status == 200   # the unix socket is guarded by its mode, not a token
    finally:
        await server.close()


async def test_no_secret_in_any_answer(api: Api, sock_dir: Path) -> None:
    gateway = replace(api.gateway, submit_socket=sock_dir / "s.sock",
                      api_listen=HostPort("127.0.0.1", 0), api_token=Secret(TOKEN))
    # What a careless status provider might return: repr() masks every Secret.
    api.status_answer["config"] = repr(api.config)
    server = await start_api(minimal_app(api, gateway), gateway=gateway)
    try:
        base = f"http://127.0.0.1:{server.tcp_port}"
        async with aiohttp.ClientSession() as tcp:
            await api.call("GET", "/v1/status", session=tcp, base=base)
            await api.call("GET", "/v1/status", session=tcp, base=base,
                           headers={"Authorization": "Bearer guess"})
        (answer,) = await api.post_messages(ok_message(id="s-1"))
        await api.call("GET", f"/v1/messages/{answer['tracking_id']}")
        await api.call("GET", "/v1/events?after=0")
        await api.call("GET", "/v1/status")
        await api.call("POST", "/v1/messages", data=b"{")
        await api.call("GET", "/missing")
    finally:
        await server.close()
    assert len(api.bodies) == 8
    assert "acme-sys" in "".join(api.bodies)   # the status answer did come through
    for text in api.bodies:
        assert PASSWORD not in text and TOKEN not in text
