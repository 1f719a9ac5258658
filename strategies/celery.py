"""Celery (5.7, kombu 5.7) shutdown, after the "Celery warm" and "Celery time limits" rows of
docs/semantics.md and what its "Seen on real systems" section records of real runs.

SIGTERM is a warm shutdown: the worker stops consuming and waits for the tasks in hand with no
limit of its own. ``worker_soft_shutdown_timeout`` (0, off) belongs to the COLD shutdown
(SIGQUIT, or SIGTERM when the worker runs with ``REMAP_SIGTERM=SIGQUIT``, ``remap_sigterm``
here): it waits that long for the tasks in hand and then cancels them; a cancelled task that
was acknowledged when it started (the default) is gone, an ``acks_late`` one is rejected back to
the end of the queue. When the platform's SIGKILL comes first, an acknowledged task is LOST; an
``acks_late`` one is still unacknowledged and comes back: RabbitMQ at once, SQS after its own
visibility timeout, Redis once ``visibility_timeout`` (3600 s) has passed AND a worker sweeps
the ``unacked`` records: kombu sweeps when a worker starts and then every
``unacked_restore_interval`` x ``unacked_restore_throttle`` (10 s x 10) per worker
(``restore_every``), and puts what it restores at the FRONT of the queue.

A worker reserves messages beyond the one in hand: ``worker_prefetch_multiplier`` (4) x the
concurrency, counting an unacknowledged task in hand, so a one-process worker holds 4 more
messages (3 with ``acks_late``; none with 5.7's ``worker_disable_prefetch``, Redis only,
``disable_prefetch`` here). At a clean exit they go back to the front of the queue; when the
worker is SIGKILLed they stay unacknowledged and come back like an ``acks_late`` task. An idle
prefork worker takes about 2 s to exit after SIGTERM (its pool's threads wake up slowly), which
on a short grace turns most SIGTERMs into SIGKILLs. ``time_limit`` kills a task that runs too
long and ``soft_time_limit`` raises inside it: either way the task FAILS, is acknowledged and is
not retried.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .base import (
    DURATION,
    KEY,
    Lose,
    Outcome,
    Requeue,
    Strategy,
    StrategyError,
    choice_param,
    duration_field,
)

VISIBILITY = {"rabbitmq": 0.0, "redis": 3600.0, "sqs": 1800.0}
"""Each broker's default redelivery delay of an unacknowledged message, seconds."""

RESTORE_EVERY = {"rabbitmq": 0.0, "redis": 100.0, "sqs": 0.0}
"""Each broker's default period of the sweep that redelivers expired messages, seconds (Redis:
kombu's ``unacked_restore_interval`` 10 s x ``unacked_restore_throttle`` 10; the others
redeliver by themselves)."""

EXIT_TIME = {"prefork": 2.2, "threads": 0.5, "solo": 0.7}
"""Seconds an idle ``-c 1`` worker of each pool took to exit after SIGTERM (Celery 5.7 on a
2-core machine; the same after the task in hand ends). A cost of the process, not a setting:
it does not shrink with a compressed run."""


ACK_DELAY = {"prefork": (0.1, 0.35), "threads": (0.0, 0.0), "solo": (0.0, 0.0)}
"""Seconds from an ``acks_late`` task's end to its acknowledgement reaching the broker, the
least and the most (Celery 5.7 on RabbitMQ 3.10, prefork, ``-c 1``, a 2-core machine: of the
tasks that ended 0.03 to 0.24 s before their worker's SIGKILL, 11 of 14 ran again; of those
that ended 0.12 to 0.18 s before it, some did and some did not; none that ended 0.35 s or more
before it did). Not measured for the other pools: none."""


