"""The closed forms of ``sim.theory``: limits, special cases, and small Monte Carlo models.

The Monte Carlo models here are independent of the simulator: vectorised numpy over many jobs,
each job with its own Poisson stream of deploys (or crashes) drawn as one timeline, so a restart
sees the deploys that really follow it rather than a freshly drawn gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from deploysim.sim.analysis.theory import (
    daly_expected_time,
    daly_interval,
    mean_ci95,
    periodic_expected_time,
    periodic_first_attempt_completes,
    restart_different_expected_time,
    restart_different_expected_time_for,
    restart_expected_time,
    restart_identical_expected_time,
    restart_identical_expected_time_for,
    standard_error,
    wait_kill_expected_time,
    young_interval,
)
from deploysim.sim.errors import SimError

N = 40_000


# -- length distributions (duck-typed: mgf and laplace) -----------------------------------------


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def mgf(self, s: float) -> float:
        return math.exp(s * self.value)

    def laplace(self, s: float) -> float:
        return math.exp(-s * self.value)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)


class Uniform:
    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def mgf(self, s: float) -> float:
        return (math.exp(s * self.high) - math.exp(s * self.low)) / (s * (self.high - self.low))

    def laplace(self, s: float) -> float:
        return self.mgf(-s)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)


class Exponential:
    def __init__(self, mean: float) -> None:
        self.mean = mean

    def mgf(self, s: float) -> float:
        return math.inf if s * self.mean >= 1.0 else 1.0 / (1.0 - s * self.mean)

    def laplace(self, s: float) -> float:
        return 1.0 / (1.0 + s * self.mean)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)


# -- Monte Carlo machinery ----------------------------------------------------------------------


class Streams:
    """One Poisson event timeline per job, extended on demand."""

    def __init__(self, rng: np.random.Generator, n: int, rate: float, width: int = 16) -> None:
        self.rng, self.rate = rng, rate
        self.times = np.cumsum(rng.exponential(1.0 / rate, (n, width)), axis=1)
        self.idx = np.zeros(n, dtype=np.intp)

    def _extend(self) -> None:
        n, width = self.times.shape
        more = self.times[:, -1:] + np.cumsum(self.rng.exponential(1.0 / self.rate, (n, width)), 1)
        self.times = np.concatenate([self.times, more], axis=1)

    def next_after(self, rows: np.ndarray, when: np.ndarray) -> np.ndarray:
        """The first event strictly after ``when`` on each of ``rows`` (times only increase)."""
        while True:
            if self.idx[rows].max(initial=0) >= self.times.shape[1]:
                self._extend()
            t = self.times[rows, self.idx[rows]]
            behind = t <= when
            if not behind.any():
                return t
            self.idx[rows[behind]] += 1


def agree(samples: np.ndarray, expected: float, k: float = 3.0) -> None:
    mean = float(samples.mean())
    se = standard_error(samples)
    assert abs(mean - expected) <= k * se, f"mean {mean:.5g} vs theory {expected:.5g}, se {se:.3g}"


def simulate_restart(
    rng: np.random.Generator,
    rate: float,
    draw_length: Callable[[int], np.ndarray],
    *,
    same_length: bool = True,
    grace: float = 0.0,
    draw_downtime: Callable[[int], np.ndarray] | None = None,
    n: int = N,
) -> np.ndarray:
    """Completion times of jobs under Poisson deploys: wait up to ``grace`` for the job to finish,
    else kill it at deploy + grace and restart it after a downtime (deploys meanwhile ignored)."""
    deploys = Streams(rng, n, rate)
    length = draw_length(n)
    start = np.zeros(n)
    done = np.full(n, np.nan)
    active = np.arange(n)
    while active.size:
        d = deploys.next_after(active, start[active])
        end = start[active] + length[active]
        ok = end - d <= grace  # no deploy before the end, or the rest fits in the grace period
        done[active[ok]] = end[ok]
        failed = active[~ok]
        restart = d[~ok] + grace
        if draw_downtime is not None:
            restart = restart + draw_downtime(failed.size)
        start[failed] = restart
        if not same_length:
            length[failed] = draw_length(failed.size)
        active = failed
    return done


# -- formula 1 ----------------------------------------------------------------------------------


def test_restart_small_rate_limit() -> None:
    assert restart_expected_time(120.0, 0.0) == 120.0
    assert restart_expected_time(120.0, 0.0, downtime=30.0) == 120.0
    lam = 1e-9
    assert restart_expected_time(120.0, lam) == pytest.approx(120.0 + lam * 120.0**2 / 2, 1e-12)
    assert restart_expected_time(0.0, 0.5, downtime=10.0) == 0.0


def test_restart_known_values_and_overflow() -> None:
    assert restart_expected_time(1.0, 1.0) == pytest.approx(math.e - 1.0)
    assert restart_expected_time(2.0, 0.5, downtime=3.0) == pytest.approx((math.e - 1) * 5.0)
    assert restart_expected_time(1e6, 1.0) == math.inf
    assert restart_expected_time(1e6, 1.0, downtime=1.0) == math.inf


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.0, 500.0),
    st.floats(0.0, 500.0),
    st.floats(0.0, 0.05),
    st.floats(0.0, 0.05),
    st.floats(0.0, 100.0),
)
def test_restart_monotone(l1: float, l2: float, r1: float, r2: float, d: float) -> None:
    (l1, l2), (r1, r2) = sorted((l1, l2)), sorted((r1, r2))
    tol = 1e-9
    assert restart_expected_time(l1, r1, d) <= restart_expected_time(l2, r1, d) * (1 + tol)
    assert restart_expected_time(l1, r1, d) <= restart_expected_time(l1, r2, d) * (1 + tol)
    assert restart_expected_time(l1, r1, 0.0) <= restart_expected_time(l1, r1, d) * (1 + tol)
    assert restart_expected_time(l1, r1, d) >= l1 * (1 - tol)


def test_restart_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    length, rate, mean_down = 60.0, 1.0 / 50.0, 15.0
    done = simulate_restart(
        rng, rate, lambda n: np.full(n, length), draw_downtime=lambda n: rng.exponential(15.0, n)
    )
    agree(done, restart_expected_time(length, rate, downtime=mean_down))


# -- formula 2 ----------------------------------------------------------------------------------


def test_random_length_reduces_to_fixed() -> None:
    fixed = Fixed(40.0)
    expected = restart_expected_time(40.0, 0.02, 5.0)
    assert restart_identical_expected_time_for(fixed, 0.02, 5.0) == pytest.approx(expected)
    assert restart_different_expected_time_for(fixed, 0.02, 5.0) == pytest.approx(expected)


def test_identical_exponential_length() -> None:
    lam, mean = 0.01, 25.0
    expected = lam * mean / (1 - lam * mean) * (1 / lam + 4.0)
    assert restart_identical_expected_time_for(Exponential(mean), lam, 4.0) == pytest.approx(
        expected
    )
    assert restart_identical_expected_time_for(Exponential(100.0), lam) == math.inf
    assert restart_identical_expected_time_for(Exponential(500.0), lam) == math.inf
    # repeat-different stays finite: 1/E[e^(-lam L)] - 1 = lam * mean
    assert restart_different_expected_time_for(Exponential(500.0), lam) == pytest.approx(500.0)


@pytest.mark.parametrize("dist", [Uniform(0.0, 80.0), Exponential(30.0), Uniform(20.0, 21.0)])
def test_identical_at_least_different(dist: Uniform | Exponential) -> None:
    # E[e^(lam L)] E[e^(-lam L)] >= 1 (Cauchy-Schwarz), equality for a fixed length only
    lam = 0.015
    ident = restart_identical_expected_time_for(dist, lam, 2.0)
    diff = restart_different_expected_time_for(dist, lam, 2.0)
    assert ident >= diff


def test_random_length_argument_checks() -> None:
    with pytest.raises(SimError, match="mgf_at_rate"):
        restart_identical_expected_time(0.5, 0.1)
    with pytest.raises(SimError, match="laplace_at_rate"):
        restart_different_expected_time(1.5, 0.1)
    with pytest.raises(SimError, match="rate"):
        restart_identical_expected_time(1.5, 0.0)
    assert restart_different_expected_time(0.0, 0.1) == math.inf


@pytest.mark.parametrize("dist", [Uniform(10.0, 110.0), Exponential(12.0)])
def test_identical_monte_carlo(dist: Uniform | Exponential) -> None:
    rng = np.random.default_rng(2)
    rate = 1.0 / 80.0  # exponential: 4 lambda E[L] < 1, so the sample variance settles
    done = simulate_restart(
        rng, rate, lambda n: dist.sample(rng, n), draw_downtime=lambda n: np.full(n, 5.0)
    )
    agree(done, restart_identical_expected_time_for(dist, rate, 5.0))


@pytest.mark.parametrize("dist", [Uniform(10.0, 110.0), Exponential(60.0)])
def test_different_monte_carlo(dist: Uniform | Exponential) -> None:
    rng = np.random.default_rng(3)
    rate = 1.0 / 80.0
    done = simulate_restart(
        rng,
        rate,
        lambda n: dist.sample(rng, n),
        same_length=False,
        draw_downtime=lambda n: rng.uniform(0.0, 10.0, n),
    )
    agree(done, restart_different_expected_time_for(dist, rate, 5.0))


# -- formula 3 ----------------------------------------------------------------------------------


def simulate_periodic(
    rng: np.random.Generator, length: float, period: float, attempts: int = 20, n: int = N
) -> tuple[np.ndarray, np.ndarray]:
    """Completion times (nan if none within ``attempts``) and first-attempt success flags."""
    deploy = period - rng.uniform(0.0, period, n)  # the first deploy after a uniform-phase start
    start = np.zeros(n)
    done = np.full(n, np.nan)
    first_ok = np.zeros(n, dtype=bool)
    for attempt in range(attempts):
        active = np.isnan(done)
        ok = active & (start + length <= deploy)
        done[ok] = start[ok] + length
        if attempt == 0:
            first_ok = ok.copy()
        restart = active & ~ok
        start[restart] = deploy[restart]
        deploy[restart] += period
    return done, first_ok


def test_periodic_special_values() -> None:
    assert periodic_expected_time(0.0, 60.0) == 0.0
    assert periodic_expected_time(60.0, 60.0) == pytest.approx(90.0)
    assert periodic_expected_time(60.001, 60.0) == math.inf
    assert periodic_first_attempt_completes(15.0, 60.0) == pytest.approx(0.75)
    assert periodic_first_attempt_completes(90.0, 60.0) == 0.0
    grid = np.linspace(0.0, 60.0, 31)
    values = [periodic_expected_time(x, 60.0) for x in grid]
    assert np.all(np.diff(values) > 0)


@pytest.mark.parametrize("length", [10.0, 45.0, 100.0])
def test_periodic_monte_carlo(length: float) -> None:
    rng = np.random.default_rng(4)
    period = 100.0
    done, first_ok = simulate_periodic(rng, length, period)
    p = periodic_first_attempt_completes(length, period)
    assert abs(first_ok.mean() - p) <= 3 * math.sqrt(p * (1 - p) / first_ok.size) + 1e-12
    assert not np.isnan(done).any()
    agree(done, periodic_expected_time(length, period))


def test_periodic_livelock_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    done, first_ok = simulate_periodic(rng, 100.5, 100.0, attempts=50, n=2_000)
    assert np.isnan(done).all() and not first_ok.any()
    assert periodic_expected_time(100.5, 100.0) == math.inf


# -- formula 4 ----------------------------------------------------------------------------------


def test_wait_kill_special_cases() -> None:
    lam = 1.0 / 300.0
    for length in (0.0, 10.0, 200.0, 900.0):
        assert wait_kill_expected_time(length, lam, 0.0) == pytest.approx(
            restart_expected_time(length, lam)
        )
        assert wait_kill_expected_time(length, lam, 0.0, downtime=7.0) == pytest.approx(
            restart_expected_time(length, lam, downtime=7.0)
        )
        assert wait_kill_expected_time(length, lam, length) == pytest.approx(length)
        assert wait_kill_expected_time(length, lam, length + 30.0) == pytest.approx(length)
    assert wait_kill_expected_time(500.0, 0.0, 25.0) == 500.0
    assert wait_kill_expected_time(1e6, 1.0, 25.0) == math.inf


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 2_000.0), st.floats(1e-4, 0.01), st.floats(0.0, 500.0), st.floats(0, 500))
def test_wait_kill_decreases_with_grace(length: float, rate: float, k1: float, k2: float) -> None:
    k1, k2 = sorted((k1, k2))
    assert wait_kill_expected_time(length, rate, k2) <= wait_kill_expected_time(
        length, rate, k1
    ) * (1 + 1e-9)
    assert wait_kill_expected_time(length, rate, k1) >= length * (1 - 1e-9)


@pytest.mark.parametrize(("length", "grace", "downtime"), [(90.0, 25.0, 0.0), (60.0, 40.0, 8.0)])
def test_wait_kill_monte_carlo(length: float, grace: float, downtime: float) -> None:
    rng = np.random.default_rng(6)
    rate = 1.0 / 40.0
    done = simulate_restart(
        rng,
        rate,
        lambda n: np.full(n, length),
        grace=grace,
        draw_downtime=lambda n: rng.exponential(downtime, n) if downtime else np.zeros(n),
    )
    agree(done, wait_kill_expected_time(length, rate, grace, downtime=downtime))


# -- formula 5 ----------------------------------------------------------------------------------


def test_young_and_daly_values() -> None:
    assert young_interval(10.0, 3600.0) == pytest.approx(math.sqrt(72_000.0))
    assert daly_interval(8000.0, 3600.0) == 3600.0
    assert daly_interval(7200.0, 3600.0) == 3600.0
    c, m = 60.0, 3600.0
    x = c / (2 * m)
    assert daly_interval(c, m) == pytest.approx(
        math.sqrt(2 * c * m) * (1 + math.sqrt(x) / 3 + x / 9) - c
    )


@pytest.mark.parametrize("ratio", [1e-6, 1e-4, 1e-2])
def test_daly_close_to_young_for_small_cost(ratio: float) -> None:
    m = 86_400.0
    young, daly = young_interval(ratio * m, m), daly_interval(ratio * m, m)
    assert abs(daly / young - 1) < 2 * math.sqrt(ratio)


@pytest.mark.parametrize("ratio", [1e-4, 1e-3, 1e-2, 0.1])
def test_daly_interval_nearly_minimises_daly_time(ratio: float) -> None:
    m, work, r = 3600.0, 100 * 3600.0, 120.0
    c = ratio * m

    def wall(tau: float) -> float:
        return daly_expected_time(work, tau, c, m, r)

    best = optimize.minimize_scalar(wall, bounds=(1e-3, 10 * m), method="bounded")
    assert wall(daly_interval(c, m)) <= best.fun * (1 + 1e-3)
    assert wall(daly_interval(c, m)) <= wall(young_interval(c, m)) * (1 + 1e-12)


@pytest.mark.parametrize(("work", "mtbf"), [(60.0, 50.0), (1.0, 1e6), (3600.0, 600.0)])
def test_daly_reduces_to_formula_1(work: float, mtbf: float) -> None:
    assert daly_expected_time(work, work, 0.0, mtbf) == pytest.approx(
        restart_expected_time(work, 1.0 / mtbf), rel=1e-12
    )


def test_daly_monotone_in_costs() -> None:
    base = daly_expected_time(1000.0, 100.0, 5.0, 500.0, 10.0)
    assert daly_expected_time(1000.0, 100.0, 6.0, 500.0, 10.0) > base
    assert daly_expected_time(1000.0, 100.0, 5.0, 500.0, 11.0) > base
    assert daly_expected_time(1000.0, 100.0, 5.0, 400.0, 10.0) > base
    assert daly_expected_time(0.0, 100.0, 5.0, 500.0, 10.0) == 0.0


def test_daly_restart_cost_exceeds_uninterruptible_downtime() -> None:
    # Daly's restart can itself fail: M e^(R/M) >= M + R
    assert daly_expected_time(300.0, 300.0, 0.0, 200.0, 50.0) > restart_expected_time(
        300.0, 1 / 200.0, downtime=50.0
    )


def simulate_checkpoints(
    rng: np.random.Generator,
    work: float,
    interval: float,
    cost: float,
    mtbf: float,
    restart: float,
    n: int = N,
) -> np.ndarray:
    """Wall times of ``work/interval`` segments, each ``interval + cost`` long; after a failure
    the restart ``restart`` and the segment must run without failure (a failure restarts it)."""
    segments = round(work / interval)
    failures = Streams(rng, n, 1.0 / mtbf)
    t = np.zeros(n)
    need = np.full(n, interval + cost)
    left = np.full(n, segments)
    active = np.arange(n)
    while active.size:
        f = failures.next_after(active, t[active])
        ok = f >= t[active] + need[active]
        good, bad = active[ok], active[~ok]
        t[good] += need[good]
        need[good] = interval + cost
        left[good] -= 1
        t[bad] = f[~ok]
        need[bad] = restart + interval + cost
        active = active[left[active] > 0]
    return t


@pytest.mark.parametrize(
    ("work", "interval", "cost", "restart"), [(80.0, 20.0, 5.0, 10.0), (90.0, 90.0, 0.0, 0.0)]
)
def test_daly_monte_carlo(work: float, interval: float, cost: float, restart: float) -> None:
    rng = np.random.default_rng(7)
    mtbf = 100.0
    wall = simulate_checkpoints(rng, work, interval, cost, mtbf, restart)
    agree(wall, daly_expected_time(work, interval, cost, mtbf, restart))


# -- statistics helpers and argument checks -----------------------------------------------------


def test_standard_error_and_ci() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    se = standard_error(data)
    assert se == pytest.approx(math.sqrt(5 / 3) / 2)
    mean, lo, hi = mean_ci95(np.array(data))
    assert mean == 2.5
    half = stats.t.ppf(0.975, 3) * se
    assert (lo, hi) == pytest.approx((2.5 - half, 2.5 + half))
    with pytest.raises(SimError, match="samples"):
        standard_error([1.0])


def test_ci_covers_the_mean_about_95_percent() -> None:
    rng = np.random.default_rng(8)
    draws = rng.exponential(2.0, (2_000, 30))
    covered = sum(lo <= 2.0 <= hi for _, lo, hi in map(mean_ci95, draws))
    assert 0.92 <= covered / 2_000 <= 0.97  # skewed data: t coverage a little under 95%


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: restart_expected_time(-1.0, 0.1), "length"),
        (lambda: restart_expected_time(1.0, -0.1), "rate"),
        (lambda: restart_expected_time(1.0, 0.1, math.nan), "downtime"),
        (lambda: periodic_expected_time(1.0, 0.0), "period"),
        (lambda: wait_kill_expected_time(1.0, 0.1, -5.0), "grace"),
        (lambda: young_interval(1.0, 0.0), "mtbf"),
        (lambda: daly_expected_time(1.0, 0.0, 1.0, 10.0), "interval"),
    ],
)
def test_bad_arguments_name_the_field(call: Callable[[], float], name: str) -> None:
    with pytest.raises(SimError, match=name):
        call()
