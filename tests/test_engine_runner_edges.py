"""The runner at its edges: pauses inside composed enumerators, owners and held leases, items
longer than a lease, clock steps, enumerators that vouch for their order or ignore their cursor,
settings of the wrong type, and runs of very many checkpoints. Every behaviour is checked on
every store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from deploysim.strategies.resumable import (
    IterationJob,
    LeaseHeldError,
    MemoryStore,
    ResumableError,
    Runner,
    SQLiteStore,
    StopSignal,
    VirtualClock,
    WallClock,
)
from deploysim.strategies.resumable import clock as clock_module
from deploysim.strategies.resumable import enumerators as en
from deploysim.strategies.resumable.runner import Pause

JOB = "job-1"


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
    else:
        s = SQLiteStore(str(tmp_path / "progress.db"))
        yield s
        s.close()


class Recording(IterationJob):
    """Runs the enumerator ``build(cursor)`` and records every item it is handed."""

    def __init__(self, build: Any, seen: list[Any] | None = None) -> None:
        self.build = build
        self.seen: list[Any] = [] if seen is None else seen
        self.hook: Any = None

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[Any, Any]]:
        return self.build(cursor)

    def each_iteration(self, item: Any) -> None:
        if self.hook is not None:
            self.hook(item)
        self.seen.append(item)


def once_after(n: int) -> Any:
    """A predicate true exactly once: at its ``n + 1``-th call."""
    calls = [0]

    def predicate() -> bool:
        calls[0] += 1
        return calls[0] == n + 1

    return predicate


def always() -> bool:
    """A stop condition that interrupts the job after every item."""
    return True


def run_to_end(store: Any, make_job: Any, *, limit: int = 10, **kwargs: Any) -> list[Any]:
    """Run fresh jobs until one completes; the results, in order."""
    results = []
    for _ in range(limit):
        result = Runner(store, clock=VirtualClock(), **kwargs).run(JOB, make_job())
        results.append(result)
        if result.completed:
            return results
    raise AssertionError(f"not completed after {limit} runs: {results[-1]}")


# -- pauses inside composed enumerators -----------------------------------------------------------


def test_a_throttle_inside_batches_interrupts_and_resumes_exactly(store):
    predicate = once_after(25)
    seen: list[Any] = []

    def make_job() -> Recording:
        return Recording(lambda c: en.batches(en.throttle(en.int_range(0, 100, c), predicate,
                                                          0.0), 10), seen)

    results = run_to_end(store, make_job)
    first = results[0]
    assert first.interrupted and first.reason == "throttled" and first.cursor == 19
    assert all(isinstance(b, list) and Pause not in map(type, b) for b in seen)
    assert [n for batch in seen for n in batch] == list(range(100))  # each item once, in order
    assert store.get(JOB).status == "completed"


def test_a_throttle_inside_nested_interrupts_and_resumes_exactly(store):
    predicate = once_after(15)
    seen: list[Any] = []

    def build(cursor: Any) -> Iterator[tuple[Any, Any]]:
        return en.nested(lambda c: en.int_range(0, 6, c),
                         lambda outer, c: en.throttle(en.int_range(0, 10, c), predicate, 0.0),
                         cursor)

    results = run_to_end(store, lambda: Recording(build, seen))
    assert results[0].interrupted and results[0].cursor == [0, 4]
    assert seen == [(o, i) for o in range(6) for i in range(10)]


def test_a_throttle_as_nested_outer_enumerator_pauses_between_outer_items(store):
    predicate = once_after(2)
    seen: list[Any] = []

    def build(cursor: Any) -> Iterator[tuple[Any, Any]]:
        return en.nested(lambda c: en.throttle(en.int_range(0, 4, c), predicate, 0.0),
                         lambda outer, c: en.int_range(0, 3, c), cursor)

    results = run_to_end(store, lambda: Recording(build, seen))
    assert results[0].interrupted and results[0].cursor == [0, 2]
    assert seen == [(o, i) for o in range(4) for i in range(3)]


def test_batches_and_nested_pass_a_pause_on_with_the_last_completed_cursor():
    pause = Pause("throttled", 1.0)
    source = [(0, 0), (1, 1), (2, 2), (pause, None)]
    assert list(en.batches(source, 2)) == [([0, 1], 1), (pause, 1)]  # [2] is never a batch
    assert list(en.batches([(pause, None)], 2)) == [(pause, None)]
    pairs = list(en.nested(lambda c: en.int_range(0, 2, c),
                           lambda o, c: iter([(10, 0), (pause, None)]), None))
    assert pairs == [((0, 10), [None, 0]), (pause, [None, 0])]


# -- owners and held leases -----------------------------------------------------------------------


def test_two_runners_of_one_process_have_different_default_owners(store):
    a, b = Runner(store), Runner(store)
    assert a.owner != b.owner
    clock = VirtualClock()
    held = Runner(store, clock=clock).start(JOB, Recording(lambda c: en.int_range(0, 5, c)))
    intruder = Recording(lambda c: en.int_range(0, 5, c))
    result = Runner(store, clock=clock).run(JOB, intruder)
    assert result.busy and intruder.seen == [] and held.advance() and held.result.completed


def test_two_threads_never_run_one_job_at_once(store):
    seen: list[int] = []
    lock = threading.Lock()
    inside = [0]
    overlaps = [0]

    def item(_: Any) -> None:
        with lock:
            inside[0] += 1
            overlaps[0] += inside[0] > 1
        time.sleep(0.002)
        with lock:
            inside[0] -= 1

    def work() -> None:
        for _ in range(20):
            job = Recording(lambda c: en.int_range(0, 40, c), seen)
            job.hook = item
            result = Runner(store, checkpoint_every_items=1, heartbeat=False).run(JOB, job)
            if result.completed:
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0 and sorted(seen) == list(range(40))


def test_a_held_lease_is_a_busy_result_for_a_stranger_and_taken_back_by_its_owner(store):
    clock = VirtualClock(100.0)
    crashed = Runner(store, owner="pod-7", clock=clock, lease_ttl=60.0).start(
        JOB, Recording(lambda c: en.int_range(0, 5, c)))  # then killed: its lease stays
    assert crashed.lease.owner == "pod-7"
    clock.advance(9.0)
    stranger = Recording(lambda c: en.int_range(0, 5, c))
    result = Runner(store, owner="pod-8", clock=clock, lease_ttl=60.0).run(JOB, stranger)
    assert result.busy and not result.failed and result.retry_after == pytest.approx(51.0)
    assert "pod-7" in result.reason and stranger.seen == [] and result.items == 0
    with pytest.raises(LeaseHeldError):  # start keeps raising, for step-wise drivers
        Runner(store, owner="pod-8", clock=clock).start(JOB, stranger)
    again = Recording(lambda c: en.int_range(0, 5, c))
    result = Runner(store, owner="pod-7", clock=clock, lease_ttl=60.0).run(JOB, again)
    assert result.completed and again.seen == [0, 1, 2, 3, 4]


# -- items longer than the lease ----------------------------------------------------------------


def test_the_heartbeat_keeps_the_lease_through_an_item_longer_than_the_ttl(store):
    outcome: dict[str, Any] = {}
    other = Recording(lambda c: en.int_range(0, 2, c))

    def slow(item: int) -> None:
        if item == 0:
            time.sleep(1.2)  # lease_ttl is 0.4 s: three lifetimes
            outcome["names"] = [t.name for t in threading.enumerate()]
            outcome["stranger"] = Runner(store, lease_ttl=0.4).run(JOB, other)

    job = Recording(lambda c: en.int_range(0, 2, c))
    job.hook = slow
    result = Runner(store, lease_ttl=0.4, checkpoint_every=10.0).run(JOB, job)
    assert outcome["stranger"].busy and other.seen == []
    assert any(name.startswith("lease heartbeat") for name in outcome["names"])
    assert result.completed and job.seen == [0, 1]
    time.sleep(0.3)  # a beat after the end must not take the released lease back
    record = store.get(JOB)
    assert record.status == "completed" and record.owner is None
    assert not any(t.name.startswith("lease heartbeat") for t in threading.enumerate())


def test_no_heartbeat_thread_under_a_virtual_clock(store):
    names: list[list[str]] = []
    job = Recording(lambda c: en.int_range(0, 2, c))
    job.hook = lambda item: names.append([t.name for t in threading.enumerate()])
    runner = Runner(store, clock=VirtualClock())
    assert runner.heartbeat is False
    assert runner.run(JOB, job).completed
    assert not any(n.startswith("lease heartbeat") for row in names for n in row)


def test_a_heartbeat_cannot_be_asked_for_with_exactly_once(tmp_path):
    with pytest.raises(ResumableError, match="heartbeat=True with exactly_once"):
        Runner(SQLiteStore(":memory:"), exactly_once=True, heartbeat=True)
    assert Runner(SQLiteStore(":memory:"), exactly_once=True).heartbeat is False


# -- clock steps ----------------------------------------------------------------------------------


class SteppingClock:
    """A wall clock whose ``now()`` can be stepped while ``monotonic()`` goes on."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.offset = 1_000_000.0

    def now(self) -> float:
        return self.mono + self.offset

    def monotonic(self) -> float:
        return self.mono


