"""The simulated fleet: a queue, workers, deploys, crashes, and what each strategy does to the
job in a worker's hands when SIGTERM and SIGKILL come.

Workers are simpy processes. A deploy sends SIGTERM to each worker (in rolling batches when the
scenario says so), then SIGKILL to those still running after the platform's grace; a crash is a
SIGKILL at a random time. A replacement process comes up ``restart_delay`` after a worker exits
(or, replaying a real run, when the real one was ready: ``Draws.ready``).
A process may hold reserved (prefetched) units beyond the one in hand, and may take
``exit_time`` to exit after SIGTERM once its hands are empty, still killable meanwhile; what
becomes of the reserved units on a clean exit or a kill is the strategy's decision.

Jobs of the opaque strategies (Sidekiq, Resque, Celery, split) cost one timeout event per
attempt. Resumable jobs run in the real engine (``strategies.resumable.Runner``, set up by
``adapter``) under a virtual clock per worker: the runner processes items synchronously while
the clock is before the next moment a signal could reach that worker, in chunks of items that
end exactly where a checkpoint or a possible signal is due, so a job of ten million items costs
the events that change its fate, not ten million events (docs/architecture.md, principles 1
and 6). What happened is counted in the ``Ledger``; the values the fleet holds (units, workers,
deploy records, a replication's draws) are in ``work``.
"""

from __future__ import annotations

import bisect
import gc
import logging
import math
from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from simpy.core import NORMAL
from simpy.events import EventPriority, ProcessGenerator

from deploysim.strategies.base import Fail, Lose, Outcome, Recover, Redeliver, Requeue, Strategy
from deploysim.strategies.resumable import StopSignal, VirtualClock
from deploysim.strategies.resumable_model import Resumable

from .adapter import ITEM_SLACK, Hang, SimJob, SimStore, engine_runner
from .ledger import Ledger
from .work import DeployRecord, Draws, Unit, Worker

__all__ = ["CountingEnvironment", "FleetSim", "scheduled_events"]

TERM = "SIGTERM"
KILL = "SIGKILL"
INF = math.inf

LEASE_MARGIN = 1e-9
"""Seconds past a killed resumable job's lease expiry at which it goes back to the queue. The
delay is ``expires - now``, and ``now + (expires - now)`` may round to just below ``expires``,
when the store still holds the lease and a new worker could not take the job."""

Attempt = Generator[simpy.Event, Any, bool]
"""A worker's attempt at a unit (or its whole round of work, or its exit), run with
``yield from``: True if the worker was SIGKILLed."""


class CountingEnvironment(simpy.Environment):
    """A simpy environment that counts the events it schedules (``scheduled``), for
    ``scheduled_events``."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.scheduled = 0

    def schedule(
        self, event: simpy.Event, priority: EventPriority = NORMAL, delay: float = 0
    ) -> None:
        self.scheduled += 1
        _schedule(self, event, priority, delay)


_schedule = simpy.Environment.schedule


def scheduled_events(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far; ``env`` must be a ``CountingEnvironment``
    (counting costs a call per event, so only the benchmark counts)."""
    if not isinstance(env, CountingEnvironment):
        raise TypeError(f"scheduled_events: {type(env).__name__} does not count its events; "
                        "build the fleet with counting=True")
    return env.scheduled


