"""Resumable jobs as RQ jobs (RQ 3.0, its forking ``Worker``): ``@resumable`` on an
``IterationJob`` gives the class ``enqueue(queue, ...)`` and the RQ job function ``perform``,
which runs the job in RQ's work horse under a ``Runner`` and the checkpoint store it names.

    from redis import Redis
    from rq import Queue

    from deploysim.strategies.resumable import IterationJob, enumerators
    from deploysim.strategies.resumable.rq import resumable

    @resumable(store="redis://localhost:6379/3")
    class Backfill(IterationJob):
        def __init__(self, month):
            self.month = month

        def build_enumerator(self, cursor):
            return enumerators.int_range(0, 10_000, cursor)

        def each_iteration(self, n):
            ...

    Backfill.enqueue(Queue(connection=Redis()), "2026-11")   # an rq.job.Job

Workers are plain ``rq worker`` processes (the default ``Worker``, or ``SpawnWorker``);
``SimpleWorker`` and ``Queue(is_async=False)`` have no work horse and are refused. What
``perform`` does in the work horse, and why (docs/adapter-rq.md gives the facts behind it):

- RQ's warm shutdown (SIGTERM or SIGINT to the worker's main process) never reaches the work
  horse: the worker writes ``shutdown_requested_date`` into its hash ``rq:worker:NAME`` and waits
  for the horse to finish. A thread of the horse polls that field every ``shutdown_check_every``
  seconds and sets the runner's stop flag; a SIGTERM sent to the horse itself sets it too. The job
  stops after the item in hand. A second SIGTERM (RQ's cold shutdown) still kills the horse.
- An interrupted run, or a "busy" one (another runner holds the job's lease: a duplicate
  delivery, or the lease of a killed horse not yet expired), re-enqueues its own RQ job, same id,
  at the back of its queue, or into ``ScheduledJobRegistry`` to come back after the run's
  ``retry_after`` when a scheduler serves the queue. In the same transaction it takes its
  execution out of ``StartedJobRegistry``, then ends the work horse as RQ ends one, exit status 0,
  so that RQ's success handling never runs: nothing marks the queued job ``finished``, records a
  successful result or logs "Job OK". RQ counts the run as neither a success, a failure nor a
  retry; the worker's log says "Job interrupted" or "Job busy", and ``job.meta["resumable"]`` how
  the last run ended.
- A completed run returns a summary (RQ's "Job OK", status ``finished``); a run of a job the store
  has completed is a no-op that does the same. A failed run raises the item's exception, and RQ
  fails the job (or retries it, from the last cursor, under ``Retry``).
- A SIGKILLed job is left ``started`` in ``StartedJobRegistry``; RQ's maintenance gives it up as
  abandoned once its heartbeat has lapsed, and re-enqueues it if it has retries left:
  ``enqueue`` gives every job ``Retry(max=retries)``. The next run resumes at the last
  checkpoint.
- Each run ends, and re-enqueues itself, ``timeout_margin`` seconds before the job's
  ``job_timeout`` (at which RQ's horse fails the job); the job's and the decorator's
  ``max_runtime`` cap a run too, and the smallest limit wins.

The job's logical id (its id in the store) is the RQ job id, or the ``resumable_id`` given to
``enqueue``. Needs the ``rq`` package (``pip install 'deploysim[rq]'``); the engine itself imports
nothing of this module.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import redis
from rq import Queue, Retry, get_current_job
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE, Execution
from rq.job import Job
from rq.utils import now, parse_composite_key, parse_timeout
from rq.worker import Worker

from .errors import ResumableError, StaleLeaseError
from .job import IterationJob
from .runner import Runner, RunResult, check_runner_options, default_owner
from .signals import StopSignal, stop_on_signals
from .store import CheckpointStore
from .urls import KNOWN, local_store, store_url_problem

STORE_ENV = "DEPLOYSIM_STORE_URL"
"""The environment variable a worker reads the store URL from when ``resumable`` names none."""

META = "resumable"
"""The key of ``job.meta`` that holds the logical id and how the last run ended."""

SHUTDOWN_FIELD = "shutdown_requested_date"
"""The field RQ's worker writes into its hash on a warm shutdown while its horse is busy."""

log = logging.getLogger("rq.worker")
"""RQ's own worker logger: the lines of a run stand with RQ's in the worker's log."""


