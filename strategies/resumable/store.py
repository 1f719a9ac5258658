"""Checkpoint stores: where a job's cursor, status, counters and lease live.

A lease carries a fencing token, the job's *generation*. Taking a lease draws a new generation
from a store-wide counter, so a generation is never handed out twice, not even after a job's row
was deleted and made again; every write names the generation it was made under and is refused
(``StaleLeaseError``) once a newer lease exists, so a zombie runner can never move a cursor.

``SQLiteStore`` is the durable store (a file in WAL mode, or ``":memory:"`` for tests).
``MemoryStore`` keeps the same contract in a dict, for the simulator and for fast tests.

``CheckpointStore`` is the contract every store keeps; ``TransactionalStore`` adds the
transaction that lets ``Runner(exactly_once=True)`` commit a batch's effects with its cursor.
``SQLiteStore`` is one, ``MemoryStore`` is not.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from .errors import LeaseHeldError, ResumableError, StaleLeaseError, StopRequestedError

log = logging.getLogger("deploysim.strategies.resumable")

STATUSES = ("pending", "running", "interrupted", "completed", "failed")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to run one job until ``expires_at``; ``generation`` is the fencing token."""

    job_id: str
    owner: str
    generation: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What a store knows of a job. ``cursor`` is decoded JSON (None: nothing done yet)."""

    job_id: str
    status: str = "pending"
    cursor: Any = None
    executions: int = 0
    interruptions: int = 0
    items_done: int = 0
    run_time: float = 0.0
    owner: str | None = None
    generation: int = 0
    lease_expires: float = 0.0
    error: str | None = None
    updated_at: float = 0.0


class CheckpointStore(Protocol):
    """The contract the runner relies on; ``SQLiteStore`` and ``MemoryStore`` keep it."""

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease for ``owner`` until ``now + ttl``, bumping its generation, and
        return it with the job's record (a new job gets a pending one). Raises LeaseHeldError
        while another owner's lease is live."""
        ...

    def checkpoint(
        self,
        lease: Lease,
        *,
        cursor_json: str | None,
        status: str,
        items_done: int,
        run_time: float,
        interruptions: int,
        now: float,
        ttl: float,
        error: str | None = None,
    ) -> Lease:
        """Write the job's progress under ``lease`` and return the renewed lease (held until
        ``now + ttl`` while ``status`` is "running", released otherwise). Raises
        StaleLeaseError, writing nothing, if a newer lease replaced this one."""
        ...

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has never seen it."""
        ...


@runtime_checkable
class TransactionalStore(CheckpointStore, Protocol):
    """A store whose checkpoints can commit together with the job's own writes: what
    ``Runner(exactly_once=True)`` needs. The runner calls ``begin()`` before each batch and the
    batch's checkpoint commits it; ``rollback()`` drops a batch that cannot finish. The job
    writes its effects through ``connection`` (for ``SQLiteStore``, its ``sqlite3.Connection``),
    inside ``each_iteration``, so that they land in the open transaction."""

    connection: Any

    def begin(self) -> None:
        """Open the transaction that a batch's effects and its checkpoint share."""
        ...

    def rollback(self) -> None:
        """Drop the open transaction, if any, effects and all."""
        ...


