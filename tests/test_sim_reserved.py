"""The process around the job, pinned on small hand-made fleets: reserved (prefetched) units and
their fate on a clean exit or a kill, the time a process takes to exit after SIGTERM, a failure
recorded only after a delay, and what replaying real runs taught the simulator (the last
section). The defaults of these hooks change nothing (the rest of
the suite and the committed report hold that); these tests give them values.

A job of L seconds holds L items of 1 s unless a test says otherwise; every time below can be
checked by hand.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.fleet.results import RunResult, summarize
from deploysim.sim.fleet.simulation import FleetSim
from deploysim.sim.fleet.work import Draws, Unit
from deploysim.strategies.base import Fail, Lose, Outcome, Redeliver, Requeue, Strategy
from deploysim.strategies.dramatiq import Dramatiq

FRONT = Requeue(0.0, "front")


@dataclass(frozen=True)
class Reserving(Strategy):
    """A prefetch, an exit time and the reserved units' fates as parameters, over the base
    decisions: SIGTERM waits for the job in hand, SIGKILL loses it (Celery's defaults)."""

    reserve: int = 1
    exit_s: float = 0.0
    exit_reserved: Outcome = FRONT
    kill_reserved: Outcome = FRONT

    @property
    def prefetch(self) -> int:
        return self.reserve

    @property
    def exit_time(self) -> float:
        return self.exit_s

    @property
    def on_exit_reserved(self) -> Outcome:
        return self.exit_reserved

    @property
    def on_kill_reserved(self) -> Outcome:
        return self.kill_reserved


@dataclass(frozen=True)
class Abandoning(Strategy):
    """RQ's fate for a SIGKILLed worker's job: it fails once a maintenance pass finds it
    abandoned, ``after`` seconds after the kill."""

    after: float = 0.0

    @property
    def on_kill(self) -> Outcome:
        return Fail("abandoned", delay=self.after)


def draws(
    jobs: list[tuple[float, float]],
    deploys: tuple[float, ...] = (),
    crashes: list[list[float]] | None = None,
    **extra: Any,
) -> Draws:
    """The Draws of ``jobs`` (arrival, length) with one item per second and no hangs, and any
    other field of ``Draws`` (``ready``, ``first_fetch``, ``seed``)."""
    return Draws(
        arrivals=np.array([at for at, _ in jobs], dtype=float),
        lengths=np.array([length for _, length in jobs], dtype=float),
        items=np.array([max(1, round(length)) for _, length in jobs], dtype=np.int64),
        hangs=np.zeros(len(jobs), dtype=bool),
        deploys=np.array(deploys, dtype=float),
        crashes=[np.array(c, dtype=float) for c in crashes or []],
        **extra,
    )


def run(
    strategy: Strategy,
    d: Draws,
    *,
    workers: int = 1,
    grace: float = 3.0,
    restart_delay: float = 0.0,
    horizon: float = 1000.0,
) -> tuple[Ledger, RunResult]:
    """Run the fleet to ``horizon``; the ledger and its RESULT, every job accounted for."""
    sim = FleetSim(
        strategy, d, workers=workers, restart_delay=restart_delay, grace=grace, horizon=horizon
    )
    ledger = sim.run()
    result = summarize(ledger)
    assert result["enqueued"] == (
        result["completed"] + result["failed"] + result["lost"] + result["pending"]
    )
    assert result["explicitly_lost"] == result["lost"]
    return ledger, result


def per_job(ledger: Ledger, key: str) -> list[float]:
    return [float(x) for x in ledger.arrays()[key]]


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-9)


# -- the defaults --------------------------------------------------------------------------------


def test_the_hooks_default_to_the_model_without_them() -> None:
    s = Strategy()
    assert s.prefetch == 0 and s.exit_time == 0.0
    assert s.on_exit_reserved == s.on_kill_reserved == Requeue(0.0, "front")
    assert Fail().delay == 0.0 and Fail("x") == Fail("x", 0.0)


# -- prefetch ------------------------------------------------------------------------------------


