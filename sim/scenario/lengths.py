"""Job lengths: small frozen distributions that share the ``LengthDist`` protocol:
``sample`` (vectorised, seconds), ``mean`` (may be infinite), ``describe``, and for the closed
forms of docs/closed-forms.md the transforms ``mgf(s) = E[exp(s L)]`` (formula 2, restart with
the same length) and ``laplace(s) = E[exp(-s L)]`` (restart with a new length). Transforms without a
closed form are integrated with ``scipy.integrate.quad`` in log-length space, where every law
here has light tails; a transform that diverges is ``inf``. ``load_empirical`` reads measured
lengths from a CSV file.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from scipy import integrate, special

from ..durations import format_duration, parse_duration
from ..errors import SimError
from .checks import nonnegative, positive

__all__ = [
    "LENGTH_KINDS",
    "Empirical",
    "Exponential",
    "Fixed",
    "LengthDist",
    "Lognormal",
    "Pareto",
    "Weibull",
    "load_empirical",
]

logger = logging.getLogger(__name__)

#: exp() of anything above this overflows a float.
_LOG_MAX = math.log(np.finfo(float).max)


# -- transforms ------------------------------------------------------------------------------


def _log_length_expectation(
    log_density: Callable[[np.ndarray], np.ndarray],
    s: float,
    lo: float,
    hi: float,
    hard_lo: bool,
    hard_hi: bool,
) -> float:
    """E[exp(s L)] where Y = ln L has log-density ``log_density`` on [lo, hi].

    A soft bound is pushed outwards until the integrand has fallen e^-60 below its peak; the
    integral is then taken around the peak, scaled by the peak to keep it in float range.
    """

    def h(y: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return log_density(y) + s * np.exp(y)

    drop = 60.0
    for _ in range(64):
        grid = np.linspace(lo, hi, 2001)
        values = h(grid)
        if np.isposinf(values).any() or np.isnan(values).any():
            return math.inf
        peak = float(values.max())
        grown = False
        step = max(1.0, (hi - lo) / 2)
        if not hard_lo and values[0] > peak - drop:
            lo -= step
            grown = True
        if not hard_hi and values[-1] > peak - drop:
            hi += step
            grown = True
        if not grown:
            break
    else:
        return math.inf  # the integrand never falls off: the transform diverges

    inside = np.flatnonzero(values > peak - drop)
    a = float(grid[max(inside[0] - 1, 0)])
    b = float(grid[min(inside[-1] + 1, len(grid) - 1)])
    top = float(grid[int(values.argmax())])
    points = [top] if a < top < b else None

    def integrand(y: float) -> float:
        return math.exp(float(h(np.asarray(y))) - peak)

    if a == b:
        return math.exp(peak) if peak < _LOG_MAX else math.inf
    total, _ = integrate.quad(integrand, a, b, points=points, limit=200, epsabs=0, epsrel=1e-10)
    if total <= 0:
        return 0.0
    log_value = peak + math.log(total)
    return math.exp(log_value) if log_value < _LOG_MAX else math.inf


def _exp_or_inf(x: float) -> float:
    return math.exp(x) if x < _LOG_MAX else math.inf


# -- length distributions --------------------------------------------------------------------


@runtime_checkable
class LengthDist(Protocol):
    """What the simulator and the closed forms need from a job-length distribution."""

    kind: ClassVar[str]

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths in seconds (float64)."""
        ...

    def mean(self) -> float:
        """E[L] in seconds; ``inf`` when it diverges."""
        ...

    def describe(self) -> str:
        """One short line for tables and reports."""
        ...

    def mgf(self, s: float) -> float:
        """E[exp(s L)]; ``inf`` where it diverges."""
        ...

    def laplace(self, s: float) -> float:
        """E[exp(-s L)]."""
        ...


