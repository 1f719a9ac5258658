"""The report's figures, drawn from the rows of ``results.csv`` with matplotlib's Agg canvas
(no pyplot, no display): one colour and one marker per strategy, the same in every figure,
from the Okabe-Ito palette, which stays distinct under the common colour-vision deficiencies.

    from deploysim.sim.report import plots
    plots.draw_all(results, plan, "reports")

It reads the plan (``.plan``) and the closed forms (``deploysim.sim.analysis.theory``) and
nothing else of the report: no simulator runs here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from ..analysis.theory import completion_theory, daly_expected_time
from ..durations import DAY, humanize
from .plan import Plan

__all__ = [
    "MARKERS",
    "OKABE_ITO",
    "STRATEGY_COLORS",
    "checkpoint_interval",
    "completion_heatmap",
    "completion_vs_length",
    "deploy_drain",
    "draw_all",
    "heatmap_panels",
    "lost_and_duplicated",
    "strategy_style",
    "time_to_complete_cdf",
    "wasted_work",
]

#: The Okabe-Ito palette (Okabe and Ito, "Color Universal Design").
OKABE_ITO: dict[str, str] = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}

#: One colour per strategy, in every figure.
STRATEGY_COLORS: dict[str, str] = {
    "sidekiq": OKABE_ITO["vermillion"],
    "resque": OKABE_ITO["orange"],
    "celery": OKABE_ITO["sky blue"],
    "rq": OKABE_ITO["reddish purple"],
    "dramatiq": OKABE_ITO["yellow"],
    "split": OKABE_ITO["bluish green"],
    "resumable": OKABE_ITO["blue"],
}

#: Marker sizes, largest first: where strategies share a point their markers nest.
MARKER_SIZES: dict[str, float] = {
    "sidekiq": 13.0,
    "resque": 11.5,
    "celery": 10.0,
    "rq": 8.5,
    "dramatiq": 7.0,
    "split": 5.5,
    "resumable": 4.0,
}

#: One marker per strategy, so that the lines differ in shape as well as colour.
MARKERS: dict[str, str] = {
    "sidekiq": "o",
    "resque": "s",
    "celery": "^",
    "rq": "P",
    "dramatiq": "X",
    "split": "D",
    "resumable": "v",
}

_SPARE = (OKABE_ITO["black"], "#8C564B", "#17BECF")
_SPARE_MARKERS = ("*", "h", "p")

# resque and celery share their fate on a deploy (wait, then the platform's kill), so their
# curves coincide: celery is drawn dashed with open markers so that both stay visible
_DASHED = {"celery"}

THEORY_COLOR = "#444444"
GRID_COLOR = "#DDDDDD"
DPI = 120

#: Ticks of duration axes, in seconds, with their labels.
_DURATION_TICKS = (
    (1, "1s"), (10, "10s"), (60, "1m"), (600, "10m"), (3600, "1h"), (6 * 3600, "6h"),
    (86400, "1d"), (7 * 86400, "1w"), (14 * 86400, "2w"), (30 * 86400, "30d"),
)


def strategy_style(name: str, index: int = 0) -> dict[str, Any]:
    """Colour, marker and line style of a strategy (spares for variants, by ``index``)."""
    color = STRATEGY_COLORS.get(name, _SPARE[index % len(_SPARE)])
    marker = MARKERS.get(name, _SPARE_MARKERS[index % len(_SPARE_MARKERS)])
    dashed = name in _DASHED
    return {
        "color": color,
        "marker": marker,
        "linestyle": "--" if dashed else "-",
        "markerfacecolor": "white" if dashed else color,
        "markeredgecolor": color,
    }


def _strategies(df: Any) -> list[str]:
    names = list(dict.fromkeys(df["strategy"]))
    known = [s for s in STRATEGY_COLORS if s in names]
    return known + [s for s in names if s not in STRATEGY_COLORS]


def _duration_axis(axis: Any, lo: float, hi: float) -> None:
    """Log-scale duration ticks ("10s", "1h", "1d") between ``lo`` and ``hi`` seconds."""
    ticks = [(t, label) for t, label in _DURATION_TICKS if lo <= t <= hi]
    axis.set_major_locator(FixedLocator([t for t, _ in ticks]))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: dict(ticks).get(v, "")))
    axis.set_minor_locator(NullLocator())


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


# -- completion rate ---------------------------------------------------------------------------


#: Where a line of the completion figure is drawn differently from ``strategy_style``: split
#: and resumable both complete every job, so split's markers are open and larger, and
#: resumable's small filled ones show inside them.
_COMPLETION_STYLE: dict[str, dict[str, Any]] = {
    "split": {"markerfacecolor": "white", "markersize": 10.0, "markeredgewidth": 1.6},
    "resumable": {"markersize": 5.0},
}

PERIOD_COLOR = "#7F7F7F"


def _broken(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y`` against ``x`` with a gap (NaN) wherever it jumps by more than half the axis, so
    that a step of a closed form is not drawn as a vertical line."""
    jump = np.nonzero(np.abs(np.diff(y)) > 0.5)[0] + 1
    return np.insert(x, jump, np.nan), np.insert(y, jump, np.nan)


