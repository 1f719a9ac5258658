"""A real-systems run from end to end: a temporary folder, a Redis server on a unix socket in
it (and a RabbitMQ node for a system on RabbitMQ, a PostgreSQL server for the resumable
engine's progress kept there), the system's workers started and made ready, the jobs enqueued
with the system's own client, deploys and crashes played by the controller, the audit, and
everything stopped and removed. No process and no server outlives a run that ends, fails or is
stopped with SIGTERM or Ctrl-C; one SIGKILLed takes the main processes of its containers and
its Redis with it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import SimError
from ..config import ChaosConfig
from .audit import audit
from .containers import sweep_cgroups
from .controller import Progress, RealController
from .postgres_server import PostgresServer
from .rabbitmq_server import RabbitMQServer
from .redis_server import RedisServer
from .systems import get_system
from .systems.base import RunContext
from .work import EVENTS

log = logging.getLogger("deploysim.sim.chaos.real")

RESULTS_DB = 1
"""The run's Redis database of the job's own records (the systems use database 0)."""

STORE_DB = 3
"""The run's Redis database of the resumable engine's progress, when it is kept in Redis."""


def run_system(config: ChaosConfig, system_name: str, *, settings: Mapping[str, Any] | None = None,
               progress: Progress | None = None, keep: str | None = None) -> dict[str, Any]:
    """Run ``config``'s jobs, deploys and crashes on the real ``system_name``; its audit (see
    ``audit``). ``config.strategy`` is not used: the system is the strategy. ``settings`` are
    put over the system's scaled defaults (``System.configure``), and the model gets them too.
    ``keep`` names a folder to create and leave with the workers' logs; else a temporary one is
    removed."""
    system = get_system(system_name)
    run_settings = system.configure(system.settings(config.scale.factor, config.grace),
                                    settings or {})
    missing = system.missing()
    if missing is not None:
        raise SimError(missing)
    cautions = system.cautions(run_settings, config.grace)
    for caution in cautions:
        log.warning("%s: %s", system_name, caution)
    with _sigterm_as_exit():
        result = _run(config, system_name, system, run_settings, progress, keep)
    result["cautions"] = cautions
    return result


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While a run goes on, SIGTERM to this process raises SystemExit, so that the run's
    ``finally`` blocks stop every container and the Redis server (the default action would
    leave them running). Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run(config: ChaosConfig, system_name: str, system: Any, settings: dict[str, Any],
         progress: Progress | None, keep: str | None) -> dict[str, Any]:
    if keep is not None:
        os.makedirs(keep, exist_ok=False)
        workdir = keep
    else:
        workdir = tempfile.mkdtemp(prefix=f"deploysim-{system_name}-")
    try:
        with contextlib.ExitStack() as servers:
            redis_server = servers.enter_context(RedisServer(os.path.join(workdir, "redis")))
            broker = redis_server.url(0)
            if system.broker == "rabbitmq":
                broker = servers.enter_context(
                    RabbitMQServer(os.path.join(workdir, "rabbitmq"))).url
            store_url = ""
            if system.store_kind(settings) == "redis":
                store_url = redis_server.url(STORE_DB)
            elif system.store_kind(settings) == "postgres":
                store_url = servers.enter_context(
                    PostgresServer(os.path.join(workdir, "postgres"))).url
            ctx = RunContext(
                workdir=workdir,
                redis_socket=redis_server.socket,
                broker_url=broker,
                results_url=redis_server.url(RESULTS_DB),
                jobs=config.jobs,
                items=config.items,
                item_time=config.item_time,
                grace=config.grace,
                settings=settings,
                store_url=store_url,
            )
            finished = _finished(system, ctx)
            controller = RealController(system, ctx, config, finished, progress)
            try:
                controller.start()
                system.enqueue(ctx)
                controller.begin()  # time 0: every job is in the queue, as the simulator has it
                record = controller.run()
            finally:
                controller.kill_all()
                sweep_cgroups(wait=1.0)
            result = audit(system, ctx, record, bookkeeping=system.bookkeeping(ctx))
        result["config"] = {**config.to_dict(), "strategy": system_name}
        log.info("%s run: %d/%d completed, %d failed, %d lost, %d SIGKILLs", system_name,
                 result["completed"], result["enqueued"], result["failed"], result["lost"],
                 result["sigkills"])
        return result
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _finished(system: Any, ctx: RunContext) -> Any:
    """A check the controller calls: True once every job has completed or failed."""
    import redis

    client = redis.Redis.from_url(ctx.results_url)

    def done() -> bool:
        completed = {line.split()[1] for line in client.lrange(EVENTS, 0, -1)
                     if line.startswith(b"D ")}
        if len(completed) >= ctx.jobs:
            return True
        failed = {str(j).encode() for j in system.failed(ctx)}
        return len(completed | failed) >= ctx.jobs

    return done