def test_a_reserved_unit_waits_for_its_worker_while_another_worker_is_idle() -> None:
    # A (3 s) and B (1 s) are handed to the two idle workers at 0; C and D are queued. At 1 the
    # second worker takes C and reserves D; the first is free at 3 but the queue is empty, so D
    # waits for C to end at 6 and runs 6-11 (without prefetch: 3-8 on the first worker)
    d = draws([(0, 3), (0, 1), (0, 5), (0, 5)])
    ledger, _ = run(Reserving(reserve=1), d, workers=2)
    assert per_job(ledger, "done_t") == [approx(3), approx(1), approx(6), approx(11)]
    assert per_job(ledger, "first_start")[3] == approx(6)
    plain, _ = run(Reserving(reserve=0), d, workers=2)
    assert per_job(plain, "done_t") == [approx(3), approx(1), approx(6), approx(8)]


def test_reserved_units_run_in_the_order_reserved_before_the_queue() -> None:
    # at 10 the worker takes B and reserves C and D; E arrives at 10.5 behind them
    d = draws([(0, 10), (0, 2), (0, 2), (0, 2), (10.5, 2)])
    ledger, _ = run(Reserving(reserve=2), d)
    assert per_job(ledger, "first_start") == [0, approx(10), approx(12), approx(14), approx(16)]


# -- exit_time and the reserved units' fates -----------------------------------------------------


def test_an_idle_worker_slower_to_exit_than_the_grace_is_sigkilled() -> None:
    # the Celery prefork case: idle at the SIGTERM (5), 1.9 s to exit, SIGKILL at 6.5
    d = draws([(0, 1)], deploys=(5,))
    ledger, result = run(Reserving(reserve=1, exit_s=1.9), d, grace=1.5)
    assert ledger.hard_kills == 1 and result["hard_kills"] == 1
    assert ledger.deploys[0].hard_kills == 1
    assert ledger.deploys[0].end == approx(6.5)
    # 1 s to exit: a clean exit at 6; no exit time: at once
    ledger, _ = run(Reserving(reserve=1, exit_s=1.0), d, grace=1.5)
    assert ledger.hard_kills == 0 and ledger.deploys[0].end == approx(6)
    ledger, _ = run(Reserving(reserve=1, exit_s=0.0), d, grace=1.5)
    assert ledger.hard_kills == 0 and ledger.deploys[0].end == approx(5)


def test_a_kill_in_the_exit_time_leaves_the_reserved_unit_to_on_kill_reserved() -> None:
    # at 10 the worker takes B and reserves C. SIGTERM at 11; B ends at 12; the process needs
    # 5 s to exit, the SIGKILL comes at 14: C is unacknowledged until 14 + 100 and runs 114-116
    # on the replacement (up at 14 + 10); B, finished, is not touched
    d = draws([(0, 10), (0, 2), (0, 2)], deploys=(11,))
    unacked = Requeue(100.0, "back")
    strategy = Reserving(reserve=1, exit_s=5.0, kill_reserved=unacked)
    ledger, result = run(strategy, d, grace=3.0, restart_delay=10.0)
    assert ledger.hard_kills == 1 and ledger.deploys[0].hard_kills == 1
    assert ledger.deploys[0].end == approx(14)
    assert per_job(ledger, "done_t") == [approx(10), approx(12), approx(116)]
    assert per_job(ledger, "first_start")[2] == approx(114)
    # a reserved unit never started: its one attempt is the one after the kill
    assert ledger.executions == [1, 1, 1] and ledger.item_execs == [10, 2, 2]
    assert result["duplicate_item_executions"] == 0 and result["wasted_work_s"] == 0
    # before 114 it is pending, neither lost nor failed
    early, early_result = run(strategy, d, grace=3.0, restart_delay=10.0, horizon=100.0)
    assert early_result["pending"] == 1 and early.pending == {2}
    assert early.executions[2] == 0


def test_a_clean_exit_gives_the_reserved_units_back_at_once_at_the_front() -> None:
    # at 10 the worker takes B and reserves C and D; E arrives at 11.5. SIGTERM at 11: the worker
    # runs neither C nor D; B ends at 12, the process exits at 13 (before the SIGKILL at 14)
    # and C and D go back ahead of E; the replacement (restart_delay 0) runs C, D, E
    d = draws([(0, 10), (0, 2), (0, 2), (0, 2), (11.5, 2)], deploys=(11,))
    slow_kill = Requeue(100.0, "back")  # must not be used: the exit is clean
    ledger, _ = run(Reserving(reserve=2, exit_s=1.0, kill_reserved=slow_kill), d, grace=3.0)
    assert ledger.hard_kills == 0 and ledger.deploys[0].end == approx(13)
    assert per_job(ledger, "first_start") == [0, approx(10), approx(13), approx(15), approx(17)]
    assert ledger.executions == [1] * 5


