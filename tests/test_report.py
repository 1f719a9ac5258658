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
from deploysim.sim.durations import humanize
from deploysim.sim.errors import SimError
from deploysim.sim.report import (
    PLOTS,
    findings,
    make_plan,
    make_report,
    plots,
    read_results,
    render_readme,
)

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


def test_checkpoint_percentiles_are_of_the_jobs(quick: Path) -> None:
    """Each replication of the checkpoint part holds one job: its median and 90th percentile
    are those of all the replications' jobs, spread around the mean, not the mean again."""
    ck = read_results(quick / "results.csv").query("part == 'checkpoint'")
    assert (ck["replications"] > 1).all()
    for _, r in ck.iterrows():
        assert r["run_time_s_p50"] <= r["run_time_s_p90"] <= r["run_time_s_p99"] \
            <= r["run_time_s_max"]
    assert (ck["run_time_s_p90"] > ck["run_time_s_mean"]).all()
    assert (ck["run_time_s_p50"] != ck["run_time_s_mean"]).any()


def test_plots_are_the_same_bytes_every_time(quick: Path, tmp_path: Path) -> None:
    """Drawing the figures again from the same rows gives the same files, byte for byte: a
    second ``deploysim report`` leaves a clean clone clean."""
    df = read_results(quick / "results.csv")
    for path in plots.draw_all(df, make_plan(quick=True), tmp_path):
        assert path.read_bytes() == (quick / path.name).read_bytes(), path.name


def _grid_rows(tables: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Grid rows of completion rates, per strategy a table of deploys a day x lengths."""
    rows = []
    for name, table in tables.items():
        for per_day, line in zip((1, 8), table, strict=True):
            for length, rate in zip((60.0, 3600.0), line, strict=True):
                rows.append({"part": "grid", "strategy": name, "deploys_per_day": per_day,
                             "length_s": length, "completion_rate": rate})
    return pd.DataFrame(rows)


def test_heatmap_draws_each_distinct_table_once() -> None:
    full = [[1.0, 1.0], [1.0, 1.0]]
    waits = [[1.0, 0.9], [1.0, 0.3]]
    panels, complete = plots.heatmap_panels(_grid_rows({
        "sidekiq": [[1.0, 1.0], [1.0, 0.0]], "resque": waits, "celery": waits,
        "split": full, "resumable": full}))
    assert [names for names, _ in panels] == [["sidekiq"], ["resque", "celery"]]
    assert panels[1][1].tolist() == waits
    assert complete == ["split", "resumable"]
    # one cell apart is another table
    panels, complete = plots.heatmap_panels(_grid_rows({
        "resque": waits, "celery": [[1.0, 0.9], [1.0, 0.31]], "split": [[1.0, 1.0], [1.0, 0.99]]}))
    assert [names for names, _ in panels] == [["resque"], ["celery"], ["split"]]
    assert complete == []


def test_split_step_is_read_at_the_sub_job_length(quick: Path) -> None:
    plan = make_plan(quick=True)
    assert (plan.cdf_chunk_items, plan.cdf_sub_job_s) == (100, 100.0)
    t = [10.0, 50.0, 90.0, 110.0, 200.0]
    cdf = pd.DataFrame({"strategy": "split", "t_s": t,
                        "completed_within_fraction": [0.1, 0.4, 0.6, 0.8, 0.9]})
    assert findings.split_step(cdf, 100.0) == (90.0, 0.6, 110.0, 0.8)
    assert findings.split_step(cdf, 5.0) is None
    text = (quick / "README.md").read_text()
    df = read_results(quick / "results.csv")
    t0, f0, t1, f1 = findings.split_step(df[df["part"] == "cdf"], plan.cdf_sub_job_s)
    assert t0 < plan.cdf_sub_job_s < t1
    assert (f"`split`'s curve steps from {findings.pct(f0)} of the jobs done within "
            f"{humanize(t0)} to {findings.pct(f1)} within {humanize(t1)}") in text


def test_readme_says_a_rolling_deploy_drains_batch_by_batch(quick: Path) -> None:
    text = (quick / "README.md").read_text()
    assert ("`ecs-rolling` stops its 12 workers in 4 batches of 3, one after another, each "
            "batch within its own 30s grace, so a deploy can drain for up to 4 x 30s = 2m"
            ) in text


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
