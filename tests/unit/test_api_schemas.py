"""Submit request validation: each rule names its field; one bad message spares the others."""

from __future__ import annotations

import pytest

from smppgw.api.schemas import (
    MAX_SHOWN_NAME,
    RequestError,
    parse_submit_body,
    shown,
)
from smppgw.api.wiraya import parse_enqueue_body
from smppgw.flow.submission import FieldError, SubmitRequest


def one(message: dict[str, object], **kwargs: object) -> SubmitRequest | FieldError:
    return parse_submit_body({"messages": [message]}, **kwargs)[0]  # type: ignore[arg-type]


def test_a_good_message() -> None:
    result = one({"id": "c1", "to": "+5511999999999", "from": "Acme", "text": "Olá",
                  "flash": True, "validity_minutes": 60, "tlvs": {"0x1401": "123",
                                                                  "5122": {"hex": "00ff"}}})
    assert result == SubmitRequest(
        index=0, client_id="c1", to="5511999999999", sender="Acme", text="Olá", flash=True,
        validity_minutes=60, tlvs=((0x1401, b"123\0"), (5122, b"\x00\xff")),
    )


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"text": "x"}, "missing_field", "messages[0].to"),
        ({"to": "55"}, "missing_field", "messages[0].text"),
        ({"to": "55 11", "text": "x"}, "invalid_destination", "messages[0].to"),
        ({"to": "5" * 21, "text": "x"}, "invalid_destination", "messages[0].to"),
        ({"to": 5511, "text": "x"}, "invalid_type", "messages[0].to"),
        ({"to": "55", "text": 5}, "invalid_type", "messages[0].text"),
        ({"to": "55", "text": "x", "id": 5}, "invalid_type", "messages[0].id"),
        ({"to": "55", "text": "x", "validity_minutes": 1.5}, "invalid_type",
         "messages[0].validity_minutes"),
        ({"to": "55", "text": "x", "validity_minutes": True}, "invalid_type",
         "messages[0].validity_minutes"),
        ({"to": "55", "text": "x", "encoding": 8}, "invalid_type", "messages[0].encoding"),
        ({"to": "55", "text": "x", "tlvs": []}, "invalid_type", "messages[0].tlvs"),
        ({"to": "55", "text": "a\ud800"}, "invalid_value", "messages[0].text"),
        ({"to": "55", "text": "x", "id": "\udc00"}, "invalid_value", "messages[0].id"),
        ({"to": "55", "text": "x", "\ud800": 1}, "unknown_field", "messages[0].\\ud800"),
        ({"to": "55", "text": "x", "tlvs": {"\ud800": "a"}}, "invalid_tlv",
         "messages[0].tlvs.\\ud800"),
        ({"to": "55", "text": ""}, "invalid_value", "messages[0].text"),
        ({"to": "55", "text": "x", "from": "Ac"}, "invalid_sender", "messages[0].from"),
        ({"to": "55", "text": "x", "from": "Acme Corp"}, "invalid_sender", "messages[0].from"),
        ({"to": "55", "text": "x", "from": "TwelveLetter"}, "invalid_sender", "messages[0].from"),
        ({"to": "55", "text": "x", "flash": "yes"}, "invalid_type", "messages[0].flash"),
        ({"to": "55", "text": "x", "validity_minutes": 0}, "invalid_value",
         "messages[0].validity_minutes"),
        ({"to": "55", "text": "x", "tlvs": {"0x1ZZZ": "a"}}, "invalid_tlv",
         "messages[0].tlvs.0x1ZZZ"),
        ({"to": "55", "text": "x", "tlvs": {"0x1401": 5}}, "invalid_tlv",
         "messages[0].tlvs.0x1401"),
        ({"to": "55", "text": "x", "tlvs": {"0x1401": {"hex": "abc"}}}, "invalid_tlv",
         "messages[0].tlvs.0x1401"),
        ({"to": "55", "text": "x", "encoding": "utf8"}, "invalid_value", "messages[0].encoding"),
        ({"to": "55", "txt": "x"}, "unknown_field", "messages[0].txt"),
        ({"to": "55", "text": "x", "id": ""}, "invalid_value", "messages[0].id"),
        ({"to": "55", "text": "x" * 40000}, "too_many_parts", "messages[0].text"),
    ],
)
def test_each_rule_names_its_field(message: dict[str, object], code: str, field: str) -> None:
    result = one(message)
    assert isinstance(result, FieldError)
    assert (result.code, result.field) == (code, field)
    assert result.message


def test_unknown_field_suggests_the_right_name() -> None:
    result = one({"to": "55", "txt": "x"})
    assert isinstance(result, FieldError) and "did you mean 'text'" in result.message


def test_sender_policy_warn_accepts_with_a_warning() -> None:
    result = one({"to": "55", "text": "x", "from": "Acme Corp"}, sender_policy="warn")
    assert isinstance(result, SubmitRequest) and result.sender == "Acme Corp"
    assert result.warnings and "messages[0].from" in result.warnings[0]


def test_one_bad_message_does_not_reject_the_others() -> None:
    results = parse_submit_body({"messages": [{"to": "55", "text": "a"}, {"to": "x", "text": "b"},
                                              {"to": "56", "text": "c"}]})
    assert [type(r).__name__ for r in results] == ["SubmitRequest", "FieldError", "SubmitRequest"]


