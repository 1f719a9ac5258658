"""RQ 3.0 as the harness runs it: ``rq worker`` (the default ``Worker``, which forks a work horse
per job) on the run's Redis, one queue ``default``, jobs enqueued with RQ's own ``Queue.enqueue``
by the dotted path of ``run_job``.

Each container runs one worker process (RQ has no concurrency setting: one job at a time). Its
duration settings are RQ's defaults times the run's scale, whole seconds as RQ's command line
takes them: ``--worker-ttl``, ``--maintenance-interval``, ``--job-monitoring-interval`` and the
job's ``job_timeout``. The 60 s RQ adds to every heartbeat of a started job is a constant of its
code and cannot be scaled: in a compressed run a killed job stays in ``StartedJobRegistry`` for
60 run-seconds at least, which the model is told (``heartbeat_slack``); so is the time the process
takes to exit after SIGTERM with no job in hand (``exit_time``), which no setting changes.

The records read at the end are RQ's own keys, read without RQ's registry clean-up (reading
them must not act as a maintenance pass): the queue, its intermediate list and
``StartedJobRegistry`` (held), ``ScheduledJobRegistry`` (retry), ``FailedJobRegistry`` (failed).
"""

from __future__ import annotations

import sys
from typing import Any

from deploysim.strategies.base import Strategy
from deploysim.strategies.rq import EXIT_TIME, HEARTBEAT_SLACK, Rq

from .base import RunContext, System, WorkerCommand

QUEUE = "default"
"""The one queue of a run."""

JOB_FUNC = "deploysim.sim.chaos.real.work.run_job"
"""What the work horse imports and calls."""

#: RQ 3.0's defaults (rq/defaults.py and the job timeout of rq/queue.py), seconds.
WORKER_TTL = 420
MAINTENANCE_INTERVAL = 600
JOB_MONITORING_INTERVAL = 30
JOB_TIMEOUT = 180

MIN_WORKER_TTL = 16
"""The smallest worker TTL used: RQ blocks on the queue for ``worker_ttl - 15`` seconds (at
least 1) and times its Redis socket out 10 s after that."""


def job_id(job: int) -> str:
    """The RQ job id of deploysim's job ``job``."""
    return f"deploysim-{job}"


def _job_number(rq_id: str) -> int | None:
    prefix = "deploysim-"
    if not rq_id.startswith(prefix):
        return None
    number = rq_id[len(prefix):].split(":", 1)[0]  # StartedJobRegistry: "<job id>:<execution>"
    return int(number) if number.isdigit() else None


def _seconds(value: float, least: int = 1) -> int:
    """A scaled duration as the whole seconds RQ takes."""
    return max(least, round(value))


class RqSystem(System):
    """RQ 3.0 with ``rq worker`` (forking work horse) on Redis."""

    name = "rq"
    distribution = "rq"
    summary = "RQ worker: warm shutdown waits; a killed job stays started until abandoned"
    model = "rq"
    ready = r"\*\*\* Listening on"
    modules = ("rq", "redis")
    extra = "rq"

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        return {
            "worker_ttl": _seconds(WORKER_TTL * scale, MIN_WORKER_TTL),
            "maintenance_interval": _seconds(MAINTENANCE_INTERVAL * scale),
            "job_monitoring_interval": _seconds(JOB_MONITORING_INTERVAL * scale),
            "job_timeout": _seconds(JOB_TIMEOUT * scale),
            "heartbeat_slack": HEARTBEAT_SLACK,  # fixed in RQ's code: not scaled
            "exit_time": EXIT_TIME,  # how long the process takes to exit: not scaled either
            "retry": 0,
        }

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        return Rq(
            job_timeout=settings["job_timeout"],
            job_monitoring_interval=settings["job_monitoring_interval"],
            maintenance_interval=settings["maintenance_interval"],
            heartbeat_slack=settings["heartbeat_slack"],
            retry=settings["retry"],
            exit_seconds=settings["exit_time"],
        )

    def _connection(self, ctx: RunContext) -> Any:
        import redis

        return redis.Redis.from_url(ctx.broker_url)

    def enqueue(self, ctx: RunContext) -> None:
        from rq import Queue, Retry

        connection = self._connection(ctx)
        try:
            queue = Queue(QUEUE, connection=connection)
            retries = int(ctx.settings.get("retry", 0))
            for job in range(ctx.jobs):
                queue.enqueue(
                    JOB_FUNC, args=(job, ctx.items, ctx.item_time), job_id=job_id(job),
                    job_timeout=int(ctx.settings["job_timeout"]),
                    retry=Retry(max=retries) if retries else None,
                )
        finally:
            connection.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        s = ctx.settings
        argv = [
            sys.executable, "-m", "rq.cli", "worker", "--url", ctx.broker_url,
            "--name", f"deploysim-{slot}.{life}",  # a dead worker's name stays registered
            "--worker-ttl", str(s["worker_ttl"]),
            "--maintenance-interval", str(s["maintenance_interval"]),
            "--job-monitoring-interval", str(s["job_monitoring_interval"]),
            QUEUE,
        ]
        return WorkerCommand(argv=argv)

    def bookkeeping(self, ctx: RunContext) -> dict[int, str]:
        from rq.defaults import RQ_KEY_PREFIX

        keys = {
            "queued": f"{RQ_KEY_PREFIX}:queue:{QUEUE}",
            "intermediate": f"{RQ_KEY_PREFIX}:queue:{QUEUE}:intermediate",
            "started": f"{RQ_KEY_PREFIX}:wip:{QUEUE}",
            "scheduled": f"{RQ_KEY_PREFIX}:scheduled:{QUEUE}",
            "failed": f"{RQ_KEY_PREFIX}:failed:{QUEUE}",
        }
        connection = self._connection(ctx)
        try:
            pipe = connection.pipeline(transaction=True)
            pipe.lrange(keys["queued"], 0, -1)
            pipe.lrange(keys["intermediate"], 0, -1)
            for key in ("started", "scheduled", "failed"):
                pipe.zrange(keys[key], 0, -1)
            queued, intermediate, started, scheduled, failed = pipe.execute()
        finally:
            connection.close()
        where: dict[int, str] = {}
        # later records win: a job is in one place, except for the moments between two writes
        for place, ids in (("queued", queued), ("held", intermediate), ("held", started),
                           ("retry", scheduled), ("failed", failed)):
            for raw in ids:
                number = _job_number(raw.decode())
                if number is not None:
                    where[number] = place
        return where
