"""The simulated fleet: a queue, workers, deploys, crashes, and what each strategy does to the
job in a worker's hands when SIGTERM and SIGKILL come.

Workers are simpy processes. A deploy sends SIGTERM to each worker (in rolling batches when the
scenario says so), then SIGKILL to those still running after the platform's grace; a crash is a
SIGKILL at a random time. A replacement process comes up ``restart_delay`` after a worker exits.

Jobs of the opaque strategies (Sidekiq, Resque, Celery, split) cost one timeout event per
attempt. Resumable jobs run in the real engine (``strategies.resumable.Runner``) under a virtual
clock per worker: the runner processes items synchronously while the clock is before the
simulator's next scheduled event (``env.peek()``), in chunks of items that end exactly where a
checkpoint or a possible signal is due, so a job of ten million items costs the events that
change its fate, not ten million events (docs/architecture.md, principles 1 and 6).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from deploysim.strategies.base import Fail, Lose, Outcome, Recover, Requeue, Strategy
from deploysim.strategies.resumable import (
    IterationJob,
    MemoryStore,
    Runner,
    StopSignal,
    VirtualClock,
)
from deploysim.strategies.resumable_model import Resumable

from .ledger import Ledger

TERM = "SIGTERM"
KILL = "SIGKILL"
INF = math.inf


class _Hang(BaseException):
    """Raised out of a hung item: it never returns; only SIGKILL ends it. A BaseException, so
    the engine does not record it as the job's failure."""


@dataclass(slots=True, eq=False)
class Unit:
    """What the queue holds: a whole job, or one sub-job of a split job."""

    job: int
    first: int  # index of the unit's first item within the job
    items: int
    item_time: float
    hangs: bool
    done: int = 0  # items of this unit ever completed (for duplicate counting)
    ticket: int = 0  # bumped when a delayed re-queue is cancelled or taken over

    @property
    def length(self) -> float:
        """Seconds of work in the unit."""
        return self.items * self.item_time

    @property
    def key(self) -> str:
        """The unit's job id in the checkpoint store."""
        return f"{self.job}:{self.first}"


@dataclass(slots=True, eq=False)
class Worker:
    """One worker slot; each restart is a new process life in the same slot."""

    slot: int
    clock: VirtualClock
    proc: Any = None
    state: str = "down"  # down | idle | busy
    mode: str = ""  # opaque | engine, while busy
    life: int = 0
    terminating: bool = False
    stop: StopSignal = field(default_factory=StopSignal)
    exited: Any = None  # simpy event triggered when the current life ends
    wait: Any = None  # the idle wait event
    unit: Unit | None = None
    reclaimed: deque[Unit] = field(default_factory=deque)  # its own orphans, run first
    signals: list[float] = field(default_factory=list)  # its crash and restart times, sorted
    kill_at: float = math.inf  # when the SIGKILL after a SIGTERM is due
    runner: Runner | None = None  # the resumable engine's runner of this life


@dataclass(slots=True)
class DeployRecord:
    """One deploy: when it began, when its last worker exited, how many were SIGKILLed."""

    start: float
    end: float = math.nan
    hard_kills: int = 0


