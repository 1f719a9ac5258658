"""Strategies compared: scenarios x strategies, run over the same draws, as one tidy table (a
row per scenario and strategy), the rule that picks a strategy from it, and its figures.

    results = run_scenarios(["heroku-hourly", "dora-elite"], horizon="1d", replications=2)
    table = comparison_table(results)
    best_strategies(table)              # {"heroku-hourly": "resumable", ...}
    comparison_figure(table)            # a matplotlib Figure

``compare(...)`` is the first two in one call. The columns of the table (means over the
replications):

- ``completed_pct``: jobs completed by the end, % of those enqueued; the others were
  ``failed`` (in a failed queue), ``lost`` (gone) or still ``pending``;
- ``dup_items_per_job``: items executed more than once, per job; ``runs_per_job``: executions
  started per job (restarts, resumptions, sub-jobs);
- ``wasted_worker_h`` and ``wasted_pct``: worker time thrown away, in hours and as a % of the
  time the completed jobs needed;
- ``sojourn_p50_s``, ``sojourn_p99_s``: enqueue to completion; ``drain_max_s``: the longest
  SIGTERM-to-last-exit of a deploy;
- ``not_completed_per_1000``, ``dropped_per_1000`` (failed or lost), ``pending_share``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..durations import humanize
from ..fleet.replications import run as run_replications
from ..fleet.results import ScenarioResult
from ..scenario import Scenario, load_scenario, with_values
from .figures import article_figure, grouped_bars, strategy_order, style_of

__all__ = [
    "BEHIND",
    "TIE",
    "best_strategies",
    "by_length_table",
    "compare",
    "comparison_figure",
    "comparison_table",
    "completion_figure",
    "contenders",
    "long_job_completion",
    "pick_strategy",
    "result_row",
    "rhythm",
    "run_scenarios",
    "scenario_findings",
    "scenario_overview",
]

#: Jobs failed or lost per 1,000: strategies closer than this to the best count as equal.
TIE = 0.5
#: Share of the jobs pending at the end above the least pending: a queue falling behind.
BEHIND = 0.01


def run_scenarios(
    scenarios: Sequence[str | Scenario],
    strategies: Sequence[str] | None = None,
    *,
    horizon: str | float | None = None,
    replications: int | None = None,
    seed: int | None = None,
    processes: int | None = None,
) -> dict[str, ScenarioResult]:
    """Run each scenario (a bundled name or a Scenario) for each strategy, over the same draws
    within a scenario; ``horizon`` and ``replications`` override the scenarios' own. Keyed by
    scenario name, in the order given."""
    values: dict[str, Any] = {}
    if horizon is not None:
        values["horizon"] = horizon
    if replications is not None:
        values["replications"] = int(replications)
    out = {}
    for item in scenarios:
        s = load_scenario(item) if isinstance(item, str) else item
        if values:
            s = with_values(s, values, f"{s.name} with {values}")
        out[s.name] = run_replications(s, strategies, seed=seed, processes=processes)
    return out


def result_row(r: Mapping[str, Any]) -> dict[str, float]:
    """The comparison's columns from one strategy's RESULT."""
    enqueued = r["enqueued"]
    return {
        "completed_pct": 100 * r["completion_rate"],
        "failed": r["failed"],
        "lost": r["lost"],
        "pending": r["pending"],
        "hard_kills": r["hard_kills"],
        "dup_items_per_job": r["duplicate_item_executions"] / enqueued,
        "runs_per_job": r["executions"] / enqueued,
        "wasted_worker_h": r["wasted_work_s"] / 3600,
        "wasted_pct": 100 * r["wasted_work_s"] / r["useful_work_s"],
        "sojourn_p50_s": r["sojourn_s"]["p50"],
        "sojourn_p99_s": r["sojourn_s"]["p99"],
        "drain_max_s": r["drain_s"]["max"],
        "enqueued": enqueued,
        "completed": r["completed"],
        "deploys": r["deploys"],
        "crashes": r["crashes"],
        "not_completed_per_1000": 10 * (100 - 100 * r["completion_rate"]),
        "dropped_per_1000": 1000 * (r["failed"] + r["lost"]) / enqueued,
        "pending_share": r["pending"] / enqueued,
    }


def comparison_table(results: Mapping[str, ScenarioResult], group: str = "scenario") -> Any:
    """One row per (``group``, strategy): the columns of ``result_row``, as floats."""
    rows = [{group: name, "strategy": strategy, **result_row(r)}
            for name, result in results.items() for strategy, r in result.strategies.items()]
    return pd.DataFrame(rows).set_index([group, "strategy"]).astype(float)


def compare(scenarios: Sequence[str | Scenario], strategies: Sequence[str] | None = None,
            **run: Any) -> Any:
    """``comparison_table(run_scenarios(scenarios, strategies, **run))``."""
    return comparison_table(run_scenarios(scenarios, strategies, **run))


def by_length_table(results: Mapping[str, ScenarioResult], group: str = "scenario") -> Any:
    """Completion by job length: one row per (``group``, strategy, length bucket) with the
    bucket's bounds ``lo_s``, ``hi_s``, its ``enqueued`` and ``completed`` jobs and ``rate``."""
    frames = []
    for name, result in results.items():
        for strategy, r in result.strategies.items():
            b = pd.DataFrame(r["by_length"])
            b.insert(0, "strategy", strategy)
            b.insert(0, group, name)
            frames.append(b)
    return pd.concat(frames, ignore_index=True)


