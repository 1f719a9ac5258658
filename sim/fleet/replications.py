"""Run a scenario: draw its jobs, deploys, restarts and crashes from its seed, and put every
strategy through the same draws (common random numbers, so differences between strategies are
the strategies', not the dice's). A scenario of traces replays them instead: its jobs and
deploys are the trace's in every replication, and only what the trace does not say (hangs,
daily restarts, crashes, a periodic schedule's phase) comes from the seed.

    from deploysim.sim.fleet import replications
    from deploysim.sim.scenario import load_scenario
    result = replications.run(load_scenario("heroku-hourly"))
    result.to_frame()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from deploysim.strategies import STRATEGIES, make_strategy
from deploysim.strategies.base import Strategy, StrategyError
from deploysim.strategies.hints import did_you_mean

from ..errors import SimError
from ..executors import run_all
from ..scenario import Scenario
from ..scenario.deploys import crash_times, daily_restart_times, deploy_times
from ..scenario.workloads import arrival_times, sample_jobs
from .results import ScenarioResult, combine, summarize
from .simulation import FleetSim
from .work import Draws

__all__ = ["Draws", "draw", "fleet_for", "run", "simulate_one", "strategies_of"]


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
            known = f"known: {', '.join(available)}"
            hint = did_you_mean(name, available)
            hint = known if hint == known else f"{hint} {known}"
            raise SimError(f"strategy '{name}': unknown; {hint}")
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


def draw(scenario: Scenario, seed: int, replication: int) -> Draws:
    """The replication's jobs, deploys, daily restarts and crashes, from independent streams of
    ``SeedSequence([seed, replication])``. A job trace gives the arrivals, lengths and items
    (up to the horizon) and a deploy trace the deploy times, the same in every replication;
    the streams they would have used are left unread, so the other draws do not move."""
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, replication]).spawn(6)
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
        seed=int(streams[5].integers(2**63)),
    )


def fleet_for(scenario: Scenario, strategy: Strategy, draws: Draws, *,
              counting: bool = False, coalesce: bool = True) -> FleetSim:
    """The simulation of one strategy over one replication's draws, ready to ``run()``
    (``counting``: count its events, for the benchmark; ``coalesce``: see ``FleetSim``)."""
    return FleetSim(
        strategy,
        draws,
        workers=scenario.fleet.workers,
        restart_delay=scenario.fleet.restart_delay,
        grace=scenario.platform.grace,
        horizon=scenario.horizon,
        batch_size=scenario.deploys.batch_size,
        counting=counting,
        coalesce=coalesce,
    )


def simulate_one(scenario: Scenario, strategy: Strategy, draws: Draws) -> dict[str, Any]:
    """One strategy over one replication's draws: its RESULT object."""
    return summarize(fleet_for(scenario, strategy, draws).run())


class _Replication:
    """``(replication, name) -> RESULT`` for ``run_all``: one strategy over one replication of
    the scenario. The draws of the last replication are kept: run here, in task order, each
    replication is drawn once for all its strategies (a worker process, sent a copy per task,
    draws for each)."""

    def __init__(self, scenario: Scenario, strategies: dict[str, Strategy], seed: int) -> None:
        self.scenario = scenario
        self.strategies = strategies
        self.seed = seed
        self._last: tuple[int, Draws] | None = None

    def __call__(self, replication: int, name: str) -> dict[str, Any]:
        if self._last is None or self._last[0] != replication:
            self._last = (replication, draw(self.scenario, self.seed, replication))
        return simulate_one(self.scenario, self.strategies[name], self._last[1])


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

    def done(i: int) -> None:
        if progress is not None:
            r, name = tasks[i]
            progress(f"{name} replication {r + 1}/{scenario.replications}")

    runs = run_all(_Replication(scenario, strategies, seed), tasks, processes=processes,
                   on_done=done)
    results = dict(zip(tasks, runs, strict=True))
    return ScenarioResult(
        scenario=scenario.name,
        seed=seed,
        horizon_s=scenario.horizon,
        strategies={name: combine([results[r, name] for r in range(scenario.replications)])
                    for name in strategies},
        params={name: s.params() for name, s in strategies.items()},
    )
