"""Celery 5.7 as the harness runs it: ``celery worker`` with its default prefork pool, one pool
process per container (``-c 1``), on the run's Redis through kombu's Redis transport; jobs sent
with the task's own ``apply_async`` under the task ids ``deploysim-<job>``.

Two ``--system`` names: ``celery`` (Celery's default, a task is acknowledged when it starts) and
``celery-acks-late`` (``task_acks_late``: acknowledged when it ends). Everything else is
Celery's and kombu's defaults, with every real-world duration among them times the run's scale:
the ``visibility_timeout`` (3600 s), the period of the sweep that redelivers expired
unacknowledged messages (``unacked_restore_interval``, 10 s; the sweep scans Redis on every
``unacked_restore_throttle``-th tick, 10, a count) and the lock that sweep takes (300 s).
``worker_soft_shutdown_timeout`` is 0, as by default. The time an idle worker takes to exit
after SIGTERM is a cost of the process, not a setting: the model is given the measured one,
unscaled.

The records read at the end are kombu's own keys, read as they are (a read must not act as a
restore): the ``celery`` list (queued), the ``unacked`` hash (held: delivered to a worker and not
acknowledged, waiting for a sweep) and the FAILURE results in the result backend (failed).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

from deploysim.strategies.base import Strategy
from deploysim.strategies.celery import EXIT_TIME, Celery

from ....errors import SimError
from .base import RunContext, System, WorkerCommand

APP = "deploysim.sim.chaos.real.apps.celery_app"
"""The module the worker loads with ``-A``."""

QUEUE = "celery"
"""Celery's default queue, the one list of a run (no task priorities)."""

#: Celery 5.7's and kombu 5.7's defaults (celery/app/defaults.py, kombu/transport/redis.py).
VISIBILITY_TIMEOUT = 3600.0
UNACKED_RESTORE_INTERVAL = 10.0
UNACKED_RESTORE_THROTTLE = 10
UNACKED_MUTEX_EXPIRE = 300.0
PREFETCH_MULTIPLIER = 4
POOL = "prefork"


def task_id(job: int) -> str:
    """The Celery task id of deploysim's job ``job``."""
    return f"deploysim-{job}"


def _job_number(celery_id: str) -> int | None:
    prefix = "deploysim-"
    number = celery_id[len(prefix):] if celery_id.startswith(prefix) else ""
    return int(number) if number.isdigit() else None


