"""The durable job queue of a chaos run: SQLite tables in WAL mode whose fetch, acknowledgement
and re-queue rules are the ones each real system follows.

How a worker fetches follows from what its strategy says a SIGKILL does (``discipline``):

- ``basic`` (``Lose``: Sidekiq basic fetch, Celery without acks_late): the fetch removes the job
  from ``queue``; a killed worker takes it with it.
- ``reliable`` (``Recover``: Sidekiq Pro super_fetch): the fetch moves it to ``inprogress``
  under the process's identity; a process starting up moves the jobs of processes whose
  ``heartbeats`` row expired back to the queue, at most once per ``check_every``.
- ``record`` (``Fail``: Resque): the fetch moves it to ``working``, the worker's record of the
  job in hand; a worker starting up prunes the records of dead workers of this host (their pid
  is gone, as Resque's ``prune_dead_workers`` checks) into ``failed`` (``DirtyExit``).
- ``unacked`` (``Requeue`` that restarts: Celery acks_late): the job stays in ``queue``,
  reserved, until acknowledged; it becomes visible again ``visibility_timeout`` after its
  delivery (Redis, SQS), or as soon as its holder's connection is gone (0: RabbitMQ).
- ``leased`` (``Requeue`` that keeps the cursor: the resumable engine): the job stays in
  ``queue`` under the engine owner's name; another worker may take it once the job's fenced
  lease in its checkpoint store has expired, and the worker of the same slot coming back takes
  it at once, as the engine allows its own owner to.

``busy`` says what each process is working on (as Sidekiq's process "work" hash does); it is
never used to recover a job, only to tell what was in flight when a run ended. ``enqueued``
and ``units`` are the controller's own record of what it put in. Each job's effects go to a
SQLite file of its own (``results`` table, and for the resumable engine its checkpoint store),
so that effects committed with a cursor do not serialise every worker behind one write lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from deploysim.strategies.base import Fail, Lose, Recover, Requeue, Strategy
from deploysim.strategies.resumable_model import Resumable

BASIC, RELIABLE, RECORD, UNACKED, LEASED = "basic", "reliable", "record", "unacked", "leased"

RESERVED_FOREVER = 1e18
"""``visible_at`` of a reservation that only its holder's death ends (RabbitMQ)."""

QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS enqueued (
    job INTEGER PRIMARY KEY, items INTEGER NOT NULL, units INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    unit INTEGER PRIMARY KEY, job INTEGER NOT NULL, first INTEGER NOT NULL,
    items INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    unit INTEGER PRIMARY KEY, pos REAL NOT NULL, visible_at REAL NOT NULL DEFAULT 0,
    owner TEXT, pid INTEGER, hint REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS queue_order ON queue (owner, pos);
CREATE TABLE IF NOT EXISTS inprogress (
    unit INTEGER PRIMARY KEY, owner TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (
    owner TEXT PRIMARY KEY, pid INTEGER NOT NULL, beat_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS working (
    owner TEXT PRIMARY KEY, pid INTEGER NOT NULL, unit INTEGER NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failed (
    unit INTEGER NOT NULL, reason TEXT NOT NULL, owner TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS busy (
    owner TEXT PRIMARY KEY, pid INTEGER NOT NULL, unit INTEGER NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""

RESULTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    item INTEGER NOT NULL, unit INTEGER NOT NULL, pid INTEGER NOT NULL, at REAL NOT NULL);
"""
"""Each job file's effects: one row per item execution that reached its write. No unique
constraint: a duplicate effect is stored, and counted, rather than refused."""

BUSY_TIMEOUT = 10.0
"""Seconds a connection waits for another process's write lock before giving up."""

SYNCHRONOUS = "OFF"
"""SQLite's ``synchronous`` setting for every database of a run. A chaos run kills processes,
never the machine, and with OFF a transaction is durable against that as soon as SQLite has
handed it to the operating system (SQLite's documentation of the pragma); what OFF gives up,
surviving power loss, no run can test. It also spares the fsyncs that NORMAL makes whenever a
WAL file starts afresh, which on a shared disk cost tens of milliseconds and would be measured
as the cost of taking a job."""


@dataclass(frozen=True, slots=True)
class Unit:
    """What the queue hands out: a whole job, or one sub-job of a split job."""

    unit: int
    job: int
    first: int
    items: int


def discipline(strategy: Strategy) -> str:
    """How workers of ``strategy`` fetch and acknowledge (see the module docstring)."""
    if isinstance(strategy, Resumable):
        return LEASED
    outcome = strategy.on_kill
    if isinstance(outcome, Lose):
        return BASIC
    if isinstance(outcome, Recover):
        return RELIABLE
    if isinstance(outcome, Fail):
        return RECORD
    if isinstance(outcome, Requeue):
        return UNACKED
    raise TypeError(f"no fetch discipline for on_kill {outcome!r}")


def job_db_path(workdir: str, job: int) -> str:
    """The SQLite file of job ``job``'s effects (and checkpoint, for the resumable engine)."""
    return os.path.join(workdir, "jobs", f"job-{job:05d}.db")


def job_key(job: int) -> str:
    """The job's id in its resumable checkpoint store."""
    return f"job-{job}"


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode to a WAL database that survives killed processes."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back if the body raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def process_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc: the signal check is all there is
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class QueueDB:
    """One process's connection to the queue, acting as ``owner`` (a process identity)."""

    def __init__(self, path: str, owner: str, pid: int | None = None) -> None:
        self.conn = connect(path)
        self.owner = owner
        self.pid = os.getpid() if pid is None else pid

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def warm(self) -> None:
        """Read the schema and map the WAL index now rather than at the first fetch."""
        self.conn.execute("SELECT count(*) FROM units").fetchone()

    # -- positions ----------------------------------------------------------------------------

    def _position(self, end: str, now: float) -> float:
        if end == "front":
            row = self.conn.execute("SELECT min(pos) FROM queue").fetchone()
            return (row[0] if row[0] is not None else now) - 1.0
        return now

    def _unit(self, unit: int) -> Unit:
        row = self.conn.execute(
            "SELECT unit, job, first, items FROM units WHERE unit = ?", (unit,)).fetchone()
        return Unit(*row)

    def _first_ready(self, now: float) -> int | None:
        row = self.conn.execute(
            "SELECT unit FROM queue WHERE owner IS NULL AND visible_at <= ? "
            "ORDER BY pos, unit LIMIT 1", (now,)).fetchone()
        return None if row is None else int(row[0])

    def _busy(self, unit: int, now: float) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO busy (owner, pid, unit, since) VALUES (?, ?, ?, ?)",
            (self.owner, self.pid, unit, now))

    # -- fetch --------------------------------------------------------------------------------

    def fetch(self, how: str, *, visibility: float = 0.0) -> Unit | None:
        """Take the first visible job under discipline ``how`` (not ``leased``; see
        ``fetch_leased``), or None when there is none."""
        now = time.time()
        if how == UNACKED:
            self._restore_unacked(now)
        if self._first_ready(now) is None:
            return None
        with transaction(self.conn) as c:
            unit = self._first_ready(now)
            if unit is None:
                return None
            if how == UNACKED:
                until = now + visibility if visibility > 0 else RESERVED_FOREVER
                c.execute("UPDATE queue SET owner = ?, pid = ?, visible_at = ? WHERE unit = ?",
                          (self.owner, self.pid, until, unit))
            else:
                c.execute("DELETE FROM queue WHERE unit = ?", (unit,))
                if how == RELIABLE:
                    c.execute("INSERT INTO inprogress (unit, owner, since) VALUES (?, ?, ?)",
                              (unit, self.owner, now))
                elif how == RECORD:
                    c.execute("INSERT OR REPLACE INTO working (owner, pid, unit, since) "
                              "VALUES (?, ?, ?, ?)", (self.owner, self.pid, unit, now))
            self._busy(unit, now)
            return self._unit(unit)

    def _restore_unacked(self, now: float) -> None:
        """Put back, at the back, reservations whose visibility timeout has passed or whose
        holder is gone (the broker's restore of unacknowledged messages)."""
        rows = self.conn.execute(
            "SELECT unit, pid, visible_at FROM queue WHERE owner IS NOT NULL").fetchall()
        due = [unit for unit, pid, visible_at in rows
               if (visible_at < RESERVED_FOREVER and visible_at <= now)
               or (visible_at >= RESERVED_FOREVER and not process_alive(pid))]
        if not due:
            return
        with transaction(self.conn) as c:
            for unit in due:
                c.execute("UPDATE queue SET owner = NULL, pid = NULL, visible_at = 0, pos = ? "
                          "WHERE unit = ? AND owner IS NOT NULL", (now, unit))

    def fetch_leased(
        self,
        engine_owner: str,
        lease_ttl: float,
        lease_of: Callable[[int], float],
    ) -> Unit | None:
        """The resumable engine's fetch: first a job this slot's engine owner still holds (a
        previous life of this worker crashed with it), then, in queue order, a ready job or a
        job of another owner whose lease has expired (``lease_of(job)`` reads its expiry from
        the job's checkpoint store; 0 when released)."""
        now = time.time()
        c = self.conn
        own = c.execute("SELECT unit FROM queue WHERE owner = ? ORDER BY pos LIMIT 1",
                        (engine_owner,)).fetchone()
        candidates: list[tuple[float, int, str | None]] = []
        hints: list[tuple[float, int]] = []
        if own is None:
            ready = self._first_ready(now)
            if ready is not None:
                pos = c.execute("SELECT pos FROM queue WHERE unit = ?", (ready,)).fetchone()[0]
                candidates.append((pos, ready, None))
            held = c.execute(
                "SELECT q.unit, u.job, q.owner, q.hint FROM queue q JOIN units u USING (unit) "
                "WHERE q.owner IS NOT NULL AND q.owner != ? AND q.hint <= ?",
                (engine_owner, now)).fetchall()
            for unit, job, owner, hint in held:
                expires = lease_of(job)
                if expires > now:
                    hints.append((expires, unit))
                else:
                    candidates.append((expires if expires > 0 else hint, unit, owner))
            if not candidates:
                if hints:
                    with transaction(c):
                        c.executemany("UPDATE queue SET hint = ? WHERE unit = ?", hints)
                return None
        with transaction(c):
            c.executemany("UPDATE queue SET hint = ? WHERE unit = ?", hints)
            if own is not None:
                unit = int(own[0])
                c.execute("UPDATE queue SET pid = ?, hint = ? WHERE unit = ?",
                          (self.pid, now + lease_ttl, unit))
            else:
                for _, unit, owner in sorted(candidates, key=lambda x: (x[0], x[1])):
                    cur = c.execute(
                        "UPDATE queue SET owner = ?, pid = ?, hint = ? WHERE unit = ? AND "
                        "owner IS ? AND (owner IS NOT NULL OR visible_at <= ?)",
                        (engine_owner, self.pid, now + lease_ttl, unit, owner, now))
                    if cur.rowcount == 1:
                        break
                else:
                    return None
            self._busy(unit, now)
            return self._unit(unit)

    # -- endings ------------------------------------------------------------------------------

    def _remove(self, unit: int) -> None:
        c = self.conn
        c.execute("DELETE FROM inprogress WHERE unit = ?", (unit,))
        c.execute("DELETE FROM working WHERE owner = ? AND unit = ?", (self.owner, unit))
        c.execute("DELETE FROM busy WHERE owner = ?", (self.owner,))

    def ack(self, unit: int, how: str) -> None:
        """The job in hand is done: acknowledge it wherever the discipline keeps it."""
        with transaction(self.conn) as c:
            self._remove(unit)
            if how in (UNACKED, LEASED):
                c.execute("DELETE FROM queue WHERE unit = ?", (unit,))

    def requeue(self, unit: int, how: str, end: str, delay: float = 0.0) -> None:
        """Put the job in hand back at ``end`` of the queue, visible after ``delay`` seconds."""
        now = time.time()
        with transaction(self.conn) as c:
            self._remove(unit)
            pos = self._position(end, now)
            c.execute(
                "INSERT INTO queue (unit, pos, visible_at) VALUES (?, ?, ?) "
                "ON CONFLICT (unit) DO UPDATE SET pos = excluded.pos, visible_at = "
                "excluded.visible_at, owner = NULL, pid = NULL, hint = 0",
                (unit, pos, now + delay if delay > 0 else 0.0))

    def fail(self, unit: int, how: str, reason: str) -> None:
        """Move the job in hand to the failed queue."""
        with transaction(self.conn) as c:
            self._remove(unit)
            c.execute("DELETE FROM queue WHERE unit = ?", (unit,))
            c.execute("INSERT INTO failed (unit, reason, owner, at) VALUES (?, ?, ?, ?)",
                      (unit, reason, self.owner, time.time()))

    def drop(self, unit: int, how: str) -> None:
        """Forget the job in hand (it was acknowledged when fetched and did not finish)."""
        with transaction(self.conn) as c:
            self._remove(unit)
            if how in (UNACKED, LEASED):
                c.execute("DELETE FROM queue WHERE unit = ?", (unit,))

    def idle(self) -> None:
        """Say that this process holds no job."""
        self.conn.execute("DELETE FROM busy WHERE owner = ?", (self.owner,))

    # -- start-up chores and heartbeats ---------------------------------------------------------

    def beat(self) -> None:
        """Write this process's heartbeat."""
        self.conn.execute(
            "INSERT OR REPLACE INTO heartbeats (owner, pid, beat_at) VALUES (?, ?, ?)",
            (self.owner, self.pid, time.time()))

    def recover_orphans(self, ttl: float, check_every: float) -> int:
        """Sidekiq Pro's start-up check: unless one ran less than ``check_every`` ago, move the
        in-progress jobs of processes whose heartbeat is older than ``ttl`` to the back of the
        queue. Returns how many were recovered."""
        now = time.time()
        with transaction(self.conn) as c:
            row = c.execute("SELECT value FROM meta WHERE key = 'last_recovery'").fetchone()
            if row is not None and now - row[0] < check_every:
                return 0
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_recovery', ?)",
                      (now,))
            orphans = c.execute(
                "SELECT i.unit FROM inprogress i LEFT JOIN heartbeats h ON h.owner = i.owner "
                "WHERE h.beat_at IS NULL OR h.beat_at + ? <= ? ORDER BY i.since",
                (ttl, now)).fetchall()
            for (unit,) in orphans:
                c.execute("DELETE FROM inprogress WHERE unit = ?", (unit,))
                c.execute("INSERT INTO queue (unit, pos) VALUES (?, ?)", (unit, now))
            return len(orphans)

    def prune_dead_workers(self, reason: str) -> int:
        """Resque's start-up pruning: the job records of workers of this host whose process is
        gone go to the failed queue. Returns how many jobs failed."""
        rows = self.conn.execute(
            "SELECT owner, pid, unit FROM working WHERE owner != ?", (self.owner,)).fetchall()
        dead = [(owner, unit) for owner, pid, unit in rows if not process_alive(pid)]
        if not dead:
            return 0
        now = time.time()
        with transaction(self.conn) as c:
            for owner, unit in dead:
                cur = c.execute("DELETE FROM working WHERE owner = ? AND unit = ?", (owner, unit))
                if cur.rowcount:
                    c.execute("INSERT INTO failed (unit, reason, owner, at) VALUES (?, ?, ?, ?)",
                              (unit, reason, owner, now))
        return len(dead)