class FleetSim:
    """One run of one strategy over one scenario replication.

    ``arrivals`` (sorted times) and ``jobs`` (lengths, items, hang flags) are drawn by the caller
    from the scenario's seed, so every strategy meets the same jobs, deploys and crashes.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        workers: int,
        restart_delay: float,
        grace: float,
        horizon: float,
        arrivals: np.ndarray,
        lengths: np.ndarray,
        items: np.ndarray,
        hangs: np.ndarray,
        deploys: np.ndarray,
        batch_size: int | None = None,
        restarts: list[np.ndarray] | None = None,
        crashes: list[np.ndarray] | None = None,
    ) -> None:
        self.env = simpy.Environment()
        self.strategy = strategy
        self.horizon = float(horizon)
        self.grace = float(grace)
        self.restart_delay = float(restart_delay)
        self.batch_size = batch_size
        self.ledger = Ledger(arrivals, lengths, items)
        self._arrivals = arrivals
        self._items = items
        self._hangs = hangs
        self._lengths = lengths
        self.queue: deque[Unit] = deque()
        self.idle: deque[Worker] = deque()
        self.delayed: dict[int, Unit] = {}  # id(unit) -> unit waiting to be re-queued
        self.orphans: dict[int, list[Unit]] = {}  # resumable: worker slot -> units it held
        self.recoverable: list[tuple[float, Unit]] = []  # super_fetch orphans
        self._last_recovery_check = -INF
        self.deploy_records: list[DeployRecord] = []
        self._deploy_generation = 0
        self._deploy_times = sorted(float(t) for t in deploys if t < horizon)
        self._engine = isinstance(strategy, Resumable)
        self._term_wait = strategy.term_wait
        self._on_timeout = strategy.on_timeout
        self._on_kill = strategy.on_kill
        self._run_limit = strategy.run_limit
        self._chunk = strategy.chunk
        self.workers = [Worker(i, VirtualClock()) for i in range(workers)]
        if self._engine:
            assert isinstance(strategy, Resumable)
            self.store = SimStore(
                strategy.checkpoint_cost, {f"w{w.slot}": w.clock for w in self.workers}
            )
        env = self.env
        for w in self.workers:
            w.proc = env.process(self._worker(w))
        env.process(self._arrive())
        for t in deploys:
            if t < horizon:
                env.process(self._deploy(float(t)))
        for w, times in zip(self.workers, restarts or [], strict=False):
            for t in times:
                if t < horizon:
                    env.process(self._restart(w, float(t)))
                    w.signals.append(float(t))
        for w, times in zip(self.workers, crashes or [], strict=False):
            for t in times:
                if t < horizon:
                    env.process(self._crash(w, float(t)))
                    w.signals.append(float(t))
        for w in self.workers:
            w.signals.sort()

    def run(self) -> Ledger:
        """Run to the horizon and return the ledger, with what was pending then. The engine's
        per-job INFO lines are held back meanwhile (tens of thousands of simulated jobs); its
        DEBUG lines still come when asked for."""
        engine_log = logging.getLogger("deploysim.strategies.resumable")
        level = engine_log.level
        if not engine_log.isEnabledFor(logging.DEBUG):
            engine_log.setLevel(logging.WARNING)
        try:
            self.env.run(until=self.horizon)
        finally:
            engine_log.setLevel(level)
        self.events = scheduled_events(self.env)
        self.ledger.close(
            self.horizon, self._pending_units(), self.deploy_records, self._retained()
        )
        return self.ledger

    # -- arrivals and the queue ---------------------------------------------------------------

    def _arrive(self):  # type: ignore[no-untyped-def]
        env = self.env
        chunk = self._chunk
        items, hangs, lengths = self._items, self._hangs, self._lengths
        enqueue = self._enqueue
        record = self.ledger.enqueued
        for j, t in enumerate(self._arrivals.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            record(j, env.now)
            n = int(items[j])
            item_time = float(lengths[j]) / n
            hang = bool(hangs[j])
            if chunk is None or n <= chunk:
                enqueue(Unit(j, 0, n, item_time, hang), "back")
            else:
                units = range(0, n, chunk)
                self.ledger.units[j] = len(units)
                # a hung split job hangs in one of its sub-jobs: the last
                for first in units:
                    last = first + chunk >= n
                    enqueue(Unit(j, first, min(chunk, n - first), item_time, hang and last), "back")

    def _enqueue(self, unit: Unit, end: str) -> None:
        if self.idle:
            w = self.idle.popleft()
            w.wait.succeed(unit)
        elif end == "front":
            self.queue.appendleft(unit)
        else:
            self.queue.append(unit)

    def _enqueue_later(self, unit: Unit, delay: float, end: str) -> None:
        """Put ``unit`` back after ``delay``; until then it is pending in ``delayed`` (from this
        very moment, so that a worker starting up at once can take it back)."""
        self.delayed[id(unit)] = unit
        self.env.process(self._wait_then_enqueue(unit, unit.ticket, delay, end))

    def _wait_then_enqueue(self, unit: Unit, ticket: int, delay: float, end: str):  # type: ignore[no-untyped-def]
        yield self.env.timeout(delay)
        if unit.ticket == ticket and self.delayed.pop(id(unit), None) is not None:
            self._enqueue(unit, end)

    # -- workers ------------------------------------------------------------------------------

    def _worker(self, w: Worker):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            w.life += 1
            w.state = "idle"
            w.terminating = False
            w.kill_at = INF
            w.stop = StopSignal()
            w.exited = env.event()
            self._start_up(w)
            yield from self._work(w)
            w.state = "down"
            w.unit = None
            w.exited.succeed(env.now)
            if self.restart_delay > 0:
                yield env.timeout(self.restart_delay)

    def _start_up(self, w: Worker) -> None:
        """What a new process does first: take back the resumable jobs whose lease it still
        holds, and run Sidekiq Pro's orphan check (at most once per ``check_every``)."""
        for unit in self.orphans.pop(w.slot, ()):
            if self.delayed.pop(id(unit), None) is not None:
                unit.ticket += 1  # cancels the re-queue at lease expiry
                w.reclaimed.append(unit)
        recover = self._on_kill
        now = self.env.now
        if isinstance(recover, Recover) and now - self._last_recovery_check >= recover.check_every:
            self._last_recovery_check = now
            keep = []
            for since, unit in self.recoverable:
                if since + recover.heartbeat_ttl <= now:
                    self._enqueue(unit, "back")
                else:
                    keep.append((since, unit))
            self.recoverable = keep

    def _work(self, w: Worker):  # type: ignore[no-untyped-def]
        env = self.env
        while not w.terminating:
            if w.reclaimed:
                unit = w.reclaimed.popleft()
            elif self.queue:
                unit = self.queue.popleft()
            else:
                w.wait = env.event()
                self.idle.append(w)
                try:
                    unit = yield w.wait
                except simpy.Interrupt:
                    if w.wait.triggered:  # handed a unit in the same instant: give it back
                        self.queue.appendleft(w.wait.value)
                    else:
                        self.idle.remove(w)
                    return
            w.unit = unit
            w.state = "busy"
            if self._engine:
                killed = yield from self._run_engine(w, unit)
            else:
                killed = yield from self._run_opaque(w, unit)
            w.unit = None
            w.state = "idle"
            if killed:
                return

    def _settle(self, unit: Unit, outcome: Outcome, now: float) -> None:
        """Carry out a strategy's decision about a unit that did not complete."""
        ledger = self.ledger
        if isinstance(outcome, Requeue):
            if outcome.delay > 0:
                self._enqueue_later(unit, outcome.delay, outcome.end)
            else:
                self._enqueue(unit, outcome.end)
        elif isinstance(outcome, Recover):
            self.recoverable.append((now, unit))
        elif isinstance(outcome, Fail):
            ledger.failed(unit.job, now)
        elif isinstance(outcome, Lose):
            ledger.lost(unit.job, now)

    def _run_opaque(self, w: Worker, unit: Unit):  # type: ignore[no-untyped-def]
        """One attempt of a job that restarts from scratch. Returns True if SIGKILLed."""
        env = self.env
        start = env.now
        w.mode = "opaque"
        finish = INF if unit.hangs else start + unit.length
        limit = start + self._run_limit
        cutoff = INF
        self.ledger.started(unit, start)
        outcome: Outcome | None = None
        killed = False
        while True:
            end = min(finish, limit, cutoff)
            try:
                if end == INF:
                    yield env.event()  # a hung job: only a signal ends the wait
                else:
                    yield env.timeout(end - env.now)
            except simpy.Interrupt as signal:
                if signal.cause == KILL:
                    outcome, killed = self._on_kill, True
                    break
                if cutoff == INF:
                    cutoff = env.now + self._term_wait
                continue
            if end == finish:
                break
            if end == limit:
                outcome = Fail("time limit")
                break
            outcome = self._on_timeout
            break
        now = env.now
        elapsed = now - start
        self.ledger.attempt(unit, elapsed, elapsed if unit.hangs else 0.0)
        if outcome is None or not unit.item_time:  # done: every item ran, whatever the ulps
            ran = unit.items
        else:
            ran = min(unit.items, int(elapsed / unit.item_time + 1e-9))
        self.ledger.items_run(unit, ran)
        if outcome is None:
            self.ledger.unit_done(unit, now)
        else:
            self._settle(unit, outcome, now)
        return killed

    def _run_engine(self, w: Worker, unit: Unit):  # type: ignore[no-untyped-def]
        """One run of a resumable job in the real engine under ``w.clock``."""
        env = self.env
        strategy = self.strategy
        assert isinstance(strategy, Resumable)
        w.mode = "engine"
        clock = w.clock = self.store.clocks[f"w{w.slot}"] = VirtualClock(env.now)
        start = env.now
        self.ledger.started(unit, start)
        job = _SimJob(self, unit, clock)
        runner = Runner(
            self.store,
            owner=f"w{w.slot}",
            clock=clock,
            stop=w.stop,
            checkpoint_every=strategy.checkpoint_every,
            max_runtime=strategy.max_runtime,
            lease_ttl=strategy.lease_ttl,
        )
        try:
            execution = runner.start(unit.key, job)
            job.execution = execution
            while True:
                job.until = self._quiet_until(w)
                try:
                    done = execution.advance(job.until)
                except _Hang:
                    job.hung_since = clock.now()
                    yield env.timeout(clock.now() - env.now)
                    yield env.event()  # never triggers: only SIGKILL gets the worker back
                ahead = clock.now() - env.now
                if ahead > 0:
                    yield env.timeout(ahead)
                if done:
                    break
        except simpy.Interrupt as signal:
            # SIGTERM only sets the stop flag of a resumable worker: this is a SIGKILL
            assert signal.cause == KILL, signal.cause
            now = env.now
            job.crash(now)
            self.ledger.attempt(unit, now - start, max(0.0, now - job.hung_since))
            record = self.store.crash(unit.key, now)
            lease_free = record.lease_expires if record is not None else now
            # any worker may take the job once its lease has expired; its own worker, coming
            # back first with the same name, takes it back at once
            self._enqueue_later(unit, max(0.0, lease_free - now) + 1e-9, "back")
            if now + self.restart_delay < lease_free:
                self.orphans.setdefault(w.slot, []).append(unit)
            return True
        now = env.now
        self.ledger.attempt(unit, now - start, 0.0)
        result = execution.result
        assert result is not None
        if result.completed:
            self.ledger.unit_done(unit, now)
        elif result.interrupted:
            self._settle(unit, Requeue(result.retry_after or 0.0, strategy.requeue, False), now)
        else:  # a failure recorded by the engine
            self._settle(unit, Fail(result.reason), now)
        return False

    def _quiet_until(self, w: Worker) -> float:
        """The earliest time a signal could reach ``w``: nothing the engine does before then can
        be observed, so the runner may process items synchronously up to it."""
        now = self.env.now
        if (self.batch_size or INF) < len(self.workers):  # a later batch's SIGTERM time is unknown
            return self.env.peek()
        times = self._deploy_times
        i = bisect.bisect_left(times, now)
        t = times[i] if i < len(times) else INF
        own = w.signals
        i = bisect.bisect_left(own, now)
        if i < len(own) and own[i] < t:
            t = own[i]
        return min(t, w.kill_at)

    # -- signals ------------------------------------------------------------------------------

    def _term(self, w: Worker) -> Any:
        """SIGTERM to the worker's process; returns the event of its exit."""
        if w.state == "down":
            return None
        exited = w.exited
        if not w.terminating:
            w.terminating = True
            w.stop.request(TERM)
            if w.state == "idle" or w.mode == "opaque":
                w.proc.interrupt(TERM)
        return exited

    def _kill(self, w: Worker) -> bool:
        """SIGKILL to the worker's process; True if it was running."""
        if w.state == "down":
            return False
        w.terminating = True
        w.proc.interrupt(KILL)
        return True

    def _grace_then_kill(self, w: Worker, life: int, record: DeployRecord | None):  # type: ignore[no-untyped-def]
        w.kill_at = min(w.kill_at, self.env.now + self.grace)
        yield self.env.timeout(self.grace)
        if w.life == life and not w.exited.triggered and self._kill(w):
            self.ledger.hard_kills += 1
            if record is not None:
                record.hard_kills += 1

    def _stop_worker(self, w: Worker, record: DeployRecord | None) -> Any:
        exited = self._term(w)
        if exited is not None and not exited.triggered:
            self.env.process(self._grace_then_kill(w, w.life, record))
        return exited

    def _deploy(self, at: float):  # type: ignore[no-untyped-def]
        env = self.env
        yield env.timeout(at - env.now)
        self._deploy_generation += 1
        generation = self._deploy_generation
        record = DeployRecord(env.now)
        self.deploy_records.append(record)
        size = self.batch_size or len(self.workers)
        for b in range(0, len(self.workers), size):
            if generation != self._deploy_generation:
                break  # a newer deploy took over the rollout
            events = [
                e
                for w in self.workers[b : b + size]
                if (e := self._stop_worker(w, record)) is not None and not e.triggered
            ]
            if events:
                yield env.all_of(events)
        record.end = env.now

    def _restart(self, w: Worker, at: float):  # type: ignore[no-untyped-def]
        yield self.env.timeout(at - self.env.now)
        self._stop_worker(w, None)

    def _crash(self, w: Worker, at: float):  # type: ignore[no-untyped-def]
        yield self.env.timeout(at - self.env.now)
        if self._kill(w):
            self.ledger.crashes += 1

    # -- the horizon --------------------------------------------------------------------------

    def _pending_units(self) -> list[Unit]:
        units = list(self.queue)
        units += [w.unit for w in self.workers if w.unit is not None]
        units += [u for w in self.workers for u in w.reclaimed]
        units += list(self.delayed.values())
        units += [u for _, u in self.recoverable]
        return units

    def _retained(self) -> dict[int, float]:
        """Seconds of durable progress of unfinished resumable jobs, by job."""
        if not self._engine:
            return {}
        out: dict[int, float] = {}
        for unit in self._pending_units():
            record = self.store.get(unit.key)
            if record is not None and record.cursor is not None:
                # the runner counts chunks as its items: the cursor says how far the job got
                done = int(record.cursor) + 1
                out[unit.job] = out.get(unit.job, 0.0) + done * unit.item_time
        return out


