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
Under the wall clock a heartbeat thread renews the lease while an item runs (docs/engine.md,
"Leases"). Everything is logged under the logger ``deploysim.strategies.resumable``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .clock import Clock, WallClock
from .errors import LeaseHeldError, ResumableError, StaleLeaseError, StopRequestedError
from .job import IterationJob
from .signals import StopSignal
from .store import CheckpointStore, Lease, TransactionalStore

log = logging.getLogger("deploysim.strategies.resumable")

INF = math.inf
_END = object()
# A wall clock that moves this much more than the monotonic one between two checkpoints has
# been stepped forward (NTP, a VM resumed): worth a warning, since leases compare wall time.
_STEP_WARNING = 1.0


@dataclass(frozen=True, slots=True)
class Throttle:
    """``Runner(throttle=...)``: after each item, interrupt the job when ``predicate()`` is true,
    asking to be retried after ``backoff`` seconds (``RunResult.retry_after``)."""

    predicate: Callable[[], bool]
    backoff: float = 30.0


@dataclass(frozen=True, slots=True)
class Pause:
    """Yielded as an item by an enumerator (see ``enumerators.throttle``) to interrupt the job
    before its next item; the cursor does not move. Composing enumerators (``batches``,
    ``nested``) pass it on as it is, paired with the cursor of the last item completed."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run of a job ended.

    ``status`` is "completed", "interrupted" (re-queue it; ``retry_after`` seconds from now if
    set), "failed" (``error`` holds the exception) or "busy" (``Runner.run`` only: another
    owner holds the job's lease; nothing ran; try again in ``retry_after`` seconds, when that
    lease expires). ``cursor`` is the durable cursor, ``items`` the items processed in this
    run, ``items_done`` and ``run_time`` totals over every run, ``times_interrupted`` the
    interruptions so far.
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

    @property
    def busy(self) -> bool:
        """True when another owner's live lease kept this run from starting."""
        return self.status == "busy"