@dataclass(frozen=True)
class Fixed:
    """Every job runs exactly ``length`` seconds."""

    length: float
    kind: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        self.validate(vars(self), "Fixed")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        nonnegative(values["length"], f"{where}.length")

    def params(self) -> dict[str, float]:
        """The parameters under the names a scenario file uses."""
        return {"length": self.length}

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.length, dtype=np.float64)

    def mean(self) -> float:
        return self.length

    def describe(self) -> str:
        return f"fixed {format_duration(self.length)}"

    def mgf(self, s: float) -> float:
        return _exp_or_inf(s * self.length)

    def laplace(self, s: float) -> float:
        return self.mgf(-s)


@dataclass(frozen=True)
class Exponential:
    """Memoryless lengths with the given ``mean`` (seconds)."""

    mean_length: float
    kind: ClassVar[str] = "exponential"

    def __init__(self, mean: float) -> None:
        object.__setattr__(self, "mean_length", mean)
        self.validate({"mean": mean}, "Exponential")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        positive(values["mean"], f"{where}.mean")

    def params(self) -> dict[str, float]:
        """The parameters under the names a scenario file uses."""
        return {"mean": self.mean_length}

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_length, n)

    def mean(self) -> float:
        return self.mean_length

    def describe(self) -> str:
        return f"exponential mean {format_duration(self.mean_length)}"

    def mgf(self, s: float) -> float:
        if s * self.mean_length >= 1:
            return math.inf
        return 1.0 / (1.0 - s * self.mean_length)

    def laplace(self, s: float) -> float:
        return self.mgf(-s)

    def __repr__(self) -> str:
        return f"Exponential(mean={self.mean_length!r})"


@dataclass(frozen=True)
class Lognormal:
    """ln L is normal: half the jobs are shorter than ``median``; ``sigma`` sets the spread
    (1 is a ratio of about 5 between the 90th and the 50th percentile, 2 about 13)."""

    median: float
    sigma: float
    kind: ClassVar[str] = "lognormal"

    def __post_init__(self) -> None:
        self.validate(vars(self), "Lognormal")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        positive(values["median"], f"{where}.median")
        positive(values["sigma"], f"{where}.sigma")

    def params(self) -> dict[str, float]:
        """The parameters under the names a scenario file uses."""
        return {"median": self.median, "sigma": self.sigma}

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median), self.sigma, n)

    def mean(self) -> float:
        return _exp_or_inf(math.log(self.median) + self.sigma**2 / 2)

    def describe(self) -> str:
        return f"lognormal median {format_duration(self.median)} sigma {self.sigma:g}"

    def mgf(self, s: float) -> float:
        if s > 0:
            return math.inf
        if s == 0:
            return 1.0
        mu, sigma = math.log(self.median), self.sigma
        log_norm = math.log(sigma * math.sqrt(2 * math.pi))

        def log_density(y: np.ndarray) -> np.ndarray:
            return -0.5 * ((y - mu) / sigma) ** 2 - log_norm

        return _log_length_expectation(
            log_density, s, mu - 40 * sigma, mu + 40 * sigma, hard_lo=True, hard_hi=True
        )

    def laplace(self, s: float) -> float:
        return self.mgf(-s)