def completion_vs_length(df: Any, plan: Plan, path: Path) -> Path:
    """Completion rate against job length at ``plan.chosen_rhythm``, one line per strategy,
    with the closed forms of formula 3 (restart; wait, then kill) drawn over the points and
    the deploy period marked."""
    grid = df[(df["part"] == "grid") & (df["deploys_per_day"] == plan.chosen_rhythm)]
    period = DAY / plan.chosen_rhythm
    s0 = plan.grid.scenarios[0]
    grace = s0.platform.grace
    timeout = plan.sidekiq_timeout
    fig = _figure(9.5, 5.2)
    ax = fig.add_subplot()
    lengths = grid["length_s"]
    lo, hi = float(lengths.min()) / 1.5, float(lengths.max()) * 1.5
    dense = np.geomspace(lo, hi, 600)
    restart = np.array([completion_theory("sidekiq", x, period, grace, timeout) for x in dense])
    wait = np.array([completion_theory("resque", x, period, grace, timeout) for x in dense])
    for i, name in enumerate(_strategies(grid)):
        g = grid[grid["strategy"] == name].sort_values("length_s")
        style = {"markersize": MARKER_SIZES.get(name, 6.0), **strategy_style(name, i),
                 **_COMPLETION_STYLE.get(name, {})}
        ax.plot(g["length_s"], g["completion_rate"], label=name, linewidth=1.8, zorder=3 + i,
                **style)
    # the closed forms in black, thin, over the points: they read as a reference, not a line
    # of the simulation; the restart form's step at L = P is left out (the period line is it)
    ax.plot(*_broken(dense, restart), color=THEORY_COLOR, linestyle=(0, (5, 2)),
            linewidth=1.3, label="closed form: restart\n(livelock above the period)", zorder=9)
    ax.plot(dense, wait, color=THEORY_COLOR, linestyle=(0, (1, 1.5)), linewidth=2.0,
            label="closed form: wait, then kill\n" + r"$\max(0,\ 1 - (L - K)/P)$", zorder=9)
    ax.axvline(period, color=PERIOD_COLOR, linewidth=1.4, linestyle="-.", alpha=0.8, zorder=1,
               label=f"deploy period P = {humanize(period)}")
    ax.annotate(f"deploy period P = {humanize(period)}", xy=(period, 0.72), xytext=(5, 0),
                textcoords="offset points", rotation=90, va="center", ha="left", fontsize=9,
                color=PERIOD_COLOR)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    _duration_axis(ax.xaxis, lo, hi)
    ax.set_ylim(-0.03, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("job length L (log scale)")
    ax.set_ylabel("jobs completed (% of enqueued)")
    reps = int(grid["replications"].max())
    ax.set_title(f"Completion rate by job length, a deploy every {humanize(period)} "
                 f"({plan.chosen_rhythm:g} a day)\n{reps} jobs per point, each alone on a "
                 f"worker; grace K = {humanize(grace)}; markers nest where strategies agree",
                 fontsize=11)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return _save(fig, path)


def heatmap_panels(grid: Any) -> tuple[list[tuple[list[str], np.ndarray]], list[str]]:
    """The panels of the heat map from the grid's rows: each distinct table of completion
    rates (deploys a day x length) once, with the strategies that share it, in strategy
    order; and apart, the strategies that completed every job of every cell (no panel)."""
    lengths = sorted(grid["length_s"].unique())
    rhythms = sorted(grid["deploys_per_day"].unique())
    panels: list[tuple[list[str], np.ndarray]] = []
    complete: list[str] = []
    for name in _strategies(grid):
        g = grid[grid["strategy"] == name].pivot_table(
            index="deploys_per_day", columns="length_s", values="completion_rate")
        values = g.reindex(index=rhythms, columns=lengths).to_numpy(float)
        if np.all(values == 1.0):
            complete.append(name)
            continue
        for names, seen in panels:
            if np.array_equal(values, seen, equal_nan=True):
                names.append(name)
                break
        else:
            panels.append(([name], values))
    return panels, complete


def completion_heatmap(df: Any, path: Path) -> Path:
    """Completion rate for every deploy rhythm x job length: one panel per distinct table
    (strategies with the same numbers share it, "resque = celery"), and one line naming the
    strategies that completed every job."""
    grid = df[df["part"] == "grid"]
    lengths = sorted(grid["length_s"].unique())
    rhythms = sorted(grid["deploys_per_day"].unique())
    panels, complete = heatmap_panels(grid)
    cols = max(1, min(2, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig = _figure(6.2 * cols, 0.42 * len(rhythms) * rows + 1.3 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for k, (names, values) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        image = ax.imshow(values, cmap="cividis", vmin=0.0, vmax=1.0, aspect="auto",
                          origin="lower", interpolation="nearest")
        for (r, c), v in np.ndenumerate(values):
            if math.isnan(v):
                continue
            ax.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.55 else "white")
        ax.set_xticks(range(len(lengths)), [humanize(x) for x in lengths], rotation=45,
                      fontsize=8)
        ax.set_yticks(range(len(rhythms)), [f"{r:g}" for r in rhythms], fontsize=8)
        ax.set_title(" = ".join(names), fontweight="bold")
        ax.set_xlabel("job length")
        ax.set_ylabel("deploys a day")
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].set_axis_off()
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), location="bottom", fraction=0.06,
                           shrink=0.6, aspect=40, format=PercentFormatter(1.0))
        bar.set_label("jobs completed (% of enqueued); numbers in the cells are percent")
    title = "Completion rate by deploy rhythm and job length (periodic deploys)"
    if complete:
        title += (f"\n{' and '.join(complete)}: 100% in every cell "
                  f"({len(rhythms)} rhythms x {len(lengths)} lengths), not drawn")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


