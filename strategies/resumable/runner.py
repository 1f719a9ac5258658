"""The runner: takes a job's lease, runs items from its cursor, checkpoints, and stops cleanly.

Stop conditions are checked after every item, never inside one: a stop signal (set by a SIGTERM
or SIGINT handler, or by the simulator), the job's or the runner's ``max_runtime``, a throttle
predicate, and user predicates. Checkpoints are durable every ``checkpoint_every`` seconds and/or
``checkpoint_every_items`` items, and always on interrupt, completion and failure, so a SIGKILL
loses at most the items since the last checkpoint. With ``exactly_once=True`` (and a
``TransactionalStore`` such as ``SQLiteStore``) the effects that ``each_iteration`` writes through
the store's ``connection`` commit with the cursor, ``batch`` items per transaction, and a crash
never duplicates an effect.

``Runner.run`` runs a job to its end in one call. ``Runner.start`` returns an ``Execution`` whose
``advance(until)`` runs items only while the clock is before ``until``: the simulator uses it to
run the same code under virtual time, handing control back before its next scheduled event.
Everything is logged under the logger ``deploysim.strategies.resumable`` (docs/engine.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .clock import Clock, WallClock
from .errors import ResumableError, StaleLeaseError
from .job import IterationJob
from .signals import StopSignal
from .store import CheckpointStore, Lease, TransactionalStore

log = logging.getLogger("deploysim.strategies.resumable")

INF = math.inf
_END = object()


@dataclass(frozen=True, slots=True)
class Throttle:
    """``Runner(throttle=...)``: after each item, interrupt the job when ``predicate()`` is true,
    asking to be retried after ``backoff`` seconds (``RunResult.retry_after``)."""

    predicate: Callable[[], bool]
    backoff: float = 30.0


@dataclass(frozen=True, slots=True)
class Pause:
    """Yielded as an item by an enumerator (see ``enumerators.throttle``) to interrupt the job
    before its next item; the cursor does not move."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run of a job ended.

    ``status`` is "completed", "interrupted" (re-queue it; ``retry_after`` seconds from now if
    set) or "failed" (``error`` holds the exception). ``cursor`` is the durable cursor,
    ``items`` the items processed in this run, ``items_done`` and ``run_time`` totals over every
    run, ``times_interrupted`` the interruptions so far.
    """

    job_id: str
    status: str
    reason: str
    cursor: Any
    items: int
    items_done: int
    times_interrupted: int
    run_time: float
    retry_after: float | None = None
    error: BaseException | None = None

    @property
    def completed(self) -> bool:
        """True when the job has finished all its items."""
        return self.status == "completed"

    @property
    def interrupted(self) -> bool:
        """True when the job stopped early and should be re-queued."""
        return self.status == "interrupted"

    @property
    def failed(self) -> bool:
        """True when an item raised or the engine refused the job's data."""
        return self.status == "failed"


