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