def test_duplicate_ids_in_one_request() -> None:
    results = parse_submit_body({"messages": [{"id": "a", "to": "55", "text": "a"},
                                              {"id": "a", "to": "55", "text": "b"}]})
    assert isinstance(results[1], FieldError) and results[1].code == "duplicate_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [([], ""), ({"messages": {}}, "messages"), ({"messages": []}, "messages"),
     ({"messages": [{}], "extra": 1}, "extra"), ({"messages": [{}] * 1001}, "messages")],
)
def test_envelope_errors_reject_the_request(body: object, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_submit_body(body)
    assert caught.value.error.field == field and caught.value.status == 400


@pytest.mark.parametrize(("body", "code"), [
    ({}, "missing_field"), ({"messages": "hi"}, "invalid_type"),
    ({"messages": None}, "invalid_type"), ({"messages": {"to": "55"}}, "invalid_type"),
    ({"messages": 3}, "invalid_type"),
])
def test_messages_missing_or_of_the_wrong_type(body: object, code: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_submit_body(body)
    assert (caught.value.error.code, caught.value.error.field) == (code, "messages")


def test_a_refusal_carries_the_message_id_only_when_the_id_is_valid() -> None:
    results = parse_submit_body({"messages": [
        {"id": "a", "to": "x", "text": "t"}, {"id": 5, "to": "55", "text": "t"},
        {"id": "b" * 129, "to": "55", "text": "t"}, {"id": "\ud800", "to": "55", "text": "t"},
        {"id": "c", "to": "55", "text": "t"}, {"id": "c", "to": "55", "text": "t"},
    ]})
    assert [r.client_id for r in results] == ["a", None, None, None, "c", "c"]
    assert [type(r).__name__ for r in results] == ["FieldError"] * 4 + [
        "SubmitRequest", "FieldError"]
    assert "client_id" not in results[0].as_json()   # type: ignore[union-attr]


def test_shown_names_are_escaped_and_bounded() -> None:
    assert shown("tlvs") == "tlvs"
    assert shown("a\ud800b") == "a\\ud800b"
    long = shown("\udfff" * 100)
    assert len(long) == MAX_SHOWN_NAME + 1 and long.endswith("…")
    long.encode("utf-8")   # whatever the name held, an error can carry it


def test_wiraya_translation() -> None:
    results = parse_enqueue_body({"communications": [
        {"clientMessageId": "w1", "recipient": "46701234567",
         "content": {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": "Hej"}},
        {"clientMessageId": "w2", "recipient": "46701234567",
         "content": {"$type": "SMSProject", "projectId": 1, "placeholders": []}},
        {"clientMessageId": "w3", "recipient": "abc",
         "content": {"$type": "SMSFromAlpha", "sender": "Wiraya", "text": "Hej"}},
    ]})
    (id1, first), (_, second), (_, third) = results
    assert id1 == "w1" and isinstance(first, SubmitRequest)
    assert (first.client_id, first.to, first.sender, first.text) == ("w1", "46701234567",
                                                                     "Wiraya", "Hej")
    assert isinstance(second, FieldError) and "templates are not supported" in second.message
    assert isinstance(third, FieldError) and third.field == "communications[2].recipient"


def test_wiraya_requires_client_message_id() -> None:
    with pytest.raises(RequestError, match="clientMessageId"):
        parse_enqueue_body({"communications": [{"recipient": "1", "content": {}}]})


def test_a_template_id_is_a_field_of_its_own() -> None:
    result = one({"to": "919812345678", "text": "x", "template_id": "1107161234567890123"})
    assert isinstance(result, SubmitRequest)
    assert result.template_id == "1107161234567890123" and result.tlvs == ()


@pytest.mark.parametrize("value", [1107161234567890123, "", "with space", "é", "x" * 65])
def test_a_template_id_is_printable_ascii(value: object) -> None:
    result = one({"to": "919812345678", "text": "x", "template_id": value})
    assert isinstance(result, FieldError) and result.field == "messages[0].template_id"
    assert "1 to 64 printable ASCII characters" in result.message


def test_wiraya_carries_a_dlt_template_id_in_the_content() -> None:
    ((_, request), (_, refused)) = parse_enqueue_body({"communications": [
        {"clientMessageId": "w1", "recipient": "919812345678",
         "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "Hi",
                     "dltTemplateId": "1107161234567890123"}},
        {"clientMessageId": "w2", "recipient": "919812345678",
         "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "Hi",
                     "dltTemplateId": "no spaces please"}},
    ]})
    assert isinstance(request, SubmitRequest) and request.template_id == "1107161234567890123"
    assert isinstance(refused, FieldError)
    assert refused.field == "communications[1].content.dltTemplateId"
    assert "'dltTemplateId' must be the DLT template id" in refused.message


def test_wiraya_answers_a_missing_template_id_by_its_own_field_name() -> None:
    from smppgw.api.wiraya import enqueue_results
    from smppgw.services.submission import SubmitAnswer

    pairs = parse_enqueue_body({"communications": [
        {"clientMessageId": "w1", "recipient": "919812345678",
         "content": {"$type": "SMSFromAlpha", "sender": "Acme", "text": "Hi"}}]})
    refused = FieldError("missing_field", "messages[0].template_id", "needs one")
    results = enqueue_results(pairs, [SubmitAnswer("w1", None, False, error=refused)])
    assert results["w1"]["error"] == {"code": "missing_field",
                                      "field": "communications[0].content.dltTemplateId",
                                      "message": "needs one"}
