"""Sidekiq as the harness runs it: Debian's ``ruby-sidekiq`` (6.4.1, on Ruby with the redis gem
4.8), one ``sidekiq -c 1`` process per container on the run's Redis, queue ``default``, basic
fetch (Sidekiq OSS has no other). The job class and the enqueue script are Ruby files of
``deploysim.sim.chaos.real.apps``: ``sidekiq_job.rb`` writes the same event lines and item
counts as ``run_job``, and ``sidekiq_enqueue.rb`` pushes the jobs with Sidekiq's own client.

The one duration setting is the shutdown timeout, Sidekiq's 25 s times the run's scale in the
whole seconds ``-t`` takes, rounded down (at least 1) so that, as in the real world, it stays
inside the platform's grace. The manager's 0.5 s shutdown poll and the fetch's 2 s ``BRPOP`` are
constants of Sidekiq's code and are not scaled; the model is given the poll.

The records read at the end are Sidekiq's own keys: ``queue:default`` (queued), the ``retry``
(retry) and ``dead`` (failed) sorted sets. A SIGKILLed process's ``<identity>:workers`` hash may
still show its job until the heartbeat's 60 s expire, but nothing ever takes a job back from it
(basic fetch), so such a job is in no record: lost, as it is.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from deploysim.strategies.base import Strategy
from deploysim.strategies.sidekiq import PAUSE_TIME, Sidekiq

from ....errors import SimError
from .base import RunContext, System, WorkerCommand

QUEUE = "default"
"""The one queue of a run."""

APPS = Path(__file__).resolve().parent.parent / "apps"
JOB_FILE = APPS / "sidekiq_job.rb"
"""The job class, loaded by the worker with ``-r``."""
ENQUEUE_FILE = APPS / "sidekiq_enqueue.rb"
"""The script that enqueues the jobs with ``Sidekiq::Client.push_bulk``."""

TIMEOUT = 25
"""Sidekiq's default shutdown timeout, seconds."""

INSTALL = "apt-get install ruby-sidekiq"
"""How to get Sidekiq and the redis gem (Debian)."""

ENQUEUE_TIMEOUT = 60.0
"""Seconds the enqueue script may take."""


@functools.cache
def _probe() -> tuple[str | None, str]:
    """(Sidekiq's version, "") if Ruby loads sidekiq and redis, else (None, why not)."""
    ruby, sidekiq = shutil.which("ruby"), shutil.which("sidekiq")
    if ruby is None or sidekiq is None:
        return None, f"sidekiq needs Ruby and the sidekiq command: {INSTALL}"
    script = 'require "sidekiq"; require "redis"; print Sidekiq::VERSION'
    try:
        out = subprocess.run([ruby, "-e", script], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"sidekiq: Ruby could not be run ({exc}): {INSTALL}"
    if out.returncode != 0 or not out.stdout.strip():
        return None, f"sidekiq: Ruby cannot load the sidekiq and redis gems: {INSTALL}"
    return out.stdout.strip(), ""


def _job_number(payload: bytes | str) -> int | None:
    """The deploysim job number of a Sidekiq job payload (the first of its args)."""
    try:
        job = json.loads(payload)
        number = job["args"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return number if isinstance(number, int) else None


class SidekiqSystem(System):
    """Sidekiq 6.4.1 (Debian's ruby-sidekiq) with basic fetch on Redis."""

    name = "sidekiq"
    distribution = "ruby-sidekiq"
    summary = "Sidekiq: -t timeout, then the job goes back to the front; SIGKILL loses it"
    model = "sidekiq"
    ready = r"deploysim: sidekiq ready"
    modules = ("redis",)
    extra = "real"

    def version(self) -> str:
        version, why = _probe()
        if version is None:
            raise SimError(why)
        return version

    def missing(self) -> str | None:
        absent = super().missing()
        if absent is not None:
            return absent
        version, why = _probe()
        return why if version is None else None

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        return {
            "timeout": max(1, math.floor(TIMEOUT * scale + 1e-9)),
            "concurrency": 1,
            "queue": QUEUE,
            "fetch": "basic",
            "shutdown_poll": PAUSE_TIME,  # fixed in Sidekiq's code: not scaled
        }

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        return Sidekiq(
            timeout=settings["timeout"],
            requeue="front",
            fetch=settings["fetch"],
            shutdown_poll=settings["shutdown_poll"],
        )

    def _env(self, ctx: RunContext) -> dict[str, str]:
        return {"DEPLOYSIM_BROKER": ctx.broker_url, "DEPLOYSIM_RESULTS": ctx.results_url}

    def enqueue(self, ctx: RunContext) -> None:
        ruby = shutil.which("ruby")
        if ruby is None:
            raise SimError(f"sidekiq needs Ruby: {INSTALL}")
        argv = [ruby, str(ENQUEUE_FILE), str(ctx.jobs), str(ctx.items), repr(ctx.item_time)]
        out = subprocess.run(argv, env={**os.environ, **self._env(ctx)}, capture_output=True,
                             text=True, timeout=ENQUEUE_TIMEOUT, stdin=subprocess.DEVNULL,
                             cwd=ctx.workdir)
        if out.returncode != 0 or out.stdout.split()[-1:] != [str(ctx.jobs)]:
            raise SimError(f"sidekiq: enqueueing {ctx.jobs} jobs failed (status "
                           f"{out.returncode}): {out.stderr.strip()[-500:]}")

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        s = ctx.settings
        sidekiq = shutil.which("sidekiq") or "sidekiq"
        argv = [
            sidekiq, "-r", str(JOB_FILE), "-c", str(s["concurrency"]), "-t", str(s["timeout"]),
            "-q", s["queue"], "-g", f"deploysim-{slot}.{life}",
        ]
        return WorkerCommand(argv=argv, env=self._env(ctx), cwd=ctx.workdir)

    def bookkeeping(self, ctx: RunContext) -> dict[int, str]:
        import redis

        connection = redis.Redis.from_url(ctx.broker_url)
        try:
            pipe = connection.pipeline(transaction=True)
            pipe.lrange(f"queue:{ctx.settings.get('queue', QUEUE)}", 0, -1)
            pipe.zrange("retry", 0, -1)
            pipe.zrange("dead", 0, -1)
            queued, retry, dead = pipe.execute()
        finally:
            connection.close()
        where: dict[int, str] = {}
        for place, payloads in (("queued", queued), ("retry", retry), ("failed", dead)):
            for payload in payloads:
                number = _job_number(payload)
                if number is not None:
                    where[number] = place
        return where
