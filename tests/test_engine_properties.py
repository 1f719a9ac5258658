"""Properties of the engine under deploys and crashes, through ``strategies.resumable.testing``.

- Graceful interruptions anywhere: every item exactly once, and the same final state as a run
  that was never interrupted.
- Crashes anywhere: every item at least once, no more duplicates per crash than the items since
  the last durable checkpoint, and a durable cursor that never moves backward.
- Exactly-once mode: effects written through the store's connection commit with the cursor, so
  crashes duplicate executions but never effects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import new_postgres_store, new_redis_store
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.strategies.resumable import (
    IterationJob,
    MemoryStore,
    SQLiteStore,
    StopSignal,
    Throttle,
    VirtualClock,
    WallClock,
)
from deploysim.strategies.resumable import enumerators as en
from deploysim.strategies.resumable.testing import (
    assert_each_item_at_least_once,
    assert_exactly_once,
    crash_schedules,
    interruption_schedules,
    run_with_crashes,
    run_with_interruptions,
)

JOB = "job-1"


@dataclass
class Workload:
    """A job's enumerator and what it should produce, for one drawn shape."""

    kind: str
    build: Callable[[Any], Iterable[tuple[Any, Any]]]
    effects: list[Any] = field(default_factory=list)  # what a clean run writes, in order

    def expected_items(self) -> list[Any]:
        """The items ``each_iteration`` receives in a clean run."""
        return [item for item, _ in self.build(None)]

    def cursors(self) -> list[Any]:
        """The cursors of a clean run, in order, as stored (JSON round trip)."""
        return [json.loads(json.dumps(c)) for _, c in self.build(None)]


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    """int_range, sequence, batches or nested enumerators of drawn sizes (items unique)."""
    kind = draw(st.sampled_from(["int_range", "sequence", "batches", "nested"]))
    if kind == "int_range":
        n = draw(st.integers(0, 30))
        return Workload(kind, lambda c: en.int_range(0, n, c), list(range(n)))
    if kind == "sequence":
        words = draw(st.lists(st.text("abc", max_size=3), max_size=30, unique=True))
        return Workload(kind, lambda c: en.sequence(words, c), list(words))
    if kind == "batches":
        n, size = draw(st.integers(0, 40)), draw(st.integers(1, 6))
        return Workload(kind, lambda c: en.batches(en.int_range(0, n, c), size), list(range(n)))
    data = draw(st.lists(st.lists(st.integers(0, 9), max_size=4, unique=True), max_size=7))
    return Workload(
        kind,
        lambda c: en.nested(lambda oc: en.sequence(range(len(data)), oc),
                            lambda o, ic: en.sequence(data[o], ic), c),
        [(o, x) for o, inner in enumerate(data) for x in inner],
    )


class Recording(IterationJob):
    """Writes each item (each element of a batch) to a shared list: the job's "database"."""

    def __init__(self, workload: Workload, effects: list[Any]) -> None:
        self.workload = workload
        self.effects = effects

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[Any, Any]]:
        return self.workload.build(cursor)

    def each_iteration(self, item: Any) -> None:
        self.effects.extend(item if self.workload.kind == "batches" else [item])


stores = st.sampled_from(["memory", "sqlite", "redis", "postgres"])
"""Which store a property runs on, drawn with the rest (Redis and PostgreSQL: real servers,
keys or a table of its own for each example)."""


@pytest.fixture(scope="module")
def servers(redis_url, postgres_url) -> dict[str, str]:
    """The real servers' URLs, by store name."""
    return {"redis": redis_url, "postgres": postgres_url}


def make_store(name: str, servers: dict[str, str]) -> Any:
    if name == "memory":
        return MemoryStore()
    if name == "sqlite":
        return SQLiteStore(":memory:")
    if name == "postgres":
        return new_postgres_store(servers["postgres"], shared=True)
    return new_redis_store(servers["redis"])


