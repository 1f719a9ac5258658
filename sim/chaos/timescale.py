"""The one place where real-world times become the compressed times of a chaos run.

A chaos run plays a platform's grace period of ``REFERENCE_GRACE`` (30 s: Heroku, Kubernetes,
ECS) in ``--grace`` (500 ms by default), so every time a strategy knows of is multiplied by
``factor = grace / REFERENCE_GRACE`` (1/60 by default): Sidekiq's 25 s timeout becomes 417 ms,
its 60 s heartbeat TTL 1 s and its hourly orphan check 60 s; Celery's Redis visibility timeout
(3600 s) 60 s; the resumable engine's 5 s checkpoints 83 ms and its 60 s lease 1 s. The same
scaled strategy value drives the worker processes and the simulator in ``deploysim calibrate``.
Job lengths, deploy gaps and crash gaps are given compressed already, on the command line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from deploysim.strategies.base import DURATION, Strategy

REFERENCE_GRACE = 30.0
"""Seconds of grace that a run's ``--grace`` stands for: the default of Heroku, Kubernetes and
AWS ECS (docs/semantics.md, platforms)."""


SIDEKIQ_BEATS_PER_TTL = 6
"""Sidekiq writes its heartbeat every 10 s and lets it expire after 60 s."""


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Multiply real-world seconds by ``factor`` to get the seconds of a compressed run."""

    factor: float

    @classmethod
    def for_grace(cls, grace: float) -> TimeScale:
        """The scale at which ``grace`` seconds stand for ``REFERENCE_GRACE``."""
        if not grace > 0:
            raise ValueError(f"grace {grace!r}: must be > 0 to set a time scale")
        return cls(grace / REFERENCE_GRACE)

    def seconds(self, real: float) -> float:
        """``real`` seconds in compressed time (infinity stays infinite)."""
        return real if math.isinf(real) else real * self.factor

    def strategy(self, strategy: Strategy) -> Strategy:
        """A copy of ``strategy`` with every duration parameter scaled (the rest unchanged)."""
        changes = {}
        for f in dataclasses.fields(strategy):
            value = getattr(strategy, f.name)
            if f.init and f.metadata.get(DURATION) and isinstance(value, float):
                changes[f.name] = self.seconds(value)
        return dataclasses.replace(strategy, **changes)
