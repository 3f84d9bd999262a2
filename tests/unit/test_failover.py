"""Provider health as dialogues with time moved by the test: no bound session, or every submit
refused for good (Qikberry 0x040B), dates an outage; the router fails over after
failover_after. And a queued message as the request that encodes it for the new provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smppgw.config import ProviderConfig, parse_config
from smppgw.flow.failover import REFUSALS_TO_COUNT_AS_DOWN, ProviderHealth, resubmission
from smppgw.flow.routing import RouteProvider, Router


def test_starts_down_and_fails_over_after_failover_after_without_a_bind() -> None:
    health = ProviderHealth(now=100.0)
    assert health.down_since == 100.0 and repr(health) == "<ProviderHealth unbound>"
    router = Router.build([RouteProvider("p", ("55",), "q", 60.0), RouteProvider("q")])
    assert router.failover_for("p", {"p": health.down_since}, 159.9) is None
    assert router.failover_for("p", {"p": health.down_since}, 160.0) == "q"
    # Both down: the message stays where it was meant to go.
    assert router.failover_for("p", {"p": 100.0, "q": 150.0}, 200.0) is None


def test_a_bind_ends_the_outage_and_losing_every_bind_starts_a_new_one() -> None:
    health = ProviderHealth(now=0.0)
    health.bound_changed(1, now=5.0)
    assert health.down_since is None
    health.bound_changed(3, now=50.0)
    health.bound_changed(0, now=200.0)
    health.bound_changed(0, now=230.0)  # still down: the outage began at 200
    assert health.down_since == 200.0
    health.bound_changed(1, now=300.0)
    assert health.down_since is None  # new traffic returns to it at once


def test_refusing_every_submit_for_good_counts_as_down() -> None:
    health = ProviderHealth(now=0.0)
    health.bound_changed(4, now=1.0)
    for n in range(REFUSALS_TO_COUNT_AS_DOWN - 1):
        health.submit_answered(accepted=False, refusing=True, now=10.0 + n)
        assert not health.refusing
    health.submit_answered(accepted=False, refusing=True, now=20.0)
    assert health.refusing and health.down_since == 20.0
    assert repr(health) == "<ProviderHealth bound refusing>"


def test_one_accepted_submit_clears_refusing_and_other_refusals_change_nothing() -> None:
    health = ProviderHealth(now=0.0)
    health.bound_changed(1, now=0.0)
    for n in range(REFUSALS_TO_COUNT_AS_DOWN):
        health.submit_answered(accepted=False, refusing=True, now=float(n))
    health.submit_answered(accepted=False, refusing=False, now=5.0)  # a bad number: no news
    assert health.refusing
    health.submit_answered(accepted=True, refusing=False, now=6.0)
    assert not health.refusing and health.down_since is None
    for n in range(REFUSALS_TO_COUNT_AS_DOWN - 1):
        health.submit_answered(accepted=False, refusing=True, now=7.0 + n)
    assert not health.refusing  # the count started again


def test_the_earlier_cause_dates_the_outage() -> None:
    health = ProviderHealth(now=0.0)
    health.bound_changed(1, now=0.0)
    for n in range(REFUSALS_TO_COUNT_AS_DOWN):
        health.submit_answered(accepted=False, refusing=True, now=10.0 + n)
    health.bound_changed(0, now=40.0)
    assert health.down_since == 12.0


# --- a queued message, encoded again for the failover provider ------------------------------


@dataclass(frozen=True)
class Queued:
    client_id: str | None = "c-1"
    source: str = "Acme"
    destination: str = "5511999990000"
    text: str = "Olá"
    flash: bool = False
    encoding: str = "gsm7"
    registered_delivery: int = 1
    tlvs: tuple[tuple[int, bytes], ...] = ()


def provider(name: str, **table: Any) -> ProviderConfig:
    base = {"name": name, "profile": "generic", "system_id": f"acme-{name}",
            "password_env": "PW", "hosts": ["127.0.0.1:9"], "routes": [name[-2:]], **table}
    return parse_config({"gateway": {"state_dir": "/tmp/x"}, "provider": [base]},
                        base_dir=Path("/tmp"), environ={"PW": "x"}).providers[0]


def test_the_request_keeps_what_the_application_asked_for() -> None:
    request = resubmission(Queued(tlvs=((0x1401, b"t"),), flash=True), provider("p11"))
    assert (request.client_id, request.to, request.sender, request.text) == (
        "c-1", "5511999990000", "Acme", "Olá")
    assert request.flash and request.receipt and request.tlvs == ((0x1401, b"t"),)
    assert request.encoding is None  # chosen again by the new provider's profile
    assert not resubmission(Queued(registered_delivery=0), provider("p11")).receipt
    assert resubmission(Queued(encoding="ucs2"), provider("p11")).encoding == "ucs2"


def test_the_old_providers_defaults_are_left_behind() -> None:
    # Qikberry's DLT TLVs (PROVIDERS.md) mean nothing to the provider a message moves to.
    old = provider("p11", tlv_defaults={"0x1400": "1207161234567890123"})
    default = old.tlv_defaults[0]
    request = resubmission(Queued(tlvs=(default, (0x1401, b"mine"))), old)
    assert request.tlvs == ((0x1401, b"mine"),)


def test_a_sender_the_old_provider_filled_in_is_not_carried_over() -> None:
    # sender_as_system_id (Wavy: MO replies need source_addr == system_id) filled it in.
    old = provider("p11", system_id="acme-wavy", sender_as_system_id=True)
    assert resubmission(Queued(source="acme-wavy"), old).sender == ""
    assert resubmission(Queued(source="Acme"), old).sender == "Acme"


def test_down_reason_names_the_cause() -> None:
    health = ProviderHealth(now=0.0)
    assert health.down_reason == "no bind bound"
    health.bound_changed(1, now=1.0)
    assert health.down_reason is None
    for n in range(REFUSALS_TO_COUNT_AS_DOWN):
        health.submit_answered(accepted=False, refusing=True, now=2.0 + n)
    assert health.down_reason == "every submit refused for good"


def test_a_template_id_in_the_old_template_tlv_travels_as_a_template_id() -> None:
    """For the new provider's profile to place (Qikberry: 0x1401) or leave out (Wavy)."""
    old = provider("p11", profile="qikberry", hosts=["127.0.0.1:9"])
    request = resubmission(Queued(tlvs=((0x1401, b"1107161234567890123\0"), (0x1500, b"x"))),
                           old)
    assert request.template_id == "1107161234567890123"
    assert request.tlvs == ((0x1500, b"x"),)
    # Without a template TLV in the old profile, 0x1401 is just one of the message's TLVs.
    plain = resubmission(Queued(tlvs=((0x1401, b"t\0"),)), provider("p11"))
    assert plain.template_id is None and plain.tlvs == ((0x1401, b"t\0"),)