def default_owner() -> str:
    """A worker name unique to one runner: host, process id and a random token, so that two
    runners of one process (two threads) never pass for each other. A worker that must know its
    own lease again after a restart passes a stable ``owner`` instead (docs/engine.md)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _enumerator_name(job: IterationJob, it: object) -> str:
    inner = getattr(it, "__qualname__", type(it).__name__)
    return f"{type(job).__name__}.build_enumerator ({inner})"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_seconds(name: str, value: object, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if not _is_number(value) or not value > 0:  # type: ignore[operator]
        raise ResumableError(
            f"{name}={value!r}: must be a positive number of seconds (e.g. 5.0)"
            + (" or None" if optional else "")
        )
    return float(value)  # type: ignore[arg-type]


def _check_count(name: str, value: object, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ResumableError(
            f"{name}={value!r}: must be an int >= 1" + (" or None" if optional else "")
        )
    return value


class Runner:
    """Runs resumable jobs against a checkpoint store.

    ``checkpoint_every`` (seconds, default 5) and ``checkpoint_every_items`` set how often
    progress is made durable; either may be None, not both. ``lease_ttl`` is how long a lease
    lasts without a renewal; checkpoints renew it, at least every ``lease_ttl / 2``, and while
    an item runs the heartbeat renews it every ``lease_ttl / 3``. ``heartbeat`` (default: on
    under the wall clock, off under any other clock and with ``exactly_once``) starts that
    thread. ``max_runtime`` caps one run (the job's own ``max_runtime`` also applies; the
    smaller wins). ``throttle`` and the ``stop_when`` predicates, checked after every item,
    interrupt the job. ``exactly_once`` needs a ``TransactionalStore`` and commits ``batch``
    items' effects with each checkpoint. ``owner`` names this runner in leases (default: host,
    process id and a token unique to this runner); ``clock`` (default: the wall clock) and
    ``stop`` (default: a fresh ``StopSignal``) are what it reads.
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
        heartbeat: bool | None = None,
    ) -> None:
        checkpoint_every = _check_seconds("checkpoint_every", checkpoint_every, optional=True)
        max_runtime = _check_seconds("max_runtime", max_runtime, optional=True)
        lease_ttl = _check_seconds("lease_ttl", lease_ttl, optional=False)  # type: ignore[assignment]
        checkpoint_every_items = _check_count(
            "checkpoint_every_items", checkpoint_every_items, optional=True)
        batch = _check_count("batch", batch, optional=False)  # type: ignore[assignment]
        for name, flag in (("exactly_once", exactly_once), ("heartbeat", heartbeat)):
            if not isinstance(flag, bool) and not (name == "heartbeat" and flag is None):
                raise ResumableError(f"{name}={flag!r}: must be True or False")
        if checkpoint_every is None and checkpoint_every_items is None and not exactly_once:
            raise ResumableError(
                "checkpoint_every and checkpoint_every_items are both None: set at least one "
                "(e.g. checkpoint_every=5.0 seconds)"
            )
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise ResumableError(f"owner={owner!r}: must be a non-empty str (or None)")
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise ResumableError(f"clock={clock!r}: must have a now() method (e.g. WallClock())")
        if stop is not None and not hasattr(stop, "requested"):
            raise ResumableError(f"stop={stop!r}: must be a StopSignal")
        if throttle is not None and not isinstance(throttle, Throttle):
            raise ResumableError(f"throttle={throttle!r}: must be a Throttle(predicate, backoff)")
        try:
            predicates = () if callable(stop_when) else tuple(stop_when)
        except TypeError:
            predicates = (stop_when,)  # type: ignore[assignment]
        if callable(stop_when) or not all(callable(p) for p in predicates):
            raise ResumableError(
                f"stop_when={stop_when!r}: must be a sequence of callables returning bool"
            )
        self._transactions: TransactionalStore | None = None
        if exactly_once:
            if not isinstance(store, TransactionalStore):
                raise ResumableError(
                    f"exactly_once=True needs a TransactionalStore (begin, rollback and "
                    f"connection, as SQLiteStore has), not {type(store).__name__}"
                )
            if heartbeat:
                raise ResumableError(
                    "heartbeat=True with exactly_once=True: a batch's open transaction holds "
                    "the store's connection, so nothing can renew the lease during it; leave "
                    "heartbeat unset and make lease_ttl longer than the longest batch"
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
        self.stop_when = predicates
        self.exactly_once = exactly_once
        self.batch = int(batch)
        self.heartbeat = (
            isinstance(self.clock, WallClock) and not exactly_once if heartbeat is None
            else heartbeat
        )

    def start(self, job_id: str, job: IterationJob) -> Execution:
        """Take the job's lease and prepare its run, to be driven step by step with
        ``advance(until)`` (the simulator does). Raises LeaseHeldError while another owner's
        lease is live. ``run`` is this and one ``advance()``."""
        return Execution(self, job_id, job)

    def run(self, job_id: str, job: IterationJob) -> RunResult:
        """Run the job until it completes, is interrupted or fails. While another owner's lease
        is live, nothing runs and the result is "busy", with ``retry_after`` the seconds until
        that lease expires. A store that stops waiting for a locked file (its ``should_stop``)
        ends the run "interrupted", writing nothing. Raises StaleLeaseError if another runner
        took the job's lease meanwhile, ResumableError for bad stored data or a broken
        enumerator."""
        try:
            execution = self.start(job_id, job)
            execution.advance()
        except LeaseHeldError as held:
            return self._busy(job_id, held)
        except StopRequestedError as stopped:  # the store gave up waiting for a locked file
            return self._stored_result(job_id, "interrupted", str(stopped), None)
        assert execution.result is not None
        return execution.result

    def _busy(self, job_id: str, held: LeaseHeldError) -> RunResult:
        log.info("job %s is busy: %s", job_id, held)
        reason = f"leased by {held.holder!r} (generation {held.generation})"
        return self._stored_result(job_id, "busy", reason, held.seconds_left)

    def _stored_result(self, job_id: str, status: str, reason: str,
                       retry_after: float | None) -> RunResult:
        """A result for a run that wrote nothing: the job's progress as stored."""
        record = self.store.get(job_id)
        if record is None:
            return RunResult(job_id, status, reason, None, 0, 0, 0, 0.0, retry_after)
        return RunResult(job_id, status, reason, record.cursor, 0, record.items_done,
                         record.interruptions, record.run_time, retry_after)


def check_runner_options(**options: Any) -> None:
    """Raise the ``ResumableError`` that ``Runner(store, **options)`` would raise, without a
    store of the caller's: for adapters that check their settings before any job runs."""
    from .store import MemoryStore, SQLiteStore  # a store that needs nothing, of the right kind

    probe: Any = SQLiteStore(":memory:") if options.get("exactly_once") is True else (
        MemoryStore())
    try:
        Runner(probe, **options)
    finally:
        if isinstance(probe, SQLiteStore):
            probe.close()


class _Heartbeat:
    """A thread that renews an execution's lease while its items run (``Execution._renew``),
    for as long as ``advance`` runs; ``stop`` ends it, and no renewal is written after."""

    __slots__ = ("_execution", "_stopped", "_thread")

    def __init__(self, execution: Execution) -> None:
        self._execution = execution
        self._stopped = threading.Event()
        with execution._write_lock:
            execution._beating = True
        self._thread = threading.Thread(
            target=self._beat, name=f"lease heartbeat {execution.job_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        execution = self._execution
        wait = execution.renew_every
        while not self._stopped.wait(wait):
            next_wait = execution._renew()
            if next_wait is None:
                return
            wait = next_wait

    def stop(self) -> None:
        execution = self._execution
        with execution._write_lock:
            execution._beating = False
        self._stopped.set()


class Execution:
    """One run of one job. ``advance(until)`` processes items while the clock is before
    ``until`` and returns True once the run has ended (see ``result``).

    Times kept here (``started_at``, ``deadline``, ``next_checkpoint_at``) are readings of the
    clock's ``monotonic()`` (its ``now()`` if it has none); ``until`` is one too."""

    def __init__(self, runner: Runner, job_id: str, job: IterationJob) -> None:
        self.runner = runner
        self.job_id = job_id
        self.job = job
        self.result: RunResult | None = None
        self.items = 0
        clock = runner.clock
        self._wall = clock.now
        self._clock: Callable[[], float] = getattr(clock, "monotonic", None) or clock.now
        self._transactions = runner._transactions
        self._write_lock = threading.Lock()
        self._beating = False
        self._heartbeat = runner.heartbeat
        self.renew_every = runner.lease_ttl / 3
        now = self._clock()
        wall = self._wall()
        self.lease: Lease
        self.lease, record = runner.store.acquire(job_id, runner.owner, wall, runner.lease_ttl)
        self.started_at = now
        self._renewed_at = now
        self._stamp = (wall, now)  # wall and monotonic readings at the last write
        self.cursor = record.cursor
        self._stored_cursor = record.cursor  # where this run resumes from (None: the start)
        self._durable_json: str | None = None if record.cursor is None else json.dumps(
            record.cursor)
        self._durable_items = record.items_done
        self._base_items = record.items_done
        self._base_run_time = record.run_time
        self._durable_run_time = record.run_time
        self._interruptions = record.interruptions
        self._durable_interruptions = record.interruptions
        self._checks_pending = False
        limits = [x for x in (runner.max_runtime, job.max_runtime) if x is not None]
        self.deadline = now + min(limits) if limits else INF
        self.checkpoint_interval = min(runner.checkpoint_every or INF, runner.lease_ttl / 2)
        self.next_checkpoint_at = now + self.checkpoint_interval
        self._items_every = (
            runner.batch if runner.exactly_once else runner.checkpoint_every_items
        ) or 0
        self._since_checkpoint = 0
        self._iter: Iterator[tuple[Any, Any]] | None = None
        self._ahead: Any = None  # a pair read ahead by a checkpoint, to be run next
        self._vouched = False  # the enumerator vouches for its cursors' order
        self._direction = 0  # cursors must keep moving the way their first move went
        if record.status == "completed":
            self._release("completed")
            self._finish("completed", "already completed")
            return
        self._first_run = record.status == "pending"  # on_start has never completed

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
        if not self._heartbeat:
            return self._advance(until)
        heartbeat = _Heartbeat(self)
        try:
            return self._advance(until)
        finally:
            heartbeat.stop()

    def _advance(self, until: float) -> bool:
        try:
            if self._iter is None:
                self._begin()
                stop = self.runner.stop
                if stop.requested:  # before the first item: nothing is in hand
                    self._interrupt(stop.reason or "stop requested")
                    return True
            if self._checks_pending:
                self._checks_pending = False
                if self._after_item(self._clock()):
                    return True
            return self._loop(until)
        except StaleLeaseError:
            self._abandon()
            raise
        except StopRequestedError:  # nothing was written; the last checkpoint stands
            if self._transactions is not None:
                self._transactions.rollback()
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
        built = job.build_enumerator(self.cursor)
        self._iter = iter(built)
        self._vouched = bool(getattr(built, "vouches_for_order", False)
                             or getattr(self._iter, "vouches_for_order", False))
        if self._transactions is not None:
            self._transactions.begin()

    def _loop(self, until: float) -> bool:
        job = self.job
        each = job.each_iteration
        around = None if type(job).around_iteration is IterationJob.around_iteration else (
            job.around_iteration)
        clock = self._clock
        stop = self.runner.stop
        items_every = self._items_every
        last = self.cursor
        # an enumerator that vouches for its order is only checked for cursors that change
        ordered = not self._vouched and (
            last is None or isinstance(last, (int, float, str, list, tuple)))
        direction = self._direction
        assert self._iter is not None
        enumerator = self._iter
        while True:
            slow = bool(self.runner.stop_when) or self.runner.throttle is not None
            ahead = self._ahead
            if ahead is None:
                source: Iterator[Any] = enumerator
            else:  # one level of chain over the enumerator itself, however many checkpoints
                self._ahead = None
                source = itertools.chain((ahead,), enumerator)
            for pair in source:
                try:
                    item, cursor = pair
                except (TypeError, ValueError):
                    raise ResumableError(
                        f"job {self.job_id!r}: {_enumerator_name(job, enumerator)} yielded "
                        f"{pair!r}; it must yield (item, cursor) pairs"
                    ) from None
                if type(item) is Pause:
                    self._interrupt(item.reason, item.retry_after)
                    return True
                if last is not None:  # checked before the item runs: a refused item never runs
                    try:
                        if direction > 0:
                            moved = cursor > last
                        elif direction < 0:
                            moved = cursor < last
                        else:
                            moved = cursor != last
                            if moved and ordered:
                                if cursor > last:
                                    direction = self._direction = 1
                                else:
                                    if self.items == 0 and self._stored_cursor is not None:
                                        slow = self._confirm_descending(cursor, last)
                                    direction = self._direction = -1
                    except TypeError:
                        moved = cursor != last
                    if not moved:
                        raise self._refused(cursor, last)
                if around is None:
                    each(item)
                else:
                    around(item, lambda item=item: each(item))
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
                        or slow or (items_every and self._since_checkpoint >= items_every)):
                    if self._after_item(now):
                        return True
                    if self._ahead is not None:  # a checkpoint looked one item ahead
                        break
            else:
                self._complete()
                return True

    def _confirm_descending(self, cursor: Any, stored: Any) -> bool:
        """The first cursor of a resumed run is below the stored one: right for an enumerator
        that counts down, wrong for one that ignored its cursor and started over. Look at the
        next cursor to tell (the pair is run next); True, so that the loop picks it up."""
        assert self._iter is not None
        ahead = next(self._iter, _END)
        if ahead is _END:  # a single item left: nothing to tell a countdown by
            return False
        self._ahead = ahead
        try:
            going_up = ahead[1] > cursor and type(ahead[0]) is not Pause
        except (TypeError, IndexError, KeyError):
            going_up = False
        if going_up:
            raise ResumableError(
                f"job {self.job_id!r}: {_enumerator_name(self.job, self._iter)} ignored its "
                f"cursor: built from cursor {stored!r}, it yielded cursor {cursor!r} first "
                f"(then {ahead[1]!r}), not past it; build_enumerator(cursor) must start after "
                f"cursor"
            )
        return True

    def _refused(self, cursor: Any, last: Any) -> ResumableError:
        """The error for a cursor that does not move on from ``last``."""
        name = _enumerator_name(self.job, self._iter)
        stored = self._stored_cursor
        if stored is not None and (self.items == 0 or (self.items == 1 and cursor != last)):
            first = f"cursor {cursor!r} first" if self.items == 0 else (
                f"cursor {last!r}, then {cursor!r}")
            return ResumableError(
                f"job {self.job_id!r}: {name} ignored its cursor: built from cursor {stored!r}, "
                f"it yielded {first}, not past it; build_enumerator(cursor) must start after "
                f"cursor"
            )
        return ResumableError(
            f"job {self.job_id!r}: {name} yielded cursor {cursor!r} after {last!r}; cursors "
            f"must keep moving one way"
        )

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
                if self._ahead is None:
                    assert self._iter is not None
                    ahead = next(self._iter, _END)  # no write if the completion comes next
                    if ahead is _END:
                        self._complete()
                        return True
                    self._ahead = ahead
                self._checkpoint("running", now)
                if self._transactions is not None:
                    self._transactions.begin()
        return self.result is not None

    # -- the lease ----------------------------------------------------------------------------

    def _renew(self) -> float | None:
        """Renew the lease unless a write did lately (the heartbeat thread calls this): the
        seconds until the next renewal is due, or None once there is nothing to renew."""
        with self._write_lock:
            if not self._beating:
                return None
            due = self._renewed_at + self.renew_every - self._clock()
            if due > 0:
                return due
            try:
                self.lease = self.runner.store.checkpoint(
                    self.lease, cursor_json=self._durable_json, status="running",
                    items_done=self._durable_items, run_time=self._durable_run_time,
                    interruptions=self._durable_interruptions, now=self._wall(),
                    ttl=self.runner.lease_ttl,
                )
            except StaleLeaseError as exc:  # the run stops at its next item boundary
                log.error("job %s: heartbeat: %s", self.job_id, exc)
                self.next_checkpoint_at = -INF
                self._beating = False
                return None
            except Exception as exc:  # a store hiccup: try again at the next beat
                log.warning("job %s: heartbeat could not renew the lease: %s", self.job_id, exc)
                return self.renew_every
            self._renewed_at = self._clock()
            log.debug("job %s: heartbeat renewed the lease", self.job_id)
            return self.renew_every

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
        again (``durable``: a failure the engine refused the data for, a release). ``now`` is
        a monotonic reading (run time); the store is given the wall time."""
        cursor_json: str | None
        if durable:
            cursor_json, items_done = self._durable_json, self._durable_items
        else:
            cursor_json = None if self.cursor is None else self._check_json(self.cursor)
            items_done = self._base_items + self.items
        now = self._clock() if now is None else now
        run_time = self._base_run_time + (now - self.started_at)
        ttl = self.runner.lease_ttl
        with self._write_lock:
            wall = self._wall()
            self._check_gap(wall, now)
            self.lease = self.runner.store.checkpoint(
                self.lease, cursor_json=cursor_json, status=status, items_done=items_done,
                run_time=run_time, interruptions=self._interruptions, now=wall, ttl=ttl,
                error=error,
            )
            self._durable_json = cursor_json
            self._durable_items = items_done
            self._durable_run_time = run_time
            self._durable_interruptions = self._interruptions
            if status != "running":
                self._beating = False  # released: the heartbeat must not take it back
            self._since_checkpoint = 0
            self._renewed_at = mono = self._clock()
            self.next_checkpoint_at = mono + self.checkpoint_interval  # work between writes
        log.debug("checkpointed job %s at cursor %s (%s)", self.job_id, cursor_json, status)

    def _check_gap(self, wall: float, mono: float) -> None:
        """Warn when the lease may have lapsed, or the wall clock was stepped, since the last
        write (wall and monotonic readings ``wall``, ``mono``)."""
        last_wall, last_mono = self._stamp
        self._stamp = (wall, mono)
        ttl = self.runner.lease_ttl
        if not self._heartbeat and mono - self._renewed_at > ttl and isinstance(
                self.runner.clock, WallClock):
            log.warning(
                "job %s: %.1f s since the lease was last renewed, more than lease_ttl=%s: "
                "another worker may have taken the job; without a heartbeat (exactly_once, or "
                "heartbeat=False) only checkpoints renew it, so make lease_ttl longer than the "
                "longest item or batch", self.job_id, mono - self._renewed_at, ttl)
        step = (wall - last_wall) - (mono - last_mono)
        if step > _STEP_WARNING:
            log.warning(
                "job %s: the wall clock jumped %.1f s ahead of the monotonic clock; leases "
                "compare wall time between workers and tolerate a skew under lease_ttl / 2",
                self.job_id, step)

    def _finish(self, status: str, reason: str, retry_after: float | None = None,
                error: BaseException | None = None) -> None:
        text = self._durable_json
        # the cursor as a resumed run will read it; an int's text is the int (the common case)
        cursor = None if text is None else (
            self.cursor if type(self.cursor) is int and text == str(self.cursor)
            else json.loads(text))
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
