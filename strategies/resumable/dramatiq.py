"""Resumable jobs as Dramatiq actors: ``@resumable_actor`` makes an ``IterationJob`` class an
actor, so that a deploy stops the job after its current item and the job goes on from its
cursor in whichever worker takes its message next.

    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from deploysim.strategies.resumable import IterationJob, enumerators
    from deploysim.strategies.resumable.dramatiq import resumable_actor

    dramatiq.set_broker(RedisBroker(url="redis://localhost:6379/0"))


    @resumable_actor(store_url="redis://localhost:6379/1")
    class Backfill(IterationJob):
        def __init__(self, stop):
            self.stop = stop

        def build_enumerator(self, cursor):
            return enumerators.int_range(0, self.stop, cursor)

        def each_iteration(self, n):
            ...


    Backfill.send(1_000_000)  # a Dramatiq message; its message_id is the job's id

Each delivery of a message builds the job from the message's arguments and runs it with a
``Runner`` on the store ``store_url`` names (one store per worker thread, ``local_store``):

- The ``Resumable`` middleware, which the decorator adds to the broker, hears the worker
  process's shutdown (``before_worker_shutdown``: the ``dramatiq`` parent relays the platform's
  SIGTERM to its worker processes) and sets the stop flag of every job running in that process,
  and of any started after: each stops after its current item, never inside one.
- An interrupted run has checkpointed; its message is enqueued again, the same message (same
  ``message_id``, ``retries`` untouched) at the back of its queue, and the delivery ends as a
  skipped message: not a success (no ``on_success``, no pipeline step, no result stored), not a
  failure, not a retry.
- A delivery whose job another runner holds (a redelivery while the first run is alive, or a
  dead runner's lease not yet expired) runs nothing and comes back through the delay queue
  when that lease expires.
- A run ends, and its message is enqueued again, before the actor's ``time_limit`` would raise
  ``TimeLimitExceeded`` inside an item.
- A completed job delivered again is skipped, with nothing run; a failed run raises its error,
  for Dramatiq's ``Retries`` to handle.

The user reference is docs/adapter-dramatiq.md.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dramatiq
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message
from dramatiq.middleware import Middleware, SkipMessage, TimeLimit

from .errors import ResumableError, StaleLeaseError
from .job import IterationJob
from .runner import Runner, RunResult, check_runner_options
from .signals import StopSignal
from .store import CheckpointStore, JobRecord
from .urls import local_store, store_url_problem

STOP_REASON = "worker shutdown"
"""The reason a run stopped by the worker's shutdown gives (``RunResult.reason``)."""

OPTION = "resumable"
"""The option a message enqueued again carries, in its data on the broker: ``{"status":
"interrupted" or "busy", "reason": ..., "times_interrupted": ...}``."""


class Requeued(SkipMessage):
    """Ends a delivery whose job was enqueued again (interrupted, or busy in another runner).
    Dramatiq's worker logs the message as skipped and acknowledges it: no retry, no failure,
    no success callback."""


class NothingToRun(SkipMessage):
    """Ends a delivery that had nothing to run: the job was already completed, or another runner
    took its lease over during the run (that runner goes on with it). Handled as ``Requeued``."""


class Resumable(Middleware):
    """The middleware of resumable actors. It keeps the message each worker thread is processing
    (how an actor knows its message), and when the worker process shuts down it sets the stop
    flag of every resumable job running in the process, and of every one started after.

    ``resumable_actor`` adds one to the broker if it has none; a broker built with an explicit
    middleware list may include ``Resumable()`` itself."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stops: set[StopSignal] = set()
        self.shutting_down = False

    def before_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.shutting_down = False  # a new worker in this process (a test's Worker, say)

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        with self._lock:
            self.shutting_down = True
            stops = list(self._stops)
        for stop in stops:
            stop.request(STOP_REASON)

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._local.message = message

    def after_process_message(self, broker: Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        self._local.message = None

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._local.message = None

    def current_message(self) -> MessageProxy | None:
        """The message this thread is processing, or None outside a worker's thread."""
        return getattr(self._local, "message", None)

    @contextmanager
    def watching(self) -> Iterator[StopSignal]:
        """A stop flag that this process's shutdown sets, for the length of the block (set
        already if the shutdown has begun)."""
        stop = StopSignal()
        with self._lock:
            if self.shutting_down:
                stop.request(STOP_REASON)
            self._stops.add(stop)
        try:
            yield stop
        finally:
            with self._lock:
                self._stops.discard(stop)