def default_owner() -> str:
    """A worker name unique on this machine: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _enumerator_name(job: IterationJob, it: object) -> str:
    inner = getattr(it, "__qualname__", type(it).__name__)
    return f"{type(job).__name__}.build_enumerator ({inner})"


class Runner:
    """Runs resumable jobs against a checkpoint store.

    ``checkpoint_every`` (seconds, default 5) and ``checkpoint_every_items`` set how often
    progress is made durable; either may be None, not both. ``lease_ttl`` is how long a lease
    lasts without a checkpoint; checkpoints renew it, at least every ``lease_ttl / 2``.
    ``max_runtime`` caps one run (the job's own ``max_runtime`` also applies; the smaller wins).
    ``throttle`` and the ``stop_when`` predicates, checked after every item, interrupt the job.
    ``exactly_once`` needs a ``TransactionalStore`` and commits ``batch`` items' effects with each
    checkpoint. ``owner`` names this runner in leases (default: host and process id); ``clock``
    (default: the wall clock) and ``stop`` (default: a fresh ``StopSignal``) are what it reads.
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        owner: str | None = None,
        clock: Clock | None = None,
        stop: StopSignal | None = None,
        checkpoint_every: float | None = 5.0,
        checkpoint_every_items: int | None = None,
        max_runtime: float | None = None,
        lease_ttl: float = 60.0,
        throttle: Throttle | None = None,
        stop_when: Sequence[Callable[[], bool]] = (),
        exactly_once: bool = False,
        batch: int = 100,
    ) -> None:
        if checkpoint_every is None and checkpoint_every_items is None and not exactly_once:
            raise ResumableError(
                "checkpoint_every and checkpoint_every_items are both None: set at least one "
                "(e.g. checkpoint_every=5.0 seconds)"
            )
        for name, value in (("checkpoint_every", checkpoint_every), ("max_runtime", max_runtime)):
            if value is not None and not value > 0:
                raise ResumableError(f"{name}={value!r}: must be a positive number of seconds")
        if checkpoint_every_items is not None and checkpoint_every_items < 1:
            raise ResumableError(f"checkpoint_every_items={checkpoint_every_items!r}: must be >= 1")
        if not lease_ttl > 0:
            raise ResumableError(f"lease_ttl={lease_ttl!r}: must be a positive number of seconds")
        if batch < 1:
            raise ResumableError(f"batch={batch!r}: must be >= 1")
        self._transactions: TransactionalStore | None = None
        if exactly_once:
            if not isinstance(store, TransactionalStore):
                raise ResumableError(
                    f"exactly_once=True needs a TransactionalStore (begin, rollback and "
                    f"connection, as SQLiteStore has), not {type(store).__name__}"
                )
            self._transactions = store
        self.store = store
        self.owner = owner or default_owner()
        self.clock = clock or WallClock()
        self.stop = stop or StopSignal()
        self.checkpoint_every = checkpoint_every
        self.checkpoint_every_items = checkpoint_every_items
        self.max_runtime = max_runtime
        self.lease_ttl = float(lease_ttl)
        self.throttle = throttle
        self.stop_when = tuple(stop_when)
        self.exactly_once = exactly_once
        self.batch = int(batch)

    def start(self, job_id: str, job: IterationJob) -> Execution:
        """Take the job's lease and prepare its run, to be driven step by step with
        ``advance(until)`` (the simulator does). Raises LeaseHeldError while another owner's
        lease is live. ``run`` is this and one ``advance()``."""
        return Execution(self, job_id, job)

    def run(self, job_id: str, job: IterationJob) -> RunResult:
        """Run the job until it completes, is interrupted or fails. Raises LeaseHeldError if
        another owner's lease is live, StaleLeaseError if another runner took the job's lease
        meanwhile, ResumableError for bad stored data or a broken enumerator."""
        execution = self.start(job_id, job)
        execution.advance()
        assert execution.result is not None
        return execution.result