# -- time to complete ----------------------------------------------------------------------------


def time_to_complete_cdf(df: Any, plan: Plan, path: Path) -> Path:
    """The share of jobs completed within a time of being enqueued, one line per strategy;
    split's step at the length of its sub-jobs is pointed out."""
    cdf = df[df["part"] == "cdf"]
    name = cdf["scenario"].iloc[0]
    half = float(cdf["horizon_s"].iloc[0]) / 2
    fig = _figure(9.0, 5.0)
    ax = fig.add_subplot()
    for i, strategy in enumerate(_strategies(cdf)):
        c = cdf[cdf["strategy"] == strategy].sort_values("t_s")
        style = strategy_style(strategy, i)
        style.pop("marker")
        ax.plot(c["t_s"], c["completed_within_fraction"], label=strategy, linewidth=2.0,
                **style)
    ax.set_xscale("log")
    lo, hi = float(cdf["t_s"].min()), float(cdf["t_s"].max())
    sub = plan.cdf_sub_job_s
    split = cdf[cdf["strategy"] == "split"].sort_values("t_s")
    if len(split) and lo < sub < hi:
        t, f = split["t_s"].to_numpy(float), split["completed_within_fraction"].to_numpy(float)
        below, above = float(f[t < sub][-1]), float(f[t > sub][0])
        workers = plan.cdf_scenario.fleet.workers
        ax.annotate(f"split: a job of more than {plan.cdf_chunk_items} items runs as "
                    f"sub-jobs of {humanize(sub)}\nside by side on the {workers} workers, so "
                    f"most jobs longer than {humanize(sub)}\nfinish about {humanize(sub)} "
                    "after being enqueued, together: the step",
                    xy=(sub, (below + above) / 2), xytext=(sub * 6, 0.45),
                    fontsize=9, color="#333333", ha="left", va="top",
                    arrowprops={"arrowstyle": "->", "color": "#555555", "linewidth": 1.0})
    ax.set_xlim(lo, hi)
    _duration_axis(ax.xaxis, lo, hi)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time from enqueue to completion (log scale)")
    ax.set_ylabel("jobs completed within that time (%)")
    ax.set_title(f"Time to complete, {name}: the {int(cdf['enqueued'].iloc[0]):,} jobs "
                 f"enqueued in the first {humanize(half)}\n(a line that ends below 100% did not "
                 "complete the rest: lost, failed or still pending)", fontsize=11)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


