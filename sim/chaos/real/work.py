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

``ResumableWork`` is the same work as a job of the resumable engine, run by a job system's
adapter: an attempt (an ``S`` line) is a run that took the job's lease, and it starts at the
item after the stored cursor. In exactly-once mode each item's effect is a row of
``EFFECTS_TABLE`` in the run's PostgreSQL, written through the store's connection, so that it
commits with the cursor; the ``I`` lines and the execution counts are still written at once,
since they record executions, not effects.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from typing import Any

from deploysim.strategies.resumable import IterationJob, enumerators, local_store

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


STORE_ENV = "DEPLOYSIM_STORE_URL"
"""The worker's environment variable that names the run's store (the adapters read it too)."""

EFFECTS_TABLE = "deploysim_effects"
"""The table of exactly-once effects in the run's PostgreSQL: one row per committed item."""

EFFECTS_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} "
                  f"(job integer NOT NULL, item integer NOT NULL, digest text NOT NULL)")
"""No key on (job, item): a duplicate effect must show, not be refused."""


def _digest(job: int, item: int) -> str:
    return hashlib.sha256(f"{job}:{item}".encode()).hexdigest()


def run_job(job: int, items: int, item_time: float) -> None:
    """Do the work of ``job`` from its first item, recording each step (see the module)."""
    results = _results()
    container = os.environ.get("DEPLOYSIM_CONTAINER", "?")
    results.rpush(EVENTS, f"S {job} {container} {time.time():.6f}")
    for item in range(items):
        time.sleep(item_time)
        digest = _digest(job, item)
        pipe = results.pipeline(transaction=True)
        pipe.hset(results_key(job), str(item), digest)
        pipe.hincrby(items_key(job), str(item), 1)
        pipe.rpush(EVENTS, f"I {job} {item} {container} {time.time():.6f}")
        pipe.execute()
    results.rpush(EVENTS, f"D {job} {container} {time.time():.6f}")


class ResumableWork(IterationJob):
    """``run_job``'s work as a resumable job: job ``job`` of ``items`` items, each a wait of
    ``item_time`` and a digest. ``exactly_once``: effects committed with the cursor through the
    connection of the store at ``store_url`` (default: ``$DEPLOYSIM_STORE_URL``, which the
    harness sets for the workers), a PostgreSQL one; else written at once."""

    def __init__(self, job: int, items: int, item_time: float, *, exactly_once: bool = False,
                 store_url: str | None = None) -> None:
        self.job, self.items, self.item_time = job, items, item_time
        self.exactly_once = exactly_once
        self.store_url = store_url or os.environ.get(STORE_ENV, "")
        self.container = os.environ.get("DEPLOYSIM_CONTAINER", "?")

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        return enumerators.int_range(0, self.items, cursor=cursor)

    def _started(self) -> None:
        _results().rpush(EVENTS, f"S {self.job} {self.container} {time.time():.6f}")

    on_start = _started
    on_resume = _started

    def each_iteration(self, item: int) -> None:
        time.sleep(self.item_time)
        digest = _digest(self.job, item)
        pipe = _results().pipeline(transaction=True)
        if self.exactly_once:
            local_store(self.store_url).connection.execute(
                f"INSERT INTO {EFFECTS_TABLE} (job, item, digest) VALUES (%s, %s, %s)",
                (self.job, item, digest))
        else:
            pipe.hset(results_key(self.job), str(item), digest)
        pipe.hincrby(items_key(self.job), str(item), 1)
        pipe.rpush(EVENTS, f"I {self.job} {item} {self.container} {time.time():.6f}")
        pipe.execute()

    def on_complete(self) -> None:
        _results().rpush(EVENTS, f"D {self.job} {self.container} {time.time():.6f}")
