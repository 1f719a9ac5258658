"""The runner, one behaviour at a time: callbacks, limits, throttles, checkpoints, bad cursors,
failures, the stop signal, and the Execution API the simulator drives."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from typing import Any

import pytest

from deploysim.strategies.resumable import (
    IterationJob,
    MemoryStore,
    ResumableError,
    Runner,
    SQLiteStore,
    StopSignal,
    Throttle,
    TransactionalStore,
    VirtualClock,
    stop_on_signals,
)
from deploysim.strategies.resumable import enumerators as en

JOB = "job-1"


class Counting(IterationJob):
    """Numbers 0..n-1; each item takes ``tick`` virtual seconds and may run a hook first."""

    def __init__(self, n: int = 10, clock: VirtualClock | None = None, tick: float = 0.0,
                 store: Any = None) -> None:
        self.n = n
        self.clock = clock
        self.tick = tick
        self.store = store
        self.seen: list[int] = []
        self.events: list[str] = []
        self.durable_at_item: list[Any] = []  # the stored cursor when each item starts
        self.hook: Any = None

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return en.int_range(0, self.n, cursor)

    def each_iteration(self, item: int) -> None:
        if self.store is not None:
            self.durable_at_item.append(self.store.get(JOB).cursor)
        if self.hook is not None:
            self.hook(item)
        self.seen.append(item)
        if self.clock is not None and self.tick:
            self.clock.advance(self.tick)

    def _stored(self) -> str:
        if self.store is None:
            return ""
        record = self.store.get(JOB)
        return f" ({record.status} at {record.cursor})"

    def on_start(self) -> None:
        self.events.append("start")

    def on_resume(self) -> None:
        self.events.append("resume")

    def on_shutdown(self) -> None:
        self.events.append("shutdown" + self._stored())

    def on_complete(self) -> None:
        self.events.append("complete" + self._stored())


def stop_at(job: Counting, stop: StopSignal, item: int) -> None:
    """Request a stop while ``item`` is running."""
    job.hook = lambda i: stop.request("deploy") if i == item else None


# -- callbacks ------------------------------------------------------------------------------------


def test_callbacks_in_order_across_runs():
    store, clock = MemoryStore(), VirtualClock()
    job = Counting(n=6, store=store)
    for run, item in enumerate([1, 3]):
        stop = StopSignal()
        stop_at(job, stop, item)
        result = Runner(store, clock=clock, stop=stop, owner=f"w{run}").run(JOB, job)
        assert result.interrupted and result.cursor == item
    job.hook = None
    result = Runner(store, clock=clock, owner="w2").run(JOB, job)
    assert result.completed
    assert job.events == [
        "start", "shutdown (interrupted at 1)",
        "resume", "shutdown (interrupted at 3)",
        "resume", "complete (completed at 5)",
    ]
    assert job.seen == [0, 1, 2, 3, 4, 5]
    again = Runner(store, clock=clock, owner="w3").run(JOB, job)
    assert again.completed and again.items == 0
    assert job.events.count("complete (completed at 5)") == 1


def test_on_start_only_once_even_if_the_first_run_crashed_early():
    store, clock = MemoryStore(), VirtualClock()
    job = Counting(n=3)
    Runner(store, clock=clock, owner="a").start(JOB, job)  # died before it began: no start yet
    clock.advance(61)
    first = Runner(store, clock=clock, owner="b").start(JOB, job)
    first.advance(until=clock.now())  # began, ran one item, then the process died
    clock.advance(61)
    Runner(store, clock=clock, owner="c").run(JOB, job)
    assert job.events == ["start", "resume", "complete"]


def test_around_iteration_wraps_each_item():
    calls = []

    class Wrapped(Counting):
        def around_iteration(self, item, proceed):
            calls.append(("before", item))
            proceed()
            calls.append(("after", item))

    job = Wrapped(n=2)
    Runner(MemoryStore(), clock=VirtualClock()).run(JOB, job)
    assert calls == [("before", 0), ("after", 0), ("before", 1), ("after", 1)]
    assert job.seen == [0, 1]


# -- limits, throttles, stop conditions -----------------------------------------------------------


@pytest.mark.parametrize(("job_limit", "runner_limit", "items"),
                         [(3.0, 5.0, 3), (5.0, 2.0, 2), (None, 4.0, 4), (4.0, None, 4)])
def test_max_runtime_the_smaller_wins(job_limit, runner_limit, items):
    clock = VirtualClock(100.0)
    job = Counting(n=20, clock=clock, tick=1.0)
    job.max_runtime = job_limit
    result = Runner(MemoryStore(), clock=clock, max_runtime=runner_limit).run(JOB, job)
    assert result.interrupted and result.reason == "max runtime"
    assert result.items == items and result.cursor == items - 1


def test_throttle_interrupts_with_retry_after():
    load = {"busy": False}
    job = Counting(n=10)
    job.hook = lambda i: load.update(busy=i == 3)
    result = Runner(MemoryStore(), clock=VirtualClock(),
                    throttle=Throttle(lambda: load["busy"], backoff=12.5)).run(JOB, job)
    assert result.interrupted and result.reason == "throttled"
    assert result.retry_after == 12.5
    assert result.cursor == 3 and job.seen == [0, 1, 2, 3]


def test_throttle_enumerator_pauses_without_moving_the_cursor():
    store, clock = MemoryStore(), VirtualClock()
    busy = {"on": False}

    class Throttled(Counting):
        def build_enumerator(self, cursor):
            return en.throttle(super().build_enumerator(cursor), lambda: busy["on"], backoff=9)

    job = Throttled(n=10)
    stop = StopSignal()
    stop_at(job, stop, 4)
    assert Runner(store, clock=clock, stop=stop).run(JOB, job).cursor == 4
    job.hook = None
    busy["on"] = True
    result = Runner(store, clock=clock).run(JOB, job)
    assert result.interrupted and result.reason == "throttled" and result.retry_after == 9
    assert result.items == 0 and result.cursor == 4
    assert store.get(JOB).cursor == 4 and store.get(JOB).status == "interrupted"
    busy["on"] = False
    assert Runner(store, clock=clock).run(JOB, job).completed
    assert job.seen == list(range(10))


def test_stop_when_predicates_are_named_in_the_reason():
    job = Counting(n=10)

    def replica_lagging() -> bool:
        return len(job.seen) >= 4

    result = Runner(MemoryStore(), clock=VirtualClock(),
                    stop_when=[lambda: False, replica_lagging]).run(JOB, job)
    assert result.interrupted and result.reason == "replica_lagging"
    assert result.cursor == 3 and result.retry_after is None


# -- checkpoints --------------------------------------------------------------------------------


def test_time_based_checkpoints_every_t_seconds():
    store, clock = MemoryStore(), VirtualClock()
    job = Counting(n=10, clock=clock, tick=1.0, store=store)
    Runner(store, clock=clock, checkpoint_every=3.0).run(JOB, job)
    # items take 1 s: checkpoints after items 2, 5 and 8 (at 3, 6 and 9 s)
    assert job.durable_at_item == [None, None, None, 2, 2, 2, 5, 5, 5, 8]


def test_the_lease_is_renewed_at_least_every_half_ttl():
    store, clock = MemoryStore(), VirtualClock()
    job = Counting(n=6, clock=clock, tick=1.0, store=store)
    Runner(store, clock=clock, checkpoint_every=100.0, lease_ttl=4.0).run(JOB, job)
    assert job.durable_at_item == [None, None, 1, 1, 3, 3]


@pytest.mark.parametrize("k", [1, 2, 4])
def test_checkpoint_every_items(k):
    store = MemoryStore()
    job = Counting(n=9, store=store)
    Runner(store, clock=VirtualClock(), checkpoint_every=None, checkpoint_every_items=k).run(
        JOB, job)
    expected = [None if i < k else (i // k) * k - 1 for i in range(9)]
    assert job.durable_at_item == expected


def test_checkpoint_renews_the_lease_and_counts_run_time():
    store, clock = MemoryStore(), VirtualClock(50.0)
    job = Counting(n=4, clock=clock, tick=2.0)
    result = Runner(store, clock=clock, checkpoint_every_items=2, lease_ttl=30).run(JOB, job)
    assert result.run_time == 8.0 and result.items_done == 4
    record = store.get(JOB)
    assert record.owner is None and record.lease_expires == 0.0 and record.run_time == 8.0


# -- bad cursors and failing items --------------------------------------------------------------


class NotJson(Counting):
    """Cursors that are sets: not JSON."""

    def build_enumerator(self, cursor):
        return ((i, {1, i}) for i in range(3))


def test_non_json_cursor_fails_at_the_first_item_naming_the_enumerator():
    store = MemoryStore()
    job = NotJson()
    with pytest.raises(ResumableError) as info:
        Runner(store, clock=VirtualClock()).run(JOB, job)
    message = str(info.value)
    assert "NotJson.build_enumerator" in message and "{0, 1}" in message
    assert "not JSON-serializable" in message and JOB in message
    assert job.seen == [0]
    record = store.get(JOB)
    assert record.status == "failed" and record.cursor is None and record.items_done == 0


class Stuck(Counting):
    """A cursor that stays at 1 for two items."""

    def build_enumerator(self, cursor):
        return iter([(0, 0), (1, 1), (2, 1)])


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: SQLiteStore(":memory:")])
def test_a_cursor_that_does_not_move_forward_names_the_job_and_value(make_store):
    store = make_store()
    with pytest.raises(ResumableError) as info:
        Runner(store, clock=VirtualClock(), checkpoint_every_items=1).run(JOB, Stuck())
    message = str(info.value)
    assert JOB in message and "Stuck.build_enumerator" in message
    assert "cursor 1 after 1" in message
    record = store.get(JOB)
    assert record.status == "failed" and record.cursor == 1 and record.items_done == 2


def test_an_enumerator_yielding_something_else_than_pairs_is_named():
    class Bare(Counting):
        def build_enumerator(self, cursor):
            return iter([1, 2])

    with pytest.raises(ResumableError, match=r"Bare\.build_enumerator.*yielded 1.*pairs"):
        Runner(MemoryStore(), clock=VirtualClock()).run(JOB, Bare())


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: SQLiteStore(":memory:")])
def test_an_item_raising_fails_the_job_at_the_previous_item(make_store):
    store = make_store()
    job = Counting(n=10)
    boom = ZeroDivisionError("item 6 divided by zero")

    def hook(i):
        if i == 6:
            raise boom

    job.hook = hook
    result = Runner(store, clock=VirtualClock(), checkpoint_every_items=4).run(JOB, job)
    assert result.failed and result.error is boom
    assert result.reason == "ZeroDivisionError: item 6 divided by zero"
    assert result.cursor == 5 and result.items == 6 and result.items_done == 6
    record = store.get(JOB)
    assert record.status == "failed" and record.cursor == 5
    assert record.error == "ZeroDivisionError: item 6 divided by zero"
    assert record.owner is None
    job.hook = None
    assert Runner(store, clock=VirtualClock()).run(JOB, job).completed  # a retry resumes
    assert job.seen == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_on_complete_raising_leaves_store_and_result_in_agreement():
    class Grumpy(Counting):
        def on_complete(self):
            raise RuntimeError("mail server down")

    store = MemoryStore()
    result = Runner(store, clock=VirtualClock()).run(JOB, Grumpy(n=3))
    assert result.status == store.get(JOB).status


def test_keyboard_interrupt_in_exactly_once_mode_keeps_its_batch_out():
    store = SQLiteStore(":memory:")
    store.connection.execute("CREATE TABLE effects (n INTEGER)")
    clock = VirtualClock()

    class Inserting(Counting):
        def each_iteration(self, item):
            store.connection.execute("INSERT INTO effects VALUES (?)", (item,))
            if item == 3 and self.hook == "interrupt":
                raise KeyboardInterrupt

    job = Inserting(n=6)
    job.hook = "interrupt"
    with pytest.raises(KeyboardInterrupt):
        Runner(store, clock=clock, exactly_once=True, owner="a").run(JOB, job)
    job.hook = None
    clock.advance(61)
    assert Runner(store, clock=clock, exactly_once=True, owner="b").run(JOB, job).completed
    rows = [n for (n,) in store.connection.execute("SELECT n FROM effects ORDER BY n")]
    assert rows == list(range(6))


# -- the stop signal ------------------------------------------------------------------------------


def test_sigterm_inside_stop_on_signals_stops_at_the_next_item():
    before = signal.getsignal(signal.SIGTERM)
    store = MemoryStore()
    job = Counting(n=10)
    job.hook = lambda i: os.kill(os.getpid(), signal.SIGTERM) if i == 4 else None
    with stop_on_signals(StopSignal()) as stop:
        result = Runner(store, clock=VirtualClock(), stop=stop).run(JOB, job)
        assert stop.requested
    assert result.interrupted and result.reason == "signal SIGTERM"
    assert result.cursor == 4 and job.seen == [0, 1, 2, 3, 4]
    assert store.get(JOB).status == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_requested_before_the_run_interrupts_before_the_first_item():
    stop = StopSignal()
    stop.request("deploy")
    job = Counting(n=5)
    result = Runner(MemoryStore(), clock=VirtualClock(), stop=stop).run(JOB, job)
    assert result.interrupted and result.reason == "deploy" and job.seen == []
    assert result.items == 0 and result.cursor is None


def test_already_completed_job_returns_at_once():
    store, clock = MemoryStore(), VirtualClock()
    Runner(store, clock=clock).run(JOB, Counting(n=3))
    before = store.get(JOB)
    job = Counting(n=3)
    result = Runner(store, clock=clock, owner="other").run(JOB, job)
    assert result.completed and result.reason == "already completed"
    assert result.items == 0 and result.cursor == 2 and result.items_done == 3
    assert job.seen == [] and job.events == []
    after = store.get(JOB)
    assert after.executions == before.executions and after.status == "completed"
    assert after.owner is None


# -- Execution.advance ----------------------------------------------------------------------------


def test_advance_runs_items_until_the_clock_reaches_until():
    store, clock = MemoryStore(), VirtualClock()
    job = Counting(n=10, clock=clock, tick=1.0)
    stop = StopSignal()
    execution = Runner(store, clock=clock, stop=stop, checkpoint_every=100.0).start(JOB, job)
    assert execution.advance(until=3.0) is False
    assert job.seen == [0, 1, 2] and not execution.done
    assert execution.advance(until=3.0) is False  # at least one item per call
    assert job.seen == [0, 1, 2, 3]
    stop.request("deploy")  # arrives between calls: honoured before the next item
    assert execution.advance(until=100.0) is True
    assert job.seen == [0, 1, 2, 3]
    assert execution.result.interrupted and execution.result.cursor == 3


# -- configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"checkpoint_every": None}, "checkpoint_every"),
        ({"checkpoint_every": 0}, "checkpoint_every=0"),
        ({"max_runtime": -1}, "max_runtime=-1"),
        ({"checkpoint_every_items": 0}, "checkpoint_every_items=0"),
        ({"lease_ttl": 0}, "lease_ttl=0"),
        ({"batch": 0, "exactly_once": True}, "batch=0"),
        ({"exactly_once": True}, "MemoryStore"),
    ],
)
def test_bad_runner_settings_are_named(kwargs, word):
    with pytest.raises(ResumableError) as info:
        Runner(MemoryStore(), **kwargs)
    assert word in str(info.value)


class _Chatty(MemoryStore):
    """A store of its own name, for the error message."""


@pytest.mark.parametrize("store", [MemoryStore(), _Chatty()], ids=["MemoryStore", "subclass"])
def test_exactly_once_without_a_transactional_store_is_one_error_naming_the_store(store):
    assert not isinstance(store, TransactionalStore)
    with pytest.raises(ResumableError) as info:
        Runner(store, exactly_once=True)
    message = str(info.value)
    assert type(store).__name__ in message and "TransactionalStore" in message
    assert "exactly_once=True" in message
    assert store.get(JOB) is None  # refused before touching the store


class _Delegating:
    """A transactional store that is not a SQLiteStore: it keeps the protocol by delegation,
    counting the transaction calls the runner makes."""

    def __init__(self) -> None:
        self.inner = SQLiteStore(":memory:")
        self.connection = self.inner.connection
        self.calls: list[str] = []

    def acquire(self, job_id, owner, now, ttl):
        return self.inner.acquire(job_id, owner, now, ttl)

    def checkpoint(self, lease, **progress):
        self.calls.append("checkpoint")
        return self.inner.checkpoint(lease, **progress)

    def get(self, job_id):
        return self.inner.get(job_id)

    def begin(self) -> None:
        self.calls.append("begin")
        self.inner.begin()

    def rollback(self) -> None:
        self.calls.append("rollback")
        self.inner.rollback()


def test_exactly_once_runs_on_any_transactional_store_committing_effects_per_batch():
    store = _Delegating()
    assert isinstance(store, TransactionalStore)
    assert isinstance(SQLiteStore(":memory:"), TransactionalStore)
    store.connection.execute("CREATE TABLE effects (n INTEGER)")

    class Inserting(Counting):
        def each_iteration(self, item):
            store.connection.execute("INSERT INTO effects VALUES (?)", (item,))

    result = Runner(store, clock=VirtualClock(), exactly_once=True, batch=4).run(JOB, Inserting(10))
    assert result.completed and result.items_done == 10
    rows = [n for (n,) in store.connection.execute("SELECT n FROM effects ORDER BY n")]
    assert rows == list(range(10))
    # on_start's checkpoint, then a transaction per batch of 4 (items 0-3, 4-7) and the last
    # batch committed by the completion's checkpoint; nothing rolled back
    assert store.calls == ["checkpoint", "begin", "checkpoint", "begin", "checkpoint", "begin",
                           "checkpoint"]
