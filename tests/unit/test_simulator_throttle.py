"""The simulator's token bucket (how it throttles): time is a number the test moves."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.simulator.throttle import TokenBucket


def test_starts_full_and_grants_the_burst_back_to_back() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]


def test_default_burst_is_one_second_of_rate() -> None:
    assert TokenBucket(80).burst == 80
    assert TokenBucket(0.5).burst == 1  # never below one token


def test_refills_at_rate_and_caps_at_burst() -> None:
    bucket = TokenBucket(rate=2, burst=4)
    assert all(bucket.try_take(0.0) for _ in range(4))
    assert not bucket.try_take(0.4)
    assert bucket.try_take(0.5)
    assert [bucket.try_take(1000.0) for _ in range(5)] == [True] * 4 + [False]


def test_time_running_backwards_gains_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(5.0)
    assert not bucket.try_take(10.5)
    assert bucket.try_take(11.0)


def test_rate_change_keeps_earned_tokens_and_clips_to_new_burst() -> None:
    bucket = TokenBucket(rate=10, burst=10)
    bucket.set_rate(0.0, 2, 2)
    assert (bucket.rate, bucket.burst) == (2, 2)
    assert [bucket.try_take(0.0) for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (math.inf, None), (1, 0.5)])
def test_rejects_impossible_settings(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@settings(max_examples=200)
@given(rate=st.floats(0.1, 1000), steps=st.lists(st.floats(0, 2), max_size=100))
def test_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, steps: list[float]
) -> None:
    bucket = TokenBucket(rate)
    now = taken = 0.0
    for advance in steps:
        now += advance
        taken += bucket.try_take(now)
    assert taken <= bucket.burst + rate * now + 1e-6