# -- bundled scenarios: bars ---------------------------------------------------------------------


def _batches(plan: Plan) -> dict[str, int]:
    """The batches a deploy of each bundled scenario stops its workers in (1: all at once)."""
    out = {}
    for s in plan.scenarios.scenarios:
        size = s.deploys.batch_size
        out[s.name] = math.ceil(s.fleet.workers / size) if size else 1
    return out


def _scenario_labels(plan: Plan, scenarios: Sequence[str]) -> list[str]:
    """Scenario names, with the rolling deploys marked (they drain batch after batch)."""
    batches = _batches(plan)
    return [f"{name}\n(rolling, {batches[name]} batches)" if batches.get(name, 1) > 1
            else name for name in scenarios]


def _grouped_bars(ax: Any, sc: Any, value: Any, names: Sequence[str],
                  scenarios: Sequence[str], labels: Sequence[str], **kwargs: Any) -> None:
    """Horizontal bars: one group per scenario (top to bottom), one bar per strategy."""
    height = 0.8 / len(names)
    for i, name in enumerate(names):
        g = sc[sc["strategy"] == name].set_index("scenario").reindex(scenarios)
        y = np.arange(len(scenarios)) - 0.4 + height * (i + 0.5)
        ax.barh(y, value(g), height=height, color=strategy_style(name, i)["color"],
                label=name, **kwargs)
    ax.set_yticks(range(len(scenarios)), labels)
    ax.set_ylim(len(scenarios) - 0.5, -0.5)
    ax.grid(True, axis="x", color=GRID_COLOR, linewidth=0.6)
    ax.set_axisbelow(True)


def _percent_log_axis(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:g}%"))


