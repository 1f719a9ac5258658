"""The report: every strategy over deploy rhythms and job lengths, the bundled scenarios, and
checkpointing under crashes, written as plots, tables and a README whose findings are computed
from the numbers.

    from deploysim.sim.report import make_report
    make_report("reports")                 # the committed report, a few minutes on 2 cores
    make_report("/tmp/r", quick=True)      # a coarse grid for CI, seconds

Four parts, each a sweep (``sim.sweep.run_sweep``) except the last:

- ``grid``: one job of a fixed length alone on one worker, periodic deploys of ``n`` a day, each
  replication with its own deploy phase: the completion rate of a job of that length under that
  rhythm, to set against the closed forms of ``sim.theory``;
- ``scenarios``: the bundled scenarios (all but the benchmark), horizons capped to keep the run
  short;
- ``checkpoint``: a resumable job under Poisson crashes, swept over its checkpoint interval, to
  set against Young's and Daly's optima and Daly's expected time;
- ``cdf``: time to complete of every job of one bundled scenario, per strategy.

Every number behind a plot is a row of ``results.csv`` (and ``results.json``); the README is
rendered from ``results.csv`` as read back from disk, so it holds nothing the data does not.
"""

from __future__ import annotations

import logging
import math
import platform as host
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from deploysim.strategies import STRATEGIES

from ..analysis.sweep import EXECUTORS, Cell, make_cells, numeric_columns, run_cell, run_sweep, save
from ..analysis.theory import (
    daly_expected_time,
    daly_interval,
    periodic_expected_time,
    periodic_first_attempt_completes,
    young_interval,
)
from ..durations import format_duration, parse_duration
from ..errors import SimError
from ..scenario.schema import (
    Scenario,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
    with_overrides,
)

__all__ = [
    "PARTS",
    "PLOTS",
    "Part",
    "Plan",
    "completion_theory",
    "make_plan",
    "make_report",
    "package_versions",
    "read_results",
    "render_readme",
    "report_cells",
    "rerun_cell",
    "rhythm_label",
    "write_results",
]

logger = logging.getLogger(__name__)

DAY = 86400.0

#: The strategies of the report, in the order every table and legend uses.
STRATEGY_ORDER: tuple[str, ...] = tuple(STRATEGIES)

#: The parts of the report, in the order of ``results.csv``.
PARTS: tuple[str, ...] = ("grid", "scenarios", "checkpoint", "cdf")

#: The plots the report writes, with the caption the README gives each.
PLOTS: dict[str, str] = {
    "completion_rate_vs_length.png": "Completion rate against job length at one deploy rhythm, "
    "with the closed forms drawn over the simulated points.",
    "completion_rate_heatmap.png": "Completion rate for every deploy rhythm and job length, "
    "one panel per strategy.",
    "time_to_complete_cdf.png": "Time from enqueue to completion, as the share of jobs done "
    "within a given time.",
    "wasted_work.png": "Worker time thrown away: work redone or cut short.",
    "deploy_drain.png": "How long a deploy waits for the workers to stop, per strategy.",
    "lost_and_duplicated.png": "Jobs lost or sent to the failed queue, and items run more "
    "than once.",
    "checkpoint_interval.png": "Resumable jobs under crashes: total time against the "
    "checkpoint interval, with Young's and Daly's optima.",
}

#: The bundled scenario the report leaves out: a benchmark of about a million jobs.
SKIPPED_SCENARIOS = ("bench-large",)

#: Columns naming a row (before the RESULT fields of ``sim.sweep.flatten``).
ID_COLUMNS = (
    "part",
    "scenario",
    "strategy",
    "seed",
    "deploys.every",
    "strategies.resumable.checkpoint_every",
    "length_s",
    "deploys_per_day",
    "checkpoint_every_s",
    "horizon_s",
    "t_s",
    "completed_within_fraction",
)