def position(workload: Workload, cursor: Any) -> int:
    """Index of a stored cursor in a clean run (-1 for None: nothing done)."""
    return -1 if cursor is None else workload.cursors().index(cursor)


# -- graceful interruptions ---------------------------------------------------------------------


@given(workloads(), interruption_schedules(max_runs=6, max_items=12), stores)
def test_graceful_interruptions_run_every_item_exactly_once(servers, workload, schedule,
                                                            store_name):
    effects: list[Any] = []
    store = make_store(store_name, servers)
    outcome = run_with_interruptions(lambda: Recording(workload, effects), JOB, schedule,
                                     store=store)

    assert outcome.completed
    assert_exactly_once(outcome, workload.expected_items())
    assert effects == workload.effects  # the same state, in the same order, as a clean run
    interrupted = sum(r.interrupted for r in outcome.results)
    assert outcome.runs == interrupted + 1
    remaining = len(workload.expected_items())
    for n, result in zip(schedule, outcome.results, strict=False):
        stop_after = max(n, 1)  # a stop is seen at the first item boundary after it
        if remaining >= stop_after:
            assert result.interrupted and result.items == stop_after, (n, result)
        else:
            assert result.completed and result.items == remaining, (n, result)
        remaining -= result.items
    record = store.get(JOB)
    assert record.status == "completed"
    assert record.items_done == len(workload.expected_items())
    assert record.interruptions == interrupted
    assert record.executions == outcome.runs


@given(workloads(), interruption_schedules(max_runs=4, max_items=12))
def test_one_job_object_through_every_run_is_fine_too(workload, schedule):
    effects: list[Any] = []
    outcome = run_with_interruptions(Recording(workload, effects), JOB, schedule)
    assert_exactly_once(outcome, workload.expected_items())
    assert effects == workload.effects


# -- crashes ------------------------------------------------------------------------------------


@given(workloads(), st.integers(1, 6), crash_schedules(max_runs=5, max_items=15), stores)
def test_crashes_lose_at_most_the_items_since_the_last_checkpoint(servers, workload, k,
                                                                  schedule, store_name):
    store = make_store(store_name, servers)
    outcome = run_with_crashes(lambda: Recording(workload, []), JOB, schedule, store=store,
                               checkpoint_every_items=k)

    assert outcome.completed
    expected = workload.expected_items()
    assert_each_item_at_least_once(outcome, expected)

    done_before = 0
    redone = 0
    last_position = -1
    for run, (result, record) in enumerate(zip(outcome.results, outcome.records, strict=True),
                                           start=1):
        ran = sum(e.run == run for e in outcome.executions)
        made_durable = record.items_done - done_before
        if result is None:  # a crash loses what ran since the last durable checkpoint
            lost = ran - made_durable
            assert 0 <= lost <= k, f"run {run} lost {lost} items with checkpoints every {k}"
            redone += lost
        else:
            assert made_durable == ran
        here = position(workload, record.cursor)
        assert here >= last_position, f"durable cursor moved back in run {run}"
        assert here == record.items_done - 1  # the cursor and the count agree
        last_position, done_before = here, record.items_done
    assert len(outcome.executions) == len(expected) + redone
    assert sum(outcome.duplicates.values()) - len(outcome.duplicates) == redone


@given(workloads(), st.integers(0, 8))
def test_a_crash_before_any_checkpoint_redoes_the_run_from_the_start(workload, n):
    outcome = run_with_crashes(lambda: Recording(workload, []), JOB, [n],
                               checkpoint_every_items=1000)
    expected = workload.expected_items()
    if expected and n <= len(expected):  # killed right after the n-th item's effects
        assert outcome.crashes == 1
        assert outcome.records[0].cursor is None
        assert outcome.items == expected[:n] + expected
    else:
        assert outcome.crashes == 0
        assert outcome.items == expected


# -- exactly-once effects -----------------------------------------------------------------------


