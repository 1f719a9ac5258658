"""The scenario model: a fleet, a platform, a deploy rhythm, crashes, a workload and the
strategies to compare, as frozen values, read from and written to TOML files.

    from deploysim.sim.scenario import load_scenario, with_overrides
    scenario = with_overrides(load_scenario("heroku-hourly"), ["deploys.every=30m"])

The file format is described in ``deploysim.sim.scenario.schema``.
"""

from __future__ import annotations

from .deploys import PRESETS, Crashes, Deploys, Platform, platform_preset
from .files import BUNDLED_DIR, bundled_scenarios, load_scenario
from .model import Fleet, FrozenTable, Scenario
from .overrides import parse_assignments, with_overrides, with_values
from .reading import scenario_from_dict
from .workloads import (
    LENGTH_KINDS,
    Empirical,
    Exponential,
    Fixed,
    JobClass,
    LengthDist,
    Lognormal,
    Pareto,
    Weibull,
    Workload,
    load_empirical,
)
from .writing import scenario_to_dict

__all__ = [
    "BUNDLED_DIR",
    "LENGTH_KINDS",
    "PRESETS",
    "Crashes",
    "Deploys",
    "Empirical",
    "Exponential",
    "Fixed",
    "Fleet",
    "FrozenTable",
    "JobClass",
    "LengthDist",
    "Lognormal",
    "Pareto",
    "Platform",
    "Scenario",
    "Weibull",
    "Workload",
    "bundled_scenarios",
    "load_empirical",
    "load_scenario",
    "parse_assignments",
    "platform_preset",
    "scenario_from_dict",
    "scenario_to_dict",
    "with_overrides",
    "with_values",
]
