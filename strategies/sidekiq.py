"""Sidekiq OSS (8.1) shutdown, after the "Sidekiq OSS" row of docs/semantics.md.

On TERM Sidekiq stops fetching and gives the jobs in hand ``timeout`` seconds (default 25; 8 before
6.0). A job still running then is pushed back to the FRONT of its queue, to start over from
scratch on the next fetch; that is not counted as a retry, and any side effects it already had
stay (at-least-once). On SIGKILL, a crash or an OOM kill, basic fetch loses the job for good;
Sidekiq Pro's super_fetch (``fetch = "reliable"``) recovers it from the dead process's private
queue once its heartbeat (60 s) has expired, at a start-up check that runs at most once an
hour, so it runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Front, Lose, Outcome, Recover, Requeue, Strategy, choice_param, duration_field


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

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("requeue", choice_param("requeue", self.requeue, ("front", "back")))
        self._set("fetch", choice_param("fetch", self.fetch, ("basic", "reliable")))

    @property
    def term_wait(self) -> float:
        return self.timeout

    @property
    def on_timeout(self) -> Outcome:
        return Requeue(end=self.requeue, restart=True)

    @property
    def on_kill(self) -> Outcome:
        if self.fetch == "reliable":
            return Recover(self.heartbeat_ttl, self.recovery_every)
        return Lose("SIGKILL with basic fetch")

