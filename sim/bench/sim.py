"""``deploysim bench sim``: the simulator's speed on a large scenario, against simpy itself.

The bundled ``bench-large`` scenario (100 workers, 30 days, about 40 deploys a day, about a
million jobs) runs once per strategy, the strategies spread over the machine's cores; in the
same process, simpy's bare timeout loop gives the speed of the event machinery alone. Figures:

- ``events_per_s``: simpy events the strategy runs scheduled, per CPU second they took;
- ``raw_simpy_events_per_s``: the same for processes that do nothing but ``yield timeout``;
- ``ratio``: the first over the second (target >= 0.5): what the model costs over simpy;
- ``jobs_per_cpu_s``: jobs simulated (summed over strategies) per CPU second;
- ``wall_s``: wall time of the whole scenario, every strategy (target < 60 s on 2 cores);
- ``ratio.NAME`` and ``cpu_s.NAME``: the ratio (target >= 0.5 each) and the CPU seconds of
  each strategy alone. The resumable strategy runs the real engine, a runner's run per job
  attempt; its chunks run through the checkpoints nothing can observe (``fleet.adapter``), so
  its cost grows with the signals a job may meet, not with its checkpoints;
- ``resumable_cpu_over_opaque``: ``cpu_s.resumable`` over the mean of the other strategies'
  (target <= 1.5);
- ``peak_rss_mib``: the largest peak resident memory of a strategy's run, each in a process
  of its own, as on two cores or more (target <= 1024);
- ``load_before`` and ``load_after``: the machine's one-minute load average as the scenario
  began and as it ended, for reading the times (a busy machine slows everything);
- ``report_wall_s`` (with ``--report``): the default ``deploysim report``, end to end, written
  to a temporary folder (target < 90 s on 2 cores).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Callable
from typing import Any

import simpy

from ..executors import cores, run_all
from .engine import format_rows

targets = {"ratio": (">=", 0.5), "wall_s": ("<=", 60.0),
           "resumable_cpu_over_opaque": ("<=", 1.5), "peak_rss_mib": ("<=", 1024.0),
           "report_wall_s": ("<", 90.0)}
RATIO_TARGET = targets["ratio"]
"""Every ``ratio.NAME`` has the overall ratio's target."""

DESCRIPTIONS = {
    "events_per_s": "simpy events per CPU second, whole model",
    "raw_simpy_events_per_s": "simpy events per CPU second, bare timeout loop",
    "ratio": "model speed over simpy's own",
    "jobs_per_cpu_s": "jobs simulated per CPU second (all strategies)",
    "wall_s": "wall time of the large scenario, all strategies",
    "resumable_cpu_over_opaque": "resumable CPU s over the other strategies' mean",
    "peak_rss_mib": "largest peak RSS of one strategy's process, MiB",
    "load_before": "1-minute load average at the start",
    "load_after": "1-minute load average at the end",
    "report_wall_s": "the default report, end to end (--report)",
}


def raw_simpy_events_per_s(events: int = 1_000_000, processes: int = 100) -> float:
    """Events per CPU second of ``processes`` simpy processes that only ``yield timeout``."""

    def proc(env: simpy.Environment, step: float):  # type: ignore[no-untyped-def]
        while True:
            yield env.timeout(step)

    from ..fleet.simulation import CountingEnvironment, scheduled_events

    env = CountingEnvironment()  # counted the way the fleet's events are counted
    for i in range(processes):
        env.process(proc(env, 1.0 + i / processes))
    horizon = events / processes / 1.005
    start = time.process_time()
    env.run(until=horizon)
    spent = time.process_time() - start
    return scheduled_events(env) / spent


def _one(scenario_name: str, horizon: float | None, name: str) -> dict[str, float]:
    from ..fleet import replications as simulator
    from ..scenario import load_scenario, with_overrides

    scenario = load_scenario(scenario_name)
    if horizon is not None:
        scenario = with_overrides(scenario, [f"horizon={horizon}"])
    strategy = simulator.strategies_of(scenario, [name])[name]
    d = simulator.draw(scenario, scenario.seed, 0)
    start = time.process_time()
    sim = simulator.fleet_for(scenario, strategy, d, counting=True)
    sim.run()
    cpu = time.process_time() - start
    # the process's peak (KiB on Linux): it ran this strategy alone
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cpu_s": cpu, "events": float(sim.events), "jobs": float(len(d.arrivals)),
            "peak_rss_mib": peak}


def report_wall_s(quick: bool = False) -> float:
    """Seconds the default report (``quick``: the quick one) takes, end to end, written to a
    temporary folder."""
    from ..report import make_report

    with tempfile.TemporaryDirectory(prefix="deploysim-bench-report-") as out:
        start = time.perf_counter()
        make_report(out, quick=quick, progress=False)
        return time.perf_counter() - start


def bench_sim(quick: bool = False, progress: Callable[[str], None] | None = None,
              scenario: str = "bench-large", report: bool = False) -> dict[str, float]:
    """Run the benchmark; ``quick`` simulates one day instead of thirty (and, with ``report``,
    times the quick report)."""
    from ..fleet import replications as simulator
    from ..scenario import load_scenario

    say = progress or (lambda _m: None)
    horizon = 86400.0 if quick else None
    names = list(simulator.strategies_of(load_scenario(scenario)))
    say(f"{scenario}: {', '.join(names)} on {cores()} cores")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    # a process per strategy: each one's peak memory is its own run's; the resumable run, the
    # longest, starts first, so the others share the other core meanwhile
    first = sorted(names, key=lambda name: name != "resumable")
    runs = dict(zip(first, run_all(_one, [(scenario, horizon, name) for name in first],
                                   fresh=True), strict=True))
    wall = time.perf_counter() - start
    say("simpy's bare timeout loop")
    raw = raw_simpy_events_per_s(200_000 if quick else 2_000_000)
    cpu = sum(r["cpu_s"] for r in runs.values())
    events_per_s = sum(r["events"] for r in runs.values()) / cpu
    out: dict[str, Any] = {
        "events_per_s": events_per_s,
        "raw_simpy_events_per_s": raw,
        "ratio": events_per_s / raw,
        "jobs_per_cpu_s": sum(r["jobs"] for r in runs.values()) / cpu,
        "wall_s": wall,
    }
    for name in names:
        out[f"ratio.{name}"] = runs[name]["events"] / runs[name]["cpu_s"] / raw
    for name in names:
        out[f"cpu_s.{name}"] = runs[name]["cpu_s"]
    others = [r["cpu_s"] for name, r in runs.items() if name != "resumable"]
    if "resumable" in runs and others:
        out["resumable_cpu_over_opaque"] = runs["resumable"]["cpu_s"] / (sum(others) / len(others))
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs.values())
    out["load_before"] = load_before
    out["load_after"] = os.getloadavg()[0]
    if report:
        say("the default report" if not quick else "the quick report")
        out["report_wall_s"] = report_wall_s(quick)
    return out


def goals_for(results: dict[str, float]) -> dict[str, tuple[str, float]]:
    """The targets of a result: ``targets``, and the overall ratio's for each ``ratio.NAME``."""
    return {**targets, **{key: RATIO_TARGET for key in results if key.startswith("ratio.")}}


def format_table(results: dict[str, float]) -> str:
    """Metric, measured value, target and verdict, one line each."""
    return format_rows(results, goals_for(results), DESCRIPTIONS)
