"""What the report runs: its parts (sweeps of scenarios x grid values x strategies), the
scenarios they are built from, and the constants that fix them; ``make_plan`` builds it, the
same every time.

Grid values are kept as ``results.csv`` spells them ("1h 30m", "1m30s"): a cell's seed is
derived from that spelling (``deploysim.sim.analysis.sweep.cell_seed``). Their durations in
seconds are kept beside them, in ``Part.seconds``, so that nothing has to parse them again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploysim.strategies import STRATEGIES
from deploysim.strategies.sidekiq import Sidekiq
from deploysim.strategies.split import Split

from ..analysis.sweep import Cell, make_cells
from ..durations import DAY, format_duration, parse_duration
from ..errors import SimError
from ..scenario import (
    Scenario,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
    with_values,
)

__all__ = [
    "CDF_SCENARIO",
    "CHECKPOINT_COST",
    "CHECKPOINT_FLOOR",
    "CHECKPOINT_MTBF",
    "CHECKPOINT_PARTS",
    "CHECKPOINT_RESTART",
    "CHECKPOINT_SEED",
    "CHECKPOINT_WORK",
    "GRID_SEED",
    "HORIZON_FACTOR",
    "HORIZON_SLACK",
    "LEASE_FLOOR",
    "PARTS",
    "PLOTS",
    "SKIPPED_SCENARIOS",
    "STRATEGY_ORDER",
    "Part",
    "Plan",
    "make_plan",
    "report_cells",
]

#: The strategies of the report, in the order every table and legend uses.
STRATEGY_ORDER: tuple[str, ...] = tuple(STRATEGIES)

#: The parts of the report, in the order of ``results.csv``.
PARTS: tuple[str, ...] = ("grid", "scenarios", "checkpoint", "cdf")

#: The plots the report writes, with the caption the README gives each.
PLOTS: dict[str, str] = {
    "completion_rate_vs_length.png": "Completion rate against job length at one deploy rhythm, "
    "with the closed forms (black) drawn over the simulated points and the deploy period "
    "marked.",
    "completion_rate_heatmap.png": "Completion rate for every deploy rhythm and job length: "
    "one panel per distinct table (strategies with the same numbers share one), the "
    "strategies that completed every job named in the title.",
    "time_to_complete_cdf.png": "Time from enqueue to completion, as the share of jobs done "
    "within a given time; split's step is its jobs longer than one sub-job, which finish "
    "together.",
    "wasted_work.png": "Worker time thrown away: work redone or cut short.",
    "deploy_drain.png": "How long a deploy waits for the workers to stop, per strategy; a "
    "rolling deploy stops its batches one after another, each within its own grace.",
    "lost_and_duplicated.png": "Jobs lost or sent to the failed queue, and items run more "
    "than once.",
    "checkpoint_interval.png": "Resumable jobs under crashes: total time against the "
    "checkpoint interval, with Young's and Daly's optima.",
}

#: The bundled scenario the report leaves out: a benchmark of about a million jobs.
SKIPPED_SCENARIOS = ("bench-large",)
#: The bundled scenario whose jobs' times to complete the ``cdf`` part draws.
CDF_SCENARIO = "shopify-40-a-day"

#: The grid's horizon: HORIZON_FACTOR x the job's length + the longest period + HORIZON_SLACK.
HORIZON_FACTOR = 1.25
HORIZON_SLACK = 3600.0
#: The grid's resumable checkpoint interval: max(CHECKPOINT_FLOOR, length / CHECKPOINT_PARTS),
#: with a lease of max(LEASE_FLOOR, 2 x the interval).
CHECKPOINT_FLOOR = 5.0
CHECKPOINT_PARTS = 1000
LEASE_FLOOR = 60.0

GRID_SEED = 20240
CHECKPOINT_SEED = 1974

#: The checkpoint part's job: work, checkpoint cost, mean time between crashes, restart (s).
CHECKPOINT_WORK = 3600.0
CHECKPOINT_COST = 5.0
CHECKPOINT_MTBF = 900.0
CHECKPOINT_RESTART = 20.0


@dataclass(frozen=True)
class _Size:
    """How big a plan is: the full report, or the quick one for CI."""

    lengths: tuple[str, ...]
    rhythms: tuple[int, ...]
    chosen: int
    grid_replications: int
    scenario_horizon: float
    intervals: tuple[str, ...]
    checkpoint_replications: int
    cdf_points: int


_FULL = _Size(
    lengths=("10s", "30s", "1m", "3m", "10m", "30m", "1h", "2h", "4h", "8h", "16h", "2d", "4d",
             "7d", "14d"),
    rhythms=(1, 2, 4, 8, 16, 32, 64),
    chosen=16,
    grid_replications=40,
    scenario_horizon=2 * DAY,
    intervals=("15s", "30s", "1m", "1m30s", "2m", "4m", "8m", "15m", "30m"),
    checkpoint_replications=300,
    cdf_points=121,
)
_QUICK = _Size(
    lengths=("1m", "10m", "1h", "8h", "2d"),
    rhythms=(1, 8, 64),
    chosen=8,
    grid_replications=2,
    scenario_horizon=3 * 3600.0,
    intervals=("30s", "1m30s", "8m"),
    checkpoint_replications=10,
    cdf_points=41,
)


@dataclass(frozen=True)
class Part:
    """One sweep of the report: scenarios x grid x strategies, as ``run_sweep`` takes them.

    ``grid`` holds the values as ``results.csv`` spells them (their spelling fixes the cells'
    seeds); ``seconds`` maps each of them to the duration it spells."""

    name: str
    scenarios: tuple[Scenario, ...]
    grid: tuple[tuple[str, tuple[str, ...]], ...]
    strategies: tuple[str, ...]
    seconds: Mapping[str, float] = field(default_factory=dict)

    @property
    def grid_dict(self) -> dict[str, list[Any]]:
        """The grid as ``run_sweep`` takes it."""
        return {key: list(values) for key, values in self.grid}

    def scenario(self, name: str) -> Scenario:
        """The part's scenario called ``name``."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise SimError(f"report part {self.name!r}: no scenario {name!r}")

    def value_seconds(self, value: str) -> float:
        """The duration that the grid value ``value`` spells."""
        try:
            return self.seconds[value]
        except KeyError:
            known = ", ".join(repr(v) for _, vs in self.grid for v in vs)
            raise SimError(f"report part {self.name!r}: no grid value {value!r}; "
                           f"values: {known or 'none'}") from None


