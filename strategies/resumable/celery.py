"""Run an ``IterationJob`` as a Celery task that stops at the next item when its worker shuts down,
checkpoints, and goes back to the queue under the same task id.

    from celery import Celery
    from deploysim.strategies.resumable.celery import ResumableTask

    app = Celery("tasks", broker="redis://localhost:6379/0")
    app.conf.resumable_store_url = "redis://localhost:6379/3"

    @app.task(base=ResumableTask)
    def backfill(table):
        return Backfill(table)          # an IterationJob; the task runs it

    backfill.delay("users")

The task's function only builds the job from the task's arguments; ``ResumableTask`` runs it
with a ``Runner`` on the store named by the task's ``store_url`` or the app's
``resumable_store_url`` (``local_store``: one per pool process and thread). The logical job id is
the Celery task id (override ``job_id``). How a run ends:

- completed: the task succeeds with a summary of the job; a completed job delivered again runs
  nothing and succeeds at once;
- interrupted (the worker's shutdown, a run-time limit, a throttle): the checkpoint is durable,
  the task's state is set to ``INTERRUPTED`` in the result backend and the same task is sent
  again with the same id, arguments and options to the back of its queue (not a retry: its
  ``retries`` stay as they were), then the run raises ``Ignore``: Celery acknowledges the
  message and logs the task "ignored", never "succeeded";
- busy (another runner holds the job's lease: a duplicate delivery): nothing runs, and the task
  is sent again to run once that lease has expired (``countdown``), then ``Ignore``;
- failed: the job's exception is raised, and Celery records the task as failed.

Run eagerly (``apply()``, ``task_always_eager``), an interrupted or busy run returns its summary
instead, sending nothing.

Celery's warm shutdown (SIGTERM to the worker's main process) is handled in the main process
only; prefork pool children never see it. This module connects ``worker_shutting_down`` there and
raises a flag in memory that the main process shares with every pool child it forks (made when
this module is imported, which the worker does before its pool starts), so the runner in the
child, or in a thread of the ``threads`` pool, or in the ``solo`` worker, stops after its item.
No signal handler of Celery's or billiard's is replaced: a cold shutdown, a second signal and a
SIGKILL act as they always do. ``docs/adapter-celery.md`` is the user reference.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, NoReturn

from celery import Task, signals
from celery.exceptions import Ignore, ImproperlyConfigured
from celery.utils.log import get_task_logger

from .errors import ResumableError, StaleLeaseError
from .job import IterationJob
from .runner import Runner, RunResult, check_runner_options
from .urls import KNOWN, local_store, store_url_problem

__all__ = ["INTERRUPTED", "STORE_SETTING", "CeleryConfigError", "ResumableTask"]

log = get_task_logger(__name__)

INTERRUPTED = "INTERRUPTED"
"""The task state an interrupted run leaves in the result backend until the job runs again."""

STORE_SETTING = "resumable_store_url"
"""The app setting naming the store, when the task has no ``store_url`` of its own."""

BUSY_SLACK = 0.5
"""Seconds added to a busy run's ``retry_after``, so that the task comes back after the holder's
lease has expired, not a moment before it."""



class CeleryConfigError(ResumableError, ImproperlyConfigured):
    """A resumable task's configuration is missing or wrong; the message names the setting and
    what would do. Both a ``ResumableError`` and Celery's ``ImproperlyConfigured``."""


class _WorkerShutdown:
    """The stop signal of every runner of this worker: a flag and its reason in a page of memory
    shared with the pool children forked after it was made (``mmap`` of no file is shared across
    ``fork`` on Unix). The worker's main process raises it; the runners read ``requested`` after
    every item, as they read a ``StopSignal``."""

    __slots__ = ("_page",)

    _SIZE = 256

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, self._SIZE)

    @property
    def requested(self) -> bool:
        """True once the worker has begun to shut down."""
        return self._page[0] == 1

    @property
    def reason(self) -> str | None:
        """Why, e.g. "worker warm shutdown (SIGTERM)"; None before."""
        if not self.requested:
            return None
        return self._page[1:].rstrip(b"\0").decode("utf-8", "replace")

    def request(self, reason: str = "stop requested") -> None:
        """Raise the flag for every runner of this worker (the first reason is kept)."""
        if self.requested:
            return
        data = reason.encode("utf-8")[: self._SIZE - 1]
        self._page[1:1 + len(data)] = data
        self._page[0] = 1


_SHUTDOWN = _WorkerShutdown()

_worker: dict[str, Any] = {"pid": None, "time_limit": None, "soft_time_limit": None}
"""What the worker's main process knew at ``worker_init``, inherited by its forked children:
its pid (None: this process is no worker's, or did not import this module before its pool
started) and its own time limits (``--time-limit``, ``--soft-time-limit``)."""


