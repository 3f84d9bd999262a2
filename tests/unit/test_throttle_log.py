"""When a repeated event is logged (throttling, a flood of malformed PDUs): the first at once,
the rest summed per period.

Time moves by passing ``now``; nothing waits.
"""

from __future__ import annotations

from smppgw.logs import ThrottleLog


def test_the_first_event_logs_and_the_rest_are_counted() -> None:
    log = ThrottleLog(30.0)
    assert log.note(now=100.0) == 130.0  # log it; summary due at 130
    assert log.note(now=101.0) is None
    assert log.note(now=102.0) is None
    assert log.note(now=129.0) is None
    assert log.summary(now=130.0) == (3, 30.0)


def test_sustained_throttling_gives_one_summary_per_period() -> None:
    log = ThrottleLog(30.0)
    assert log.note(now=0.0) == 30.0
    lines = 1
    now = 0.0
    next_summary = 30.0
    while now < 300.0:  # ten throttled answers a second for five minutes
        now = round(now + 0.1, 1)
        if now >= next_summary:
            assert log.summary(now) is not None
            lines += 1
            next_summary = now + 30.0
        assert log.note(now) is None
    assert lines == 11  # not 3000


def test_a_quiet_period_ends_the_streak() -> None:
    log = ThrottleLog(30.0)
    assert log.note(now=0.0) == 30.0
    assert log.summary(now=30.0) is None  # nothing counted: no line, streak over
    assert log.note(now=500.0) == 530.0  # the next event logs at once again


def test_summary_after_the_last_counted_period_then_quiet() -> None:
    log = ThrottleLog(30.0)
    log.note(now=0.0)
    log.note(now=10.0)
    assert log.summary(now=30.0) == (1, 30.0)
    assert log.summary(now=60.0) is None
    assert log.note(now=61.0) == 91.0


def test_early_summary_covers_the_time_so_far() -> None:
    # The bind stops mid-period: what was counted is said with the seconds it covers.
    log = ThrottleLog(30.0)
    log.note(now=0.0)
    log.note(now=5.0)
    assert log.summary(now=12.0) == (1, 12.0)
