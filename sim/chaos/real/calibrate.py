"""Calibration against the real systems: the same compressed scenario run on the real Celery,
RQ, Dramatiq or Sidekiq and in the simulator, side by side.

The simulator meets what the real run met: the jobs in the order they were enqueued (all at
the start, each with the length its completed attempt took, as measured), the deploys at the
times the SIGTERMs went out, each crash at its time on its slot, the grace, and each
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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ...errors import SimError
from ..calibrate import calibration, check_replications, compare, mean_result, simulate_all
from ..config import ChaosConfig
from .harness import run_system
from .systems import SYSTEMS, get_system


def system_names(value: Iterable[str] | None) -> list[str]:
    """The systems named (``all`` for every one), checked."""
    names = list(value or ["all"])
    if "all" in names:
        return list(SYSTEMS)
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
) -> dict[str, Any]:
    """Run ``config``'s scenario on each real system of ``systems`` (default: all) and in the
    simulator; the JSON-ready comparison, shaped as ``run_calibration``'s. ``replications``
    runs each system that many times (seeds ``config.seed``, ``+1``, ...) and compares sums.
    ``settings`` go over each system's own (``run_system``), so they name settings that every
    system calibrated has."""
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
            audit = run_system(run, name, settings=settings)
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