class Execution:
    """One run of one job. ``advance(until)`` processes items while the clock is before
    ``until`` and returns True once the run has ended (see ``result``)."""

    def __init__(self, runner: Runner, job_id: str, job: IterationJob) -> None:
        self.runner = runner
        self.job_id = job_id
        self.job = job
        self.result: RunResult | None = None
        self.items = 0
        self._clock = runner.clock.now
        self._transactions = runner._transactions
        now = self._clock()
        self.lease: Lease
        self.lease, record = runner.store.acquire(job_id, runner.owner, now, runner.lease_ttl)
        self.started_at = now
        self.cursor = record.cursor
        self._durable_json: str | None = None if record.cursor is None else json.dumps(
            record.cursor)
        self._durable_items = record.items_done
        self._base_items = record.items_done
        self._base_run_time = record.run_time
        self._durable_run_time = record.run_time
        self._interruptions = record.interruptions
        self._checks_pending = False
        limits = [x for x in (runner.max_runtime, job.max_runtime) if x is not None]
        self.deadline = now + min(limits) if limits else INF
        self.checkpoint_interval = min(runner.checkpoint_every or INF, runner.lease_ttl / 2)
        self.next_checkpoint_at = now + self.checkpoint_interval
        self._items_every = (
            runner.batch if runner.exactly_once else runner.checkpoint_every_items
        ) or 0
        self._since_checkpoint = 0
        if record.status == "completed":
            self._release("completed")
            self._finish("completed", "already completed")
            return
        self._first_run = record.status == "pending"  # on_start has never completed
        self._iter: Iterator[tuple[Any, Any]] | None = None
        self._direction = 0  # cursors must keep moving the way their first move went

    @property
    def done(self) -> bool:
        """True once the run has ended."""
        return self.result is not None

    @property
    def next_decision_at(self) -> float:
        """The earliest clock time at which a checkpoint or the run-time limit is due."""
        return min(self.next_checkpoint_at, self.deadline)

    # -- the item loop ------------------------------------------------------------------------

    def advance(self, until: float = INF) -> bool:
        """Run items until the run ends, or until an item ends at or after ``until``; the checks
        due after that item are then made at the start of the next call. Returns ``done``."""
        if self.result is not None:
            return True
        try:
            if self._iter is None:
                self._begin()
            if self._checks_pending:
                self._checks_pending = False
                if self._after_item(self._clock()):
                    return True
            return self._loop(until)
        except StaleLeaseError:
            self._abandon()
            raise
        except ResumableError as exc:
            self._fail(exc, keep_cursor=False)
            raise
        except Exception as exc:  # an item or a callback raised: the job fails
            log.exception("job %s failed at cursor %r", self.job_id, self.cursor)
            self._fail(exc, keep_cursor=True)
            return True
        except BaseException:  # KeyboardInterrupt, SystemExit: what a kill would leave
            if self._transactions is not None:
                self._transactions.rollback()
            raise

    def _begin(self) -> None:
        job = self.job
        log.info("%s job %s (cursor %r)", "started" if self._first_run else "resumed",
                 self.job_id, self.cursor)
        if self._first_run:
            if type(job).on_start is not IterationJob.on_start:
                job.on_start()
                self._checkpoint("running")  # from now on, a new run is a resumption
        else:
            job.on_resume()
        self._iter = iter(job.build_enumerator(self.cursor))
        if self._transactions is not None:
            self._transactions.begin()

    def _loop(self, until: float) -> bool:
        job = self.job
        each = job.each_iteration
        around = None if type(job).around_iteration is IterationJob.around_iteration else (
            job.around_iteration)
        clock = self._clock
        stop = self.runner.stop
        slow = bool(self.runner.stop_when) or self.runner.throttle is not None
        items_every = self._items_every
        last = self.cursor
        ordered = last is None or isinstance(last, (int, float, str, list, tuple))
        direction = self._direction
        while True:
            assert self._iter is not None
            iterator = self._iter
            for pair in iterator:
                try:
                    item, cursor = pair
                except (TypeError, ValueError):
                    raise ResumableError(
                        f"job {self.job_id!r}: {_enumerator_name(job, self._iter)} yielded "
                        f"{pair!r}; it must yield (item, cursor) pairs"
                    ) from None
                if type(item) is Pause:
                    self._interrupt(item.reason, item.retry_after)
                    return True
                if around is None:
                    each(item)
                else:
                    around(item, lambda item=item: each(item))
                if last is not None:
                    try:
                        if direction > 0:
                            moved = cursor > last
                        elif direction < 0:
                            moved = cursor < last
                        else:
                            moved = cursor != last
                            if moved and ordered:
                                direction = self._direction = 1 if cursor > last else -1
                    except TypeError:
                        moved = cursor != last
                    if not moved:
                        raise ResumableError(
                            f"job {self.job_id!r}: {_enumerator_name(job, self._iter)} yielded "
                            f"cursor {cursor!r} after {last!r}; cursors must keep moving one way"
                        )
                if self.items == 0:
                    self._check_json(cursor)
                last = self.cursor = cursor
                self.items += 1
                self._since_checkpoint += 1
                now = clock()
                if now >= until:
                    self._checks_pending = True
                    return False
                if (now >= self.next_checkpoint_at or now >= self.deadline or stop.requested
                        or slow or (items_every and self._since_checkpoint >= items_every)) and (
                        self._after_item(now)):
                    return True
                if self._iter is not iterator:  # a checkpoint looked one item ahead
                    break
            else:
                self._complete()
                return True

    def _after_item(self, now: float) -> bool:
        """Checks made after an item; True when the run has ended."""
        runner = self.runner
        if runner.stop.requested:
            self._interrupt(runner.stop.reason or "stop requested")
        elif now >= self.deadline:
            self._interrupt("max runtime")
        elif runner.throttle is not None and runner.throttle.predicate():
            self._interrupt("throttled", runner.throttle.backoff)
        else:
            for predicate in runner.stop_when:
                if predicate():
                    self._interrupt(getattr(predicate, "__name__", "stop condition"))
                    return True
            if now >= self.next_checkpoint_at or (
                    self._items_every and self._since_checkpoint >= self._items_every):
                assert self._iter is not None
                ahead = next(self._iter, _END)  # no write if the completion comes next
                if ahead is _END:
                    self._complete()
                    return True
                self._iter = itertools.chain((ahead,), self._iter)
                self._checkpoint("running", now)
                if self._transactions is not None:
                    self._transactions.begin()
        return self.result is not None

    # -- checkpoints and endings ----------------------------------------------------------------

    def _check_json(self, cursor: Any) -> str:
        if type(cursor) is int:  # the common case, without the encoder
            return str(cursor)
        try:
            return json.dumps(cursor, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ResumableError(
                f"job {self.job_id!r}: {_enumerator_name(self.job, self._iter)} yielded cursor "
                f"{cursor!r}, which is not JSON-serializable ({exc})"
            ) from None

    def _checkpoint(self, status: str, now: float | None = None, *, durable: bool = False,
                    error: str | None = None) -> None:
        """Write ``status`` with the cursor and count reached, or with the last durable ones
        again (``durable``: a failure the engine refused the data for, a release)."""
        cursor_json: str | None
        if durable:
            cursor_json, items_done = self._durable_json, self._durable_items
        else:
            cursor_json = None if self.cursor is None else self._check_json(self.cursor)
            items_done = self._base_items + self.items
        now = self._clock() if now is None else now
        run_time = self._base_run_time + (now - self.started_at)
        self.lease = self.runner.store.checkpoint(
            self.lease, cursor_json=cursor_json, status=status, items_done=items_done,
            run_time=run_time, interruptions=self._interruptions, now=now,
            ttl=self.runner.lease_ttl, error=error,
        )
        self._durable_json = cursor_json
        self._durable_items = items_done
        self._durable_run_time = run_time
        self._since_checkpoint = 0
        self.next_checkpoint_at = self._clock() + self.checkpoint_interval  # work between writes
        log.debug("checkpointed job %s at cursor %s (%s)", self.job_id, cursor_json, status)

    def _finish(self, status: str, reason: str, retry_after: float | None = None,
                error: BaseException | None = None) -> None:
        cursor = None if self._durable_json is None else json.loads(self._durable_json)
        self.result = RunResult(
            self.job_id, status, reason, cursor, self.items, self._durable_items,
            self._interruptions, self._durable_run_time, retry_after, error,
        )

    def _interrupt(self, reason: str, retry_after: float | None = None) -> None:
        self._interruptions += 1
        self._checkpoint("interrupted")
        log.info("interrupted job %s at cursor %r: %s", self.job_id, self.cursor, reason)
        self._finish("interrupted", reason, retry_after)
        self.job.on_shutdown()

    def _complete(self) -> None:
        self._checkpoint("completed")
        log.info("completed job %s (%d items in this run)", self.job_id, self.items)
        self._finish("completed", "completed")
        self.job.on_complete()

    def _fail(self, exc: BaseException, *, keep_cursor: bool) -> None:
        """Record the failure. The cursor kept is the last completed item's for an item's own
        exception, the last durable one when the engine refused the job's data."""
        if self.result is not None:  # a callback after the run's durable end raised
            log.error("job %s: %s raised after the run ended %s: %s", self.job_id,
                      "on_complete" if self.result.completed else "on_shutdown",
                      self.result.status, exc)
            self.result = dataclasses.replace(self.result, error=exc)
            return
        if self._transactions is not None:
            self._transactions.rollback()
            keep_cursor = False
        message = f"{type(exc).__name__}: {exc}"
        try:
            self._checkpoint("failed", durable=not keep_cursor, error=message)
        except (StaleLeaseError, ResumableError) as inner:
            log.error("job %s: could not record its failure: %s", self.job_id, inner)
        if self.result is None:
            self._finish("failed", message, error=exc)
            log.error("failed job %s: %s", self.job_id, message)

    def _release(self, status: str) -> None:
        self._checkpoint(status, self.started_at, durable=True)

    def _abandon(self) -> None:
        if self._transactions is not None:
            self._transactions.rollback()
        log.error("job %s: lease generation %d was replaced; stopping", self.job_id,
                  self.lease.generation)
        self._finish("failed", "stale lease")
