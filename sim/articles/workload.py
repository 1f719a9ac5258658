"""From a CSV of your job run times (and, if you have them, your deploy times) to a scenario:
read the durations, fit length laws (``fit``), choose the model to simulate, read the deploy
rhythm, and write it all as a scenario with a resumable variant at Daly's interval. The
recommendation itself is ``compare.pick_strategy`` over the simulated strategies.

    data = read_durations("job_durations.csv", "duration", class_column="job_class",
                          censored_column="status")
    pooled = fit_lengths(data["seconds"], data["censored"])
    per_class = fit_classes(data)
    model = choose_model(data, pooled, per_class, rate="120/h", item_time="1s")
    table = scenario_table(model, Fleet(workers=10), deploys={"schedule": "poisson",
                                                               "rate": "4/d"})
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis import theory
from ..analysis.fit import LengthFit, fit_lengths
from ..durations import format_duration, humanize, parse_duration
from ..report.plots import STRATEGY_COLORS
from .compare import BEHIND, TIE
from .figures import article_figure

__all__ = [
    "ALPHA",
    "CLASS_COLOURS",
    "Fleet",
    "WorkloadModel",
    "choose_model",
    "class_fit_table",
    "class_fits_figure",
    "classes_of",
    "daly_variant",
    "deploys_figure",
    "durations_figure",
    "durations_overview",
    "ecdf",
    "fit_classes",
    "fit_table",
    "pooled_fit_figure",
    "read_deploys",
    "read_durations",
    "scenario_table",
    "to_toml",
    "why_not",
]

#: A fit whose KS p-value is below this is rejected.
ALPHA = 0.05
#: One colour per kind of job, outside the strategies' palette (Paul Tol's muted scheme).
CLASS_COLOURS = ("#332288", "#882255", "#999933", "#CC6677", "#DDCC77", "#88CCEE", "#44AA99",
                 "#AA4499")


def read_durations(path: str | Path, duration_column: str = "duration", *,
                   class_column: str | None = None, censored_column: str | None = None,
                   censored_values: Sequence[str] = ("timeout",)) -> Any:
    """One row per job run of the CSV at ``path`` (``#`` starts a comment): ``seconds`` (the
    column holds seconds or durations such as "25s"), ``censored`` (the run did not finish:
    ``censored_column`` holds one of ``censored_values``) and ``class`` (the kind of job, or
    "all jobs")."""
    raw = pd.read_csv(path, comment="#")
    name = Path(path).name
    return pd.DataFrame({
        "seconds": [parse_duration(v, f"{name} row {i + 2}")
                    for i, v in enumerate(raw[duration_column])],
        "censored": (raw[censored_column].isin(list(censored_values)) if censored_column
                     else False),
        "class": raw[class_column].astype(str) if class_column else "all jobs",
    })


def classes_of(data: Any) -> list[str]:
    """The kinds of job in ``data``, most runs first."""
    return list(data["class"].value_counts(sort=True).index)


def _describe(group: Any, total: int) -> dict[str, Any]:
    s = group["seconds"]
    return {"runs": len(group), "share %": 100 * len(group) / total,
            "zero": int((s == 0).sum()), "did not finish": int(group["censored"].sum()),
            "median": humanize(s.median()), "p90": humanize(s.quantile(0.9)),
            "p99": humanize(s.quantile(0.99)), "max": humanize(s.max())}


def durations_overview(data: Any) -> Any:
    """One row per kind of job, most runs first, then "all": runs, share, zeros, runs that did
    not finish, and the median, p90, p99 and longest run time."""
    rows = {name: _describe(data[data["class"] == name], len(data)) for name in classes_of(data)}
    rows["all"] = _describe(data, len(data))
    return pd.DataFrame(rows).T


def ecdf(seconds: Any, resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """The empirical distribution function: sorted durations (zeros at ``resolution``) and the
    share of runs up to each."""
    x = np.sort(np.maximum(np.asarray(seconds, float), resolution))
    return x, np.arange(1, len(x) + 1) / len(x)


def _colours(data: Any) -> dict[str, str]:
    names = classes_of(data)
    return dict(zip(names, CLASS_COLOURS * (len(names) // len(CLASS_COLOURS) + 1),
                    strict=False))


def _ecdf_axes(ax: Any, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("job run time (s, log scale)")
    ax.set_ylabel("runs shorter than that (%)")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", frameon=False)


def durations_figure(data: Any, resolution: float, title: str = "") -> Figure:
    """The run times' distribution function per kind of job and for all jobs, log scale."""
    fig, ax = article_figure(9, 4)
    for name, colour in _colours(data).items():
        x, y = ecdf(data.loc[data["class"] == name, "seconds"], resolution)
        ax.step(x, 100 * y, where="post", color=colour, label=name)
    x, y = ecdf(data["seconds"], resolution)
    ax.step(x, 100 * y, where="post", color="grey", linestyle="--", label="all jobs")
    _ecdf_axes(ax, title or f"Run times of {len(data):,} jobs")
    return fig


