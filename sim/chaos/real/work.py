"""The work every real system runs: a job of ``items`` items, each a wait of ``item_time`` (the
I/O a real job waits on) and a SHA-256 of its item (its result), recorded in the results
database as it happens.

The records are kept apart from the job system's own bookkeeping (database 1 of the run's
Redis; the systems use database 0), so that the audit can check the system against them:

- ``deploysim:events``, a list of lines ``KIND JOB ... CONTAINER UNIX_TIME``:
  ``S job container t`` when an attempt starts, ``I job item container t`` after each item,
  ``D job container t`` when the job completes; ``R - container t`` when the worker is ready,
  from the system's own start-up hook where it has one that the log line lags behind;
- ``deploysim:items:JOB``, a hash counting the executions of each item;
- ``deploysim:results:JOB``, a hash of each item's result (its digest): the job's effects.

Every line is one RPUSH, so a SIGKILL loses nothing already recorded. The Sidekiq job
(``apps/sidekiq_job.rb``) writes the same lines and keys.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

EVENTS = "deploysim:events"
"""The list of event lines."""


def items_key(job: int) -> str:
    """The hash counting the executions of each of ``job``'s items."""
    return f"deploysim:items:{job}"


def results_key(job: int) -> str:
    """The hash of ``job``'s results, one digest per item."""
    return f"deploysim:results:{job}"


_client: Any = None


def _results() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(os.environ["DEPLOYSIM_RESULTS"])
    return _client


def record_ready() -> None:
    """Record that this container's worker is ready (an ``R`` line)."""
    container = os.environ.get("DEPLOYSIM_CONTAINER", "?")
    _results().rpush(EVENTS, f"R - {container} {time.time():.6f}")


def run_job(job: int, items: int, item_time: float) -> None:
    """Do the work of ``job`` from its first item, recording each step (see the module)."""
    results = _results()
    container = os.environ.get("DEPLOYSIM_CONTAINER", "?")
    results.rpush(EVENTS, f"S {job} {container} {time.time():.6f}")
    for item in range(items):
        time.sleep(item_time)
        digest = hashlib.sha256(f"{job}:{item}".encode()).hexdigest()
        pipe = results.pipeline(transaction=True)
        pipe.hset(results_key(job), str(item), digest)
        pipe.hincrby(items_key(job), str(item), 1)
        pipe.rpush(EVENTS, f"I {job} {item} {container} {time.time():.6f}")
        pipe.execute()
    results.rpush(EVENTS, f"D {job} {container} {time.time():.6f}")
