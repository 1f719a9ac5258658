"""The basic enumerators: from any cursor they resume with exactly the items after it.

A cursor is stored as JSON, so every resume here goes through ``json.dumps``/``json.loads``
first: a tuple comes back as a list, and an enumerator must not care.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim.strategies.resumable import (
    IterationJob,
    MemoryStore,
    Pause,
    ResumableError,
    Runner,
    VirtualClock,
)
from deploysim.strategies.resumable import enumerators as en

Build = Callable[[Any], Iterable[tuple[Any, Any]]]


def stored(cursor: Any) -> Any:
    """The cursor as it comes back from the store."""
    return json.loads(json.dumps(cursor))


def assert_resumes_exactly(build: Build) -> None:
    """From the start and from every cursor it yields, ``build`` gives exactly the rest."""
    pairs = list(build(None))
    items = [item for item, _ in pairs]
    for k, (_, cursor) in enumerate(pairs):
        rest = [item for item, _ in build(stored(cursor))]
        assert rest == items[k + 1:], f"resumed from cursor {cursor!r} (item {k})"


# -- sequence, int_range, batches -----------------------------------------------------------------


@given(st.lists(st.text(max_size=3), max_size=30))
def test_sequence_resumes_after_any_cursor(items):
    assert [i for i, _ in en.sequence(items)] == items
    assert_resumes_exactly(lambda c: en.sequence(items, c))


@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(1, 5), st.booleans())
def test_int_range_resumes_after_any_cursor(start, stop, step, down):
    step = -step if down else step
    assert [n for n, _ in en.int_range(start, stop, None, step)] == list(range(start, stop, step))
    assert_resumes_exactly(lambda c: en.int_range(start, stop, c, step))


@given(st.integers(0, 40), st.integers(1, 7))
def test_batches_resume_with_the_same_batches(n, size):
    build = lambda c: en.batches(en.int_range(0, n, c), size)  # noqa: E731
    batches = [b for b, _ in build(None)]
    assert [x for b in batches for x in b] == list(range(n))
    assert all(1 <= len(b) <= size for b in batches)
    assert all(len(b) == size for b in batches[:-1])
    assert_resumes_exactly(build)


# -- nested ---------------------------------------------------------------------------------------


inner_lists = st.lists(st.lists(st.integers(0, 99), max_size=4), max_size=6)


def nested_over(data: list[list[int]]) -> Build:
    """``(outer index, inner value)`` over ``data``; inner lists may be empty."""
    return lambda c: en.nested(
        lambda oc: en.sequence(range(len(data)), oc),
        lambda o, ic: en.sequence(data[o], ic),
        c,
    )


@given(inner_lists)
def test_nested_yields_every_pair_in_order(data):
    pairs = [item for item, _ in nested_over(data)(None)]
    assert pairs == [(o, x) for o, inner in enumerate(data) for x in inner]


@given(inner_lists)
def test_nested_resumes_with_exactly_the_remaining_pairs(data):
    assert_resumes_exactly(nested_over(data))


@given(st.lists(st.lists(st.lists(st.integers(0, 9), max_size=3), max_size=3), max_size=4))
def test_nested_of_nested_resumes_exactly(data):
    def build(c: Any) -> Iterable[tuple[Any, Any]]:
        return en.nested(
            lambda oc: en.sequence(range(len(data)), oc),
            lambda o, ic: en.nested(
                lambda mc: en.sequence(range(len(data[o])), mc),
                lambda m, jc: en.sequence(data[o][m], jc),
                ic,
            ),
            c,
        )

    items = [item for item, _ in build(None)]
    assert items == [
        (o, (m, x)) for o, middle in enumerate(data) for m, inner in enumerate(middle)
        for x in inner
    ]
    assert_resumes_exactly(build)


def test_nested_cursor_names_the_outer_item_before_the_current_one():
    pairs = list(nested_over([[7, 8], [], [9]])(None))
    assert pairs == [((0, 7), [None, 0]), ((0, 8), [None, 1]), ((2, 9), [1, 0])]


def test_nested_resumes_from_a_tuple_or_a_list():
    build = nested_over([[1, 2], [3]])
    assert list(build((None, 0))) == list(build([None, 0])) == [((0, 2), [None, 1]),
                                                                 ((1, 3), [0, 0])]


# -- throttle -------------------------------------------------------------------------------------


@given(st.integers(0, 20), st.integers(0, 25))
def test_throttle_passes_items_until_the_predicate_holds(n, busy_from):
    calls = []

    def busy() -> bool:
        calls.append(1)
        return len(calls) > busy_from

    out = list(en.throttle(en.int_range(0, n), busy, backoff=7.0))
    passed = [pair for pair in out if not isinstance(pair[0], Pause)]
    assert passed == [(i, i) for i in range(min(n, busy_from))]
    if busy_from < n:
        assert out[-1] == (Pause("throttled", 7.0), None)
    else:
        assert len(out) == n


# -- bad cursors and arguments name the enumerator and the value --------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: en.sequence([1, 2], "3"), ["sequence", "'3'"]),
        (lambda: en.sequence([1, 2], True), ["sequence", "True"]),
        (lambda: en.sequence([1, 2], -2), ["sequence", "-2"]),
        (lambda: en.int_range(0, 10, "4"), ["int_range", "'4'"]),
        (lambda: en.int_range(0, 10, 3, step=2), ["int_range", "3", "range(0, 10, 2)"]),
        (lambda: en.int_range(0, 10, None, step=0), ["int_range", "step 0"]),
        (lambda: en.batches(en.int_range(0, 3), 0), ["batches", "0"]),
        (lambda: en.nested(lambda c: [], lambda o, c: [], 5), ["nested", "5"]),
        (lambda: en.nested(lambda c: [], lambda o, c: [], [1, 2, 3]), ["nested", "[1, 2, 3]"]),
    ],
)
def test_bad_cursor_or_argument_is_named(make, words):
    with pytest.raises(ResumableError) as info:
        list(make())
    for word in words:
        assert word in str(info.value)


# -- through the runner -------------------------------------------------------------------------


class Countdown(IterationJob):
    """int_range with a negative step: the cursor goes down as the job goes forward."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return en.int_range(10, 0, cursor, step=-1)

    def each_iteration(self, item: int) -> None:
        self.seen.append(item)


def test_runner_accepts_a_descending_int_range():
    job = Countdown()
    result = Runner(MemoryStore(), clock=VirtualClock()).run("countdown", job)
    assert result.completed
    assert job.seen == list(range(10, 0, -1))
