"""Fitting: a job-length law to measured durations, and a deploy rhythm to deploy times.

    fits = fit_lengths(durations)       # one LengthFit per law, best (lowest AIC) first
    best = best_fit(fits)               # the same as fits[0]; best_fit(durations) fits first
    best.as_length_table()              # {"kind": "lognormal", "median": "1m 3s", "sigma": 1.2}
    deploy_rate(timestamps)             # deploys per second
    deploys_table(timestamps)           # a scenario's [deploys] table

Each law (lognormal, exponential, Weibull, Pareto) is fitted by maximum likelihood (scipy's
``fit`` with ``loc`` held at 0, censored values passed as ``scipy.stats.CensoredData``), and judged
by its AIC (``2k - 2 ln L``, lower is better; it compares laws fitted to the same data) and by a
Kolmogorov-Smirnov test of the measured durations against the fitted law. Two kinds of values
are not plain measurements, and are used for what they say rather than dropped:

- A duration of 0 means the job took less than one tick of the clock that timed it: it is
  *left-censored* below ``resolution`` (by default the smallest positive duration measured).
- A duration marked ``censored`` is a lower bound: the job was killed by a timeout, or was still
  running when the data was exported. It is *right-censored*: the job ran at least that long.

The KS test is made on the exact (positive, uncensored) durations against the fitted law
restricted to the range they could fall in (above the resolution when there are zeros, below
the largest censored value when there are censored ones); that is exact for one timeout and one
clock tick, approximate otherwise. As usual when the parameters come from the same data, its
p-values are optimistic (Lilliefors), and they get small for any law once there are thousands
of durations: read the statistic (the largest gap between the two distribution functions) too.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from ..durations import format_duration, parse_duration
from ..errors import SimError
from ..scenario.lengths import Exponential, LengthDist, Lognormal, Pareto, Weibull

__all__ = [
    "FAMILIES",
    "LengthFit",
    "best_fit",
    "deploy_rate",
    "deploys_table",
    "fit_lengths",
]

#: The laws ``fit_lengths`` tries, by the ``kind`` a scenario file names them with.
FAMILIES = ("lognormal", "exponential", "weibull", "pareto")

DAY = 86400.0


# -- the laws, as scipy distributions -----------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """One law as a ``scipy.stats`` distribution with ``loc`` 0: its parameters as a scenario
    file names and orders them, and which of them is scipy's ``scale`` (the others are its
    shape parameters, in order)."""

    dist: Any
    names: tuple[str, ...]
    scale: str

    @property
    def shapes(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n != self.scale)

    def params(self, fitted: Sequence[float]) -> dict[str, float]:
        """Our parameters from scipy's ``(*shapes, loc, scale)``."""
        *shapes, _loc, scale = (float(v) for v in fitted)
        values = {**dict(zip(self.shapes, shapes, strict=True)), self.scale: scale}
        return {n: values[n] for n in self.names}

    def frozen(self, params: Mapping[str, float]) -> Any:
        """The scipy distribution at ``params``."""
        return self.dist(*(params[n] for n in self.shapes), loc=0.0, scale=params[self.scale])


_LAWS: Mapping[str, _Family] = {
    "lognormal": _Family(stats.lognorm, ("median", "sigma"), "median"),
    "exponential": _Family(stats.expon, ("mean",), "mean"),
    "weibull": _Family(stats.weibull_min, ("shape", "scale"), "scale"),
    "pareto": _Family(stats.pareto, ("alpha", "minimum"), "minimum"),
}

#: Parameters that are durations (written "1m 3s" in a scenario), the others are numbers.
_DURATION_PARAMS = frozenset({"median", "mean", "scale", "minimum"})