def test_a_clean_exit_hands_the_reserved_unit_to_an_idle_worker() -> None:
    # two workers: A and B handed at 0, C and D queued. At 1 the second takes C and reserves D;
    # the first is idle from 2 (D is not its to take). SIGTERM to both at 3: the idle one exits
    # at once and is back at 3.5; C ends at 6 and D goes at once to that idle replacement
    d = draws([(0, 2), (0, 1), (0, 5), (0, 3)], deploys=(3,))
    ledger, _ = run(Reserving(reserve=1), d, workers=2, grace=30.0, restart_delay=0.5)
    assert per_job(ledger, "first_start") == [0, 0, approx(1), approx(6)]
    assert per_job(ledger, "done_t")[3] == approx(9)


def test_a_crash_leaves_the_reserved_units_to_on_kill_reserved() -> None:
    # at 10 the worker takes B and reserves C; a crash at 12 loses both: B as acknowledged at
    # start (on_kill), C as on_kill_reserved says; neither is a hard kill
    d = draws([(0, 10), (0, 5), (0, 5)], crashes=[[12.0]])
    strategy = Reserving(reserve=1, kill_reserved=Lose("reserved"), exit_reserved=Fail("no"))
    ledger, result = run(strategy, d)
    assert ledger.crashes == 1 and ledger.hard_kills == 0
    assert result["lost"] == result["explicitly_lost"] == 2
    assert per_job(ledger, "lost_t")[1:] == [approx(12), approx(12)]
    assert ledger.executions == [1, 1, 0]
    assert math.isnan(per_job(ledger, "first_start")[2])


# -- a delayed failure ---------------------------------------------------------------------------


def test_a_delayed_failure_is_pending_until_it_is_recorded() -> None:
    # SIGTERM at 10, SIGKILL at 15 (grace 5); the job is recorded failed 420 s later, at 435
    d = draws([(0, 100), (20, 1)], deploys=(10,))
    strategy = Abandoning(after=420.0)
    ledger, result = run(strategy, d, grace=5.0, horizon=1000.0)
    assert result["failed"] == 1 and result["pending"] == 0
    assert per_job(ledger, "fail_t")[0] == approx(435)
    assert per_job(ledger, "done_t")[1] == approx(21)
    before, before_result = run(strategy, d, grace=5.0, horizon=434.0)
    assert before_result["failed"] == 0 and before_result["pending"] == 1
    assert before.pending == {0} and math.isnan(per_job(before, "fail_t")[0])
    # no delay: failed at the kill, as a plain Fail
    now, _ = run(Abandoning(after=0.0), d, grace=5.0)
    assert per_job(now, "fail_t")[0] == approx(15)


# -- every job accounted for, every reserved unit run at most as often as it is re-queued --------


OUTCOMES = [
    FRONT,
    Requeue(0.0, "back"),
    Requeue(7.0, "back"),
    Requeue(4.0, "front"),
    Lose("reserved"),
    Fail("reserved"),
    Fail("reserved", delay=6.0),
]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Reserving, Draws, int, float, float]:
    """A small fleet: a strategy with a prefetch, an exit time and reserved fates, its draws,
    and the workers, grace and restart delay."""
    # jobs arrive faster than the workers run them, so that queues build up and the workers
    # hold reservations when the deploys and crashes come
    n = draw(st.integers(0, 16))
    tenths = st.integers(0, 600).map(lambda t: t / 10)
    early = st.integers(0, 200).map(lambda t: t / 10)
    arrivals = sorted(draw(st.lists(early, min_size=n, max_size=n)))
    lengths = draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
    hangs = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    workers = draw(st.integers(1, 3))
    crashes = [sorted(draw(st.lists(tenths, max_size=2))) for _ in range(workers)]
    d = Draws(
        arrivals=np.array(arrivals, dtype=float),
        lengths=np.array(lengths, dtype=float),
        items=np.array(lengths, dtype=np.int64),
        hangs=np.array(hangs, dtype=bool) & draw(st.booleans()),
        deploys=np.array(sorted(draw(st.lists(tenths, min_size=1, max_size=3))), dtype=float),
        crashes=[np.array(c, dtype=float) for c in crashes],
    )
    strategy = Reserving(
        reserve=draw(st.integers(0, 3)),  # 0 too: the hooks must also hold without it
        exit_s=draw(st.sampled_from([0.0, 0.5, 2.0, 10.0])),
        exit_reserved=draw(st.sampled_from(OUTCOMES)),
        kill_reserved=draw(st.sampled_from(OUTCOMES)),
    )
    grace = draw(st.sampled_from([1.0, 3.0, 30.0]))
    restart_delay = draw(st.sampled_from([0.0, 1.0]))
    return strategy, d, workers, grace, restart_delay


