"""The process around the job, pinned on small hand-made fleets: reserved (prefetched) units and
their fate on a clean exit or a kill, the time a process takes to exit after SIGTERM, and a
failure recorded only after a delay. The defaults of these hooks change nothing (the rest of
the suite and the committed report hold that); these tests give them values.

A job of L seconds holds L items of 1 s unless a test says otherwise; every time below can be
checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.fleet.results import RunResult, summarize
from deploysim.sim.fleet.simulation import FleetSim
from deploysim.sim.fleet.work import Draws, Unit
from deploysim.strategies.base import Fail, Lose, Outcome, Requeue, Strategy

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
) -> Draws:
    """The Draws of ``jobs`` (arrival, length) with one item per second and no hangs."""
    return Draws(
        arrivals=np.array([at for at, _ in jobs], dtype=float),
        lengths=np.array([length for _, length in jobs], dtype=float),
        items=np.array([max(1, round(length)) for _, length in jobs], dtype=np.int64),
        hangs=np.zeros(len(jobs), dtype=bool),
        deploys=np.array(deploys, dtype=float),
        crashes=[np.array(c, dtype=float) for c in crashes or []],
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


def test_a_worker_acts_on_sigterm_only_at_its_next_look() -> None:
    """Until it notices the SIGTERM, at its next look at its stop flag, a worker goes on
    fetching: a job queued after the deploy starts, and the grace kills it; a worker that acts
    at once leaves it queued."""
    from dataclasses import dataclass

    from deploysim.strategies.base import Lose, Strategy

    @dataclass(frozen=True)
    class Slow(Strategy):
        name = "slow"

        @property
        def notice_every(self) -> float:
            return 3.0  # from 0: looks at 9 and 12, so the SIGTERM at 10 is acted on at 12

        @property
        def on_kill(self):
            return Lose("killed")

    @dataclass(frozen=True)
    class Prompt(Strategy):
        name = "prompt"

        @property
        def on_kill(self):
            return Lose("killed")

    def run(strategy):
        draws = Draws(arrivals=np.array([0.0, 10.5]), lengths=np.array([1.0, 5.0]),
                      items=np.array([1, 1]), hangs=np.zeros(2, dtype=bool),
                      deploys=np.array([10.0]), crashes=[np.array([])])
        sim = FleetSim(strategy, draws, workers=1, restart_delay=100.0, grace=3.0, horizon=50.0)
        return sim.run()

    slow, prompt = run(Slow()), run(Prompt())
    assert slow.hard_kills == 1 and slow.lost_t[1] == pytest.approx(13.0)
    assert prompt.hard_kills == 0 and np.isnan(prompt.lost_t[1])