def _length_dist(name: str, p: Mapping[str, float], maximum: float | None) -> LengthDist:
    if name == "lognormal":
        return Lognormal(p["median"], p["sigma"])
    if name == "exponential":
        return Exponential(p["mean"])
    if name == "weibull":
        return Weibull(p["shape"], p["scale"])
    return Pareto(p["alpha"], p["minimum"], maximum)


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthFit:
    """One law fitted to durations: its ``params`` (named as in a scenario file, durations in
    seconds), the maximised ``log_likelihood``, ``aic``, and the KS ``ks_statistic`` and
    ``ks_pvalue``. ``n`` durations were used: ``n_zero`` of them 0 (below ``resolution``),
    ``n_censored`` of them lower bounds."""

    name: str
    params: Mapping[str, float]
    log_likelihood: float
    aic: float
    ks_statistic: float
    ks_pvalue: float
    n: int
    n_zero: int = 0
    n_censored: int = 0
    resolution: float | None = None
    _law: Any = field(repr=False, compare=False, default=None)  # the frozen scipy law

    def cdf(self, x: Any) -> np.ndarray:
        """P(L <= x) under the fitted law, for seconds ``x`` (vectorised)."""
        return np.asarray(self._law.cdf(np.asarray(x, dtype=float)), dtype=float)

    def law(self, maximum: float | None = None) -> LengthDist:
        """The fitted law as a length distribution of ``deploysim.sim.scenario.lengths``.
        ``maximum`` (seconds) truncates a Pareto law there (its mean is infinite for
        alpha <= 1); the other laws ignore it."""
        return _length_dist(self.name, self.params, maximum)

    def as_length_table(self, digits: int = 4, maximum: float | None = None) -> dict[str, Any]:
        """The ``length`` table of a scenario file, parameters rounded to ``digits``
        significant figures: ``{"kind": "lognormal", "median": "1m 3.24s", "sigma": 1.213}``.
        ``maximum`` (seconds) truncates a Pareto law, as in ``law``."""
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise SimError(f"digits: must be an integer >= 1, got {digits!r}")
        table: dict[str, Any] = {"kind": self.name}
        for name, value in self.params.items():
            rounded = float(f"{value:.{digits}g}")
            table[name] = format_duration(rounded) if name in _DURATION_PARAMS else rounded
        if self.name == "pareto" and maximum is not None:
            maximum = parse_duration(maximum, "maximum")
            if maximum <= self.params["minimum"]:
                raise SimError(
                    f"maximum: must be greater than the fitted minimum "
                    f"({format_duration(self.params['minimum'])}), got {format_duration(maximum)}"
                )
            table["maximum"] = format_duration(float(f"{maximum:.{digits}g}"))
        return table

    def describe(self, digits: int = 4) -> str:
        """One short line: the law and its parameters to ``digits`` significant figures."""
        rounded = {k: float(f"{v:.{digits}g}") for k, v in self.params.items()}
        return _length_dist(self.name, rounded, None).describe()


# -- fitting -------------------------------------------------------------------------------------


def _as_durations(durations: Iterable[Any], name: str) -> np.ndarray:
    if isinstance(durations, (str, bytes, Mapping)):
        raise SimError(f"{name}: give a sequence of durations in seconds, got {durations!r}")
    values = []
    for i, value in enumerate(durations):
        if isinstance(value, str):
            values.append(parse_duration(value, f"{name}[{i}]"))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise SimError(f"{name}[{i}]: {value!r} is not a duration; give seconds >= 0")
        number = float(value)
        if not math.isfinite(number):
            raise SimError(f"{name}[{i}]: {value!r} is not a finite number of seconds")
        if number < 0:
            raise SimError(f"{name}[{i}]: {value!r} is negative; a duration is >= 0 seconds")
        values.append(number)
    if not values:
        raise SimError(f"{name}: no durations to fit; give at least two")
    return np.asarray(values, dtype=float)


def _as_flags(censored: Iterable[Any] | None, n: int) -> np.ndarray:
    if censored is None:
        return np.zeros(n, dtype=bool)
    flags = []
    for i, value in enumerate(censored):
        if isinstance(value, (bool, np.bool_)) or value in (0, 1):
            flags.append(bool(value))
        else:
            raise SimError(f"censored[{i}]: must be true or false, got {value!r}")
    if len(flags) != n:
        raise SimError(f"censored: has {len(flags)} flags for {n} durations; give one per duration")
    return np.asarray(flags, dtype=bool)


@dataclass(frozen=True)
class _Data:
    exact: np.ndarray  # positive uncensored durations
    censored: np.ndarray  # lower bounds (right-censored)
    zeros: int  # durations of 0, left-censored below resolution
    resolution: float

    def sample(self) -> stats.CensoredData:
        return stats.CensoredData(uncensored=self.exact, right=self.censored,
                                  left=np.full(self.zeros, self.resolution))

    def log_likelihood(self, law: Any) -> float:
        total = float(np.sum(law.logpdf(self.exact)))
        if self.censored.size:
            total += float(np.sum(law.logsf(self.censored)))
        if self.zeros:
            total += self.zeros * float(law.logcdf(self.resolution))
        return total if math.isfinite(total) else -math.inf

    def ks_cdf(self, law: Any) -> Callable[[np.ndarray], np.ndarray]:
        """The law's CDF restricted to where an exact duration can fall."""
        lo = float(law.cdf(self.resolution)) if self.zeros else 0.0
        hi = float(law.cdf(self.censored.max())) if self.censored.size else 1.0
        span = hi - lo
        if not span > 0:
            return lambda x: np.where(np.asarray(x) >= self.exact.min(), 1.0, 0.0)
        return lambda x: np.clip((law.cdf(np.asarray(x, dtype=float)) - lo) / span, 0.0, 1.0)