def wasted_work(df: Any, plan: Plan, path: Path) -> Path:
    """Worker time thrown away: per bundled scenario as a share of all worker time, and per job
    of the grid at the chosen rhythm, in multiples of the job's length."""
    sc = df[df["part"] == "scenarios"]
    names = _strategies(sc)
    scenarios = list(dict.fromkeys(sc["scenario"]))
    fig = _figure(13.0, 0.55 * len(scenarios) + 2.2)
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1.0])
    _grouped_bars(left, sc, lambda g: g["wasted_work_s"] / (g["wasted_work_s"]
                                                            + g["useful_work_s"]),
                  names, scenarios, _scenario_labels(plan, scenarios))
    left.xaxis.set_major_formatter(PercentFormatter(1.0))
    left.set_xlabel("worker time wasted (% of all time spent running jobs; no bar: none)")
    left.set_title("Bundled scenarios", fontsize=11)
    grid = df[(df["part"] == "grid") & (df["deploys_per_day"] == plan.chosen_rhythm)]
    period = DAY / plan.chosen_rhythm
    never = None
    stuck_names = []
    for i, name in enumerate(_strategies(grid)):
        g = grid[grid["strategy"] == name].sort_values("length_s")
        # a job still pending at the horizon goes on wasting work for as long as the run lasts:
        # its waste measures the horizon, not the strategy, so it is left out and marked
        stuck = g["pending"] > 0
        if stuck.any():
            stuck_names.append(name)
            first = float(g.loc[stuck, "length_s"].min())
            never = first if never is None else min(never, first)
        ratio = (g["wasted_work_s"] / g["length_s"]).where(~stuck)
        right.plot(g["length_s"], ratio, label=name, linewidth=1.8,
                   markersize=MARKER_SIZES.get(name, 6.0) * 0.8, **strategy_style(name, i))
    lo, hi = float(grid["length_s"].min()) / 1.5, float(grid["length_s"].max()) * 1.5
    if never is not None:
        right.axvspan(never / 1.2, hi, color="#EEEEEE", zorder=0)
        right.text(math.sqrt(never * hi), 0.97, f"{', '.join(stuck_names)}: jobs here never "
                   "finish;\ntheir waste grows until someone\nstops them (not drawn)",
                   transform=right.get_xaxis_transform(),
                   ha="center", va="top", fontsize=9, color="#444444")
    right.set_xscale("log")
    right.set_xlim(lo, hi)
    _duration_axis(right.xaxis, lo, hi)
    right.set_ylim(bottom=-0.02)
    right.axvline(period, color="#888888", linewidth=1.0)
    right.set_xlabel("job length (log scale); grey line: the deploy period")
    right.set_ylabel("worker time wasted per job, in job lengths")
    right.set_title(f"One job alone on a worker, a deploy every {humanize(period)}", fontsize=11)
    right.grid(True, color=GRID_COLOR, linewidth=0.6)
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle("Wasted work: time spent on attempts that were thrown away", fontsize=12)
    return _save(fig, path)


