"""A backfill that survives deploys, as a Celery task: on the worker's SIGTERM it stops after the
row in hand, checkpoints, and goes back to the queue; the next worker resumes at the next row.

Needs a Redis (``REDIS_URL``, default ``redis://localhost:6379``: database 0 is the broker,
database 3 keeps the progress). From this folder:

    celery -A celery_backfill worker --loglevel INFO     # a worker
    python celery_backfill.py 300                        # send a backfill of 300 rows

Stop the worker mid-job with SIGTERM (``kill PID``; Ctrl+C is a warm shutdown too): it logs
``interrupted at cursor N`` and exits at once. Start it again: it logs ``resumed job ... (cursor
N)`` and carries on from row N + 1. See docs/adapter-celery.md.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from celery import Celery

from deploysim.strategies.resumable import IterationJob, enumerators
from deploysim.strategies.resumable.celery import ResumableTask

REDIS = os.environ.get("REDIS_URL", "redis://localhost:6379")

app = Celery("celery_backfill", broker=f"{REDIS}/0")
app.conf.resumable_store_url = f"{REDIS}/3"


class Backfill(IterationJob):
    """Rows 0 .. rows - 1, one at a time; the cursor is the last row done."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def build_enumerator(self, cursor: Any) -> Any:
        return enumerators.int_range(0, self.rows, cursor)

    def each_iteration(self, row: int) -> None:
        time.sleep(0.05)  # the row's work: make it idempotent (an upsert), it may run twice


@app.task(base=ResumableTask)
def backfill(rows: int) -> Backfill:
    """Celery's task: builds the job from the task's arguments; ResumableTask runs it."""
    return Backfill(rows)


if __name__ == "__main__":
    result = backfill.delay(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(f"sent backfill as task {result.id}")