@signals.worker_init.connect(weak=False)
def _on_worker_init(sender: Any, **_: Any) -> None:
    """In the worker's main process, before its pool starts: note the pid and the worker's time
    limits, and make the soft shutdown of a cold shutdown raise the flag before it waits (Celery
    calls ``wait_for_soft_shutdown`` before it sends ``worker_shutting_down``)."""
    _worker.update(pid=os.getpid(), time_limit=sender.time_limit,
                   soft_time_limit=sender.soft_time_limit)
    wait: Callable[[], None] = sender.wait_for_soft_shutdown

    def wait_for_soft_shutdown() -> None:
        _SHUTDOWN.request("worker cold shutdown")
        wait()

    sender.wait_for_soft_shutdown = wait_for_soft_shutdown


@signals.worker_shutting_down.connect(weak=False)
def _on_worker_shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
    """In the worker's main process, from its signal handler: stop every runner of the worker."""
    _SHUTDOWN.request(f"worker {how.lower()} shutdown ({sig})")


def _check_store_url(task: str, url: object, exactly_once: bool = False) -> str:
    """``url`` if it names a store ``open_store`` can make; else a ``CeleryConfigError``."""
    where = f"set app.conf.{STORE_SETTING} (or store_url= on the task)"
    if url is None or (isinstance(url, str) and not url.strip()):
        raise CeleryConfigError(f"task {task!r}: no store URL: {where} to one of {KNOWN}")
    problem = store_url_problem(url, exactly_once=exactly_once)
    if problem is not None:
        raise CeleryConfigError(f"task {task!r}: store URL {url!r}: {problem} ({where})")
    return url  # type: ignore[return-value]