class ResumableActor(dramatiq.Actor):
    """A Dramatiq actor whose messages run an ``IterationJob``: ``fn`` is the job's class, built
    from each message's arguments. Made by ``resumable_actor``; send it messages as to any
    actor (``send``, ``send_with_options``, ``message``)."""

    def __init__(self, fn: type[IterationJob], *, store_url: str,
                 store_options: Mapping[str, Any], job_id: Callable[..., str] | None,
                 runner_options: Mapping[str, Any], max_runtime: float | None,
                 time_limit_margin: float, middleware: Resumable, **actor: Any) -> None:
        self.store_url = store_url
        self.store_options = dict(store_options)
        self.job_id_function = job_id
        self.runner_options = dict(runner_options)
        self.max_runtime = max_runtime
        self.time_limit_margin = time_limit_margin
        self.middleware = middleware
        super().__init__(fn, **actor)

    @property
    def job_class(self) -> type[IterationJob]:
        """The job class each message builds."""
        return self.fn  # type: ignore[return-value]

    def job_id_of(self, message: Message[Any] | MessageProxy) -> str:
        """The logical job id of ``message``: its ``job_id`` option if it has one, else what the
        actor's ``job_id(*args, **kwargs)`` returns, else its ``message_id``."""
        job_id = message.options.get("job_id")
        if job_id is None and self.job_id_function is not None:
            job_id = self.job_id_function(*message.args, **message.kwargs)
        if job_id is None:
            return message.message_id
        if not isinstance(job_id, str) or not job_id:
            raise ResumableError(
                f"{self.actor_name}: job_id={job_id!r}: must be a non-empty str (the message's "
                f"job_id option, or what the actor's job_id(*args, **kwargs) returns)")
        return job_id

    def progress(self, message: Message[Any] | str) -> JobRecord | None:
        """What the store knows of the job of ``message`` (a message, or a job id): None if no
        run has begun."""
        job_id = message if isinstance(message, str) else self.job_id_of(message)
        return self._store().get(job_id)

    def _store(self) -> CheckpointStore:
        """This thread's store (``local_store``)."""
        try:
            return local_store(self.store_url, **self.store_options)
        except TypeError as exc:  # an option the store's class does not take
            raise ResumableError(f"{self.actor_name}: store_options={self.store_options!r}: "
                                 f"{exc}") from None

    def run_limit(self, message: MessageProxy) -> float | None:
        """The ``max_runtime`` of a run of ``message`` in seconds: the actor's ``max_runtime``,
        or the time limit Dramatiq's ``TimeLimit`` puts on the message less
        ``time_limit_margin`` of it, whichever is smaller (the job's own ``max_runtime`` also
        applies). None when neither limits it."""
        limits = [] if self.max_runtime is None else [self.max_runtime]
        for middleware in self.broker.middleware:
            if isinstance(middleware, TimeLimit):  # TimeLimit.before_process_message's lookup
                limit = message.options.get("time_limit") or self.options.get(
                    "time_limit", middleware.time_limit)
                if limit and math.isfinite(limit):
                    limits.append(limit / 1000 * (1 - self.time_limit_margin))
        return min(limits) if limits else None

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        """Run the job of the message this worker thread is processing, built as
        ``job_class(*args, **kwargs)``, until it completes, is interrupted, or fails."""
        message = self.middleware.current_message()
        if message is None or message.actor_name != self.actor_name:
            raise ResumableError(
                f"{self.actor_name}(...) was called outside a Dramatiq worker: a resumable "
                f"actor runs messages, send it one with {self.actor_name}.send(...)")
        job_id = self.job_id_of(message)
        job = self.job_class(*args, **kwargs)
        store = self._store()
        with self.middleware.watching() as stop:
            runner = Runner(store, stop=stop, max_runtime=self.run_limit(message),
                            **self.runner_options)
            try:
                result = runner.run(job_id, job)
            except StaleLeaseError as exc:
                self.logger.warning("Job %r of message %r lost its lease to another runner, "
                                    "which goes on with it: %s", job_id, message.message_id, exc)
                raise NothingToRun(str(exc)) from exc
        self._settle(message, job_id, result)

    def _settle(self, message: MessageProxy, job_id: str, result: RunResult) -> None:
        """End the delivery as ``result`` says: return (completed), raise the job's error
        (failed), or enqueue the message again and skip it (interrupted, busy)."""
        if result.failed:
            assert result.error is not None
            raise result.error
        if result.completed:
            if result.reason != "already completed":
                self.logger.info("Completed job %r (%d items in this run, %d in all).",
                                 job_id, result.items, result.items_done)
                return
            self.logger.info("Job %r of message %r is already completed: nothing to run.",
                             job_id, message.message_id)
            self._skip(message)
            raise NothingToRun("already completed")
        delay = None if result.retry_after is None else max(1, math.ceil(result.retry_after * 1000))
        again = message.copy(options={OPTION: {
            "status": result.status, "reason": result.reason,
            "times_interrupted": result.times_interrupted}})
        again.options.pop("eta", None)
        self.broker.enqueue(again, delay=delay)
        when = "at the back of" if delay is None else f"in {delay} ms on"
        if result.interrupted:
            self.logger.info("Interrupted job %r at cursor %r after %d items in this run (%s): "
                             "message %r enqueued again %s queue %r.", job_id, result.cursor,
                             result.items, result.reason, message.message_id, when,
                             message.queue_name)
        else:
            self.logger.info("Job %r is busy (%s): message %r enqueued again %s queue %r.",
                             job_id, result.reason, message.message_id, when, message.queue_name)
        self._skip(message)
        raise Requeued(result.status)

    @staticmethod
    def _skip(message: MessageProxy) -> None:
        """Keep the ``Results`` middleware from storing None for a skipped message: the result
        is the completed run's."""
        message.options["store_results"] = False

    def __repr__(self) -> str:
        return (f"ResumableActor({self.job_class.__qualname__}, queue_name={self.queue_name!r}, "
                f"actor_name={self.actor_name!r})")


