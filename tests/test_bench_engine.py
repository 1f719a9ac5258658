"""bench_engine: a quick run returns every figure as a positive finite number; format_table
says which meet their target. The figures themselves are reported, never asserted: they depend
on the machine."""

from __future__ import annotations

import math

import pytest

from deploysim.sim.bench.engine import bench_engine, format_table, meets, targets
from deploysim.sim.errors import SimError

KEYS = {
    "item_overhead_us",
    "work_ratio",
    "checkpoint_p50_ms",
    "checkpoint_p99_ms",
    "csv_resume_ratio",
    "sql_resume_ratio",
    "sql_iter_ratio",
}


@pytest.fixture(scope="module", params=["sqlite", "redis", "postgres"])
def quick_run(request) -> tuple[dict[str, float], list[str]]:
    """A quick run on each store (Redis, PostgreSQL: a server the bench starts and stops)."""
    if request.param in ("redis", "postgres"):
        # skipped without the server, failed in CI
        request.getfixturevalue(f"{request.param}_url")
    messages: list[str] = []
    return bench_engine(quick=True, progress=messages.append, store=request.param), messages


def test_an_unknown_store_is_one_line_naming_it() -> None:
    with pytest.raises(SimError, match="--store: 'mysql' is not one of sqlite, redis, postgres"):
        bench_engine(quick=True, store="mysql")


def test_quick_run_returns_every_figure_as_a_positive_finite_number(
    quick_run: tuple[dict[str, float], list[str]],
) -> None:
    results, _ = quick_run
    assert set(results) == KEYS
    for key, value in results.items():
        assert isinstance(value, float), key
        assert math.isfinite(value) and value > 0, (key, value)
    assert results["checkpoint_p50_ms"] <= results["checkpoint_p99_ms"]


def test_quick_run_reports_its_progress(quick_run: tuple[dict[str, float], list[str]]) -> None:
    _, messages = quick_run
    assert messages and all(isinstance(m, str) and m for m in messages)


def test_every_figure_has_a_target() -> None:
    assert set(targets) == KEYS
    for op, value in targets.values():
        assert op in ("<=", ">=") and value > 0


def test_format_table_names_each_metric_with_its_verdict() -> None:
    results = {key: target for key, (_, target) in targets.items()}
    results["work_ratio"] = 2.0
    results["checkpoint_p99_ms"] = 0.5
    lines = format_table(results).splitlines()
    assert lines[0].split()[:3] == ["metric", "measured", "target"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == KEYS
    assert "MISSED" in rows["work_ratio"].split()
    assert "ok" in rows["checkpoint_p99_ms"].split()
    assert "ok" in rows["item_overhead_us"].split()  # exactly on target meets it


def test_postgres_has_its_own_checkpoint_targets() -> None:
    results = {key: target for key, (_, target) in targets.items()}
    results["checkpoint_p99_ms"] = 4.0  # over SQLite's and Redis's 2 ms, under PostgreSQL's 5
    assert "MISSED" in format_table(results).split("checkpoint_p99_ms")[1].splitlines()[0]
    assert "MISSED" not in format_table(results, "postgres")


def test_meets_reads_the_operator() -> None:
    assert meets("work_ratio", 1.0) and not meets("work_ratio", 1.06)
