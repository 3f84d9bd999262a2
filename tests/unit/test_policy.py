"""The one delay table: reconnect curves (seeded random sources, no clock), part and webhook
retry delays."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.flow.policy import (
    DEFAULT_POLICIES,
    FAILURE_KINDS,
    Backoff,
    BackoffPolicy,
    next_delay,
    submit_retry_delay,
    webhook_retry_delay,
)


def test_every_failure_kind_has_a_default_policy() -> None:
    assert set(FAILURE_KINDS) == set(DEFAULT_POLICIES)


def test_unjittered_curve_doubles_up_to_the_cap() -> None:
    policy = BackoffPolicy(initial=1, cap=10, jitter="none")
    rng = random.Random(0)
    assert [policy.delay(a, rng) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    policy = BackoffPolicy(initial=1, cap=30)
    assert policy.ceiling(100_000) == 30
    assert 0 <= policy.delay(100_000, random.Random(1)) <= 30


def test_full_jitter_stays_between_floor_and_curve() -> None:
    policy = BackoffPolicy(initial=1, cap=60, floor=0.5)
    rng = random.Random(7)
    for attempt in range(1, 12):
        for _ in range(50):
            delay = policy.delay(attempt, rng)
            assert 0.5 <= delay <= max(0.5, policy.ceiling(attempt))


def test_jitter_spreads_binds_apart() -> None:
    rng = random.Random(3)
    delays = {round(next_delay(5, "network", rng), 6) for _ in range(20)}
    assert len(delays) == 20


def test_equal_jitter_keeps_half_the_curve() -> None:
    policy = BackoffPolicy(initial=2, cap=100, jitter="equal")
    rng = random.Random(5)
    for _ in range(100):
        assert 4 <= policy.delay(3, rng) <= 8  # ceiling 2 × 2² = 8


def test_decorrelated_jitter_grows_from_previous_and_respects_cap() -> None:
    policy = BackoffPolicy(initial=1, cap=20, jitter="decorrelated")
    rng = random.Random(11)
    delay = policy.delay(1, rng)
    assert delay == 1
    for attempt in range(2, 40):
        nxt = policy.delay(attempt, rng, previous=delay)
        assert 1 <= nxt <= min(20, delay * 3)
        delay = nxt


def test_wrong_password_never_hammers_the_provider() -> None:
    rng = random.Random(42)
    delays = [next_delay(a, "bind_rejected_credentials", rng) for a in range(1, 30)]
    assert all(delay >= 60 for delay in delays)
    assert max(delays) <= 3600
    assert next_delay(30, "bind_rejected_credentials", random.Random(0)) > 60


def test_credentials_back_off_far_longer_than_network_errors() -> None:
    rng = random.Random(9)
    network = max(next_delay(3, "network", rng) for _ in range(100))
    credentials = min(next_delay(1, "bind_rejected_credentials", rng) for _ in range(100))
    assert network < credentials


def test_same_seed_same_delays() -> None:
    first = [next_delay(a, "timeout", random.Random(123)) for a in range(1, 10)]
    second = [next_delay(a, "timeout", random.Random(123)) for a in range(1, 10)]
    assert first == second


def test_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="network"):
        next_delay(1, "netwrok", random.Random(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0, "cap": 1},
        {"initial": 2, "cap": 1},
        {"initial": 1, "cap": float("inf")},
        {"initial": 1, "cap": 2, "multiplier": 0.5},
        {"initial": 1, "cap": 2, "floor": 3},
        {"initial": 1, "cap": 2, "jitter": "wild"},
    ],
)
def test_policy_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError):
        next_delay(0, "network", random.Random(0))


def test_backoff_counts_per_kind_and_resets_on_success() -> None:
    policies = {
        "network": BackoffPolicy(initial=1, cap=100, jitter="none"),
        "bind_rejected_credentials": BackoffPolicy(initial=60, cap=3600, jitter="none"),
    }
    backoff = Backoff(random.Random(0), policies)
    assert [backoff.failure("network") for _ in range(3)] == [1, 2, 4]
    # A credentials failure starts its own curve, and network errors in between do not
    # reset it.
    assert backoff.failure("bind_rejected_credentials") == 60
    assert backoff.failure("network") == 8
    assert backoff.failure("bind_rejected_credentials") == 120
    assert backoff.attempts("network") == 4
    assert "network=4" in repr(backoff)
    backoff.success()
    assert backoff.attempts("network") == 0
    assert backoff.failure("network") == 1
    assert repr(Backoff(random.Random(0))) == "<Backoff clean>"


def test_backoff_feeds_previous_delay_to_decorrelated_jitter() -> None:
    backoff = Backoff(random.Random(4))
    first = backoff.failure("throttled")
    assert first == DEFAULT_POLICIES["throttled"].initial
    second = backoff.failure("throttled")
    assert 1 <= second <= first * 3


@given(
    attempt=st.integers(1, 10_000), seed=st.integers(0, 2**32), kind=st.sampled_from(FAILURE_KINDS)
)
def test_every_delay_is_within_floor_and_cap(attempt: int, seed: int, kind: str) -> None:
    policy = DEFAULT_POLICIES[kind]
    delay = next_delay(attempt, kind, random.Random(seed), previous=policy.cap)
    assert policy.floor <= delay <= policy.cap


# --- parts and webhooks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "refused", "unanswered"),
    [
        (0, 1.0, 1.0),
        (1, 2.0, 2.0),
        (2, 4.0, 4.0),
        (3, 8.0, 5.0),
        (8, 256.0, 5.0),
        (9, 300.0, 5.0),
        (10_000, 300.0, 5.0),
    ],
)
def test_submit_retry_delay_doubles_and_unanswered_parts_go_again_within_five_seconds(
    attempts: int, refused: float, unanswered: float
) -> None:
    assert submit_retry_delay(attempts, "refused") == refused
    assert submit_retry_delay(attempts, "unanswered") == unanswered


def test_submit_retry_delay_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        submit_retry_delay(-1, "refused")


def test_webhook_retry_delay_grows_tenfold_and_is_capped() -> None:
    plain = [webhook_retry_delay(n, min_delay=10, max_delay=100_000) for n in range(1, 8)]
    assert plain == [10, 100, 1000, 10_000, 100_000, 100_000, 100_000]
    assert webhook_retry_delay(10**6, min_delay=10, max_delay=60) == 60


def test_webhook_retry_delay_jitter_is_ten_percent_and_never_above_the_cap() -> None:
    rng = random.Random(2)
    for attempt in range(1, 6):
        delay = webhook_retry_delay(attempt, min_delay=10, max_delay=3600, rng=rng)
        base = min(3600, 10 * 10 ** (attempt - 1))
        assert base * 0.9 <= delay <= min(3600, base * 1.1)
