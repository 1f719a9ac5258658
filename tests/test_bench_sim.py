"""The simulator benchmark's smoke run: every figure present and sane (no timed assertions)."""

import math
import os
import tempfile

from deploysim.sim.bench.sim import bench_sim, format_table


def test_quick_run_reports_every_figure() -> None:
    messages: list[str] = []
    results = bench_sim(quick=True, progress=messages.append)
    for key in ("events_per_s", "raw_simpy_events_per_s", "ratio", "jobs_per_cpu_s", "wall_s"):
        assert math.isfinite(results[key]) and results[key] > 0, key
    names = ("sidekiq", "resque", "celery", "split", "resumable")
    assert all(results[f"cpu_s.{n}"] > 0 and results[f"ratio.{n}"] > 0 for n in names)
    assert results["ratio"] == results["events_per_s"] / results["raw_simpy_events_per_s"]
    opaque = [v for k, v in results.items() if k.startswith("cpu_s.") and k != "cpu_s.resumable"]
    ratio = results["cpu_s.resumable"] / (sum(opaque) / len(opaque))
    assert math.isclose(results["resumable_cpu_over_opaque"], ratio)
    assert 0 < results["peak_rss_mib"] < 64 * 1024
    assert results["load_before"] >= 0 and results["load_after"] >= 0
    assert "report_wall_s" not in results  # only when asked for
    table = format_table(results)
    assert "ratio" in table and (" ok " in table or "MISSED" in table)
    # each strategy's ratio is held to the overall target
    assert all(line.split()[2:4] == [">=", "0.5"] for line in table.splitlines()
               if line.startswith("ratio."))
    assert messages


def test_the_report_is_timed_end_to_end_in_a_folder_it_removes() -> None:
    from deploysim.sim.bench.sim import report_wall_s

    before = set(os.listdir(tempfile.gettempdir()))
    assert report_wall_s(quick=True) > 0
    left = {name for name in set(os.listdir(tempfile.gettempdir())) - before
            if name.startswith("deploysim-bench-report-")}
    assert not left