@dataclass(frozen=True)
class Pareto:
    """P(L > x) = (minimum / x) ** alpha for x >= minimum; alpha = 1 is the law of Unix
    process lifetimes (Harchol-Balter and Downey, 1996; docs/semantics.md). With ``maximum`` the
    law is truncated there (renormalised, not clipped), so every moment is finite."""

    alpha: float
    minimum: float
    maximum: float | None = None
    kind: ClassVar[str] = "pareto"

    def __post_init__(self) -> None:
        self.validate(vars(self), "Pareto")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        positive(values["alpha"], f"{where}.alpha")
        minimum = positive(values["minimum"], f"{where}.minimum")
        maximum = values.get("maximum")
        if maximum is not None and positive(maximum, f"{where}.maximum") <= minimum:
            raise SimError(
                f"{where}.maximum: must be greater than minimum "
                f"({format_duration(minimum)}), got {format_duration(float(maximum))}"
            )

    def _truncated_mass(self) -> float:
        """1 - (minimum / maximum) ** alpha: the untruncated law's mass below ``maximum``."""
        if self.maximum is None:
            return 1.0
        return -math.expm1(-self.alpha * math.log(self.maximum / self.minimum))

    def params(self) -> dict[str, float]:
        """The parameters under the names a scenario file uses (``maximum`` only if set)."""
        params = {"alpha": self.alpha, "minimum": self.minimum}
        if self.maximum is not None:
            params["maximum"] = self.maximum
        return params

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        mass = self._truncated_mass()
        # inverse CDF of the (truncated) law: x = minimum * (1 - u * mass) ** (-1 / alpha)
        x = self.minimum * np.exp(-np.log1p(-u * mass) / self.alpha)
        if self.maximum is not None:
            np.minimum(x, self.maximum, out=x)
        return x

    def mean(self) -> float:
        a, m = self.alpha, self.minimum
        if self.maximum is None:
            return a * m / (a - 1) if a > 1 else math.inf
        log_ratio = math.log(self.maximum / m)
        # a * m^a / mass * integral_m^M x^-a dx, written to stay exact near a = 1
        shape = log_ratio if a == 1 else math.expm1((1 - a) * log_ratio) / (1 - a)
        return a * m * shape / self._truncated_mass()

    def describe(self) -> str:
        text = f"pareto alpha {self.alpha:g} from {format_duration(self.minimum)}"
        if self.maximum is not None:
            text += f" to {format_duration(self.maximum)}"
        return text

    def mgf(self, s: float) -> float:
        if s == 0:
            return 1.0
        if s > 0 and self.maximum is None:
            return math.inf
        a, log_m = self.alpha, math.log(self.minimum)
        log_norm = math.log(a) - math.log(self._truncated_mass())

        def log_density(y: np.ndarray) -> np.ndarray:
            return log_norm - a * (y - log_m)

        if self.maximum is None:
            return _log_length_expectation(
                log_density, s, log_m, log_m + 60 / a, hard_lo=True, hard_hi=False
            )
        return _log_length_expectation(
            log_density, s, log_m, math.log(self.maximum), hard_lo=True, hard_hi=True
        )

    def laplace(self, s: float) -> float:
        return self.mgf(-s)


@dataclass(frozen=True)
class Weibull:
    """P(L > x) = exp(-(x / scale) ** shape); shape < 1 is heavy-ish tailed, 1 exponential."""

    shape: float
    scale: float
    kind: ClassVar[str] = "weibull"

    def __post_init__(self) -> None:
        self.validate(vars(self), "Weibull")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        positive(values["shape"], f"{where}.shape")
        positive(values["scale"], f"{where}.scale")

    def params(self) -> dict[str, float]:
        """The parameters under the names a scenario file uses."""
        return {"shape": self.shape, "scale": self.scale}

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, n)

    def mean(self) -> float:
        return self.scale * float(special.gamma(1 + 1 / self.shape))

    def describe(self) -> str:
        return f"weibull shape {self.shape:g} scale {format_duration(self.scale)}"

    def mgf(self, s: float) -> float:
        if s == 0:
            return 1.0
        k, log_scale = self.shape, math.log(self.scale)
        if s > 0 and k < 1:
            return math.inf
        if k == 1:
            return Exponential(self.scale).mgf(s)

        def log_density(y: np.ndarray) -> np.ndarray:
            w = k * (y - log_scale)
            with np.errstate(over="ignore"):
                return math.log(k) + w - np.exp(w)

        centre = log_scale
        if s > 0:  # k > 1: the integrand peaks near x* = scale * (s * scale / k) ** (1 / (k - 1))
            centre = max(centre, log_scale + math.log(s * self.scale / k) / (k - 1))
        return _log_length_expectation(
            log_density, s, centre - 60 / k, centre + 4, hard_lo=False, hard_hi=False
        )

    def laplace(self, s: float) -> float:
        return self.mgf(-s)


