"""A backfill that survives deploys, as an RQ job (``deploysim.strategies.resumable.rq``).

It recomputes one month's totals, one customer at a time, keeping its cursor in a RedisStore.
A SIGTERM to the worker (a deploy) stops it after the customer in hand and puts it back on the
queue; the next worker goes on from the cursor. Needs ``pip install 'deploysim[rq]'`` and a
Redis (``REDIS_URL``, default redis://localhost:6379/0; progress goes to ``STORE_URL``, default
database 3 of the same server). In this folder:

    rq worker --with-scheduler --url "$REDIS_URL" &   # imports this file as rq_backfill
    python rq_backfill.py                             # enqueues the backfill, follows it
    kill -TERM %1                                     # a deploy: "Job interrupted ..."
    rq worker --with-scheduler --url "$REDIS_URL"     # resumes it at its cursor

Run ``python rq_backfill.py`` again once it has finished: the same job id is a no-op.
"""

from __future__ import annotations

import os
import time

from redis import Redis
from rq import Queue

from deploysim.strategies.resumable import IterationJob, enumerators, open_store
from deploysim.strategies.resumable.rq import resumable

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
STORE_URL = os.environ.get("STORE_URL", "redis://localhost:6379/3")


@resumable(store=STORE_URL, job_timeout="1h")  # each run ends 10 s before RQ's timeout
class Backfill(IterationJob):
    """Recompute ``month``'s total of each of ``customers`` customers."""

    def __init__(self, month: str, customers: int) -> None:
        self.month, self.customers = month, customers

    def build_enumerator(self, cursor):  # once a run, in the work horse
        self.totals = Redis.from_url(REDIS_URL)
        return enumerators.int_range(0, self.customers, cursor)

    def each_iteration(self, customer: int) -> None:
        time.sleep(0.05)  # the real work: a query, an API call
        # an upsert, safe to run twice (items since the last checkpoint do after a SIGKILL)
        self.totals.hset(f"totals:{self.month}", customer, customer * 7 % 100)


def main() -> None:
    from rq_backfill import Backfill  # the class the worker imports, not this script's __main__

    queue = Queue(connection=Redis.from_url(REDIS_URL))
    job = Backfill.enqueue(queue, "2026-11", 400, job_id="backfill-2026-11")
    print(f"enqueued {job.id} on {queue.name!r}")
    with open_store(STORE_URL) as store:
        while (status := job.get_status()) != "finished":
            record = store.get(job.id)
            progress = "not started" if record is None else (
                f"{record.status}, {record.items_done} items, cursor {record.cursor}")
            print(f"RQ: {status.value}; store: {progress}")
            time.sleep(1)
    job.refresh()
    print(f"RQ: finished; {job.meta['resumable']}")


if __name__ == "__main__":
    main()