def fit_table(fits: Sequence[LengthFit]) -> Any:
    """One row per fitted law, best first: its parameters, AIC (and its distance to the best),
    KS statistic and p-value."""
    return pd.DataFrame([{
        "law": f.name, "fitted": f.describe(), "AIC": f.aic, "AIC - best": f.aic - fits[0].aic,
        "KS D": f.ks_statistic, "KS p-value": f.ks_pvalue,
    } for f in fits]).set_index("law")


def pooled_fit_figure(data: Any, fits: Sequence[LengthFit], resolution: float) -> Figure:
    """All run times against each fitted law's distribution function."""
    fig, ax = article_figure(9, 4)
    x, y = ecdf(data["seconds"], resolution)
    ax.step(x, 100 * y, where="post", color="black", linewidth=2, label="measured")
    grid = np.geomspace(resolution, data["seconds"].max() * 2, 400)
    for f, style in zip(fits, ["-", "--", "-.", ":"], strict=False):
        ax.plot(grid, 100 * f.cdf(grid), color="#666666", linestyle=style, linewidth=1.5,
                label=f"{f.name} (KS D = {f.ks_statistic:.2f})")
    _ecdf_axes(ax, "All jobs together against each fitted law")
    return fig


def fit_classes(data: Any, resolution: str | float = "1ms") -> dict[str, list[LengthFit]]:
    """``fit_lengths`` for each kind of job, most runs first."""
    return {name: fit_lengths(g["seconds"], g["censored"], resolution=resolution)
            for name in classes_of(data) for g in [data[data["class"] == name]]}


def class_fit_table(class_fits: Mapping[str, Sequence[LengthFit]]) -> Any:
    """One row per kind of job: its runs, the best law (AIC), its margin to the next, its KS
    statistic and p-value."""
    return pd.DataFrame([{
        "class": name, "runs": fits[0].n, "zero": fits[0].n_zero,
        "did not finish": fits[0].n_censored, "best law (AIC)": fits[0].describe(),
        "AIC margin to next": fits[1].aic - fits[0].aic if len(fits) > 1 else math.inf,
        "KS D": fits[0].ks_statistic, "KS p-value": fits[0].ks_pvalue,
    } for name, fits in class_fits.items()]).set_index("class")


def class_fits_figure(data: Any, class_fits: Mapping[str, Sequence[LengthFit]],
                      resolution: float) -> Figure:
    """One panel per kind of job: its run times against its best fitted law."""
    colours = _colours(data)
    fig, axes = article_figure(3.2 * len(class_fits), 3.3, ncols=len(class_fits), sharey=True,
                               squeeze=False)
    for ax, (name, fits) in zip(axes[0], class_fits.items(), strict=True):
        seconds = data.loc[data["class"] == name, "seconds"]
        x, y = ecdf(seconds, resolution)
        ax.step(x, 100 * y, where="post", color=colours[name], linewidth=2, label="measured")
        positive = seconds[seconds > 0]
        lo = max(resolution, positive.min() / 3) if len(positive) else resolution
        grid = np.geomspace(lo, seconds.max() * 3, 200)
        ax.plot(grid, 100 * fits[0].cdf(grid), color="grey", linestyle="--",
                label=f"{fits[0].name} fit")
        ax.set_xscale("log")
        ax.set_title(f"{name} (KS p = {fits[0].ks_pvalue:.2f})", fontsize=10)
        ax.set_xlabel("run time (s, log scale)")
    axes[0][0].set_ylabel("runs shorter than that (%)")
    axes[0][0].legend(loc="upper left", fontsize=8, frameon=False)
    return fig


