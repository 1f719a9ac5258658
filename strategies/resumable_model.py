"""The resumable strategy: this package's engine, after the job-iteration and Sidekiq
IterableJob rows of docs/semantics.md, with what they lack.

On TERM the engine finishes the item in hand, makes its cursor durable (a checkpoint costs
``checkpoint_cost`` seconds and is durable at its end) and the job goes to the ``requeue`` end of
the queue (BACK, as job-iteration) to go on from there. Progress is also made durable every
``checkpoint_every`` seconds, so a SIGKILL loses at most that much: the job is resumed from its
last checkpoint by its own worker when that comes back, or by any worker once its lease
(``lease_ttl``) has expired. Checkpoints renew the lease, so they come at least every
``lease_ttl / 2`` whatever ``checkpoint_every`` says: raise ``lease_ttl`` with a long interval.
``max_runtime`` makes a long job yield its worker every so often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Front, Outcome, Requeue, Strategy, StrategyError, choice_param, duration_field


@dataclass(frozen=True)
class Resumable(Strategy):
    """Stop at the next item, checkpoint, re-queue; periodic checkpoints bound crash losses."""

    name = "resumable"
    summary = "Resumable engine: stop at the next item, checkpoint, resume from the cursor"

    checkpoint_every: float = duration_field(5.0)
    checkpoint_cost: float = duration_field(0.0)
    max_runtime: float | None = duration_field(None)
    lease_ttl: float = duration_field(60.0)
    requeue: Front = "back"

    def __post_init__(self) -> None:
        super().__post_init__()
        every, ttl = self.checkpoint_every, self.lease_ttl
        if every <= 0:
            raise StrategyError(f"checkpoint_every: must be > 0 seconds, e.g. 5.0, got {every!r}")
        if self.max_runtime is not None and self.max_runtime <= 0:
            raise StrategyError(
                f"max_runtime: must be > 0 seconds, e.g. 300.0, or left out, "
                f"got {self.max_runtime!r}"
            )
        if ttl <= 0:
            raise StrategyError(f"lease_ttl: must be > 0 seconds, e.g. 60.0, got {ttl!r}")
        if every > ttl / 2:
            raise StrategyError(
                f"checkpoint_every: {every:g} s is more than half of lease_ttl ({ttl:g} s), and "
                f"checkpoints renew the lease; set lease_ttl to at least {2 * every:g} s"
            )
        self._set("requeue", choice_param("requeue", self.requeue, ("front", "back")))

    @property
    def term_wait(self) -> float:
        return math.inf  # the engine stops by itself at the next item boundary

    @property
    def on_timeout(self) -> Outcome:
        return Requeue(end=self.requeue, restart=False)

    @property
    def on_kill(self) -> Outcome:
        return Requeue(delay=self.lease_ttl, end="back", restart=False)
