"""Calibration against the real systems: the same compressed scenario run on the real Celery,
RQ, Dramatiq or Sidekiq and in the simulator, side by side.

The simulator meets what the real run met: the jobs in the order they were enqueued (all at
the start, each with the length its completed attempt took, as measured) and the deploys at the
times the SIGTERMs went out, both through CSV traces of the run as ``deploysim run`` replays a
user's (``replay_traces``), each crash at its time on its slot, the grace, and each
replacement container ready (and fetching) when the real one was. When it stops is the
model's: a simulated worker whose process exits later than the real one waits for nothing
and comes back the measured mean restart delay after its own exit. The same runs are also
simulated with that mean delay for every replacement (``sim_mean_timing``): what the model
predicts when it knows only the mean, where one worker back a second late, as an RQ worker
that waits a second for its pub/sub thread, can move the fate of a job. The model is the
system's strategy (``System.strategy``) with exactly the settings the real workers ran with
(``System.settings``). The comparison and its targets are those of
``deploysim.sim.chaos.calibrate.compare``: completion within 5 percentage points, failed and
lost each within 5 points of the jobs enqueued, wasted work within 15 %.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SimError
from ..calibrate import calibration, check_replications, compare, mean_result, simulate_all
from ..config import ChaosConfig
from .harness import run_system
from .systems import CALIBRATED, get_system


def replay_traces(audit: dict[str, Any], folder: str | Path, stem: str,
                  items: int) -> dict[str, Any]:
    """Write the jobs and deploys of the run ``audit`` describes as CSV traces,
    ``folder/STEM-jobs.csv`` and ``folder/STEM-deploys.csv`` (the format of ``[workload]
    arrivals = "trace"`` and ``[deploys] schedule = "trace"``, timestamps from the run's real
    start; ``items`` per job), read them back as a scenario's traces are read, and return
    ``audit`` with the jobs' lengths and the deploy times of its timeline taken from the files:
    the simulator replays what the files say."""
    from datetime import UTC, datetime

    from ...scenario.traces import (
        load_deploy_trace,
        read_job_trace,
        write_deploy_trace,
        write_job_trace,
    )

    timeline = audit["timeline"]
    started = audit.get("started_at")
    origin = datetime.fromtimestamp(started, UTC) if started is not None else None
    lengths = timeline["job_lengths_s"]
    jobs_csv = write_job_trace(Path(folder) / f"{stem}-jobs.csv", [0.0] * len(lengths), lengths,
                               items=[items] * len(lengths),
                               classes=[audit["system"]] * len(lengths), origin=origin)
    jobs = read_job_trace(jobs_csv)
    replayed = {**timeline, "job_lengths_s": jobs.duration.tolist()}
    if timeline["deploys"]:
        deploys_csv = write_deploy_trace(Path(folder) / f"{stem}-deploys.csv",
                                         timeline["deploys"], origin=origin)
        deploys = load_deploy_trace(deploys_csv)
        if deploys.origin is not None and jobs.origin is not None:
            deploys = deploys.shifted(jobs.origin)
        replayed["deploys"] = list(deploys.times)
    return {**audit, "timeline": replayed}


def system_names(value: Iterable[str] | None) -> list[str]:
    """The systems named (``all`` for every calibrated one, ``CALIBRATED``), checked."""
    names = list(value or ["all"])
    if "all" in names:
        return list(CALIBRATED)
    for name in names:
        get_system(name)  # one line naming the right ones if unknown
    return names


def run_system_calibration(
    config: ChaosConfig,
    systems: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    replications: int = 1,
    settings: Mapping[str, Any] | None = None,
    traces: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``config``'s scenario on each real system of ``systems`` (default: all) and in the
    simulator; the JSON-ready comparison, shaped as ``run_calibration``'s. ``replications``
    runs each system that many times (seeds ``config.seed``, ``+1``, ...) and compares sums.
    ``settings`` go over each system's own (``run_system``), so they name settings that every
    system calibrated has. Each run's jobs and deploys go through CSV traces
    (``replay_traces``), kept in the folder ``traces`` when given (made if need be)."""
    if traces is None:
        with tempfile.TemporaryDirectory(prefix="deploysim-traces-") as folder:
            return run_system_calibration(config, systems, progress, replications=replications,
                                          settings=settings, traces=folder)
    os.makedirs(traces, exist_ok=True)
    check_replications(replications)
    names = system_names(systems)
    for name in names:
        system = get_system(name)
        system.configure(system.settings(config.scale.factor, config.grace), settings or {})
        missing = system.missing()
        if missing is not None:
            raise SimError(missing)
    out: dict[str, Any] = {}
    for name in names:
        system = get_system(name)
        audits, sims, means, spreads = [], [], [], []
        for r in range(replications):
            run = replace(config, seed=config.seed + r)
            if progress is not None:
                progress(f"{name}: running the real system (seed {run.seed})")
            audit = replay_traces(run_system(run, name, settings=settings), traces,
                                  f"{name}-seed{run.seed}", run.items)
            audits.append(audit)
            model = system.strategy(audit["settings"])
            draws = simulate_all(run, audit, model)
            sims.append(mean_result(draws))
            spreads.append([d["completed"] for d in draws])
            means.append(mean_result(simulate_all(run, audit, model, replay_lives=False)))
        result = compare(audits, sims)
        planned = compare(audits, means)
        if len(spreads[0]) > 1:
            # the model draws at random: how far its own runs of the same events scatter (the
            # k-th simulation of every run summed, for each k)
            rates = np.sum(np.array(spreads, dtype=float), axis=0) / sum(
                a["enqueued"] for a in audits)
            result["sim_draws"] = len(rates)
            result["sim_completion_range"] = [float(np.quantile(rates, 0.05)),
                                              float(np.quantile(rates, 0.95))]
        result["sim_mean_timing"] = {
            "completion_rate": planned["sim"]["completion_rate"],
            "wasted_work_s": planned["sim_wasted_work_with_resume_cost_s"],
            "agree": planned["agree"],
        }
        result["version"] = audits[0]["version"]
        result["settings"] = audits[0]["settings"]
        result["model"] = system.model
        out[name] = result
    return calibration(config, replications, out)
