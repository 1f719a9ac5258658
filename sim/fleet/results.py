"""Results: the ledger of each run summarised, replications combined, as plain values that
print as a table, serialise to JSON and turn into pandas DataFrames.

A strategy's result is a plain dict, the RESULT object of ``deploysim run --json``; its shape
is ``RunResult`` for one run (``summarize``) and ``Result`` once replications are combined
(``combine``). They are TypedDicts: documentation for readers and type checkers, plain dicts
at run time, so ``r["completed"]`` reads them and ``json.dump`` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import numpy as np

from .ledger import Ledger

COUNTS = ("enqueued", "completed", "failed", "lost", "pending")
STAT_KEYS = ("mean", "p50", "p90", "p99", "max")
# the numbers that get a 95% confidence interval when there are several replications
CI_KEYS = (
    "completion_rate",
    "completed",
    "failed",
    "lost",
    "pending",
    "executions",
    "duplicate_item_executions",
    "useful_work_s",
    "wasted_work_s",
    "hard_kills",
)


class Stats(TypedDict):
    """Mean, percentiles and maximum of some seconds, one per completed job (each None when
    there are none). Over replications they are those of the jobs of every replication taken
    together, not means of each replication's: with one job a replication, a mean of its
    percentiles would be the mean again."""

    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class DrainStats(TypedDict):
    """Per deploy, SIGTERM to the last worker's exit: median and maximum (None without
    deploys), over replications those of the deploys of every replication taken together."""

    p50: float | None
    max: float | None


class LengthBucket(TypedDict):
    """The jobs of lengths in ``[lo_s, hi_s)`` and the share of them that completed. Like the
    headline counts, ``enqueued`` and ``completed`` are whole numbers for one run and means
    over replications once combined (a replication without jobs in the bucket counts 0), so
    the buckets add up to ``enqueued`` and ``completed``; ``rate`` is ``completed /
    enqueued``, the share of all the replications' jobs in the bucket that completed."""

    lo_s: float
    hi_s: float
    enqueued: float
    completed: float
    rate: float


class Intervals(TypedDict):
    """95% confidence intervals ``[lo, hi]`` of the headline numbers (``CI_KEYS``)."""

    completion_rate: list[float]
    completed: list[float]
    failed: list[float]
    lost: list[float]
    pending: list[float]
    executions: list[float]
    duplicate_item_executions: list[float]
    useful_work_s: list[float]
    wasted_work_s: list[float]
    hard_kills: list[float]


class RunResult(TypedDict):
    """One run of one strategy (``summarize``), keys in the order of the JSON output. Counts
    are whole numbers; once replications are combined (``Result``) every number is their mean
    (but ``Stats`` and ``DrainStats``, taken over every replication's jobs and deploys), and a
    number no replication had (``completion_rate`` with nothing enqueued, nan here) becomes
    None. Every enqueued job ends completed, failed, pending or lost, and
    ``lost = enqueued - completed - failed - pending``."""

    enqueued: float
    completed: float
    failed: float
    lost: float
    pending: float
    completion_rate: float | None
    executions: float  # attempts started
    duplicate_item_executions: float
    useful_work_s: float  # the lengths of the completed jobs
    wasted_work_s: float  # worker time beyond them
    hung_time_s: float
    run_time_s: Stats  # first start to completion
    sojourn_s: Stats  # enqueue to completion
    drain_s: DrainStats
    deploys: float
    hard_kills: float
    crashes: float
    explicitly_lost: float  # the losses the models recorded, a cross-check of ``lost``
    by_length: list[LengthBucket]  # buckets two per decade of length


class _Replicated(RunResult):
    replications: int


class Result(_Replicated, total=False):
    """A strategy's result over its replications (``combine``): the means of ``RunResult``'s
    numbers (``by_length``'s counts too), the ``Stats`` and ``DrainStats`` of every
    replication's jobs and deploys taken together, ``replications``, and with more than one
    replication ``ci95`` (the one key that may be absent)."""

    ci95: Intervals


@dataclass(frozen=True)
class Samples:
    """The values behind one run's ``Stats`` and ``DrainStats``: the run and sojourn times of
    its completed jobs and the drain of each of its deploys, in seconds."""

    run_time_s: np.ndarray
    sojourn_s: np.ndarray
    drain_s: np.ndarray


class _Summary(dict):  # type: ignore[type-arg]
    """A ``RunResult`` that also holds its ``Samples``, for ``combine`` to pool. They are an
    attribute, not a key: the JSON, flat rows and key sets stay those of ``RunResult``; the
    attribute goes along when the dict is pickled to or from a worker process."""

    samples: Samples