@dataclass(frozen=True)
class RqSettings:
    """What ``resumable`` was given (see there); a decorated class's ``rq_settings``."""

    store: str | None
    store_options: Mapping[str, Any]
    checkpoint_every: float | None
    checkpoint_every_items: int | None
    lease_ttl: float
    max_runtime: float | None
    exactly_once: bool
    batch: int
    retries: int
    job_timeout: int | None
    timeout_margin: float
    shutdown_check_every: float

    def store_url(self) -> str:
        """The store URL: ``store``, else ``$DEPLOYSIM_STORE_URL``. Raises ResumableError when
        there is none, or it is not a store URL."""
        if self.store is not None:
            return self.store
        url = os.environ.get(STORE_ENV, "")
        if not url.strip():
            raise ResumableError(
                f"no checkpoint store: pass resumable(store=URL) or set {STORE_ENV} in the "
                f"worker's environment, with URL one of {KNOWN}"
            )
        _check_store_url(url, f"{STORE_ENV}={{}}")
        return url

    def runner(self, store: CheckpointStore, **overrides: Any) -> Runner:
        """A ``Runner`` on ``store`` with these settings (and ``overrides``)."""
        return Runner(
            store, checkpoint_every=self.checkpoint_every,
            checkpoint_every_items=self.checkpoint_every_items, lease_ttl=self.lease_ttl,
            exactly_once=self.exactly_once, batch=self.batch, **overrides,
        )


def _check_store_url(url: object, where: str, exactly_once: bool = False) -> None:
    """Refuse what ``open_store`` would refuse, without connecting to anything; ``where``
    names the setting, with ``{}`` for the URL."""
    problem = store_url_problem(url, exactly_once=exactly_once)
    if problem is not None:
        raise ResumableError(f"{where.format(repr(url))}: {problem}")


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ResumableError(f"{name}={value!r}: must be a positive number of seconds (e.g. 10.0)")
    return float(value)


def _check_job_timeout(timeout: int | None, margin: float, where: str) -> None:
    if timeout is not None and 0 < timeout <= margin:
        raise ResumableError(
            f"{where}={timeout}: leaves no run time after timeout_margin={margin:g} s; give a "
            f"job_timeout above {margin:g} s (e.g. {math.ceil(margin) * 6}) or a smaller "
            f"resumable(timeout_margin=...)"
        )


