"""The resumable engine inside the real job systems, through its adapters
(``deploysim.strategies.resumable.celery``, ``.rq``, ``.dramatiq``): ``resumable-celery``,
``resumable-rq`` and ``resumable-dramatiq``.

Each runs the real system's workers as its plain adapter does (same broker, same records), with
the work as a resumable job (``work.ResumableWork``) whose progress is kept in a store: database
3 of the run's Redis (setting ``store = "redis"``, the default; effects at-least-once) or a
PostgreSQL server of the run's own (``store = "postgres"``; with ``exactly_once = true`` each
item's effect is a row committed with the cursor). The system is configured the way the
adapter's reference says it must be for a SIGKILLed job to come back soon: Celery with
``acks_late`` and ``reject_on_worker_lost`` (the adapter's defaults), one message prefetched and
a visibility timeout of minutes; RQ with a retry on abandoned jobs and its scheduler; Dramatiq
with a maintenance on every broker command.

The settings' durations are the engine's defaults times the run's scale (a checkpoint every
5 s, a 60 s lease), as the system's own are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from deploysim.strategies.base import Strategy
from deploysim.strategies.resumable_model import Resumable

from ....errors import SimError
from ..work import EFFECTS_SCHEMA, EFFECTS_TABLE
from .base import RunContext, System, WorkerCommand
from .celery import APP as CELERY_APP
from .celery import CelerySystem
from .celery import task_id as celery_task_id
from .dramatiq import APP as DRAMATIQ_APP
from .dramatiq import QUEUE as DRAMATIQ_QUEUE
from .dramatiq import DramatiqSystem
from .rq import QUEUE, RqSystem
from .rq import job_id as rq_job_id

CHECKPOINT_EVERY = 5.0
"""The engine's default seconds between durable checkpoints, before scaling."""

LEASE_TTL = 60.0
"""The engine's default lease, before scaling."""

STORES = ("redis", "postgres")
"""Where a run may keep the jobs' progress."""

RQ_RETRIES = 100
"""RQ's ``Retry(max=...)`` on each job: a killed job comes back as long as it has retries left,
so a run of a hundred SIGKILLs gives each job as many."""

RQ_JOB = "deploysim.sim.chaos.real.apps.resumable_rq_app.Work.perform"
"""The RQ job function of ``resumable-rq``."""

TIMEOUT_MARGIN = 10.0
"""The RQ adapter's margin before ``job_timeout``, before scaling."""

TIME_LIMIT_MARGIN = 10.0
"""The Celery adapter's margin before the time limits and the visibility timeout, before
scaling."""

CELERY_VISIBILITY = 300.0
"""The visibility timeout of ``resumable-celery``, before scaling (kombu's default: 3600 s)."""

RESUMABLE_CELERY_APP = "deploysim.sim.chaos.real.apps.resumable_celery_app"
"""The Celery app of ``resumable-celery``'s workers."""

RESUMABLE_DRAMATIQ_APP = "deploysim.sim.chaos.real.apps.resumable_dramatiq_app"
"""The Dramatiq module of ``resumable-dramatiq``'s workers."""

DRAMATIQ_ACTOR = "resumable_job"
"""Its actor's name: the harness enqueues plain messages to it, without the module (whose
actor needs the run's store to be declared)."""


def store_job_id(job: int) -> str:
    """Job ``job``'s id in the store: the system's own job id (Celery's task id, RQ's job id;
    for Dramatiq, whose message ids are random, the actor's ``job_id``)."""
    return f"deploysim-{job}"