class Inserting(IterationJob):
    """Inserts each number into a table through the store's connection, and checks at every
    start that the effects committed are exactly the items the store counts as done."""

    def __init__(self, store: Any, n: int, seen_at_start: list[tuple[int, int]]):
        self.store = store
        self.n = n
        self.seen_at_start = seen_at_start

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return en.int_range(0, self.n, cursor)

    def each_iteration(self, item: int) -> None:
        self.store.connection.execute(self.store.effects_insert, (item,))

    def _check(self) -> None:
        (rows,) = self.store.connection.execute(
            f"SELECT count(*) FROM {self.store.effects_table}").fetchone()
        self.seen_at_start.append((rows, self.store.get(JOB).items_done))

    on_start = _check
    on_resume = _check


TRANSACTIONAL = ["sqlite", "postgres"]
"""The stores with exactly-once effects: SQLite in memory, PostgreSQL on a real server."""


def effects_store(kind: str, servers: dict[str, str]) -> Any:
    """A transactional store with an ``effects`` table of its own next to its own table; its
    ``effects_insert`` statement takes one number."""
    if kind == "sqlite":
        store = SQLiteStore(":memory:")
        store.effects_table = "effects"
        store.connection.execute("CREATE TABLE effects (n INTEGER NOT NULL)")
        store.effects_insert = "INSERT INTO effects (n) VALUES (?)"
        store.effects_order = "rowid"
    else:
        store = new_postgres_store(servers["postgres"], shared=True)
        store.effects_table = f"{store.table}_effects"
        store.connection.execute(
            f"CREATE TABLE {store.effects_table} (id serial PRIMARY KEY, n integer NOT NULL)")
        store.effects_insert = f"INSERT INTO {store.effects_table} (n) VALUES (%s)"
        store.effects_order = "id"
    return store


def effects(store: Any) -> list[int]:
    """The committed effects, in insertion order."""
    return [n for (n,) in store.connection.execute(
        f"SELECT n FROM {store.effects_table} ORDER BY {store.effects_order}")]


@pytest.mark.parametrize("kind", TRANSACTIONAL)
@given(n=st.integers(0, 40), batch=st.integers(1, 8),
       schedule=crash_schedules(max_runs=5, max_items=20))
def test_exactly_once_mode_never_duplicates_an_effect_across_crashes(servers, kind, n, batch,
                                                                     schedule):
    store = effects_store(kind, servers)
    starts: list[tuple[int, int]] = []
    outcome = run_with_crashes(lambda: Inserting(store, n, starts), JOB, schedule, store=store,
                               exactly_once=True, batch=batch)

    assert outcome.completed
    assert_exactly_once(effects(store), range(n))
    assert effects(store) == list(range(n))
    assert all(rows == done for rows, done in starts), starts
    assert_each_item_at_least_once(outcome, range(n))


@pytest.mark.parametrize("kind", TRANSACTIONAL)
@given(n=st.integers(0, 40), batch=st.integers(1, 8),
       schedule=interruption_schedules(max_runs=5, max_items=20))
def test_exactly_once_mode_under_graceful_interruptions(servers, kind, n, batch, schedule):
    store = effects_store(kind, servers)
    starts: list[tuple[int, int]] = []
    outcome = run_with_interruptions(lambda: Inserting(store, n, starts), JOB, schedule,
                                     store=store, exactly_once=True, batch=batch)
    assert_exactly_once(outcome, range(n))
    assert effects(store) == list(range(n))
    assert all(rows == done for rows, done in starts), starts


