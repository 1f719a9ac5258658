"""The controller's plan: when deploys come and which worker each crash hits, from the seed.

Deploys are periodic with a random phase, crashes a Poisson stream over the whole fleet (seeded
exponential gaps), each on a worker slot drawn uniformly; the draws come from independent
streams of ``SeedSequence(seed)`` and use the simulator's own schedule functions, so the same
seed gives the same plan on any machine. What really happened (a crash may find its slot's
process restarting) is recorded by the controller, not assumed from the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scenario.deploys import Deploys, deploy_times
from ..scenario.workloads import poisson_times


@dataclass(frozen=True, slots=True)
class Schedule:
    """Deploy times and ``(time, slot)`` crashes, in seconds from the start of a run."""

    deploys: tuple[float, ...]
    crashes: tuple[tuple[float, int], ...]


def make_schedule(
    seed: int, horizon: float, workers: int, deploy_every: float, crash_every: float
) -> Schedule:
    """The plan of a run of ``horizon`` seconds; a gap of 0 means none of that event."""
    deploy_rng, crash_rng, slot_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    deploys: tuple[float, ...] = ()
    if deploy_every > 0:
        times = deploy_times(Deploys("periodic", every=deploy_every), deploy_rng, horizon)
        deploys = tuple(float(t) for t in times)
    crashes: tuple[tuple[float, int], ...] = ()
    if crash_every > 0:
        times = poisson_times(1 / crash_every, crash_rng, horizon)
        slots = slot_rng.integers(0, workers, size=len(times))
        crashes = tuple((float(t), int(s)) for t, s in zip(times, slots, strict=True))
    return Schedule(deploys, crashes)
