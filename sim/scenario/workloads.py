"""Workloads: when jobs arrive, how long they run, how many items they hold, which ones hang.

A workload is a stream of arrivals (Poisson, or a backlog at time 0) of jobs of a few
``JobClass`` es, each with a length law of ``deploysim.sim.scenario.lengths``;
``sample_jobs`` draws their lengths, items and hang flags from a seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import SimError
from .checks import positive, probability
from .lengths import LENGTH_KINDS, LengthDist

__all__ = [
    "JobClass",
    "JobSpecs",
    "Workload",
    "arrival_times",
    "poisson_times",
    "sample_jobs",
]


# -- jobs and workloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobClass:
    """A kind of job: its share ``weight`` of arrivals, its length law, the time one item
    takes (so a job of length L holds max(1, round(L / item_time)) items) and the probability
    that a job hangs (never finishes by itself)."""

    name: str
    weight: float
    length: LengthDist
    item_time: float
    hang_probability: float = 0.0

    def __post_init__(self) -> None:
        named = isinstance(self.name, str) and self.name
        self.validate(vars(self), f"JobClass {self.name!r}" if named else "JobClass")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid job class."""
        name = values["name"]
        if not isinstance(name, str) or not name:
            raise SimError(f"{where}.name: must be a non-empty string, got {name!r}")
        positive(values["weight"], f"{where}.weight")
        length = values["length"]
        if not isinstance(length, LengthDist):
            raise SimError(
                f"{where}.length: must be one of {', '.join(LENGTH_KINDS)}, got {length!r}"
            )
        positive(values["item_time"], f"{where}.item_time")
        probability(values.get("hang_probability", 0.0), f"{where}.hang_probability")

    def items(self, length: np.ndarray) -> np.ndarray:
        """Items in jobs of the given lengths: max(1, round(length / item_time)), int64
        (capped at 2**62 for absurdly long draws of unbounded laws)."""
        ratio = np.rint(np.asarray(length, dtype=np.float64) / self.item_time)
        return np.clip(ratio, 1, 2.0**62).astype(np.int64)


@dataclass(frozen=True)
class Workload:
    """Where jobs come from: a Poisson stream of ``rate`` jobs per second, or a ``backlog`` of
    ``count`` jobs all enqueued at time 0; each job belongs to one of ``classes``, drawn by
    weight. (``rate`` is ignored for a backlog and ``count`` for Poisson arrivals; a scenario
    file may not hold the one its arrivals ignore.)"""

    arrivals: Literal["poisson", "backlog"]
    rate: float | None
    count: int | None
    classes: tuple[JobClass, ...]

    def __post_init__(self) -> None:
        self.validate(
            {"arrivals": self.arrivals, "rate": self.rate, "count": self.count}, "Workload"
        )
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes:
            raise SimError("Workload.classes: needs at least one job class")
        names = [c.name for c in self.classes]
        for name in names:
            if names.count(name) > 1:
                raise SimError(f"Workload.classes: class name {name!r} is used twice")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid workload
        (``count``, where given, is checked whatever the arrivals)."""
        arrivals = values["arrivals"]
        count = values.get("count")
        bad_count = isinstance(count, bool) or not isinstance(count, int) or count < 0
        if count is not None and bad_count:
            raise SimError(f"{where}.count: must be an integer >= 0, got {count!r}")
        if arrivals == "poisson":
            if values.get("rate") is None:
                raise SimError(f"{where}.rate: Poisson arrivals need a rate, e.g. '120/h'")
            positive(values["rate"], f"{where}.rate")
        elif arrivals == "backlog":
            if count is None:
                raise SimError(f"{where}.count: a backlog needs a count of jobs, e.g. 1000")
        else:
            raise SimError(f"{where}.arrivals: must be 'poisson' or 'backlog', got {arrivals!r}")

    def weights(self) -> np.ndarray:
        """The probability that a job belongs to each class, in class order."""
        weights = np.array([c.weight for c in self.classes], dtype=np.float64)
        return weights / weights.sum()

    def mean_length(self) -> float:
        """E[L] over all classes, in seconds (``inf`` if a class has an infinite mean)."""
        return float(
            sum(w * c.length.mean() for w, c in zip(self.weights(), self.classes, strict=True))
        )


@dataclass(frozen=True, eq=False)
class JobSpecs:
    """``n`` jobs as parallel arrays: class index into ``Workload.classes``, length (seconds),
    items, and whether the job hangs."""

    cls: np.ndarray
    length: np.ndarray
    items: np.ndarray
    hangs: np.ndarray

    def __len__(self) -> int:
        return len(self.cls)


def poisson_times(rate: float, rng: np.random.Generator, horizon: float) -> np.ndarray:
    """Sorted event times in [0, horizon) of a Poisson process of ``rate`` per second, built
    from vectorised exponential gaps."""
    if rate <= 0 or horizon <= 0:
        return np.empty(0, dtype=np.float64)
    chunks = []
    start = 0.0
    while start < horizon:
        expected = rate * (horizon - start)
        size = int(expected + 6 * math.sqrt(expected) + 16)
        times = start + np.cumsum(rng.exponential(1 / rate, size))
        chunks.append(times)
        start = float(times[-1])
    times = np.concatenate(chunks)
    return times[: np.searchsorted(times, horizon, side="left")]


def arrival_times(workload: Workload, rng: np.random.Generator, horizon: float) -> np.ndarray:
    """Sorted enqueue times (float64 seconds) of the workload's jobs: a Poisson stream up to
    ``horizon``, or ``count`` zeros for a backlog."""
    if workload.arrivals == "backlog":
        return np.zeros(workload.count or 0, dtype=np.float64)
    assert workload.rate is not None
    return poisson_times(workload.rate, rng, horizon)


def sample_jobs(workload: Workload, rng: np.random.Generator, n: int) -> JobSpecs:
    """Draw ``n`` jobs: class by weight, then length, items and hang flag per class."""
    weights = workload.weights()
    cls = np.searchsorted(np.cumsum(weights), rng.random(n), side="right")
    np.minimum(cls, len(weights) - 1, out=cls)
    cls = cls.astype(np.int64)
    length = np.empty(n, dtype=np.float64)
    items = np.empty(n, dtype=np.int64)
    hang_probability = np.empty(len(workload.classes), dtype=np.float64)
    for index, job_class in enumerate(workload.classes):
        chosen = cls == index if len(workload.classes) > 1 else slice(None)
        count = n if len(workload.classes) == 1 else int(np.count_nonzero(chosen))
        length[chosen] = job_class.length.sample(rng, count)
        items[chosen] = job_class.items(length[chosen])
        hang_probability[index] = job_class.hang_probability
    hangs = rng.random(n) < hang_probability[cls]
    return JobSpecs(cls=cls, length=length, items=items, hangs=hangs)
