"""Wiraya's XML and form bodies read into the JSON document shape, XML answers written back,
and the answer's media type chosen; hostile bodies refused by name before they cost anything."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from smppgw.api.schemas import RequestError
from smppgw.api.wiraya import enqueue_results, parse_enqueue_body
from smppgw.api.wiraya_formats import (
    MAX_FORM_FIELDS,
    MAX_XML_DEPTH,
    MAX_XML_ELEMENTS,
    answer_type,
    error_xml,
    read_form,
    read_xml,
    results_xml,
)
from smppgw.flow.submission import FieldError
from smppgw.services.submission import SubmitAnswer

XSI = 'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'


def refused(call: object, *args: object) -> tuple[str, str, str]:
    with pytest.raises(RequestError) as caught:
        call(*args)  # type: ignore[operator]
    error = caught.value.error
    return error.code, error.field, error.message


# --- XML -------------------------------------------------------------------------------------


def test_xml_maps_to_the_json_document() -> None:
    document = read_xml(f"""<Req {XSI} xmlns="urn:any"><communications>
        <Item><clientMessageId>1</clientMessageId><recipient>46701234567</recipient>
          <content i:type="d2p1:SMSFromAlpha"><sender>Wiraya</sender>
            <text> two  spaces </text></content></Item>
        <Item><clientMessageId>2</clientMessageId><recipient i:nil="true"/>
          <content type="SMSProject"><projectId>7</projectId>
            <placeholders><string>John</string><string/></placeholders></content></Item>
        </communications></Req>""".encode())
    assert document == {"communications": [
        {"clientMessageId": "1", "recipient": "46701234567",
         "content": {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": " two  spaces "}},
        {"clientMessageId": "2", "recipient": None,
         "content": {"$type": "SMSProject", "projectId": "7", "placeholders": ["John", ""]}},
    ]}


def test_an_empty_list_element_is_an_empty_list() -> None:
    assert read_xml(b"<r><communications/></r>") == {"communications": []}
    assert read_xml(b"<r><communications>\n </communications></r>") == {"communications": []}


def test_xml_charset_from_the_content_type_wins() -> None:
    body = "<r><a>Olá</a></r>".encode("latin-1")
    assert read_xml(body, "iso-8859-1") == {"a": "Olá"}
    assert refused(read_xml, body, "no-such-charset")[0] == "invalid_xml"


@pytest.mark.parametrize(("body", "field", "detail"), [
    # Entity expansion (billion laughs), external entities (XXE) and DTDs: refused outright.
    (b"<!DOCTYPE r [<!ENTITY a 'x'><!ENTITY b '&a;&a;'>]><r>&b;</r>", "", "DOCTYPE"),
    (b"<!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><r>&x;</r>", "", "DOCTYPE"),
    (b"<!DOCTYPE r SYSTEM 'http://127.0.0.1:1/dtd'><r/>", "", "DOCTYPE"),
    (b"<r>&nope;</r>", "", "undefined entity"),
    (b"<r><a>1</a><a>2</a></r>", "a", "appears twice"),
    (b"<r><c><d>1</d>text</c></r>", "c", "both text and elements"),
    (b"<r>" + b"<a>" * MAX_XML_DEPTH + b"</a>" * MAX_XML_DEPTH + b"</r>", "", "nest deeper"),
    (b"<r>" + b"<a/>" * MAX_XML_ELEMENTS + b"</r>", "", f"more than {MAX_XML_ELEMENTS}"),
    (b"<r><a></r>", "", "mismatched tag at line 1"),
    (b"\xff\xfe<", "", "invalid XML"),
    (b"<r>\xff</r>", "", "invalid XML"),
])
def test_hostile_or_broken_xml_is_refused(body: bytes, field: str, detail: str) -> None:
    code, got_field, message = refused(read_xml, body)
    assert (code, got_field) == ("invalid_xml", field)
    assert detail in message


def test_results_and_errors_as_xml_survive_any_client_text() -> None:
    results = {
        "a<&>\"'\x01\ud800": {"trackingId": "ab" * 16, "success": True,
                               "isTransientError": False},
        "b": {"trackingId": None, "success": False, "isTransientError": True,
              "error": {"code": "no_route", "field": "communications[1].recipient",
                        "message": "no route for <x> \x0b"}},
    }
    root = ET.fromstring(results_xml(results))
    first, second = root.iterfind("results/result")
    assert first.attrib["clientMessageId"] == "a<&>\"'\ufffd\ufffd"
    assert first.findtext("trackingId") == "ab" * 16 and first.findtext("success") == "true"
    assert second.find("trackingId") is None
    assert second.findtext("error/message") == "no route for <x> \ufffd"
    error = ET.fromstring(error_xml({"code": "invalid_xml", "field": "", "message": "a & b"}))
    assert (error.tag, error.findtext("code"), error.findtext("message")) == (
        "error", "invalid_xml", "a & b")


# --- forms -----------------------------------------------------------------------------------


def test_form_keys_in_bracket_and_dotted_syntax() -> None:
    document = read_form(
        "communications[0][clientMessageId]=1&communications[0][recipient]=4670"
        "&communications[0][content][%24type]=SMSFromAlpha&communications[0][content][text]="
        "a%26b+c&communications[1].clientMessageId=2&communications[1].content.placeholders[]=x"
        "&communications[1].content.placeholders[]=&batch=7")
    assert document == {"batch": "7", "communications": [
        {"clientMessageId": "1", "recipient": "4670",
         "content": {"$type": "SMSFromAlpha", "text": "a&b c"}},
        {"clientMessageId": "2", "content": {"placeholders": ["x", ""]}},
    ]}


@pytest.mark.parametrize(("body", "field", "detail"), [
    ("communications[2][x]=1", "communications[0]", "without 'communications[0]'"),
    ("a=1&a=2", "a", "given twice"),
    ("a[0]=1&a[b]=2", "a", "both list indexes and field names"),
    ("a[b]=1&a[]=2", "a[]", "not a list"),
    ("a=1&a[b]=2", "a[b]", "both as a value and with fields"),
    ("a[b]=1&a=2", "a", "given twice"),
    ("a[99999]=1", "a[99999]", "too large"),
    ("[0]=1", "[0]", "not a field name"),
    ("a]b=1", "a]b", "not a field name"),
    ("a" + "[b]" * 10 + "=1", "a" + "[b]" * 10, "not a field name"),
    ("a=%ff", "", "not UTF-8"),
    ("&".join(f"k{i}=1" for i in range(MAX_FORM_FIELDS + 1)), "", "more than"),
])
def test_a_broken_form_is_refused_naming_the_key(body: str, field: str, detail: str) -> None:
    code, got_field, message = refused(read_form, body)
    assert (code, got_field) == ("invalid_form", field)
    assert detail in message


# --- the answer's media type -----------------------------------------------------------------


@pytest.mark.parametrize(("accept", "request_type", "expected"), [
    (None, None, "application/json"),
    (None, "application/xml", "application/xml"),
    (None, "text/json", "text/json"),
    (None, "application/x-www-form-urlencoded", "application/json"),
    ("*/*", "text/xml", "text/xml"),
    ("application/json", "text/xml", "application/json"),
    ("text/xml;q=0.2, application/json;q=0.8", None, "application/json"),
    ("application/xml, application/json", None, "application/xml"),
    ("application/json;q=0, text/xml", None, "text/xml"),
    ("application/json;q=junk", "text/xml", "text/xml"),
    ("TEXT/XML", None, "text/xml"),
    ("text/html", "application/xml", "application/xml"),
    ("\udcff/\udcfe", None, "application/json"),
])
def test_answer_type(accept: str | None, request_type: str | None, expected: str) -> None:
    assert answer_type(accept, request_type) == expected


# --- from the document to the results --------------------------------------------------------


def test_errors_from_the_submit_path_are_renamed_to_wiraya_fields() -> None:
    pairs = parse_enqueue_body({"communications": [
        {"clientMessageId": "w1", "recipient": "491511",
         "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "x"}},
        {"clientMessageId": "w2", "recipient": "5511",
         "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "x"}},
    ]})
    answers = [
        SubmitAnswer("w1", None, False, error=FieldError("no_route", "messages[0].to", "no")),
        SubmitAnswer("w2", None, False, transient=True,
                     error=FieldError("invalid_request", "messages[1]", "store")),
    ]
    results = enqueue_results(pairs, answers)
    assert results["w1"]["error"] == {
        "code": "no_route", "field": "communications[0].recipient", "message": "no"}
    assert results["w2"]["error"]["field"] == "communications[1]"  # type: ignore[index]
    assert results["w2"]["isTransientError"] is True
