"""Tuning a resumable job: the checkpoint interval under crashes, simulated and against the
closed forms of Young and Daly (``theory``), and ``max_runtime``, which makes a long job yield
its worker to the short jobs queued behind it.

    study = CheckpointStudy(work=7200, checkpoint_cost=20, restart_delay=10)
    sweep = sweep_intervals(study, ["1h", "4h"], [60, 300, 1200])
    best = optima(study, sweep)
    interval_figure(study, sweep, best)

    limits = sweep_max_runtime(scenario, [None, "15m", "1m"])
    max_runtime_figure(limits, target=600)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..analysis import theory
from ..analysis.sweep import run_sweep
from ..durations import humanize, parse_duration
from ..fleet import replications
from ..report.plots import STRATEGY_COLORS
from ..scenario import Scenario, scenario_from_dict, with_values
from .figures import article_figure

__all__ = [
    "NEAR",
    "CheckpointStudy",
    "daly_by_segment",
    "daly_examples",
    "extra_pct",
    "interval_figure",
    "job_records",
    "longest_limit_meeting",
    "max_runtime_figure",
    "optima",
    "sweep_intervals",
    "sweep_max_runtime",
]

#: Percentage points: intervals whose simulated cost is this close to the best are near-best.
NEAR = 1.0
#: One colour per mean time between crashes, outside the strategies' palette.
_SHADES = ("#332288", "#882255", "#999933", "#117733", "#AA4499")


@dataclass(frozen=True)
class CheckpointStudy:
    """A backlog of ``jobs`` identical jobs of ``work`` seconds (one-second items) on
    ``workers`` workers that never deploy but crash; each checkpoint takes ``checkpoint_cost``
    seconds and a crashed worker is back after ``restart_delay``."""

    work: float
    checkpoint_cost: float
    restart_delay: float
    jobs: int = 200
    workers: int = 100
    replications: int = 2
    seed: int = 11
    horizon: str = "7d"

    def scenario(self, longest_interval: float) -> Scenario:
        """The study as a scenario, with a lease long enough for ``longest_interval`` (the
        engine checkpoints at least every ``lease_ttl / 2``)."""
        return scenario_from_dict({
            "name": "checkpoint-tuning",
            "seed": self.seed,
            "horizon": self.horizon,
            "replications": self.replications,
            "fleet": {"workers": self.workers, "restart_delay": self.restart_delay},
            "platform": {"grace": "30s"},
            "deploys": {"schedule": "none"},
            "workload": {"arrivals": "backlog", "count": self.jobs, "item_time": "1s",
                         "length": {"kind": "fixed", "length": self.work}},
            "strategies": {"resumable": {"checkpoint_cost": self.checkpoint_cost,
                                         "lease_ttl": 2 * float(longest_interval)}},
        }, "CheckpointStudy")

    def daly_pct(self, tau: float, mtbf: float) -> float:
        """Daly's expected extra wall time at interval ``tau``, as a % of the work."""
        return extra_pct(theory.daly_expected_time(
            self.work, tau, self.checkpoint_cost, mtbf, self.restart_delay), self.work)

    def segment_pct(self, tau: float, mtbf: float) -> float:
        """``daly_by_segment``'s extra wall time, as a % of the work."""
        return extra_pct(daly_by_segment(
            self.work, tau, self.checkpoint_cost, mtbf, self.restart_delay), self.work)


def extra_pct(wall: float, work: float) -> float:
    """Wall time beyond the work itself, as a % of the work."""
    return 100 * (wall / work - 1)


def daly_by_segment(work: float, tau: float, cost: float, mtbf: float,
                    restart: float = 0.0) -> float:
    """Daly's expected wall time taken segment by segment: whole segments of ``tau``, then a
    shorter last one at its own length (his formula scales that last one linearly)."""
    n, rest = divmod(work, tau)
    total = theory.daly_expected_time(n * tau, tau, cost, mtbf, restart) if n else 0.0
    if rest > 1e-9:
        total += theory.daly_expected_time(rest, rest, cost, mtbf, restart)
    return total


