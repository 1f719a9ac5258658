"""Checkpoint stores: where a job's cursor, status, counters and lease live.

A lease carries a fencing token, the job's *generation*. Taking a lease bumps the generation; every
write names the generation it was made under and is refused (``StaleLeaseError``) once a newer
lease exists, so a zombie runner can never move a cursor.

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

from .errors import LeaseHeldError, ResumableError, StaleLeaseError

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


def _check_acquire(record: JobRecord, owner: str, now: float) -> None:
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

    def _record(self, row: list[Any]) -> JobRecord:
        return _as_record(row, decode_cursor(row[_JOB_ID], row[_CURSOR]))

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (bumping its generation) and return it with the job's record.
        Raises LeaseHeldError while another owner's lease is live."""
        row = self._jobs.get(job_id)
        if row is None:
            row = self._jobs[job_id] = [job_id, *_NEW_ROW[_JOB_ID + 1:]]
        record = self._record(row)
        _check_acquire(record, owner, now)
        row[_EXECUTIONS] += record.status != "completed"
        row[_OWNER] = owner
        row[_GENERATION] += 1
        row[_LEASE_EXPIRES] = now + ttl
        row[_UPDATED_AT] = now
        return Lease(job_id, owner, row[_GENERATION], now + ttl), _as_record(row, record.cursor)

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
_COLUMNS = [f.name for f in dataclasses.fields(JobRecord)]


class SQLiteStore:
    """The durable checkpoint store: one SQLite file in WAL mode (or ``":memory:"``).

    ``synchronous="NORMAL"`` (the default) makes each checkpoint survive a killed process, which
    is what deploys and OOM kills do; pass ``"FULL"`` to also survive power loss at the price of
    an fsync per checkpoint. A locked database is retried with exponential backoff for up to
    ``busy_timeout`` seconds in all before the write fails with a ResumableError; what was stored
    before stays as it was.

    It is a ``TransactionalStore``: for exactly-once effects, write them through
    ``connection`` inside ``each_iteration`` and run with ``Runner(exactly_once=True)``; the
    effects and the cursor commit together.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ResumableError(
                f"synchronous={synchronous!r}: use 'NORMAL' (survives a killed process) or 'FULL'"
            )
        self.path = str(path)
        self.busy_timeout = float(busy_timeout)
        try:
            self.connection = sqlite3.connect(
                self.path, timeout=min(1.0, self.busy_timeout), isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ResumableError(f"checkpoint store {self.path!r}: cannot open ({exc})") from None
        self._lock = threading.RLock()
        self._retry(lambda: self._setup(synchronous.upper()), "open")

    def _setup(self, synchronous: str) -> None:
        c = self.connection
        if self.path != ":memory:":
            c.execute("PRAGMA journal_mode=WAL")
        c.execute(f"PRAGMA synchronous={synchronous}")
        c.execute(_SCHEMA)

    # -- locked-database handling -------------------------------------------------------------

    def _retry(self, action: Callable[[], T], what: str, job_id: str | None = None) -> T:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                with self._lock:
                    return action()
            except sqlite3.OperationalError as exc:
                locked = "locked" in str(exc) or "busy" in str(exc)
                if not locked or time.monotonic() + delay > deadline:
                    who = f"job {job_id!r}: " if job_id else ""
                    raise ResumableError(
                        f"{who}checkpoint store {self.path!r}: {what} failed ({exc}); "
                        f"stored progress is unchanged"
                    ) from None
                log.debug("store %s: %s (%s), retrying in %.3f s", self.path, what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

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

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (creating the row if new), bumping its generation. Raises
        LeaseHeldError while another owner's lease is live."""

        if self.connection.in_transaction:  # a batch a crashed run left open: drop it
            log.warning("job %s: rolling back a transaction left open by an earlier run", job_id)
            self.rollback()

        def body() -> tuple[Lease, JobRecord]:
            record = self._row(job_id) or JobRecord(job_id)
            _check_acquire(record, owner, now)
            self.connection.execute(
                "INSERT INTO resumable_jobs (job_id) VALUES (?) ON CONFLICT(job_id) DO NOTHING",
                (job_id,),
            )
            runs = record.executions + (record.status != "completed")
            self.connection.execute(
                "UPDATE resumable_jobs SET owner = ?, generation = generation + 1, "
                "lease_expires = ?, executions = ?, updated_at = ? WHERE job_id = ?",
                (owner, now + ttl, runs, now, job_id),
            )
            new = dataclasses.replace(
                record, owner=owner, generation=record.generation + 1,
                lease_expires=now + ttl, executions=runs, updated_at=now,
            )
            return Lease(job_id, owner, new.generation, now + ttl), new

        return self._retry(lambda: self._in_transaction(body), "acquire", job_id)

    def begin(self) -> None:
        """Open the transaction that the effects of a batch and its checkpoint share."""
        self._retry(lambda: self.connection.execute("BEGIN IMMEDIATE"), "begin")

    def rollback(self) -> None:
        """Drop the open transaction, if any, effects and all."""
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

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

        def body() -> None:
            cur = self.connection.execute(
                "UPDATE resumable_jobs SET status = ?, cursor = ?, items_done = ?, run_time = ?, "
                "interruptions = ?, owner = ?, lease_expires = ?, error = ?, updated_at = ? "
                "WHERE job_id = ? AND generation = ?",
                (status, cursor_json, items_done, run_time, interruptions,
                 lease.owner if held else None, expires, error, now,
                 lease.job_id, lease.generation),
            )
            if cur.rowcount != 1:
                row = self.connection.execute(
                    "SELECT generation FROM resumable_jobs WHERE job_id = ?", (lease.job_id,)
                ).fetchone()
                if row is not None and (isinstance(row[0], bool) or not isinstance(row[0], int)):
                    raise ResumableError(
                        f"job {lease.job_id!r}: stored generation {row[0]!r} is not an integer"
                    )
                raise _stale(lease, None if row is None else row[0])

        if self.connection.in_transaction:  # a batch's effects are in it: one try, no retry
            try:
                self._in_transaction(body)
            except sqlite3.OperationalError as exc:
                self.rollback()
                raise ResumableError(
                    f"job {lease.job_id!r}: checkpoint store {self.path!r}: commit failed "
                    f"({exc}); the batch was rolled back, stored progress is unchanged"
                ) from None
        else:
            self._retry(lambda: self._in_transaction(body), "checkpoint", lease.job_id)
        return dataclasses.replace(lease, expires_at=expires)

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
        self._retry(lambda: self._in_transaction(lambda: self.connection.execute(
            "UPDATE resumable_jobs SET status='pending', cursor=NULL, items_done=0, executions=0, "
            "interruptions=0, run_time=0, owner=NULL, lease_expires=0, error=NULL "
            "WHERE job_id = ?", (job_id,))), "reset", job_id)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self.jobs())
