"""Workloads: when jobs arrive, how long they run, how many items they hold, which ones hang.

A workload is a stream of arrivals (Poisson, or a backlog at time 0) of jobs of a few
``JobClass`` es, each with a length law of ``deploysim.sim.scenario.lengths``;
``sample_jobs`` draws their lengths, items and hang flags from a seeded generator. Or it is a
trace (``deploysim.sim.scenario.traces``): the jobs of a real system, replayed as they came,
with only the hang flags drawn.
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
from .traces import JobTrace

__all__ = [
    "ARRIVALS",
    "DEFAULT_CLASS",
    "JobClass",
    "JobSpecs",
    "Workload",
    "arrival_times",
    "poisson_times",
    "sample_jobs",
    "trace_jobs",
]


#: The kinds of arrivals a workload can have.
ARRIVALS = ("poisson", "backlog", "trace")

#: Name of the single job class of a workload written with inline length keys.
DEFAULT_CLASS = "default"


# -- jobs and workloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobClass:
    """A kind of job: its share ``weight`` of arrivals, its length law, the time one item
    takes (so a job of length L holds max(1, round(L / item_time)) items) and the probability
    that a job hangs (never finishes by itself). A class of a trace's jobs has no length law
    (``length`` None): the trace gives each job's length, and ``weight`` is not used."""

    name: str
    weight: float
    length: LengthDist | None
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
        if length is not None and not isinstance(length, LengthDist):
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
    """Where jobs come from: a Poisson stream of ``rate`` jobs per second, a ``backlog`` of
    ``count`` jobs all enqueued at time 0, each job of one of ``classes`` drawn by weight; or
    the jobs of a ``trace``, replayed exactly. (``rate`` is ignored for a backlog and ``count``
    for Poisson arrivals, both for a trace; a scenario file may not hold the one its arrivals
    ignore.)

    A trace job's class is the one its row names when the workload has classes of its own;
    with the single inline class (``DEFAULT_CLASS``) every job is of it and the trace's class
    column is only reported. The class gives what the trace does not: the hang probability,
    and the items of a job whose row has none (its ``item_time``)."""

    arrivals: Literal["poisson", "backlog", "trace"]
    rate: float | None
    count: int | None
    classes: tuple[JobClass, ...]
    trace: JobTrace | None = None

    def __post_init__(self) -> None:
        self.validate(
            {"arrivals": self.arrivals, "rate": self.rate, "count": self.count,
             "trace": self.trace},
            "Workload",
        )
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes:
            raise SimError("Workload.classes: needs at least one job class")
        names = [c.name for c in self.classes]
        for name in names:
            if names.count(name) > 1:
                raise SimError(f"Workload.classes: class name {name!r} is used twice")
        if self.arrivals != "trace":
            for i, job_class in enumerate(self.classes):
                if job_class.length is None:
                    raise SimError(
                        f"Workload.classes[{i}].length: {self.arrivals} arrivals need a length "
                        "law; only a trace gives each job's length"
                    )
        elif self.trace is not None:
            object.__setattr__(self, "_trace_classes", self._class_indices(self.trace))

    def _class_indices(self, trace: JobTrace) -> np.ndarray:
        """The index into ``classes`` of each trace job (all 0 for the inline class)."""
        if len(self.classes) == 1 and self.classes[0].name == DEFAULT_CLASS:
            return np.zeros(len(trace), dtype=np.int64)
        index = {c.name: i for i, c in enumerate(self.classes)}
        out = np.empty(len(trace), dtype=np.int64)
        for j, (name, line) in enumerate(zip(trace.classes.tolist(), trace.lines.tolist(),
                                             strict=True)):
            if name not in index:
                raise SimError(
                    f"Workload.trace: {trace.source} line {line}: class {name!r} is not one of "
                    f"the workload's classes ({', '.join(index)})"
                )
            out[j] = index[name]
        return out

    def trace_classes(self) -> np.ndarray:
        """The class index of each job of the trace (int64; empty without a trace)."""
        return getattr(self, "_trace_classes", np.empty(0, dtype=np.int64))

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
        elif arrivals == "trace":
            trace = values.get("trace")
            if trace is None:
                raise SimError(f"{where}.trace: trace arrivals need a CSV of jobs, e.g. 'jobs.csv'")
            if not isinstance(trace, JobTrace):
                raise SimError(f"{where}.trace: must be a JobTrace, got {trace!r}")
        else:
            raise SimError(
                f"{where}.arrivals: must be one of {', '.join(ARRIVALS)}, got {arrivals!r}"
            )

    def weights(self) -> np.ndarray:
        """The probability that a job belongs to each class, in class order."""
        weights = np.array([c.weight for c in self.classes], dtype=np.float64)
        return weights / weights.sum()

    def mean_length(self) -> float:
        """E[L] over all classes, in seconds (``inf`` if a class has an infinite mean); for a
        trace, the mean of its jobs' durations."""
        if self.arrivals == "trace":
            assert self.trace is not None
            return float(self.trace.duration.mean()) if len(self.trace) else 0.0
        means = [c.length.mean() if c.length is not None else math.nan for c in self.classes]
        return float(sum(w * m for w, m in zip(self.weights(), means, strict=True)))


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
    ``horizon``, ``count`` zeros for a backlog, or the trace's times before ``horizon`` (the
    trace's later jobs never arrive; ``rng`` is not used)."""
    if workload.arrivals == "backlog":
        return np.zeros(workload.count or 0, dtype=np.float64)
    if workload.arrivals == "trace":
        assert workload.trace is not None
        times = workload.trace.enqueued_at
        return times[: np.searchsorted(times, horizon, side="left")].copy()
    assert workload.rate is not None
    return poisson_times(workload.rate, rng, horizon)


def trace_jobs(workload: Workload, rng: np.random.Generator, n: int) -> JobSpecs:
    """The first ``n`` jobs of the workload's trace: class, length and items as the trace
    gives them (items from the class's ``item_time`` where a row has none), and a hang flag
    drawn with the class's ``hang_probability``."""
    trace = workload.trace
    assert trace is not None
    if not 0 <= n <= len(trace):
        raise SimError(f"trace_jobs: the trace has {len(trace)} jobs, not {n}")
    cls = workload.trace_classes()[:n].copy()
    length = trace.duration[:n].copy()
    items = trace.items[:n].copy()
    hang_probability = np.array([c.hang_probability for c in workload.classes], dtype=np.float64)
    for index, job_class in enumerate(workload.classes):
        missing = (items == 0) & (cls == index)
        items[missing] = job_class.items(length[missing])
    hangs = rng.random(n) < hang_probability[cls]
    return JobSpecs(cls=cls, length=length, items=items, hangs=hangs)


def sample_jobs(workload: Workload, rng: np.random.Generator, n: int) -> JobSpecs:
    """Draw ``n`` jobs: class by weight, then length, items and hang flag per class; for a
    trace, its first ``n`` jobs (``trace_jobs``)."""
    if workload.arrivals == "trace":
        return trace_jobs(workload, rng, n)
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
        assert job_class.length is not None  # no trace: every class has a length law
        length[chosen] = job_class.length.sample(rng, count)
        items[chosen] = job_class.items(length[chosen])
        hang_probability[index] = job_class.hang_probability
    hangs = rng.random(n) < hang_probability[cls]
    return JobSpecs(cls=cls, length=length, items=items, hangs=hangs)
