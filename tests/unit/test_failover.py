"""Provider health as dialogues with time moved by the test: no bound session, or every submit
refused for good (Qikberry 0x040B), for failover_after → failed over; back when it works."""

from __future__ import annotations

import pytest

from smppgw.flow.failover import REFUSALS_TO_COUNT_AS_DOWN, ProviderHealth


def test_starts_down_and_fails_over_after_failover_after_without_a_bind() -> None:
    health = ProviderHealth(60.0, now=100.0)
    assert health.down_since == 100.0 and repr(health) == "<ProviderHealth unbound>"
    assert not health.failed_over(159.9)
    assert health.failed_over(160.0)


def test_a_bind_ends_the_outage_and_losing_every_bind_starts_a_new_one() -> None:
    health = ProviderHealth(60.0, now=0.0)
    health.bound_changed(1, now=5.0)
    assert health.down_since is None and not health.failed_over(1000.0)
    health.bound_changed(3, now=50.0)
    health.bound_changed(0, now=200.0)
    health.bound_changed(0, now=230.0)  # still down: the outage began at 200
    assert health.down_since == 200.0
    assert not health.failed_over(259.0) and health.failed_over(260.0)
    health.bound_changed(1, now=300.0)
    assert not health.failed_over(300.0)  # new traffic returns to it at once


def test_refusing_every_submit_for_good_counts_as_down() -> None:
    health = ProviderHealth(30.0, now=0.0)
    health.bound_changed(4, now=1.0)
    for n in range(REFUSALS_TO_COUNT_AS_DOWN - 1):
        health.submit_answered(accepted=False, refusing=True, now=10.0 + n)
        assert not health.refusing
    health.submit_answered(accepted=False, refusing=True, now=20.0)
    assert health.refusing and health.down_since == 20.0
    assert repr(health) == "<ProviderHealth bound refusing>"
    assert not health.failed_over(49.0) and health.failed_over(50.0)


def test_one_accepted_submit_clears_refusing_and_other_refusals_change_nothing() -> None:
    health = ProviderHealth(30.0, now=0.0)
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
    health = ProviderHealth(60.0, now=0.0)
    health.bound_changed(1, now=0.0)
    for n in range(REFUSALS_TO_COUNT_AS_DOWN):
        health.submit_answered(accepted=False, refusing=True, now=10.0 + n)
    health.bound_changed(0, now=40.0)
    assert health.down_since == 12.0


def test_a_negative_failover_after_is_refused() -> None:
    with pytest.raises(ValueError, match="failover_after"):
        ProviderHealth(-1.0, now=0.0)