def held(sim: FleetSim) -> list[Unit]:
    """Every unit the fleet still holds: queued, in hand, reserved, delayed, failing."""
    units = list(sim.queue)
    units += [w.unit for w in sim.workers if w.unit is not None]
    units += [u for w in sim.workers for u in w.reserved]
    units += list(sim.delayed.values()) + list(sim.failing.values())
    units += [u for _, u in sim.recoverable]
    return units


@settings(max_examples=150)
@given(fleet=fleets(), horizon=st.sampled_from([40.0, 90.0, 400.0]))
def test_every_job_ends_in_one_bucket_and_runs_at_most_once(
    fleet: tuple[Reserving, Draws, int, float, float], horizon: float
) -> None:
    # the base fates re-queue nothing that started (a killed task is lost, a timed-out
    # one too), so a job runs at most once whatever becomes of it while reserved
    strategy, d, workers, grace, restart_delay = fleet
    sim = FleetSim(
        strategy, d, workers=workers, restart_delay=restart_delay, grace=grace, horizon=horizon
    )
    ledger = sim.run()
    result = summarize(ledger)
    a = ledger.arrays()
    done, failed = ~np.isnan(a["done_t"]), ~np.isnan(a["fail_t"])
    lost = ~np.isnan(a["lost_t"])
    pending = np.zeros(ledger.n, dtype=bool)
    pending[list(ledger.pending)] = True
    enqueued = ~np.isnan(a["enqueue_t"])
    buckets = done.astype(int) + failed + lost + pending
    assert (buckets == enqueued).all()  # exactly one each, once enqueued
    assert result["explicitly_lost"] == result["lost"]
    assert max(ledger.executions, default=0) <= 1
    assert (a["item_execs"][done] == a["items"][done]).all()
    units = held(sim)
    assert len({id(u) for u in units}) == len(units)  # no unit in two places
    assert {u.job for u in units} == ledger.pending
    assert not any(w.reserved for w in sim.workers if w.state == "down")
    assert all(len(w.reserved) <= strategy.prefetch for w in sim.workers)


# -- what replaying real runs taught the simulator ------------------------------------------------
# each replacement ready when the real one was (``Draws.ready``), a process that acts on SIGTERM
# at its next look at its stop flag (``notice_every``), a fetch that takes a batch
# (``fetch_batch``), Dramatiq's redelivery at a random queue maintenance (``Redeliver``) and an
# acknowledgement that lags a job's end (``ack_delay``).


def fleet(strategy: Strategy, d: Draws, **kwargs: Any) -> Ledger:
    """``run``'s ledger alone."""
    return run(strategy, d, **kwargs)[0]


def times(ledger: Ledger, key: str) -> list[float]:
    return per_job(ledger, key)


@dataclass(frozen=True)
class Losing(Strategy):
    """SIGTERM waits for the job in hand, SIGKILL loses it, and the process looks at its stop
    flag every ``every`` seconds (0: at once)."""

    every: float = 0.0

    @property
    def notice_every(self) -> float:
        return self.every

    @property
    def on_kill(self) -> Outcome:
        return Lose("killed")


# -- each replacement when the real one was ready -----------------------------------------------


def test_a_replacement_is_ready_when_the_replayed_one_was() -> None:
    """A crash at 2 kills the first job; the slot's second process was ready at 7.5 in the
    real run, so the second job starts then, not ``restart_delay`` after the crash."""
    d = draws([(0.0, 5.0), (0.0, 1.0)], crashes=[[2.0]],
              ready=[np.array([0.0, 7.5])], first_fetch=0.25)
    ledger = fleet(Losing(), d, restart_delay=1.0)
    assert times(ledger, "lost_t")[0] == 2.0
    assert times(ledger, "first_start")[1] == pytest.approx(7.75)  # ready + first fetch
    # without the replay: restart_delay after the crash
    plain = fleet(Losing(), draws([(0.0, 5.0), (0.0, 1.0)], crashes=[[2.0]]), restart_delay=1.0)
    assert times(plain, "first_start")[1] == pytest.approx(3.0)


