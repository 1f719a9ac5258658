"""The simulator against the closed forms of docs/closed-forms.md ("Closed forms the simulator must
reproduce"), with the real strategies from ``deploysim.strategies``.

Expected times are measured on independent single-job simulations: one job arriving at time 0 on
one worker, with its own deploy (or crash) draws, and ``T = done_t - first_start``. A job put
back at the BACK of a busy queue would also wait behind the others, so a backlog would bias
``E[T]``; one job per run has no such bias. Each run's horizon is many times ``E[T]`` and every
job must have completed by it, so no sample is cut short. A simulated mean passes when it lies
within 3 standard errors of the closed form. Seeds are fixed, so the numbers are the same on every
run; ``pytest -o log_cli=true --log-cli-level=INFO`` shows them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from deploysim.sim.analysis.theory import (
    daly_expected_time,
    daly_interval,
    mean_ci95,
    periodic_expected_time,
    periodic_first_attempt_completes,
    restart_different_expected_time_for,
    restart_expected_time,
    restart_identical_expected_time_for,
    standard_error,
    wait_kill_expected_time,
    young_interval,
)
from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.fleet.results import summarize
from deploysim.sim.fleet.simulation import FleetSim
from deploysim.sim.fleet.work import Draws
from deploysim.strategies import make_strategy
from deploysim.strategies.base import Strategy

log = logging.getLogger(__name__)

Z = 3.0  # tolerance, in standard errors
GRACE = 30.0  # the platform's grace; irrelevant to a Sidekiq timeout of 0
NO_TIMES = np.zeros(0)
Draw = Callable[[np.random.Generator], np.ndarray]


# -- length distributions (duck-typed for sim.theory.LengthDistribution) ------------------------


@dataclass(frozen=True)
class Exponential:
    mean: float

    def mgf(self, s: float) -> float:
        return math.inf if s * self.mean >= 1.0 else 1.0 / (1.0 - s * self.mean)

    def laplace(self, s: float) -> float:
        return 1.0 / (1.0 + s * self.mean)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def mgf(self, s: float) -> float:
        return (math.exp(s * self.high) - math.exp(s * self.low)) / (s * (self.high - self.low))

    def laplace(self, s: float) -> float:
        return self.mgf(-s)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)


# -- simulation helpers -------------------------------------------------------------------------


def poisson_times(rng: np.random.Generator, mean_gap: float, horizon: float) -> np.ndarray:
    """A Poisson process of mean gap ``mean_gap`` on ``[0, horizon)``, from exponential gaps
    drawn 64 at a time: a longer horizon extends the same times (common random numbers)."""
    times = np.cumsum(rng.exponential(mean_gap, 64))
    while times[-1] < horizon:
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(mean_gap, 64))])
    return times[times < horizon]


def periodic_times(rng: np.random.Generator, period: float, horizon: float) -> np.ndarray:
    """Deploys every ``period`` seconds from a phase uniform on ``[0, period)``."""
    return np.arange(rng.uniform(0.0, period), horizon, period)


def one_job(
    strategy: Strategy,
    length: float,
    *,
    horizon: float,
    items: int = 1,
    deploys: np.ndarray = NO_TIMES,
    crashes: np.ndarray | None = None,
    downtime: float = 0.0,
    grace: float = GRACE,
) -> Ledger:
    """One job arriving at 0 on one worker; ``crashes`` are that worker's SIGKILL times."""
    draws = Draws(
        arrivals=np.zeros(1),
        lengths=np.array([float(length)]),
        items=np.array([items]),
        hangs=np.zeros(1, dtype=bool),
        deploys=deploys,
        crashes=() if crashes is None else [crashes],
    )
    return FleetSim(
        strategy, draws, workers=1, restart_delay=downtime, grace=grace, horizon=horizon
    ).run()