@dataclass(frozen=True)
class Celery(Strategy):
    """Warm shutdown waits; SIGKILL loses the task unless acks_late (then redelivered)."""

    name = "celery"
    summary = "Celery: warm shutdown waits; SIGKILL loses the task unless acks_late"

    acks_late: bool = False
    broker: str = "redis"
    visibility_timeout: float | None = duration_field(None)  # None: the broker's own
    restore_every: float | None = duration_field(None)  # None: the broker's own
    soft_shutdown_timeout: float = duration_field(0.0)
    remap_sigterm: bool = False
    prefetch_multiplier: int = 4
    disable_prefetch: bool = False
    pool: str = "prefork"
    #: the parameter ``exit_time`` (the name of the field is the property ``exit_time``'s);
    #: None: the pool's own (``EXIT_TIME``)
    exit_seconds: float | None = dataclasses.field(
        default=None, metadata={DURATION: True, KEY: "exit_time"}
    )
    time_limit: float | None = duration_field(None)
    soft_time_limit: float | None = duration_field(None)

    def __post_init__(self) -> None:
        for flag in ("acks_late", "remap_sigterm", "disable_prefetch"):
            if not isinstance(getattr(self, flag), bool):
                raise StrategyError(f"{flag}: {getattr(self, flag)!r} is not true or false")
        multiplier = self.prefetch_multiplier
        if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1:
            # 0 is Celery's "no limit", which the model does not take
            raise StrategyError(f"prefetch_multiplier: {multiplier!r} is not a whole number >= 1")
        super().__post_init__()
        self._set("broker", choice_param("broker", self.broker, tuple(VISIBILITY)))
        self._set("pool", choice_param("pool", self.pool, tuple(EXIT_TIME)))
        if self.visibility_timeout is None:
            self._set("visibility_timeout", VISIBILITY[self.broker])
        if self.restore_every is None:
            self._set("restore_every", RESTORE_EVERY[self.broker])
        if self.exit_seconds is None:
            self._set("exit_seconds", EXIT_TIME[self.pool])

    @property
    def redelivery_delay(self) -> float:
        """Expected seconds from a kill to the redelivery of an unacknowledged message.

        The message is due once it has been unacknowledged for ``visibility_timeout`` (counted
        from its delivery, so a message the worker held a while before the kill is due sooner)
        and comes back at the next sweep after that: on average half of ``restore_every`` for
        one worker out of phase with the kill. Every worker also sweeps when it starts, so a
        fleet restarted often redelivers sooner than this."""
        assert self.visibility_timeout is not None and self.restore_every is not None
        return self.visibility_timeout + self.restore_every / 2

    @property
    def _redelivered(self) -> Outcome:
        # kombu's Redis sweep pushes to the end BRPOP reads next; RabbitMQ puts a message back
        # at its place, ahead of those delivered after it (seen on 3.10); SQS is not checked
        end = "back" if self.broker == "sqs" else "front"
        return Requeue(delay=self.redelivery_delay, end=end, restart=True)

    @property
    def ack_delay(self) -> tuple[float, float]:
        # acks_late acknowledges after the task has returned, through the pool's parent: a
        # SIGKILL in that time leaves the message of a task that ran to its end unacknowledged
        return ACK_DELAY[self.pool] if self.acks_late else (0.0, 0.0)

    @property
    def term_wait(self) -> float:
        # the soft shutdown is a stage of the cold shutdown, which SIGTERM starts only remapped
        return self.soft_shutdown_timeout if self.remap_sigterm else math.inf

    @property
    def on_timeout(self) -> Outcome:
        # the cold shutdown cancels the task: rejected to the back of the queue if unacked
        if self.acks_late:
            return Requeue(delay=0.0, end="back", restart=True)
        return Lose("acknowledged at start, cancelled at cold shutdown")

    @property
    def on_kill(self) -> Outcome:
        if self.acks_late:
            return self._redelivered
        return Lose("acknowledged at start, worker killed")

    @property
    def run_limit(self) -> float:
        """The run-time limit after which the task fails (the smaller of the two limits)."""
        limits = [x for x in (self.time_limit, self.soft_time_limit) if x is not None]
        return min(limits) if limits else math.inf

    @property
    def prefetch(self) -> int:
        # prefetch_count = multiplier x concurrency (1) counts the unacknowledged task in hand;
        # worker_disable_prefetch (Redis only) fetches only when the pool has a free process
        if self.disable_prefetch:
            return 0
        if self.acks_late:
            return max(self.prefetch_multiplier - 1, 0)
        return self.prefetch_multiplier

    @property
    def on_exit_reserved(self) -> Outcome:
        # given back to the front at channel close (the last reserved becomes the next fetched)
        return Requeue(delay=0.0, end="front", restart=True)

    @property
    def on_kill_reserved(self) -> Outcome:
        # still in the broker's unacked records, in either acks mode
        if self.broker == "rabbitmq":
            return Requeue(delay=0.0, end="front", restart=True)
        return self._redelivered

    @property
    def exit_time(self) -> float:
        assert self.exit_seconds is not None
        return self.exit_seconds