def test_a_process_that_exits_after_its_replayed_replacement_falls_back_to_the_delay() -> None:
    """The real replacement was ready at 2.5, but the simulated process only exits at 4 (its
    job runs to its end after SIGTERM at 1): the replacement comes ``restart_delay`` later, and
    the slot's later replayed times still hold."""
    d = draws([(0.0, 4.0), (0.0, 1.0), (5.0, 1.0)], deploys=(1.0,),
              ready=[np.array([0.0, 2.5])])
    ledger = fleet(Losing(), d, grace=10.0, restart_delay=0.5)
    assert times(ledger, "done_t")[0] == 4.0
    assert times(ledger, "first_start")[1] == pytest.approx(4.5)


# -- SIGTERM acted on at the next look ----------------------------------------------------------


@pytest.mark.parametrize(("born", "term", "noticed"), [
    (0.0, 10.0, 11.0),   # a look falls on the signal: the next one, a whole period on
    (0.0, 10.25, 11.0),
    (-0.4, 10.0, 10.6),  # the replayed first process was ready 0.4 s before the run began
])
def test_sigterm_is_acted_on_at_the_next_look(born: float, term: float, noticed: float) -> None:
    """Until its next look the process goes on fetching: a job queued after the deploy starts
    if it arrives before the look, and the grace (3 s) kills it."""
    d = draws([(0.0, 1.0), (noticed - 0.05, 5.0)], deploys=(term,),
              ready=[np.array([born])])
    ledger = fleet(Losing(every=1.0), d, restart_delay=100.0)
    assert times(ledger, "lost_t")[1] == pytest.approx(term + 3.0)
    # arriving just after the look, it waits for the replacement (the process exits then)
    late = draws([(0.0, 1.0), (noticed + 0.05, 5.0)], deploys=(term,), ready=[np.array([born])])
    later = fleet(Losing(every=1.0), late, restart_delay=100.0)
    assert times(later, "first_start")[1] == pytest.approx(noticed + 100.0)


# -- a fetch that takes a batch -----------------------------------------------------------------


@dataclass(frozen=True)
class Batching(Strategy):
    batch: bool = True

    @property
    def prefetch(self) -> int:
        return 1

    @property
    def fetch_batch(self) -> bool:
        return self.batch

    @property
    def on_exit_reserved(self) -> Outcome:
        return Requeue(0.0, "back")


def test_an_idle_batch_fetch_takes_two_in_one_go() -> None:
    """Six jobs at once to two idle workers: a batch fetch gives the first worker jobs 0 and 1
    (one in hand, one reserved), the second 2 and 3; one at a time, each idle worker is handed
    one (0, 1) and reserves only when it next takes one (2 then 3, 4 then 5)."""
    jobs = [(0.0, 2.0)] * 6
    batch = times(fleet(Batching(), draws(jobs), workers=2), "first_start")
    assert batch == [0.0, 2.0, 0.0, 2.0, 4.0, 4.0]
    single = times(fleet(Batching(batch=False), draws(jobs), workers=2), "first_start")
    assert single == [0.0, 0.0, 2.0, 4.0, 2.0, 4.0]


# -- Dramatiq's redelivery at a maintenance -----------------------------------------------------


@dataclass(frozen=True)
class Redelivering(Strategy):
    """A killed job waits for a maintenance (``Redeliver``)."""

    after: float = 3.0
    chance: float = 1.0
    poll: float = 0.05

    @property
    def on_kill(self) -> Outcome:
        return Redeliver(after=self.after, chance=self.chance, poll=self.poll)


def test_with_every_command_a_maintenance_the_job_is_back_at_the_first_poll() -> None:
    """Killed at 1, the heartbeat expires at 4; the idle replacement polls every 0.05 s and
    the first poll after 4 puts the job back: it starts over and completes."""
    ledger = fleet(Redelivering(), draws([(0.0, 2.0)], crashes=[[1.0]]), restart_delay=0.5)
    start = times(ledger, "done_t")[0] - 2.0
    assert 4.0 <= start <= 4.0 + 0.05 + 1e-9
    assert ledger.executions[0] == 2