def sweep_intervals(study: CheckpointStudy, mtbfs: Sequence[str], intervals: Sequence[float],
                    **sweep: Any) -> Any:
    """Every interval under every mean time between crashes: one row per point with ``mtbf``
    (as given), ``M`` (seconds), ``tau``, the jobs ``completed`` and ``pending``, the
    ``crashes``, and the extra wall time per job as a % of the work: ``simulated_pct``,
    ``daly_pct`` and ``segment_pct`` (``daly_by_segment``). ``sweep``: ``run_sweep``'s
    options (``executor``, ``processes``)."""
    intervals = [float(t) for t in intervals]
    raw = run_sweep([study.scenario(max(intervals))],
                    {"crashes.mtbf": list(mtbfs),
                     "strategies.resumable.checkpoint_every": intervals},
                    ["resumable"], **{"progress": False, **sweep})
    out = pd.DataFrame({
        "mtbf": raw["crashes.mtbf"],
        "M": raw["crashes.mtbf"].map(lambda m: parse_duration(m, "mtbf")),
        "tau": raw["strategies.resumable.checkpoint_every"].astype(float),
        "completed": raw["completed"],
        "pending": raw["pending"],
        "crashes": raw["crashes"],
        "simulated_pct": extra_pct(raw["run_time_s_mean"], study.work),
    })
    out["daly_pct"] = [study.daly_pct(t, m) for t, m in zip(out["tau"], out["M"], strict=True)]
    out["segment_pct"] = [study.segment_pct(t, m)
                          for t, m in zip(out["tau"], out["M"], strict=True)]
    return out


def optima(study: CheckpointStudy, sweep: Any, near: float = NEAR) -> Any:
    """One row per mean time between crashes: Young's and Daly's optimum intervals, the best
    simulated one, the range of intervals within ``near`` points of it, its cost, the simulated
    cost at the interval tried nearest Daly's, and Daly's cost at his optimum."""
    rows = []
    for mtbf, s in sweep.groupby("mtbf", sort=False):
        m = float(s["M"].iloc[0])
        tau_daly = theory.daly_interval(study.checkpoint_cost, m)
        best = s.loc[s["simulated_pct"].idxmin()]
        close = s[s["simulated_pct"] <= best["simulated_pct"] + near]
        nearest = s.iloc[int(np.argmin(np.abs(np.log(s["tau"] / tau_daly))))]
        rows.append({
            "mtbf": mtbf,
            "young_tau": theory.young_interval(study.checkpoint_cost, m),
            "daly_tau": tau_daly,
            "best_tau": float(best["tau"]),
            "near_best_from": float(close["tau"].min()),
            "near_best_to": float(close["tau"].max()),
            "best_pct": float(best["simulated_pct"]),
            "simulated_pct_near_daly": float(nearest["simulated_pct"]),
            "daly_pct_at_daly": study.daly_pct(tau_daly, m),
        })
    return pd.DataFrame(rows).set_index("mtbf")


