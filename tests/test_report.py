"""The report: a quick run writes every file with readable plots, its README is rendered from its
own numbers, and the committed report in ``reports/`` is reproduced cell by cell.

Regenerating the committed report takes minutes, so the last test re-runs a few of its cells
(by their scenario and grid values, which fix their seeds) and compares them with the committed
rows, number for number.
"""

from __future__ import annotations

import ast
import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from deploysim.sim import report
from deploysim.sim.analysis.theory import completion_theory
from deploysim.sim.errors import SimError
from deploysim.sim.report import PLOTS, make_plan, make_report, read_results, render_readme

COMMITTED = Path(__file__).resolve().parents[1] / "reports"
REPORT_SOURCE = Path(report.__file__).resolve().parent

#: Columns every row of results.csv has, whatever the part.
CORE_COLUMNS = ("part", "scenario", "strategy", "seed")
#: RESULT columns of the sweep parts that the plots and findings read.
RESULT_COLUMNS = (
    "enqueued", "completed", "failed", "lost", "pending", "completion_rate", "executions",
    "duplicate_item_executions", "useful_work_s", "wasted_work_s", "run_time_s_mean",
    "run_time_s_p50", "run_time_s_p90", "sojourn_s_p50", "drain_s_p50", "drain_s_max",
    "deploys", "hard_kills", "crashes", "replications",
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert make_report(out, quick=True, progress=False) == out
    return out


def test_every_file_is_written(quick: Path) -> None:
    expected = {"results.csv", "results.json", "README.md", *PLOTS}
    assert expected <= {p.name for p in quick.iterdir()}
    for name in PLOTS:
        path = quick / name
        assert path.stat().st_size > 10_000, name
        with Image.open(path) as image:
            image.verify()  # a valid PNG, not just a file named like one
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert width >= 800 and height >= 400, (name, image.size)


def test_results_hold_every_part(quick: Path) -> None:
    plan = make_plan(quick=True)
    df = read_results(quick / "results.csv")
    assert set(CORE_COLUMNS + RESULT_COLUMNS) <= set(df.columns)
    strategies = len(report.STRATEGY_ORDER)
    counts = df["part"].value_counts().to_dict()
    assert counts == {
        "grid": len(plan.lengths) * len(plan.rhythms) * strategies,
        "scenarios": len(plan.scenarios.scenarios) * strategies,
        "checkpoint": len(plan.checkpoint.grid[0][1]),
        "cdf": plan.cdf_points * strategies,
    }
    grid = df[df["part"] == "grid"]
    assert grid[["length_s", "deploys_per_day"]].notna().all().all()
    closed = grid["strategy"].isin(["sidekiq", "resque", "celery"])
    assert grid.loc[closed, "theory_completion_rate"].notna().all()
    assert grid.loc[~closed, "theory_completion_rate"].isna().all()
    assert grid["completion_rate"].between(0, 1).all()
    assert (grid["enqueued"] == grid["completed"] + grid["failed"] + grid["lost"]
            + grid["pending"]).all()
    cdf = df[df["part"] == "cdf"]
    assert cdf["completed_within_fraction"].between(0, 1).all()
    ck = df[df["part"] == "checkpoint"]
    theory = ck[["theory_expected_time_s", "young_interval_s", "daly_interval_s"]]
    assert theory.notna().all().all()


def test_json_holds_the_csv_rows(quick: Path) -> None:
    df = read_results(quick / "results.csv")
    rows = json.loads((quick / "results.json").read_text())
    assert len(rows) == len(df)
    for i in (0, len(df) // 2, len(df) - 1):
        for key, value in df.iloc[i].items():
            if isinstance(value, float) and math.isnan(value):
                assert key not in rows[i]
            else:
                assert rows[i][key] == value, key


def test_readme_is_rendered_from_the_results(quick: Path) -> None:
    """Every number in the README comes from results.csv, the plan or the package versions:
    rendering it again from those gives the very same text."""
    text = (quick / "README.md").read_text()
    df = read_results(quick / "results.csv")
    assert text == render_readme(df, make_plan(quick=True), report.package_versions())
    for name in PLOTS:
        assert f"]({name})" in text
    assert "## Findings" in text and "## What was run" in text


def _findings(text: str) -> str:
    return text.split("## Findings", 1)[1].split("## Plots", 1)[0]


def test_findings_follow_the_numbers(quick: Path) -> None:
    """Change the numbers and the findings change with them."""
    plan = make_plan(quick=True)
    versions = report.package_versions()
    df = read_results(quick / "results.csv")
    before = _findings(render_readme(df, plan, versions))
    changed = df.copy()
    resque = (changed["part"] == "grid") & (changed["strategy"] == "resque")
    changed.loc[resque, "completion_rate"] = 1.0
    after = _findings(render_readme(changed, plan, versions))
    assert after != before
    top = report.rhythm_label(max(plan.rhythms))
    assert f"`resque` never on this grid (up to {top})" in after
    changed.loc[resque, "completion_rate"] = 0.5
    lowest = report.rhythm_label(min(plan.rhythms))
    assert f"`resque` at {lowest}" in _findings(render_readme(changed, plan, versions))


def test_versions_are_the_installed_ones() -> None:
    versions = report.package_versions()
    assert versions["deploysim"] == metadata.version("deploysim")


def test_completion_theory() -> None:
    """Formula 3 at a deploy every 1h 30m with 30 s of grace and Sidekiq's 25 s timeout."""
    period, grace, timeout = 5400.0, 30.0, 25.0
    assert completion_theory("resque", 600.0, period, grace, timeout) == pytest.approx(
        1 - 570 / 5400)
    assert completion_theory("celery", 20.0, period, grace, timeout) == 1.0
    assert completion_theory("sidekiq", 3600.0, period, grace, timeout) == 1.0
    assert completion_theory("sidekiq", 2 * 3600.0, period, grace, timeout) == 0.0
    assert completion_theory("resumable", 600.0, period, grace, timeout) is None


def test_plan_holds_the_grid_values_and_their_durations() -> None:
    plan = make_plan(quick=True)
    (key, values), = plan.grid.grid
    assert key == "deploys.every"
    assert [plan.grid.value_seconds(v) for v in values] == [86400.0 / n for n in plan.rhythms]
    assert plan.sidekiq_timeout == 25.0
    with pytest.raises(SimError, match="no grid value"):
        plan.grid.value_seconds("7h")


def _report_imports(path: Path) -> set[str]:
    """The modules of the report package that ``path`` imports (relative imports only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_report_modules_import_one_way() -> None:
    """No cycle among the report's modules; the figures read the plan and the closed forms
    only, and nothing but the package itself draws them."""
    graph = {p.stem: _report_imports(p) for p in REPORT_SOURCE.glob("*.py")}
    order: list[str] = []
    while len(order) < len(graph):
        ready = [m for m, deps in graph.items() if m not in order and deps <= set(order)]
        assert ready, f"an import cycle among {sorted(set(graph) - set(order))}"
        order += sorted(ready)
    assert all("__init__" not in deps for deps in graph.values())
    assert {m for m, deps in graph.items() if "plots" in deps} == {"__init__"}
    assert graph["plots"] == {"plan"}
    text = (REPORT_SOURCE / "plots.py").read_text(encoding="utf-8")
    assert "..fleet" not in text and "..analysis.sweep" not in text


# -- the committed report ------------------------------------------------------------------------

#: (part, scenario, grid values, strategies) of the committed cells re-run here: cheap ones,
#: from every sweep part.
CELLS: list[tuple[str, str, dict[str, str], list[str]]] = [
    ("grid", "grid-1h", {"deploys.every": "1h 30m"}, list(report.STRATEGY_ORDER)),
    ("grid", "grid-14d", {"deploys.every": "1d"}, ["sidekiq", "split", "resumable"]),
    ("scenarios", "fly-5s", {}, ["sidekiq", "celery", "split"]),
    ("checkpoint", "checkpoint-crashes",
     {"strategies.resumable.checkpoint_every": "1m30s"}, ["resumable"]),
]


@pytest.fixture(scope="module")
def committed() -> Any:
    path = COMMITTED / "results.csv"
    assert path.is_file(), f"{path} is missing: generate it with `deploysim report`"
    return read_results(path)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _committed_rows(committed: Any, part: str, scenario: str, values: dict[str, str],
                    strategies: list[str]) -> Any:
    mask = (committed["part"] == part) & (committed["scenario"] == scenario)
    for key, value in values.items():
        mask &= committed[key] == value
    rows = committed[mask & committed["strategy"].isin(strategies)]
    return rows.set_index("strategy").loc[strategies].reset_index()


@pytest.mark.parametrize(("part", "scenario", "values", "strategies"), CELLS,
                         ids=[f"{c[0]}-{c[1]}" for c in CELLS])
def test_committed_cells_are_reproduced(committed: Any, part: str, scenario: str,
                                        values: dict[str, str], strategies: list[str]) -> None:
    plan = make_plan(quick=False)
    want = _committed_rows(committed, part, scenario, values, strategies)
    assert len(want) == len(strategies), "the committed report lacks this cell"
    got = report.rerun_cell(plan, part, scenario, values, strategies)
    got = got.set_index("strategy").loc[strategies].reset_index()
    for column in got.columns:
        for strategy, a, b in zip(strategies, got[column], want[column], strict=True):
            assert _same(a, b), f"{scenario} {values} {strategy} {column}: {a!r} != {b!r}"


def test_committed_cdf_is_reproduced(committed: Any) -> None:
    plan = make_plan(quick=False)
    want = committed[(committed["part"] == "cdf") & (committed["strategy"] == "sidekiq")]
    seed = int(want["seed"].iloc[0])
    got = pd.DataFrame(report.cdf_rows(plan.cdf_scenario, "sidekiq", seed, plan.cdf_points))
    assert len(got) == len(want)
    for column in ("t_s", "completed_within_fraction", "enqueued"):
        assert [float(f"{x:.10g}") for x in got[column]] == list(want[column].astype(float))