def resumable(
    job_class: type[IterationJob] | None = None,
    /,
    *,
    store: str | None = None,
    store_options: Mapping[str, Any] | None = None,
    checkpoint_every: float | None = 5.0,
    checkpoint_every_items: int | None = None,
    lease_ttl: float = 60.0,
    max_runtime: float | None = None,
    exactly_once: bool = False,
    batch: int = 100,
    retries: int = 3,
    job_timeout: int | str | None = None,
    timeout_margin: float = 10.0,
    shutdown_check_every: float = 0.5,
) -> Any:
    """Make an ``IterationJob`` subclass an RQ job: ``@resumable`` or ``@resumable(...)``.

    The class gains ``enqueue(queue, *args, resumable_id=None, **options)`` and ``perform``
    (the RQ job function, ``queue.enqueue(Backfill.perform, ...)`` works too) and keeps its
    settings in ``rq_settings``. It must be defined at the top level of a module the workers
    import. ``args`` and the keyword arguments RQ does not take go to the class's constructor.

    ``store`` is the checkpoint store's URL (``open_store``: ``redis://``, ``unix://``,
    ``postgresql://``, ``sqlite:///PATH``); without it each worker reads ``$DEPLOYSIM_STORE_URL``.
    ``store_options`` go to the store (e.g. ``{"prefix": "billing"}`` for a ``RedisStore``).
    ``checkpoint_every``, ``checkpoint_every_items``, ``lease_ttl``, ``max_runtime``,
    ``exactly_once`` and ``batch`` are the ``Runner``'s, with its defaults. ``retries`` is the
    ``Retry(max=retries)`` that ``enqueue`` gives a job (0: none), so that a SIGKILLed job comes
    back. ``job_timeout`` is the default RQ ``job_timeout`` of ``enqueue`` (RQ's own is 180 s);
    each run ends ``timeout_margin`` seconds before it, time for the item in hand, the checkpoint
    and the re-enqueue, so make it longer than the longest item. The horse looks for a warm
    shutdown every ``shutdown_check_every`` seconds. A bad setting is a ``ResumableError``
    naming it, raised here.
    """
    options = dict(store_options or {})
    if store is not None:
        _check_store_url(store, "resumable(store={})", exactly_once)
    if not all(isinstance(key, str) for key in options):
        raise ResumableError(f"store_options={store_options!r}: must map option names to values")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ResumableError(f"retries={retries!r}: must be an int >= 0 (0: no Retry)")
    margin = _positive("timeout_margin", timeout_margin)
    try:
        timeout = parse_timeout(job_timeout)
    except Exception:
        raise ResumableError(
            f"job_timeout={job_timeout!r}: must be seconds, or a string such as '1h' or '30m'"
        ) from None
    _check_job_timeout(timeout, margin, "job_timeout")
    if not isinstance(exactly_once, bool):
        raise ResumableError(f"exactly_once={exactly_once!r}: must be True or False")
    settings = RqSettings(
        store=store, store_options=options, checkpoint_every=checkpoint_every,
        checkpoint_every_items=checkpoint_every_items, lease_ttl=lease_ttl,
        max_runtime=max_runtime, exactly_once=exactly_once, batch=batch, retries=retries,
        job_timeout=timeout, timeout_margin=margin,
        shutdown_check_every=_positive("shutdown_check_every", shutdown_check_every),
    )
    # the Runner checks its own settings, with its own messages
    check_runner_options(
        checkpoint_every=checkpoint_every, checkpoint_every_items=checkpoint_every_items,
        lease_ttl=lease_ttl, exactly_once=exactly_once, batch=batch, max_runtime=max_runtime)

    def decorate(cls: type[IterationJob]) -> type[IterationJob]:
        if not (isinstance(cls, type) and issubclass(cls, IterationJob)):
            raise ResumableError(f"@resumable: {cls!r} is not an IterationJob subclass")
        if "." in cls.__qualname__:
            raise ResumableError(
                f"@resumable: {cls.__qualname__} is not at the top level of its module; RQ "
                f"imports a job function by its dotted path, so define the class at module level"
            )
        for name, method in (("perform", _perform), ("enqueue", _enqueue)):
            existing = getattr(cls, name, None)
            if existing is not None and getattr(existing, "__func__", None) is not method:
                raise ResumableError(
                    f"@resumable: {cls.__qualname__} already has an attribute {name!r}, which "
                    f"the RQ adapter would replace; rename it")
            setattr(cls, name, classmethod(method))
        cls.rq_settings = settings  # type: ignore[attr-defined]
        return cls

    return decorate if job_class is None else decorate(job_class)


# -- the producer's side ----------------------------------------------------------------------


def _enqueue(cls: type[IterationJob], queue: Queue, *args: Any, resumable_id: str | None = None,
             **options: Any) -> Job:
    """Enqueue this job on ``queue`` (an ``rq.Queue``) as ``queue.enqueue`` would, and return
    the ``rq.job.Job``. ``args``, and the keyword arguments RQ does not take, go to the class;
    RQ's own (``job_id``, ``job_timeout``, ``retry``, ``meta``, ``description``, ``at_front``,
    ...) go to RQ. A job gets ``retry=Retry(max=retries)`` and the decorator's ``job_timeout``
    unless given its own.
    ``resumable_id`` names the job in the checkpoint store (default: the RQ job id): two RQ
    jobs with the same one are one logical job, run by one runner at a time."""
    settings: RqSettings = cls.rq_settings  # type: ignore[attr-defined]
    if cls.__module__ == "__main__":
        raise ResumableError(
            f"{cls.__qualname__} is defined in __main__, which an RQ worker cannot import; "
            f"define it in a module and enqueue that module's class")
    if not isinstance(queue, Queue):
        raise ResumableError(
            f"{cls.__qualname__}.enqueue(queue={queue!r}): must be an rq.Queue, e.g. "
            f"Queue('default', connection=Redis())")
    if options.get("rate_limit") is not None:
        raise ResumableError(
            f"{cls.__qualname__}.enqueue(rate_limit=...): a resumable job re-enqueues itself, "
            f"which RQ's rate limit slots do not follow; leave rate_limit out")
    if settings.retries and options.get("retry") is None:
        options["retry"] = Retry(max=settings.retries)
    if options.get("job_timeout") is None and settings.job_timeout is not None:
        options["job_timeout"] = settings.job_timeout
    _check_job_timeout(parse_timeout(options.get("job_timeout")), settings.timeout_margin,
                       "job_timeout")
    if resumable_id is not None:
        if not isinstance(resumable_id, str) or not resumable_id:
            raise ResumableError(f"resumable_id={resumable_id!r}: must be a non-empty str")
        meta = dict(options.get("meta") or {})
        meta[META] = {"id": resumable_id}
        options["meta"] = meta
    return queue.enqueue(f"{cls.__module__}.{cls.__qualname__}.perform", *args, **options)


