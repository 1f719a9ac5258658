"""``deploysim bench sim``: the simulator's speed on a large scenario, against simpy itself.

The bundled ``bench-large`` scenario (100 workers, 30 days, about 40 deploys a day, about a
million jobs) runs once per strategy, the strategies spread over the machine's cores; in the
same process, simpy's bare timeout loop gives the speed of the event machinery alone. Figures:

- ``events_per_s``: simpy events the strategy runs scheduled, per CPU second they took;
- ``raw_simpy_events_per_s``: the same for processes that do nothing but ``yield timeout``;
- ``ratio``: the first over the second (target >= 0.5): what the model costs over simpy;
- ``jobs_per_cpu_s``: jobs simulated (summed over strategies) per CPU second;
- ``wall_s``: wall time of the whole scenario, every strategy (target < 60 s on 2 cores);
- ``ratio.NAME`` and ``cpu_s.NAME``: the ratio and the CPU seconds of each strategy alone. The
  resumable strategy runs the real engine, whose every checkpoint (5 s of simulated work by
  default) is a call into the runner and the store but not a simpy event, so its ratio is the
  lowest: its cost grows with checkpoints, not with items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import simpy

from ..executors import cores, run_all
from .engine import format_rows

targets = {"ratio": (">=", 0.5), "wall_s": ("<=", 60.0)}

DESCRIPTIONS = {
    "events_per_s": "simpy events per CPU second, whole model",
    "raw_simpy_events_per_s": "simpy events per CPU second, bare timeout loop",
    "ratio": "model speed over simpy's own",
    "jobs_per_cpu_s": "jobs simulated per CPU second (all strategies)",
    "wall_s": "wall time of the large scenario, all strategies",
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
    return {"cpu_s": time.process_time() - start, "events": float(sim.events),
            "jobs": float(len(d.arrivals))}


def bench_sim(quick: bool = False, progress: Callable[[str], None] | None = None,
              scenario: str = "bench-large") -> dict[str, float]:
    """Run the benchmark; ``quick`` simulates one day instead of thirty."""
    from ..fleet import replications as simulator
    from ..scenario import load_scenario

    say = progress or (lambda _m: None)
    horizon = 86400.0 if quick else None
    names = list(simulator.strategies_of(load_scenario(scenario)))
    say(f"{scenario}: {', '.join(names)} on {cores()} cores")
    start = time.perf_counter()
    runs = run_all(_one, [(scenario, horizon, name) for name in names])
    wall = time.perf_counter() - start
    say("simpy's bare timeout loop")
    raw = raw_simpy_events_per_s(200_000 if quick else 2_000_000)
    cpu = sum(r["cpu_s"] for r in runs)
    events_per_s = sum(r["events"] for r in runs) / cpu
    out: dict[str, Any] = {
        "events_per_s": events_per_s,
        "raw_simpy_events_per_s": raw,
        "ratio": events_per_s / raw,
        "jobs_per_cpu_s": sum(r["jobs"] for r in runs) / cpu,
        "wall_s": wall,
    }
    for name, r in zip(names, runs, strict=True):
        out[f"ratio.{name}"] = r["events"] / r["cpu_s"] / raw
    for name, r in zip(names, runs, strict=True):
        out[f"cpu_s.{name}"] = r["cpu_s"]
    return out


def format_table(results: dict[str, float]) -> str:
    """Metric, measured value, target and verdict, one line each."""
    return format_rows(results, targets, DESCRIPTIONS)