@dataclass(frozen=True)
class Part:
    """One sweep of the report: scenarios x grid x strategies, as ``run_sweep`` takes them."""

    name: str
    scenarios: tuple[Scenario, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    strategies: tuple[str, ...]

    @property
    def grid_dict(self) -> dict[str, list[Any]]:
        """The grid as ``run_sweep`` takes it."""
        return {key: list(values) for key, values in self.grid}

    def scenario(self, name: str) -> Scenario:
        """The part's scenario called ``name``."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise SimError(f"report part {self.name!r}: no scenario {name!r}")


@dataclass(frozen=True)
class Plan:
    """Everything the report runs; ``make_plan(quick)`` builds it, the same every time."""

    quick: bool
    lengths: tuple[str, ...]
    rhythms: tuple[int, ...]
    chosen_rhythm: int
    grid: Part
    scenarios: Part
    checkpoint: Part
    cdf_scenario: Scenario
    cdf_points: int
    checkpoint_work: float
    checkpoint_cost: float
    checkpoint_mtbf: float
    checkpoint_restart: float
    grid_scenarios: dict[str, float] = field(default_factory=dict)  # name -> length (s)

    @property
    def parts(self) -> tuple[Part, ...]:
        """The sweeps, in the order they run."""
        return (self.grid, self.scenarios, self.checkpoint)

    def part(self, name: str) -> Part:
        """The sweep called ``name``."""
        for p in self.parts:
            if p.name == name:
                return p
        raise SimError(f"report: no part {name!r}; parts: {', '.join(p.name for p in self.parts)}")


# -- the plan ----------------------------------------------------------------------------------

#: The grid's horizon: HORIZON_FACTOR x the job's length + the longest period + HORIZON_SLACK.
HORIZON_FACTOR = 1.25
HORIZON_SLACK = 3600.0
#: The grid's resumable checkpoint interval: max(CHECKPOINT_FLOOR, length / CHECKPOINT_PARTS),
#: with a lease of max(LEASE_FLOOR, 2 x the interval).
CHECKPOINT_FLOOR = 5.0
CHECKPOINT_PARTS = 1000
LEASE_FLOOR = 60.0
#: Simulated and closed-form completion rates agree within Z binomial standard errors.
Z = 3
#: The share of jobs done that the time-to-complete table reads off the curve.
CDF_SHARES = (0.5, 0.9)

GRID_SEED = 20240
CHECKPOINT_SEED = 1974

_FULL = {
    "lengths": ("10s", "30s", "1m", "3m", "10m", "30m", "1h", "2h", "4h", "8h", "16h", "2d",
                "4d", "7d", "14d"),
    "rhythms": (1, 2, 4, 8, 16, 32, 64),
    "chosen": 16,
    "grid_replications": 40,
    "scenario_horizon": "2d",
    "intervals": ("15s", "30s", "1m", "1m30s", "2m", "4m", "8m", "15m", "30m"),
    "checkpoint_replications": 300,
    "cdf_points": 121,
}
_QUICK = {
    "lengths": ("1m", "10m", "1h", "8h", "2d"),
    "rhythms": (1, 8, 64),
    "chosen": 8,
    "grid_replications": 2,
    "scenario_horizon": "3h",
    "intervals": ("30s", "1m30s", "8m"),
    "checkpoint_replications": 10,
    "cdf_points": 41,
}


def _period(per_day: int) -> str:
    return format_duration(DAY / per_day)


def _grid_scenario(length: str, replications: int, max_period: float) -> Scenario:
    """One job of ``length`` alone on one worker of a Kubernetes fleet; the horizon lets every
    strategy that can finish it do so (``HORIZON_FACTOR`` L + the longest deploy period +
    ``HORIZON_SLACK``)."""
    seconds = parse_duration(length, "length")
    horizon = HORIZON_FACTOR * seconds + max_period + HORIZON_SLACK
    every = max(CHECKPOINT_FLOOR, seconds / CHECKPOINT_PARTS)
    return scenario_from_dict(
        {
            "name": f"grid-{length}",
            "description": f"one {length} job alone on one worker, periodic deploys",
            "seed": GRID_SEED,
            "horizon": format_duration(math.ceil(horizon)),
            "replications": replications,
            "fleet": {"workers": 1, "restart_delay": "20s"},
            "platform": {"preset": "kubernetes"},
            "deploys": {"schedule": "periodic", "every": "1d"},
            "workload": {"arrivals": "backlog", "count": 1, "length": length,
                         "item_time": "1s"},
            # with no crashes in the grid the interval changes no number; scaling it bounds
            # the cost of simulating jobs of days (one checkpoint per 1/1000 of the job). The
            # engine checkpoints at least every lease_ttl / 2, so the lease scales with it.
            "strategies": {"resumable": {
                "checkpoint_every": format_duration(every),
                "lease_ttl": format_duration(max(LEASE_FLOOR, 2 * every))}},
        },
        "report grid",
    )


def _bundled(horizon_cap: str, cap_backlogs: bool) -> tuple[Scenario, ...]:
    """The bundled scenarios with one replication; horizons capped at ``horizon_cap``, except
    for backlogs unless ``cap_backlogs`` (all their jobs arrive at once, so their horizon is
    the time they are given)."""
    cap = parse_duration(horizon_cap, "horizon")
    out = []
    for name in bundled_scenarios():
        if name in SKIPPED_SCENARIOS:
            continue
        s = load_scenario(name)
        sets = ["replications=1"]
        if (cap_backlogs or s.workload.arrivals != "backlog") and s.horizon > cap:
            sets.append(f'horizon="{horizon_cap}"')
        s = with_overrides(s, sets)
        out.append(s)
    return tuple(out)


def _checkpoint_scenario(work: float, cost: float, mtbf: float, restart: float,
                         replications: int) -> Scenario:
    """One resumable job of ``work`` on one worker crashed at Poisson times of mean ``mtbf``,
    back after ``restart``; no deploys. The horizon is long enough for every interval swept."""
    return scenario_from_dict(
        {
            "name": "checkpoint-crashes",
            "description": "one job alone on one worker under Poisson crashes, no deploys",
            "seed": CHECKPOINT_SEED,
            "horizon": format_duration(30 * work),
            "replications": replications,
            "fleet": {"workers": 1, "restart_delay": format_duration(restart)},
            "platform": {"grace": "30s"},
            "deploys": {"schedule": "none"},
            "crashes": {"mtbf": format_duration(mtbf)},
            "workload": {"arrivals": "backlog", "count": 1, "length": format_duration(work),
                         "item_time": "1s"},
            "strategies": {"resumable": {"checkpoint_cost": format_duration(cost),
                                         "lease_ttl": "1h"}},
        },
        "report checkpoint",
    )


def make_plan(quick: bool = False) -> Plan:
    """The report's sweeps: the full plan, or with ``quick`` a coarse one for CI."""
    cfg = _QUICK if quick else _FULL
    rhythms = tuple(cfg["rhythms"])
    max_period = DAY / min(rhythms)
    lengths = tuple(cfg["lengths"])
    grid_scenarios = {}
    scenarios = []
    # longest first: the slowest cells start first and the pool ends evenly
    for length in sorted(lengths, key=lambda x: -parse_duration(x, "length")):
        s = _grid_scenario(length, int(cfg["grid_replications"]), max_period)
        grid_scenarios[s.name] = parse_duration(length, "length")
        scenarios.append(s)
    grid = Part("grid", tuple(scenarios), (("deploys.every", tuple(_period(n) for n in rhythms)),),
                STRATEGY_ORDER)
    bundled = _bundled(str(cfg["scenario_horizon"]), quick)
    scen = Part("scenarios", bundled, (), STRATEGY_ORDER)
    work, cost, mtbf, restart = 3600.0, 5.0, 900.0, 20.0
    ck = Part(
        "checkpoint",
        (_checkpoint_scenario(work, cost, mtbf, restart, int(cfg["checkpoint_replications"])),),
        (("strategies.resumable.checkpoint_every", tuple(cfg["intervals"])),),
        ("resumable",),
    )
    cdf = next(s for s in bundled if s.name == "shopify-40-a-day")
    return Plan(
        quick=quick,
        lengths=lengths,
        rhythms=rhythms,
        chosen_rhythm=int(cfg["chosen"]),
        grid=grid,
        scenarios=scen,
        checkpoint=ck,
        cdf_scenario=cdf,
        cdf_points=int(cfg["cdf_points"]),
        checkpoint_work=work,
        checkpoint_cost=cost,
        checkpoint_mtbf=mtbf,
        checkpoint_restart=restart,
        grid_scenarios=grid_scenarios,
    )


def report_cells(plan: Plan, part: str) -> list[Any]:
    """The cells (``sim.sweep.Cell``) of one part, in the order ``run_sweep`` runs them."""
    p = plan.part(part)
    return make_cells(list(p.scenarios), p.grid_dict)


# -- theory --------------------------------------------------------------------------------------


def completion_theory(strategy: str, length: float, period: float, grace: float,
                      timeout: float) -> float | None:
    """The closed-form completion rate of a job of ``length`` started at a uniform phase of
    periodic deploys of ``period`` (docs/closed-forms.md, formula 3), or None for strategies
    without one.

    Wait with a kill (Resque, Celery): the job completes iff the next deploy leaves it at most
    ``grace`` of work, ``max(0, 1 - (L - K)/P)``. Restart (Sidekiq): every job with
    ``E[T] = L + L^2/(2P)`` finite (``L <= P``) completes in the end; a longer one only if its
    first attempt does, with ``K`` its ``timeout``, and never after that (livelock).
    """
    if strategy in ("resque", "celery"):
        return periodic_first_attempt_completes(max(length - grace, 0.0), period)
    if strategy == "sidekiq":
        if math.isfinite(periodic_expected_time(length, period)):
            return 1.0
        return periodic_first_attempt_completes(max(length - min(timeout, grace), 0.0), period)
    return None


def _grid_theory(plan: Plan) -> Callable[[str, float, float], float | None]:
    s = plan.grid.scenarios[0]
    grace = s.platform.grace
    from ..fleet.replications import strategies_of

    timeout = float(strategies_of(s, ["sidekiq"])["sidekiq"].timeout)  # type: ignore[attr-defined]

    def theory(strategy: str, length: float, period: float) -> float | None:
        return completion_theory(strategy, length, period, grace, timeout)

    return theory


# -- running -------------------------------------------------------------------------------------


def _completion_times(scenario: Scenario, strategy: str, seed: int) -> tuple[np.ndarray, ...]:
    """Enqueue and completion times of every job of replication 0 (NaN: not completed)."""
    from ..fleet.replications import draw, fleet_for, strategies_of

    d = draw(scenario, seed, 0)
    sim = fleet_for(scenario, strategies_of(scenario, [strategy])[strategy], d)
    a = sim.run().arrays()
    return a["enqueue_t"], a["done_t"]


def cdf_rows(scenario: Scenario, strategy: str, seed: int, points: int) -> list[dict[str, Any]]:
    """The time-to-complete CDF of one strategy: for the jobs enqueued in the first half of the
    horizon (each has at least half of it to finish), the fraction completed within ``t`` of
    being enqueued, at ``points`` log-spaced ``t`` from 1 s to half the horizon."""
    enqueued, done = _completion_times(scenario, strategy, seed)
    cohort = enqueued < scenario.horizon / 2
    waits = np.sort((done - enqueued)[cohort])  # NaN (not completed) sorts last
    n = int(cohort.sum())
    rows = []
    for t in np.geomspace(1.0, scenario.horizon / 2, points):
        within = int(np.searchsorted(waits, t, side="right")) if n else 0
        rows.append({"part": "cdf", "scenario": scenario.name, "strategy": strategy,
                     "seed": seed, "horizon_s": scenario.horizon, "enqueued": n,
                     "t_s": float(t), "completed_within_fraction": within / n if n else math.nan})
    return rows


def _cdf_task(args: tuple[Scenario, str, int, int]) -> list[dict[str, Any]]:
    return cdf_rows(*args)


def _run_cdf(plan: Plan, executor: str) -> list[dict[str, Any]]:
    scenario = plan.cdf_scenario
    seed = make_cells([scenario], {})[0].seed  # the same draws as its row of the scenarios part
    tasks = [(scenario, name, seed, plan.cdf_points) for name in STRATEGY_ORDER]
    if executor == "processes":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(len(tasks), _cores())) as pool:
            groups = list(pool.map(_cdf_task, tasks))
    else:
        groups = [_cdf_task(t) for t in tasks]
    return [row for group in groups for row in group]


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _annotate(part: Part, df: Any, plan: Plan) -> Any:
    """Add the columns the plots and findings read: lengths, rhythms, intervals, theory."""
    df.insert(0, "part", part.name)
    horizons = {s.name: s.horizon for s in part.scenarios}
    df["horizon_s"] = df["scenario"].map(horizons)
    if part.name == "grid":
        theory = _grid_theory(plan)
        df["length_s"] = df["scenario"].map(plan.grid_scenarios)
        period = df["deploys.every"].map(lambda v: parse_duration(v, "deploys.every"))
        df["deploys_per_day"] = (DAY / period).round(6)
        df["theory_completion_rate"] = [
            theory(s, length, p) for s, length, p in
            zip(df["strategy"], df["length_s"], period, strict=True)
        ]
    if part.name == "checkpoint":
        every = df["strategies.resumable.checkpoint_every"].map(
            lambda v: parse_duration(v, "checkpoint_every"))
        df["checkpoint_every_s"] = every
        df["theory_expected_time_s"] = [
            daly_expected_time(plan.checkpoint_work, tau, plan.checkpoint_cost,
                               plan.checkpoint_mtbf, plan.checkpoint_restart) for tau in every
        ]
        df["young_interval_s"] = young_interval(plan.checkpoint_cost, plan.checkpoint_mtbf)
        df["daly_interval_s"] = daly_interval(plan.checkpoint_cost, plan.checkpoint_mtbf)
    return df