def contenders(t: Any, tie: float = TIE, behind: float = BEHIND) -> Any:
    """The rows of ``t`` (one group: a row per strategy) that fail or lose no more jobs than the
    best, within ``tie`` per 1,000, and keep up with the queue (pending at the end within
    ``behind`` of the least)."""
    keeps_up = t["pending_share"] <= t["pending_share"].min() + behind
    drops_least = t["dropped_per_1000"] <= t["dropped_per_1000"].min() + tie
    return t[keeps_up & drops_least]


def pick_strategy(t: Any, tie: float = TIE, behind: float = BEHIND) -> str:
    """Of the ``contenders``, the strategy that wastes the least worker time, then the one that
    repeats the fewest items."""
    ranked = contenders(t, tie, behind).sort_values(["wasted_pct", "dup_items_per_job"],
                                                    kind="stable")
    return str(ranked.index[0])


def best_strategies(table: Any, tie: float = TIE, behind: float = BEHIND) -> dict[str, str]:
    """``pick_strategy`` for each group of a comparison table."""
    groups = table.index.get_level_values(0).unique()
    return {str(g): pick_strategy(table.loc[g], tie, behind) for g in groups}


def _wide(table: Any, column: str) -> Any:
    wide = table[column].unstack("strategy")
    wide = wide.reindex(index=table.index.get_level_values(0).unique())
    return wide[strategy_order(table.index.get_level_values("strategy"))]


def comparison_figure(table: Any, title: str = "", xlabels: Sequence[str] | None = None
                      ) -> Figure:
    """Four panels of grouped bars, one group per row label of ``table`` and one colour per
    strategy, on log scales: jobs not completed (failed or lost darker), worker time wasted,
    items run twice, the longest drain."""
    fig, axes = article_figure(11, 7.5, nrows=2, ncols=2)
    panels = [
        ("not_completed_per_1000",
         "Jobs not completed\n(dark: failed or lost; pale: still pending at the end)",
         "per 1,000 jobs enqueued", "dropped_per_1000"),
        ("wasted_pct", "Worker time wasted", "% of the useful work", None),
        ("dup_items_per_job", "Items executed more than once", "duplicate items per job", None),
        ("drain_max_s", "Longest drain at a deploy", "SIGTERM to last exit (s)", None),
    ]
    for ax, (column, panel, ylabel, under) in zip(axes.flat, panels, strict=True):
        grouped_bars(ax, _wide(table, column), panel, ylabel,
                     under=None if under is None else _wide(table, under))
        if xlabels is not None:
            ax.set_xticks(range(len(xlabels)), list(xlabels))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels),
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def completion_figure(lengths: Any, grace: Mapping[str, float], min_jobs: int = 20,
                      title: str = "Completion by job length") -> Figure:
    """One panel per group of a ``by_length_table``: the share of each length bucket completed,
    one line per strategy (buckets of fewer than ``min_jobs`` jobs left out), with the
    platform's ``grace`` (by group) marked."""
    group = lengths.columns[0]
    groups = list(dict.fromkeys(lengths[group]))
    names = strategy_order(lengths["strategy"])
    fig, axes = article_figure(max(4.5, 4 * len(groups)), 4, ncols=len(groups), sharey=True,
                               squeeze=False)
    for ax, name in zip(axes[0], groups, strict=True):
        for strategy in names:
            b = lengths[(lengths[group] == name) & (lengths["strategy"] == strategy)]
            b = b[b["enqueued"] >= min_jobs]
            ax.plot(np.sqrt(b["lo_s"] * b["hi_s"]), 100 * b["rate"], ms=4, label=strategy,
                    **style_of(strategy, names))
        g = grace[name]
        ax.axvline(g, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f" grace {humanize(g)}", (g, 0.5), xycoords=("data", "axes fraction"),
                    fontsize=8, color="grey", rotation=90, va="center", ha="right")
        ax.set_xscale("log")
        ax.set_xlabel("job length (s, log scale)")
        if len(groups) > 1:
            ax.set_title(str(name), fontsize=11)
    axes[0][0].set_ylabel("jobs of that length completed (%)")
    axes[0][0].legend(loc="lower left", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=13)
    return fig


