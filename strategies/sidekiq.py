"""Sidekiq OSS (8.1; 6.4.1 run for real) shutdown, after the "Sidekiq OSS" row and the "Seen on
real systems" section of docs/semantics.md.

On TERM Sidekiq stops fetching and gives the jobs in hand ``timeout`` seconds (default 25; 8 before
6.0; the command line's ``-t`` takes whole seconds). A job still running then is pushed back to
the FRONT of its queue, to start over from scratch on the next fetch; that is not counted as a
retry, and any side effects it already had stay (at-least-once). On SIGKILL, a crash or an OOM
kill, basic fetch loses the job for good; Sidekiq Pro's super_fetch (``fetch = "reliable"``)
recovers it from the dead process's private queue once its heartbeat (60 s) has expired, at a
start-up check that runs at most once an hour, so it runs twice.

The deadline is kept by polling: after TERM the manager sleeps ``shutdown_poll`` (Sidekiq's
``PAUSE_TIME``: 0.5 s when its output is not a terminal, 0.1 s when it is), then looks every
``shutdown_poll`` whether its threads are done and stops waiting at the last look that leaves
less than ``shutdown_poll`` before the deadline. So a job in hand really gets ``timeout - 0.5``
seconds (24.5 s of the 25; 0.5 s of ``-t 1``), and the process exits one poll after the requeue,
``timeout`` seconds after TERM (6.4.1: 3.02 s with ``-t 3``, 1.02 s with ``-t 1``). The default
``shutdown_poll`` of 0 keeps the timeout exact, as the documentation states it: half a second of
25 changes little. The real-systems runs set Sidekiq's 0.5, which matters when ``-t`` is a
second or two. An idle process exits once its blocking fetch (``BRPOP``, 2 s)
returns: 0.5 to 2 s after TERM (1.4 s on average with 6.4.1), never later than the timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Front, Lose, Outcome, Recover, Requeue, Strategy, choice_param, duration_field

PAUSE_TIME = 0.5
"""Sidekiq's shutdown poll (``PAUSE_TIME`` of ``lib/sidekiq/util.rb`` in 6.4, of the manager's
component in 7 and 8) when its output is not a terminal, seconds; a constant of the code."""

FETCH_TIMEOUT = 2.0
"""``BasicFetch::TIMEOUT``: seconds an idle thread blocks on ``BRPOP`` before it looks whether
the process is stopping; a constant of the code."""


@dataclass(frozen=True)
class Sidekiq(Strategy):
    """Timeout, then re-queue from scratch; basic fetch loses killed jobs."""

    name = "sidekiq"
    summary = "Sidekiq: 25 s timeout, then back to the front from scratch; SIGKILL loses it"

    timeout: float = duration_field(25.0)
    requeue: Front = "front"
    fetch: str = "basic"
    heartbeat_ttl: float = duration_field(60.0)
    recovery_every: float = duration_field(3600.0)
    shutdown_poll: float = duration_field(0.0)  # 0: the timeout exact; real Sidekiq's is 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("requeue", choice_param("requeue", self.requeue, ("front", "back")))
        self._set("fetch", choice_param("fetch", self.fetch, ("basic", "reliable")))

    @property
    def term_wait(self) -> float:
        """The time the job in hand gets: up to the manager's last look before the deadline
        (``shutdown_poll`` at the least, the first look coming after a sleep of one poll)."""
        poll = self.shutdown_poll
        if poll <= 0 or math.isinf(self.timeout):
            return self.timeout
        looks = math.ceil(self.timeout / poll - 1 - 1e-9)
        return poll * max(1, looks)

    @property
    def on_timeout(self) -> Outcome:
        return Requeue(end=self.requeue, restart=True)

    @property
    def on_kill(self) -> Outcome:
        if self.fetch == "reliable":
            return Recover(self.heartbeat_ttl, self.recovery_every)
        return Lose("SIGKILL with basic fetch")

    @property
    def exit_time(self) -> float:
        """One poll: the time from a requeue at the timeout to the exit, and at most the time
        from the last job's end to it. An idle process takes longer (up to ``FETCH_TIMEOUT``
        plus a poll), which this leaves out."""
        return self.shutdown_poll