@dataclass(frozen=True)
class WorkloadModel:
    """The workload to simulate: ``name`` and ``why`` (in words), its ``workload`` table, and
    the ``empirical`` one (the measured run times, resampled) to cross-check it with."""

    name: str
    why: str
    workload: Mapping[str, Any]
    empirical: Mapping[str, Any]


def choose_model(data: Any, pooled: Sequence[LengthFit],
                 class_fits: Mapping[str, Sequence[LengthFit]], *, rate: str, item_time: str,
                 resolution: str | float = "1ms", source: str = "",
                 alpha: float = ALPHA) -> WorkloadModel:
    """One fitted law per kind of job if every kind passes the KS test at ``alpha``; else one
    law for all jobs if it passes; else the measured run times, resampled (a run that showed 0
    gets half a tick of ``resolution``). A Pareto law is capped at 10x the longest run (its
    mean is infinite for alpha <= 1)."""
    tick = parse_duration(resolution, "resolution")
    cap = 10 * float(data["seconds"].max())
    base = {"arrivals": "poisson", "rate": rate}
    empirical = {**base, "item_time": item_time, "length": {
        "kind": "empirical", "source": source or "measured",
        "durations": [float(s) if s > 0 else tick / 2 for s in data["seconds"]]}}

    def length(fit: LengthFit) -> dict[str, Any]:
        return fit.as_length_table(maximum=cap if fit.name == "pareto" else None)

    if class_fits and all(f[0].ks_pvalue >= alpha for f in class_fits.values()):
        lowest = min(f[0].ks_pvalue for f in class_fits.values())
        workload = {**base, "classes": [
            {"name": name, "weight": round(float((data["class"] == name).mean()), 4),
             "length": length(fits[0]), "item_time": item_time}
            for name, fits in class_fits.items()]}
        return WorkloadModel("one fitted law per kind of job",
                             f"every kind of job passes the KS test (lowest p-value "
                             f"{lowest:.2f})", workload, empirical)
    if pooled[0].ks_pvalue >= alpha:
        return WorkloadModel("one fitted law for all jobs",
                             f"the best single law passes the KS test (p = "
                             f"{pooled[0].ks_pvalue:.2f})",
                             {**base, "item_time": item_time, "length": length(pooled[0])},
                             empirical)
    return WorkloadModel("the measured run times, resampled", "no fitted law passes the KS test",
                         empirical, empirical)


def read_deploys(path: str | Path, column: str = "deployed_at") -> Any:
    """The deploy times of a CSV (ISO 8601), as a pandas Series of timestamps."""
    return pd.to_datetime(pd.read_csv(path, comment="#")[column], format="ISO8601")


def deploys_figure(times: Any) -> Figure:
    """How many deploys fell in each hour of the day, weekdays and weekends stacked."""
    fig, ax = article_figure(9, 3)
    weekday = times.dt.day_of_week < 5
    ax.hist([times[weekday].dt.hour, times[~weekday].dt.hour], bins=np.arange(25),
            stacked=True, color=["#555555", "#BBBBBB"],
            label=["Monday to Friday", "Saturday, Sunday"])
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("deploys")
    ax.set_title(f"When the deploys happened ({len(times)} deploys)", fontsize=11)
    ax.legend(frameon=False)
    return fig


