"""The report: every strategy over deploy rhythms and job lengths, the bundled scenarios, and
checkpointing under crashes, written as plots, tables and a README whose findings are computed
from the numbers.

    from deploysim.sim.report import make_report
    make_report("reports")                 # the committed report, a few minutes on 2 cores
    make_report("/tmp/r", quick=True)      # a coarse grid for CI, seconds

Four parts, each a sweep (``deploysim.sim.analysis.sweep.run_sweep``) except the last:

- ``grid``: one job of a fixed length alone on one worker, periodic deploys of ``n`` a day, each
  replication with its own deploy phase: the completion rate of a job of that length under that
  rhythm, to set against the closed forms of ``deploysim.sim.analysis.theory``;
- ``scenarios``: the bundled scenarios (all but the benchmark), horizons capped to keep the run
  short;
- ``checkpoint``: a resumable job under Poisson crashes, swept over its checkpoint interval, to
  set against Young's and Daly's optima and Daly's expected time;
- ``cdf``: time to complete of every job of one bundled scenario, per strategy.

Every number behind a plot is a row of ``results.csv`` (and ``results.json``); the README is
rendered from ``results.csv`` as read back from disk, so it holds nothing the data does not.

The modules: ``plan`` (what runs), ``run`` (running it), ``results`` (the rows on disk),
``findings`` (what the rows say), ``readme`` (the README) and ``plots`` (the figures); this
module writes the report from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from . import plots
from .findings import falls_below, longest_completed, rhythm_label
from .plan import PARTS, PLOTS, STRATEGY_ORDER, Part, Plan, make_plan, report_cells
from .readme import package_versions, render_readme
from .results import read_results, write_results
from .run import cdf_rows, rerun_cell, run_plan

__all__ = [
    "PARTS",
    "PLOTS",
    "STRATEGY_ORDER",
    "Part",
    "Plan",
    "cdf_rows",
    "falls_below",
    "longest_completed",
    "make_plan",
    "make_report",
    "package_versions",
    "read_results",
    "render_readme",
    "report_cells",
    "rerun_cell",
    "rhythm_label",
    "run_plan",
    "write_results",
]

logger = logging.getLogger(__name__)


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
    are ``run_sweep``'s (processes, serial or dask), and the time-to-complete runs take them
    too; ``progress`` shows a bar per sweep, or is called as ``progress(done, total)``.
    """
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