def test_a_backward_clock_step_keeps_checkpoints_and_run_time(store):
    clock = SteppingClock()
    durable: list[Any] = []

    def tick(item: int) -> None:
        durable.append(store.get(JOB).cursor if store.get(JOB) else None)
        clock.mono += 1.0
        if item == 4:
            clock.offset -= 3600.0

    job = Recording(lambda c: en.int_range(0, 12, c))
    job.hook = tick
    result = Runner(store, clock=clock, checkpoint_every=2.0, heartbeat=False).run(JOB, job)
    assert result.completed and result.run_time == pytest.approx(12.0)
    assert durable[5:] == [3, 5, 5, 7, 7, 9, 9]  # checkpoints every 2 s after the step too
    assert store.get(JOB).run_time == pytest.approx(12.0)


class FakeTime:
    """Stands in for the ``time`` module inside clock.py."""

    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def tick(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_the_wall_clock_never_goes_back_and_follows_forward_steps(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = WallClock()
    assert clock.now() == 1_000_000.0
    fake.tick(10.0)
    fake.wall -= 3600.0  # stepped back: the clock goes on at the monotonic pace
    assert clock.now() == 1_000_010.0
    fake.tick(5.0)
    assert clock.now() == 1_000_015.0
    fake.wall += 3600.0 + 120.0  # stepped forward past where it was: followed
    assert clock.now() == 1_000_135.0
    assert clock.monotonic() == 65.0


def test_a_backward_step_does_not_shorten_the_lease_a_wall_clock_runner_writes(store,
                                                                                monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    expiries: list[float] = []

    def tick(item: int) -> None:
        fake.tick(1.0)
        if item == 2:
            fake.wall -= 3600.0
        record = store.get(JOB)
        expiries.append(record.lease_expires)

    job = Recording(lambda c: en.int_range(0, 8, c))
    job.hook = tick
    result = Runner(store, checkpoint_every=2.0, lease_ttl=30.0, heartbeat=False).run(JOB, job)
    assert result.completed and result.run_time == pytest.approx(8.0)
    assert expiries == sorted(expiries) and min(expiries) >= 1_000_000.0 + 30.0


# -- cursor order ---------------------------------------------------------------------------------


class Vouching:
    """Text keys in a case-insensitive order, as a ``COLLATE NOCASE`` column returns them."""

    vouches_for_order = True

    def __init__(self, keys: list[str], cursor: Any) -> None:
        start = 0 if cursor is None else keys.index(cursor) + 1
        self._pairs = iter([(k, k) for k in keys[start:]])

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self

    def __next__(self) -> tuple[str, str]:
        return next(self._pairs)


KEYS = ["apple", "Banana", "cherry", "Date"]


def test_an_enumerator_that_vouches_for_its_order_is_not_direction_checked(store):
    job = Recording(lambda c: Vouching(KEYS, c))
    result = Runner(store, clock=VirtualClock(), checkpoint_every_items=2).run(JOB, job)
    assert result.completed and job.seen == KEYS and result.cursor == "Date"


def test_a_vouching_enumerator_resumes_after_its_cursor(store):
    seen: list[str] = []
    results = run_to_end(store, lambda: Recording(lambda c: Vouching(KEYS, c), seen),
                         stop_when=[always])
    assert seen == KEYS and len(results) == 5 and results[-1].cursor == "Date"


def test_without_the_vouch_the_same_keys_are_refused(store):
    class Plain(Vouching):
        vouches_for_order = False

    with pytest.raises(ResumableError, match="keep moving one way"):
        Runner(store, clock=VirtualClock()).run(JOB, Recording(lambda c: Plain(KEYS, c)))


def test_a_vouching_enumerator_that_repeats_a_cursor_is_still_refused(store):
    class Repeating(Vouching):
        def __init__(self, keys: list[str], cursor: Any) -> None:
            self._pairs = iter([("a", "a"), ("a", "a")])

    job = Recording(lambda c: Repeating(KEYS, c))
    with pytest.raises(ResumableError, match="'a' after 'a'"):
        Runner(store, clock=VirtualClock()).run(JOB, job)
    assert job.seen == ["a"]


class IgnoresCursor(Recording):
    def __init__(self, seen: list[Any], n: int = 10) -> None:
        super().__init__(lambda c: ((i, i) for i in range(n)), seen)


def test_an_enumerator_that_ignores_its_cursor_is_named_before_any_item_reruns(store):
    seen: list[Any] = []
    stop = StopSignal()
    job = IgnoresCursor(seen)
    job.hook = lambda i: stop.request("deploy") if i == 4 else None
    assert Runner(store, clock=VirtualClock(), stop=stop).run(JOB, job).cursor == 4
    with pytest.raises(ResumableError) as info:
        Runner(store, clock=VirtualClock()).run(JOB, IgnoresCursor(seen))
    message = str(info.value)
    assert "IgnoresCursor.build_enumerator" in message and "ignored its cursor" in message
    assert "cursor 4" in message and "cursor 0" in message
    assert seen == [0, 1, 2, 3, 4]  # nothing ran twice
    assert store.get(JOB).cursor == 4 and store.get(JOB).status == "failed"


def test_an_enumerator_yielding_the_stored_cursor_again_is_named(store):
    seen: list[Any] = []
    stop = StopSignal()
    job = Recording(lambda c: en.int_range(0, 5, c), seen)
    job.hook = lambda i: stop.request("deploy") if i == 2 else None
    Runner(store, clock=VirtualClock(), stop=stop).run(JOB, job)
    again = Recording(lambda c: iter([(2, 2), (3, 3), (4, 4)]), seen)
    with pytest.raises(ResumableError, match=r"ignored its cursor: built from cursor 2"):
        Runner(store, clock=VirtualClock()).run(JOB, again)
    assert seen == [0, 1, 2]


def test_a_countdown_resumes_below_its_stored_cursor(store):
    seen: list[int] = []
    results = run_to_end(store, lambda: Recording(lambda c: en.int_range(9, -1, c, step=-1),
                                                  seen), limit=20, stop_when=[always])
    assert seen == list(range(9, -1, -1)) and all(r.items <= 1 for r in results)


def test_a_single_item_going_back_is_refused_before_it_runs(store):
    job = Recording(lambda c: iter([(0, 0), (1, 1), (2, 2), (9, 1), (3, 3)]))
    with pytest.raises(ResumableError, match="cursor 1 after 2"):
        Runner(store, clock=VirtualClock()).run(JOB, job)
    assert job.seen == [0, 1, 2]


# -- settings and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"lease_ttl": "60"}, "lease_ttl='60'"),
        ({"checkpoint_every": "5"}, "checkpoint_every='5'"),
        ({"max_runtime": "10"}, "max_runtime='10'"),
        ({"checkpoint_every_items": "10"}, "checkpoint_every_items='10'"),
        ({"checkpoint_every_items": 2.5}, "checkpoint_every_items=2.5"),
        ({"batch": "100"}, "batch='100'"),
        ({"lease_ttl": float("nan")}, "lease_ttl=nan"),
        ({"lease_ttl": True}, "lease_ttl=True"),
        ({"exactly_once": "yes"}, "exactly_once='yes'"),
        ({"owner": 7}, "owner=7"),
        ({"owner": ""}, "owner=''"),
        ({"stop_when": lambda: True}, "stop_when="),
        ({"stop_when": [1]}, "stop_when="),
        ({"throttle": lambda: True}, "throttle="),
        ({"clock": 3.0}, "clock=3.0"),
        ({"stop": True}, "stop=True"),
    ],
)
def test_settings_of_the_wrong_type_are_one_error_naming_them(store, kwargs, word):
    with pytest.raises(ResumableError) as info:
        Runner(store, **kwargs)
    assert word in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("cursor", "start", "stop", "step"),
                         [(10, 0, 10, 1), (-1, 0, 10, 1), (12, 0, 10, 2), (10, 9, -1, -1)])
