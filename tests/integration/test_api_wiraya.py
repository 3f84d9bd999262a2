"""Wiraya's EnqueueCommunications endpoint as Wiraya's clients use it (shared/seeds/002): JSON,
XML and form bodies, answers in the request's format (or the one Accept asks for), and errors
that name Wiraya's fields (``communications[i].recipient``), never ours.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from smppgw.api.app import start_api
from smppgw.config import HostPort, Secret
from tests.integration.test_api import LONG_UCS2, TOKEN, TRACKING_ID, Api, api, minimal_app

__all__ = ["api"]   # the fixture, shared with test_api.py

pytestmark = pytest.mark.timeout(30)

ENDPOINT = "/api/EnqueueCommunications"


def communication(client_message_id: str = "c-1", recipient: Any = "5511999990000",
                  **content: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": "Hej"}
    fields.update(content)
    return {"clientMessageId": client_message_id, "recipient": recipient,
            "content": {k: v for k, v in fields.items() if v is not ...}}


async def post(api: Api, data: bytes | str, content_type: str | None,
               accept: str | None = None) -> tuple[int, str, bytes]:
    """(status, media type, body) of one POST, whatever the answer's format."""
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    async with api.session.post("http://localhost" + ENDPOINT, data=data, headers=headers,
                                skip_auto_headers=["Content-Type"]) as response:
        return response.status, response.content_type, await response.read()


async def enqueue(api: Api, *communications: dict[str, Any]) -> dict[str, Any]:
    status, body = await api.call("POST", ENDPOINT,
                                  json={"communications": list(communications)})
    assert status == 200, body
    return dict(body["results"])


def xml_results(raw: bytes) -> dict[str, dict[str, Any]]:
    root = ET.fromstring(raw)
    assert root.tag == "EnqueueCommunicationsResponse"
    results: dict[str, dict[str, Any]] = {}
    for result in root.iterfind("results/result"):
        entry: dict[str, Any] = {child.tag: child.text for child in result if child.tag != "error"}
        error = result.find("error")
        if error is not None:
            entry["error"] = {child.tag: child.text or "" for child in error}
        results[result.attrib["clientMessageId"]] = entry
    return results


# --- field errors in Wiraya's names ----------------------------------------------------------


@pytest.mark.parametrize(("item", "code", "field"), [
    (communication(sender=...), "missing_field", "communications[0].content.sender"),
    (communication(sender=["Wiraya"]), "invalid_type", "communications[0].content.sender"),
    (communication(sender=""), "invalid_sender", "communications[0].content.sender"),
    (communication(sender="TwelveLetter"), "invalid_sender", "communications[0].content.sender"),
    (communication(sender="A!"), "invalid_sender", "communications[0].content.sender"),
    (communication(recipient=None), "missing_field", "communications[0].recipient"),
    (communication(recipient=5511999990000), "invalid_type", "communications[0].recipient"),
    (communication(recipient="not-a-number"), "invalid_destination",
     "communications[0].recipient"),
    (communication(recipient="4915112345678"), "no_route", "communications[0].recipient"),
    (communication(text=...), "missing_field", "communications[0].content.text"),
    (communication(text={"t": 1}), "invalid_type", "communications[0].content.text"),
    (communication(text=""), "invalid_value", "communications[0].content.text"),
    (communication(text=LONG_UCS2), "too_many_parts", "communications[0].content.text"),
    (communication(**{"$type": ...}), "missing_field", "communications[0].content.$type"),
    (communication(**{"$type": ["SMSFromAlpha"]}), "invalid_type",
     "communications[0].content.$type"),
    (communication(**{"$type": {"name": "SMSFromAlpha"}}), "invalid_type",
     "communications[0].content.$type"),
    (communication(**{"$type": "Email"}), "invalid_value", "communications[0].content.$type"),
    (communication(**{"$type": "VoiceProject"}), "invalid_value",
     "communications[0].content.$type"),
    ({"clientMessageId": "c-1", "recipient": "5511999990000"}, "missing_field",
     "communications[0].content"),
    ({"clientMessageId": "c-1", "recipient": "5511999990000", "content": "SMSFromAlpha"},
     "invalid_type", "communications[0].content"),
])
async def test_a_refused_communication_names_wiraya_fields(
    api: Api, item: dict[str, Any], code: str, field: str,
) -> None:
    results = await enqueue(api, communication("ok"), {**item, "clientMessageId": "bad"})
    assert results["ok"]["success"] is True
    bad = results["bad"]
    assert (bad["success"], bad["isTransientError"], bad["trackingId"]) == (False, False, None)
    assert (bad["error"]["code"], bad["error"]["field"]) == (code, field.replace("[0]", "[1]"))
    for ours in ("messages[", "'to'", "'from'", "'id'"):
        assert ours not in bad["error"]["message"] and ours not in bad["error"]["field"]
    assert await api.message_count() == 1


