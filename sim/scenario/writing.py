"""Writing a ``Scenario`` back as the tables of a scenario file (``scenario_to_dict``):
durations as "25s", rates as "40/d", so that ``scenario_from_dict`` reads it back to an
equal Scenario. Fields the deploy schedule or the arrivals do not use are not written (a file
may not hold them), so a scenario built with such a field reads back without it. A trace is
written as the absolute path of the file it was read from, so that it reads back from anywhere
(a trace not read from a file cannot be written: ``traces.write_job_trace`` writes one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..durations import format_duration, format_rate
from ..errors import SimError
from .applies import ARRIVAL_KEYS, SCHEDULE_KEYS
from .deploys import PRESETS, Platform
from .lengths import Empirical, LengthDist
from .model import DEFAULT_CLASS, Scenario
from .reading import LENGTH_PARAMS
from .strategy_tables import write_strategy_params
from .traces import DeployTrace, JobTrace
from .workloads import JobClass

__all__ = ["scenario_to_dict"]


def _length_to_dict(length: LengthDist) -> dict[str, Any]:
    if isinstance(length, Empirical):
        if length.source != "inline" and Path(length.source).is_file():
            table: dict[str, Any] = {"kind": "empirical", "file": length.source}
            if length.column is not None:
                table["column"] = length.column
            return table
        table = {"kind": "empirical", "durations": list(length.durations)}
        if length.source != "inline":
            table["source"] = length.source
        return table
    kind = getattr(length, "kind", None)
    if kind not in LENGTH_PARAMS or not hasattr(length, "params"):
        raise SimError(f"length: cannot write {length!r} to a scenario file; use a bundled kind")
    table = {"kind": kind}
    for name, value in length.params().items():
        spec = LENGTH_PARAMS[kind][name]
        table[name] = format_duration(value) if spec.startswith("duration") else value
    return table


def _class_to_dict(job_class: JobClass, traced: bool) -> dict[str, Any]:
    table: dict[str, Any] = {"name": job_class.name}
    if not traced:  # a trace gives each job's length and class
        assert job_class.length is not None
        table["weight"] = job_class.weight
        table["length"] = _length_to_dict(job_class.length)
    table["item_time"] = format_duration(job_class.item_time)
    table["hang_probability"] = job_class.hang_probability
    return table


def _trace_path(trace: JobTrace | DeployTrace, field: str) -> str:
    if not Path(trace.source).is_file():
        raise SimError(
            f"{field}: the trace was not read from a file ({trace.source!r}), so it cannot be "
            "written to a scenario file; write it with write_job_trace or write_deploy_trace"
        )
    return trace.source


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """The scenario as plain tables, ready for ``tomllib``-compatible writing or JSON:
    durations as strings ("25s"), rates as "40/d", strategy durations too; ``scenario_from_dict``
    reads it back to an equal Scenario."""
    platform: dict[str, Any] = {}
    base = Platform()
    if s.platform.preset is not None:
        platform["preset"] = s.platform.preset
        base = PRESETS[s.platform.preset]
    if s.platform.grace != base.grace or s.platform.preset is None:
        platform["grace"] = format_duration(s.platform.grace)
    if s.platform.daily_restarts != base.daily_restarts:
        platform["daily_restarts"] = s.platform.daily_restarts

    d = s.deploys
    uses = SCHEDULE_KEYS[d.schedule]  # a field the schedule does not use is not written
    deploys: dict[str, Any] = {"schedule": d.schedule}
    if d.every is not None and "every" in uses:
        deploys["every"] = format_duration(d.every)
    if d.rate is not None and "rate" in uses:
        deploys["rate"] = format_rate(d.rate)
    if "days" in uses:
        deploys["days"] = list(d.days)
    if "hours" in uses:
        deploys["hours"] = list(d.hours)
    if "times" in uses:
        deploys["times"] = [format_duration(t) for t in d.times]
    if d.batch_size is not None and "batch_size" in uses:
        deploys["batch_size"] = d.batch_size
    if d.phase is not None and "phase" in uses:
        deploys["phase"] = format_duration(d.phase)
    if d.trace is not None and "trace" in uses:
        deploys["trace"] = _trace_path(d.trace, "deploys.trace")

    w = s.workload
    workload: dict[str, Any] = {"arrivals": w.arrivals}
    if w.rate is not None and "rate" in ARRIVAL_KEYS[w.arrivals]:
        workload["rate"] = format_rate(w.rate)
    if w.count is not None and "count" in ARRIVAL_KEYS[w.arrivals]:
        workload["count"] = w.count
    traced = w.arrivals == "trace"
    if traced and w.trace is not None:
        workload["trace"] = _trace_path(w.trace, "workload.trace")
    only = w.classes[0]
    if len(w.classes) == 1 and only.name == DEFAULT_CLASS and (only.weight == 1.0 or traced):
        if not traced:
            assert only.length is not None
            workload["length"] = _length_to_dict(only.length)
        workload["item_time"] = format_duration(only.item_time)
        workload["hang_probability"] = only.hang_probability
    else:
        workload["classes"] = [_class_to_dict(c, traced) for c in w.classes]

    return {
        "name": s.name,
        "description": s.description,
        "seed": s.seed,
        "horizon": format_duration(s.horizon),
        "replications": s.replications,
        "fleet": {
            "workers": s.fleet.workers,
            "restart_delay": format_duration(s.fleet.restart_delay),
        },
        "platform": platform,
        "deploys": deploys,
        "crashes": {} if s.crashes.mtbf is None else {"mtbf": format_duration(s.crashes.mtbf)},
        "workload": workload,
        "strategies": {
            name: write_strategy_params(name, table) for name, table in s.strategies.items()
        },
    }
