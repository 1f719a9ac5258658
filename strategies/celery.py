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
from typing import Any

from .base import (
    Lose,
    Outcome,
    Requeue,
    Strategy,
    StrategyError,
    choice_param,
    duration_param,
)

VISIBILITY = {"rabbitmq": 0.0, "redis": 3600.0, "sqs": 1800.0}


@dataclass(frozen=True)
class Celery(Strategy):
    """Warm shutdown waits; SIGKILL loses the task unless acks_late (then redelivered)."""

    name = "celery"
    summary = "Celery: warm shutdown waits; SIGKILL loses the task unless acks_late"

    acks_late: bool = False
    broker: str = "redis"
    visibility_timeout: Any = None
    soft_shutdown_timeout: Any = 0.0
    time_limit: Any = None
    soft_time_limit: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.acks_late, bool):
            raise StrategyError(f"acks_late: {self.acks_late!r} is not true or false")
        self._set("broker", choice_param("broker", self.broker, tuple(VISIBILITY)))
        vt = (
            VISIBILITY[self.broker]
            if self.visibility_timeout is None
            else duration_param("visibility_timeout", self.visibility_timeout)
        )
        self._set("visibility_timeout", vt)
        self._set(
            "soft_shutdown_timeout",
            duration_param("soft_shutdown_timeout", self.soft_shutdown_timeout),
        )
        for key in ("time_limit", "soft_time_limit"):
            value = getattr(self, key)
            if value is not None:
                self._set(key, duration_param(key, value))

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
            return Requeue(delay=self.visibility_timeout, end="back", restart=True)
        return Lose("acknowledged at start, worker killed")

    @property
    def run_limit(self) -> float:
        """The run-time limit after which the task fails (the smaller of the two limits)."""
        limits = [x for x in (self.time_limit, self.soft_time_limit) if x is not None]
        return min(limits) if limits else math.inf