# -- the work horse's side --------------------------------------------------------------------


class _ShutdownWatch:
    """A thread that polls the worker's hash for RQ's warm-shutdown mark and then sets
    ``stop``; ``close()`` ends it."""

    def __init__(self, connection: redis.Redis, worker_key: str, stop: StopSignal,
                 every: float) -> None:
        self.connection, self.worker_key, self.stop, self.every = (
            connection, worker_key, stop, every)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rq-shutdown-watch",
                                        daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self.stop.requested:
            try:
                if self.connection.hexists(self.worker_key, SHUTDOWN_FIELD):
                    self.stop.request("warm shutdown of the RQ worker")
                    return
            except redis.RedisError as exc:  # try again at the next look
                log.warning("could not read %s for a shutdown request: %s", self.worker_key, exc)
            if self._closed.wait(self.every):
                return

    def close(self) -> None:
        self._closed.set()
        self._thread.join()


@contextlib.contextmanager
def _watching(job: Job, worker_key: str, stop: StopSignal, every: float) -> Iterator[None]:
    """Within the block, RQ's warm shutdown and a SIGTERM to this process set ``stop``."""
    watch = _ShutdownWatch(job.connection, worker_key, stop, every)
    try:
        if threading.current_thread() is threading.main_thread():
            with stop_on_signals(stop, (signal.SIGTERM,)):
                yield
        else:
            yield
    finally:
        watch.close()


def _logical_id(job: Job) -> str:
    meta = job.meta.get(META)
    given = meta.get("id") if isinstance(meta, dict) else None
    return given if isinstance(given, str) and given else job.id


def _run_limit(job: Job, settings: RqSettings) -> float | None:
    """The runner's ``max_runtime`` for this run: ``timeout_margin`` before RQ's job timeout
    (counted from when the horse started the job) and at most the decorator's ``max_runtime``;
    None if neither applies. The job's own ``max_runtime`` the runner applies itself."""
    limits = [settings.max_runtime] if settings.max_runtime is not None else []
    timeout = job.timeout
    if timeout is not None and timeout > 0:
        _check_job_timeout(timeout, settings.timeout_margin, f"job {job.id!r}: job_timeout")
        elapsed = (now() - job.started_at).total_seconds() if job.started_at else 0.0
        limits.append(max(timeout - settings.timeout_margin - elapsed, 0.001))
    return min(limits) if limits else None


def _summary(result: RunResult, job_id: str, requeued: str | None = None) -> dict[str, Any]:
    summary = {"id": job_id, "status": result.status, "reason": result.reason,
               "cursor": result.cursor, "items_done": result.items_done,
               "interruptions": result.times_interrupted, "run_time": round(result.run_time, 3)}
    if requeued is not None:
        summary["requeued"] = requeued
    return summary


def _run(runner: Runner, job_id: str, job: IterationJob, lease_ttl: float) -> RunResult:
    """``runner.run``, with a lease lost to another runner mid-run read as "busy"."""
    try:
        return runner.run(job_id, job)
    except StaleLeaseError as exc:
        record = runner.store.get(job_id)
        assert record is not None
        return RunResult(job_id, "busy", f"lease lost: {exc}", record.cursor, 0,
                         record.items_done, record.interruptions, record.run_time, lease_ttl)


def _executions(job: Job) -> list[Execution]:
    """This job's executions by this worker: the one RQ registered for this work horse."""
    key = WORKER_EXECUTIONS_KEY_TEMPLATE.format(job.worker_name)
    found = []
    for member in job.connection.smembers(key):
        job_id, execution_id = parse_composite_key(member.decode())
        if job_id == job.id:
            found.append(Execution(execution_id, job.id, job.connection, job.worker_name))
    return found