class FleetSim:
    """One run of one strategy over one scenario replication.

    ``draws`` (the jobs, deploys, restarts and crashes) come from the caller, drawn from the
    scenario's seed, so every strategy meets the same jobs, deploys and crashes. The fleet is
    ``workers`` worker slots, each replaced ``restart_delay`` seconds after its process exits;
    ``grace`` is the platform's wait between SIGTERM and SIGKILL; a deploy stops ``batch_size``
    workers at a time (None: all at once); nothing happens after ``horizon``. With
    ``counting``, ``events`` holds the number of events the run scheduled (for the benchmark).
    ``coalesce`` (on by default) lets a resumable job's chunk run through the checkpoints that
    nothing can observe (``adapter.SimJob``); off, every checkpoint is a call into the runner:
    the results are the same.
    """

    def __init__(
        self,
        strategy: Strategy,
        draws: Draws,
        *,
        workers: int,
        restart_delay: float,
        grace: float,
        horizon: float,
        batch_size: int | None = None,
        counting: bool = False,
        coalesce: bool = True,
    ) -> None:
        self.env = CountingEnvironment() if counting else simpy.Environment()
        self.events = 0  # events scheduled, once run (with counting)
        self.strategy = strategy
        self.horizon = float(horizon)
        self.grace = float(grace)
        self.restart_delay = float(restart_delay)
        self.batch_size = batch_size
        self.coalesce = coalesce
        self.ledger = Ledger(draws.arrivals, draws.lengths, draws.items)
        self._arrivals = draws.arrivals
        self._items = draws.items
        self._hangs = draws.hangs
        self._ready = [np.asarray(t, dtype=float) for t in draws.ready]
        self._first_fetch = float(draws.first_fetch)
        self._lengths = draws.lengths
        self.queue: deque[Unit] = deque()
        self.idle: deque[Worker] = deque()
        self.delayed: dict[int, Unit] = {}  # id(unit) -> unit waiting to be re-queued
        self.orphans: dict[int, list[Unit]] = {}  # resumable: worker slot -> units it held
        self.recoverable: list[tuple[float, Unit]] = []  # super_fetch orphans
        self.unacked: list[tuple[float, Unit]] = []  # Redeliver: (due, unit), for a maintenance
        self._maintainer: simpy.Process | None = None
        self._redeliver: Redeliver | None = None  # the strategy's, once a unit waits for one
        self._rng = np.random.default_rng(draws.seed)
        self._last_recovery_check = -INF
        self.deploy_records: list[DeployRecord] = []
        self._deploy_generation = 0
        deploys = draws.deploys
        self._deploy_times = sorted(float(t) for t in deploys if t < horizon)
        self._policy = strategy if isinstance(strategy, Resumable) else None
        self._engine = self._policy is not None
        self._term_wait = strategy.term_wait
        self._on_timeout = strategy.on_timeout
        self._on_kill = strategy.on_kill
        self._run_limit = strategy.run_limit
        self._chunk = strategy.chunk
        self._prefetch = strategy.prefetch
        self._exit_time = strategy.exit_time
        self._notice_every = strategy.notice_every
        self._fetch_batch = strategy.fetch_batch and strategy.prefetch > 0
        self._ack_delay = strategy.ack_delay
        self._filling: tuple[Worker, int, float] | None = None  # see _fill
        self._on_exit_reserved = strategy.on_exit_reserved
        self._on_kill_reserved = strategy.on_kill_reserved
        if self._prefetch < 0 or not self._exit_time >= 0:
            raise ValueError(
                f"{type(strategy).__name__}: prefetch {self._prefetch!r} and "
                f"exit_time {self._exit_time!r} must be >= 0"
            )
        self.failing: dict[int, Unit] = {}  # id(unit) -> unit waiting for its delayed failure
        self.workers = [Worker(i, VirtualClock()) for i in range(workers)]
        self.store: SimStore | None = None
        if self._policy is not None:
            self.store = SimStore(
                self._policy.checkpoint_cost, {w.name: w.clock for w in self.workers}
            )
        env = self.env
        for w in self.workers:
            w.proc = env.process(self._worker(w))
        env.process(self._arrive())
        for t in deploys:
            if t < horizon:
                env.process(self._deploy(float(t)))
        for w, times in zip(self.workers, draws.restarts, strict=False):
            for t in times:
                if t < horizon:
                    env.process(self._restart(w, float(t)))
                    w.signals.append(float(t))
        for w, times in zip(self.workers, draws.crashes, strict=False):
            for t in times:
                if t < horizon:
                    env.process(self._crash(w, float(t)))
                    w.signals.append(float(t))
        for w in self.workers:
            w.signals.sort()

    def run(self) -> Ledger:
        """Run to the horizon and return the ledger, with what was pending then. The engine's
        per-job INFO lines are held back meanwhile (tens of thousands of simulated jobs); its
        DEBUG lines still come when asked for. What exists before the run is kept out of Python's
        cyclic garbage collector's sight while it goes on (``gc.freeze``)."""
        engine_log = logging.getLogger("deploysim.strategies.resumable")
        level = engine_log.level
        if not engine_log.isEnabledFor(logging.DEBUG):
            engine_log.setLevel(logging.WARNING)
        # what exists now (the ledger's million-entry lists, the draws) is set aside from the
        # collector: a full collection would walk it all, a tenth of a long run's time
        gc.freeze()
        try:
            self.env.run(until=self.horizon)
        finally:
            engine_log.setLevel(level)
            gc.unfreeze()
        if isinstance(self.env, CountingEnvironment):
            self.events = self.env.scheduled
        pending = [u.job for u in self._pending_units()]
        self.ledger.close(self.horizon, pending, self.deploy_records, self._retained())
        return self.ledger

    # -- arrivals and the queue ---------------------------------------------------------------

    def _arrive(self) -> ProcessGenerator:
        env = self.env
        chunk = self._chunk
        enqueue = self._enqueue
        record = self.ledger.enqueued
        # as Python numbers: reading numpy scalars one at a time costs more than the rest
        jobs = zip(self._arrivals.tolist(), self._items.tolist(), self._lengths.tolist(),
                   self._hangs.tolist(), strict=True)
        for j, (t, count, length, hangs) in enumerate(jobs):
            now = env.now
            if t > now:
                yield env.timeout(t - now)
                now = env.now
            record(j, now)
            n = int(count)
            item_time = float(length) / n
            hang = bool(hangs)
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
        if self._filling is not None and self._fill(unit):
            return
        if self.idle:
            w = self.idle.popleft()
            wait = w.wait
            assert wait is not None  # set before a worker goes idle
            wait.succeed(unit)
            if self._fetch_batch:
                self._filling = (w, w.life, self.env.now)
        elif end == "front":
            self.queue.appendleft(unit)
        else:
            self.queue.append(unit)

    def _fill(self, unit: Unit) -> bool:
        """With ``fetch_batch``: put ``unit`` in the reservation of the idle worker handed a unit
        in this same instant, as its fetch takes what is queued up to its prefetch; False when
        there is no such worker or its reservation is full."""
        assert self._filling is not None
        w, life, at = self._filling
        if (at == self.env.now and w.life == life and w.state == "idle"
                and len(w.reserved) < self._prefetch):
            w.reserved.append(unit)
            return True
        self._filling = None
        return False

    def _enqueue_later(self, unit: Unit, delay: float, end: str) -> None:
        """Put ``unit`` back after ``delay``; until then it is pending in ``delayed`` (from this
        very moment, so that a worker starting up at once can take it back)."""
        self._give_back_later([unit], delay, end)

    def _give_back(self, units: list[Unit], end: str) -> None:
        """Put ``units`` back at ``end`` in their order, as though they had never left the queue:
        at the front they go ahead of what is queued, the first of them first (to idle workers
        while any wait); at the back, one after another."""
        if end != "front":
            for unit in units:
                self._enqueue(unit, end)
            return
        i = 0
        while i < len(units) and self.idle:
            self._enqueue(units[i], end)
            i += 1
        self.queue.extendleft(reversed(units[i:]))

    def _give_back_later(self, units: list[Unit], delay: float, end: str) -> None:
        """``_give_back`` after ``delay``; until then the units are pending in ``delayed``."""
        for unit in units:
            self.delayed[id(unit)] = unit
        tickets = [unit.ticket for unit in units]
        self.env.process(self._wait_then_give_back(units, tickets, delay, end))

    def _wait_then_give_back(
        self, units: list[Unit], tickets: list[int], delay: float, end: str
    ) -> ProcessGenerator:
        yield self.env.timeout(delay)
        delayed = self.delayed
        back = [
            unit
            for unit, ticket in zip(units, tickets, strict=True)
            if unit.ticket == ticket and delayed.pop(id(unit), None) is not None
        ]
        if back:
            self._give_back(back, end)

    # -- workers ------------------------------------------------------------------------------

    def _worker(self, w: Worker) -> ProcessGenerator:
        env = self.env
        while True:
            w.life += 1
            w.born = self._born(w)
            w.state = "idle"
            w.terminating = False
            w.noticing = False
            w.kill_at = INF
            w.stop = StopSignal()
            w.runner = None  # a new process: a new runner, reading the new stop flag
            exited = w.exited = env.event()
            self._start_up(w)
            killed = yield from self._work(w)
            if not killed:
                killed = yield from self._exit(w)
            if w.reserved:
                self._release_reserved(w, killed)
            if w.acking is not None:
                if killed and w.ack_due > env.now:  # unacknowledged: it comes back
                    unit = w.acking
                    self.ledger.furthest[unit.key] = unit.items  # its items all ran once
                    self._settle(unit, self._on_kill, env.now)
                w.acking = None
            w.state = "down"
            w.unit = None
            exited.succeed(env.now)
            delay = self._replacement_delay(w)
            if delay > 0:
                yield env.timeout(delay)

    def _replayed(self, w: Worker, life: int) -> float | None:
        """When the replayed run's process of ``w``'s slot and ``life`` was ready (None: no
        replay, or not that many lives)."""
        if w.slot < len(self._ready) and life <= len(self._ready[w.slot]):
            return float(self._ready[w.slot][life - 1])
        return None

    def _replacement_delay(self, w: Worker) -> float:
        """Seconds from the exit of ``w``'s process to its replacement taking work: the wait for
        the replayed replacement if that is still to come, else ``restart_delay``."""
        ready = self._replayed(w, w.life + 1)
        if ready is not None and ready + self._first_fetch >= self.env.now:
            return ready + self._first_fetch - self.env.now
        return self.restart_delay

    def _born(self, w: Worker) -> float:
        """When the life of ``w`` that starts now was ready: the replayed time if it is not
        after now, else now."""
        ready = self._replayed(w, w.life)
        return ready if ready is not None and ready <= self.env.now else self.env.now

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

    def _work(self, w: Worker) -> Attempt:
        """Take units and run them until SIGTERM or SIGKILL; True if SIGKILLed.

        A unit is taken from the process's own orphans first, then from its reservation, then
        from the queue's front, and each time the process takes one it tops its reservation up
        to ``prefetch`` from the queue's front. An idle process waiting on an empty queue is
        handed the next unit enqueued and reserves nothing more until it next takes one: a
        simplification (a real prefetching consumer would also reserve what arrives while it
        works), which changes the order of work only while the queue runs dry."""
        env = self.env
        queue = self.queue
        prefetch = self._prefetch
        while not w.terminating:
            source = w.reclaimed or w.reserved or queue
            if source:
                unit = source.popleft()
                fetched = source is queue
                while len(w.reserved) < prefetch and queue:
                    w.reserved.append(queue.popleft())
                    fetched = True
                if fetched and self.unacked:
                    self._broker_command()
            else:
                if self.unacked:
                    self._broker_command()  # the fetch that found the queue empty
                    if queue:  # a maintenance just put units back
                        continue
                wait = w.wait = env.event()
                self.idle.append(w)
                try:
                    unit = yield wait
                except simpy.Interrupt as signal:
                    if wait.triggered:  # handed a unit in the same instant: give it back
                        queue.appendleft(wait.value)
                    else:
                        self.idle.remove(w)
                    return signal.cause == KILL
            w.unit = unit
            w.state = "busy"
            if self._engine:
                killed = yield from self._run_engine(w, unit)
            else:
                killed = yield from self._run_opaque(w, unit)
            w.unit = None
            w.state = "idle"
            if killed:
                return True
        return False

    def _exit(self, w: Worker) -> Attempt:
        """The process's exit after SIGTERM once it has no job in hand: ``exit_time`` seconds in
        which it is still alive, so that a SIGKILL due meanwhile (the platform's after the grace,
        or a crash) kills it. True if SIGKILLed."""
        if self._exit_time <= 0:
            return False
        w.state = "exiting"
        try:
            yield self.env.timeout(self._exit_time)
        except simpy.Interrupt as signal:
            # it is terminating already: a later SIGTERM sends it nothing
            assert signal.cause == KILL, signal.cause
            return True
        return False

    def _release_reserved(self, w: Worker, killed: bool) -> None:
        """Carry out the strategy's decision about the units the process had reserved and never
        started (``on_kill_reserved`` if it was SIGKILLed, else ``on_exit_reserved``): they
        ran no item and cost no attempt."""
        units = list(w.reserved)
        w.reserved.clear()
        outcome = self._on_kill_reserved if killed else self._on_exit_reserved
        if isinstance(outcome, Requeue):
            if outcome.delay > 0:
                self._give_back_later(units, outcome.delay, outcome.end)
            else:
                self._give_back(units, outcome.end)
            return
        now = self.env.now
        for unit in units:
            self._settle(unit, outcome, now)

    def _fail_later(self, unit: Unit, delay: float) -> ProcessGenerator:
        """A delayed failure: ``unit`` is pending in ``failing`` (put there by ``_settle``) for
        ``delay`` seconds, then its job is recorded failed."""
        yield self.env.timeout(delay)
        del self.failing[id(unit)]
        self.ledger.failed(unit.job, self.env.now)

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
        elif isinstance(outcome, Redeliver):
            # in the order they come, and so in the order they fall due (_maintain reads it so)
            assert not self.unacked or self.unacked[-1][0] <= now + outcome.after
            self.unacked.append((now + outcome.after, unit))
            self._redeliver = outcome
            if self._maintainer is None:
                self._maintainer = self.env.process(self._maintain(outcome))
        elif isinstance(outcome, Fail):
            if outcome.delay > 0:
                self.failing[id(unit)] = unit
                self.env.process(self._fail_later(unit, outcome.delay))
            else:
                ledger.failed(unit.job, now)
        elif isinstance(outcome, Lose):
            ledger.lost(unit.job, now)

    # -- Dramatiq's queue maintenance (Redeliver) ------------------------------------------------

    MAINTENANCE_RECHECK = 10
    """Polls between two looks at how many processes are polling, while messages wait."""

    def _maintain(self, r: Redeliver) -> ProcessGenerator:
        """While units wait in ``unacked``: the polls of the processes that are polling, each
        with ``r.chance`` of a maintenance. The number of polls to the first maintenance is
        geometric; it is drawn afresh (the draw is memoryless) every ``MAINTENANCE_RECHECK``
        polls, when the number polling may have changed."""
        env = self.env
        window = self.MAINTENANCE_RECHECK * r.poll
        while self.unacked:
            # units are held in the order they came, each for the same ``after``: the first
            # is due first
            due = self.unacked[0][0]
            if due > env.now:
                yield env.timeout(due - env.now)
                continue
            polling = self._polling()
            if polling and r.chance > 0:
                per_poll = 1.0 - (1.0 - min(r.chance, 1.0)) ** polling
                polls = int(self._rng.geometric(per_poll))
                if polls * r.poll <= window:
                    yield env.timeout(polls * r.poll)
                    self._maintenance()
                    continue
            yield env.timeout(window)
        self._maintainer = None

    def _polling(self) -> int:
        """The processes sending a poll every ``Redeliver.poll``: waiting on an empty queue, or
        working with room in their prefetch (Dramatiq's consumers go on polling while a SIGTERMed
        process finishes its messages)."""
        prefetch = self._prefetch
        n = 0
        for w in self.workers:
            state = w.state
            if state == "idle" or (state == "busy" and len(w.reserved) < prefetch):
                n += 1
        return n

    def _broker_command(self) -> None:
        """A fetch (a process taking a unit from the queue, or finding it empty): the
        maintenance runs with the broker's chance."""
        assert self._redeliver is not None
        if self._rng.random() < self._redeliver.chance:
            self._maintenance()

    def _maintenance(self) -> None:
        """Put every unit whose dead process's heartbeat has expired back on the queue."""
        r = self._redeliver
        assert r is not None  # set when the first unit was held
        now = self.env.now
        due = [(t, u) for t, u in self.unacked if t <= now]
        if not due:
            return
        self.unacked = [(t, u) for t, u in self.unacked if t > now]
        for _, unit in sorted(due, key=lambda pair: pair[0]):
            self._enqueue(unit, r.end)

    def _run_opaque(self, w: Worker, unit: Unit) -> Attempt:
        """One attempt of a job that restarts from scratch. Returns True if SIGKILLed."""
        env = self.env
        start = env.now
        w.mode = "opaque"
        finish = INF if unit.hangs else start + unit.length
        limit = start + self._run_limit
        cutoff = INF
        self.ledger.started(unit.job, start)
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
        ledger = self.ledger
        ledger.attempt(unit.job, elapsed, elapsed if unit.hangs else 0.0)
        if outcome is None or not unit.item_time:  # done: every item ran, whatever the ulps
            ran = unit.items
        else:
            ran = min(unit.items, int(elapsed / unit.item_time + ITEM_SLACK))
        ledger.items_run(unit.job, unit.key, ran)
        if outcome is None:
            ledger.unit_done(unit.job, unit.key, now)
            low, high = self._ack_delay
            if high > 0:
                lag = low if high <= low else low + (high - low) * self._rng.random()
                w.acking, w.ack_due = unit, now + lag
        else:
            self._settle(unit, outcome, now)
        return killed

    def _run_engine(self, w: Worker, unit: Unit) -> Attempt:
        """One run of a resumable job in the real engine under ``w.clock``. Returns True if
        SIGKILLed."""
        env = self.env
        policy, store, ledger = self._policy, self.store, self.ledger
        assert policy is not None and store is not None  # a fleet of the engine's strategy
        w.mode = "engine"
        clock = w.clock = store.clocks[w.name] = VirtualClock(env.now)
        start = env.now
        ledger.started(unit.job, start)
        job = SimJob(unit, clock, ledger, store.cost, self.coalesce)
        runner = w.runner
        if runner is None:
            runner = w.runner = engine_runner(store, policy, w.name, clock, w.stop)
        else:  # the life's runner, on this run's clock
            runner.clock = clock
        try:
            execution = runner.start(unit.key, job)
            job.execution = execution
            while True:
                job.until = self._quiet_until(w)
                try:
                    done = execution.advance(job.until)
                except Hang:
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
            ledger.attempt(unit.job, now - start, max(0.0, now - job.hung_since))
            record = store.crash(unit.key, now)
            lease_free = record.lease_expires if record is not None else now
            # any worker may take the job once its lease has expired; its own worker, coming
            # back first with the same name, takes it back at once
            self._enqueue_later(unit, max(0.0, lease_free - now) + LEASE_MARGIN, "back")
            if now + self.restart_delay < lease_free:
                self.orphans.setdefault(w.slot, []).append(unit)
            return True
        finally:
            job.execution = None  # no cycle left for the collector: the run is over
        now = env.now
        ledger.attempt(unit.job, now - start, 0.0)
        result = execution.result
        assert result is not None
        if result.completed:
            ledger.unit_done(unit.job, unit.key, now)
        elif result.interrupted:
            self._settle(unit, Requeue(result.retry_after or 0.0, policy.requeue, False), now)
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

    def _term(self, w: Worker) -> simpy.Event | None:
        """SIGTERM to the worker's process; returns the event of its exit (None if down)."""
        if w.state == "down":
            return None
        exited = w.exited
        if w.terminating or w.noticing:
            return exited
        delay = self._notice_delay(w)
        if delay > 0:
            w.noticing = True
            self.env.process(self._notice(w, w.life, delay))
        else:
            self._act_on_term(w)
        return exited

    def _notice_delay(self, w: Worker) -> float:
        """Seconds from a SIGTERM now to the process acting on it: to its next look at its stop
        flag (every ``notice_every`` from its start; 0: none)."""
        every = self._notice_every
        if every > 0:
            return every - (self.env.now - w.born) % every
        return 0.0

    def _notice(self, w: Worker, life: int, delay: float) -> ProcessGenerator:
        """The process acts on a SIGTERM ``delay`` seconds after it came, if it is still alive."""
        yield self.env.timeout(delay)
        if w.life == life and w.noticing and w.state != "down":
            w.noticing = False
            self._act_on_term(w)

    def _act_on_term(self, w: Worker) -> None:
        w.terminating = True
        w.stop.request(TERM)
        if w.state == "idle" or w.mode == "opaque":
            assert w.proc is not None
            w.proc.interrupt(TERM)

    def _kill(self, w: Worker) -> bool:
        """SIGKILL to the worker's process; True if it was running."""
        if w.state == "down":
            return False
        w.terminating = True
        assert w.proc is not None
        w.proc.interrupt(KILL)
        return True

    def _grace_then_kill(
        self, w: Worker, life: int, exited: simpy.Event, record: DeployRecord | None
    ) -> ProcessGenerator:
        w.kill_at = min(w.kill_at, self.env.now + self.grace)
        yield self.env.timeout(self.grace)
        if w.life == life and not exited.triggered and self._kill(w):
            self.ledger.hard_kills += 1
            if record is not None:
                record.hard_kills += 1

    def _stop_worker(self, w: Worker, record: DeployRecord | None) -> simpy.Event | None:
        """SIGTERM now, SIGKILL after the grace if it is still running; the event of its exit
        (None if down)."""
        exited = self._term(w)
        if exited is not None and not exited.triggered:
            self.env.process(self._grace_then_kill(w, w.life, exited, record))
        return exited

    def _deploy(self, at: float) -> ProcessGenerator:
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

    def _restart(self, w: Worker, at: float) -> ProcessGenerator:
        yield self.env.timeout(at - self.env.now)
        self._stop_worker(w, None)

    def _crash(self, w: Worker, at: float) -> ProcessGenerator:
        yield self.env.timeout(at - self.env.now)
        if self._kill(w):
            self.ledger.crashes += 1

    # -- the horizon --------------------------------------------------------------------------

    def _pending_units(self) -> list[Unit]:
        units = list(self.queue)
        units += [w.unit for w in self.workers if w.unit is not None]
        units += [u for w in self.workers for u in w.reclaimed]
        units += [u for w in self.workers for u in w.reserved]
        units += list(self.delayed.values())
        units += list(self.failing.values())
        units += [u for _, u in self.recoverable]
        units += [u for _, u in self.unacked]
        return units

    def _retained(self) -> dict[int, float]:
        """Seconds of durable progress of unfinished resumable jobs, by job."""
        store = self.store
        if store is None:
            return {}
        out: dict[int, float] = {}
        for unit in self._pending_units():
            record = store.get(unit.key)
            if record is not None and record.cursor is not None:
                # the runner counts chunks as its items: the cursor says how far the job got
                done = int(record.cursor) + 1
                out[unit.job] = out.get(unit.job, 0.0) + done * unit.item_time
        return out