def samples_of(run: Mapping[str, Any]) -> Samples | None:
    """The per-job values behind a ``summarize`` result, None for any other mapping (a copy,
    a result read back from JSON)."""
    return getattr(run, "samples", None)


def _stats(values: np.ndarray) -> Stats:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "mean": float(values.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
    }


def length_buckets(lengths: np.ndarray) -> np.ndarray:
    """Log-spaced bucket edges (two per decade: 1, 3.16, 10, ...) covering ``lengths``."""
    lengths = lengths[np.isfinite(lengths) & (lengths > 0)]
    if lengths.size == 0:
        return np.array([1.0, 10.0])
    lo = math.floor(2 * math.log10(lengths.min()))
    hi = math.floor(2 * math.log10(lengths.max())) + 1
    return 10.0 ** (np.arange(lo, hi + 1) / 2)


def summarize(ledger: Ledger) -> RunResult:
    """One run's RESULT object (its shape: ``RunResult``)."""
    a = ledger.arrays()
    enq = ~np.isnan(a["enqueue_t"])
    done = ~np.isnan(a["done_t"]) & enq
    failed = ~np.isnan(a["fail_t"]) & enq & ~done
    pending_mask = np.zeros(ledger.n, dtype=bool)
    if ledger.pending:
        pending_mask[np.fromiter(ledger.pending, dtype=np.int64)] = True
    pending_mask &= enq & ~done & ~failed
    enqueued, completed = int(enq.sum()), int(done.sum())
    n_failed, pending = int(failed.sum()), int(pending_mask.sum())
    lost = enqueued - completed - n_failed - pending
    lost_mask = enq & ~done & ~failed & ~pending_mask
    explicitly_lost = int((lost_mask & ~np.isnan(a["lost_t"])).sum())

    lengths, work = a["length"], a["work"]
    retained = np.zeros(ledger.n)
    for j, seconds in ledger.retained.items():
        retained[j] = seconds
    wasted = np.where(done, work - lengths, np.where(pending_mask, work - retained, work))
    # sums of many chunk times leave float dust: below a microsecond a job wasted nothing
    wasted = np.where(enq & (wasted > 1e-6), wasted, 0.0)

    edges = length_buckets(lengths[enq])
    which = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0, len(edges) - 2)
    by_length: list[LengthBucket] = []
    for b in range(len(edges) - 1):
        in_b = enq & (which == b)
        n_b = int(in_b.sum())
        if n_b:
            c_b = int((in_b & done).sum())
            by_length.append(
                {
                    "lo_s": float(edges[b]),
                    "hi_s": float(edges[b + 1]),
                    "enqueued": n_b,
                    "completed": c_b,
                    "rate": c_b / n_b,
                }
            )

    drains = np.array([d.end - d.start for d in ledger.deploys], dtype=float)
    drain_ok = drains[~np.isnan(drains)]
    run_time = (a["done_t"] - a["first_start"])[done]
    sojourn = (a["done_t"] - a["enqueue_t"])[done]
    result = _Summary({
        "enqueued": enqueued,
        "completed": completed,
        "failed": n_failed,
        "lost": lost,
        "pending": pending,
        "completion_rate": completed / enqueued if enqueued else math.nan,
        "executions": int(a["executions"][enq].sum()),
        "duplicate_item_executions": int((a["item_execs"] - a["unique_items"])[enq].sum()),
        "useful_work_s": float(lengths[done].sum()),
        "wasted_work_s": float(wasted.sum()),
        "hung_time_s": float(ledger.hung_time),
        "run_time_s": _stats(run_time),
        "sojourn_s": _stats(sojourn),
        "drain_s": _drain_stats(drain_ok),
        "deploys": len(ledger.deploys),
        "hard_kills": int(ledger.hard_kills),
        "crashes": int(ledger.crashes),
        "explicitly_lost": explicitly_lost,
        "by_length": by_length,
    })
    result.samples = Samples(run_time_s=run_time, sojourn_s=sojourn, drain_s=drain_ok)
    return cast(RunResult, result)


def _drain_stats(drains: np.ndarray) -> DrainStats:
    return {
        "p50": float(np.median(drains)) if drains.size else None,
        "max": float(drains.max()) if drains.size else None,
    }


