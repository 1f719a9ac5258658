"""A state machine over one job's life: workers start or resume it, run some items, are stopped
by a deploy, crash, stall past their lease, and, once replaced, try a late checkpoint.

After every step: the durable cursor never moves back and agrees with the items done; every
item up to it has run; at most one worker holds the live lease; the store's counters are the
ones the model expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import new_postgres_store, new_redis_store
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from deploysim.strategies.resumable import (
    Execution,
    IterationJob,
    JobRecord,
    MemoryStore,
    ResumableError,
    Runner,
    SQLiteStore,
    StaleLeaseError,
    StopSignal,
    VirtualClock,
)
from deploysim.strategies.resumable import enumerators as en

JOB = "job-1"
N = 12  # items in the job
TTL = 10.0  # lease time-to-live; every item takes one virtual second


class Tracked(IterationJob):
    """Numbers 0..N-1, each logged with the worker that ran it and taking one second."""

    def __init__(self, machine: JobMachine, worker: str) -> None:
        self.machine = machine
        self.worker = worker

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return en.int_range(0, N, cursor)

    def each_iteration(self, item: int) -> None:
        self.machine.log.append((self.worker, item))
        self.machine.clock.advance(1.0)


@dataclass
class Worker:
    """A worker process as the model sees it."""

    name: str
    execution: Execution
    stop: StopSignal


class JobMachine(RuleBasedStateMachine):
    """The model: the clock, the store, the live workers and the counts it expects."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.store = self.make_store()
        self.log: list[tuple[str, int]] = []
        self.workers: dict[str, Worker] = {}  # alive (not crashed) and not finished
        self.spawned = 0
        self.acquires = 0  # acquires of a job not yet completed: the store's "executions"
        self.interruptions = 0
        self.completed = False
        self.high_water = -1  # the highest durable cursor seen

    def make_store(self) -> Any:
        """The store under test."""
        return MemoryStore()

    # -- helpers ----------------------------------------------------------------------------------

    def record(self) -> JobRecord | None:
        """The store's record of the job."""
        return self.store.get(JOB)

    def is_stale(self, worker: Worker) -> bool:
        """True when another worker has taken the job's lease since ``worker`` did."""
        record = self.record()
        return record is not None and worker.execution.lease.generation != record.generation

    def holder(self) -> list[str]:
        """The live worker holding the current lease (a list of at most one)."""
        return [n for n, w in self.workers.items() if not self.is_stale(w)]

    def zombies(self) -> list[str]:
        """Live workers whose lease was taken over."""
        return [n for n, w in self.workers.items() if self.is_stale(w)]

    def ended(self, worker: Worker) -> None:
        """Account for a run that has just ended normally."""
        result = worker.execution.result
        del self.workers[worker.name]
        if result.completed:
            event("the job completed")
            self.completed = True
        elif result.interrupted:
            self.interruptions += 1
        else:
            raise AssertionError(f"unexpected end of {worker.name}: {result}")

    def advance(self, worker: Worker, until: float) -> None:
        """Advance a worker: a zombie may meet its fence at a checkpoint, the holder never."""
        stale = self.is_stale(worker)
        before = self.record()
        try:
            done = worker.execution.advance(until)
        except StaleLeaseError:
            assert stale, f"{worker.name} holds the lease but was told it is stale"
            event("a stepping zombie was fenced")
            assert self.record() == before, "a zombie's checkpoint moved the record"
            del self.workers[worker.name]
            return
        if done:
            assert not stale, f"zombie {worker.name} ended its run: {worker.execution.result}"
            self.ended(worker)

    # -- rules ------------------------------------------------------------------------------------

    @initialize()
    def first_worker(self) -> None:
        """The job is enqueued and a worker picks it up."""
        self.start_or_resume()

    @precondition(lambda self: not self.holder())
    @rule()
    def start_or_resume(self) -> None:
        """A new worker process picks the job up (refused while a crashed one's lease lasts)."""
        self.spawned += 1
        name = f"w{self.spawned}"
        stop = StopSignal()
        runner = Runner(self.store, owner=name, clock=self.clock, stop=stop,
                        checkpoint_every=4.0, lease_ttl=TTL)
        before = self.record()
        leased = (before is not None and before.owner is not None
                  and before.lease_expires > self.clock.now())
        try:
            execution = runner.start(JOB, Tracked(self, name))
        except ResumableError as exc:
            assert leased, f"refused a free job: {exc}"
            assert before.owner in str(exc)
            event("a held lease was refused")
            assert self.record() == before
            return
        assert not leased, f"{name} took a lease that {before.owner} still held"
        if before is None or before.status != "completed":
            self.acquires += 1
        if execution.done:
            assert self.completed and execution.result.reason == "already completed"
            return
        self.workers[name] = Worker(name, execution, stop)

    @precondition(lambda self: self.workers)
    @rule(items=st.integers(1, 10), data=st.data())
    def step(self, items: int, data: st.DataObject) -> None:
        """A worker, the lease holder or a zombie, runs some items."""
        worker = self.workers[data.draw(st.sampled_from(sorted(self.workers)))]
        self.advance(worker, self.clock.now() + items)

    @precondition(lambda self: self.holder())
    @rule()
    def interrupt(self) -> None:
        """A deploy: SIGTERM to the lease holder, which stops at the next item boundary."""
        worker = self.workers[self.holder()[0]]
        worker.stop.request("deploy")
        self.advance(worker, float("inf"))
        assert worker.execution.done
        record = self.record()
        if worker.execution.result.interrupted:
            assert record.status == "interrupted" and record.owner is None
            assert record.cursor == worker.execution.cursor  # nothing of the run is lost

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """SIGKILL: the worker vanishes, its lease stays until it expires."""
        name = data.draw(st.sampled_from(sorted(self.workers)))
        before = self.record()
        del self.workers[name]
        assert self.record() == before

    @rule(seconds=st.sampled_from([1.0, TTL / 2, TTL + 1]))
    def stall(self, seconds: float) -> None:
        """Time passes with nobody checkpointing (a GC pause, a hung disk)."""
        self.clock.advance(seconds)

    @precondition(lambda self: self.holder())
    @rule()
    def take_over(self) -> None:
        """The lease holder stalls past its lease and a new worker takes the job over."""
        self.clock.advance(TTL + 1)
        self.start_or_resume()

    @precondition(lambda self: self.zombies())
    @rule(data=st.data())
    def zombie_checkpoint(self, data: st.DataObject) -> None:
        """A replaced worker wakes up and tries to checkpoint: it must be fenced off."""
        name = data.draw(st.sampled_from(self.zombies()))
        worker = self.workers.pop(name)
        before = self.record()
        worker.stop.request("deploy")
        with pytest.raises(StaleLeaseError):
            worker.execution.advance()
        event("a zombie's late checkpoint was fenced")
        assert self.record() == before

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def durable_cursor_is_monotone_and_agrees_with_items_done(self) -> None:
        record = self.record()
        if record is None:
            return
        cursor = -1 if record.cursor is None else record.cursor
        assert cursor >= self.high_water, f"durable cursor went back to {cursor}"
        self.high_water = cursor
        assert record.items_done == cursor + 1

    @invariant()
    def every_item_up_to_the_durable_cursor_has_run(self) -> None:
        ran = {item for _, item in self.log}
        assert set(range(self.high_water + 1)) <= ran
        if self.completed:
            assert ran == set(range(N))

    @invariant()
    def at_most_one_live_lease(self) -> None:
        holders = self.holder()
        assert len(holders) <= 1, f"two workers hold the current lease: {holders}"
        record = self.record()
        if record is not None and record.owner is not None:
            assert record.lease_expires > 0 and record.status != "completed"

    @invariant()
    def store_counters_match_the_model(self) -> None:
        record = self.record()
        if record is None:
            assert self.acquires == 0
            return
        assert record.executions == self.acquires
        assert record.interruptions == self.interruptions
        assert (record.status == "completed") == self.completed


