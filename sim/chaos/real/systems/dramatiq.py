"""Dramatiq 2.2.1 as the harness runs it: the ``dramatiq`` command (a parent process that forks
one worker process, ``-p 1``, of one worker thread, ``-t 1``) with the RedisBroker on the run's
Redis, one queue ``default``, jobs sent with Dramatiq's own ``broker.enqueue`` of the actor's
message (``apps/dramatiq_app.py``).

The platform's SIGTERM goes to the parent, which passes it on to its worker process. Dramatiq's
durations are its defaults times the run's scale, in its own milliseconds: the command line's
``--worker-shutdown-timeout``, the environment's ``dramatiq_worker_timeout`` (how often idle
threads and consumers look again, which also sets how often maintenance gets its chance), the
broker's ``heartbeat_timeout`` and ``dead_message_ttl``, the time limit and the retry backoff.
``maintenance_chance`` is a chance per broker command and is not scaled: commands come
``1 / scale`` times as often, so maintenance does too. Three one-second waits are fixed in
Dramatiq's code and cannot be scaled (the worker process's main loop, the parent's joins and
its log watcher): a compressed run's workers take over a second to exit after SIGTERM, which
the model is told through ``exit_time``.

The records read at the end are the broker's own keys, read directly (running the broker's
dispatch script would give maintenance a chance to act): the queue (queued), every ``__acks__``
set of the queue (held: fetched, never acknowledged), the delay queue and the delay queue's
acks sets (retry), the dead-letter queue (failed). The job number is the message's first
argument.
"""

from __future__ import annotations

import sys
from typing import Any

from deploysim.strategies.base import Strategy
from deploysim.strategies.dramatiq import Dramatiq

from .base import RunContext, System, WorkerCommand

APP = "deploysim.sim.chaos.real.apps.dramatiq_app"
"""The module the ``dramatiq`` command loads: the broker and the actor."""

NAMESPACE = "dramatiq"
QUEUE = "default"

#: Dramatiq 2.2.1's defaults (cli.py, worker.py, brokers/redis.py, middleware), milliseconds.
WORKER_SHUTDOWN_TIMEOUT = 600_000
WORKER_TIMEOUT = 1_000
HEARTBEAT_TIMEOUT = 60_000
DEAD_MESSAGE_TTL = 86_400_000 * 7
MAINTENANCE_CHANCE = 1_000
TIME_LIMIT = 600_000
TIME_LIMIT_INTERVAL = 1_000
MAX_RETRIES = 20
MIN_BACKOFF = 15_000
MAX_BACKOFF = 86_400_000 * 7

THREADS = 1
"""Worker threads per process: the harness's concurrency 1."""


def _ms(value: float) -> int:
    """A scaled duration as the whole milliseconds Dramatiq takes (at least 1: Dramatiq reads
    0 as "use the default" in some places)."""
    return max(1, round(value))


def _decode_job(data: bytes | None) -> int | None:
    """The deploysim job number of a message's stored data (its first argument)."""
    if data is None:
        return None
    from dramatiq import Message

    try:
        args = Message.decode(data).args
    except Exception:  # not one of ours
        return None
    job = args[0] if args else None
    return job if isinstance(job, int) else None


class DramatiqSystem(System):
    """Dramatiq 2.2.1 (``dramatiq -p 1 -t 1``) with the Redis broker."""

    name = "dramatiq"
    distribution = "dramatiq"
    summary = ("dramatiq (Redis): shutdown waits; killed messages come back after the heartbeat "
               "timeout and a maintenance pass")
    model = "dramatiq"
    ready = r"Worker process is ready for action"
    modules = ("dramatiq", "redis")
    extra = "dramatiq"

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        settings = {
            "processes": 1,
            "threads": THREADS,
            "queue_prefetch": 2 * THREADS,  # Dramatiq's default for the queue's consumer
            "worker_shutdown_timeout": _ms(WORKER_SHUTDOWN_TIMEOUT * scale),
            "worker_timeout": _ms(WORKER_TIMEOUT * scale),
            "heartbeat_timeout": _ms(HEARTBEAT_TIMEOUT * scale),
            "maintenance_chance": MAINTENANCE_CHANCE,  # per million commands: not a duration
            "dead_message_ttl": _ms(DEAD_MESSAGE_TTL * scale),
            "time_limit": _ms(TIME_LIMIT * scale),
            "time_limit_interval": _ms(TIME_LIMIT_INTERVAL * scale),
            "max_retries": MAX_RETRIES,
            "min_backoff": _ms(MIN_BACKOFF * scale),
            "max_backoff": _ms(MAX_BACKOFF * scale),
        }
        return settings

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        return Dramatiq(
            worker_shutdown_timeout=settings["worker_shutdown_timeout"] / 1000,
            heartbeat_timeout=settings["heartbeat_timeout"] / 1000,
            worker_timeout=settings["worker_timeout"] / 1000,
            maintenance_chance=settings["maintenance_chance"],
            queue_prefetch=settings["queue_prefetch"],
            max_retries=settings["max_retries"],
        )

    def enqueue(self, ctx: RunContext) -> None:
        from deploysim.sim.chaos.real.apps import dramatiq_app

        broker = dramatiq_app.make_broker(ctx.broker_url, ctx.settings)
        try:
            for job in range(ctx.jobs):
                broker.enqueue(dramatiq_app.run_job.message(job, ctx.items, ctx.item_time))
        finally:
            broker.close()
            broker.client.close()

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        s = ctx.settings
        argv = [
            sys.executable, "-m", "dramatiq", APP,
            "--processes", str(s["processes"]), "--threads", str(s["threads"]),
            "--worker-shutdown-timeout", str(s["worker_shutdown_timeout"]),
            "--queues", QUEUE,
        ]
        env = {
            "dramatiq_worker_timeout": str(s["worker_timeout"]),
            "dramatiq_queue_prefetch": str(s["queue_prefetch"]),
        }
        return WorkerCommand(argv=argv, env=env, cwd=ctx.workdir)

    def bookkeeping(self, ctx: RunContext) -> dict[int, str]:
        import redis

        base = f"{NAMESPACE}:{QUEUE}"
        delayed = f"{base}.DQ"
        client = redis.Redis.from_url(ctx.broker_url)
        try:
            acks = [key.decode() for key in client.scan_iter(f"{NAMESPACE}:__acks__.*")]
            pipe = client.pipeline(transaction=True)
            pipe.lrange(base, 0, -1)
            pipe.lrange(delayed, 0, -1)
            pipe.zrange(f"{base}.XQ", 0, -1)
            for key in acks:
                pipe.smembers(key)
            queued, waiting, dead, *held = pipe.execute()
            places: list[tuple[str, str, list[bytes]]] = [
                ("queued", f"{base}.msgs", queued),
                ("retry", f"{delayed}.msgs", waiting),
                ("failed", f"{base}.XQ.msgs", dead),
            ]
            for key, members in zip(acks, held, strict=True):
                if key.endswith(f".{QUEUE}.DQ"):
                    places.append(("retry", f"{delayed}.msgs", sorted(members)))
                elif key.endswith(f".{QUEUE}"):
                    places.append(("held", f"{base}.msgs", sorted(members)))
            pipe = client.pipeline(transaction=True)
            for _, messages, ids in places:
                if ids:
                    pipe.hmget(messages, ids)
            data = iter(pipe.execute())
        finally:
            client.close()
        where: dict[int, str] = {}
        # a message is in one place, except between two steps of the broker's script
        for place, _, ids in places:
            if not ids:
                continue
            for raw in next(data):
                job = _decode_job(raw)
                if job is not None:
                    where[job] = place
        return where