def _pooled_stats(rows: list[Mapping[str, Any]], key: str, pool: list[Samples] | None) -> Stats:
    """The ``Stats`` of every replication's completed jobs taken together. Without the
    samples of each run (results read back from JSON), the mean (each run's weighted by its
    completed jobs) and the maximum are still exact; the percentiles of the pool are not
    known, and are None rather than a mean of percentiles."""
    if pool is not None:
        return _stats(np.concatenate([getattr(s, key) for s in pool]))
    parts = [(r[key], r["completed"]) for r in rows if r[key]["mean"] is not None]
    if not parts:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    mean = sum(st["mean"] * n for st, n in parts) / sum(n for _, n in parts)
    return {"mean": float(mean), "p50": None, "p90": None, "p99": None,
            "max": float(max(st["max"] for st, _ in parts))}


def _pooled_drains(rows: list[Mapping[str, Any]], pool: list[Samples] | None) -> DrainStats:
    """The ``DrainStats`` of every replication's deploys taken together (without samples:
    the maximum; the median is not known)."""
    if pool is not None:
        return _drain_stats(np.concatenate([s.drain_s for s in pool]))
    maxima = [r["drain_s"]["max"] for r in rows if r["drain_s"]["max"] is not None]
    return {"p50": None, "max": float(max(maxima)) if maxima else None}


def _ci95(values: list[float]) -> list[float]:
    """The two-sided 95% Student-t interval of the mean of ``values``: mean -/+
    t(0.975, n - 1) s / sqrt(n). Written out rather than ``stats.t.interval``, which gives nan
    when every value is the same (a zero scale) and rounds the last digit differently."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return [math.nan, math.nan]
    mean = float(x.mean())
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return [mean - half, mean + half]


def combine(runs: list[RunResult]) -> Result:
    """Several replications' RESULTs as one: numbers are means, ``by_length``'s counts too;
    ``run_time_s``, ``sojourn_s`` and ``drain_s`` are the statistics of every replication's
    jobs and deploys taken together (from the runs' ``Samples``); ``ci95`` holds 95%
    confidence intervals of the headline numbers."""
    if len(runs) == 1:
        return {**runs[0], "replications": 1}
    rows = cast(list[Mapping[str, Any]], runs)
    found = [samples_of(r) for r in rows]
    pool = None if any(s is None for s in found) else cast(list[Samples], found)
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        if key == "by_length":
            continue
        if key in ("run_time_s", "sojourn_s"):
            out[key] = _pooled_stats(rows, key, pool)
        elif key == "drain_s":
            out[key] = _pooled_drains(rows, pool)
        elif isinstance(value, dict):
            out[key] = {k: _mean([r[key][k] for r in rows]) for k in value}
        else:
            out[key] = _mean([r[key] for r in rows])
    totals: dict[tuple[float, float], list[int]] = {}
    for r in runs:
        for b in r["by_length"]:
            acc = totals.setdefault((b["lo_s"], b["hi_s"]), [0, 0])
            acc[0] += b["enqueued"]
            acc[1] += b["completed"]
    n = len(runs)
    out["by_length"] = [
        {"lo_s": lo, "hi_s": hi, "enqueued": e / n, "completed": c / n, "rate": c / e}
        for (lo, hi), (e, c) in sorted(totals.items())
    ]
    out["ci95"] = {k: _ci95([r[k] for r in rows]) for k in CI_KEYS}
    out["replications"] = n
    return cast(Result, out)


def _mean(values: list[Any]) -> Any:
    nums = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(nums)) if nums else None


@dataclass(frozen=True)
class ScenarioResult:
    """The results of one scenario: per strategy, the RESULT object of the JSON output."""

    scenario: str
    seed: int
    horizon_s: float
    strategies: dict[str, Result] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``deploysim run --json``."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "horizon_s": self.horizon_s,
            "strategies": self.strategies,
        }

    def to_frame(self) -> Any:
        """One row per strategy of the headline numbers, as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for name, r in self.strategies.items():
            rows.append(
                {
                    "strategy": name,
                    **{
                        k: r[k]
                        for k in (
                            *COUNTS,
                            "completion_rate",
                            "executions",
                            "duplicate_item_executions",
                            "useful_work_s",
                            "wasted_work_s",
                            "deploys",
                            "hard_kills",
                        )
                    },
                    "sojourn_p50_s": r["sojourn_s"]["p50"],
                    "sojourn_p99_s": r["sojourn_s"]["p99"],
                    "drain_max_s": r["drain_s"]["max"],
                }
            )
        return pd.DataFrame(rows).set_index("strategy")

    def _repr_html_(self) -> str:
        return str(self.to_frame()._repr_html_())