@pytest.mark.parametrize(("body", "code", "field"), [
    ([], "invalid_request", ""),
    ({}, "missing_field", "communications"),
    ({"communications": "hi"}, "invalid_type", "communications"),
    ({"communications": {"clientMessageId": "x"}}, "invalid_type", "communications"),
    ({"communications": []}, "invalid_request", "communications"),
    ({"communications": ["x"]}, "invalid_type", "communications[0]"),
    ({"communications": [communication(), {"recipient": "55"}]}, "missing_field",
     "communications[1].clientMessageId"),
    ({"communications": [{**communication(), "clientMessageId": 5}]}, "invalid_type",
     "communications[0].clientMessageId"),
    ({"communications": [{**communication(), "clientMessageId": ""}]}, "invalid_value",
     "communications[0].clientMessageId"),
    ({"communications": [communication("d"), communication("d")]}, "duplicate_id",
     "communications[1].clientMessageId"),
])
async def test_a_request_wiraya_cannot_key_answers_for_is_a_400(
    api: Api, body: Any, code: str, field: str,
) -> None:
    status, answer = await api.call("POST", ENDPOINT, json=body)
    assert status == 400
    assert (answer["error"]["code"], answer["error"]["field"]) == (code, field)
    assert await api.message_count() == 0


async def test_fields_wiraya_does_not_define_are_ignored_as_wiraya_ignores_them(
    api: Api,
) -> None:
    item = communication(nextAttemptUtc="2030-01-01T00:00:00Z")
    item["priority"] = "high"
    status, body = await api.call("POST", ENDPOINT, json={
        "communications": [item], "batch": "b-7"})
    assert status == 200 and body["results"]["c-1"]["success"] is True


# --- XML -------------------------------------------------------------------------------------

DATA_CONTRACT_XML = """<?xml version="1.0" encoding="utf-8"?>
<EnqueueCommunicationsRequestModel xmlns:i="http://www.w3.org/2001/XMLSchema-instance"
    xmlns="http://schemas.datacontract.org/2004/07/Wiraya.Api.Models">
  <communications>
    <CommunicationModel>
      <clientMessageId>x-1</clientMessageId>
      <content i:type="SMSFromAlpha">
        <sender>Wiraya</sender>
        <text>Olá &amp; obrigado &lt;3</text>
      </content>
      <recipient>5511999990000</recipient>
    </CommunicationModel>
    <CommunicationModel>
      <clientMessageId>x-2</clientMessageId>
      <content i:type="SMSFromAlpha"><sender>Wiraya</sender><text>Hej</text></content>
      <recipient>55-11</recipient>
    </CommunicationModel>
  </communications>
</EnqueueCommunicationsRequestModel>
"""


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml; charset=utf-8"])
async def test_an_xml_request_gets_an_xml_answer(api: Api, content_type: str) -> None:
    status, media_type, raw = await post(api, DATA_CONTRACT_XML, content_type)
    assert status == 200, raw
    assert media_type == content_type.partition(";")[0]
    results = xml_results(raw)
    assert list(results) == ["x-1", "x-2"]
    assert (results["x-1"]["success"], results["x-1"]["isTransientError"]) == ("true", "false")
    assert TRACKING_ID.fullmatch(results["x-1"]["trackingId"])
    assert "trackingId" not in results["x-2"] and results["x-2"]["success"] == "false"
    assert results["x-2"]["error"] == {
        "code": "invalid_destination", "field": "communications[1].recipient",
        "message": "'recipient' must be 1 to 20 digits, optionally after a '+' "
                   "(international format)"}
    view = await api.store.get_message(results["x-1"]["trackingId"])
    assert view is not None and view.client_id == "x-1"
    assert await api.message_count() == 1


async def test_xml_in_plain_names_with_a_type_attribute(api: Api) -> None:
    body = ("<request><communications><communication><clientMessageId>p-1</clientMessageId>"
            "<recipient>5511999990000</recipient><content type='SMSFromAlpha'>"
            "<sender>Acme</sender><text>hi</text></content></communication></communications>"
            "</request>")
    status, _, raw = await post(api, body.encode("utf-16"), "application/xml; charset=utf-16")
    assert status == 200
    assert xml_results(raw)["p-1"]["success"] == "true"


@pytest.mark.parametrize(("body", "detail"), [
    ("<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
     "<r><communications/></r>", "DOCTYPE"),
    ("<!DOCTYPE r SYSTEM 'file:///etc/passwd'><r>&xxe;</r>", "DOCTYPE"),
    ("<r><communications>", "line 1"),
    ("<r>&undefined;</r>", "undefined entity"),
    ("<r>" + "<a>" * 40 + "</a>" * 40 + "</r>", "nest deeper"),
])
async def test_hostile_or_broken_xml_is_a_400_in_xml(api: Api, body: str, detail: str) -> None:
    status, media_type, raw = await post(api, body, "text/xml")
    assert (status, media_type) == (400, "text/xml")
    error = ET.fromstring(raw)
    assert error.tag == "error" and error.findtext("code") == "invalid_xml"
    assert detail in (error.findtext("message") or "")
    assert await api.message_count() == 0


