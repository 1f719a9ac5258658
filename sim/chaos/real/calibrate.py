"""Calibration against the real systems: the same compressed scenario run on the real Celery,
RQ, Dramatiq or Sidekiq and in the simulator, side by side.

The simulator meets what the real run met: the jobs in the order they were enqueued (all at
the start, each with the length its completed attempt took, as measured), the deploys at the
times the SIGTERMs went out, each crash at its time on its slot, the grace, and the measured
delay from a container's death to its replacement saying it is ready. The model is the
system's strategy (``System.strategy``) with exactly the settings the real workers ran with
(``System.settings``). The comparison and its targets are those of
``deploysim.sim.chaos.calibrate.compare``: completion within 5 percentage points, failed and
lost each within 5 points of the jobs enqueued, wasted work within 15 %.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ...errors import SimError
from ..calibrate import calibration, check_replications, compare, simulate
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
) -> dict[str, Any]:
    """Run ``config``'s scenario on each real system of ``systems`` (default: all) and in the
    simulator; the JSON-ready comparison, shaped as ``run_calibration``'s. ``replications``
    runs each system that many times (seeds ``config.seed``, ``+1``, ...) and compares sums."""
    check_replications(replications)
    names = system_names(systems)
    for name in names:
        missing = get_system(name).missing()
        if missing is not None:
            raise SimError(missing)
    out: dict[str, Any] = {}
    for name in names:
        system = get_system(name)
        audits, sims = [], []
        for r in range(replications):
            run = replace(config, seed=config.seed + r)
            if progress is not None:
                progress(f"{name}: running the real system (seed {run.seed})")
            audit = run_system(run, name)
            audits.append(audit)
            sims.append(simulate(run, audit, system.strategy(audit["settings"])))
        result = compare(audits, sims)
        result["version"] = audits[0]["version"]
        result["settings"] = audits[0]["settings"]
        result["model"] = system.model
        out[name] = result
    return calibration(config, replications, out)