@dataclass(frozen=True)
class Empirical:
    """Lengths resampled from measured ``durations`` (seconds), e.g. a CSV export of real job
    run times (see ``load_empirical``); ``source`` names where they came from."""

    durations: tuple[float, ...]
    source: str = "inline"
    column: str | None = None
    kind: ClassVar[str] = "empirical"
    _array: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = tuple(float(d) for d in self.durations)
        self.validate({"durations": values}, "Empirical")
        object.__setattr__(self, "durations", values)
        array = np.asarray(values, dtype=np.float64)
        array.setflags(write=False)
        object.__setattr__(self, "_array", array)

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid law."""
        durations = values["durations"]
        if len(durations) == 0:
            raise SimError(f"{where}.durations: needs at least one duration, got none")
        for i, d in enumerate(durations):
            nonnegative(d, f"{where}.durations[{i}]")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self._array[rng.integers(0, len(self._array), n)]

    def mean(self) -> float:
        return float(self._array.mean())

    def describe(self) -> str:
        return f"empirical {len(self._array)} lengths from {Path(self.source).name}"

    def mgf(self, s: float) -> float:
        log_value = float(special.logsumexp(s * self._array)) - math.log(len(self._array))
        return _exp_or_inf(log_value)

    def laplace(self, s: float) -> float:
        return self.mgf(-s)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Empirical, (self.durations, self.source, self.column))


#: Length laws by the ``kind`` a scenario file names them with.
LENGTH_KINDS: Mapping[str, type] = {
    cls.kind: cls for cls in (Fixed, Exponential, Lognormal, Pareto, Weibull, Empirical)
}


def _cell_seconds(cell: str) -> float | None:
    try:
        seconds = float(cell)
    except ValueError:
        try:
            return parse_duration(cell.strip(), "cell")
        except SimError:
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def load_empirical(
    path: str | Path, column: str | None = None, field: str = "length.file"
) -> Empirical:
    """Durations from a CSV file: one column of seconds or duration strings ("25s").

    The column is ``column`` if given (the file then needs a header row), else the one headed
    ``duration``, else the first column whose first value is a duration. Blank lines and lines
    starting with ``#`` are skipped. Errors name ``field``, the file and the line.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [
                (number, row)
                for number, row in enumerate(csv.reader(handle), start=1)
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
            ]
    except FileNotFoundError:
        raise SimError(f"{field}: file '{path}' not found; give a CSV path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SimError(f"{field}: cannot read '{path}' as CSV: {exc}") from None
    if not rows:
        raise SimError(f"{field}: {path} holds no durations; give a column of seconds")

    first_line, first = rows[0]
    has_header = any(_cell_seconds(cell) is None for cell in first)
    header = [cell.strip() for cell in first] if has_header else None
    data = rows[1:] if has_header else rows
    if not data:
        raise SimError(f"{field}: {path} has a header but no durations below it")

    if column is not None:
        if header is None:
            raise SimError(
                f"{field}: {path} has no header row, so column '{column}' cannot be found; "
                "add a header or leave out the column"
            )
        if column not in header:
            raise SimError(
                f"{field}: {path} line {first_line}: no column '{column}'; "
                f"columns are {', '.join(header)}"
            )
        index = header.index(column)
    elif header is not None and "duration" in [h.lower() for h in header]:
        index = [h.lower() for h in header].index("duration")
    else:
        line, row = data[0]
        numeric = [i for i, cell in enumerate(row) if _cell_seconds(cell) is not None]
        if not numeric:
            raise SimError(
                f"{field}: {path} line {line}: no column of durations; "
                "head one 'duration' or give the column name"
            )
        index = numeric[0]
    name = header[index] if header is not None else f"column {index + 1}"

    durations = []
    for line, row in data:
        cell = row[index] if index < len(row) else ""
        seconds = _cell_seconds(cell)
        if seconds is None:
            raise SimError(
                f"{field}: {path} line {line}: {name} '{cell}' is not a duration; "
                "write seconds (>= 0) or e.g. '25s', '10m'"
            )
        durations.append(seconds)
    logger.debug("read %d durations from %s (%s)", len(durations), path, name)
    return Empirical(tuple(durations), source=str(path), column=column)
