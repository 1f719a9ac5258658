"""Scenarios: a fleet, a platform, a deploy rhythm, crashes, a workload and the strategies to
compare, read from TOML files and checked field by field.

A scenario file looks like this (durations as "25s", "10m", "4h", "30d"; rates as "40/d")::

    name = "heroku-hourly"
    description = "..."
    seed = 1
    horizon = "7d"
    replications = 3

    [fleet]
    workers = 10
    restart_delay = "0s"

    [platform]
    preset = "heroku"            # grace and daily_restarts default to the platform's own

    [deploys]
    schedule = "periodic"        # none | periodic | poisson | business-hours | times | trace
    every = "1h"                 # (a trace: trace = "deploys.csv", a CSV of deploy times)

    [crashes]
    mtbf = "30d"

    [workload]
    arrivals = "poisson"         # or "backlog" with count = N, or "trace" with trace = "jobs.csv"
    rate = "600/h"               # a rate says per what: "600/h", "10/min", "1/s"
    length = { kind = "lognormal", median = "30s", sigma = 1.0 }
    item_time = "1s"
    hang_probability = 0.0
    # or several [[workload.classes]] with name, weight, length, item_time, hang_probability

    [strategies.sidekiq]         # durations read to seconds, the rest passed to the strategy
    timeout = "25s"

Unknown keys (outside ``strategies``) are errors that suggest the nearest valid key; a key the
table's choice does not use (``every`` with ``schedule = "poisson"``, ``count`` with Poisson
arrivals, ``median`` in an exponential length) is an error that names the key it does use
(``applies``). ``load.offered_load`` says how busy the arrivals keep the fleet.

The scenario model lives in the modules of ``deploysim.sim.scenario``: ``model`` (the values),
with ``deploys``, ``workloads`` and ``lengths`` (their parts) and ``checks`` (their number
checks); ``reading`` and ``writing`` (the tables of a file), ``strategy_tables`` (the
``[strategies.NAME]`` tables), ``files`` (bundled and TOML files) and ``overrides``
(``with_values``, ``--set``), ``traces`` (CSV logs of real jobs and deploys, replayed
exactly: ``read_job_trace``, ``write_job_trace``...). This package gathers their names under
one roof:

    from deploysim.sim.scenario import load_scenario, with_values
    scenario = with_values(load_scenario("heroku-hourly"), {"deploys.every": "30m"})
"""

from __future__ import annotations

from .deploys import PRESETS, Crashes, Deploys, Platform, platform_preset
from .files import BUNDLED_DIR, bundled_scenarios, load_scenario
from .lengths import (
    LENGTH_KINDS,
    Empirical,
    Exponential,
    Fixed,
    LengthDist,
    Lognormal,
    Pareto,
    Weibull,
    load_empirical,
)
from .load import busy_workers, offered_load
from .model import DEFAULT_CLASS, Fleet, FrozenTable, Scenario
from .overrides import parse_assignments, with_overrides, with_values
from .reading import scenario_from_dict
from .traces import (
    DeployTrace,
    JobTrace,
    load_deploy_trace,
    read_deploy_trace,
    read_job_trace,
    write_deploy_trace,
    write_job_trace,
)
from .workloads import JobClass, Workload
from .writing import scenario_to_dict

__all__ = [
    "BUNDLED_DIR",
    "DEFAULT_CLASS",
    "LENGTH_KINDS",
    "PRESETS",
    "Crashes",
    "DeployTrace",
    "Deploys",
    "Empirical",
    "Exponential",
    "Fixed",
    "Fleet",
    "FrozenTable",
    "JobClass",
    "JobTrace",
    "LengthDist",
    "Lognormal",
    "Pareto",
    "Platform",
    "Scenario",
    "Weibull",
    "Workload",
    "bundled_scenarios",
    "busy_workers",
    "load_deploy_trace",
    "load_empirical",
    "load_scenario",
    "offered_load",
    "parse_assignments",
    "platform_preset",
    "read_deploy_trace",
    "read_job_trace",
    "scenario_from_dict",
    "scenario_to_dict",
    "with_overrides",
    "with_values",
    "write_deploy_trace",
    "write_job_trace",
]