def deploy_drain(df: Any, plan: Plan, path: Path) -> Path:
    """How long deploys wait for the workers to stop: median and longest drain per strategy
    in each bundled scenario, next to the platform's grace."""
    sc = df[df["part"] == "scenarios"]
    names = _strategies(sc)
    scenarios = list(dict.fromkeys(sc["scenario"]))
    graces = {s.name: s.platform.grace for s in plan.scenarios.scenarios}
    batches = _batches(plan)
    fig = _figure(10.5, 0.55 * len(scenarios) + 2.0)
    ax = fig.add_subplot()
    step = 0.8 / len(names)
    rolling = False
    for j, scenario in enumerate(scenarios):
        grace = graces.get(scenario)
        if grace is None:
            continue
        ax.plot([grace, grace], [j - 0.45, j + 0.45], color="#888888", linewidth=2.5,
                solid_capstyle="butt", zorder=1)
        n = batches.get(scenario, 1)
        if n > 1:  # a rolling deploy: each batch drains in its turn, within its own grace
            rolling = True
            for k in range(2, n + 1):
                ax.plot([k * grace, k * grace], [j - 0.45, j + 0.45], color="#888888",
                        linewidth=1.2, linestyle=(0, (2, 2)), zorder=1)
            ax.text(grace + 3, j + 0.5, f"rolling deploy: {n} batches of workers stop one "
                    f"after another,\neach within its own {humanize(grace)} grace, so a "
                    f"deploy can take\nup to {n} x {humanize(grace)} = {humanize(n * grace)}",
                    ha="left", va="top", fontsize=8.5, color="#444444", zorder=5)
    for i, name in enumerate(names):
        g = sc[sc["strategy"] == name].set_index("scenario").reindex(scenarios)
        y = np.arange(len(scenarios)) - 0.4 + step * (i + 0.5)
        style = strategy_style(name, i)
        ax.hlines(y, g["drain_s_p50"], g["drain_s_max"], color=style["color"], linewidth=1.2,
                  zorder=2)
        ax.plot(g["drain_s_max"], y, linestyle="none", marker=style["marker"],
                color=style["color"], markersize=8, label=f"{name}", zorder=3)
        ax.plot(g["drain_s_p50"], y, linestyle="none", marker=style["marker"],
                markerfacecolor="white", markeredgecolor=style["color"], markersize=4.5,
                zorder=4)
    ax.plot([], [], color="#888888", linewidth=2.5, label="platform grace\n(SIGKILL after it)")
    if rolling:
        ax.plot([], [], color="#888888", linewidth=1.2, linestyle=(0, (2, 2)),
                label="rolling deploy: the grace\nof each further batch")
    ax.plot([], [], linestyle="none", marker="o", color="black", markersize=8,
            label="longest deploy")
    ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white",
            markeredgecolor="black", markersize=4.5, label="median deploy\n(drawn inside "
            "when equal)")
    ax.set_yticks(range(len(scenarios)), _scenario_labels(plan, scenarios))
    ax.set_ylim(len(scenarios) - 0.5, -0.5)
    ax.set_xlim(left=-2)
    ax.set_xlabel("seconds from SIGTERM until the last worker has stopped")
    ax.set_title("How long a deploy waits for the workers, per strategy and bundled scenario",
                 fontsize=12)
    ax.grid(True, axis="x", color=GRID_COLOR, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def lost_and_duplicated(df: Any, plan: Plan, path: Path) -> Path:
    """Jobs lost or failed (share of enqueued) and items run more than once (per job) in each
    bundled scenario, on log scales (the counts span decades)."""
    from matplotlib.patches import Patch

    sc = df[df["part"] == "scenarios"]
    names = _strategies(sc)
    scenarios = list(dict.fromkeys(sc["scenario"]))
    labels = _scenario_labels(plan, scenarios)
    fig = _figure(13.0, 0.55 * len(scenarios) + 2.4)
    left, right = fig.subplots(1, 2, sharey=True)
    gone = (sc["lost"] + sc["failed"]) / sc["enqueued"]
    floor = 10 ** math.floor(math.log10(gone[gone > 0].min())) if (gone > 0).any() else 1e-4
    _grouped_bars(left, sc, lambda g: g["lost"] / g["enqueued"], names, scenarios, labels)
    height = 0.8 / len(names)
    for i, name in enumerate(names):  # failed, hatched (a strategy either loses or fails)
        g = sc[sc["strategy"] == name].set_index("scenario").reindex(scenarios)
        y = np.arange(len(scenarios)) - 0.4 + height * (i + 0.5)
        left.barh(y, g["failed"] / g["enqueued"], left=g["lost"] / g["enqueued"],
                  height=height, color="white", edgecolor=strategy_style(name, i)["color"],
                  hatch="////", linewidth=0.8)
    left.set_xscale("log")
    left.set_xlim(floor / 2, max(float(gone.max()), floor) * 2)
    _percent_log_axis(left.xaxis)
    left.set_xlabel("jobs lost (solid) or failed (hatched), % of enqueued\n(log scale; no bar: "
                    "none)")
    left.set_title("Jobs that will never complete by themselves", fontsize=11)
    dup = sc["duplicate_item_executions"] / sc["enqueued"]
    dfloor = 10 ** math.floor(math.log10(dup[dup > 0].min())) if (dup > 0).any() else 1e-3
    _grouped_bars(right, sc, lambda g: g["duplicate_item_executions"] / g["enqueued"], names,
                  scenarios, labels)
    right.set_xscale("log")
    right.set_xlim(dfloor / 2, max(float(dup.max()), dfloor) * 2)
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    right.set_xlabel("items run more than once, per enqueued job\n(log scale; no bar: none)")
    right.set_title("Duplicated work (only idempotent code survives it)", fontsize=11)
    right.tick_params(labelleft=False)
    handles, names_ = left.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="////"))
    names_.append("failed queue (hatched)")
    fig.legend(handles, names_, loc="outside lower center", ncols=len(names_), frameon=False)
    fig.suptitle("Lost, failed and duplicated, bundled scenarios", fontsize=12)
    return _save(fig, path)


