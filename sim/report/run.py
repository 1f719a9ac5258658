"""Running the report's plan: its sweeps, the time-to-complete runs of the ``cdf`` part, and the
columns the plots and findings read (lengths, rhythms, intervals, closed forms).

    df = run_plan(make_plan(quick=True), executor="serial", progress=False)

Every fan-out goes through ``deploysim.sim.executors.run_all`` or ``run_sweep``, so ``executor`` and
``scheduler`` mean the same for each: every core, this process, or a Dask cluster.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..analysis.sweep import make_cells, run_cell, run_sweep
from ..analysis.theory import (
    completion_theory,
    daly_expected_time,
    daly_interval,
    young_interval,
)
from ..durations import DAY
from ..errors import SimError
from ..executors import check_executor, run_all
from ..fleet.replications import draw, fleet_for, strategies_of
from ..scenario import Scenario
from .plan import STRATEGY_ORDER, Part, Plan
from .results import as_written, order_rows

__all__ = ["cdf_rows", "rerun_cell", "run_plan"]

logger = logging.getLogger(__name__)


def _completion_times(scenario: Scenario, strategy: str, seed: int) -> tuple[np.ndarray, ...]:
    """Enqueue and completion times of every job of replication 0 (NaN: not completed)."""
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


def _run_cdf(plan: Plan, executor: str, scheduler: str | None) -> list[dict[str, Any]]:
    """The CDF of every strategy, one task each, on ``executor``."""
    scenario = plan.cdf_scenario
    seed = make_cells([scenario], {})[0].seed  # the same draws as its row of the scenarios part
    tasks = [(scenario, name, seed, plan.cdf_points) for name in STRATEGY_ORDER]
    groups = run_all(cdf_rows, tasks, executor=executor, scheduler=scheduler)
    return [row for group in groups for row in group]


def _annotate(part: Part, df: Any, plan: Plan) -> Any:
    """Add the columns the plots and findings read: lengths, rhythms, intervals, theory."""
    df.insert(0, "part", part.name)
    horizons = {s.name: s.horizon for s in part.scenarios}
    df["horizon_s"] = df["scenario"].map(horizons)
    if part.name == "grid":
        grace = plan.grid.scenarios[0].platform.grace
        df["length_s"] = df["scenario"].map(plan.grid_scenarios)
        period = df["deploys.every"].map(part.value_seconds)
        df["deploys_per_day"] = (DAY / period).round(6)
        df["theory_completion_rate"] = [
            completion_theory(s, length, p, grace, plan.sidekiq_timeout) for s, length, p in
            zip(df["strategy"], df["length_s"], period, strict=True)
        ]
    if part.name == "checkpoint":
        every = df["strategies.resumable.checkpoint_every"].map(part.value_seconds)
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

    check_executor(executor)
    frames = []
    for part in plan.parts:
        logger.info("report: part %s, %d scenario(s)", part.name, len(part.scenarios))
        df = run_sweep(list(part.scenarios), part.grid_dict, list(part.strategies),
                       executor=executor, scheduler=scheduler, progress=progress)
        frames.append(_annotate(part, df, plan))
    logger.info("report: time-to-complete CDF of %s", plan.cdf_scenario.name)
    frames.append(pd.DataFrame(_run_cdf(plan, executor, scheduler)))
    return order_rows(pd.concat(frames, ignore_index=True))


def rerun_cell(plan: Plan, part: str, scenario: str, values: Mapping[str, Any],
               strategies: Sequence[str]) -> Any:
    """Re-run one cell of ``plan`` (the scenario of ``part`` called ``scenario``, with the grid
    ``values`` as ``results.csv`` spells them) for some strategies; the rows as ``results.csv``
    would hold them, to compare with a report on disk."""
    import pandas as pd

    p = plan.part(part)
    keys = [k for k, _ in p.grid]
    if sorted(values) != sorted(keys):
        raise SimError(f"report part {part!r}: give values for {keys}, got {sorted(values)}")
    for key in keys:
        p.value_seconds(values[key])  # one of the part's values, or an error naming them
    cell = make_cells([p.scenario(scenario)], {k: [values[k]] for k in keys})[0]
    return as_written(_annotate(p, pd.DataFrame(run_cell(cell, list(strategies))), plan))