@dataclass(frozen=True)
class Plan:
    """Everything the report runs; ``make_plan(quick)`` builds it, the same every time."""

    quick: bool
    lengths: tuple[str, ...]
    rhythms: tuple[int, ...]
    chosen_rhythm: int
    grid: Part
    scenarios: Part
    checkpoint: Part
    cdf_scenario: Scenario
    cdf_points: int
    checkpoint_work: float
    checkpoint_cost: float
    checkpoint_mtbf: float
    checkpoint_restart: float
    #: The grid's Sidekiq timeout (the ``K`` of its closed form when shorter than the grace).
    sidekiq_timeout: float
    grid_scenarios: Mapping[str, float] = field(default_factory=dict)  # name -> length (s)
    #: ``split``'s sub-job in the ``cdf`` scenario: its chunk of items, and how long they take.
    cdf_chunk_items: int = 100
    cdf_sub_job_s: float = 100.0

    @property
    def parts(self) -> tuple[Part, ...]:
        """The sweeps, in the order they run."""
        return (self.grid, self.scenarios, self.checkpoint)

    def part(self, name: str) -> Part:
        """The sweep called ``name``."""
        for p in self.parts:
            if p.name == name:
                return p
        raise SimError(f"report: no part {name!r}; parts: {', '.join(p.name for p in self.parts)}")


def _grid_scenario(length: str, replications: int, max_period: float) -> Scenario:
    """One job of ``length`` alone on one worker of a Kubernetes fleet; the horizon lets every
    strategy that can finish it do so (``HORIZON_FACTOR`` L + the longest deploy period +
    ``HORIZON_SLACK``)."""
    seconds = parse_duration(length, "length")
    horizon = HORIZON_FACTOR * seconds + max_period + HORIZON_SLACK
    every = max(CHECKPOINT_FLOOR, seconds / CHECKPOINT_PARTS)
    return scenario_from_dict(
        {
            "name": f"grid-{length}",
            "description": f"one {length} job alone on one worker, periodic deploys",
            "seed": GRID_SEED,
            "horizon": float(math.ceil(horizon)),
            "replications": replications,
            "fleet": {"workers": 1, "restart_delay": 20.0},
            "platform": {"preset": "kubernetes"},
            "deploys": {"schedule": "periodic", "every": DAY},
            "workload": {"arrivals": "backlog", "count": 1, "length": seconds, "item_time": 1.0},
            # with no crashes in the grid the interval changes no number; scaling it bounds
            # the cost of simulating jobs of days (one checkpoint per 1/1000 of the job). The
            # engine checkpoints at least every lease_ttl / 2, so the lease scales with it.
            "strategies": {"resumable": {"checkpoint_every": every,
                                         "lease_ttl": max(LEASE_FLOOR, 2 * every)}},
        },
        "report grid",
    )