def _message_id(raw: bytes) -> int | None:
    """The job of a kombu message as it is stored in Redis (protocol 2: the id in headers)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if isinstance(message, list):  # the unacked hash: [message, exchange, routing key]
        message = message[0]
    headers = message.get("headers") or {}
    return _job_number(str(headers.get("id", "")))


class CelerySystem(System):
    """Celery 5.7 with the prefork pool on Redis; tasks acknowledged when they start."""

    name = "celery"
    distribution = "celery"
    summary = "Celery worker (prefork, acks at start): warm shutdown waits; SIGKILL loses the task"
    model = "celery"
    ready = r"@\S+ ready\."
    modules = ("celery", "kombu", "redis", "packaging")
    extra = "celery"
    acks_late: ClassVar[bool] = False

    def missing(self) -> str | None:
        # kombu swaps its module in sys.modules for one whose __spec__ is None, on which
        # find_spec raises: a module already imported is present
        absent = [m for m in self.modules
                  if m not in sys.modules and importlib.util.find_spec(m) is None]
        if absent:
            return f"{self.name} needs {', '.join(absent)}: pip install 'deploysim[celery]'"
        return None

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "acks_late": self.acks_late,
            "pool": POOL,
            "prefetch_multiplier": PREFETCH_MULTIPLIER,
            "soft_shutdown_timeout": 0.0,
            "exit_time": EXIT_TIME[POOL],  # measured, not scaled
        }
        if self.broker == "redis":  # kombu's Redis transport, and 5.7's Redis-only option
            settings.update({
                "disable_prefetch": False,
                "visibility_timeout": VISIBILITY_TIMEOUT * scale,
                "unacked_restore_interval": UNACKED_RESTORE_INTERVAL * scale,
                "unacked_restore_throttle": UNACKED_RESTORE_THROTTLE,
                "unacked_mutex_expire": UNACKED_MUTEX_EXPIRE * scale,
            })
        return settings

    def configure(self, settings: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        out = super().configure(settings, overrides)
        if out["pool"] not in EXIT_TIME:
            raise SimError(f"--setting pool: {out['pool']!r} is not one of "
                           f"{', '.join(EXIT_TIME)}")
        if "exit_time" not in overrides:  # another pool exits in its own time
            out["exit_time"] = EXIT_TIME[out["pool"]]
        return out

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        redis = {}
        if self.broker == "redis":
            redis = {"visibility_timeout": settings["visibility_timeout"],
                     "restore_every": settings["unacked_restore_interval"]
                     * settings["unacked_restore_throttle"],
                     "disable_prefetch": settings["disable_prefetch"]}
        return Celery(
            acks_late=settings["acks_late"],
            broker=self.broker,
            soft_shutdown_timeout=settings["soft_shutdown_timeout"],
            prefetch_multiplier=settings["prefetch_multiplier"],
            pool=settings["pool"],
            exit_seconds=settings["exit_time"],
            **redis,
        )

    def enqueue(self, ctx: RunContext) -> None:
        from deploysim.sim.chaos.real.apps.celery_app import TASK, make_app

        app = make_app(ctx.broker_url, ctx.settings, ctx.results_url)
        try:
            task = app.tasks[TASK]
            for job in range(ctx.jobs):
                task.apply_async((job, ctx.items, ctx.item_time), task_id=task_id(job))
        finally:
            app.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        argv = [
            sys.executable, "-m", "celery", "-A", APP, "worker",
            "--pool", ctx.settings["pool"], "--concurrency", "1",
            "--hostname", f"deploysim-{slot}.{life}@%h", "--loglevel", "INFO",
        ]
        return WorkerCommand(argv=argv, cwd=ctx.workdir)

    def bookkeeping(self, ctx: RunContext) -> dict[int, str]:
        where = self._broker_records(ctx)
        where.update(dict.fromkeys(self.failed(ctx), "failed"))
        return where

    def failed(self, ctx: RunContext) -> set[int]:
        """The jobs whose result in the result backend says FAILURE."""
        import redis

        from deploysim.sim.chaos.real.apps.celery_app import RESULTS_DB

        results = redis.Redis.from_url(ctx.db_url(RESULTS_DB))
        try:
            keys = [key for key in results.scan_iter("celery-task-meta-deploysim-*")]
            metas = results.mget(keys) if keys else []
        finally:
            results.close()
        out = set()
        for meta in metas:
            if meta is None:
                continue
            result = json.loads(meta)
            number = _job_number(str(result.get("task_id", "")))
            if number is not None and result.get("status") == "FAILURE":
                out.add(number)
        return out

    def _broker_records(self, ctx: RunContext) -> dict[int, str]:
        """Where kombu's Redis keys have each job: the queue list, or the ``unacked`` hash."""
        import redis

        broker = redis.Redis.from_url(ctx.broker_url)
        try:
            pipe = broker.pipeline(transaction=True)
            pipe.lrange(QUEUE, 0, -1)
            pipe.hvals("unacked")
            queued, unacked = pipe.execute()
        finally:
            broker.close()
        where: dict[int, str] = {}
        # later records win: a copy redelivered while the first still runs is in both lists
        for place, raws in (("queued", queued), ("held", unacked)):
            for raw in raws:
                number = _message_id(raw)
                if number is not None:
                    where[number] = place
        return where


class CeleryAcksLateSystem(CelerySystem):
    """Celery 5.7 as ``CelerySystem``, with ``task_acks_late``: acknowledged when a task ends."""

    name = "celery-acks-late"
    summary = ("Celery worker (prefork, acks_late): warm shutdown waits; a killed task comes "
               "back after the visibility timeout")
    acks_late = True


class CeleryRabbitMQSystem(CelerySystem):
    """Celery 5.7 as ``CelerySystem``, on a RabbitMQ broker (py-amqp) of the run's own."""

    name = "celery-rabbitmq"
    summary = ("Celery worker (prefork) on RabbitMQ: warm shutdown waits; SIGKILL loses the "
               "task in hand, the reserved ones come back at once")
    broker = "rabbitmq"
    modules = ("celery", "kombu", "amqp", "redis")

    def missing(self) -> str | None:
        from ..rabbitmq_server import rabbitmq_server_binary

        absent = super().missing()
        if absent is None and rabbitmq_server_binary() is None:
            return (f"{self.name} needs a RabbitMQ server: apt-get install rabbitmq-server "
                    "(`make test` installs it when it runs as root)")
        return absent

    def _broker_records(self, ctx: RunContext) -> dict[int, str]:
        """What the queue holds, read off it once the workers are gone (their unacknowledged
        messages went back to it when their connections closed): a job is queued there."""
        from kombu import Connection

        where: dict[int, str] = {}
        with Connection(ctx.broker_url) as conn:
            channel = conn.channel()
            try:
                while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
                    number = _job_number(str((message.headers or {}).get("id", "")))
                    if number is not None:
                        where[number] = "queued"
            except Exception as exc:  # the queue was never declared: nothing was left in it
                if "NOT_FOUND" not in str(exc):
                    raise
        return where


class CeleryAcksLateRabbitMQSystem(CeleryRabbitMQSystem):
    """Celery 5.7 with ``task_acks_late`` on RabbitMQ."""

    name = "celery-acks-late-rabbitmq"
    summary = ("Celery worker (prefork, acks_late) on RabbitMQ: warm shutdown waits; a killed "
               "task comes back at once")
    acks_late = True
