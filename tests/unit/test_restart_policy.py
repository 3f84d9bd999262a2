"""When the daemon starts a failed worker again: a table over failures in a row and how long
each run lasted. Pure: no clock, no sleep."""

from __future__ import annotations

import pytest

from smppgw.flow.policy import RestartPolicy


@pytest.mark.parametrize(("runs", "delays"), [
    # (seconds each run lasted before it failed) → the delay before each restart
    ([0.1], [1.0]),
    ([0.1, 0.1, 0.1, 0.1], [1.0, 2.0, 4.0, 8.0]),
    ([0.1] * 9, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]),  # capped at a minute
    ([0.1, 0.1, 120.0, 0.1], [1.0, 2.0, 1.0, 2.0]),  # a run that lasted resets the streak
])
def test_delays_grow_while_a_worker_keeps_failing(runs: list[float], delays: list[float]) -> None:
    policy = RestartPolicy(initial=1.0, cap=60.0, healthy_after=60.0)
    assert [policy.after_failure(ran_for) for ran_for in runs] == delays
