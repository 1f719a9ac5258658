"""Celery (5.6) shutdown, after the "Celery warm" and "Celery time limits" rows of
docs/semantics.md.

A warm shutdown (TERM) stops consuming and waits for the tasks in hand, with no limit of its own
(``worker_soft_shutdown_timeout`` is 0, off, by default). When the platform's SIGKILL comes
first, a task that was acknowledged when it started (the default) is LOST; with ``acks_late``
the message is still unacknowledged and the broker redelivers it: RabbitMQ at once, Redis after
``visibility_timeout`` (3600 s), SQS after its own visibility timeout. ``time_limit`` kills a
task that runs too long and ``soft_time_limit`` raises inside it: either way the task FAILS, is
acknowledged and is not retried. Prefetched but unstarted messages are given back on shutdown,
so prefetching changes the order of work, not its fate, and is not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Lose, Outcome, Requeue, Strategy, StrategyError, choice_param, duration_field

VISIBILITY = {"rabbitmq": 0.0, "redis": 3600.0, "sqs": 1800.0}


@dataclass(frozen=True)
class Celery(Strategy):
    """Warm shutdown waits; SIGKILL loses the task unless acks_late (then redelivered)."""

    name = "celery"
    summary = "Celery: warm shutdown waits; SIGKILL loses the task unless acks_late"

    acks_late: bool = False
    broker: str = "redis"
    visibility_timeout: float | None = duration_field(None)  # None: the broker's own
    soft_shutdown_timeout: float = duration_field(0.0)
    time_limit: float | None = duration_field(None)
    soft_time_limit: float | None = duration_field(None)

    def __post_init__(self) -> None:
        if not isinstance(self.acks_late, bool):
            raise StrategyError(f"acks_late: {self.acks_late!r} is not true or false")
        super().__post_init__()
        self._set("broker", choice_param("broker", self.broker, tuple(VISIBILITY)))
        if self.visibility_timeout is None:
            self._set("visibility_timeout", VISIBILITY[self.broker])

    @property
    def term_wait(self) -> float:
        return self.soft_shutdown_timeout or math.inf

    @property
    def on_timeout(self) -> Outcome:
        # the soft shutdown ends in a cold shutdown: same fate as a kill
        return self.on_kill

    @property
    def on_kill(self) -> Outcome:
        if self.acks_late:
            assert self.visibility_timeout is not None  # set from the broker when left out
            return Requeue(delay=self.visibility_timeout, end="back", restart=True)
        return Lose("acknowledged at start, worker killed")

    @property
    def run_limit(self) -> float:
        """The run-time limit after which the task fails (the smaller of the two limits)."""
        limits = [x for x in (self.time_limit, self.soft_time_limit) if x is not None]
        return min(limits) if limits else math.inf