def scheduled_events(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far (simpy numbers them as it schedules)."""
    return int(next(env._eid))  # the counter's next value; reading it costs one number


class SimStore(MemoryStore):
    """The engine's MemoryStore with the latency of a real one: a checkpoint takes ``cost``
    seconds of its worker's clock and is durable only at its end. ``crash(job, at)`` drops the
    last write if it was not yet durable at time ``at``."""

    def __init__(self, cost: float, clocks: dict[str, VirtualClock]) -> None:
        super().__init__()
        self.cost = float(cost)
        self.clocks = clocks
        self._pending: dict[str, tuple[float, Any]] = {}
        if not self.cost:  # durable at once: the runner writes only before the next signal
            self.checkpoint = super().checkpoint  # type: ignore[method-assign]

    def checkpoint(self, lease, **kwargs):  # type: ignore[no-untyped-def,override]
        """Write after ``cost`` seconds of the writer's clock."""
        clock = self.clocks[lease.owner]
        clock.advance(self.cost)
        row = self._jobs.get(lease.job_id)
        previous = None if row is None else list(row)
        kwargs["now"] = clock.now()
        lease = super().checkpoint(lease, **kwargs)
        self._pending[lease.job_id] = (kwargs["now"], previous)
        return lease

    def crash(self, job_id: str, at: float) -> Any:
        """The process writing ``job_id`` died at ``at``: undo a write not yet durable then."""
        committed, previous = self._pending.pop(job_id, (-INF, None))
        if committed > at and previous is not None:
            self._jobs[job_id] = previous
        return self.get(job_id)


class _SimJob(IterationJob):
    """A job of ``unit.items`` items of ``unit.item_time`` seconds each, as the engine sees it.
    Items come in chunks that end at the first item boundary at or after the next moment
    anything could change (the simulator's next event, a due checkpoint, the run-time limit)."""

    def __init__(self, sim: FleetSim, unit: Unit, clock: VirtualClock) -> None:
        self.sim = sim
        self.unit = unit
        self.clock = clock
        self.execution: Any = None
        self.until = INF
        self.hung_since = INF
        # a hung job hangs on an item at a fixed point of its work: half way
        self.hang_at = unit.items // 2 if unit.hangs else -1
        self._chunk: tuple[float, int, int, int] | None = None

    def build_enumerator(self, cursor: Any) -> Any:
        return self._chunks(0 if cursor is None else int(cursor) + 1)

    def _chunks(self, i: int):  # type: ignore[no-untyped-def]
        n = self.unit.items
        d = self.unit.item_time
        now = self.clock.now
        hang_at = self.hang_at
        execution = self.execution
        write = self.sim.store.cost
        while i < n:
            t = now()
            limit = self.until
            due = execution.next_checkpoint_at
            if due <= t:  # a write is due before this chunk runs; the chunk starts after it
                t += write
                due = t + execution.checkpoint_interval
            if due < limit:
                limit = due
            if execution.deadline < limit:
                limit = execution.deadline
            k = math.ceil((limit - t) / d - 1e-9) if d else n - i  # no time: all at once
            if k < 1:
                k = 1
            if k > n - i:
                k = n - i
            if i <= hang_at < i + k:
                k = max(1, hang_at - i)
            yield (i, k), i + k - 1
            i += k

    def each_iteration(self, item: tuple[int, int]) -> None:
        i, k = item
        if i == self.hang_at:
            raise _Hang
        unit = self.unit
        clock = self.clock
        self._chunk = (clock.now(), i, k, unit.done)
        clock.advance(k * unit.item_time)
        self.sim.ledger.items_run(unit, k, i + k)

    def crash(self, at: float) -> None:
        """Undo the item executions that had not finished by ``at``."""
        if self._chunk is None:
            return
        t0, i, k, done_before = self._chunk
        d = self.unit.item_time
        finished = min(k, max(0, int((at - t0) / d + 1e-9))) if d else k
        if finished < k:
            self.sim.ledger.items_undo(self.unit, k - finished, max(done_before, i + finished))
