"""RQ (3.0) shutdown, after the "RQ" rows of docs/semantics.md.

TERM (or INT) is a warm shutdown with no limit of its own: the worker stops taking jobs and waits
for its work horse to finish the job in hand. A cold shutdown needs a second signal at least a
second later, which a platform never sends, so the platform's SIGKILL of the whole container is
what ends a long job. The job is then left STARTED in the queue's ``StartedJobRegistry``, under a
score its worker's heartbeat kept pushing forward: the last heartbeat plus
``min(job_timeout, job_monitoring_interval)`` plus 60 s (a constant of RQ's worker, not a
setting). Only once that score has passed does a maintenance pass (``clean_registries``) take it
out: it fails with ``AbandonedJobError`` into the ``FailedJobRegistry``, or, if it was enqueued
with ``Retry(max=n)`` and has retries left, goes back to the end of its queue. A pass runs when a
worker starts and then, per worker, once ``maintenance_interval`` (600 s) has passed since its
last one, at the top of its loop (between jobs, or when an idle wait of ``worker_ttl - 15`` s
ends).

A job running longer than ``job_timeout`` (180 s) is stopped by the horse's alarm and fails.
RQ has no retries unless a job is enqueued with ``Retry``. A worker takes one job at a time and
reserves nothing. Once it has no job in hand a worker exits after SIGTERM in 0.1 to 0.4 s, or,
about one time in three, 1 s later: it waits up to 1 s for its pub/sub thread, which may have gone
back to a 60 s read (``exit_time``, the mean, is a property of the process, not scaled).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import (
    DURATION,
    KEY,
    Fail,
    Outcome,
    Requeue,
    Strategy,
    StrategyError,
    duration_field,
)

HEARTBEAT_SLACK = 60.0
"""Seconds RQ 3.0's worker adds to every heartbeat of a job's ``StartedJobRegistry`` entry
(``Worker.get_heartbeat_ttl``); a constant of the code, not a setting."""

EXIT_TIME = 0.1
"""Seconds an ``rq worker`` with no job in hand takes to exit after SIGTERM (RQ 3.0, redis-py
8.1): 0.06 to 0.12 s on a quiet machine, in trials and in the calibration's runs (from a job's
end to the exit); on a loaded 2-core machine 0.17 to 1.59 s (mean 0.6 s over 40 trials), when
its pub/sub thread is slow to wake."""


@dataclass(frozen=True)
class Rq(Strategy):
    """Warm shutdown waits; SIGKILL leaves the job started until a maintenance pass fails it."""

    name = "rq"
    summary = "RQ: warm shutdown waits; SIGKILL leaves the job started, failed later as abandoned"

    job_timeout: float = duration_field(180.0)
    job_monitoring_interval: float = duration_field(30.0)
    maintenance_interval: float = duration_field(600.0)
    heartbeat_slack: float = duration_field(HEARTBEAT_SLACK)
    retry: int = 0
    #: the parameter ``exit_time`` (the name of the field is the property ``exit_time``'s)
    exit_seconds: float = dataclasses.field(
        default=EXIT_TIME, metadata={DURATION: True, KEY: "exit_time"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0:
            raise StrategyError(f"retry: {self.retry!r} is not a whole number >= 0 (Retry(max=n))")
        super().__post_init__()

    @property
    def abandon_delay(self) -> float:
        """Expected seconds from the kill to the maintenance pass that settles the job.

        The entry expires ``heartbeat_slack`` plus up to one monitoring interval after the kill
        (the last heartbeat came up to one interval before it): on average ``heartbeat_slack +
        interval / 2``. The next pass comes at most ``maintenance_interval`` later, on average
        half of it for a worker whose schedule is out of phase with the kill. A worker starting
        after the entry expired settles it sooner: a fleet restarted often is faster than this.
        """
        beat = min(self.job_timeout, self.job_monitoring_interval)
        return self.heartbeat_slack + beat / 2 + self.maintenance_interval / 2

    @property
    def on_kill(self) -> Outcome:
        if self.retry:
            return Requeue(delay=self.abandon_delay, end="back", restart=True)
        return Fail("AbandonedJobError", delay=self.abandon_delay)

    @property
    def on_timeout(self) -> Outcome:
        # term_wait is unlimited: no timeout ever comes; if one did, it would be a kill
        return self.on_kill

    @property
    def run_limit(self) -> float:
        """The horse's alarm stops a job after ``job_timeout`` and the job fails."""
        return self.job_timeout

    @property
    def exit_time(self) -> float:
        return self.exit_seconds