async def test_an_xml_field_error_names_the_wiraya_path(api: Api) -> None:
    body = ("<r><communications><c><clientMessageId>d-1</clientMessageId>"
            "<recipient>5511999990000</recipient><content i:type='SMSFromAlpha' "
            "xmlns:i='http://www.w3.org/2001/XMLSchema-instance'><text>no sender</text>"
            "</content></c></communications></r>")
    status, _, raw = await post(api, body, "application/xml")
    assert status == 200
    assert xml_results(raw)["d-1"]["error"]["field"] == "communications[0].content.sender"


# --- the answer's format ---------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "accept", "expected"), [
    ("application/json", None, "application/json"),
    ("text/json", None, "text/json"),
    ("application/json", "text/xml", "text/xml"),
    ("application/json", "text/html, application/xml;q=0.5, application/json;q=0.9",
     "application/json"),
    ("application/xml", "application/json", "application/json"),
    ("application/xml", "*/*", "application/xml"),
    ("application/xml", "text/html", "application/xml"),
    (None, None, "application/json"),
    ("application/x-www-form-urlencoded", None, "application/json"),
])
async def test_the_answer_follows_accept_then_the_request(
    api: Api, content_type: str | None, accept: str | None, expected: str,
) -> None:
    if content_type is not None and "xml" in content_type:
        data = DATA_CONTRACT_XML
    else:
        data = json.dumps({"communications": [communication("a-1")]})
    status, media_type, raw = await post(api, data, content_type, accept)
    assert (status, media_type) == (200, expected), raw
    if "xml" in expected:
        assert xml_results(raw)
    else:
        assert json.loads(raw)["results"]


async def test_errors_before_the_body_is_read_answer_in_the_request_format_too(
    api: Api, sock_dir: Path,
) -> None:
    gateway = replace(api.gateway, submit_socket=sock_dir / "tcp.sock",
                      api_listen=HostPort("127.0.0.1", 0), api_token=Secret(TOKEN))
    server = await start_api(minimal_app(api, gateway), gateway=gateway)
    try:
        async with aiohttp.ClientSession() as tcp, tcp.post(
            f"http://127.0.0.1:{server.tcp_port}{ENDPOINT}", data=DATA_CONTRACT_XML,
            headers={"Content-Type": "application/xml", "X-ApiKey": "wrong"},
        ) as response:
            assert (response.status, response.content_type) == (401, "application/xml")
            error = ET.fromstring(await response.read())
            assert error.findtext("code") == "unauthorized"
    finally:
        await server.close()


# --- forms -----------------------------------------------------------------------------------


def form(*communications: dict[str, Any], dotted: bool = False) -> str:
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(communications):
        base = f"communications[{index}]"
        for key, value in item.items():
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    name = (f"{base}.{key}.{inner}" if dotted else f"{base}[{key}][{inner}]")
                    pairs.append((name, str(inner_value)))
            else:
                pairs.append((f"{base}.{key}" if dotted else f"{base}[{key}]", str(value)))
    return urlencode(pairs)


@pytest.mark.parametrize("dotted", [False, True])
async def test_a_form_request_is_accepted(api: Api, dotted: bool) -> None:
    body = form(communication("f-1", text="Olá & até já"),
                communication("f-2", recipient="abc"), dotted=dotted)
    status, media_type, raw = await post(api, body, "application/x-www-form-urlencoded")
    assert (status, media_type) == (200, "application/json"), raw
    results = json.loads(raw)["results"]
    assert results["f-1"]["success"] is True
    assert results["f-2"]["error"]["field"] == "communications[1].recipient"
    view = await api.store.get_message(results["f-1"]["trackingId"])
    assert view is not None and view.client_id == "f-1"


async def test_json_sent_with_curls_default_form_type_is_read_as_json(api: Api) -> None:
    body = json.dumps({"communications": [communication("j-1")]})
    status, _, raw = await post(api, body, "application/x-www-form-urlencoded")
    assert status == 200 and json.loads(raw)["results"]["j-1"]["success"] is True


@pytest.mark.parametrize(("body", "field"), [
    ("communications[1][clientMessageId]=a", "communications[0]"),
    ("communications[0][clientMessageId]=a&communications[0][clientMessageId]=b",
     "communications[0][clientMessageId]"),
    ("communications=x&communications[0][clientMessageId]=a",
     "communications[0][clientMessageId]"),
    ("communications[0][clientMessageId]=%ff", ""),
    ("communications[x=1", "communications[x"),
])
async def test_a_broken_form_is_a_400_naming_the_key(api: Api, body: str, field: str) -> None:
    status, media_type, raw = await post(api, body, "application/x-www-form-urlencoded")
    assert (status, media_type) == (400, "application/json")
    error = json.loads(raw)["error"]
    assert (error["code"], error["field"]) == ("invalid_form", field)
    assert await api.message_count() == 0


async def test_other_media_types_are_415(api: Api) -> None:
    status, media_type, raw = await post(api, "hello", "text/plain")
    assert (status, media_type) == (415, "application/json")
    assert "application/xml" in json.loads(raw)["error"]["message"]