class ResumableTask(Task):
    """A Celery task base that runs the ``IterationJob`` its function returns (see the module).

    Settings, as task options (``@app.task(base=ResumableTask, lease_ttl=30.0)``) or attributes
    of a subclass:

    - ``store_url``: the store (default: the app's ``resumable_store_url`` setting);
    - ``checkpoint_every`` (5.0 s), ``checkpoint_every_items`` (None), ``lease_ttl`` (60.0 s),
      ``exactly_once`` (False) and ``batch`` (100): the ``Runner``'s;
    - ``max_runtime`` (None): seconds per run; with the job's own ``max_runtime`` and the
      limits below the smallest wins;
    - ``time_limit_margin`` (10.0 s): how long before Celery's time limits
      (``soft_time_limit``, ``time_limit``) and, with ``acks_late`` on a Redis broker, before the
      ``visibility_timeout``, a run stops and sends the task again.

    ``acks_late`` and ``reject_on_worker_lost`` default to True, so that a task whose worker is
    killed is delivered again (Redis: after the visibility timeout) and resumes from its last
    checkpoint; set them False on the task to have Celery acknowledge it at its start again.
    """

    store_url: str | None = None
    checkpoint_every: float | None = 5.0
    checkpoint_every_items: int | None = None
    lease_ttl: float = 60.0
    max_runtime: float | None = None
    time_limit_margin: float = 10.0
    exactly_once: bool = False
    batch: int = 100

    acks_late = True
    reject_on_worker_lost = True

    @classmethod
    def on_bound(cls, app: Any) -> None:
        """Check the settings when Celery binds the task to its app (at the app's finalize: in
        the worker before it consumes, in a client when it first uses the task): one
        ``CeleryConfigError`` for a missing or bad store URL or a bad runner setting."""
        _check_store_url(cls.name, cls.store_url or app.conf.get(STORE_SETTING),
                         cls.exactly_once)
        margin = cls.time_limit_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
                0 <= margin < math.inf):
            raise CeleryConfigError(f"task {cls.name!r}: time_limit_margin={margin!r}: must be "
                                    f"a number of seconds >= 0 (e.g. 10.0)")
        try:
            check_runner_options(**cls._runner_options(cls.max_runtime))
        except ResumableError as exc:
            raise CeleryConfigError(f"task {cls.name!r}: {exc}") from None

    @classmethod
    def _runner_options(cls, max_runtime: float | None) -> dict[str, Any]:
        return {"checkpoint_every": cls.checkpoint_every,
                "checkpoint_every_items": cls.checkpoint_every_items,
                "lease_ttl": cls.lease_ttl, "max_runtime": max_runtime,
                "exactly_once": cls.exactly_once, "batch": cls.batch}

    # -- what a user may override ----------------------------------------------------------------

    def job_id(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The job's id in the store, for a run with the task's ``args`` and ``kwargs``: the
        Celery task id, which stays the same each time the task is sent again. Override it to
        key the progress by the arguments instead (one job per table, say)."""
        task_id = self.request.id
        if not task_id:
            raise CeleryConfigError(
                f"task {self.name!r} was called directly and has no task id: send it with "
                f"delay()/apply_async() (or run it here with apply()), or override job_id()")
        return str(task_id)

    def store(self) -> Any:
        """This pool process's and thread's store (``local_store`` of the store URL)."""
        return local_store(_check_store_url(
            self.name, self.store_url or self.app.conf.get(STORE_SETTING)))

    def run_max_runtime(self) -> float | None:
        """Seconds this run may take (None: no limit): the smallest of the task's
        ``max_runtime`` and, less ``time_limit_margin``, the run's time limits (the message's,
        else the task's, else the worker's, as Celery picks them) and, with ``acks_late`` on a
        Redis broker, the visibility timeout. The runner also applies the job's own
        ``max_runtime``."""
        hard, soft = self.request.timelimit or (None, None)
        limits = {
            "soft_time_limit": soft or self.soft_time_limit or _worker["soft_time_limit"],
            "time_limit": hard or self.time_limit or _worker["time_limit"],
            "visibility_timeout": self._visibility_timeout if self.acks_late else None,
        }
        caps = [self.max_runtime] if self.max_runtime else []
        margin = self.time_limit_margin
        for name, limit in limits.items():
            if not limit:
                continue
            if limit <= margin:
                raise CeleryConfigError(
                    f"task {self.name!r}: {name}={limit:g} s leaves no time for a run after "
                    f"time_limit_margin={margin:g} s: make {name} longer, or "
                    f"time_limit_margin smaller (it must cover the longest item and a "
                    f"checkpoint)")
            caps.append(limit - margin)
        return min(caps) if caps else None

    @cached_property
    def _visibility_timeout(self) -> float | None:
        """The Redis transport's visibility timeout (after it, kombu delivers an unacknowledged
        message again); None on another broker."""
        with self.app.connection_for_write() as connection:  # a URL's reading, not connected
            transport = connection.transport
        if transport.driver_type != "redis":
            return None
        options = self.app.conf.broker_transport_options or {}
        return float(options.get("visibility_timeout",
                                 type(transport).Channel.visibility_timeout))

    # -- the run -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        job = super().__call__(*args, **kwargs)
        if not isinstance(job, IterationJob):
            raise CeleryConfigError(
                f"task {self.name!r}: its function returned {job!r}; with base=ResumableTask it "
                f"must return the IterationJob to run (e.g. return Backfill(table))")
        request = self.request
        if not request.is_eager and _worker["pid"] is None:
            cause = (
                "the pool started its processes with spawn (worker_pool_start_method or "
                "--pool-start-method; billiard's default on macOS): use fork, or --pool threads "
                "or solo" if os.environ.get("FORKED_BY_MULTIPROCESSING") else
                f"the worker's main process did not import {__name__} before its pool "
                f"started: import it in the module that defines the task")
            raise CeleryConfigError(f"task {self.name!r}: the worker's shutdown cannot reach "
                                    f"this pool process: {cause}")
        job_id = self.job_id(request.args, request.kwargs or {})
        runner = Runner(self.store(), stop=_SHUTDOWN,  # type: ignore[arg-type]
                        **self._runner_options(self.run_max_runtime()))
        try:
            result = runner.run(job_id, job)
        except StaleLeaseError as exc:  # another runner took the job over: it carries on
            log.warning("job %s: %s; this run stops, the lease's holder goes on", job_id, exc)
            raise Ignore() from None
        if result.completed:
            if result.reason == "already completed":
                log.info("job %s was already completed: nothing to do", job_id)
            return _summary(result)
        if request.is_eager and (result.interrupted or result.busy):
            return _summary(result)  # apply() and task_always_eager: the caller decides
        if result.interrupted:
            self._interrupted(result)
        if result.busy:
            self._busy(result)
        assert result.error is not None
        raise result.error

    def _interrupted(self, result: RunResult) -> NoReturn:
        """Record the run as interrupted, send the task again to the back of its queue, and end
        the run without a success."""
        if not (self.ignore_result or self.request.ignore_result):
            # before the new message: its run may record its own state at once
            self.update_state(state=INTERRUPTED, meta=_summary(result))
        self._send_again(result.retry_after)
        log.info("job %s interrupted at cursor %r after %d items in this run (%s): sent again "
                 "as task %s%s", result.job_id, result.cursor, result.items, result.reason,
                 self.request.id, _later(result.retry_after))
        raise Ignore()

    def _busy(self, result: RunResult) -> NoReturn:
        """Send the task again for when the holder's lease expires, running nothing."""
        countdown = (result.retry_after or 0.0) + BUSY_SLACK
        self._send_again(countdown)
        log.info("job %s is busy, %s: sent again as task %s%s", result.job_id, result.reason,
                 self.request.id, _later(countdown))
        raise Ignore()

    def _send_again(self, countdown: float | None) -> None:
        """The same task, id, arguments and options (queue, priority, links, limits, retries)
        sent again, as ``Task.retry`` sends it but without counting a retry."""
        self.signature_from_request().apply_async(countdown=countdown, add_to_parent=False)


def _summary(result: RunResult) -> dict[str, Any]:
    """A run's result as the task's JSON-friendly return value or state meta."""
    return {"job_id": result.job_id, "status": result.status, "reason": result.reason,
            "cursor": result.cursor, "items": result.items, "items_done": result.items_done,
            "interruptions": result.times_interrupted, "run_time": round(result.run_time, 3)}


def _later(countdown: float | None) -> str:
    return f", due in {countdown:.1f} s" if countdown else " to the back of its queue"