def long_job_completion(lengths: Any, longer_than: float) -> Any:
    """% of the jobs in buckets starting at ``longer_than`` seconds or more that completed: a
    row per group, a column per strategy (NaN where there were none)."""
    group = lengths.columns[0]
    long = lengths[lengths["lo_s"] >= longer_than]
    sums = long.groupby([group, "strategy"], sort=False)[["completed", "enqueued"]].sum()
    rate = (100 * sums["completed"] / sums["enqueued"].where(sums["enqueued"] > 0)).unstack()
    groups = list(dict.fromkeys(lengths[group]))
    return rate.reindex(index=groups, columns=strategy_order(lengths["strategy"]))


def scenario_findings(t: Any, name: str, grace: float, tie: float = TIE,
                      behind: float = BEHIND) -> str:
    """What one scenario's rows (``t``: a row per built-in strategy) say, in Markdown."""
    worst = t["completed_pct"].idxmin()
    lines = [f"**{name}**: {t['deploys'].iloc[0]:.0f} deploys and "
             f"{t['enqueued'].iloc[0]:,.0f} jobs per replication.",
             f"- Fewest jobs completed: **{worst}**, {t.loc[worst, 'completed_pct']:.2f}% "
             f"(best: {t['completed_pct'].max():.2f}%)."]
    s = t.loc["sidekiq"]
    text = (f"- Sidekiq restarts whatever is still running 25 s after SIGTERM: it ran "
            f"{s['dup_items_per_job']:.2f} items per job more than once and wasted "
            f"{s['wasted_pct']:.1f}% of the useful work ({s['wasted_worker_h']:.0f} "
            "worker-hours)")
    if s["pending"] > 10 * max(t["pending"].min(), 1):
        text += (f"; {s['pending']:,.0f} jobs were still waiting at the end, against "
                 f"{t['pending'].min():,.0f} at best: its queue falls behind, because long "
                 "jobs pushed back to the front start over at every deploy")
    lines.append(text + ".")
    r, c = t.loc["resque"], t.loc["celery"]
    lines.append(
        f"- Resque and Celery wait for the job, and the platform kills it {humanize(grace)} "
        f"later: {r['hard_kills']:.0f} kills per replication. Resque puts those jobs in its "
        f"failed queue ({r['failed']:.0f}); Celery (without acks_late) loses them "
        f"({c['lost']:.0f}), with nothing left to retry.")
    sp = t.loc["split"]
    factor = (f"by a factor of {s['dup_items_per_job'] / sp['dup_items_per_job']:.0f}"
              if sp["dup_items_per_job"] > 0 else "to zero")
    lines.append(
        f"- Splitting jobs into sub-jobs of 100 items cuts Sidekiq's repeated items {factor} "
        f"({sp['dup_items_per_job']:.2f} per job) and its waste to {sp['wasted_pct']:.2f}%, "
        f"at the price of {sp['runs_per_job']:.1f} runs to schedule per job (the resumable "
        f"engine: {t.loc['resumable', 'runs_per_job']:.2f}).")
    rs = t.loc["resumable"]
    lines.append(
        f"- The resumable engine completed {rs['completed_pct']:.2f}%, repeated "
        f"{rs['dup_items_per_job']:.0f} items and wasted {rs['wasted_pct']:.2f}% of the work; "
        f"its longest drain was {rs['drain_max_s']:.1f} s against up to "
        f"{t.drop(index='resumable')['drain_max_s'].max():.0f} s for the others.")
    if sp["sojourn_p99_s"] < rs["sojourn_p99_s"]:
        lines.append(
            "- Split jobs finish long work sooner, because their sub-jobs run side by side on "
            f"several workers: sojourn p99 {humanize(sp['sojourn_p99_s'])} against "
            f"{humanize(rs['sojourn_p99_s'])} for the resumable engine, which runs a job on one "
            "worker at a time.")
    lines.append("- Fewest jobs failed or lost, keeping up with the queue, and the least "
                 f"waste: **{pick_strategy(t, tie, behind)}**.")
    return "\n".join(lines)


def rhythm(s: Scenario) -> str:
    """A scenario's deploy rhythm in words: "every 1h", "4 a day (poisson)"."""
    d = s.deploys
    if d.schedule == "periodic":
        return f"every {humanize(d.every)}"
    if d.schedule in ("poisson", "business-hours"):
        return f"{d.rate * 86400:.3g} a day ({d.schedule})"
    return str(d.schedule)


def scenario_overview(scenarios: Sequence[str | Scenario]) -> Any:
    """One row per scenario: its deploy rhythm, grace, fleet, arrival rate and job lengths."""
    rows = []
    for item in scenarios:
        s = load_scenario(item) if isinstance(item, str) else item
        rows.append({
            "scenario": s.name,
            "deploys": rhythm(s),
            "grace before SIGKILL": humanize(s.platform.grace),
            "workers": s.fleet.workers,
            "jobs per hour": round(s.workload.rate * 3600),
            "job lengths": "; ".join(c.length.describe() for c in s.workload.classes),
            "mean length": humanize(s.workload.mean_length()),
        })
    return pd.DataFrame(rows).set_index("scenario")