def _bundled(horizon_cap: float, cap_backlogs: bool) -> tuple[Scenario, ...]:
    """The bundled scenarios with one replication; horizons capped at ``horizon_cap`` seconds,
    except for backlogs unless ``cap_backlogs`` (all their jobs arrive at once, so their
    horizon is the time they are given)."""
    out = []
    for name in bundled_scenarios():
        if name in SKIPPED_SCENARIOS:
            continue
        s = load_scenario(name)
        values: dict[str, Any] = {"replications": 1}
        if (cap_backlogs or s.workload.arrivals != "backlog") and s.horizon > horizon_cap:
            values["horizon"] = horizon_cap
        out.append(with_values(s, values, f"{name} in the report"))
    return tuple(out)


def _checkpoint_scenario(replications: int) -> Scenario:
    """One resumable job of ``CHECKPOINT_WORK`` on one worker crashed at Poisson times of mean
    ``CHECKPOINT_MTBF``, back after ``CHECKPOINT_RESTART``; no deploys. The horizon is long
    enough for every interval swept."""
    return scenario_from_dict(
        {
            "name": "checkpoint-crashes",
            "description": "one job alone on one worker under Poisson crashes, no deploys",
            "seed": CHECKPOINT_SEED,
            "horizon": 30 * CHECKPOINT_WORK,
            "replications": replications,
            "fleet": {"workers": 1, "restart_delay": CHECKPOINT_RESTART},
            "platform": {"grace": 30.0},
            "deploys": {"schedule": "none"},
            "crashes": {"mtbf": CHECKPOINT_MTBF},
            "workload": {"arrivals": "backlog", "count": 1, "length": CHECKPOINT_WORK,
                         "item_time": 1.0},
            "strategies": {"resumable": {"checkpoint_cost": CHECKPOINT_COST,
                                         "lease_ttl": 3600.0}},
        },
        "report checkpoint",
    )


def make_plan(quick: bool = False) -> Plan:
    """The report's sweeps: the full plan, or with ``quick`` a coarse one for CI."""
    size = _QUICK if quick else _FULL
    max_period = DAY / min(size.rhythms)
    grid_scenarios = {}
    scenarios = []
    # longest first: the slowest cells start first and the pool ends evenly
    for length in sorted(size.lengths, key=lambda x: -parse_duration(x, "length")):
        s = _grid_scenario(length, size.grid_replications, max_period)
        grid_scenarios[s.name] = parse_duration(length, "length")
        scenarios.append(s)
    # a deploy every day/n, spelled as results.csv holds it (the spelling fixes the seed)
    periods = {format_duration(DAY / n): DAY / n for n in size.rhythms}
    grid = Part("grid", tuple(scenarios), (("deploys.every", tuple(periods)),), STRATEGY_ORDER,
                periods)
    bundled = _bundled(size.scenario_horizon, quick)
    intervals = {v: parse_duration(v, "checkpoint_every") for v in size.intervals}
    checkpoint = Part(
        "checkpoint",
        (_checkpoint_scenario(size.checkpoint_replications),),
        (("strategies.resumable.checkpoint_every", tuple(intervals)),),
        ("resumable",),
        intervals,
    )
    timeout = Sidekiq.from_params(scenarios[0].strategies.get("sidekiq"), "strategies.sidekiq")
    cdf_scenario = next(s for s in bundled if s.name == CDF_SCENARIO)
    split = Split.from_params(cdf_scenario.strategies.get("split"), "strategies.split")
    return Plan(
        quick=quick,
        lengths=size.lengths,
        rhythms=size.rhythms,
        chosen_rhythm=size.chosen,
        grid=grid,
        scenarios=Part("scenarios", bundled, (), STRATEGY_ORDER),
        checkpoint=checkpoint,
        cdf_scenario=cdf_scenario,
        cdf_points=size.cdf_points,
        checkpoint_work=CHECKPOINT_WORK,
        checkpoint_cost=CHECKPOINT_COST,
        checkpoint_mtbf=CHECKPOINT_MTBF,
        checkpoint_restart=CHECKPOINT_RESTART,
        sidekiq_timeout=float(timeout.timeout),
        grid_scenarios=grid_scenarios,
        cdf_chunk_items=split.chunk_items,
        cdf_sub_job_s=split.chunk_items * cdf_scenario.workload.classes[0].item_time,
    )


def report_cells(plan: Plan, part: str) -> list[Cell]:
    """The cells of one part, in the order ``run_sweep`` runs them."""
    p = plan.part(part)
    return make_cells(list(p.scenarios), p.grid_dict)