def run_plan(plan: Plan, *, executor: str = "processes", scheduler: str | None = None,
             progress: bool | Callable[[int, int], None] = True) -> Any:
    """Run every part of ``plan``; one pandas DataFrame of every row, in report order."""
    import pandas as pd

    if executor not in EXECUTORS:
        raise SimError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    frames = []
    for part in plan.parts:
        logger.info("report: part %s, %d scenario(s)", part.name, len(part.scenarios))
        df = run_sweep(list(part.scenarios), part.grid_dict, list(part.strategies),
                       executor=executor, scheduler=scheduler, progress=progress)
        frames.append(_annotate(part, df, plan))
    logger.info("report: time-to-complete CDF of %s", plan.cdf_scenario.name)
    frames.append(pd.DataFrame(_run_cdf(plan, executor)))
    return _order(pd.concat(frames, ignore_index=True))


def rerun_cell(plan: Plan, part: str, scenario: str, values: Mapping[str, Any],
               strategies: Sequence[str]) -> Any:
    """Re-run one cell of ``plan`` (the scenario of ``part`` called ``scenario``, with the grid
    ``values`` as ``results.csv`` spells them) for some strategies; the rows as ``results.csv``
    would hold them, to compare with a report on disk."""
    import io

    import pandas as pd

    p = plan.part(part)
    keys = [k for k, _ in p.grid]
    if sorted(values) != sorted(keys):
        raise SimError(f"report part {part!r}: give values for {keys}, got {sorted(values)}")
    cell: Cell = make_cells([p.scenario(scenario)], {k: [values[k]] for k in keys})[0]
    df = numeric_columns(_annotate(p, pd.DataFrame(run_cell(cell, list(strategies))), plan))
    text = io.StringIO()
    df.to_csv(text, index=False, float_format="%.10g")
    text.seek(0)
    return read_results(text)