class ResumableSystem(System):
    """What the three resumable systems share: the store, the engine's settings, the model and
    the exactly-once effects. A subclass also derives from the plain system it runs on."""

    resumes: ClassVar[bool] = True

    def engine_settings(self, scale: float) -> dict[str, Any]:
        """The engine's settings for a run at ``scale``."""
        return {"store": "redis", "exactly_once": False,
                "checkpoint_every": CHECKPOINT_EVERY * scale, "lease_ttl": LEASE_TTL * scale}

    def configure(self, settings: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        out = super().configure(settings, overrides)
        if out["store"] not in STORES:
            raise SimError(f"--store: {out['store']!r} is not one of {', '.join(STORES)}")
        if out["exactly_once"] and out["store"] != "postgres":
            raise SimError("--exactly-once needs --store postgres: effects commit with the "
                           "cursor only in a database transaction (Redis keeps them at least "
                           "once)")
        if not 0 < out["checkpoint_every"] <= out["lease_ttl"] / 2:
            raise SimError(f"--setting checkpoint_every: {out['checkpoint_every']!r} must be > 0 "
                           f"and at most half of lease_ttl ({out['lease_ttl']!r})")
        return out

    def redelivery(self, settings: dict[str, Any]) -> float:
        """Seconds from a SIGKILL to the system's redelivery of the job in hand."""
        raise NotImplementedError

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        # a killed job runs again once the system has redelivered it and its lease has expired
        # (a redelivery before that finds it busy and comes back when the lease is up)
        return Resumable(checkpoint_every=settings["checkpoint_every"],
                         lease_ttl=max(settings["lease_ttl"], self.redelivery(settings)))

    def prepare(self, ctx: RunContext) -> None:
        """Before the jobs are enqueued: the effects table, in exactly-once mode."""
        if not ctx.settings["exactly_once"]:
            return
        import psycopg

        with psycopg.connect(ctx.store_url, autocommit=True) as connection:
            connection.execute(EFFECTS_SCHEMA)

    def stored_completions(self, ctx: RunContext) -> set[int]:
        """The jobs the store has as completed. The job's ``D`` line follows its durable
        completion (``on_complete``, which runs at most once): a kill between the two leaves a
        completed job with no line, and its next delivery finds it completed and runs nothing."""
        from deploysim.strategies.resumable import open_store

        with open_store(ctx.store_url) as store:
            records = store.jobs()
        return {int(r.job_id.rsplit("-", 1)[1]) for r in records
                if r.status == "completed" and r.job_id.rsplit("-", 1)[-1].isdigit()}

    def effects(self, ctx: RunContext) -> dict[int, dict[int, int]] | None:
        """In exactly-once mode, the committed effects by job and item; else None (each item's
        record is its effect)."""
        if not ctx.settings["exactly_once"]:
            return None
        import psycopg

        out: dict[int, dict[int, int]] = defaultdict(dict)
        with psycopg.connect(ctx.store_url, autocommit=True) as connection:
            for job, item, n in connection.execute(
                    f"SELECT job, item, count(*) FROM {EFFECTS_TABLE} GROUP BY job, item"):
                out[job][item] = n
        return dict(out)


class ResumableRqSystem(ResumableSystem, RqSystem):
    """The engine in RQ 3.0's work horses (``@resumable`` of ``.rq``): a warm shutdown stops the
    job after its item and it goes back to the queue; a killed job, left started, is retried by
    RQ's maintenance once abandoned, from the last checkpoint."""

    name = "resumable-rq"
    summary = ("RQ worker with the resumable adapter: a warm shutdown re-enqueues the job at "
               "its cursor; a killed one comes back as abandoned and resumes")
    model = "resumable"

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        return {**super().settings(scale, grace), **self.engine_settings(scale),
                "retry": RQ_RETRIES, "timeout_margin": TIMEOUT_MARGIN * scale}

    def redelivery(self, settings: dict[str, Any]) -> float:
        return (settings["heartbeat_slack"] + settings["job_monitoring_interval"]
                + settings["maintenance_interval"] / 2)

    def enqueue(self, ctx: RunContext) -> None:
        from rq import Queue, Retry

        self.prepare(ctx)
        connection = self._connection(ctx)
        try:
            queue = Queue(QUEUE, connection=connection)
            # by the job function's path, as Work.enqueue does: the class here is built with
            # this process's settings, not the run's, which the work horses read
            for job in range(ctx.jobs):
                queue.enqueue(RQ_JOB, job, ctx.items, ctx.item_time, job_id=rq_job_id(job),
                              job_timeout=int(ctx.settings["job_timeout"]),
                              retry=Retry(max=int(ctx.settings["retry"])))
        finally:
            connection.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        command = super().worker(ctx, slot, life)
        # the scheduler brings back a delivery that found the job busy, after the lease
        return WorkerCommand(argv=[*command.argv[:-1], "--with-scheduler", command.argv[-1]],
                             env=command.env, cwd=command.cwd)


class ResumableCelerySystem(ResumableSystem, CelerySystem):
    """The engine in Celery 5.7's prefork pool (``ResumableTask`` of ``.celery``): the warm
    shutdown stops the job after its item and the task is sent again to the back under its id;
    with ``acks_late`` and ``reject_on_worker_lost`` (the adapter's defaults) a killed task is
    delivered again once the visibility timeout is up, and resumes from the last checkpoint."""

    name = "resumable-celery"
    summary = ("Celery worker (prefork) with the resumable adapter: a warm shutdown re-sends "
               "the task at its cursor; a killed one comes back after the visibility timeout")
    model = "resumable"
    acks_late = True

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        # as the adapter's reference advises: one message prefetched, and a visibility timeout
        # of minutes, not an hour, so that a killed task comes back soon
        return {**super().settings(scale, grace), **self.engine_settings(scale),
                "prefetch_multiplier": 1, "visibility_timeout": CELERY_VISIBILITY * scale,
                "time_limit_margin": TIME_LIMIT_MARGIN * scale}

    def cautions(self, settings: dict[str, Any], grace: float) -> list[str]:
        # docs/real-systems.md: an idle worker in warm shutdown keeps a BRPOP blocked in Redis
        # for up to a second after it stops consuming, and only its channel's close, at about
        # its exit, gives back a message that BRPOP took; the tasks sent again at a deploy
        # meet exactly those BRPOPs
        if grace < settings["exit_time"]:
            return [f"--grace {grace:g}s is shorter than an idle {settings['pool']} worker's "
                    f"exit ({settings['exit_time']:g} s, unscaled): a task sent again during a "
                    f"deploy can be taken by a stopping worker's last BRPOP and lost at the "
                    f"SIGKILL; a real grace (30 s) covers it: use --grace 3s or more"]
        return []

    def redelivery(self, settings: dict[str, Any]) -> float:
        return (settings["visibility_timeout"]
                + settings["unacked_restore_interval"] * settings["unacked_restore_throttle"] / 2)

    def enqueue(self, ctx: RunContext) -> None:
        from ..apps.resumable_celery_app import TASK, make_app

        self.prepare(ctx)
        app = make_app(ctx.broker_url, ctx.settings, ctx.results_url, ctx.store_url)
        try:
            task = app.tasks[TASK]
            for job in range(ctx.jobs):
                task.apply_async((job, ctx.items, ctx.item_time), task_id=celery_task_id(job))
        finally:
            app.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        command = super().worker(ctx, slot, life)
        argv = [RESUMABLE_CELERY_APP if arg == CELERY_APP else arg for arg in command.argv]
        return WorkerCommand(argv=argv, env=command.env, cwd=command.cwd)


class ResumableDramatiqSystem(ResumableSystem, DramatiqSystem):
    """The engine in Dramatiq 2.2's worker threads (``resumable_actor`` of ``.dramatiq``): the
    worker process's shutdown stops the job after its item and the same message goes back to
    the queue; a killed worker's message comes back at a maintenance once its heartbeat has
    expired, and resumes from the last checkpoint."""

    name = "resumable-dramatiq"
    summary = ("Dramatiq worker with the resumable adapter: the shutdown re-enqueues the message "
               "at its cursor; a killed one is redelivered and resumes")
    model = "resumable"

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        # as the adapter's reference advises: a maintenance on every broker command, so that a
        # killed worker's message comes back once its heartbeat has expired
        return {**super().settings(scale, grace), **self.engine_settings(scale),
                "maintenance_chance": 1_000_000}

    def redelivery(self, settings: dict[str, Any]) -> float:
        return settings["heartbeat_timeout"] / 1000.0

    def enqueue(self, ctx: RunContext) -> None:
        from dramatiq import Message

        from ..apps import dramatiq_app

        self.prepare(ctx)
        broker = dramatiq_app.make_broker(ctx.broker_url, ctx.settings)
        try:
            for job in range(ctx.jobs):
                broker.enqueue(Message(queue_name=DRAMATIQ_QUEUE, actor_name=DRAMATIQ_ACTOR,
                                       args=(job, ctx.items, ctx.item_time), kwargs={},
                                       options={}))
        finally:
            broker.close()
            broker.client.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        command = super().worker(ctx, slot, life)
        argv = [RESUMABLE_DRAMATIQ_APP if arg == DRAMATIQ_APP else arg for arg in command.argv]
        return WorkerCommand(argv=argv, env=command.env, cwd=command.cwd)
