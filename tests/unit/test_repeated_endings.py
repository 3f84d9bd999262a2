"""When a part whose sends keep ending the same way fails its message: a table of endings
in order → the send at which the rule says "fail". Pure; no clock, no loop."""

from __future__ import annotations

import pytest

from smppgw.flow.outbound import Ending, RepeatedEndings

L, E, OTHER = "link_lost", "send_error", None

TABLE: list[tuple[str, list[Ending | None], int | None]] = [
    # (case, endings of one part's sends in order, index of the send that fails it)
    ("three drops in a row", [L, L, L], 2),
    ("an answer between drops starts over", [L, L, OTHER, L, L], None),
    ("a timeout or throttle between drops starts over too", [L, OTHER, L, L, OTHER, L], None),
    ("drops then faults of ours are two streaks", [L, L, E, E, E], 4),
    ("three faults of ours in a row", [E, E, E], 2),
    ("answered at once", [OTHER], None),
]


@pytest.mark.parametrize(("case", "endings", "fails_at"), TABLE, ids=[t[0] for t in TABLE])
def test_fails_after_the_same_ending_three_times_in_a_row(
    case: str, endings: list[Ending | None], fails_at: int | None
) -> None:
    rule = RepeatedEndings()
    verdicts = [rule.note(7, ending) for ending in endings]
    assert verdicts == [index == fails_at for index in range(len(endings))]
    assert len(rule) == (0 if fails_at is not None or endings[-1] is None else 1)


def test_suspects_are_the_parts_last_in_flight_at_a_drop() -> None:
    rule = RepeatedEndings()
    rule.note(1, "link_lost")
    rule.note(2, "send_error")
    assert rule.suspect(1) and not rule.suspect(2) and not rule.suspect(3)
    rule.note(1, None)
    assert not rule.suspect(1)


def test_parts_are_counted_apart_and_the_oldest_forgotten_past_capacity() -> None:
    rule = RepeatedEndings(capacity=2)
    for part in (1, 2, 3):
        rule.note(part, "link_lost")
    assert len(rule) == 2 and not rule.suspect(1) and rule.suspect(2) and rule.suspect(3)
    assert not rule.note(2, "link_lost") and rule.note(2, "link_lost")