def _order(df: Any) -> Any:
    """Rows by part, then by the values that vary in it; columns ids first."""
    rank = {name: i for i, name in enumerate(STRATEGY_ORDER)}
    df = df.assign(
        _part=df["part"].map({p: i for i, p in enumerate(PARTS)}),
        _strategy=df["strategy"].map(rank),
    )
    keys = ["_part", "length_s", "deploys_per_day", "scenario", "checkpoint_every_s",
            "_strategy", "t_s"]
    df = df.sort_values(keys, kind="stable", na_position="first").drop(
        columns=["_part", "_strategy"])
    ids = [c for c in ID_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in ids]
    return df[ids + rest].reset_index(drop=True)


def write_results(df: Any, out_dir: str | Path) -> Any:
    """Write ``results.csv`` and ``results.json`` (``sweep.save``); return the rows as read
    back from the CSV."""
    csv_path, _ = save(df, out_dir)
    return read_results(csv_path)


def read_results(path: Any) -> Any:
    """``results.csv`` (a path or an open text file) as a DataFrame, grid values as text as
    the sweep wrote them."""
    import pandas as pd

    return pd.read_csv(path, dtype={"deploys.every": str,
                                    "strategies.resumable.checkpoint_every": str})


# -- the README ----------------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages the numbers depend on."""
    out = {"python": host.python_version()}
    for name in ("deploysim", "simpy", "numpy", "scipy", "pandas", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = _source_version() if name == "deploysim" else "not installed"
    return out


def _source_version() -> str:
    """The version in the source tree's pyproject.toml, when the package is not installed."""
    import tomllib

    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        with path.open("rb") as handle:
            return f"{tomllib.load(handle)['project']['version']} (source tree)"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown (source tree)"


def _dur(seconds: float | None) -> str:
    """A duration as people read it: "45s", "1h 30m", "14d"."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return format_duration(round(seconds))


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}%"


def _num(x: float, digits: int = 3) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> str:
    """A Markdown table; columns from ``right`` on are right-aligned."""
    align = ["---" if i < right else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rhythm_label(n: float) -> str:
    """Deploys a day as the tables write them: "16/day"."""
    n = float(n)
    return f"{n:g}/day"


THRESHOLD = 0.99


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


def _theory_agreement(grid: Any) -> list[str]:
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
               f"the largest gap is {_pct(abs(sim[worst] - p[worst]))} "
               f"({_dur(w['length_s'])} jobs at {rhythm_label(w['deploys_per_day'])}: simulated "
               f"{_pct(sim[worst])}, closed form {_pct(p[worst])}).")
        )
    return out


def _grid_section(df: Any, plan: Plan) -> tuple[list[str], list[str]]:
    grid = df[df["part"] == "grid"]
    rhythms = sorted(grid["deploys_per_day"].unique())
    lengths = sorted(grid["length_s"].unique())
    reps = int(grid["replications"].max())
    findings = []
    # the longest job that completes, per strategy and rhythm
    head = ["strategy", *[rhythm_label(r) for r in rhythms]]
    rows = []
    for strategy in STRATEGY_ORDER:
        cells = []
        for r in rhythms:
            best = longest_completed(grid, strategy, r)
            if best is None:
                cells.append("none")
            elif best == max(lengths):
                cells.append(f"{_dur(best)} (all)")
            else:
                cells.append(_dur(best))
        rows.append([f"`{strategy}`", *cells])
    longest = _table(head, rows)
    # the rhythm at which one-hour jobs (or the nearest length) fall below 99%
    hour = min(lengths, key=lambda x: abs(math.log(x / 3600.0)))
    parts = []
    for strategy in STRATEGY_ORDER:
        r = falls_below(grid, strategy, hour)
        parts.append(f"`{strategy}` " + ("never on this grid (up to "
                                         f"{rhythm_label(max(rhythms))})" if r is None
                                         else f"at {rhythm_label(r)}"))
    findings.append(f"Jobs of {_dur(hour)} fall below {_pct(THRESHOLD, 0)} completion: "
                    + "; ".join(parts) + ".")
    # livelock: sidekiq at lengths above the period
    side = grid[(grid["strategy"] == "sidekiq")]
    period = DAY / side["deploys_per_day"]
    over = side[side["length_s"] > period]
    if not over.empty:
        findings.append(
            f"Livelock: of the {len(over)} `sidekiq` cells whose job is longer than the deploy "
            f"period, the highest completion rate is {_pct(over['completion_rate'].max())} "
            f"(formula 3: such a job restarts at every deploy and never finishes); at or under "
            f"the period the lowest is "
            f"{_pct(side[side['length_s'] <= period]['completion_rate'].min())}."
        )
    for strategy in ("split", "resumable"):
        s = grid[grid["strategy"] == strategy]
        stretch = float((s["run_time_s_mean"] / s["length_s"]).max())
        findings.append(
            f"`{strategy}` completes {_pct(s['completion_rate'].mean())} of jobs over the whole "
            f"grid (lowest cell {_pct(s['completion_rate'].min())}); its mean time from first "
            f"start to completion is at most {_num(stretch)} times the job's length."
        )
    findings += _theory_agreement(grid)
    # the table at the chosen rhythm
    chosen = grid[grid["deploys_per_day"] == plan.chosen_rhythm]
    head = ["length", *[f"`{s}`" for s in STRATEGY_ORDER], "restart (closed form)",
            "wait, then kill (closed form)"]
    rows = []
    for length in lengths:
        at = chosen[chosen["length_s"] == length].set_index("strategy")
        rows.append([
            _dur(length), *[_pct(at.loc[s, "completion_rate"]) for s in STRATEGY_ORDER],
            _pct(at.loc["sidekiq", "theory_completion_rate"]),
            _pct(at.loc["resque", "theory_completion_rate"]),
        ])
    tables = [
        f"### Completion rate by job length at {rhythm_label(plan.chosen_rhythm)} "
        f"(a deploy every {_dur(DAY / plan.chosen_rhythm)})\n\n"
        f"Each cell is {reps} jobs, each alone on a worker with its own deploy phase.\n\n"
        + _table(head, rows),
        f"### The longest job that still completes\n\nThe longest length of the grid at which "
        f"jobs of that length and every shorter one complete at {_pct(THRESHOLD, 0)} or more.\n\n"
        + longest,
    ]
    return findings, tables


def _scenario_section(df: Any) -> tuple[list[str], list[str]]:
    sc = df[df["part"] == "scenarios"]
    findings = []
    head = ["scenario", "strategy", "completed", "lost", "failed", "pending", "dup items",
            "wasted (h)", "drain p50", "drain max", "hard kills"]
    rows = []
    for _, r in sc.iterrows():
        rows.append([
            r["scenario"], f"`{r['strategy']}`", _pct(r["completion_rate"], 2),
            _num(r["lost"]), _num(r["failed"]), _num(r["pending"]),
            _num(r["duplicate_item_executions"]), _num(r["wasted_work_s"] / 3600),
            _dur(r["drain_s_p50"]), _dur(r["drain_s_max"]), _num(r["hard_kills"]),
        ])
    table = _table(head, rows, right=2)
    by = sc.groupby("strategy", sort=False)
    for strategy in STRATEGY_ORDER:
        g = by.get_group(strategy)
        losers = g[(g["lost"] + g["failed"]) > 0]
        work = g["useful_work_s"].sum() + g["wasted_work_s"].sum()
        findings.append(
            f"`{strategy}`: {_num(g['lost'].sum())} jobs lost and {_num(g['failed'].sum())} "
            f"failed of {_num(g['enqueued'].sum())} enqueued ("
            + (f"in {len(losers)} of {len(g)} scenarios" if len(losers) else "in none of the "
               f"{len(g)} scenarios")
            + f"); {_num(g['duplicate_item_executions'].sum())} items run more than once; "
            f"{_pct(g['wasted_work_s'].sum() / work if work else math.nan)} of worker time "
            f"wasted; the longest deploy drain {_dur(g['drain_s_max'].max())}."
        )
    best = []
    for name, g in sc.groupby("scenario", sort=False):
        top = g["completion_rate"].max()
        winners = [f"`{s}`" for s in g[g["completion_rate"] == top]["strategy"]]
        best.append(f"{name} ({', '.join(winners)})")
    findings.append("Highest completion rate per scenario: " + "; ".join(best) + ".")
    return findings, [table]


def _checkpoint_section(df: Any, plan: Plan) -> tuple[list[str], list[str]]:
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
    findings = [
        f"Checkpointing under crashes ({_dur(plan.checkpoint_work)} of work, a crash every "
        f"{_dur(plan.checkpoint_mtbf)} on average, checkpoints of {_dur(plan.checkpoint_cost)}, "
        f"{_dur(plan.checkpoint_restart)} to restart): Young's optimum is {_dur(young)}, Daly's "
        f"{_dur(daly)}; the best simulated interval is {_dur(taus[i])} "
        f"({_dur(sim[i])} on average), the best of the same grid by Daly's formula {_dur(taus[j])} "
        f"({_dur(theory[j])}).",
        f"Simulation against Daly's expected time: the largest gap is {_pct(gap[k])} at an "
        f"interval of {_dur(taus[k])}; the lowest completion rate of these jobs is "
        f"{_pct(ck['completion_rate'].min(), 2)}.",
    ]
    head = ["interval", "simulated mean", "Daly's formula", "gap", "median", "90th percentile"]
    rows = []
    for _, r in ck.iterrows():
        rows.append([_dur(r["checkpoint_every_s"]), _dur(r["run_time_s_mean"]),
                     _dur(r["theory_expected_time_s"]),
                     _pct((r["run_time_s_mean"] - r["theory_expected_time_s"])
                          / r["theory_expected_time_s"]),
                     _dur(r["run_time_s_p50"]), _dur(r["run_time_s_p90"])])
    return findings, [_table(head, rows)]


def _cdf_section(df: Any) -> tuple[list[str], list[str]]:
    cdf = df[df["part"] == "cdf"]
    name = cdf["scenario"].iloc[0]
    horizon = float(cdf["horizon_s"].iloc[0])
    head = ["strategy", "jobs", *[f"{_pct(q, 0)} done within" for q in CDF_SHARES],
            "done within the horizon's half"]
    rows = []
    findings = []
    for strategy in STRATEGY_ORDER:
        c = cdf[cdf["strategy"] == strategy].sort_values("t_s")
        t, f = c["t_s"].to_numpy(float), c["completed_within_fraction"].to_numpy(float)

        def first(q: float, t: np.ndarray = t, f: np.ndarray = f) -> str:
            hit = np.nonzero(f >= q)[0]
            return _dur(t[hit[0]]) if hit.size else "never"

        rows.append([f"`{strategy}`", _num(float(c["enqueued"].iloc[0])),
                     *[first(q) for q in CDF_SHARES], _pct(f[-1], 2)])
    findings.append(
        f"Time to complete in {name} (jobs enqueued in the first {_dur(horizon / 2)}): "
        + "; ".join(f"{r[0]} completes {r[-1]} of them, {_pct(CDF_SHARES[-1], 0)} within "
                    f"{r[-2]}" for r in rows) + "."
    )
    note = ("Times are read off the curve's grid of log-spaced times: the first time at which "
            "the share is reached.")
    return findings, [note + "\n\n" + _table(head, rows)]


def _scenario_list(plan: Plan) -> str:
    head = ["scenario", "what it is", "seed", "horizon", "replications"]
    rows = []
    cells = {c.scenario.name: c for c in report_cells(plan, "scenarios")}
    for s in plan.scenarios.scenarios:
        rows.append([s.name, s.description, str(cells[s.name].seed), _dur(s.horizon),
                     str(s.replications)])
    return _table(head, rows, right=2)


def render_readme(df: Any, plan: Plan, versions: Mapping[str, str]) -> str:
    """The README of the report, from the rows of ``results.csv`` (``read_results``), the plan
    that made them and the package versions: every number in it comes from those three."""
    grid_findings, grid_tables = _grid_section(df, plan)
    sc_findings, sc_tables = _scenario_section(df)
    ck_findings, ck_tables = _checkpoint_section(df, plan)
    cdf_findings, cdf_tables = _cdf_section(df)
    g0 = plan.grid.scenarios[0]
    ck = plan.checkpoint.scenarios[0]
    grid_seeds = sorted({int(s) for s in df[df["part"] == "grid"]["seed"]})
    ck_seeds = sorted({int(s) for s in df[df["part"] == "checkpoint"]["seed"]})
    command = "deploysim report --quick" if plan.quick else "deploysim report"
    lengths = ", ".join(plan.lengths)
    rhythms = ", ".join(f"{n}" for n in plan.rhythms)
    intervals = ", ".join(v for _, vs in plan.checkpoint.grid for v in vs)
    out = [
        "# deploysim report",
        "",
        f"Generated by `{command}` from the numbers in [results.csv](results.csv) "
        "(the same rows as [results.json](results.json)); nothing below is written by hand. "
        "The same seeds give the same `results.csv`, byte for byte; a test re-runs some of its "
        "cells and compares them.",
        "",
        "## Findings",
        "",
        "### Deploy rhythm against job length",
        "",
        *[f"- {f}" for f in grid_findings],
        "",
        "### Bundled scenarios",
        "",
        *[f"- {f}" for f in sc_findings],
        "",
        "### Time to complete",
        "",
        *[f"- {f}" for f in cdf_findings],
        "",
        "### Checkpoint interval",
        "",
        *[f"- {f}" for f in ck_findings],
        "",
        "## Plots",
        "",
    ]
    for name, caption in PLOTS.items():
        out += [f"### {caption}", "", f"![{caption}]({name})", ""]
    out += ["## Tables", "", *grid_tables, "", "### Bundled scenarios", "", *sc_tables, "",
            "### Time to complete", "", *cdf_tables, "", "### Checkpoint interval", "",
            *ck_tables, ""]
    out += [
        "## What was run",
        "",
        "### Deploy rhythm against job length (`part = grid`)",
        "",
        f"One job of a fixed length alone on one worker ({g0.platform.preset}, "
        f"{_dur(g0.platform.grace)} grace, {_dur(g0.fleet.restart_delay)} to restart a worker), "
        f"deployed every day/n for n in {rhythms}, for lengths {lengths}. Every replication "
        "draws its own deploy phase, so a cell's completion rate is the share of jobs of that "
        "length that complete under that rhythm, and the closed forms of formula 3 apply "
        f"({g0.replications} replications a cell). A job that has not completed by the horizon "
        f"({HORIZON_FACTOR:g} times its length, plus the longest deploy period, plus "
        f"{_dur(HORIZON_SLACK)}) is "
        "pending: with no deploys every job would be done by then. Items take "
        f"{_dur(g0.workload.classes[0].item_time)}, so `split` cuts a job into sub-jobs of "
        "its default chunk of items; the resumable engine checkpoints every "
        f"max({_dur(CHECKPOINT_FLOOR)}, L/{CHECKPOINT_PARTS}), with a lease of "
        f"max({_dur(LEASE_FLOOR)}, twice that) (the engine writes at least every half lease). "
        "With no crashes this changes no number here but bounds the cost of simulating jobs "
        "of days. Seeds: "
        f"{', '.join(map(str, grid_seeds))} (one per rhythm, the same for every length, so "
        "lengths are compared on the same deploy phases).",
        "",
        "### Bundled scenarios (`part = scenarios`)",
        "",
        "Every bundled scenario but the benchmark, with its own fleet, platform, deploys and "
        "workload, one replication, and the horizon capped as shown"
        + (" (backlogs too: a quick run)." if plan.quick else " (a backlog keeps its own)."),
        "",
        _scenario_list(plan),
        "",
        "### Time to complete (`part = cdf`)",
        "",
        f"The `{plan.cdf_scenario.name}` row of the scenarios part, re-run to keep each job's "
        "enqueue and completion time: for the jobs enqueued in the first half of the horizon, "
        "the share completed within a given time of being enqueued.",
        "",
        "### Checkpoint interval (`part = checkpoint`)",
        "",
        f"One resumable job of {_dur(plan.checkpoint_work)} of work alone on one worker, "
        f"SIGKILLed at Poisson times (mean {_dur(plan.checkpoint_mtbf)}), back after "
        f"{_dur(plan.checkpoint_restart)}, checkpoints costing {_dur(plan.checkpoint_cost)}, "
        f"no deploys; intervals {intervals}; {ck.replications} replications a cell; seeds "
        f"{', '.join(map(str, ck_seeds))}. Daly's expected time uses the restart delay as "
        "its restart cost.",
        "",
        "### Software",
        "",
        _table(["package", "version"], [[k, v] for k, v in versions.items()]),
        "",
    ]
    return "\n".join(out)


# -- the report ------------------------------------------------------------------------------------


def make_report(
    out_dir: str | Path = "reports",
    quick: bool = False,
    executor: str = "processes",
    scheduler: str | None = None,
    progress: bool | Callable[[int, int], None] = True,
) -> Path:
    """Run the report's sweeps and write ``results.csv``, ``results.json``, the plots and
    ``README.md`` into ``out_dir``; return ``out_dir`` as a Path.

    ``quick`` runs a coarse grid with short horizons (for CI). ``executor`` and ``scheduler``
    are ``run_sweep``'s (processes, serial or dask); ``progress`` shows a bar per sweep, or is
    called as ``progress(done, total)``.
    """
    from . import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = make_plan(quick)
    df = run_plan(plan, executor=executor, scheduler=scheduler, progress=progress)
    results = write_results(df, out)
    logger.info("report: plots")
    plots.draw_all(results, plan, out)
    readme = render_readme(results, plan, package_versions())
    (out / "README.md").write_text(readme, encoding="utf-8")
    logger.info("report: wrote %s", out)
    return out
