"""Send control as tables and dialogues with time moved by the test: the exact contracted rate,
the adaptive rate (ESME_RTHROTTLED) and the adaptive window (ESME_RMSGQFUL).

No event loop. The last tests run a whole bind against an SMSC reduced to a pure function of
time (a token bucket, a window), a few simulated seconds per millisecond of test.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.flow.control import (
    COALESCE_GUARD,
    AdaptiveRate,
    AdaptiveWindow,
    BindControl,
    ExactRateLimiter,
    RateTuning,
)

# --- the exact contracted rate ------------------------------------------------------------------


def greedy(limiter: ExactRateLimiter, start: float, until: float) -> list[float]:
    """Send whenever the limiter allows, from ``start`` to ``until``: the send instants."""
    sent = []
    now = start
    while now < until:
        wait = limiter.time_until_allowed(now)
        if wait:
            now += wait
            continue
        limiter.record(now)
        sent.append(now)
    return sent


def most_in_any_window(instants: list[float], window: float = 1.0) -> int:
    """The most instants in any half-open interval (t - window, t]."""
    best = 0
    start = 0
    for end, at in enumerate(instants):
        while instants[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_eighty_go_at_once_and_the_eighty_first_waits_a_second_and_the_guard() -> None:
    limiter = ExactRateLimiter(80)
    for _ in range(80):
        assert limiter.time_until_allowed(10.0) == 0.0
        limiter.record(10.0)
    assert limiter.time_until_allowed(10.0) == pytest.approx(1.0 + COALESCE_GUARD)
    assert limiter.time_until_allowed(11.0) == pytest.approx(COALESCE_GUARD)
    assert limiter.time_until_allowed(11.0 + COALESCE_GUARD) == 0.0
    assert repr(limiter) == "<ExactRateLimiter 80 per 1.005s>"


def test_the_first_second_after_an_idle_spell_carries_the_rate_not_twice_it() -> None:
    # A token bucket with a second of burst sends 2x here: its full bucket, then the refill.
    limiter = ExactRateLimiter(80)
    sent = greedy(limiter, 0.0, 10.0)
    after_idle = greedy(limiter, 13.0, 16.0)
    assert most_in_any_window(sent) == 80
    assert most_in_any_window(after_idle) == 80
    assert sum(1 for at in after_idle if at < 14.0) == 80


@pytest.mark.parametrize(
    ("rate", "count", "span"),
    [
        (80, 80, 1.005),
        (2.5, 2, 1.005),  # rounded down: the contract is a ceiling
        (1, 1, 1.005),
        (0.5, 1, 2.005),  # one send per two seconds
    ],
)
def test_count_and_interval(rate: float, count: int, span: float) -> None:
    limiter = ExactRateLimiter(rate)
    assert (limiter.count, limiter.span) == (count, pytest.approx(span))


@pytest.mark.parametrize("rate", [0, -1, math.inf, math.nan])
def test_rates_that_cannot_be_kept_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        ExactRateLimiter(rate)


@given(
    rate=st.integers(1, 200),
    gaps=st.lists(st.floats(0.0, 0.3, allow_nan=False), min_size=1, max_size=400),
)
def test_no_interval_of_a_second_ever_carries_more_than_the_rate(
    rate: int, gaps: list[float]
) -> None:
    limiter = ExactRateLimiter(rate)
    now = 0.0
    sent = []
    for gap in gaps:  # work arrives at these moments; whatever is allowed goes
        now += gap
        while not limiter.time_until_allowed(now):
            limiter.record(now)
            sent.append(now)
    assert most_in_any_window(sent, 1.0 + COALESCE_GUARD) <= rate


def test_sent_in_window_counts_what_the_interval_holds() -> None:
    limiter = ExactRateLimiter(5)
    for at in (0.0, 0.5, 0.9):
        limiter.record(at)
    assert limiter.sent_in_window(1.0) == 3
    assert limiter.sent_in_window(1.6) == 1


# --- the adaptive rate --------------------------------------------------------------------------


def test_throttled_without_history_lowers_by_the_multiplier() -> None:
    rate = AdaptiveRate(40)
    rate.record_send(0.0)
    assert not rate.adapted and rate.time_until_allowed(0.0) == 0.0
    assert rate.on_throttled(sent_at=0.0, now=0.01)
    assert rate.effective == pytest.approx(28.0) and rate.adapted


def test_answers_to_requests_sent_before_the_decrease_are_already_accounted_for() -> None:
    rate = AdaptiveRate(40)
    rate.record_send(0.0)
    assert rate.on_throttled(sent_at=0.0, now=0.01)
    # The other nine of that burst were throttled too; they say nothing of the new rate.
    for _ in range(9):
        assert not rate.on_throttled(sent_at=0.005, now=0.02)
    assert rate.effective == pytest.approx(28.0)
    assert rate.on_throttled(sent_at=0.03, now=0.04)  # sent at 28/s, still too fast
    assert rate.effective == pytest.approx(19.6)


def test_with_a_second_of_history_it_drops_just_below_what_the_smsc_accepted() -> None:
    rate = AdaptiveRate(80)
    rate.record_send(0.0)
    for tick in range(1, 21):  # 20 accepted in the second up to 2.0 ...
        rate.on_accepted(sent_at=1.0 + tick / 20 - 0.01, now=1.0 + tick / 20)
    assert rate.on_throttled(sent_at=2.0, now=2.0)  # ... then throttled
    assert rate.effective == pytest.approx(0.95 * 20)  # not 0.7 × 80 = 56


def test_never_below_the_floor() -> None:
    rate = AdaptiveRate(3, RateTuning(floor=1.0))
    now = 0.0
    rate.record_send(now)
    for _ in range(10):
        now += 1.0
        rate.on_throttled(sent_at=now, now=now)
    assert rate.effective == 1.0
    assert not rate.on_throttled(sent_at=now + 1, now=now + 1)  # at the floor: no lower


def test_it_paces_smoothly_below_the_contract() -> None:
    rate = AdaptiveRate(100, RateTuning(tolerance=0.0))
    rate.record_send(0.0)
    rate.on_throttled(sent_at=0.0, now=0.0)
    assert rate.effective == pytest.approx(70.0)
    sends = []
    now = 1.0
    while len(sends) < 8:
        wait = rate.time_until_allowed(now)
        if wait:
            now += wait
            continue
        rate.record_send(now)
        sends.append(now)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps == pytest.approx([1 / 70] * 7)


def test_tolerance_lets_a_late_loop_catch_up() -> None:
    rate = AdaptiveRate(100, RateTuning(tolerance=0.05))
    rate.record_send(0.0)
    rate.on_throttled(sent_at=0.0, now=0.0)  # 70/s
    rate.record_send(1.0)
    # The loop came back 40 ms late: the sends it owes go now, but no more than that.
    caught_up = 0
    while rate.time_until_allowed(1.04 + 1 / 70) == 0.0:
        rate.record_send(1.04 + 1 / 70)
        caught_up += 1
    assert caught_up == 1 + math.floor(0.05 * 70)


def held_and_accepted(rate: AdaptiveRate, start: float, seconds: int) -> float:
    """Answers OK every 10 ms while the pace holds work back; returns the end time."""
    now = start
    for _ in range(seconds * 100):
        now += 0.01
        rate.note_held(now)
        rate.on_accepted(sent_at=now - 0.005, now=now)
    return now


def test_it_grows_slowly_while_held_back_and_answered_ok_never_above_the_contract() -> None:
    rate = AdaptiveRate(100)
    rate.record_send(0.0)
    rate.on_throttled(sent_at=0.0, now=0.0)  # 70
    now = held_and_accepted(rate, 0.0, 1)
    assert rate.effective == pytest.approx(70 * 1.03, rel=1e-3)
    held_and_accepted(rate, now, 60)
    assert rate.effective == 100.0 and not rate.adapted


def test_an_idle_bind_does_not_grow() -> None:
    rate = AdaptiveRate(100)
    rate.record_send(0.0)
    rate.on_throttled(sent_at=0.0, now=0.0)
    now = 0.0
    for _ in range(500):  # answers OK, but nothing waits for the pace
        now += 0.01
        rate.on_accepted(sent_at=now - 0.005, now=now)
    assert rate.effective == pytest.approx(70.0)


def test_unlimited_until_throttled_then_what_the_smsc_took() -> None:
    rate = AdaptiveRate(None)
    assert rate.effective == math.inf and not rate.adapted
    rate.record_send(0.0)
    for n in range(30):
        rate.on_accepted(sent_at=n / 100, now=n / 100 + 0.001)
    assert rate.on_throttled(sent_at=0.3, now=0.3)
    assert rate.effective == pytest.approx(0.95 * 30)
    assert rate.time_until_allowed(0.3) == 0.0


@pytest.mark.parametrize(
    "tuning",
    [
        {"floor": 0},
        {"decrease": 1.0},
        {"margin": 0.0},
        {"increase": 0.0},
        {"history": -1.0},
        {"tolerance": math.inf},
    ],
)
def test_tuning_that_cannot_work_is_refused(tuning: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateTuning(**tuning)


# --- the adaptive window ------------------------------------------------------------------------


def test_queue_full_halves_the_window_and_ignores_what_was_sent_before() -> None:
    window = AdaptiveWindow(10)
    assert window.room(3) == 7
    assert window.on_queue_full(sent_at=1.0, now=1.1)
    assert window.effective == 5
    assert not window.on_queue_full(sent_at=1.05, now=1.2)  # same burst
    assert window.effective == 5
    assert window.room(5) == 0 and window.room(2) == 3


def test_it_never_shrinks_below_one() -> None:
    window = AdaptiveWindow(2)
    for second in range(1, 5):
        window.on_queue_full(sent_at=float(second), now=float(second))
    assert window.effective == 1


def answer_ok(window: AdaptiveWindow, count: int, start: float) -> float:
    """``count`` OK answers while the window is full; returns the time after them."""
    now = start
    for _ in range(count):
        window.room(window.effective)  # the pool found it full
        now += 0.01
        window.on_accepted(sent_at=now - 0.005, now=now)
    return now


def test_it_grows_one_per_windows_worth_of_answers_while_full() -> None:
    window = AdaptiveWindow(10)
    window.on_queue_full(sent_at=0.0, now=0.0)  # 5, and 10 is the size refused
    now = answer_ok(window, 5, 0.0)
    assert window.effective == 6
    answer_ok(window, 6 + 7 + 8, now)
    assert window.effective == 9  # the step into 10, the size refused, waits longer


def test_answers_while_the_window_is_not_full_do_not_grow_it() -> None:
    window = AdaptiveWindow(10)
    window.on_queue_full(sent_at=0.0, now=0.0)
    for n in range(100):
        window.room(1)
        window.on_accepted(sent_at=n + 0.5, now=n + 1.0)
    assert window.effective == 5


def test_against_an_smsc_window_of_five_it_settles_at_five() -> None:
    # Configured 10, the SMSC takes 5 (SMPP 3.4 §5.1.3 ESME_RMSGQFUL beyond): after the first
    # refusals it probes 6 rarely, and a refused probe returns to 5, not to 3.
    window = AdaptiveWindow(10, probe_after=16)
    window.on_queue_full(sent_at=0.0, now=0.0)  # sent 10: halve to 5
    now = answer_ok(window, 5, 0.0)
    assert window.effective == 6
    window.on_queue_full(sent_at=now, now=now + 0.01)  # 6 in flight: refused
    assert window.effective == 3
    now = answer_ok(window, 3 + 4, now + 0.02)
    assert window.effective == 5
    now = answer_ok(window, 5 * 16 - 1, now)
    assert window.effective == 5
    now = answer_ok(window, 1, now)
    assert window.effective == 6  # the probe
    assert window.on_queue_full(sent_at=now, now=now + 0.01)
    assert window.effective == 5  # back to the size below, not halved


def test_a_probe_that_holds_forgets_the_old_limit() -> None:
    window = AdaptiveWindow(8, probe_after=2)
    window.on_queue_full(sent_at=0.0, now=0.0)  # 4, refused at 8
    now = answer_ok(window, 4 + 5 + 6, 0.0)
    assert window.effective == 7
    answer_ok(window, 7 * 2, now)  # the SMSC takes 8 now
    assert window.effective == 8


@pytest.mark.parametrize(("configured", "probe_after"), [(0, 16), (5, 0)])
def test_window_settings_that_cannot_work_are_refused(configured: int, probe_after: int) -> None:
    with pytest.raises(ValueError):
        AdaptiveWindow(configured, probe_after=probe_after)


# --- one bind's control -------------------------------------------------------------------------


def test_a_send_needs_the_bind_and_its_host_and_takes_from_both() -> None:
    host = ExactRateLimiter(3)
    first = BindControl(2, 10, host=host)
    second = BindControl(2, 10, host=host)
    assert first.wait(0.0, 0) == 0.0
    first.sent(0.0)
    first.sent(0.0)
    assert first.wait(0.0, 2) == pytest.approx(1.005)  # its own 2/s
    assert second.wait(0.0, 0) == 0.0
    second.sent(0.0)
    assert second.wait(0.0, 1) == pytest.approx(1.005)  # the host's 3/s, shared
    assert second.limiter is not None and second.limiter.sent_in_window(0.0) == 1
    assert host.sent_in_window(0.0) == 3


def test_a_full_effective_window_waits_for_an_answer_not_for_time() -> None:
    control = BindControl(None, 4)
    assert control.wait(0.0, 3) == 0.0
    assert control.wait(0.0, 4) is None
    control.queue_full(sent_at=0.0, now=0.1)
    assert control.wait(0.2, 2) is None
    assert repr(control) == "<BindControl rate=inf/inf window=2/4>"


def test_even_the_contracted_rate_is_spaced_evenly() -> None:
    # At 10/s one send per 0.1 s, not ten at once then a pause: an SMSC that counts per
    # second from wherever it starts, and reads our sends a few ms late, still counts 10.
    control = BindControl(10, 10)
    sends = []
    now = 0.0
    while len(sends) < 10:
        wait = control.wait(now, 0)
        assert wait is not None
        if wait:
            now += wait
            continue
        control.sent(now)
        sends.append(round(now, 9))
    assert sends == [0.0] + [pytest.approx(0.05 + 0.1 * n) for n in range(9)]


def test_throttled_answers_lower_the_rate_and_the_pace_holds_the_next_send() -> None:
    control = BindControl(10, 10)
    control.sent(0.0)
    assert control.throttled(sent_at=0.0, now=0.01)
    assert control.rate.effective == pytest.approx(7.0)
    assert control.wait(1.2, 0) == 0.0
    control.sent(1.2)
    assert control.wait(1.2, 1) == pytest.approx(1 / 7 - 0.05)


# --- a bind against a simulated SMSC ------------------------------------------------------------


Answer = Literal["ok", "throttled", "queue_full"]


@dataclass
class TokenBucketSmsc:
    """An SMSC that throttles above ``rate``/s with a second's burst (the simulator's rule)."""

    rate: float
    tokens: float = field(init=False)
    updated: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def answer(self, now: float) -> Answer:
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return "ok"
        return "throttled"


@dataclass
class Outcome:
    accepted: int = 0
    refused: int = 0


def run_bind(
    control: BindControl,
    smsc_answer: Callable[[float, int], Answer],
    *,
    seconds: float,
    latency: float,
    session_window: int,
    count_after: float,
) -> Outcome:
    """A greedy bind (always work queued) for ``seconds`` of fake time. ``smsc_answer(now,
    in_flight)`` is the SMSC's answer to a request it receives at ``now``."""
    now = 0.0
    in_flight = 0
    answers: list[tuple[float, float, Answer]] = []  # (arrives_at, sent_at, answer)
    outcome = Outcome()
    while now < seconds:
        while answers and answers[0][0] <= now:
            arrives_at, sent_at, answer = heapq.heappop(answers)
            in_flight -= 1
            if answer == "ok":
                control.accepted(sent_at, arrives_at)
            elif answer == "throttled":
                control.throttled(sent_at, arrives_at)
            else:
                control.queue_full(sent_at, arrives_at)
            if sent_at >= count_after:
                outcome.accepted += answer == "ok"
                outcome.refused += answer != "ok"
        wait = control.wait(now, in_flight) if in_flight < session_window else None
        if wait == 0.0:
            control.sent(now)
            heapq.heappush(answers, (now + latency, now, smsc_answer(now, in_flight)))
            in_flight += 1
            continue
        candidates = [answers[0][0]] if answers else []
        if wait is not None:
            candidates.append(now + wait)
        now = min(candidates)
    return outcome


@pytest.mark.parametrize("smsc_rate", [10, 25, 50])
def test_configured_four_times_what_the_smsc_takes_it_settles_near_the_smscs_rate(
    smsc_rate: int,
) -> None:
    # The goal: after the first 5 s, >= 90 % of R accepted and <= 5 % refused.
    smsc = TokenBucketSmsc(smsc_rate)
    control = BindControl(4 * smsc_rate, 10)
    outcome = run_bind(control, lambda now, _: smsc.answer(now), seconds=35.0, latency=0.002,
                       session_window=10, count_after=5.0)
    assert outcome.accepted / 30.0 >= 0.9 * smsc_rate
    assert outcome.refused / (outcome.accepted + outcome.refused) <= 0.05
    assert control.rate.effective <= 4 * smsc_rate


def test_an_smsc_window_of_five_with_ten_configured_refuses_few() -> None:
    control = BindControl(None, 10)
    outcome = run_bind(control, lambda now, n: "ok" if n < 5 else "queue_full", seconds=30.0,
                       latency=0.05, session_window=10, count_after=0.0)
    assert outcome.refused / (outcome.accepted + outcome.refused) <= 0.02
    assert control.window.effective in (5, 6)
