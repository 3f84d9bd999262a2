"""Token buckets: time is a number the test moves, never a clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.ratelimit import CombinedBucket, TokenBucket, time_until_all_available, try_take_all


def test_starts_full_and_grants_the_burst_back_to_back() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]


def test_default_burst_is_one_second_of_rate() -> None:
    assert TokenBucket(80).burst == 80
    assert TokenBucket(0.5).burst == 1  # never below one token


def test_refills_at_rate_and_caps_at_burst() -> None:
    bucket = TokenBucket(rate=2, burst=4)
    for _ in range(4):
        assert bucket.try_take(0.0)
    assert bucket.tokens(0.5) == pytest.approx(1.0)
    assert bucket.tokens(1000.0) == 4


def test_time_until_available_is_exact_and_takes_nothing() -> None:
    bucket = TokenBucket(rate=4, burst=1)
    assert bucket.try_take(10.0)
    wait = bucket.time_until_available(10.0)
    assert wait == pytest.approx(0.25)
    assert not bucket.try_take(10.0)
    assert bucket.try_take(10.0 + wait)  # waiting exactly that long is enough
    assert bucket.time_until_available(10.0 + wait, 1) == pytest.approx(0.25)


def test_waiting_the_announced_time_always_suffices_despite_float_rounding() -> None:
    bucket = TokenBucket(rate=3, burst=1)
    now = 1e6 + 0.1
    for _ in range(1000):
        wait = bucket.time_until_available(now)
        now += wait
        assert bucket.try_take(now), now


def test_taking_n_is_all_or_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=5)
    assert bucket.try_take(0.0, 4)
    assert not bucket.try_take(0.0, 2)
    assert bucket.tokens(0.0) == pytest.approx(1)


def test_a_request_larger_than_burst_is_a_bug_not_a_wait() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    with pytest.raises(ValueError, match="burst"):
        bucket.try_take(0.0, 3)
    with pytest.raises(ValueError):
        bucket.time_until_available(0.0, 3)
    with pytest.raises(ValueError):
        bucket.try_take(0.0, 0)


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("inf"), None), (1, 0.5)])
def test_rejects_impossible_settings(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_time_running_backwards_gains_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.try_take(50.0)
    assert not bucket.try_take(10.0)
    assert bucket.tokens(50.5) == pytest.approx(0.5)


def test_rate_change_keeps_earned_tokens_and_clips_to_new_burst() -> None:
    bucket = TokenBucket(rate=10, burst=10)
    assert bucket.try_take(0.0, 10)
    bucket.set_rate(0.5, rate=2, burst=3)  # 5 tokens earned at the old rate, clipped to 3
    assert bucket.rate == 2
    assert bucket.tokens(0.5) == 3
    assert bucket.try_take(0.5, 3)
    assert bucket.time_until_available(0.5) == pytest.approx(0.5)  # new rate from now on


def test_rate_change_does_not_refill() -> None:
    bucket = TokenBucket(rate=5, burst=5)
    assert bucket.try_take(0.0, 5)
    bucket.set_rate(0.0, rate=50)
    assert bucket.tokens(0.0) == 0


def test_drain_and_give_back() -> None:
    bucket = TokenBucket(rate=1, burst=3)
    bucket.drain(0.0)
    assert not bucket.try_take(0.0)
    bucket.give_back(0.0, 2)
    assert bucket.tokens(0.0) == 2
    bucket.give_back(0.0, 10)
    assert bucket.tokens(0.0) == 3
    with pytest.raises(ValueError):
        bucket.give_back(0.0, -1)


def test_combined_takes_from_both_or_neither() -> None:
    per_bind = TokenBucket(rate=10, burst=2)
    per_host = TokenBucket(rate=1, burst=1)
    combined = CombinedBucket(per_bind, per_host)
    assert combined.try_take(0.0)
    assert not combined.try_take(0.0)  # host empty: the bind bucket must keep its token
    assert per_bind.tokens(0.0) == pytest.approx(1)
    assert combined.time_until_available(0.0) == pytest.approx(1.0)  # slowest decides
    assert combined.try_take(1.0)


def test_host_bucket_shared_by_binds_caps_their_sum() -> None:
    host = TokenBucket(rate=50, burst=1)
    binds = [CombinedBucket(TokenBucket(rate=80, burst=1), host) for _ in range(3)]
    now, sent = 0.0, 0
    while now < 10.0:
        for bind in binds:
            if bind.try_take(now):
                sent += 1
        now += 0.001
    assert sent == pytest.approx(500, abs=2)  # 50/s for 10 s, whatever the 3 × 80/s say


def test_same_bucket_twice_counts_once() -> None:
    bucket = TokenBucket(rate=1, burst=1)
    assert try_take_all([bucket, bucket], 0.0)
    assert bucket.tokens(0.0) == 0
    assert time_until_all_available([], 0.0) == 0.0


def test_combined_drain_and_give_back_reach_every_bucket() -> None:
    a, b = TokenBucket(rate=1, burst=2), TokenBucket(rate=1, burst=2)
    combined = CombinedBucket(a, b)
    combined.drain(0.0)
    assert a.tokens(0.0) == b.tokens(0.0) == 0
    combined.give_back(0.0)
    assert a.tokens(0.0) == b.tokens(0.0) == 1
    assert "CombinedBucket" in repr(combined)
    with pytest.raises(ValueError):
        CombinedBucket()


@settings(max_examples=200)
@given(
    rate=st.floats(0.1, 1000),
    burst=st.floats(1, 100),
    steps=st.lists(st.tuples(st.floats(0, 5), st.floats(0.01, 1)), max_size=60),
)
def test_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = start = 0.0
    taken = 0.0
    for advance, fraction in steps:
        now += advance
        n = max(fraction * burst, 1e-6)
        if bucket.try_take(now, n):
            taken += n
        else:
            assert bucket.time_until_available(now, n) > 0
    assert taken <= burst + rate * (now - start) + 1e-6