def _fit_one(name: str, data: _Data) -> tuple[dict[str, float], Any, float]:
    """Maximum likelihood (scipy's ``fit``, ``loc`` held at 0): the parameters, the fitted
    scipy distribution and its log-likelihood."""
    family = _LAWS[name]
    try:
        with np.errstate(all="ignore"):
            params = family.params(family.dist.fit(data.sample(), floc=0))
    except (RuntimeError, ValueError):
        params = {}
    law = family.frozen(params) if params else None
    log_likelihood = data.log_likelihood(law) if law is not None else -math.inf
    if law is None or not math.isfinite(log_likelihood):
        raise SimError(f"durations: the {name} fit did not converge; check the data")
    return params, law, log_likelihood


def fit_lengths(
    durations: Iterable[Any],
    censored: Iterable[Any] | None = None,
    *,
    resolution: float | str | None = None,
    families: Sequence[str] = FAMILIES,
) -> list[LengthFit]:
    """Fit each law of ``families`` to ``durations`` (seconds, or strings such as "25s") by
    maximum likelihood; return the fits best first (lowest AIC).

    ``censored`` flags, one per duration, the durations that are lower bounds (a job killed by
    a timeout or still running). Zeros are read as "shorter than ``resolution``" (default: the
    smallest positive duration). Raises SimError for no durations, a negative or non-finite
    one, or fewer than two different exact positive durations.
    """
    values = _as_durations(durations, "durations")
    flags = _as_flags(censored, values.size)
    unknown = [f for f in families if f not in _LAWS]
    if unknown or not families:
        raise SimError(f"families: {unknown or 'none'}; choose from {', '.join(FAMILIES)}")
    zero = (values == 0) & ~flags
    exact = values[~flags & ~zero]
    if np.unique(exact).size < 2:
        raise SimError(
            f"durations: {exact.size} positive uncensored duration(s), "
            f"{np.unique(exact).size} different; a fit needs at least two different ones"
        )
    if resolution is None:
        tick = float(exact.min())
    else:
        tick = parse_duration(resolution, "resolution")
        if tick <= 0:
            raise SimError(f"resolution: must be > 0, e.g. '1ms', got {resolution!r}")
    data = _Data(exact, values[flags], int(zero.sum()), tick)

    fits = []
    for name in families:
        params, law, log_likelihood = _fit_one(name, data)
        ks = stats.kstest(exact, data.ks_cdf(law))
        fits.append(
            LengthFit(
                name=name,
                params=params,
                log_likelihood=log_likelihood,
                aic=2 * len(params) - 2 * log_likelihood,
                ks_statistic=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
                n=int(values.size),
                n_zero=data.zeros,
                n_censored=int(flags.sum()),
                resolution=tick if data.zeros else None,
                _law=law,
            )
        )
    return sorted(fits, key=lambda f: f.aic)


def best_fit(
    fits_or_durations: Iterable[Any],
    censored: Iterable[Any] | None = None,
    **kwargs: Any,
) -> LengthFit:
    """The fit with the lowest AIC: of a list of ``LengthFit``s, or of ``fit_lengths`` of
    durations (with the same ``censored``, ``resolution`` and ``families`` arguments)."""
    items = list(fits_or_durations)
    if items and all(isinstance(f, LengthFit) for f in items):
        if censored is not None or kwargs:
            raise SimError("best_fit: given fits, it takes no further arguments")
        return min(items, key=lambda f: f.aic)
    return fit_lengths(items, censored, **kwargs)[0]


# -- deploys -------------------------------------------------------------------------------------

_EPOCH = _dt.datetime(1970, 1, 1)