def decode_cursor(job_id: str, text: str | None) -> Any:
    """Decode a stored cursor, naming the job when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ResumableError(
            f"job {job_id!r}: stored cursor {text!r} is not JSON ({exc}); fix or reset the row"
        ) from None


def _acquire_refused(status: str, holder: str | None, expires: float, owner: str,
                     now: float) -> bool:
    """True when a job stored with ``status`` and leased by ``holder`` until ``expires`` cannot
    be acquired by ``owner`` at ``now`` (``_check_acquire`` says why)."""
    return status not in STATUSES or (holder is not None and holder != owner and expires > now)


def _check_acquire(record: JobRecord, owner: str, now: float) -> None:
    if not _acquire_refused(record.status, record.owner, record.lease_expires, owner, now):
        return
    if record.status not in STATUSES:
        raise ResumableError(
            f"job {record.job_id!r}: stored status {record.status!r} is not one of {STATUSES}"
        )
    if record.owner is not None and record.owner != owner and record.lease_expires > now:
        raise LeaseHeldError(record.job_id, record.owner, record.lease_expires - now,
                             record.generation)


def _bad_status(lease: Lease, status: str) -> ResumableError:
    return ResumableError(f"job {lease.job_id!r}: status {status!r} is not one of {STATUSES}")


def _stale(lease: Lease, current: int | None) -> StaleLeaseError:
    if current is None:
        return StaleLeaseError(f"job {lease.job_id!r} is no longer in the store")
    return StaleLeaseError(
        f"job {lease.job_id!r}: lease generation {lease.generation} of {lease.owner!r} was "
        f"replaced by generation {current}; this runner must stop (its work since the last "
        f"checkpoint will be redone by the new owner)"
    )


# A MemoryStore row is a list of JobRecord's fields, in their order, with the cursor kept as JSON
# text (as SQLiteStore keeps it): a list, so that a row is cheap to copy and to put back whole.
(_JOB_ID, _STATUS, _CURSOR, _EXECUTIONS, _INTERRUPTIONS, _ITEMS_DONE, _RUN_TIME, _OWNER,
 _GENERATION, _LEASE_EXPIRES, _ERROR, _UPDATED_AT) = range(len(dataclasses.fields(JobRecord)))
_NEW_ROW = dataclasses.astuple(JobRecord(""))  # a pending job's row, but for its id


def _as_record(row: list[Any], cursor: Any) -> JobRecord:
    values = list(row)
    values[_CURSOR] = cursor
    return JobRecord(*values)


class MemoryStore:
    """A store in a dict, with the same lease and fencing rules as ``SQLiteStore``.
    Nothing survives the process; the simulator and unit tests use it."""

    def __init__(self) -> None:
        self._jobs: dict[str, list[Any]] = {}  # job id -> row (see _JOB_ID ... _UPDATED_AT)
        self._last_generation = 0  # every lease's generation is drawn from here

    def _record(self, row: list[Any]) -> JobRecord:
        return _as_record(row, decode_cursor(row[_JOB_ID], row[_CURSOR]))

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (bumping its generation) and return it with the job's record.
        Raises LeaseHeldError while another owner's lease is live."""
        row = self._jobs.get(job_id)
        if row is None:
            row = self._jobs[job_id] = [job_id, *_NEW_ROW[_JOB_ID + 1:]]
        cursor = decode_cursor(job_id, row[_CURSOR])
        status = row[_STATUS]
        if _acquire_refused(status, row[_OWNER], row[_LEASE_EXPIRES], owner, now):
            _check_acquire(_as_record(row, cursor), owner, now)  # raises, naming the problem
        row[_EXECUTIONS] += status != "completed"
        row[_OWNER] = owner
        generation = row[_GENERATION] = self._last_generation = max(
            self._last_generation, row[_GENERATION]) + 1
        row[_LEASE_EXPIRES] = expires = now + ttl
        row[_UPDATED_AT] = now
        return Lease(job_id, owner, generation, expires), _as_record(row, cursor)

    def checkpoint(
        self,
        lease: Lease,
        *,
        cursor_json: str | None,
        status: str,
        items_done: int,
        run_time: float,
        interruptions: int,
        now: float,
        ttl: float,
        error: str | None = None,
    ) -> Lease:
        """Write progress under ``lease``; refused with StaleLeaseError if it was replaced."""
        if status not in STATUSES:
            raise _bad_status(lease, status)
        row = self._jobs.get(lease.job_id)
        if row is None or row[_GENERATION] != lease.generation:
            raise _stale(lease, None if row is None else row[_GENERATION])
        held = status == "running"
        expires = now + ttl if held else 0.0
        row[_STATUS] = status
        row[_CURSOR] = cursor_json
        row[_INTERRUPTIONS] = interruptions
        row[_ITEMS_DONE] = items_done
        row[_RUN_TIME] = run_time
        row[_OWNER] = lease.owner if held else None
        row[_LEASE_EXPIRES] = expires
        row[_ERROR] = error
        row[_UPDATED_AT] = now
        return Lease(lease.job_id, lease.owner, lease.generation, expires)

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has never seen it."""
        row = self._jobs.get(job_id)
        return None if row is None else self._record(row)

    def jobs(self) -> list[JobRecord]:
        """Every record, in job-id order."""
        return [self._record(self._jobs[k]) for k in sorted(self._jobs)]

    def reset(self, job_id: str) -> None:
        """Forget a job's progress (its generation survives, so old leases stay fenced)."""
        row = self._jobs.get(job_id)
        if row is not None:
            fresh = self._jobs[job_id] = [job_id, *_NEW_ROW[_JOB_ID + 1:]]
            fresh[_GENERATION], fresh[_UPDATED_AT] = row[_GENERATION], row[_UPDATED_AT]

    def delete(self, job_id: str) -> None:
        """Remove a job's row. Its generations are never handed out again, so a runner still
        holding one of its leases stays fenced; ``reset`` is the way to start a job over."""
        self._jobs.pop(job_id, None)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS resumable_jobs (
    job_id        TEXT PRIMARY KEY,
    status        TEXT NOT NULL DEFAULT 'pending',
    cursor        TEXT,
    executions    INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    items_done    INTEGER NOT NULL DEFAULT 0,
    run_time      REAL NOT NULL DEFAULT 0,
    owner         TEXT,
    generation    INTEGER NOT NULL DEFAULT 0,
    lease_expires REAL NOT NULL DEFAULT 0,
    error         TEXT,
    updated_at    REAL NOT NULL DEFAULT 0
)
"""
# The last generation handed out, store-wide: each lease takes the next one, so a job id never
# sees a generation twice, even when its row is deleted and made again.
_COUNTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS resumable_generations (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
)
"""
_HIGHEST = ("COALESCE(MAX(CASE WHEN typeof(generation) = 'integer' THEN generation END), 0) "
            "FROM resumable_jobs")