def interval_figure(study: CheckpointStudy, sweep: Any, best: Any, near: float = NEAR) -> Figure:
    """Left: extra wall time against the interval, simulated (points) and Daly's (lines; dotted:
    by segment), with Daly's optimum (open triangle) and the best simulated interval (star).
    Right: the optimum interval against the mean time between crashes, Young's, Daly's and the
    simulation's (bar: the near-best range)."""
    fig, (ax, ax2) = article_figure(12, 4.8, ncols=2, width_ratios=[3, 2])
    taus = sweep["tau"]
    fine = np.geomspace(taus.min(), taus.max(), 200)
    mtbfs = list(best.index)
    shades = dict(zip(mtbfs, _SHADES * len(mtbfs), strict=False))
    for mtbf in mtbfs:
        s = sweep[sweep["mtbf"] == mtbf].sort_values("tau")
        m, colour, o = float(s["M"].iloc[0]), shades[mtbf], best.loc[mtbf]
        ax.plot(fine, [study.daly_pct(t, m) for t in fine], color=colour, linewidth=1.5,
                label=f"M = {mtbf}: Daly")
        ax.plot(fine, [study.segment_pct(t, m) for t in fine], color=colour, linewidth=0.8,
                linestyle=":")
        ax.plot(s["tau"], s["simulated_pct"], "o", color=colour, ms=5,
                label=f"M = {mtbf}: simulated")
        ax.plot([o["daly_tau"]], [o["daly_pct_at_daly"]], "^", mfc="white", mec=colour, ms=10,
                mew=1.5)
        ax.plot([o["best_tau"]], [o["best_pct"]], "*", color=colour, ms=14, mec="black",
                mew=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (30, 60, 120, 300, 600, 1800, 3600, 7200) if t <= taus.max()]
    ax.set_xticks(ticks, [humanize(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("checkpoint interval tau (work between checkpoints, log scale)")
    ax.set_ylabel("extra wall time (% of the work, log scale)")
    ax.set_title(f"Cost of checkpointing a {humanize(study.work)} job (C = "
                 f"{humanize(study.checkpoint_cost)}, R = {humanize(study.restart_delay)})",
                 fontsize=11)
    ax.legend(fontsize=8, ncol=3, loc="upper center", frameon=False)

    ms = np.array([float(sweep.loc[sweep["mtbf"] == m, "M"].iloc[0]) for m in mtbfs])
    grid = np.geomspace(ms.min() / 1.5, ms.max() * 1.5, 50)
    cost = study.checkpoint_cost
    ax2.plot(grid / 3600, [theory.young_interval(cost, m) for m in grid], color="black",
             linestyle="--", label="Young: sqrt(2CM)")
    ax2.plot(grid / 3600, [theory.daly_interval(cost, m) for m in grid],
             color=STRATEGY_COLORS["resumable"], label="Daly")
    for mtbf, m in zip(mtbfs, ms, strict=True):
        o = best.loc[mtbf]
        ax2.errorbar([m / 3600], [o["best_tau"]],
                     yerr=[[o["best_tau"] - o["near_best_from"]],
                           [o["near_best_to"] - o["best_tau"]]],
                     fmt="*", color=shades[mtbf], ms=12, mec="black", mew=0.5, capsize=4)
    ax2.plot([], [], "*", color="grey", ms=10, label=f"simulated best (bar: within {near:g} point)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xticks(ms / 3600, [humanize(m) for m in ms])
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ticks = [120, 300, 600, 1200, 1800, 3600]
    ax2.set_yticks(ticks, [humanize(t) for t in ticks])
    ax2.yaxis.set_minor_formatter(NullFormatter())
    ax2.set_xlabel("mean time between crashes M (log scale)")
    ax2.set_ylabel("optimum interval (log scale)")
    ax2.set_title("Optimum checkpoint interval", fontsize=11)
    ax2.legend(fontsize=8, loc="upper left", frameon=False)
    return fig


def daly_examples(cases: Sequence[tuple[float, str]], work: float = 3600.0,
                  default: float = 5.0) -> Any:
    """For each (checkpoint cost in seconds, mean time between crashes): Daly's interval, the
    lease it needs, and the extra wall time of ``work`` seconds at it and at ``default``."""
    rows = []
    for cost, mtbf in cases:
        m = parse_duration(mtbf, "mtbf")
        tau = theory.daly_interval(cost, m)
        rows.append({
            "checkpoint cost": humanize(cost),
            "crashes": f"one per {mtbf} per worker",
            "Daly's checkpoint_every": humanize(tau),
            "lease_ttl at least": humanize(2 * tau),
            "extra wall time at that interval (%)":
                round(extra_pct(theory.daly_expected_time(work, tau, cost, m), work), 3),
            f"extra at the default {humanize(default)} (%)":
                round(extra_pct(theory.daly_expected_time(work, default, cost, m), work), 3),
        })
    return pd.DataFrame(rows)


def job_records(scenario: Scenario, strategy: str = "resumable", replication: int = 0) -> Any:
    """One row per job of one replication: its ``length``, ``enqueued`` and ``done`` times
    (NaN if it did not finish) and its ``executions``."""
    chosen = replications.strategies_of(scenario, [strategy])[strategy]
    draws = replications.draw(scenario, scenario.seed, replication)
    a = replications.fleet_for(scenario, chosen, draws).run().arrays()
    return pd.DataFrame({"length": a["length"], "enqueued": a["enqueue_t"],
                         "done": a["done_t"], "executions": a["executions"]})


def sweep_max_runtime(scenario: Scenario, limits: Sequence[str | float | None],
                      long: float = 3600.0) -> Any:
    """The resumable strategy of ``scenario`` under each ``max_runtime`` (None: no limit), over
    all its replications: one row per limit ("off" for None) with the short jobs' (shorter than
    ``long``) enqueue-to-completion percentiles and completion, and the long jobs' median
    sojourn, mean runs and completion."""
    rows = []
    for limit in limits:
        s = scenario if limit is None else with_values(
            scenario, {"strategies.resumable.max_runtime": limit}, f"max_runtime={limit}")
        jobs = pd.concat([job_records(s, replication=r) for r in range(s.replications)])
        jobs["sojourn"] = jobs["done"] - jobs["enqueued"]
        short, longer = jobs[jobs["length"] < long], jobs[jobs["length"] >= long]
        wait = short["sojourn"].dropna()
        rows.append({
            "max_runtime": "off" if limit is None else str(limit),
            "short_p50_s": wait.quantile(0.5),
            "short_p90_s": wait.quantile(0.9),
            "short_p99_s": wait.quantile(0.99),
            "short_completed_pct": 100 * short["done"].notna().mean(),
            "long_sojourn_p50_s": longer["sojourn"].median(),
            "long_runs_mean": longer["executions"].mean(),
            "long_completed_pct": 100 * longer["done"].notna().mean(),
            "short_jobs": len(short),
            "long_jobs": len(longer),
        })
    return pd.DataFrame(rows).set_index("max_runtime")


def longest_limit_meeting(limits: Any, target: float) -> str | None:
    """The first limit of ``sweep_max_runtime``'s rows (longest first, as tried) whose short
    jobs' p99 stays within ``target`` seconds; None if none does."""
    meets = [name for name, row in limits.iterrows() if row["short_p99_s"] <= target]
    return str(meets[0]) if meets else None


def max_runtime_figure(limits: Any, target: float, work: Mapping[str, float] | None = None
                       ) -> Figure:
    """Left: the short jobs' p50, p90 and p99 enqueue-to-completion under each limit, with the
    ``target``. Right: the long jobs' median enqueue-to-completion (``work``: {"label":
    seconds} of work to mark)."""
    x = np.arange(len(limits))
    colour = STRATEGY_COLORS["resumable"]
    fig, (ax, ax2) = article_figure(12, 4.2, ncols=2)
    for column, marker, style in [("short_p50_s", "o", ":"), ("short_p90_s", "s", "--"),
                                  ("short_p99_s", "D", "-")]:
        ax.plot(x, limits[column], marker=marker, linestyle=style, color=colour,
                label=column.split("_")[1])
    ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.annotate(f"target {humanize(target)}", (x[-1], target), fontsize=8, color="grey",
                ha="right", va="bottom")
    ax.set_yscale("log")
    ticks = [10, 60, 600, 3600, 4 * 3600]
    ax.set_yticks(ticks, [humanize(t) for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, limits.index)
    ax.set_xlabel("max_runtime of the resumable job")
    ax.set_ylabel("enqueue to completion (log scale)")
    ax.set_title("Short jobs: time from enqueue to completion", fontsize=11)
    ax.legend(title="percentile", frameon=False)
    ax2.bar(x, limits["long_sojourn_p50_s"] / 3600, color=colour, width=0.6)
    for label, seconds in (work or {}).items():
        ax2.axhline(seconds / 3600, color="grey", linestyle=":", linewidth=1)
        ax2.annotate(label, (x[0] - 0.3, seconds / 3600), fontsize=8, color="grey",
                     va="bottom")
    ax2.set_xticks(x, limits.index)
    ax2.set_xlabel("max_runtime of the resumable job")
    ax2.set_ylabel("median enqueue to completion (h)")
    ax2.set_title("Long jobs: what yielding costs them", fontsize=11)
    ax2.grid(axis="x", visible=False)
    return fig
