"""Dramatiq (2.2.1) on its Redis broker, after the "Dramatiq" row of docs/semantics.md and its
"Seen on real systems" entry.

The worker process acts on the first SIGTERM within a second: its main loop sleeps 1 s between
looks at the flag, on whole seconds from the moment the process was ready (``notice_every``, a
constant of the code that a compressed run cannot shrink), and meanwhile it goes on fetching and
starting messages. Then it lets the messages in hand run for up to ``worker_shutdown_timeout``
(600 s) and gives its prefetched, unstarted messages back to the BACK of the queue. A message
still running when that timeout ends is abandoned with its process, unacknowledged, exactly as
if the process had been SIGKILLed.

Messages are acknowledged only after they succeed. A killed (or abandoned) message stays in the
dead process's ``__acks__`` set until two things have happened: the process's heartbeat is
older than ``heartbeat_timeout`` (60 s), and a queue maintenance has run. Maintenance is a
chance of ``maintenance_chance`` per million (1000: 0.1%) on each broker command of a live
process on that queue: a fetch whenever a consumer's prefetch has room, and a poll about every
0.75 ``worker_timeout`` (1 s) while it has room and the queue is empty; a consumer whose prefetch
is full sends nothing. The simulator plays those commands (``Redeliver``): for one idle process
the wait after the heartbeat expires is exponential with a mean of ``0.75 * worker_timeout * 1e6
/ maintenance_chance`` (750 s), shorter with more idle processes, and under a backlog, when every
prefetch is full, the messages wait for the queue to drain. The message then goes to the BACK of
the queue and runs again from the start. A kill is not an exception: it does not count
against ``max_retries`` (20, with backoff, for exceptions only) and never dead-letters.

Each process holds ``queue_prefetch`` messages (2 x threads: with one thread, one beyond the
one in hand). Once its thread's hands are empty after SIGTERM, the worker process gives its
reserved messages back within about one ``worker_timeout`` (its thread and its consumers wake
from their polls): that is the time they are at risk of a SIGKILL (``exit_time``). The
``dramatiq`` command itself lives on for about a second more (its parent's log watcher waits
up to 1 s after the worker process has gone) and, when SIGTERM finds it idle, up to a second
longer (the main loop's sleep): ``command_exit_time``, 1.5 s with a 50 ms ``worker_timeout``
and 3.1 s with the default 1 s. A SIGKILL in that time kills a process holding nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Outcome, Redeliver, Requeue, Strategy, StrategyError, duration_field

MAINTENANCE_SCALE = 1_000_000
"""Maintenance runs on ``maintenance_chance`` broker commands out of this many."""

MAIN_LOOP_SLEEP = 1.0
"""Seconds the worker process sleeps between looks at its stop flag (fixed in Dramatiq)."""

POLL_FRACTION = 0.75
"""An idle consumer's mean wait between fetches, as a fraction of ``worker_timeout`` (its
backoff is jittered between 50% and 100% of the timeout)."""

EXIT_BASE = 1.45
EXIT_PER_WORKER_TIMEOUT = 1.6
"""Mean seconds an idle ``dramatiq`` command takes to exit after SIGTERM: ``EXIT_BASE +
EXIT_PER_WORKER_TIMEOUT * worker_timeout`` (fitted to 1.49 s at 0.05 s and 3.08 s at 1 s;
the base is the main loop's sleep, half of it on average, and the parent's 1 s wait)."""


def _whole(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise StrategyError(f"{name}: {value!r} is not a whole number >= {least}")
    return value


@dataclass(frozen=True)
class Dramatiq(Strategy):
    """Shutdown waits worker_shutdown_timeout; a killed message is redelivered, to the back, once
    the dead worker's heartbeat has expired and a maintenance pass has run."""

    name = "dramatiq"
    summary = ("Dramatiq (Redis): shutdown waits 600 s; killed messages come back after the "
               "heartbeat timeout and a maintenance pass")

    worker_shutdown_timeout: float = duration_field(600.0)
    heartbeat_timeout: float = duration_field(60.0)
    worker_timeout: float = duration_field(1.0)
    maintenance_chance: int = 1000
    queue_prefetch: int = 2
    max_retries: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        _whole("maintenance_chance", self.maintenance_chance, 0)
        if self.maintenance_chance > MAINTENANCE_SCALE:
            raise StrategyError(f"maintenance_chance: {self.maintenance_chance!r} is more than "
                                f"{MAINTENANCE_SCALE} (every command)")
        _whole("queue_prefetch", self.queue_prefetch, 1)
        _whole("max_retries", self.max_retries, 0)

    @property
    def maintenance_wait(self) -> float:
        """Mean seconds from the heartbeat's expiry to the maintenance that requeues the dead
        worker's messages when one idle process polls (inf when maintenance never runs)."""
        if self.maintenance_chance == 0:
            return math.inf
        per_command = self.maintenance_chance / MAINTENANCE_SCALE
        return POLL_FRACTION * self.worker_timeout / per_command

    @property
    def redelivery_delay(self) -> float:
        """Mean seconds from a worker's death to its unacknowledged messages being back in the
        queue when one idle process polls."""
        return self.heartbeat_timeout + self.maintenance_wait

    @property
    def redelivery(self) -> Redeliver:
        """What becomes of a dead process's unacknowledged messages: back at the end of the
        queue at the first maintenance after the heartbeat timeout."""
        return Redeliver(
            after=self.heartbeat_timeout,
            chance=self.maintenance_chance / MAINTENANCE_SCALE,
            poll=POLL_FRACTION * self.worker_timeout,
            end="back",
        )

    @property
    def fetch_batch(self) -> bool:
        # the consumer's fetch pops up to ``prefetch - outstanding`` messages in one script
        return True

    @property
    def notice_every(self) -> float:
        # the sleep restarts at once, so the looks fall on whole seconds from the ready line
        return MAIN_LOOP_SLEEP

    @property
    def term_wait(self) -> float:
        return self.worker_shutdown_timeout

    @property
    def on_timeout(self) -> Outcome:
        # the process exits without acking: the message waits in __acks__ as after a kill
        return self.on_kill

    @property
    def on_kill(self) -> Outcome:
        return self.redelivery

    @property
    def prefetch(self) -> int:
        return self.queue_prefetch - 1

    @property
    def on_exit_reserved(self) -> Outcome:
        return Requeue(0.0, "back")

    @property
    def on_kill_reserved(self) -> Outcome:
        return self.redelivery

    @property
    def exit_time(self) -> float:
        # the worker thread's and the consumers' polls end; the reserved messages go back
        return self.worker_timeout

    @property
    def command_exit_time(self) -> float:
        """Mean seconds the whole ``dramatiq`` command of an idle worker takes to exit after
        SIGTERM (not used by the simulator: the process holds nothing after ``exit_time``)."""
        return EXIT_BASE + EXIT_PER_WORKER_TIMEOUT * self.worker_timeout