@pytest.mark.parametrize("kind", TRANSACTIONAL)
@settings(max_examples=25)
@given(n=st.integers(1, 30), batch=st.integers(1, 8), bad=st.integers(0, 29))
def test_exactly_once_failure_rolls_back_the_open_batch(servers, kind, n, batch, bad):
    store = effects_store(kind, servers)

    class Failing(Inserting):
        def each_iteration(self, item: int) -> None:
            super().each_iteration(item)
            if item == bad:
                raise ValueError(f"item {item}")

    outcome = run_with_interruptions(lambda: Failing(store, n, []), JOB, [], store=store,
                                     exactly_once=True, batch=batch)
    if bad >= n:
        assert outcome.completed
        return
    result = outcome.result
    assert result.failed and "item" in result.reason
    durable = store.get(JOB)
    assert durable.status == "failed"
    done = durable.items_done
    assert done == (bad // batch) * batch  # the batch holding the bad item was rolled back
    assert effects(store) == list(range(done))
    assert durable.cursor == (None if done == 0 else done - 1)


# -- the helpers themselves ---------------------------------------------------------------------


class Numbers(IterationJob):
    """0..n-1, nothing else."""

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return en.int_range(0, self.n, cursor)

    def each_iteration(self, item: int) -> None:
        pass


def test_a_crash_is_not_recorded_as_a_failure():
    outcome = run_with_crashes(Numbers, JOB, [5], checkpoint_every_items=2, lease_ttl=30.0)
    crashed = outcome.records[0]
    assert outcome.results[0] is None and outcome.crashes == 1
    assert crashed.status == "running" and crashed.error is None
    assert crashed.cursor == 3 and crashed.items_done == 4  # the checkpoint after item 3
    assert crashed.owner == f"{JOB}/run-1" and crashed.lease_expires == 30.0
    assert outcome.items == [0, 1, 2, 3, 4, *range(4, 10)]
    assert outcome.duplicates == {4: 2}
    assert outcome.completed and outcome.runs == 2


def test_a_schedule_stops_each_run_after_its_count():
    outcome = run_with_interruptions(Numbers, JOB, [3, 0, 4])
    assert [r.items for r in outcome.results] == [3, 1, 4, 2]  # "at once" still ends an item
    assert [r.cursor for r in outcome.results] == [2, 3, 7, 9]
    assert [e.run for e in outcome.executions] == [1] * 3 + [2] + [3] * 4 + [4] * 2


def test_the_job_object_is_left_as_it_was():
    job = Numbers(3)
    run_with_crashes(job, JOB, [1])
    assert "each_iteration" not in vars(job)


def test_assertion_messages_name_the_items():
    outcome = run_with_crashes(lambda: Numbers(6), JOB, [4], checkpoint_every_items=2)
    assert_each_item_at_least_once(outcome, range(6))
    with pytest.raises(AssertionError) as info:
        assert_exactly_once(outcome, [*range(6), 42])
    message = str(info.value)
    assert "1 of 7 expected items never ran: [42]" in message
    assert "2 items ran more than once: 2 x2 (runs 1, 2), 3 x2 (runs 1, 2)" in message
    assert "after 2 runs (1 crashed) the job is completed" in message
    with pytest.raises(AssertionError, match=r"never ran: \[2\](.|\n)*not expected: \[7\]"):
        assert_each_item_at_least_once([0, 1, 7], range(3))


@pytest.mark.parametrize(
    "call",
    [
        lambda: run_with_interruptions(Numbers, JOB, [1], stop=StopSignal()),
        lambda: run_with_crashes(Numbers, JOB, [1], clock=WallClock()),
        lambda: run_with_crashes(Numbers, JOB, [-1]),
    ],
)
def test_the_helpers_refuse_what_they_cannot_honour(call):
    with pytest.raises((TypeError, ValueError)):
        call()


def test_a_throttled_job_is_retried_after_its_backoff():
    clock = VirtualClock()
    busy = Throttle(lambda: clock.now() < 100.0, backoff=30.0)
    outcome = run_with_interruptions(Numbers, JOB, [], clock=clock, throttle=busy)
    assert [r.status for r in outcome.results] == ["interrupted"] * 4 + ["completed"]
    assert [r.items for r in outcome.results] == [1, 1, 1, 1, 6]
    assert_exactly_once(outcome, range(10))