def _check_store_url(name: str, url: object, exactly_once: bool) -> str:
    problem = store_url_problem(url, exactly_once=exactly_once)
    if problem is not None:
        raise ResumableError(f"resumable_actor({name}): store_url={url!r}: {problem}")
    return url  # type: ignore[return-value]


def _check_runner_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse what ``Runner`` would refuse, now rather than at the first message."""
    try:
        check_runner_options(**options)
    except ResumableError as exc:
        raise ResumableError(f"resumable_actor({name}): {exc}") from None


def _middleware(broker: Broker) -> Resumable:
    """The broker's ``Resumable`` middleware, added if it has none."""
    for middleware in broker.middleware:
        if isinstance(middleware, Resumable):
            return middleware
    middleware = Resumable()
    broker.add_middleware(middleware)
    return middleware


def resumable_actor(
    job_class: type[IterationJob] | None = None,
    *,
    store_url: str | None = None,
    store_options: Mapping[str, Any] | None = None,
    job_id: Callable[..., str] | None = None,
    checkpoint_every: float | None = 5.0,
    checkpoint_every_items: int | None = None,
    lease_ttl: float = 60.0,
    max_runtime: float | None = None,
    time_limit_margin: float = 0.1,
    exactly_once: bool = False,
    batch: int = 100,
    actor_name: str | None = None,
    queue_name: str = "default",
    priority: int = 0,
    broker: Broker | None = None,
    **options: Any,
) -> Any:
    """Declare a Dramatiq actor that runs the ``IterationJob`` class it decorates, built from
    each message's arguments: ``@resumable_actor(store_url=...)`` above the class, then
    ``Backfill.send(*args)``. Returns a ``ResumableActor``.

    ``store_url`` (required) names the checkpoint store every worker reaches (``open_store``'s
    URLs); ``store_options`` go to the store (``prefix=`` for a ``RedisStore``). ``job_id``, a
    function of the message's arguments, names the logical job; a message's own ``job_id``
    option comes first, and the default is the message's ``message_id``.

    ``checkpoint_every`` (seconds, default 5), ``checkpoint_every_items``, ``lease_ttl``
    (seconds, default 60), ``exactly_once`` and ``batch`` go to the ``Runner``. A run ends
    after ``max_runtime`` seconds, after the job's own ``max_runtime``, and before the actor's
    Dramatiq ``time_limit`` (milliseconds, the ``TimeLimit`` middleware's): at the limit less
    ``time_limit_margin`` (a fraction, default 0.1) of it; it is then enqueued again.

    ``actor_name`` (default: the class's name), ``queue_name``, ``priority``, ``broker`` and
    ``options`` (``time_limit``, ``max_retries``, ``on_success``...) are ``dramatiq.actor``'s.
    A bad setting raises one ``ResumableError`` naming it.
    """
    runner_options = {
        "checkpoint_every": checkpoint_every, "checkpoint_every_items": checkpoint_every_items,
        "lease_ttl": lease_ttl, "exactly_once": exactly_once, "batch": batch,
    }

    def decorate(cls: type[IterationJob]) -> ResumableActor:
        name = getattr(cls, "__name__", repr(cls))
        if not (isinstance(cls, type) and issubclass(cls, IterationJob)):
            raise ResumableError(
                f"resumable_actor({name}): decorates a subclass of IterationJob, not {cls!r}")
        url = _check_store_url(name, store_url, exactly_once)
        if store_options is not None and not isinstance(store_options, Mapping):
            raise ResumableError(f"resumable_actor({name}): store_options={store_options!r}: "
                                 f"must be a dict of the store's options (e.g. prefix=...)")
        if job_id is not None and not callable(job_id):
            raise ResumableError(f"resumable_actor({name}): job_id={job_id!r}: must be a "
                                 f"function of the message's arguments returning a str, or None")
        margin = time_limit_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
            raise ResumableError(
                f"resumable_actor({name}): time_limit_margin={margin!r}: must be a fraction "
                f"between 0 and 1 (e.g. 0.1: a run ends at 90 % of the time limit)")
        _check_runner_options(name, {**runner_options, "max_runtime": max_runtime})
        if options.get("notify_shutdown"):
            raise ResumableError(
                f"resumable_actor({name}): notify_shutdown=True would raise Dramatiq's Shutdown "
                f"inside an item; leave it out: the job stops after its item on shutdown")
        target = broker or dramatiq.get_broker()
        middleware = _middleware(target)
        if "notify_shutdown" in target.actor_options:  # even a broker-wide notify_shutdown=True
            options["notify_shutdown"] = False
        actor_class = functools.partial(
            ResumableActor, store_url=url, store_options=store_options or {}, job_id=job_id,
            runner_options=runner_options, max_runtime=max_runtime,
            time_limit_margin=float(margin), middleware=middleware)
        return dramatiq.actor(cls, actor_class=actor_class, actor_name=actor_name,
                              queue_name=queue_name, priority=priority, broker=target, **options)

    return decorate if job_class is None else decorate(job_class)
