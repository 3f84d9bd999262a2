"""Accept-time checks against poison messages: a message is refused, naming the field and the
rule, when the SMSC or our encoder would refuse it at send time, so nothing is stored that
can never be sent. A real Store and SubmitService; requests parsed as the API parses them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smppgw.api.schemas import parse_submit_body
from smppgw.config import Config, parse_config
from smppgw.flow.submission import FieldError, SubmitRequest
from smppgw.services.submission import SubmitAnswer, SubmitService
from smppgw.store import SqliteStore, Store

pytestmark = pytest.mark.timeout(30)


def config(tmp_path: Path, **provider: Any) -> Config:
    table = {"name": "wavy", "profile": "wavy", "system_id": "acme", "password_env": "PW",
             "routes": ["55"], **provider}
    return parse_config({"gateway": {"state_dir": str(tmp_path), "sender_policy": "warn"},
                         "provider": [table]}, base_dir=tmp_path, environ={"PW": "pw"})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "state")
    yield opened
    await opened.close()


async def submit(service: SubmitService, **message: Any) -> SubmitAnswer:
    body = {"messages": [{"to": "5511999999999", "text": "hello", **message}]}
    requests: list[SubmitRequest | FieldError] = parse_submit_body(body, sender_policy="warn")
    [answer] = await service.submit(requests)
    return answer


async def stored(store: Store) -> int:
    return sum((await store.counts()).messages.values())


@pytest.mark.parametrize(("sender", "rule"), [
    ("Acme€", "is not Latin-1 text"),  # sender_policy "warn" lets it past the API rule
    ("Ac\x00me", "contains a NUL octet"),
])
async def test_a_sender_the_encoder_refuses_is_refused_at_accept(
    tmp_path: Path, store: Store, sender: str, rule: str
) -> None:
    service = SubmitService(config(tmp_path), store)
    answer = await submit(service, **{"from": sender})
    assert not answer.accepted and not answer.transient
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("invalid_sender", "messages[0].from")
    assert rule in answer.error.message and "source_addr" in answer.error.message
    assert await stored(store) == 0


async def test_a_tlv_longer_than_its_spec_allows_is_refused(tmp_path: Path, store: Store) -> None:
    service = SubmitService(config(tmp_path), store)
    answer = await submit(service, tlvs={"0x001e": "x" * 70})  # receipted_message_id: ≤ 65
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("invalid_tlv", "messages[0].tlvs.0x001e")
    assert "1..65 octets" in answer.error.message and "SMPP 3.4 §5.3.2" in answer.error.message
    assert await stored(store) == 0


async def test_a_message_too_large_for_the_provider_is_refused(
    tmp_path: Path, store: Store
) -> None:
    """The ~30 KB message built from TLVs that made an SMSC drop the bind for 24 hours."""
    service = SubmitService(config(tmp_path), store)
    answer = await submit(service, tlvs={"0x1400": {"hex": "41" * 30_000}})
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("invalid_tlv", "messages[0].tlvs")
    assert "max_pdu_octets" in answer.error.message and "4096" in answer.error.message
    assert await stored(store) == 0


async def test_the_provider_maximum_is_configurable(tmp_path: Path, store: Store) -> None:
    service = SubmitService(config(tmp_path, max_pdu_octets=120), store)
    answer = await submit(service, text="a message longer than 120 octets allow " * 3)
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("invalid_value", "messages[0].text")
    roomy = SubmitService(config(tmp_path, max_pdu_octets=66_000), store)
    assert (await submit(roomy, tlvs={"0x1400": {"hex": "41" * 30_000}})).accepted


async def test_what_the_checks_let_through_is_accepted(tmp_path: Path, store: Store) -> None:
    service = SubmitService(config(tmp_path), store)
    answer = await submit(service, **{"from": "Acmé"}, tlvs={"0x1401": "1107000000000000001"})
    assert answer.accepted, answer
    assert answer.warnings  # the sender rule is only a warning under "warn"


# --- Qikberry's DLT template id (seed 004, "Additional TLV") -------------------------------

TEMPLATE = "1107161234567890123"


def qikberry(tmp_path: Path, **provider: Any) -> Config:
    table = {"name": "qik", "profile": "qikberry", "routes": ["91"],
             "tlv_defaults": {"0x1400": "1101234567890", "0x1402": "1702345678901"},
             **provider}
    return config(tmp_path, **table)


async def sent_tlvs(store: Store, answer: SubmitAnswer) -> list[tuple[int, bytes]]:
    assert answer.accepted and answer.tracking_id is not None, answer
    (part,) = await store.claim_segments("qik", 1)
    return list(part.tlvs)


async def test_a_message_to_india_without_a_template_id_is_refused(
    tmp_path: Path, store: Store
) -> None:
    service = SubmitService(qikberry(tmp_path), store)
    answer = await submit(service, to="+919812345678")
    assert not answer.accepted and not answer.transient and answer.error is not None
    assert (answer.error.code, answer.error.field) == ("missing_field", "messages[0].template_id")
    assert "DLT template id" in answer.error.message and "0x1401" in answer.error.message
    assert await stored(store) == 0


async def test_a_template_id_per_message_becomes_tlv_0x1401(tmp_path: Path, store: Store) -> None:
    service = SubmitService(qikberry(tmp_path), store)
    tlvs = await sent_tlvs(store, await submit(service, to="919812345678", template_id=TEMPLATE))
    assert (0x1401, TEMPLATE.encode() + b"\0") in tlvs  # a C-Octet String
    assert (0x1400, b"1101234567890\0") in tlvs


@pytest.mark.parametrize("default", [{"template_id": TEMPLATE},
                                     {"tlv_defaults": {"0x1401": TEMPLATE}}])
async def test_a_provider_default_template_id_serves_messages_without_one(
    tmp_path: Path, store: Store, default: dict[str, Any]
) -> None:
    service = SubmitService(config(tmp_path, name="qik", profile="qikberry", routes=["91"],
                                   **default), store)
    tlvs = await sent_tlvs(store, await submit(service, to="919812345678"))
    assert (0x1401, TEMPLATE.encode() + b"\0") in tlvs


async def test_the_message_template_id_wins_over_the_providers(
    tmp_path: Path, store: Store
) -> None:
    service = SubmitService(qikberry(tmp_path, template_id="1107000000000000000"), store)
    tlvs = await sent_tlvs(store, await submit(service, to="919812345678", template_id=TEMPLATE))
    assert [raw for tag, raw in tlvs if tag == 0x1401] == [TEMPLATE.encode() + b"\0"]


async def test_tlvs_still_carry_a_template_id_but_not_both_ways(
    tmp_path: Path, store: Store
) -> None:
    service = SubmitService(qikberry(tmp_path), store)
    assert (await submit(service, to="919812345678", tlvs={"0x1401": TEMPLATE})).accepted
    answer = await submit(service, to="919812345678", template_id=TEMPLATE,
                          tlvs={"0x1401": TEMPLATE})
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("invalid_value", "messages[0].template_id")


async def test_outside_india_and_on_other_profiles_no_template_id_is_needed(
    tmp_path: Path, store: Store
) -> None:
    qik = SubmitService(qikberry(tmp_path, routes=["91", "44"]), store)
    assert (await submit(qik, to="447700900123")).accepted
    # Wavy has no DLT template TLV: a template id sent along (an app that sends to both)
    # is left out of its submit_sm.
    wavy = SubmitService(config(tmp_path), store)
    answer = await submit(wavy, template_id=TEMPLATE)
    assert answer.accepted
    (part,) = await store.claim_segments("wavy", 1)
    assert all(tag != 0x1401 for tag, _ in part.tlvs)