_COLUMNS = [f.name for f in dataclasses.fields(JobRecord)]

_LOCK_POLL = 0.1
"""With ``should_stop``: the seconds SQLite's own busy handler waits per attempt on a locked
database, and the longest sleep between attempts; the store asks ``should_stop`` between
attempts, so a stop request ends a wait within about twice this. Without it: 1 s and 0.5 s."""

_COMMIT_IN_BATCH = (
    "job {job!r}: checkpoint store {path!r}: {what} inside each_iteration would end the "
    "exactly-once batch before its checkpoint; with Runner(exactly_once=True) write the effects "
    "through store.connection without committing (no `with store.connection:`, no commit() or "
    "rollback()): the batch's checkpoint commits them together with the cursor"
)


def _check_should_stop(path: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ResumableError(
            f"checkpoint store {path!r}: should_stop={value!r} is not callable; pass e.g. "
            f"lambda: stop.requested, or None"
        )


class StoreConnection(sqlite3.Connection):
    """``SQLiteStore.connection``: a ``sqlite3.Connection`` that, while an exactly-once batch is
    open, refuses ``commit()``, ``rollback()`` and the commit at the end of a
    ``with connection:`` block, since each would end the batch apart from its cursor."""

    store_path = ""
    batch_job: str | None = None  # the job whose exactly-once batch is open, if any

    def commit(self) -> None:
        """Commit, unless an exactly-once batch is open (ResumableError)."""
        if self.batch_job is not None:
            raise ResumableError(_COMMIT_IN_BATCH.format(
                job=self.batch_job, path=self.store_path, what="commit()"))
        super().commit()

    def rollback(self) -> None:
        """Roll back, unless an exactly-once batch is open (ResumableError)."""
        if self.batch_job is not None:
            raise ResumableError(_COMMIT_IN_BATCH.format(
                job=self.batch_job, path=self.store_path, what="rollback()"))
        super().rollback()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self.batch_job is None:
            return bool(super().__exit__(exc_type, exc, tb))
        if exc_type is None:
            raise ResumableError(_COMMIT_IN_BATCH.format(
                job=self.batch_job, path=self.store_path, what="`with store.connection:`"))
        return False  # the item's own error: the runner drops the whole batch


class SQLiteStore:
    """The durable checkpoint store: one SQLite file in WAL mode (or ``":memory:"``).

    ``synchronous="NORMAL"`` (the default) makes each checkpoint survive a killed process, which
    is what deploys and OOM kills do; pass ``"FULL"`` to also survive power loss at the price of
    an fsync per checkpoint. A locked database is retried with exponential backoff for up to
    ``busy_timeout`` seconds in all before the write fails with a ResumableError; what was stored
    before stays as it was. ``should_stop`` (e.g. ``lambda: stop.requested``) ends such a wait
    early with StopRequestedError, writing nothing.

    It is a ``TransactionalStore``: for exactly-once effects, write them through
    ``connection`` inside ``each_iteration`` and run with ``Runner(exactly_once=True)``; the
    effects and the cursor commit together. Do not commit inside ``each_iteration``: the
    connection refuses ``commit()``, ``rollback()`` and ``with connection:`` during a batch, and
    a checkpoint that finds its batch ended early (a ``COMMIT`` in SQL) fails the run.

    Exactly-once batches serialize the file: a batch holds SQLite's write lock from ``begin``
    through the items' own work to its checkpoint, so exactly-once jobs on one file run one at a
    time, and a stopped or hung runner in a batch makes every other writer of the file (other
    jobs included) wait, then fail after ``busy_timeout``, whatever its lease says. To run
    exactly-once jobs in parallel, use a store on a server database (PostgreSQL, with row locks).
    One store object carries one exactly-once batch at a time: a second thread's ``begin``,
    ``acquire``, ``checkpoint`` or ``reset`` during another thread's batch is refused with a
    ResumableError. Give each thread or runner its own ``SQLiteStore(path)``; they may share the
    file. Lease generations come from a store-wide counter (table ``resumable_generations``,
    created and seeded on opening an older file), so they never repeat for a job id.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ResumableError(
                f"synchronous={synchronous!r}: use 'NORMAL' (survives a killed process) or 'FULL'"
            )
        self.path = str(path)
        self.busy_timeout = float(busy_timeout)
        _check_should_stop(self.path, should_stop)
        self._should_stop: Callable[[], bool] | None = None
        self._poll = 1.0
        self._local = threading.local()  # .job: the job this thread last took a lease on
        self._batch_thread: int | None = None  # the thread whose exactly-once batch is open
        try:
            self.connection: StoreConnection = sqlite3.connect(
                self.path, timeout=min(self._poll, self.busy_timeout), isolation_level=None,
                check_same_thread=False, factory=StoreConnection,
            )
        except sqlite3.Error as exc:
            raise ResumableError(f"checkpoint store {self.path!r}: cannot open ({exc})") from None
        self.connection.store_path = self.path
        self._lock = threading.RLock()
        self.should_stop = should_stop
        try:
            self._retry(lambda: self._setup(synchronous.upper()), "open")
        except BaseException:
            self.connection.close()
            raise

    def _setup(self, synchronous: str) -> None:
        c = self.connection
        try:
            c.execute("PRAGMA schema_version")  # reads the file's header
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked: retried
                raise
            raise ResumableError(
                f"checkpoint store {self.path!r} is not an SQLite database ({exc}); pass a "
                f"store file that SQLiteStore made, or a path that does not exist yet"
            ) from None
        if self.path != ":memory:":
            c.execute("PRAGMA journal_mode=WAL")
        c.execute(f"PRAGMA synchronous={synchronous}")
        c.execute(_SCHEMA)
        if c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                     "AND name = 'resumable_generations'").fetchone() is None:
            self._in_transaction(lambda: (  # a new file, or one made before the counter
                c.execute(_COUNTER_SCHEMA),
                c.execute(f"INSERT OR IGNORE INTO resumable_generations (id, last) "
                          f"SELECT 1, {_HIGHEST}"),
            ))

    # -- locked-database handling -------------------------------------------------------------

    @property
    def should_stop(self) -> Callable[[], bool] | None:
        """Asked while waiting for a locked database: once true, the wait ends with
        StopRequestedError. Setting it shortens SQLite's own wait per attempt to match."""
        return self._should_stop

    @should_stop.setter
    def should_stop(self, value: Callable[[], bool] | None) -> None:
        _check_should_stop(self.path, value)
        self._should_stop = value
        self._poll = 1.0 if value is None else _LOCK_POLL
        with self._lock:
            self.connection.execute(
                f"PRAGMA busy_timeout = {int(1000 * min(self._poll, self.busy_timeout))}")

    def _retry(self, action: Callable[[], T], what: str, job_id: str | None = None) -> T:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                with self._lock:
                    return action()
            except sqlite3.DatabaseError as exc:
                text = str(exc)
                locked = isinstance(exc, sqlite3.OperationalError) and (
                    "locked" in text or "busy" in text)
                who = f"job {job_id!r}: " if job_id else ""
                if not locked or time.monotonic() + delay > deadline:
                    raise ResumableError(
                        f"{who}checkpoint store {self.path!r}: {what} failed ({exc}); "
                        f"stored progress is unchanged"
                    ) from None
                if self._should_stop is not None and self._should_stop():
                    raise StopRequestedError(
                        f"{who}checkpoint store {self.path!r}: stopped waiting for the locked "
                        f"database ({what}) because a stop was requested; stored progress is "
                        f"unchanged"
                    ) from None
                log.debug("store %s: %s (%s), retrying in %.3f s", self.path, what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, self._poll / 2 if self._should_stop is None else self._poll)

    def _in_transaction(self, body: Callable[[], T]) -> T:
        c = self.connection
        own = not c.in_transaction
        if own:
            c.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return result

    # -- exactly-once batches -------------------------------------------------------------------

    def _refuse_other_batch(self, job_id: str | None) -> None:
        """Raise if another thread's exactly-once batch is open on this store object (call with
        the lock held): its transaction is the connection's, and this call would end it."""
        owner = self._batch_thread
        if owner is not None and owner != threading.get_ident():
            raise ResumableError(
                f"job {job_id!r}: checkpoint store {self.path!r} has an exactly-once batch of job "
                f"{self.connection.batch_job!r} open in another thread; one SQLiteStore carries "
                f"one exactly-once batch at a time: give each runner or thread its own "
                f"SQLiteStore({self.path!r}) (they may share the file)"
            )

    def _end_batch(self) -> None:
        self._batch_thread = None
        self.connection.batch_job = None

    def begin(self) -> None:
        """Open the transaction that the effects of a batch and its checkpoint share."""
        job = getattr(self._local, "job", None)

        def body() -> None:
            self._refuse_other_batch(job)
            self.connection.execute("BEGIN IMMEDIATE")
            self._batch_thread = threading.get_ident()
            self.connection.batch_job = job if job is not None else "?"

        self._retry(body, "begin", job)

    def rollback(self) -> None:
        """Drop the open transaction, if any, effects and all (not another thread's batch)."""
        with self._lock:
            owner = self._batch_thread
            if owner is not None and owner != threading.get_ident():
                return
            self._end_batch()
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")

    # -- the store contract ---------------------------------------------------------------------

    def _row(self, job_id: str) -> JobRecord | None:
        row = self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM resumable_jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        values["cursor"] = decode_cursor(job_id, values["cursor"])
        for name, kind in (("executions", int), ("interruptions", int), ("items_done", int),
                           ("generation", int), ("run_time", float), ("lease_expires", float)):
            if not isinstance(values[name], (int, float)) or isinstance(values[name], bool):
                raise ResumableError(
                    f"job {job_id!r}: stored {name} {values[name]!r} is not a number"
                )
            values[name] = kind(values[name])
        return JobRecord(**values)

    def _next_generation(self, current: int) -> int:
        """Draw the next lease generation from the store-wide counter (in a transaction)."""
        c = self.connection
        row = c.execute("SELECT last FROM resumable_generations WHERE id = 1").fetchone()
        if row is None:  # the counter's row was removed: seed it again
            row = c.execute(f"SELECT {_HIGHEST}").fetchone()
        last = row[0]
        if isinstance(last, bool) or not isinstance(last, int):
            raise ResumableError(
                f"checkpoint store {self.path!r}: stored generation counter {last!r} (table "
                f"resumable_generations) is not an integer; set it to the highest generation "
                f"in resumable_jobs"
            )
        generation = max(last, current) + 1
        c.execute("INSERT INTO resumable_generations (id, last) VALUES (1, ?) "
                  "ON CONFLICT(id) DO UPDATE SET last = excluded.last", (generation,))
        return generation

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (creating the row if new) under a new generation. Raises
        LeaseHeldError while another owner's lease is live."""
        c = self.connection

        def take() -> tuple[Lease, JobRecord]:
            record = self._row(job_id) or JobRecord(job_id)
            _check_acquire(record, owner, now)
            generation = self._next_generation(record.generation)
            c.execute(
                "INSERT INTO resumable_jobs (job_id) VALUES (?) ON CONFLICT(job_id) DO NOTHING",
                (job_id,),
            )
            runs = record.executions + (record.status != "completed")
            c.execute(
                "UPDATE resumable_jobs SET owner = ?, generation = ?, "
                "lease_expires = ?, executions = ?, updated_at = ? WHERE job_id = ?",
                (owner, generation, now + ttl, runs, now, job_id),
            )
            new = dataclasses.replace(
                record, owner=owner, generation=generation,
                lease_expires=now + ttl, executions=runs, updated_at=now,
            )
            return Lease(job_id, owner, generation, now + ttl), new

        def body() -> tuple[Lease, JobRecord]:
            self._refuse_other_batch(job_id)
            if c.in_transaction:  # a batch an abandoned run of this thread left open: drop it
                log.warning("job %s: rolling back a transaction left open by an earlier run",
                            job_id)
                self._end_batch()
                c.execute("ROLLBACK")
            return self._in_transaction(take)

        result = self._retry(body, "acquire", job_id)
        self._local.job = job_id
        return result

    def checkpoint(
        self,
        lease: Lease,
        *,
        cursor_json: str | None,
        status: str,
        items_done: int,
        run_time: float,
        interruptions: int,
        now: float,
        ttl: float,
        error: str | None = None,
    ) -> Lease:
        """Write progress under ``lease`` and commit (together with any effects written in the
        transaction opened by ``begin``). Refused with StaleLeaseError if the lease was replaced;
        then nothing of the transaction is kept."""
        if status not in STATUSES:
            raise _bad_status(lease, status)
        held = status == "running"
        expires = now + ttl if held else 0.0
        c = self.connection

        def body() -> None:
            cur = c.execute(
                "UPDATE resumable_jobs SET status = ?, cursor = ?, items_done = ?, run_time = ?, "
                "interruptions = ?, owner = ?, lease_expires = ?, error = ?, updated_at = ? "
                "WHERE job_id = ? AND generation = ?",
                (status, cursor_json, items_done, run_time, interruptions,
                 lease.owner if held else None, expires, error, now,
                 lease.job_id, lease.generation),
            )
            if cur.rowcount != 1:
                row = c.execute(
                    "SELECT generation FROM resumable_jobs WHERE job_id = ?", (lease.job_id,)
                ).fetchone()
                if row is not None and (isinstance(row[0], bool) or not isinstance(row[0], int)):
                    raise ResumableError(
                        f"job {lease.job_id!r}: stored generation {row[0]!r} is not an integer"
                    )
                raise _stale(lease, None if row is None else row[0])

        def attempt() -> None:
            batch = self._batch_thread
            if batch is None:
                self._in_transaction(body)
            elif batch == threading.get_ident():
                self._commit_batch(lease, body)
            else:
                self._refuse_other_batch(lease.job_id)

        self._retry(attempt, "checkpoint", lease.job_id)
        return dataclasses.replace(lease, expires_at=expires)

    def _commit_batch(self, lease: Lease, body: Callable[[], None]) -> None:
        """Commit this thread's batch with its checkpoint: one try, never retried, since the
        batch's effects are in the transaction."""
        c = self.connection
        self._end_batch()
        if not c.in_transaction:
            raise ResumableError(
                f"job {lease.job_id!r}: checkpoint store {self.path!r}: the exactly-once batch "
                f"was committed or rolled back before its checkpoint (a COMMIT, ROLLBACK or "
                f"executescript() on store.connection inside each_iteration?), so its effects "
                f"are not tied to the cursor; with Runner(exactly_once=True) never commit inside "
                f"each_iteration: the checkpoint commits the batch"
            )
        try:
            self._in_transaction(body)
        except sqlite3.OperationalError as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise ResumableError(
                f"job {lease.job_id!r}: checkpoint store {self.path!r}: commit failed "
                f"({exc}); the batch was rolled back, stored progress is unchanged"
            ) from None

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has never seen it."""
        return self._retry(lambda: self._row(job_id), "read", job_id)

    def jobs(self) -> list[JobRecord]:
        """Every record, in job-id order."""
        ids = self._retry(
            lambda: [r[0] for r in self.connection.execute(
                "SELECT job_id FROM resumable_jobs ORDER BY job_id")],
            "read",
        )
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def reset(self, job_id: str) -> None:
        """Forget a job's progress (its generation survives, so old leases stay fenced)."""

        def body() -> None:
            self._refuse_other_batch(job_id)
            self._in_transaction(lambda: self.connection.execute(
                "UPDATE resumable_jobs SET status='pending', cursor=NULL, items_done=0, "
                "executions=0, interruptions=0, run_time=0, owner=NULL, lease_expires=0, "
                "error=NULL WHERE job_id = ?", (job_id,)))

        self._retry(body, "reset", job_id)

    def delete(self, job_id: str) -> None:
        """Remove a job's row. Its generations are never handed out again, so a runner still
        holding one of its leases stays fenced; ``reset`` is the way to start a job over."""

        def body() -> None:
            self._refuse_other_batch(job_id)
            self._in_transaction(lambda: self.connection.execute(
                "DELETE FROM resumable_jobs WHERE job_id = ?", (job_id,)))

        self._retry(body, "delete", job_id)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self.jobs())