def test_int_range_refuses_a_cursor_outside_its_range(cursor, start, stop, step):
    with pytest.raises(ResumableError) as info:
        list(en.int_range(start, stop, cursor, step))
    assert f"cursor {cursor} is not one of range({start}, {stop}, {step})" in str(info.value)


def test_int_range_accepts_every_cursor_of_its_range():
    assert list(en.int_range(0, 10, 9)) == []
    assert list(en.int_range(0, 10, 6, step=3)) == [(9, 9)]
    assert list(en.int_range(9, -1, 1, step=-1)) == [(0, 0)]


def test_a_stop_before_the_run_interrupts_at_once_with_the_cursor_unchanged(store):
    seen: list[Any] = []
    stop = StopSignal()
    first = Recording(lambda c: en.int_range(0, 5, c), seen)
    first.hook = lambda i: stop.request("deploy") if i == 1 else None
    Runner(store, clock=VirtualClock(), stop=stop).run(JOB, first)
    result = Runner(store, clock=VirtualClock(), stop=stop).run(
        JOB, Recording(lambda c: en.int_range(0, 5, c), seen))
    assert result.interrupted and result.reason == "deploy" and result.items == 0
    assert result.cursor == 1 and seen == [0, 1] and store.get(JOB).cursor == 1


# -- long runs ------------------------------------------------------------------------------------


class Many(IterationJob):
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0

    def build_enumerator(self, cursor: Any) -> Iterator[tuple[int, int]]:
        return en.int_range(0, self.n, cursor)

    def each_iteration(self, item: int) -> None:
        self.count += 1


def test_a_checkpoint_after_every_item_of_a_long_run_completes_in_linear_time():
    job = Many(200_000)
    started = time.perf_counter()
    result = Runner(MemoryStore(), clock=VirtualClock(), checkpoint_every=None,
                    checkpoint_every_items=1).run(JOB, job)
    elapsed = time.perf_counter() - started
    assert result.completed and job.count == 200_000 and result.cursor == 199_999
    # linear: about a second; a cost growing with the square of the checkpoints: minutes
    assert elapsed < 60.0, f"{elapsed:.1f} s for 200,000 checkpoints"


def test_a_checkpoint_after_every_item_completes_on_sqlite_too(tmp_path):
    job = Many(3_000)
    store = SQLiteStore(str(tmp_path / "p.db"))
    result = Runner(store, clock=VirtualClock(), checkpoint_every=None,
                    checkpoint_every_items=1).run(JOB, job)
    assert result.completed and job.count == 3_000 and store.get(JOB).items_done == 3_000
