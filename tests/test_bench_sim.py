"""The simulator benchmark's smoke run: every figure present and sane (no timed assertions)."""

import math

from deploysim.sim.bench.sim import bench_sim, format_table


def test_quick_run_reports_every_figure() -> None:
    messages: list[str] = []
    results = bench_sim(quick=True, progress=messages.append)
    for key in ("events_per_s", "raw_simpy_events_per_s", "ratio", "jobs_per_cpu_s", "wall_s"):
        assert math.isfinite(results[key]) and results[key] > 0, key
    names = ("sidekiq", "resque", "celery", "split", "resumable")
    assert all(results[f"cpu_s.{n}"] > 0 and results[f"ratio.{n}"] > 0 for n in names)
    assert results["ratio"] == results["events_per_s"] / results["raw_simpy_events_per_s"]
    table = format_table(results)
    assert "ratio" in table and (" ok " in table or "MISSED" in table)
    assert messages
