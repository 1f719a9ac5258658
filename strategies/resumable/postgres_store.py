"""``PostgresStore``: cursors, status, counters and fenced leases in one PostgreSQL table, shared
by every worker machine, and exactly-once effects that commit with the cursor.

Each job is a row of the table (``resumable_jobs`` by default); the generations (fencing
tokens) come from a sequence, ``TABLE_generation``, so a job id never sees one twice, even when
its row is deleted and made again. Taking a lease locks the job's row (``SELECT ... FOR
UPDATE``) and nothing else, so jobs on many machines take and renew their leases in parallel. A
checkpoint is one ``UPDATE ... WHERE job_id = %s AND generation = %s``: a runner whose lease was
replaced changes no row, and its write is refused.

It is a ``TransactionalStore``. With ``Runner(exactly_once=True)`` a batch's transaction is
opened on ``connection`` (the store's psycopg connection, or the caller's own, given as
``connection=``); the job writes its effects through it inside ``each_iteration`` and the
batch's checkpoint commits them with the cursor. The transaction locks the job's row only from
that checkpoint's ``UPDATE`` to its ``COMMIT``, and the effects' own rows: exactly-once jobs
that touch different rows run in parallel.

Needs psycopg 3 (``pip install 'deploysim[postgres]'``); the rest of the engine needs only the
standard library.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import ResumableError
from .store import STATUSES, JobRecord, Lease, _bad_status, _check_acquire, _stale, decode_cursor

log = logging.getLogger("deploysim.strategies.resumable")

T = TypeVar("T")

DEFAULT_TABLE = "resumable_jobs"

# name -> (SQL type, Python kind the value must have)
_COLUMNS: dict[str, tuple[str, type]] = {
    "job_id": ("text PRIMARY KEY", str),
    "status": ("text NOT NULL DEFAULT 'pending'", str),
    "cursor": ("text", str),
    "executions": ("bigint NOT NULL DEFAULT 0", int),
    "interruptions": ("bigint NOT NULL DEFAULT 0", int),
    "items_done": ("bigint NOT NULL DEFAULT 0", int),
    "run_time": ("double precision NOT NULL DEFAULT 0", float),
    "owner": ("text", str),
    "generation": ("bigint NOT NULL DEFAULT 0", int),
    "lease_expires": ("double precision NOT NULL DEFAULT 0", float),
    "error": ("text", str),
    "updated_at": ("double precision NOT NULL DEFAULT 0", float),
}
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
_SECRET = re.compile(r"(://[^:/@]*:)[^@]*@|(password\s*=\s*)\S+", re.IGNORECASE)


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    return _SECRET.sub(lambda m: f"{m.group(1)}***@" if m.group(1) else f"{m.group(2)}***", url)


class PostgresStore:
    """The checkpoint store on PostgreSQL (see the module).

    ``url`` is a libpq URL or connection string (``postgresql://user@host:5432/db``); or pass
    ``connection=`` a psycopg 3 connection of your own (the store then uses it as it is: in
    exactly-once mode your effects and the cursor commit on it). ``table`` names the table
    (created, with its sequence, if missing; a table of another shape is refused).
    ``connect_timeout`` bounds each connection attempt, in seconds. A URL psycopg cannot read,
    a server it cannot reach or a table of the wrong shape is one ``ResumableError`` naming the
    store; a write that fails leaves what was stored before unchanged. The store reconnects by
    itself after a lost connection it made, and tries the write again (not inside an
    exactly-once batch: that batch is lost, and its checkpoint fails).

    One store object carries one exactly-once batch at a time: another thread's ``begin``,
    ``acquire``, ``checkpoint``, ``reset`` or ``delete`` during it is refused with a
    ``ResumableError``. Give each thread or runner its own store (``local_store(url)`` does).
    """

    def __init__(self, url: str | None = None, *, connection: Any = None,
                 table: str = DEFAULT_TABLE, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - the extra is missing
            raise ResumableError(
                "PostgresStore needs psycopg 3: pip install 'deploysim[postgres]'") from None
        self._psycopg = psycopg
        if (url is None) == (connection is None):
            raise ResumableError(
                "PostgresStore: pass url='postgresql://USER@HOST/DB' or connection=, not "
                f"{'both' if url is not None else 'neither'}")
        if not isinstance(table, str) or not _NAME.match(table):
            raise ResumableError(
                f"PostgresStore: table={table!r}: must be a lower-case SQL name of letters, "
                f"digits and _ (e.g. {DEFAULT_TABLE!r})")
        self.table = table
        self._sequence = f"{table}_generation"
        self._connect_timeout = connect_timeout
        self._url = url
        self.name = _redacted(url) if url is not None else f"connection {id(connection):#x}"
        self._lock = threading.RLock()
        self._batch: Any = None  # the open exactly-once transaction, if any
        self._batch_thread: int | None = None
        self._batch_job: str | None = None
        if url is not None:
            if not isinstance(url, str):
                raise ResumableError(f"PostgresStore: url={url!r}: must be a str such as "
                                     f"'postgresql://USER@HOST/DB'")
            self.connection = self._connect()
        else:
            if not isinstance(connection, psycopg.Connection):
                raise ResumableError(
                    f"PostgresStore: connection={connection!r}: must be a psycopg 3 Connection")
            self.connection = connection
        self._run(self._setup, "open")

    # -- connecting -------------------------------------------------------------------------

    def _connect(self) -> Any:
        psycopg = self._psycopg
        assert self._url is not None
        try:
            return psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=max(1, round(self._connect_timeout)))
        except psycopg.ProgrammingError as exc:  # a URL libpq cannot read
            raise ResumableError(
                f"checkpoint store {self.name!r}: not a PostgreSQL URL ({_first_line(exc)}); "
                f"use postgresql://USER@HOST:PORT/DB") from None
        except psycopg.Error as exc:
            raise ResumableError(
                f"checkpoint store {self.name!r}: cannot connect ({_first_line(exc)})") from None

    def _setup(self) -> None:
        t, c = self.table, self.connection
        columns = ", ".join(f"{name} {kind}" for name, (kind, _) in _COLUMNS.items())
        with c.transaction():
            # two workers starting at once would both create the table: one at a time
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"deploysim:{t}",))
            c.execute(f"CREATE TABLE IF NOT EXISTS {t} ({columns})")
            c.execute(f"CREATE SEQUENCE IF NOT EXISTS {self._sequence}")
            found = {row[0] for row in c.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s", (t,))}
        missing = [name for name in _COLUMNS if name not in found]
        if missing:
            raise ResumableError(
                f"checkpoint store {self.name!r}: table {t!r} is not a store's table (it has no "
                f"column {', '.join(missing)}); pass table= another name, or drop it")

    def _run(self, action: Callable[[], T], what: str, job_id: str | None = None) -> T:
        """``action`` under the store's lock; a database error becomes one ResumableError
        naming the store. A connection of ours found lost (a server restart, a failover) is
        made again and the action tried once more, unless a batch was open on it: that batch
        is gone, and so is the write."""
        psycopg = self._psycopg
        who = f"job {job_id!r}: " if job_id else ""
        with self._lock:
            retry = True
            while True:
                in_batch = self._batch is not None
                try:
                    if self._url is not None and self.connection.closed and not in_batch:
                        log.warning("store %s: connection lost; reconnecting", self.name)
                        self.connection = self._connect()
                    return action()
                except psycopg.Error as exc:
                    lost = self.connection.closed
                    if retry and lost and not in_batch and self._url is not None:
                        retry = False
                        continue
                    if in_batch and lost:
                        self._batch = self._batch_thread = None
                    raise ResumableError(
                        f"{who}checkpoint store {self.name!r}: {what} failed "
                        f"({_first_line(exc)}); stored progress is unchanged") from None

    # -- exactly-once batches -----------------------------------------------------------------

    def _refuse_other_batch(self, job_id: str | None) -> None:
        owner = self._batch_thread
        if owner is not None and owner != threading.get_ident():
            raise ResumableError(
                f"job {job_id!r}: checkpoint store {self.name!r} has an exactly-once batch of "
                f"job {self._batch_job!r} open in another thread; one PostgresStore carries one "
                f"batch at a time: give each runner or thread its own (local_store(url) does)")

    def begin(self) -> None:
        """Open the transaction that the effects of a batch and its checkpoint share."""
        def body() -> None:
            self._refuse_other_batch(self._batch_job)
            if self._batch is not None:  # an earlier batch of this thread was left open
                self._end_batch(commit=False)
            batch = self.connection.transaction()
            batch.__enter__()
            self._batch, self._batch_thread = batch, threading.get_ident()

        self._run(body, "begin", self._batch_job)

    def rollback(self) -> None:
        """Drop the open transaction, if any, effects and all (not another thread's batch)."""
        with self._lock:
            if self._batch is None or self._batch_thread != threading.get_ident():
                return
            try:
                self._end_batch(commit=False)
            except self._psycopg.Error as exc:  # the connection is gone: so is the batch
                log.warning("store %s: rollback: %s", self.name, _first_line(exc))

    def _end_batch(self, *, commit: bool) -> None:
        batch, self._batch, self._batch_thread = self._batch, None, None
        if commit:
            batch.__exit__(None, None, None)
        else:
            rollback = self._psycopg.Rollback()
            batch.__exit__(type(rollback), rollback, None)

    # -- the store contract -----------------------------------------------------------------

    def _record(self, row: tuple[Any, ...]) -> JobRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        job_id = values["job_id"]
        values["cursor"] = decode_cursor(job_id, values["cursor"])
        for name in ("run_time", "lease_expires", "updated_at"):
            values[name] = float(values[name])
        return JobRecord(**values)

    def _select(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        row = self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE job_id = %s"
            + (" FOR UPDATE" if lock else ""), (job_id,)).fetchone()
        return None if row is None else self._record(row)

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (creating the row if new) under a new generation, locking only
        the job's row. Raises LeaseHeldError while another owner's lease is live."""
        t = self.table

        def take() -> tuple[Lease, JobRecord]:
            c = self.connection  # as it is now: a lost one is made again before this runs
            self._refuse_other_batch(job_id)
            if self._batch is not None:  # a batch an abandoned run of this thread left open
                log.warning("job %s: rolling back a transaction left open by an earlier run",
                            job_id)
                self._end_batch(commit=False)
            self._batch_job = job_id
            with c.transaction():
                c.execute(f"INSERT INTO {t} (job_id) VALUES (%s) ON CONFLICT (job_id) DO NOTHING",
                          (job_id,))
                record = self._select(job_id, lock=True)
                assert record is not None
                _check_acquire(record, owner, now)
                generation = c.execute(
                    "SELECT CASE WHEN g > %s THEN g ELSE setval(%s, %s + 1) END "
                    "FROM nextval(%s) AS g",
                    (record.generation, self._sequence, record.generation, self._sequence),
                ).fetchone()[0]
                runs = record.executions + (record.status != "completed")
                row = c.execute(
                    f"UPDATE {t} SET owner = %s, generation = %s, lease_expires = %s, "
                    f"executions = %s, updated_at = %s WHERE job_id = %s "
                    f"RETURNING {', '.join(_COLUMNS)}",
                    (owner, generation, now + ttl, runs, now, job_id)).fetchone()
            return Lease(job_id, owner, generation, now + ttl), self._record(row)

        return self._run(take, "acquire", job_id)

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
        """Write progress under ``lease`` and commit, with the effects of the open batch if
        there is one. Refused with StaleLeaseError if the lease was replaced; then nothing of
        the batch is kept."""
        if status not in STATUSES:
            raise _bad_status(lease, status)
        held = status == "running"
        expires = now + ttl if held else 0.0
        t = self.table

        def write() -> None:
            c = self.connection
            changed = c.execute(
                f"UPDATE {t} SET status = %s, cursor = %s, items_done = %s, run_time = %s, "
                f"interruptions = %s, owner = %s, lease_expires = %s, error = %s, "
                f"updated_at = %s WHERE job_id = %s AND generation = %s",
                (status, cursor_json, items_done, run_time, interruptions,
                 lease.owner if held else None, expires, error, now, lease.job_id,
                 lease.generation)).rowcount
            if changed != 1:
                row = c.execute(f"SELECT generation FROM {t} WHERE job_id = %s",
                                (lease.job_id,)).fetchone()
                raise _stale(lease, None if row is None else row[0])

        def body() -> None:
            self._refuse_other_batch(lease.job_id)
            if self._batch is None:
                write()
                return
            try:
                write()
            except BaseException:
                self._end_batch(commit=False)
                raise
            self._end_batch(commit=True)

        self._run(body, "checkpoint", lease.job_id)
        return Lease(lease.job_id, lease.owner, lease.generation, expires)

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has never seen it."""
        return self._run(lambda: self._select(job_id), "read", job_id)

    def jobs(self) -> list[JobRecord]:
        """Every record, in job-id order."""
        rows = self._run(lambda: self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {self.table} ORDER BY job_id").fetchall(), "read")
        return [self._record(row) for row in rows]

    def reset(self, job_id: str) -> None:
        """Forget a job's progress (its generation survives, so old leases stay fenced)."""
        def body() -> None:
            self._refuse_other_batch(job_id)
            self.connection.execute(
                f"UPDATE {self.table} SET status = 'pending', cursor = NULL, items_done = 0, "
                f"executions = 0, interruptions = 0, run_time = 0, owner = NULL, "
                f"lease_expires = 0, error = NULL WHERE job_id = %s", (job_id,))

        self._run(body, "reset", job_id)

    def delete(self, job_id: str) -> None:
        """Remove a job's row. Its generations are never handed out again, so a runner still
        holding one of its leases stays fenced; ``reset`` is the way to start a job over."""
        def body() -> None:
            self._refuse_other_batch(job_id)
            self.connection.execute(f"DELETE FROM {self.table} WHERE job_id = %s", (job_id,))

        self._run(body, "delete", job_id)

    def close(self) -> None:
        """Close the connection (one the caller passed in is left open)."""
        if self._url is not None:
            self.connection.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self.jobs())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _redacted(text.splitlines()[0] if text else type(exc).__name__)