@dataclass(frozen=True)
class Sample:
    """Per-run results of ``n`` independent single-job simulations."""

    run_time: np.ndarray  # done_t - first_start (nan if not completed)
    executions: np.ndarray

    def completed(self) -> np.ndarray:
        """The run times, after checking that every job completed before its horizon."""
        missing = int(np.isnan(self.run_time).sum())
        assert missing == 0, f"{missing} of {self.run_time.size} jobs did not complete"
        return self.run_time


def single_jobs(
    strategy: Strategy,
    n: int,
    seed: int,
    *,
    horizon: float,
    first: float,
    length: Callable[[np.random.Generator], float],
    deploys: Draw | None = None,
    crashes: Draw | None = None,
    downtime: float = 0.0,
    grace: float = GRACE,
    items: int = 1,
) -> Sample:
    """``n`` single-job runs; run ``i`` draws its length, deploys and crashes, in that order
    and over ``[0, horizon)``, from its own generator seeded ``(seed, i)``.

    Each run is simulated to ``first`` and, only if its job is still unfinished then, again to
    ``horizon``. The simulator ignores signals at or after its horizon and nothing before a time
    depends on what comes after it, so a job finished by ``first`` has the same run time either
    way; most runs thus skip the events of the long tail of the horizon.
    """
    run_time = np.empty(n)
    executions = np.empty(n, dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        job_length = length(rng)
        times = NO_TIMES if deploys is None else deploys(rng)
        kills = None if crashes is None else crashes(rng)
        for end in (min(first, horizon), horizon):
            ledger = one_job(
                strategy,
                job_length,
                horizon=end,
                items=items,
                deploys=times,
                crashes=kills,
                downtime=downtime,
                grace=grace,
            )
            a = ledger.arrays()
            if not np.isnan(a["done_t"][0]):
                break
        run_time[i] = a["done_t"][0] - a["first_start"][0]
        executions[i] = a["executions"][0]
    return Sample(run_time, executions)


def assert_near(samples: np.ndarray, theory: float, what: str) -> None:
    """The mean of ``samples`` lies within ``Z`` standard errors of ``theory``."""
    mean, lo, hi = mean_ci95(samples)
    se = standard_error(samples)
    # a law with no spread (every sample equal, se only rounding) must hit the value to rounding
    dust = 1e-9 * max(abs(theory), 1.0)
    off = f"{(mean - theory) / se:+.1f} se" if se > dust else f"{mean - theory:+.2f}, no spread"
    message = (
        f"{what}: simulated {mean:.2f} ± {se:.2f} (1 se; 95% CI {lo:.2f}..{hi:.2f}, "
        f"n={samples.size}) vs theory {theory:.2f} ({off})"
    )
    log.info(message)
    assert abs(mean - theory) <= Z * se + dust, message


def sidekiq_restart(requeue: str = "front") -> Strategy:
    """Sidekiq with ``timeout = 0``: every deploy puts the job back, to start over."""
    return make_strategy("sidekiq", {"timeout": 0, "requeue": requeue})


def resque_retry() -> Strategy:
    """Resque, QUIT mode, with resque-retry putting SIGKILLed jobs back (at the back)."""
    return make_strategy("resque", {"mode": "quit", "on_kill": "requeue"})


def resumable(every: float, cost: float) -> Strategy:
    """The resumable engine with a lease long enough that only its own worker resumes it."""
    return make_strategy(
        "resumable", {"checkpoint_every": every, "checkpoint_cost": cost, "lease_ttl": 1e9}
    )


# -- 1. restart from scratch, fixed L, Poisson deploys ------------------------------------------


@pytest.mark.parametrize(
    ("length", "mtbd", "downtime", "seed"),
    [
        (100.0, 200.0, 0.0, 11),  # lambda L = 0.5
        (100.0, 200.0, 40.0, 12),
        (60.0, 100.0, 100.0, 13),  # a long downtime: deploys during it must change nothing
    ],
)
def test_restart_fixed_length(length: float, mtbd: float, downtime: float, seed: int) -> None:
    theory = restart_expected_time(length, 1.0 / mtbd, downtime)
    sample = single_jobs(
        sidekiq_restart(),
        1500,
        seed,
        horizon=20 * theory,
        first=4 * theory,
        length=lambda rng: length,
        deploys=lambda rng: poisson_times(rng, mtbd, 20 * theory),
        downtime=downtime,
    )
    what = f"formula 1, L={length:g}, 1/lambda={mtbd:g}, D={downtime:g}"
    assert_near(sample.completed(), theory, f"{what}: E[T]")
    # each failed attempt is one restart: E[restarts] = e^(lambda L) - 1
    restarts = (sample.executions - 1).astype(float)
    assert_near(restarts, math.expm1(length / mtbd), f"{what}: E[restarts]")


# -- 2. restart from scratch, random L ----------------------------------------------------------


@pytest.mark.parametrize(
    ("law", "mtbd", "downtime", "seed"),
    [
        # P(T > t) falls like (lambda t)^(-1/(lambda E[L])) = (lambda t)^-6: finite variance
        (Exponential(50.0), 300.0, 0.0, 21),
        (Exponential(50.0), 300.0, 30.0, 22),
        (Uniform(20.0, 180.0), 200.0, 0.0, 23),
    ],
)
def test_restart_identical(
    law: Exponential | Uniform, mtbd: float, downtime: float, seed: int
) -> None:
    """Preemptive-repeat-identical: the job that comes back is the same job, of the same length."""
    theory = restart_identical_expected_time_for(law, 1.0 / mtbd, downtime)
    horizon = max(25 * theory, 40 * mtbd)  # the power-law tail is in units of 1/lambda
    sample = single_jobs(
        sidekiq_restart(),
        2000,
        seed,
        horizon=horizon,
        first=4 * theory,
        length=lambda rng: float(law.sample(rng, 1)[0]),
        deploys=lambda rng: poisson_times(rng, mtbd, horizon),
        downtime=downtime,
    )
    assert_near(
        sample.completed(), theory, f"formula 2 identical, {law}, 1/lambda={mtbd:g}, D={downtime:g}"
    )


@pytest.mark.parametrize(
    ("law", "mtbd", "downtime", "seed"),
    [
        (Exponential(50.0), 300.0, 0.0, 24),  # 50 s, where repeat-identical gives 60 s
        (Uniform(20.0, 180.0), 200.0, 20.0, 25),
    ],
)
def test_restart_different(
    law: Exponential | Uniform, mtbd: float, downtime: float, seed: int
) -> None:
    """Preemptive-repeat-different, from a renewal argument. The simulator restarts a job with
    its own length, but one worker on a backlog of fresh jobs, Sidekiq re-queueing interrupted
    jobs at the BACK, starts every attempt on a new job with a new length (as long as the backlog
    lasts). The gaps between its completions are then independent repeat-different completion
    times: each failed attempt costs ``min(X, L) + D`` and the first one to succeed ends it."""
    theory = restart_different_expected_time_for(law, 1.0 / mtbd, downtime)
    wanted, jobs = 3000, 12_000
    horizon = 1.5 * wanted * theory
    rng = np.random.default_rng(seed)
    draws = Draws(
        arrivals=np.zeros(jobs),
        lengths=law.sample(rng, jobs),
        items=np.ones(jobs, dtype=np.int64),
        hangs=np.zeros(jobs, dtype=bool),
        deploys=poisson_times(rng, mtbd, horizon),
    )
    ledger = FleetSim(
        sidekiq_restart("back"),
        draws,
        workers=1,
        restart_delay=downtime,
        grace=GRACE,
        horizon=horizon,
    ).run()
    a = ledger.arrays()
    assert np.isnan(a["first_start"][-1]), "the backlog ran out: re-queued jobs came back"
    done = np.sort(a["done_t"][~np.isnan(a["done_t"])])
    assert done.size >= wanted, f"only {done.size} completions by the horizon, wanted {wanted}"
    gaps = np.diff(done[:wanted], prepend=0.0)
    what = f"formula 2 different, {law}, 1/lambda={mtbd:g}, D={downtime:g}"
    assert_near(gaps, theory, what)


# -- 3. periodic deploys ------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "period", "seed"), [(60.0, 100.0, 31), (90.0, 100.0, 32)])
def test_periodic(length: float, period: float, seed: int) -> None:
    horizon = 6 * period  # a job with L <= P ends within 2 periods
    sample = single_jobs(
        sidekiq_restart(),
        2000,
        seed,
        horizon=horizon,
        first=horizon,
        length=lambda rng: length,
        deploys=lambda rng: periodic_times(rng, period, horizon),
    )
    what = f"formula 3, L={length:g}, P={period:g}"
    first = (sample.executions == 1).astype(float)
    assert_near(
        first,
        periodic_first_attempt_completes(length, period),
        f"{what}: P(first attempt completes)",
    )
    assert_near(sample.completed(), periodic_expected_time(length, period), f"{what}: E[T]")


@pytest.mark.parametrize(
    ("name", "grace"),
    [("sidekiq timeout 0", GRACE), ("resque-retry, grace 20 s", 20.0)],
)
def test_periodic_livelock(name: str, grace: float) -> None:
    """A job longer than the period never completes, whatever the grace: every attempt after
    the first one starts at a deploy (or at its kill) and gets exactly one period."""
    length, period, periods = 150.0, 100.0, 100
    horizon = periods * period
    deploys = periodic_times(np.random.default_rng(33), period, horizon)
    strategy = sidekiq_restart() if name.startswith("sidekiq") else resque_retry()
    ledger = one_job(strategy, length, horizon=horizon, deploys=deploys, grace=grace)
    result = summarize(ledger)
    executions = int(ledger.arrays()["executions"][0])
    assert result["completed"] == 0, f"{name}: L={length:g} > P={period:g} completed"
    assert result["pending"] == 1, f"{name}: the job is not pending at the horizon: {result}"
    # one attempt per period, each cut short by the next deploy
    assert executions >= periods - 1, f"{name}: {executions} attempts in {periods} periods"


# -- 4. wait for the job, hard kill after K, requeue --------------------------------------------


@pytest.mark.parametrize(
    ("length", "grace", "mtbd", "downtime", "seed"),
    [
        (100.0, 30.0, 200.0, 0.0, 41),
        (200.0, 50.0, 150.0, 20.0, 42),  # with a downtime after each kill (sim.theory's E[D])
        (20.0, 30.0, 50.0, 0.0, 43),  # L <= K: every deploy lets it finish, T = L exactly
    ],
)
def test_wait_then_kill(
    length: float, grace: float, mtbd: float, downtime: float, seed: int
) -> None:
    theory = wait_kill_expected_time(length, 1.0 / mtbd, grace, downtime)
    horizon = 20 * theory
    sample = single_jobs(
        resque_retry(),
        1500,
        seed,
        horizon=horizon,
        first=4 * theory,
        length=lambda rng: length,
        deploys=lambda rng: poisson_times(rng, mtbd, horizon),
        downtime=downtime,
        grace=grace,
    )
    what = f"formula 4, L={length:g}, K={grace:g}, 1/lambda={mtbd:g}, D={downtime:g}"
    assert_near(sample.completed(), theory, what)


# -- 5. checkpointing under Poisson crashes -----------------------------------------------------
#
# One resumable job of ``work`` one-second items on one worker, crashed by SIGKILLs at Poisson
# times of mean gap M. The worker comes back after R = restart_delay and, holding the job's
# lease, resumes it from its last durable checkpoint. In the simulator a crash while the worker
# is down does nothing (R cannot be interrupted), where Daly restarts R: the exact expectation is
# then (M + R)/(M e^(R/M)) of Daly's, 0.99945 for R = 10, M = 300 (under 1 s here, a fraction of a
# standard error).


@cache
def checkpointed(
    work: float, every: float, cost: float, mtbf: float, restart: float, n: int, seed: int
) -> np.ndarray:
    """Run times of ``n`` single-job runs; the same seed gives the same crash times whatever
    ``every`` and ``cost`` (common random numbers across intervals)."""
    theory = daly_expected_time(work, every, cost, mtbf, restart)
    horizon = 20 * theory
    sample = single_jobs(
        resumable(every, cost),
        n,
        seed,
        horizon=horizon,
        first=3 * theory,
        length=lambda rng: work,
        crashes=lambda rng: poisson_times(rng, mtbf, horizon),
        downtime=restart,
        items=int(work),
    )
    return sample.completed()


@pytest.mark.parametrize(
    ("work", "every", "cost", "mtbf", "restart", "seed"),
    [
        # near the optimum: a checkpoint durable only once its cost is paid matters (about
        # C T_s/M = 40 s: a crash during the write loses the segment before it)
        (1200.0, 75.0, 10.0, 300.0, 10.0, 51),
        # no checkpoint cost: crashes, restarts and resumes alone, two intervals
        (600.0, 30.0, 0.0, 300.0, 10.0, 52),
        (600.0, 200.0, 0.0, 300.0, 10.0, 53),
        # checkpoint cost large against the interval (tau is work between the writes, each
        # written once: a job ending on a checkpoint does not pay C twice), and a long interval
        (600.0, 20.0, 10.0, 300.0, 10.0, 54),
        (600.0, 150.0, 30.0, 300.0, 10.0, 55),
        # Young's setting, no restart cost: the worker is back at once and takes its job back
        (600.0, 50.0, 5.0, 300.0, 0.0, 57),
    ],
)
def test_daly_wall_time(
    work: float, every: float, cost: float, mtbf: float, restart: float, seed: int
) -> None:
    theory = daly_expected_time(work, every, cost, mtbf, restart)
    sample = checkpointed(work, every, cost, mtbf, restart, 1200, seed)
    what = f"formula 5, T_s={work:g}, tau={every:g}, C={cost:g}, M={mtbf:g}, R={restart:g}"
    assert_near(sample, theory, what)


def test_daly_optimum_on_a_grid() -> None:
    """Over a grid of intervals, the simulated optimum is the grid point nearest Young's and
    Daly's optimum, and it beats both neighbours by more than 3 standard errors of the paired
    difference (the same crash times for every interval)."""
    work, cost, mtbf, restart = 600.0, 5.0, 300.0, 10.0
    grid = (10.0, 25.0, 50.0, 100.0, 200.0)
    best = daly_interval(cost, mtbf)
    assert 45.0 < best < young_interval(cost, mtbf) < 60.0  # 51.5 and 54.8
    theory = [daly_expected_time(work, tau, cost, mtbf, restart) for tau in grid]
    runs = [checkpointed(work, tau, cost, mtbf, restart, 600, 56) for tau in grid]
    means = [float(r.mean()) for r in runs]
    table = ", ".join(
        f"tau={tau:g}: {m:.1f} ± {standard_error(r):.1f} vs {t:.1f}"
        for tau, m, r, t in zip(grid, means, runs, theory, strict=True)
    )
    log.info(
        "formula 5 grid (Daly tau_opt %.1f, Young %.1f): %s",
        best,
        young_interval(cost, mtbf),
        table,
    )
    i = int(np.argmin(means))
    assert i == int(np.argmin(theory)) == 2, f"simulated optimum at tau={grid[i]:g}: {table}"
    for j in (i - 1, i + 1):
        diff = runs[j] - runs[i]
        se = standard_error(diff)
        assert diff.mean() > Z * se, (
            f"tau={grid[j]:g} is not clearly worse than tau={grid[i]:g}: "
            f"paired difference {diff.mean():.1f} ± {se:.1f}; {table}"
        )