class SQLiteJobMachine(JobMachine):
    """The same machine over the durable store."""

    def make_store(self) -> Any:
        """The store under test."""
        return SQLiteStore(":memory:")


class RedisJobMachine(JobMachine):
    """The same machine over Redis (a real server; each run of the machine, keys of its own)."""

    url = ""  # set by the module's fixture below

    def make_store(self) -> Any:
        """The store under test."""
        return new_redis_store(self.url)


class PostgresJobMachine(JobMachine):
    """The same machine over PostgreSQL (a real server; each run of the machine, a table of
    its own)."""

    url = ""  # set by the module's fixture below

    def make_store(self) -> Any:
        """The store under test."""
        return new_postgres_store(self.url, shared=True)


@pytest.fixture(autouse=True, scope="module")
def _servers_for_the_machines(redis_url, postgres_url):
    RedisJobMachine.url, PostgresJobMachine.url = redis_url, postgres_url
    yield
    RedisJobMachine.url = PostgresJobMachine.url = ""


TestJobMachineMemory = JobMachine.TestCase
TestJobMachineMemory.settings = settings(max_examples=100, stateful_step_count=30,
                                         deadline=None)
TestJobMachineSQLite = SQLiteJobMachine.TestCase
TestJobMachineSQLite.settings = settings(max_examples=50, stateful_step_count=30,
                                         deadline=None)
TestJobMachineRedis = RedisJobMachine.TestCase
TestJobMachineRedis.settings = settings(max_examples=50, stateful_step_count=30,
                                        deadline=None)
TestJobMachinePostgres = PostgresJobMachine.TestCase
TestJobMachinePostgres.settings = settings(max_examples=50, stateful_step_count=30,
                                           deadline=None)
