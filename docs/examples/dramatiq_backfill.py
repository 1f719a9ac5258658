"""A backfill as a resumable Dramatiq actor: stop its worker as a deploy does, start it again,
and the job goes on from its cursor.

With a Redis running (REDIS_URL, default redis://localhost:6379/0: the broker; the progress is
kept in STORE_URL, default redis://localhost:6379/1), start a worker in one terminal:

    dramatiq dramatiq_backfill --path docs/examples --processes 1 --threads 1

and send the job from another, which then shows its progress until it completes:

    python docs/examples/dramatiq_backfill.py

Stop the worker while the job runs (Ctrl-C, or `kill -TERM` to its main process, as a platform
does): the job stops after the item in hand and its message goes back on the queue. Start the
worker again: the job resumes after its last item, and no item runs twice.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from deploysim.strategies.resumable import IterationJob, enumerators
from deploysim.strategies.resumable.dramatiq import resumable_actor

dramatiq.set_broker(RedisBroker(url=os.environ.get("REDIS_URL", "redis://localhost:6379/0")))


@resumable_actor(store_url=os.environ.get("STORE_URL", "redis://localhost:6379/1"),
                 checkpoint_every=1.0, time_limit=600_000)
class Backfill(IterationJob):
    """Goes through the numbers below ``stop``, a tenth of a second each."""

    def __init__(self, stop: int) -> None:
        self.stop = stop

    def build_enumerator(self, cursor):
        return enumerators.int_range(0, self.stop, cursor)

    def each_iteration(self, n: int) -> None:
        time.sleep(0.1)  # the item's work: make it idempotent (it runs again after a SIGKILL)


if __name__ == "__main__":
    message = Backfill.send(300)  # the message's id is the job's id
    print(f"sent job {message.message_id}")
    while (record := Backfill.progress(message)) is None or record.status != "completed":
        if record is not None:
            print(f"{record.status}: cursor {record.cursor}, {record.items_done} items done, "
                  f"{record.interruptions} interruptions")
        time.sleep(2)
    print(f"completed: {record.items_done} items in {record.executions} runs")