@dataclass(frozen=True)
class Fleet:
    """Your fleet: ``workers``, the ``platform`` preset, the time a stopped worker takes to come
    back, the mean time between crashes per worker (or None) and the resumable engine's
    checkpoint cost in your store."""

    workers: int = 10
    platform: str = "kubernetes"
    restart_delay: str = "20s"
    crash_mtbf: str | None = "7d"
    checkpoint_cost: str = "50ms"


def daly_variant(fleet: Fleet) -> dict[str, Any] | None:
    """The ``resumable-daly`` strategy table: the resumable engine checkpointing at Daly's
    interval for the fleet's checkpoint cost and crash rate (two significant figures), with a
    lease of at least twice that; None without crashes or with free checkpoints."""
    cost = parse_duration(fleet.checkpoint_cost, "checkpoint_cost")
    if not fleet.crash_mtbf or cost <= 0:
        return None
    every = float(f"{theory.daly_interval(cost, parse_duration(fleet.crash_mtbf, 'mtbf')):.2g}")
    return {"strategy": "resumable", "checkpoint_cost": fleet.checkpoint_cost,
            "checkpoint_every": format_duration(every),
            "lease_ttl": format_duration(max(60.0, math.ceil(2 * every)))}


def scenario_table(model: WorkloadModel, fleet: Fleet, deploys: Mapping[str, Any], *,
                   horizon: str = "7d", replications: int = 3, seed: int = 1,
                   name: str = "your-workload", empirical: bool = False) -> dict[str, Any]:
    """The tables of a scenario file: the model's workload (``empirical``: the measured run
    times instead) on the fleet, under ``deploys``, for every built-in strategy, the resumable
    one with the fleet's checkpoint cost, plus ``resumable-daly`` when ``daly_variant`` gives
    one."""
    strategies: dict[str, dict[str, Any]] = {s: {} for s in STRATEGY_COLORS}
    strategies["resumable"] = {"checkpoint_cost": fleet.checkpoint_cost}
    variant = daly_variant(fleet)
    if variant is not None:
        strategies["resumable-daly"] = variant
    return {
        "name": name,
        "description": f"Fitted from {model.empirical['length']['source']}: {model.name}.",
        "seed": seed,
        "horizon": horizon,
        "replications": replications,
        "fleet": {"workers": fleet.workers, "restart_delay": fleet.restart_delay},
        "platform": {"preset": fleet.platform},
        "deploys": dict(deploys),
        "crashes": {"mtbf": fleet.crash_mtbf} if fleet.crash_mtbf else {},
        "workload": dict(model.empirical if empirical else model.workload),
        "strategies": strategies,
    }


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        items = [_toml_value(x) for x in v]
        if len(items) <= 10:
            return "[" + ", ".join(items) + "]"
        rows = [", ".join(items[i:i + 10]) for i in range(0, len(items), 10)]
        return "[\n    " + ",\n    ".join(rows) + ",\n]"
    return repr(v)


def to_toml(d: Mapping[str, Any]) -> str:
    """A scenario's tables (``scenario_table``) as the text of a scenario file."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, Mapping)]
    for key, table in d.items():
        if not isinstance(table, Mapping) or key == "strategies":
            continue
        lines += ["", f"[{key}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if k != "classes"]
        for entry in table.get("classes", []):
            lines += ["", f"[[{key}.classes]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    for name, params in d.get("strategies", {}).items():
        lines += ["", f"[strategies.{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in params.items()]
    return "\n".join(lines)


def why_not(t: Any, choice: str, tie: float = TIE, behind: float = BEHIND) -> dict[str, str]:
    """For each strategy of ``t`` (one group of a comparison table) but ``choice``, why the
    rule of ``compare.pick_strategy`` passed it over: it "falls behind", "fails or loses more
    jobs" or "wastes more worker time"."""
    out = {}
    for name, r in t.iterrows():
        if name == choice:
            continue
        if r["pending_share"] > t["pending_share"].min() + behind:
            out[name] = "falls behind"
        elif r["dropped_per_1000"] > t["dropped_per_1000"].min() + tie:
            out[name] = "fails or loses more jobs"
        else:
            out[name] = "wastes more worker time"
    return out
