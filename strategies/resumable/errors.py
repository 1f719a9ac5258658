"""The errors of the resumable engine. Every one is a ``ResumableError``, so one ``except``
clause catches whatever the engine refuses; the subclasses name the lease problems a worker
handles on its own (skip the job, or stop running it)."""

from __future__ import annotations


class ResumableError(Exception):
    """Raised for every problem the engine detects: bad cursors, bad store rows, stale leases,
    missing or changed input files. The message names the job and the value at fault."""


class StaleLeaseError(ResumableError):
    """A runner tried to write under a lease generation that another runner has replaced."""


class StopRequestedError(ResumableError):
    """A store stopped waiting for a locked database because its ``should_stop`` callable said
    a stop was requested (a SIGTERM during a deploy, say). Nothing was written: what was stored
    before stays as it was, and the runner should end the run as interrupted."""


class LeaseHeldError(ResumableError):
    """A runner asked for a job whose lease another owner still holds: that owner is running it
    (or died less than a lease's length ago). ``job_id``, ``holder`` (the owner), ``seconds_left``
    (until the lease expires) and ``generation`` (the lease's fencing token) say which."""

    def __init__(self, job_id: str, holder: str, seconds_left: float, generation: int) -> None:
        self.job_id = job_id
        self.holder = holder
        self.seconds_left = seconds_left
        self.generation = generation
        super().__init__(
            f"job {job_id!r} is leased by {holder!r} for another {_seconds(seconds_left)} s "
            f"(generation {generation}); run it once that lease has expired or been released"
        )

    def __reduce__(self) -> tuple[type[LeaseHeldError], tuple[str, str, float, int]]:
        return type(self), (self.job_id, self.holder, self.seconds_left, self.generation)


def _seconds(seconds: float) -> str:
    """``51`` for 51.2, ``2.5`` for 2.5, ``0.25`` for a quarter second: no exponent."""
    if seconds >= 10:
        return f"{seconds:.0f}"
    return f"{seconds:.2f}".rstrip("0").rstrip(".")