# -- checkpointing -------------------------------------------------------------------------------


def checkpoint_interval(df: Any, plan: Plan, path: Path) -> Path:
    """Resumable jobs under crashes: mean total time against the checkpoint interval, with
    Daly's expected time and Young's and Daly's optimal intervals."""
    ck = df[df["part"] == "checkpoint"].sort_values("checkpoint_every_s")
    tau = ck["checkpoint_every_s"].to_numpy(float)
    mean = ck["run_time_s_mean"].to_numpy(float) / 3600
    fig = _figure(9.5, 5.2)
    ax = fig.add_subplot()
    lo, hi = tau.min() / 1.5, tau.max() * 1.5
    dense = np.geomspace(lo, hi, 400)
    work, cost, mtbf, restart = (plan.checkpoint_work, plan.checkpoint_cost,
                                 plan.checkpoint_mtbf, plan.checkpoint_restart)
    curve = np.array([daly_expected_time(work, t, cost, mtbf, restart) for t in dense]) / 3600
    ax.plot(dense, curve, color=THEORY_COLOR, linestyle=(0, (6, 3)), linewidth=1.6,
            label="Daly's expected time\n(closed form)")
    style = strategy_style("resumable")
    ax.plot(tau, mean, color=style["color"], marker=style["marker"], linestyle="none",
            markersize=8, label="resumable, simulated\n(mean time)", zorder=3)
    young = float(ck["young_interval_s"].iloc[0])
    daly = float(ck["daly_interval_s"].iloc[0])
    ax.axvline(young, color=OKABE_ITO["reddish purple"], linestyle=":", linewidth=2.0,
               label=rf"Young's optimum $\sqrt{{2CM}}$ = {humanize(young)}")
    ax.axvline(daly, color=OKABE_ITO["bluish green"], linestyle="-.", linewidth=1.6,
               label=f"Daly's optimum = {humanize(daly)}")
    ax.axhline(work / 3600, color="#888888", linewidth=1.0)
    ax.annotate("failure-free work", xy=(lo, work / 3600), xytext=(4, 4),
                textcoords="offset points", fontsize=9, color="#555555")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = [t for t in (10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600) if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: humanize(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    top = max(float(np.nanmax(mean)), float(curve.max()))
    ax.set_yscale("log")
    ax.set_ylim(work / 3600 * 0.95, top * 1.1)
    yticks = [y for y in (1, 1.1, 1.25, 1.5, 2, 3, 4, 6, 8, 12) if work / 3600 * 0.95 <= y
              <= top * 1.1]
    ax.yaxis.set_major_locator(FixedLocator(yticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g} h"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("checkpoint interval (work between checkpoints, log scale)")
    ax.set_ylabel("time from first start to completion (hours, log scale)")
    reps = int(ck["replications"].max())
    ax.set_title(f"Checkpointing under crashes: {humanize(work)} of work, a crash every "
                 f"{humanize(mtbf)} on average,\ncheckpoint cost C = {humanize(cost)}, restart "
                 f"{humanize(restart)}; {reps} jobs per point", fontsize=11)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return _save(fig, path)


def draw_all(df: Any, plan: Plan, out_dir: str | Path) -> list[Path]:
    """Every figure of the report, from the rows of ``results.csv``, into ``out_dir``."""
    out = Path(out_dir)
    return [
        completion_vs_length(df, plan, out / "completion_rate_vs_length.png"),
        completion_heatmap(df, out / "completion_rate_heatmap.png"),
        time_to_complete_cdf(df, plan, out / "time_to_complete_cdf.png"),
        wasted_work(df, plan, out / "wasted_work.png"),
        deploy_drain(df, plan, out / "deploy_drain.png"),
        lost_and_duplicated(df, plan, out / "lost_and_duplicated.png"),
        checkpoint_interval(df, plan, out / "checkpoint_interval.png"),
    ]
