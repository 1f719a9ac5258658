"""Run a scenario: draw its jobs, deploys, restarts and crashes from its seed, and put every
strategy through the same draws (common random numbers, so differences between strategies are
the strategies', not the dice's).

    from deploysim.sim.fleet import replications
    from deploysim.sim.scenario import load_scenario
    result = replications.run(load_scenario("heroku-hourly"))
    result.to_frame()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from deploysim.strategies import STRATEGIES, make_strategy
from deploysim.strategies.base import Strategy, StrategyError

from ..errors import SimError
from ..scenario.deploys import crash_times, daily_restart_times, deploy_times
from ..scenario.schema import Scenario
from ..scenario.workloads import arrival_times, sample_jobs
from .results import ScenarioResult, combine, summarize
from .simulation import FleetSim


def strategies_of(scenario: Scenario, names: Iterable[str] | None = None) -> dict[str, Strategy]:
    """The strategies a scenario runs, by name: the five built-in ones (with the parameters of
    the scenario's ``[strategies.NAME]`` table where it has one) and any variant the scenario
    defines as a table with a ``strategy`` key (``[strategies.celery-late] strategy = "celery"
    acks_late = true``). ``names`` picks some of them."""
    tables: Mapping[str, Mapping[str, Any]] = scenario.strategies
    available = list(STRATEGIES) + [n for n in tables if n not in STRATEGIES]
    wanted = list(names) if names else available
    out: dict[str, Strategy] = {}
    for name in wanted:
        params = dict(tables.get(name, {}))
        base = params.pop("strategy", name)
        if name not in STRATEGIES and name not in tables:
            import difflib

            near = difflib.get_close_matches(name, available, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise SimError(f"strategy '{name}': unknown; {hint}known: {', '.join(available)}")
        try:
            if base not in STRATEGIES:
                raise StrategyError(
                    f"strategies.{name}.strategy: '{base}' is not one of {', '.join(STRATEGIES)}"
                )
            out[name] = make_strategy(str(base), params)
        except StrategyError as exc:
            msg = str(exc).replace(f"strategies.{base}.", f"strategies.{name}.")
            raise SimError(msg) from None
    return out


@dataclass(frozen=True)
class Draws:
    """Everything random about one replication, drawn once and shared by every strategy."""

    arrivals: np.ndarray
    lengths: np.ndarray
    items: np.ndarray
    hangs: np.ndarray
    deploys: np.ndarray
    restarts: list[np.ndarray]
    crashes: list[np.ndarray]


def draw(scenario: Scenario, seed: int, replication: int) -> Draws:
    """The replication's jobs, deploys, daily restarts and crashes, from independent streams of
    ``SeedSequence([seed, replication])``."""
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, replication]).spawn(5)
    ]
    horizon, workers = scenario.horizon, scenario.fleet.workers
    arrivals = arrival_times(scenario.workload, streams[0], horizon)
    jobs = sample_jobs(scenario.workload, streams[1], len(arrivals))
    return Draws(
        arrivals=arrivals,
        lengths=jobs.length,
        items=jobs.items,
        hangs=jobs.hangs,
        deploys=deploy_times(scenario.deploys, streams[2], horizon),
        restarts=daily_restart_times(scenario.platform, streams[3], horizon, workers),
        crashes=crash_times(scenario.crashes, streams[4], horizon, workers),
    )


def fleet_for(scenario: Scenario, strategy: Strategy, draws: Draws) -> FleetSim:
    """The simulation of one strategy over one replication's draws, ready to ``run()``."""
    return FleetSim(
        strategy,
        workers=scenario.fleet.workers,
        restart_delay=scenario.fleet.restart_delay,
        grace=scenario.platform.grace,
        horizon=scenario.horizon,
        arrivals=draws.arrivals,
        lengths=draws.lengths,
        items=draws.items,
        hangs=draws.hangs,
        deploys=draws.deploys,
        batch_size=scenario.deploys.batch_size,
        restarts=draws.restarts,
        crashes=draws.crashes,
    )


def simulate_one(scenario: Scenario, strategy: Strategy, draws: Draws) -> dict[str, Any]:
    """One strategy over one replication's draws: its RESULT object."""
    return summarize(fleet_for(scenario, strategy, draws).run())


def _task(scenario: Scenario, strategies: dict[str, Strategy], seed: int, replication: int,
          name: str) -> dict[str, Any]:
    return simulate_one(scenario, strategies[name], draw(scenario, seed, replication))


def run(
    scenario: Scenario,
    names: Iterable[str] | None = None,
    *,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
    processes: int | None = None,
) -> ScenarioResult:
    """Run the scenario's replications for each strategy (``names``: some of them) and combine
    them. ``seed`` overrides the scenario's. Runs go to ``processes`` worker processes (default:
    one per core; 1 runs everything here); ``progress`` is called after each run. The numbers
    do not depend on how many processes ran them."""
    strategies = strategies_of(scenario, names)
    seed = scenario.seed if seed is None else int(seed)
    tasks = [(r, name) for r in range(scenario.replications) for name in strategies]
    processes = min(len(tasks), processes or os.cpu_count() or 1)
    results: dict[tuple[int, str], dict[str, Any]] = {}
    if processes > 1:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            futures = {pool.submit(_task, scenario, strategies, seed, r, name): (r, name)
                       for r, name in tasks}
            for future in as_completed(futures):
                r, name = futures[future]
                results[r, name] = future.result()
                if progress is not None:
                    progress(f"{name} replication {r + 1}/{scenario.replications}")
    else:
        for r in range(scenario.replications):
            draws = draw(scenario, seed, r)
            for name, strategy in strategies.items():
                results[r, name] = simulate_one(scenario, strategy, draws)
                if progress is not None:
                    progress(f"{name} replication {r + 1}/{scenario.replications}")
    return ScenarioResult(
        scenario=scenario.name,
        seed=seed,
        horizon_s=scenario.horizon,
        strategies={name: combine([results[r, name] for r in range(scenario.replications)])
                    for name in strategies},
        params={name: s.params() for name, s in strategies.items()},
    )
