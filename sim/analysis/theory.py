"""Closed forms the simulator must reproduce (docs/closed-forms.md).

Every function here is pure: plain floats in, a float out, no randomness and no simulator state.
Durations are seconds, rates are per second. Notation follows docs/closed-forms.md: ``L`` job
length, ``lambda`` the rate of a Poisson deploy (or crash) process and ``M = 1/lambda``, ``P`` a
fixed deploy period, ``K`` the grace before a hard kill, ``D`` the downtime after a kill, ``C`` the
checkpoint cost, ``R`` the restart cost and ``T_s`` the failure-free work. ``E[T]`` is the
expected wall time from the first start of a job to its completion. A negative, non-finite or
otherwise impossible argument raises ``deploysim.sim.errors.SimError`` naming the argument.

One lemma carries formulas 1, 2 and 4. For ``X ~ Exp(lambda)`` and ``a >= 0``,
``E[X; X < a] = (1 - e^(-lambda a))/lambda - a e^(-lambda a)``. If attempts fail independently
with probability ``1 - e^(-lambda a)``, the expected number of failed attempts is
``e^(lambda a) - 1`` and the expected time they spend running is
``(e^(lambda a) - 1) E[X | X < a] = (e^(lambda a) - 1)/lambda - a``.

References:
    Young, J. W. (1974). A first order approximation to the optimum checkpoint interval.
    Communications of the ACM 17(9), 530-531.

    Daly, J. T. (2006). A higher order estimate of the optimum checkpoint interval for restart
    dumps. Future Generation Computer Systems 22(3), 303-312.

    Kulkarni, V. G., Nicola, V. F. and Trivedi, K. S. (1987). The completion time of a job on
    multimode systems. Advances in Applied Probability 19(4), 932-954.

    Asmussen, S., Fiorini, P., Lipsky, L., Rolski, T. and Sheahan, R. (2008). Asymptotic
    behavior of total times for jobs that must start over if a failure occurs. Mathematics of
    Operations Research 33(4), 932-944.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

import numpy as np
from scipy import stats

from ..errors import SimError

__all__ = [
    "LengthDistribution",
    "completion_theory",
    "daly_expected_time",
    "daly_interval",
    "mean_ci95",
    "periodic_expected_time",
    "periodic_first_attempt_completes",
    "restart_different_expected_time",
    "restart_different_expected_time_for",
    "restart_expected_time",
    "restart_identical_expected_time",
    "restart_identical_expected_time_for",
    "standard_error",
    "wait_kill_expected_time",
    "young_interval",
]


class LengthDistribution(Protocol):
    """A job-length distribution that knows its transforms (duck-typed).

    ``mgf(s) = E[e^(s L)]`` (may be ``inf``, e.g. lognormal or Pareto for any ``s > 0``) and
    ``laplace(s) = E[e^(-s L)]``. The ``*_for`` functions call only the method they need.
    """

    def mgf(self, s: float) -> float:
        """Return ``E[e^(s L)]``."""
        ...

    def laplace(self, s: float) -> float:
        """Return ``E[e^(-s L)]``."""
        ...


def _nonneg(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise SimError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise SimError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _expm1_over(x: float, rate: float) -> float:
    """``(e^(rate x) - 1)/rate`` without cancellation or underflow, ``inf`` on overflow."""
    y = rate * x
    if y < 1e-10:
        return x * (1.0 + 0.5 * y)
    try:
        return x * (math.expm1(y) / y)
    except OverflowError:
        return math.inf


# -- 1. restart from scratch, fixed length ------------------------------------------------------


def restart_expected_time(length: float, rate: float, downtime: float = 0.0) -> float:
    """Expected completion time of a fixed-length job restarted from scratch at every deploy.

    ``E[T] = (e^(lambda L) - 1)(1/lambda + E[D])`` (docs/closed-forms.md, formula 1; the classic
    preemptive-repeat result, Kulkarni, Nicola and Trivedi 1987). Assumes Poisson deploys of
    rate ``lambda``, a restart of the whole job after each one, and a downtime of mean ``E[D]``
    (``downtime``) after each kill during which deploys do not matter. The limit
    ``lambda -> 0`` is ``L`` and is returned exactly at ``rate == 0``; overflow gives ``inf``.

    Derivation: an attempt fails iff the next deploy ``X`` comes before ``L``, so by the module
    lemma the failed attempts take ``(e^(lambda L) - 1)/lambda - L`` plus
    ``(e^(lambda L) - 1) E[D]`` of downtime, and the last attempt takes ``L``.
    """
    length = _nonneg("length", length)
    rate = _nonneg("rate", rate)
    downtime = _nonneg("downtime", downtime)
    grow = _expm1_over(length, rate)
    return grow * (1.0 + rate * downtime) if math.isfinite(grow) else math.inf


# -- 2. restart from scratch, random length -----------------------------------------------------


def restart_identical_expected_time(
    mgf_at_rate: float, rate: float, downtime: float = 0.0
) -> float:
    """Expected completion time under preemptive-repeat-identical with a random length ``L``.

    ``E[T] = (E[e^(lambda L)] - 1)(1/lambda + E[D])`` (docs/closed-forms.md, formula 2; Kulkarni,
    Nicola and Trivedi 1987; Asmussen et al. 2008): formula 1 averaged over ``L``, each restart
    repeating the SAME length. ``mgf_at_rate`` is ``E[e^(lambda L)]``; it is infinite for
    lognormal and Pareto lengths and for exponential lengths of mean ``>= 1/lambda``, and then so
    is ``E[T]``. Needs ``rate > 0`` (at ``rate == 0``, ``E[T] = E[L]``, which the transform value
    alone does not give).
    """
    rate = _positive("rate", rate)
    downtime = _nonneg("downtime", downtime)
    mgf_at_rate = float(mgf_at_rate)
    if math.isnan(mgf_at_rate) or mgf_at_rate < 1.0:
        raise SimError(
            f"mgf_at_rate must be E[e^(rate L)] >= 1 for a length L >= 0, got {mgf_at_rate!r}"
        )
    if math.isinf(mgf_at_rate):
        return math.inf
    return (mgf_at_rate - 1.0) * (1.0 / rate + downtime)


def restart_different_expected_time(
    laplace_at_rate: float, rate: float, downtime: float = 0.0
) -> float:
    """Expected completion time under preemptive-repeat-different with a random length ``L``.

    ``E[T] = (1/E[e^(-lambda L)] - 1)(1/lambda + E[D])`` (docs/closed-forms.md, formula 2; Kulkarni,
    Nicola and Trivedi 1987). Each restart draws a NEW independent length, so an attempt
    succeeds with probability ``p = E[e^(-lambda L)]`` and the time of any attempt is
    ``min(X, L)`` with ``E[min(X, L)] = (1 - p)/lambda``. ``laplace_at_rate`` is
    ``E[e^(-lambda L)]`` in ``(0, 1]``; ``0`` gives ``inf``. Needs ``rate > 0``.
    """
    rate = _positive("rate", rate)
    downtime = _nonneg("downtime", downtime)
    laplace_at_rate = float(laplace_at_rate)
    if not 0.0 <= laplace_at_rate <= 1.0:
        raise SimError(f"laplace_at_rate must be E[e^(-rate L)] in [0, 1], got {laplace_at_rate!r}")
    if laplace_at_rate == 0.0:
        return math.inf
    return (1.0 / laplace_at_rate - 1.0) * (1.0 / rate + downtime)


def restart_identical_expected_time_for(
    distribution: LengthDistribution, rate: float, downtime: float = 0.0
) -> float:
    """``restart_identical_expected_time(distribution.mgf(rate), rate, downtime)`` (formula 2)."""
    return restart_identical_expected_time(distribution.mgf(rate), rate, downtime)


def restart_different_expected_time_for(
    distribution: LengthDistribution, rate: float, downtime: float = 0.0
) -> float:
    """``restart_different_expected_time(distribution.laplace(rate), rate, downtime)`` (2)."""
    return restart_different_expected_time(distribution.laplace(rate), rate, downtime)


# -- 3. periodic deploys ------------------------------------------------------------------------


def periodic_first_attempt_completes(length: float, period: float) -> float:
    """Probability that a job started at a uniform phase finishes before the next deploy.

    ``max(0, 1 - L/P)`` (docs/closed-forms.md, formula 3). Deploys every ``P`` seconds exactly;
    the time to the next deploy ``V`` is uniform on ``(0, P]`` and the attempt completes iff
    ``V >= L``.
    Assumes no grace: a deploy stops the attempt at once.
    """
    length = _nonneg("length", length)
    period = _positive("period", period)
    return max(0.0, 1.0 - length / period)


def periodic_expected_time(length: float, period: float) -> float:
    """Expected completion time under periodic deploys with a restart at each deploy.

    ``E[T] = L + L^2/(2P)`` for ``L <= P``, ``inf`` for ``L > P`` (livelock) (docs/closed-forms.md
    formula 3). Assumes deploys exactly every ``P`` seconds, a job started at a phase uniform
    over the period, no grace, and a restart at the deploy instant with no downtime.

    Derivation: the time to the next deploy ``V`` is uniform on ``(0, P]``. If ``V >= L`` the job
    ends at ``L``. Otherwise it wastes ``V``, restarts exactly on a deploy and has a whole
    period ``P >= L`` ahead, so it ends at ``V + L``. Hence
    ``E[T] = L + E[V; V < L] = L + (1/P) int_0^L v dv = L + L^2/(2P)``. For ``L > P`` no attempt
    ever has ``L`` seconds between deploys. With a grace ``K`` before a kill (not covered here)
    a fresh job still finishes with probability ``max(0, 1 - (L - K)/P)`` when ``L > P``;
    only the restarted attempts, which get exactly ``P`` each, are livelocked.
    """
    length = _nonneg("length", length)
    period = _positive("period", period)
    if length > period:
        return math.inf
    return length + length * length / (2.0 * period)


# -- 4. wait with hard kill, then requeue -------------------------------------------------------


def wait_kill_expected_time(
    length: float, rate: float, grace: float, downtime: float = 0.0
) -> float:
    """Expected completion time when a deploy waits ``K`` for the job, then kills and requeues it.

    ``E[T] = (e^(lambda (L-K)+) - 1)(1/lambda + K + E[D]) + min(L, K)``
    (docs/closed-forms.md, formula 4, which has ``E[D] = 0``). Assumes Poisson deploys of rate
    ``lambda``; a deploy at time ``t``
    into an attempt lets it finish if the remaining work ``L - t <= K`` and otherwise kills it at
    ``t + K``; deploys during a grace period change nothing; the job restarts from scratch after
    the kill plus a downtime of mean ``E[D]`` (``downtime``), and the deploys of the next attempt
    are again Poisson (true of a Poisson process after any stopping time).

    Derivation (exact under these assumptions): with ``a = (L - K)+`` an attempt fails iff its
    first deploy ``X < a``, and a failed attempt lasts ``X + K + D``. By the module lemma,
    ``E[T] = (e^(lambda a) - 1)/lambda - a + (e^(lambda a) - 1)(K + E[D]) + L``, and
    ``L - a = min(L, K)``. ``K = 0`` gives formula 1; ``K >= L`` gives ``L``; ``E[T]`` decreases
    in ``K`` (derivative ``-lambda (K + E[D]) e^(lambda (L-K))`` for ``K < L``).
    """
    length = _nonneg("length", length)
    rate = _nonneg("rate", rate)
    grace = _nonneg("grace", grace)
    downtime = _nonneg("downtime", downtime)
    exposed = max(length - grace, 0.0)
    grow = _expm1_over(exposed, rate)
    if not math.isfinite(grow):
        return math.inf
    return grow * (1.0 + rate * (grace + downtime)) - exposed + length


# -- 5. checkpointing ---------------------------------------------------------------------------


def young_interval(checkpoint_cost: float, mtbf: float) -> float:
    """Young's first-order optimum checkpoint interval ``tau = sqrt(2 C M)`` (Young 1974).

    Assumes Poisson failures of mean time between failures ``M`` and a checkpoint cost ``C``
    small against ``M``; the interval counts work between checkpoints.
    """
    checkpoint_cost = _nonneg("checkpoint_cost", checkpoint_cost)
    mtbf = _positive("mtbf", mtbf)
    return math.sqrt(2.0 * checkpoint_cost * mtbf)


def daly_interval(checkpoint_cost: float, mtbf: float) -> float:
    """Daly's higher-order optimum checkpoint interval (Daly 2006).

    ``tau = sqrt(2 C M)[1 + (1/3) sqrt(C/(2M)) + (1/9)(C/(2M))] - C`` for ``C < 2M``, else
    ``tau = M``. An expansion of the minimiser of ``daly_expected_time`` in ``C/M``; it tends to
    Young's ``sqrt(2 C M)`` as ``C/M -> 0``. The two branches do not meet at ``C = 2M``
    (``8M/9`` against ``M``), as in the paper.
    """
    checkpoint_cost = _nonneg("checkpoint_cost", checkpoint_cost)
    mtbf = _positive("mtbf", mtbf)
    if checkpoint_cost >= 2.0 * mtbf:
        return mtbf
    x = checkpoint_cost / (2.0 * mtbf)
    return (
        math.sqrt(2.0 * checkpoint_cost * mtbf) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0)
        - checkpoint_cost
    )


def daly_expected_time(
    work: float,
    interval: float,
    checkpoint_cost: float,
    mtbf: float,
    restart_cost: float = 0.0,
) -> float:
    """Daly's expected wall time of checkpointed work (Daly 2006).

    ``T_w = M e^(R/M) (e^((tau + C)/M) - 1) T_s/tau``. Assumes Poisson failures of mean time
    between failures ``M``; the work ``T_s`` is cut into ``T_s/tau`` segments of ``tau`` work,
    each ended by a checkpoint of cost ``C`` (the last one too); a failure loses the segment in
    hand, and recovery then needs ``R + tau + C`` without a failure, a failure during the
    restart ``R`` starting the restart again. Per segment the expected time is then exactly
    ``M e^(R/M)(e^((tau + C)/M) - 1)``; the formula is exact when ``T_s/tau`` is an integer and
    scales a last partial segment linearly otherwise. With ``tau = T_s`` and ``C = R = 0`` it is
    formula 1, ``M (e^(T_s/M) - 1)``. With ``R > 0`` it exceeds formula 1 with ``D = R``
    (``M e^(R/M) >= M + R``) because formula 1's downtime cannot be interrupted.
    """
    work = _nonneg("work", work)
    interval = _positive("interval", interval)
    checkpoint_cost = _nonneg("checkpoint_cost", checkpoint_cost)
    mtbf = _positive("mtbf", mtbf)
    restart_cost = _nonneg("restart_cost", restart_cost)
    try:
        per_segment = (
            mtbf * math.exp(restart_cost / mtbf) * math.expm1((interval + checkpoint_cost) / mtbf)
        )
    except OverflowError:
        return math.inf if work > 0.0 else 0.0
    return per_segment * work / interval


# -- statistics for comparing simulation with theory --------------------------------------------


def _as_array(samples: Iterable[float]) -> np.ndarray:
    return np.asarray(samples if isinstance(samples, np.ndarray) else list(samples), dtype=float)


def standard_error(samples: Iterable[float]) -> float:
    """Standard error of the mean, ``s / sqrt(n)`` with the sample deviation ``s`` (ddof 1).

    Assumes independent samples of finite variance; needs ``n >= 2``.
    """
    values = _as_array(samples)
    if values.size < 2:
        raise SimError(f"samples must hold at least 2 values, got {values.size}")
    return float(values.std(ddof=1) / math.sqrt(values.size))


def mean_ci95(samples: Iterable[float]) -> tuple[float, float, float]:
    """Sample mean and two-sided 95% Student-t interval: ``(mean, lo, hi)``.

    ``mean -/+ t_{0.975, n-1} s/sqrt(n)``; assumes independent samples with a mean close enough
    to normal (central limit theorem). Needs ``n >= 2``.
    """
    values = _as_array(samples)
    if values.size < 2:
        raise SimError(f"samples must hold at least 2 values, got {values.size}")
    mean = float(values.mean())
    # written out: stats.t.interval gives (nan, nan) for identical samples (a zero scale)
    half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half


def completion_theory(strategy: str, length: float, period: float, grace: float,
                      timeout: float) -> float | None:
    """The closed-form completion rate of a job of ``length`` started at a uniform phase of
    periodic deploys of ``period`` (docs/closed-forms.md, formula 3), or None for strategies
    without one.

    Wait with a kill (Resque, Celery): the job completes iff the next deploy leaves it at most
    ``grace`` of work, ``max(0, 1 - (L - K)/P)``. Restart (Sidekiq): every job with
    ``E[T] = L + L^2/(2P)`` finite (``L <= P``) completes in the end; a longer one only if its
    first attempt does, with ``K`` its ``timeout``, and never after that (livelock).
    """
    if strategy in ("resque", "celery"):
        return periodic_first_attempt_completes(max(length - grace, 0.0), period)
    if strategy == "sidekiq":
        if math.isfinite(periodic_expected_time(length, period)):
            return 1.0
        return periodic_first_attempt_completes(max(length - min(timeout, grace), 0.0), period)
    return None