@dataclass(frozen=True)
class FullPrefetch(Redelivering):
    @property
    def prefetch(self) -> int:
        return 1


def test_under_a_backlog_the_redelivery_waits_for_a_fetch() -> None:
    """Two workers; one is killed at 8 with its job (heartbeat expired at 11) and not replaced.
    The other works through a backlog holding a full prefetch, so it never polls; its fetches
    are the only commands. At 20 it takes job 3 from its reservation and fetches job 4: that
    fetch runs the maintenance and job 0 goes to the back, ahead of job 6 (queued at 21), so
    it starts at 50, after jobs 4 and 5."""
    jobs = [(0.0, 9.0), (0.0, 10.0)] + [(0.5, 10.0)] * 4 + [(21.0, 1.0)]
    ledger = fleet(FullPrefetch(), draws(jobs, crashes=[[8.0], []]), workers=2,
                 restart_delay=1000.0, horizon=200.0)
    done = times(ledger, "done_t")
    assert ledger.executions[0] == 2
    assert done[0] == pytest.approx(50.0 + 9.0)
    assert done[6] == pytest.approx(59.0 + 1.0)


def test_a_maintenance_never_comes_with_no_chance() -> None:
    ledger = fleet(Redelivering(chance=0.0), draws([(0.0, 2.0)], crashes=[[1.0]]), horizon=500)
    assert ledger.executions[0] == 1 and 0 in ledger.pending


def test_the_mean_wait_is_the_polls_of_the_idle_workers() -> None:
    """Three idle workers polling every 0.0375 s with a 0.1% chance each: after the 3 s
    heartbeat, a maintenance comes 12.5 s later on average (Dramatiq at a 0.05 scale; the real
    runs measured 16.3 s from the kill over 10 redeliveries)."""
    model = Dramatiq(heartbeat_timeout=3.0, worker_timeout=0.05, worker_shutdown_timeout=30.0)
    waits = []
    for seed in range(200):
        d = draws([(0.0, 2.0)], crashes=[[1.0], [], []], seed=seed)
        ledger = fleet(model, d, workers=3, restart_delay=0.3, horizon=2000.0)
        waits.append(times(ledger, "done_t")[0] - 2.0 - 1.0)
    assert min(waits) >= 3.0
    assert statistics.fmean(waits) == pytest.approx(3.0 + 0.0375 / 0.001 / 3, rel=0.15)
    # the same seed draws the same waits
    again = fleet(model, draws([(0.0, 2.0)], crashes=[[1.0], [], []], seed=7), workers=3,
                restart_delay=0.3, horizon=2000.0)
    assert times(again, "done_t")[0] - 3.0 == waits[7]


# -- an acknowledgement that lags the job's end -------------------------------------------------


@dataclass(frozen=True)
class LateAck(Strategy):
    """acks_late with an acknowledgement ``lag`` seconds after the job's end: a killed job, and a
    completed one whose ack had not gone out, come back at once."""

    lag: float = 0.5

    @property
    def ack_delay(self) -> tuple[float, float]:
        return (self.lag, self.lag)

    @property
    def on_kill(self) -> Outcome:
        return Requeue(0.0, "front")


@pytest.mark.parametrize(("crash", "runs_again"), [(5.2, True), (5.6, False)])
def test_a_kill_before_the_ack_runs_a_completed_job_again(crash: float, runs_again: bool) -> None:
    """Job 0 ends at 5; its ack goes out at 5.5. A crash at 5.2 (during job 1) leaves it
    unacknowledged: it comes back and runs again, its first completion kept; at 5.6 it does
    not."""
    ledger = fleet(LateAck(), draws([(0.0, 5.0), (0.0, 5.0)], crashes=[[crash]]),
                 restart_delay=0.0, horizon=100.0)
    result = summarize(ledger)
    assert times(ledger, "done_t")[0] == 5.0 and result["completed"] == 2
    assert ledger.executions[0] == (2 if runs_again else 1)
    assert result["duplicate_item_executions"] == (5 if runs_again else 0)
    assert result["wasted_work_s"] == pytest.approx((5.0 if runs_again else 0.0) + crash - 5.0)
