"""The README of the report, rendered from the rows of ``results.csv``, the plan that made them
and the package versions: the prose is the template ``readme_template.md`` beside this module
(``string.Template``), every ``${name}`` in it a number, list, finding or table computed here.

    text = render_readme(read_results("reports/results.csv"), make_plan(), package_versions())
"""

from __future__ import annotations

import math
import platform as host
from collections.abc import Iterable, Mapping
from importlib import metadata, resources
from string import Template
from typing import Any

from ..durations import humanize
from ..text import markdown_table
from .findings import cdf_section, checkpoint_section, grid_section, scenario_section
from .plan import (
    CHECKPOINT_FLOOR,
    CHECKPOINT_PARTS,
    HORIZON_FACTOR,
    HORIZON_SLACK,
    LEASE_FLOOR,
    PLOTS,
    Plan,
    report_cells,
)

__all__ = ["TEMPLATE", "package_versions", "render_readme"]

#: The README's template, shipped beside this module.
TEMPLATE = "readme_template.md"

#: The packages whose versions the README lists (the numbers depend on them).
PACKAGES = ("deploysim", "simpy", "numpy", "scipy", "pandas", "matplotlib")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the installed packages the numbers depend on."""
    out = {"python": host.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _template() -> Template:
    text = resources.files(__package__ or __name__).joinpath(TEMPLATE).read_text(encoding="utf-8")
    return Template(text)


def _bullets(lines: Iterable[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _seeds(df: Any, part: str) -> str:
    return ", ".join(str(s) for s in sorted({int(s) for s in df[df["part"] == part]["seed"]}))


def _scenario_list(plan: Plan) -> str:
    """The bundled scenarios as run: what each is, its seed, horizon and replications."""
    head = ["scenario", "what it is", "seed", "horizon", "replications"]
    cells = {c.scenario.name: c for c in report_cells(plan, "scenarios")}
    rows = [[s.name, s.description, str(cells[s.name].seed), humanize(s.horizon),
             str(s.replications)] for s in plan.scenarios.scenarios]
    return markdown_table(head, rows, right=2)


def _rolling_note(plan: Plan) -> str:
    """The bundled scenarios whose deploys roll (stop the workers batch after batch), and how
    long such a deploy can drain: each batch has its own grace."""
    rolling = []
    for s in plan.scenarios.scenarios:
        size = s.deploys.batch_size
        if size and size < s.fleet.workers:
            n = math.ceil(s.fleet.workers / size)
            rolling.append(f"`{s.name}` stops its {s.fleet.workers} workers in {n} batches of "
                           f"{size}, one after another, each batch within its own "
                           f"{humanize(s.platform.grace)} grace, so a deploy can drain for up "
                           f"to {n} x {humanize(s.platform.grace)} = "
                           f"{humanize(n * s.platform.grace)}")
    return ("A rolling deploy drains batch by batch: " + "; ".join(rolling) + ".") if rolling \
        else ""


def render_readme(df: Any, plan: Plan, versions: Mapping[str, str]) -> str:
    """The README of the report, from the rows of ``results.csv`` (``read_results``), the plan
    that made them and the package versions: every number in it comes from those three."""
    grid = grid_section(df, plan)
    scenarios = scenario_section(df)
    checkpoint = checkpoint_section(df, plan)
    cdf = cdf_section(df, plan)
    g0 = plan.grid.scenarios[0]
    ck = plan.checkpoint.scenarios[0]
    return _template().substitute(
        command="deploysim report --quick" if plan.quick else "deploysim report",
        grid_findings=_bullets(grid.findings),
        scenario_findings=_bullets(scenarios.findings),
        cdf_findings=_bullets(cdf.findings),
        checkpoint_findings=_bullets(checkpoint.findings),
        plots="\n\n".join(f"### {caption}\n\n![{caption}]({name})"
                          for name, caption in PLOTS.items()),
        grid_tables="\n\n".join(grid.tables),
        scenario_tables="\n\n".join(scenarios.tables),
        cdf_tables="\n\n".join(cdf.tables),
        checkpoint_tables="\n\n".join(checkpoint.tables),
        grid_platform=g0.platform.preset,
        grid_grace=humanize(g0.platform.grace),
        grid_restart=humanize(g0.fleet.restart_delay),
        rhythms=", ".join(str(n) for n in plan.rhythms),
        lengths=", ".join(plan.lengths),
        grid_replications=g0.replications,
        horizon_factor=f"{HORIZON_FACTOR:g}",
        horizon_slack=humanize(HORIZON_SLACK),
        item_time=humanize(g0.workload.classes[0].item_time),
        checkpoint_floor=humanize(CHECKPOINT_FLOOR),
        checkpoint_parts=CHECKPOINT_PARTS,
        lease_floor=humanize(LEASE_FLOOR),
        grid_seeds=_seeds(df, "grid"),
        horizon_note="backlogs too: a quick run" if plan.quick else "a backlog keeps its own",
        scenario_list=_scenario_list(plan),
        rolling_note=_rolling_note(plan),
        cdf_scenario=plan.cdf_scenario.name,
        cdf_chunk_items=plan.cdf_chunk_items,
        cdf_sub_job=humanize(plan.cdf_sub_job_s),
        cdf_item_time=humanize(plan.cdf_scenario.workload.classes[0].item_time),
        cdf_workers=plan.cdf_scenario.fleet.workers,
        checkpoint_work=humanize(plan.checkpoint_work),
        checkpoint_mtbf=humanize(plan.checkpoint_mtbf),
        checkpoint_restart=humanize(plan.checkpoint_restart),
        checkpoint_cost=humanize(plan.checkpoint_cost),
        intervals=", ".join(v for _, values in plan.checkpoint.grid for v in values),
        checkpoint_replications=ck.replications,
        checkpoint_seeds=_seeds(df, "checkpoint"),
        versions=markdown_table(["package", "version"], [[k, v] for k, v in versions.items()]),
    )