def _pause(stop: StopSignal, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set (a signal handler may set it: no locks)."""
    end = time.monotonic() + seconds
    while not stop.requested and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


def _requeue(job: Job, result: RunResult, job_id: str, worker_key: str, stop: StopSignal,
             deadline: float) -> None:
    """Put the RQ job back, same id: at the back of its queue, or, for a ``retry_after``, into
    ``ScheduledJobRegistry`` when a scheduler serves the queue (without one, this horse waits
    the time out itself, until a stop or its run limit); take this execution out of
    ``StartedJobRegistry``; and record the run in ``job.meta``: one transaction."""
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    delay = result.retry_after or 0.0
    when = None
    if delay > 0 and queue.scheduler_pid is not None:
        when = now() + timedelta(seconds=math.ceil(delay))
        requeued = f"scheduled in {math.ceil(delay)} s"
    else:
        if delay > 0:
            _pause(stop, min(delay, deadline - time.monotonic()))
        requeued = "at the back of the queue"
    job.meta[META] = _summary(result, job_id, requeued)
    executions = _executions(job)
    worked = (now() - job.started_at).total_seconds() if job.started_at else 0.0
    with job.connection.pipeline() as pipe:
        if when is None:
            queue.enqueue_job(job, pipeline=pipe)  # first: it may WATCH the job's dependencies
        else:
            queue.schedule_job(job, when, pipeline=pipe)
        for execution in executions:
            execution.delete(job=job, pipeline=pipe)
        pipe.hincrbyfloat(worker_key, "total_working_time", worked)
        pipe.execute()
    what = (f"Job interrupted ({result.reason}) at cursor {result.cursor!r}"
            if result.interrupted else f"Job busy ({result.reason})")
    log.info("Worker %s: %s: %s, re-enqueued %s (%s)", job.worker_name, job.origin, what,
             requeued, job.id)


def _end_work_horse() -> NoReturn:
    """End the work horse the way RQ's own ends one after a job, exit status 0, before RQ's
    success handling would mark the re-enqueued job finished. The worker reads status 0 as a
    horse that finished its bookkeeping and goes on."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _perform(cls: type[IterationJob], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run the RQ job in hand: ``cls(*args, **kwargs)`` under a ``Runner``, from the stored
    cursor. Completed: returns a summary (RQ's result). Interrupted or busy: the job is put back
    and the work horse ends (see the module). Failed: raises the item's exception."""
    settings: RqSettings = cls.rq_settings  # type: ignore[attr-defined]
    job = get_current_job()
    if job is None or not job.worker_name:
        raise ResumableError(
            f"{cls.__qualname__}.perform runs as an RQ job in a worker: enqueue it with "
            f"{cls.__qualname__}.enqueue(queue, ...) and run `rq worker`")
    if job.has_rate_limit:
        raise ResumableError(
            f"{cls.__qualname__}: job {job.id!r} has a rate_limit; a resumable job re-enqueues "
            f"itself, which RQ's rate limit slots do not follow: enqueue it without one")
    worker_key = Worker.redis_worker_namespace_prefix + job.worker_name
    worker_pid = job.connection.hget(worker_key, "pid")
    if worker_pid is None:
        raise ResumableError(
            f"{cls.__qualname__}: {job.worker_name!r} is no RQ worker (a Queue(is_async=False) "
            f"runs jobs in the process that enqueues them); enqueue on an async queue and run "
            f"`rq worker`")
    if int(worker_pid) == os.getpid():
        raise ResumableError(
            f"{cls.__qualname__}: worker {job.worker_name!r} runs jobs in its own process "
            f"(SimpleWorker); run `rq worker` with its default Worker (or SpawnWorker), whose "
            f"work horse a resumable job needs")
    url = settings.store_url()
    try:
        store = local_store(url, **settings.store_options)
    except ResumableError as exc:
        raise ResumableError(f"{cls.__qualname__}: checkpoint store: {exc}") from None
    job_id = _logical_id(job)
    limit = _run_limit(job, settings)
    deadline = time.monotonic() + (limit if limit is not None else math.inf)
    stop = StopSignal()
    runner = settings.runner(store, owner=f"{job.worker_name}:{default_owner()}", stop=stop,
                             max_runtime=limit)
    instance = cls(*args, **kwargs)
    with _watching(job, worker_key, stop, settings.shutdown_check_every):
        result = _run(runner, job_id, instance, settings.lease_ttl)
        if result.interrupted or result.busy:
            _requeue(job, result, job_id, worker_key, stop, deadline)
    if result.interrupted or result.busy:
        _end_work_horse()
    summary = _summary(result, job_id)
    job.meta[META] = summary
    job.save_meta()
    if result.failed:
        raise result.error if result.error is not None else ResumableError(result.reason)
    return summary
