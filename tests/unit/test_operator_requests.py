"""The pure parts of the operator's commands, as tables: the list's query string → a store
query or the parameter it breaks; the list's plan (which index each query walks); a stored
message → the request a retry runs again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from smppgw.api.queries import parse_list_query
from smppgw.api.schemas import RequestError
from smppgw.config import parse_config
from smppgw.flow.retry import refusal_field, retry_request
from smppgw.flow.submission import FieldError
from smppgw.store import MessageQuery, MessageView, PageKey
from smppgw.store.search import encode_cursor, next_key, plan, prefix_range

T0 = 1_700_000_000.0


@pytest.mark.parametrize(("query", "expected"), [
    ({}, MessageQuery()),
    ({"state": ["failed"], "limit": ["200"]}, MessageQuery(state="failed", limit=200)),
    ({"to_prefix": ["+5511"]}, MessageQuery(to_prefix="5511")),
    ({"provider": ["wavy_2"]}, MessageQuery(provider="wavy_2")),
    ({"since": ["2023-11-14T22:13:20Z"], "until": ["1700000060"]},
     MessageQuery(since_wall=T0, until_wall=T0 + 60)),
    ({"since": ["2023-11-14T22:13:20"]}, MessageQuery(since_wall=T0)),        # UTC
    ({"since": ["2023-11-15T00:13:20+02:00"]}, MessageQuery(since_wall=T0)),
    ({"after": [encode_cursor(PageKey(5, "a" * 32))]},
     MessageQuery(after=PageKey(5, "a" * 32))),
])
def test_list_queries_that_parse(query: dict[str, list[str]], expected: MessageQuery) -> None:
    assert parse_list_query(query) == expected


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"state": ["lost"]}, "state", "one of queued"),
    ({"state": ["failed", "queued"]}, "state", "more than once"),
    ({"provider": ["Wavy"]}, "provider", "a-z"),
    ({"to_prefix": [""]}, "to_prefix", "digits"),
    ({"to_prefix": ["55-11"]}, "to_prefix", "digits"),
    ({"since": ["tomorrow"]}, "since", "ISO 8601"),
    ({"until": ["2023-13-01"]}, "until", "ISO 8601"),
    ({"since": ["1700000060"], "until": ["1700000060"]}, "until", "later than"),
    ({"limit": ["0"]}, "limit", "1 to 200"),
    ({"limit": ["-1"]}, "limit", "1 to 200"),
    ({"limit": ["1e2"]}, "limit", "1 to 200"),
    ({"after": ["bm90LWEtY3Vyc29y"]}, "after", "'next'"),
    ({"sate": ["failed"]}, "sate", "unknown parameter"),
])
def test_list_queries_refused_name_the_parameter(
    query: dict[str, list[str]], field: str, words: str,
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_list_query(query)
    assert caught.value.error.field == field and caught.value.status == 400
    assert words in caught.value.error.message


@pytest.mark.parametrize(("query", "source", "left"), [
    (MessageQuery(), "created", {}),
    (MessageQuery(provider="wavy"), "provider", {}),
    (MessageQuery(provider="wavy", to_prefix="55"), "destination", {"provider": "wavy"}),
    (MessageQuery(state="delivered", provider="wavy"), "provider", {"state": "delivered"}),
    (MessageQuery(state="failed", provider="wavy", to_prefix="55"), "undelivered",
     {"provider": "wavy", "to_range": ("55", "56")}),
    (MessageQuery(state="cancelled"), "undelivered", {}),
    (MessageQuery(state="queued", to_prefix="5519"), "unsent",
     {"state": "queued", "to_range": ("5519", "551:")}),
])
def test_each_query_walks_the_index_that_narrows_it_most(
    query: MessageQuery, source: str, left: dict[str, object],
) -> None:
    p = plan(query)
    assert p.source == source
    assert {k: v for k, v in (("state", p.state), ("provider", p.provider),
                              ("to_range", p.to_range)) if v is not None} == left


def test_next_page_starts_after_the_page_or_where_the_walk_stopped() -> None:
    keys = [PageKey(9 - i, "a" * 32) for i in range(4)]
    assert next_key(keys, 3, 100, keys[-1], 1000) == keys[2]       # more than a page found
    assert next_key(keys[:2], 3, 1000, PageKey(1, "b" * 32), 1000) == PageKey(1, "b" * 32)
    assert next_key(keys[:2], 3, 999, PageKey(1, "b" * 32), 1000) is None   # walked it all
    assert prefix_range("5519") == ("5519", "551:")


VIEW = MessageView(
    tracking_id="ab" * 16, client_id="order-1", provider="wavy", source="acme",
    destination="5511999999999", text="Olá", flash=True, data_coding=3, encoding="latin1",
    esm_class=0, registered_delivery=1, tlvs=((0x1400, b"dlt\x00"), (0x1401, b"own\x00")),
    state="failed", parts=1, attempts=1, last_error="ESME_RINVDSTADR",
    created_wall=T0, updated_wall=T0, valid_until_wall=T0 + 45 * 60, answer={},
    segments=(), history=())


def test_a_retry_runs_the_request_as_it_chose() -> None:
    view = replace(VIEW, request={"from": "", "tlvs": [[0x1401, "6f776e00"]],
                                  "encoding": "ucs2", "validity_minutes": 30,
                                  "receipt": False, "provider": "wavy"})
    request = retry_request(view, None)
    assert (request.client_id, request.to, request.text, request.sender) == (
        "order-1", "5511999999999", "Olá", "")   # the provider's rule picks the sender again
    assert request.tlvs == ((0x1401, b"own\x00"),)  # its own TLV, not the provider's default
    assert (request.encoding, request.validity_minutes, request.receipt) == ("ucs2", 30, False)
    assert (request.provider, request.flash, request.retry_of) == ("wavy", True, "ab" * 16)
    assert retry_request(view, None, "qikberry").provider == "qikberry"


def test_a_retry_of_a_message_stored_before_requests_were_kept_uses_its_columns() -> None:
    request = retry_request(VIEW, None)
    assert (request.sender, request.tlvs, request.provider, request.encoding) == (
        "acme", VIEW.tlvs, None, None)
    assert (request.validity_minutes, request.receipt) == (45, True)
    assert retry_request(replace(VIEW, registered_delivery=0), None).receipt is False


def test_a_retry_of_such_a_message_drops_what_its_provider_added_when_it_knows_it() -> None:
    """As failover rebuilds a queued message: without the provider's TLV defaults, with no
    sender when the provider put its system_id there, and its template TLV (Qikberry's
    0x1401) as the template id, for the provider it goes to now."""
    wavy = parse_config({
        "gateway": {"state_dir": "/tmp/x"},
        "provider": [{"name": "wavy", "profile": "qikberry", "system_id": "acme",
                      "password": "pw", "routes": ["55"], "sender_as_system_id": True,
                      "tlv_defaults": {"0x1400": {"hex": "646c7400"}}}]},
        base_dir=Path("/tmp"), environ={}).providers[0]
    request = retry_request(VIEW, wavy)
    assert (request.sender, request.tlvs, request.template_id) == ("", (), "own")
    assert (request.validity_minutes, request.retry_of) == (45, VIEW.tracking_id)


def test_a_refusal_names_the_message_field_not_its_place_in_a_request() -> None:
    assert refusal_field(FieldError("no_route", "messages[0].to", "x")) == "to"
    assert refusal_field(FieldError("no_route", "provider", "x")) == "provider"


def test_cancel_sm_names_the_parts_the_smsc_holds_with_the_addresses_of_their_submit() -> None:
    from smppgw.flow.cancel import cancel_sm_pdu, cancelled_on_smsc, parts_on_smsc
    from smppgw.profiles import WAVY
    from smppgw.store import SegmentView

    def part(index: int, state: str, smsc_id: str | None) -> SegmentView:
        return SegmentView(index, state, b"", 0, 0, (), smsc_id, None, None, None, 0, 0.0,  # type: ignore[arg-type]
                           None, None, None, None, None, None)

    parts = [part(0, "delivered", "a"), part(1, "submitted", "b"), part(2, "accepted", "c"),
             part(3, "submitted", None), part(4, "queued", None), part(5, "cancelled", "f")]
    assert parts_on_smsc(parts) == [(1, "b"), (2, "c")]
    alpha = cancel_sm_pdu(WAVY, message_id="b", source="Acme", destination="5511999")
    assert (alpha.source_addr_ton, alpha.source_addr_npi, alpha.source_addr) == (5, 0, "Acme")
    assert (alpha.dest_addr_ton, alpha.destination_addr, alpha.message_id) == (1, "5511999", "b")
    numeric = cancel_sm_pdu(WAVY, message_id="b", source="+5511888", destination="5511999")
    assert (numeric.source_addr_ton, numeric.source_addr) == (1, "5511888")
    assert cancelled_on_smsc(0) and not cancelled_on_smsc(0x11) and not cancelled_on_smsc(None)


def test_a_retry_keeps_the_dlt_template_id_the_request_gave() -> None:
    from smppgw.flow.submission import SubmitRequest, request_choices

    asked = SubmitRequest(index=0, client_id="order-1", to="919812345678", sender="Acme",
                          text="Hi", template_id="1107161234567890123")
    choices = request_choices(asked, "Acme")
    assert choices == {"template_id": "1107161234567890123"}
    request = retry_request(replace(VIEW, destination="919812345678", request=choices), None)
    assert request.template_id == "1107161234567890123" and request.tlvs == ()
