"""The findings of the report, computed from the rows of ``results.csv``: per part, the
sentences of its findings and the Markdown tables behind them. Nothing here is written by hand;
change the numbers and the findings change with them.

    section = grid_section(read_results("reports/results.csv"), make_plan())
    section.findings, section.tables
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..durations import DAY, humanize
from ..text import markdown_table
from .plan import STRATEGY_ORDER, Plan

__all__ = [
    "CDF_SHARES",
    "THRESHOLD",
    "Section",
    "Z",
    "cdf_section",
    "checkpoint_section",
    "falls_below",
    "grid_section",
    "longest_completed",
    "num",
    "pct",
    "rhythm_label",
    "scenario_section",
    "split_step",
    "theory_agreement",
]

#: A job length "still completes" at a rhythm when at least this share of its jobs do.
THRESHOLD = 0.99
#: Simulated and closed-form completion rates agree within Z binomial standard errors.
Z = 3
#: The share of jobs done that the time-to-complete table reads off the curve.
CDF_SHARES = (0.5, 0.9)


@dataclass(frozen=True)
class Section:
    """What one part of the report finds: its sentences and its Markdown tables."""

    findings: tuple[str, ...]
    tables: tuple[str, ...]


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage: "99.0%"; "-" for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}%"


def num(x: float, digits: int = 3) -> str:
    """A count or measure: "1,234" from a thousand on, else ``digits`` significant figures."""
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def rhythm_label(n: float) -> str:
    """Deploys a day as the tables write them: "16/day"."""
    n = float(n)
    return f"{n:g}/day"


def longest_completed(grid: Any, strategy: str, per_day: float) -> float | None:
    """The longest job length of the grid such that jobs of that length and every shorter one
    complete at a rate of at least 99% under ``strategy`` at ``per_day`` deploys a day."""
    rows = grid[(grid["strategy"] == strategy) & (grid["deploys_per_day"] == per_day)]
    best = None
    for length, rate in sorted(zip(rows["length_s"], rows["completion_rate"], strict=True)):
        if rate < THRESHOLD:
            break
        best = length
    return best


def falls_below(grid: Any, strategy: str, length: float) -> float | None:
    """The lowest rhythm (deploys a day) at which jobs of ``length`` complete under ``strategy``
    at a rate below 99%, or None if they never do on the grid."""
    rows = grid[(grid["strategy"] == strategy) & (grid["length_s"] == length)]
    for per_day, rate in sorted(zip(rows["deploys_per_day"], rows["completion_rate"],
                                    strict=True)):
        if rate < THRESHOLD:
            return float(per_day)
    return None


def theory_agreement(grid: Any) -> list[str]:
    """Per strategy with a closed form: cells within ``Z`` binomial standard errors of it."""
    out = []
    for strategy in STRATEGY_ORDER:
        rows = grid[(grid["strategy"] == strategy) & grid["theory_completion_rate"].notna()]
        if rows.empty:
            continue
        p = rows["theory_completion_rate"].to_numpy(float)
        sim = rows["completion_rate"].to_numpy(float)
        n = rows["replications"].to_numpy(float)
        se = np.sqrt(p * (1 - p) / n)
        close = np.abs(sim - p) <= Z * se + 1e-9
        worst = int(np.argmax(np.abs(sim - p)))
        w = rows.iloc[worst]
        out.append(
            f"`{strategy}` against its closed form: {int(close.sum())} of {len(rows)} cells "
            f"within {Z} binomial standard errors; "
            + ("every cell equal to it." if sim[worst] == p[worst] else
               f"the largest gap is {pct(abs(sim[worst] - p[worst]))} "
               f"({humanize(w['length_s'])} jobs at {rhythm_label(w['deploys_per_day'])}: "
               f"simulated {pct(sim[worst])}, closed form {pct(p[worst])}).")
        )
    return out


def _longest_table(grid: Any, rhythms: list[float], lengths: list[float]) -> str:
    """Per strategy and rhythm, the longest length that still completes."""
    head = ["strategy", *[rhythm_label(r) for r in rhythms]]
    rows = []
    for strategy in STRATEGY_ORDER:
        cells = []
        for r in rhythms:
            best = longest_completed(grid, strategy, r)
            if best is None:
                cells.append("none")
            elif best == max(lengths):
                cells.append(f"{humanize(best)} (all)")
            else:
                cells.append(humanize(best))
        rows.append([f"`{strategy}`", *cells])
    return markdown_table(head, rows)


def grid_section(df: Any, plan: Plan) -> Section:
    """Deploy rhythm against job length (``part = grid``)."""
    grid = df[df["part"] == "grid"]
    rhythms = sorted(grid["deploys_per_day"].unique())
    lengths = sorted(grid["length_s"].unique())
    reps = int(grid["replications"].max())
    findings = []
    longest = _longest_table(grid, rhythms, lengths)
    # the rhythm at which one-hour jobs (or the nearest length) fall below 99%
    hour = min(lengths, key=lambda x: abs(math.log(x / 3600.0)))
    parts = []
    for strategy in STRATEGY_ORDER:
        r = falls_below(grid, strategy, hour)
        parts.append(f"`{strategy}` " + ("never on this grid (up to "
                                         f"{rhythm_label(max(rhythms))})" if r is None
                                         else f"at {rhythm_label(r)}"))
    findings.append(f"Jobs of {humanize(hour)} fall below {pct(THRESHOLD, 0)} completion: "
                    + "; ".join(parts) + ".")
    # livelock: sidekiq at lengths above the period
    side = grid[(grid["strategy"] == "sidekiq")]
    period = DAY / side["deploys_per_day"]
    over = side[side["length_s"] > period]
    if not over.empty:
        findings.append(
            f"Livelock: of the {len(over)} `sidekiq` cells whose job is longer than the deploy "
            f"period, the highest completion rate is {pct(over['completion_rate'].max())} "
            f"(formula 3: such a job restarts at every deploy and never finishes); at or under "
            f"the period the lowest is "
            f"{pct(side[side['length_s'] <= period]['completion_rate'].min())}."
        )
    for strategy in ("split", "resumable"):
        s = grid[grid["strategy"] == strategy]
        stretch = float((s["run_time_s_mean"] / s["length_s"]).max())
        findings.append(
            f"`{strategy}` completes {pct(s['completion_rate'].mean())} of jobs over the whole "
            f"grid (lowest cell {pct(s['completion_rate'].min())}); its mean time from first "
            f"start to completion is at most {num(stretch)} times the job's length."
        )
    findings += theory_agreement(grid)
    # the table at the chosen rhythm
    chosen = grid[grid["deploys_per_day"] == plan.chosen_rhythm]
    head = ["length", *[f"`{s}`" for s in STRATEGY_ORDER], "restart (closed form)",
            "wait, then kill (closed form)"]
    rows = []
    for length in lengths:
        at = chosen[chosen["length_s"] == length].set_index("strategy")
        rows.append([
            humanize(length), *[pct(at.loc[s, "completion_rate"]) for s in STRATEGY_ORDER],
            pct(at.loc["sidekiq", "theory_completion_rate"]),
            pct(at.loc["resque", "theory_completion_rate"]),
        ])
    tables = (
        f"### Completion rate by job length at {rhythm_label(plan.chosen_rhythm)} "
        f"(a deploy every {humanize(DAY / plan.chosen_rhythm)})\n\n"
        f"Each cell is {reps} jobs, each alone on a worker with its own deploy phase.\n\n"
        + markdown_table(head, rows),
        f"### The longest job that still completes\n\nThe longest length of the grid at which "
        f"jobs of that length and every shorter one complete at {pct(THRESHOLD, 0)} or more.\n\n"
        + longest,
    )
    return Section(tuple(findings), tables)


def scenario_section(df: Any) -> Section:
    """The bundled scenarios (``part = scenarios``)."""
    sc = df[df["part"] == "scenarios"]
    findings = []
    head = ["scenario", "strategy", "completed", "lost", "failed", "pending", "dup items",
            "wasted (h)", "drain p50", "drain max", "hard kills"]
    rows = []
    for _, r in sc.iterrows():
        rows.append([
            r["scenario"], f"`{r['strategy']}`", pct(r["completion_rate"], 2),
            num(r["lost"]), num(r["failed"]), num(r["pending"]),
            num(r["duplicate_item_executions"]), num(r["wasted_work_s"] / 3600),
            humanize(r["drain_s_p50"]), humanize(r["drain_s_max"]), num(r["hard_kills"]),
        ])
    table = markdown_table(head, rows, right=2)
    by = sc.groupby("strategy", sort=False)
    for strategy in STRATEGY_ORDER:
        g = by.get_group(strategy)
        losers = g[(g["lost"] + g["failed"]) > 0]
        work = g["useful_work_s"].sum() + g["wasted_work_s"].sum()
        findings.append(
            f"`{strategy}`: {num(g['lost'].sum())} jobs lost and {num(g['failed'].sum())} "
            f"failed of {num(g['enqueued'].sum())} enqueued ("
            + (f"in {len(losers)} of {len(g)} scenarios" if len(losers) else "in none of the "
               f"{len(g)} scenarios")
            + f"); {num(g['duplicate_item_executions'].sum())} items run more than once; "
            f"{pct(g['wasted_work_s'].sum() / work if work else math.nan)} of worker time "
            f"wasted; the longest deploy drain {humanize(g['drain_s_max'].max())}."
        )
    best = []
    for name, g in sc.groupby("scenario", sort=False):
        top = g["completion_rate"].max()
        winners = [f"`{s}`" for s in g[g["completion_rate"] == top]["strategy"]]
        best.append(f"{name} ({', '.join(winners)})")
    findings.append("Highest completion rate per scenario: " + "; ".join(best) + ".")
    return Section(tuple(findings), (table,))


def checkpoint_section(df: Any, plan: Plan) -> Section:
    """The checkpoint interval under crashes (``part = checkpoint``)."""
    ck = df[df["part"] == "checkpoint"].sort_values("checkpoint_every_s")
    young = float(ck["young_interval_s"].iloc[0])
    daly = float(ck["daly_interval_s"].iloc[0])
    sim = ck["run_time_s_mean"].to_numpy(float)
    theory = ck["theory_expected_time_s"].to_numpy(float)
    taus = ck["checkpoint_every_s"].to_numpy(float)
    i = int(np.nanargmin(sim))
    j = int(np.argmin(theory))
    gap = (sim - theory) / theory
    k = int(np.nanargmax(np.abs(gap)))
    h = humanize
    findings = (
        f"Checkpointing under crashes ({h(plan.checkpoint_work)} of work, a crash every "
        f"{h(plan.checkpoint_mtbf)} on average, checkpoints of {h(plan.checkpoint_cost)}, "
        f"{h(plan.checkpoint_restart)} to restart): Young's optimum is {h(young)}, Daly's "
        f"{h(daly)}; the best simulated interval is {h(taus[i])} "
        f"({h(sim[i])} on average), the best of the same grid by Daly's formula {h(taus[j])} "
        f"({h(theory[j])}).",
        f"Simulation against Daly's expected time: the largest gap is {pct(gap[k])} at an "
        f"interval of {h(taus[k])}; the lowest completion rate of these jobs is "
        f"{pct(ck['completion_rate'].min(), 2)}.",
    )
    head = ["interval", "simulated mean", "Daly's formula", "gap", "median", "90th percentile"]
    rows = []
    for _, r in ck.iterrows():
        rows.append([h(r["checkpoint_every_s"]), h(r["run_time_s_mean"]),
                     h(r["theory_expected_time_s"]),
                     pct((r["run_time_s_mean"] - r["theory_expected_time_s"])
                         / r["theory_expected_time_s"]),
                     h(r["run_time_s_p50"]), h(r["run_time_s_p90"])])
    return Section(findings, (markdown_table(head, rows),))


def split_step(cdf: Any, sub_job_s: float) -> tuple[float, float, float, float] | None:
    """``split``'s step in the time-to-complete curve ``cdf`` (its rows of ``part = cdf``) at
    the length of its sub-jobs: the last time before ``sub_job_s`` and its share done, the
    first time after it and its share; None when the curve does not span ``sub_job_s``."""
    c = cdf[cdf["strategy"] == "split"].sort_values("t_s")
    t, f = c["t_s"].to_numpy(float), c["completed_within_fraction"].to_numpy(float)
    before, after = np.nonzero(t < sub_job_s)[0], np.nonzero(t > sub_job_s)[0]
    if not before.size or not after.size:
        return None
    i, j = before[-1], after[0]
    return float(t[i]), float(f[i]), float(t[j]), float(f[j])


def cdf_section(df: Any, plan: Plan) -> Section:
    """Time to complete (``part = cdf``)."""
    cdf = df[df["part"] == "cdf"]
    name = cdf["scenario"].iloc[0]
    horizon = float(cdf["horizon_s"].iloc[0])
    head = ["strategy", "jobs", *[f"{pct(q, 0)} done within" for q in CDF_SHARES],
            "done within the horizon's half"]
    rows = []
    for strategy in STRATEGY_ORDER:
        c = cdf[cdf["strategy"] == strategy].sort_values("t_s")
        t, f = c["t_s"].to_numpy(float), c["completed_within_fraction"].to_numpy(float)

        def first(q: float, t: np.ndarray = t, f: np.ndarray = f) -> str:
            hit = np.nonzero(f >= q)[0]
            return humanize(t[hit[0]]) if hit.size else "never"

        rows.append([f"`{strategy}`", num(float(c["enqueued"].iloc[0])),
                     *[first(q) for q in CDF_SHARES], pct(f[-1], 2)])
    findings = [
        f"Time to complete in {name} (jobs enqueued in the first {humanize(horizon / 2)}): "
        + "; ".join(f"{r[0]} completes {r[-1]} of them, {pct(CDF_SHARES[-1], 0)} within "
                    f"{r[-2]}" for r in rows) + ".",
    ]
    step = split_step(cdf, plan.cdf_sub_job_s)
    if step is not None:
        t0, f0, t1, f1 = step
        sub = humanize(plan.cdf_sub_job_s)
        findings.append(
            f"`split`'s curve steps from {pct(f0)} of the jobs done within {humanize(t0)} to "
            f"{pct(f1)} within {humanize(t1)}: it runs a job of more than "
            f"{plan.cdf_chunk_items} items as sub-jobs of {plan.cdf_chunk_items} items "
            f"({sub} each), side by side on the {plan.cdf_scenario.fleet.workers} workers, "
            f"so a job longer than {sub} takes about {sub} whatever its length, as long as "
            "workers are free: the jobs of the step are those longer than one sub-job.")
    note = ("Times are read off the curve's grid of log-spaced times: the first time at which "
            "the share is reached.")
    return Section(tuple(findings), (note + "\n\n" + markdown_table(head, rows),))
