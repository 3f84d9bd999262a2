"""The window: sequence numbers (SMPP 3.4 §5.1.4: 1..0x7FFFFFFF, wrapping, never two
outstanding alike), room, oldest-first order, and the hand-back on close."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.constants import MAX_SEQUENCE_NUMBER
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.pdu import EnquireLink, SubmitSm
from smppgw.smpp.window import Window

REQUEST = SubmitSm(destination_addr="5511999999999")


def send(window: Window, tag: object, sent_at: float = 0.0) -> int:
    sequence_number = window.allocate()
    window.add(sequence_number, tag, sent_at, REQUEST)
    return sequence_number


def test_counts_up_from_one_and_reports_room() -> None:
    window = Window(3)
    assert (window.capacity, window.in_flight, window.room) == (3, 0, 3)
    assert [send(window, t) for t in "abc"] == [1, 2, 3]
    assert (window.in_flight, window.room, len(window)) == (3, 0, 3)
    assert 2 in window and 4 not in window
    assert repr(window) == "<Window 3/3 next_sequence_number=4>"


def test_adding_without_room_raises_and_changes_nothing() -> None:
    window = Window(2)
    send(window, "a")
    send(window, "b")
    with pytest.raises(LocalProtocolError, match="window full"):
        window.allocate()
    with pytest.raises(LocalProtocolError, match="window full"):
        window.add(7, "c", 0.0, REQUEST)
    assert window.in_flight == 2
    window.pop(1)
    assert send(window, "c") == 3


def test_pop_frees_the_slot_and_unknown_numbers_give_none() -> None:
    window = Window(2)
    send(window, "a", 1.5)
    assert window.get(1) == ("a", 1.5, REQUEST)
    assert window.pop(1) == ("a", 1.5, REQUEST)
    assert window.pop(1) is None
    assert window.get(99) is None
    assert window.room == 2


def test_wraps_from_0x7fffffff_to_one() -> None:
    window = Window(4, first_sequence_number=MAX_SEQUENCE_NUMBER - 1)
    assert [send(window, t) for t in "abc"] == [0x7FFFFFFE, 0x7FFFFFFF, 1]


def test_wrap_skips_numbers_still_outstanding() -> None:
    # 1 and 2 are still out when the counter comes round again: they are skipped.
    window = Window(5, first_sequence_number=MAX_SEQUENCE_NUMBER)
    window.add(1, "old-1", 0.0, REQUEST)
    window.add(2, "old-2", 0.0, REQUEST)
    assert send(window, "a") == 0x7FFFFFFF
    assert send(window, "b") == 3
    window.pop(1)
    assert send(window, "c") == 4


def test_skips_an_outstanding_number_in_the_middle() -> None:
    window = Window(3)
    window.add(2, "x", 0.0, REQUEST)
    assert [send(window, t) for t in "ab"] == [1, 3]


def test_add_rejects_duplicates_and_out_of_range_numbers() -> None:
    window = Window(3)
    window.add(5, "a", 0.0, REQUEST)
    with pytest.raises(LocalProtocolError, match="already outstanding"):
        window.add(5, "b", 0.0, REQUEST)
    for bad in (0, MAX_SEQUENCE_NUMBER + 1, -1):
        with pytest.raises(LocalProtocolError, match="outside"):
            window.add(bad, "b", 0.0, REQUEST)
    assert window.in_flight == 1


@pytest.mark.parametrize(
    ("capacity", "first"), [(0, 1), (MAX_SEQUENCE_NUMBER, 1), (1, 0), (1, MAX_SEQUENCE_NUMBER + 1)]
)
def test_rejects_impossible_construction(capacity: int, first: int) -> None:
    with pytest.raises(LocalProtocolError):
        Window(capacity, first_sequence_number=first)


def test_oldest_is_the_first_sent_among_those_outstanding() -> None:
    window = Window(3)
    assert window.oldest() is None
    send(window, "a", 1.0)
    send(window, "b", 2.0)
    send(window, "c", 3.0)
    assert window.oldest() == (1, ("a", 1.0, REQUEST))
    window.pop(1)
    assert window.oldest() == (2, ("b", 2.0, REQUEST))
    assert [n for n, _ in window.items()] == [2, 3]


def test_take_all_hands_everything_back_oldest_first_and_empties() -> None:
    window = Window(3)
    probe = EnquireLink(sequence_number=2)
    send(window, "a", 1.0)
    window.add(window.allocate(), "probe", 2.0, probe)
    send(window, "c", 3.0)
    assert window.take_all() == [
        (1, ("a", 1.0, REQUEST)),
        (2, ("probe", 2.0, probe)),
        (3, ("c", 3.0, REQUEST)),
    ]
    assert window.in_flight == 0 and window.take_all() == []
    assert send(window, "d") == 4  # numbering continues: no reuse right after a close


@settings(max_examples=300)
@given(
    capacity=st.integers(1, 6),
    first=st.one_of(st.integers(1, 20), st.integers(MAX_SEQUENCE_NUMBER - 8, MAX_SEQUENCE_NUMBER)),
    operations=st.lists(st.one_of(st.just("send"), st.integers(0, 10)), max_size=120),
)
def test_outstanding_numbers_are_unique_in_range_and_within_capacity(
    capacity: int, first: int, operations: list[object]
) -> None:
    """Random sends and answers (in any order): the window invariants hold after each step."""
    window = Window(capacity, first_sequence_number=first)
    outstanding: list[int] = []
    for operation in operations:
        if operation == "send":
            if window.room == 0:
                with pytest.raises(LocalProtocolError):
                    window.allocate()
                continue
            sequence_number = send(window, operation)
            assert sequence_number not in outstanding
            assert 1 <= sequence_number <= MAX_SEQUENCE_NUMBER
            outstanding.append(sequence_number)
        elif outstanding:
            assert isinstance(operation, int)
            answered = outstanding.pop(operation % len(outstanding))
            assert window.pop(answered) is not None
        assert window.in_flight == len(outstanding) <= capacity
        assert window.room == capacity - len(outstanding)
        assert [n for n, _ in window.items()] == outstanding  # oldest first


@settings(max_examples=300)
@given(
    capacity=st.integers(1, 6),
    first=st.one_of(st.integers(1, 20), st.integers(MAX_SEQUENCE_NUMBER - 8, MAX_SEQUENCE_NUMBER)),
    operations=st.lists(st.one_of(st.just("send"), st.integers(0, 10)), max_size=120),
)
def test_add_next_is_allocate_then_add(
    capacity: int, first: int, operations: list[object]
) -> None:
    """The send path's one call numbers, records and refuses exactly as the two calls do."""
    one_call = Window(capacity, first_sequence_number=first)
    two_calls = Window(capacity, first_sequence_number=first)
    for step, operation in enumerate(operations):
        if operation == "send":
            if two_calls.room == 0:
                with pytest.raises(LocalProtocolError, match="window full"):
                    one_call.add_next(step, float(step), REQUEST)
                continue
            assert one_call.add_next(step, float(step), REQUEST) == send(two_calls, step, step)
        elif two_calls.in_flight:
            assert isinstance(operation, int)
            answered = list(two_calls.items())[operation % two_calls.in_flight][0]
            assert one_call.pop(answered) == two_calls.pop(answered)
        assert list(one_call.items()) == list(two_calls.items())
        assert repr(one_call) == repr(two_calls)