def _wall_seconds(timestamps: Iterable[Any], name: str) -> np.ndarray:
    """Seconds since 1970-01-01 00:00 on the clock the timestamps show, sorted."""
    if isinstance(timestamps, (str, bytes, Mapping)):
        raise SimError(f"{name}: give a sequence of times, got {timestamps!r}")
    array = np.asarray(list(timestamps))
    if array.dtype.kind == "M":
        if np.isnat(array).any():
            raise SimError(f"{name}[{int(np.isnat(array).argmax())}]: missing (NaT)")
        return np.sort(array.astype("datetime64[us]").astype(np.int64) / 1e6)
    out = []
    for i, value in enumerate(array.tolist() if array.dtype != object else list(array)):
        if isinstance(value, str):
            try:
                value = _dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise SimError(
                    f"{name}[{i}]: '{value}' is not a time; write e.g. '2025-03-03 09:41:12'"
                ) from None
        if isinstance(value, np.datetime64):
            value = value.astype("datetime64[us]").item()
        if isinstance(value, _dt.datetime):
            seconds = (value.replace(tzinfo=None) - _EPOCH).total_seconds()
        elif isinstance(value, _dt.date):
            seconds = (_dt.datetime(value.year, value.month, value.day) - _EPOCH).total_seconds()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise SimError(f"{name}[{i}]: {value!r} is not a time; give datetimes or seconds")
        if not math.isfinite(seconds):
            raise SimError(f"{name}[{i}]: {value!r} is not a finite time")
        out.append(seconds)
    return np.sort(np.asarray(out, dtype=float))


def _span(times: np.ndarray, name: str) -> float:
    if times.size < 2:
        raise SimError(f"{name}: {times.size} time(s); a rate needs at least two")
    span = float(times[-1] - times[0])
    if span <= 0:
        raise SimError(f"{name}: every time is the same ({times[0]!r}); a rate needs a span")
    return span


def deploy_rate(timestamps: Iterable[Any]) -> float:
    """Deploys per second: one over the mean gap between consecutive deploys,
    ``(n - 1) / (last - first)``. ``timestamps`` are datetimes, ISO 8601 strings
    ("2025-03-03 09:41:12"), numpy datetime64 values or seconds, in any order."""
    times = _wall_seconds(timestamps, "timestamps")
    return (times.size - 1) / _span(times, "timestamps")


def _window_seconds(first: float, last: float, days: Sequence[int],
                    hours: tuple[float, float]) -> float:
    """Seconds of working time (``hours`` of working ``days``) in [first, last]."""
    total = 0.0
    for day in range(math.floor(first / DAY), math.floor(last / DAY) + 1):
        if (day + 3) % 7 not in days:  # 1970-01-01 was a Thursday; 0 = Monday
            continue
        start, end = day * DAY + hours[0] * 3600, day * DAY + hours[1] * 3600
        total += max(0.0, min(end, last) - max(start, first))
    return total


def _rate_text(per_second: float) -> str:
    per_hour = per_second * 3600
    if per_hour >= 1:
        return f"{float(f'{per_hour:.3g}'):g}/h"
    return f"{float(f'{per_hour * 24:.3g}'):g}/d"


def deploys_table(
    timestamps: Iterable[Any],
    *,
    days: Sequence[int] = (0, 1, 2, 3, 4),
    hours: tuple[float, float] = (9.0, 17.0),
    share: float = 0.9,
) -> dict[str, Any]:
    """A scenario's ``[deploys]`` table for the rhythm in ``timestamps``: ``periodic`` when the
    gaps between deploys vary by less than 10%, else ``business-hours`` when at least ``share``
    of the deploys fall in the working ``hours`` of working ``days`` (0 = Monday, times as the
    clock that wrote them shows them), else ``poisson`` at ``deploy_rate``. Rates are rounded
    to three significant figures."""
    times = _wall_seconds(timestamps, "timestamps")
    span = _span(times, "timestamps")
    gaps = np.diff(times)
    if gaps.size >= 2 and gaps.std() < 0.1 * gaps.mean():
        every = float(np.median(gaps))
        return {"schedule": "periodic", "every": format_duration(float(f"{every:.3g}"))}
    if not 0 <= hours[0] < hours[1] <= 24:
        raise SimError(f"hours: must be [start, end] with 0 <= start < end <= 24, got {hours!r}")
    hour = np.mod(times, DAY) / 3600
    weekday = (np.floor_divide(times, DAY).astype(np.int64) + 3) % 7
    inside = np.isin(weekday, list(days)) & (hour >= hours[0]) & (hour < hours[1])
    window = _window_seconds(float(times[0]), float(times[-1]), days, hours)
    if inside.mean() >= share and window > 0:
        return {
            "schedule": "business-hours",
            "rate": _rate_text(inside.sum() / window),
            "days": list(days),
            "hours": [float(hours[0]), float(hours[1])],
        }
    return {"schedule": "poisson", "rate": _rate_text((times.size - 1) / span)}
