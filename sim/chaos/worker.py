"""A chaos worker: one OS process that takes jobs from the durable queue and works through their
items, obeying its strategy when SIGTERM comes and dying outright on SIGKILL.

Each item sleeps ``item_time`` (the job's work), writes one row into the job's ``results``
table (its effect) and appends one line to this process's execution log. The opaque strategies
(Sidekiq, Resque, Celery, split) run their items in a plain loop: on SIGTERM the worker stops
fetching, lets the job in hand go on for the strategy's ``term_wait`` and then does what its
``on_timeout`` says. Resumable jobs run in the real engine (``Runner`` over a ``SQLiteStore``
in the job's file): ``stop_on_signals`` turns SIGTERM into a flag the runner reads after each
item; with ``exactly_once`` the effect is written through ``store.connection`` and commits with
the cursor.

The execution log is append-only, one file per process, written with ``os.write`` so that a
SIGKILL loses nothing already written. Lines are ``KIND TIME FIELDS...``:

- ``P t pid slot life``: the process is ready (its start-up chores done);
- ``S t unit job from``: an attempt of ``unit`` begins at item ``from`` of ``job``;
- ``I t job item``: an item was executed and its effect written (maybe not yet committed);
- ``E t unit outcome``: the attempt ended: done, requeued, interrupted, failed, dropped, stale;
- ``X t``: the process exits by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import select
import signal
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from deploysim.strategies.base import Fail, Lose, Outcome, Recover, Requeue, Strategy
from deploysim.strategies.resumable import (
    IterationJob,
    ResumableError,
    Runner,
    SQLiteStore,
    StaleLeaseError,
    StopSignal,
    enumerators,
    stop_on_signals,
)
from deploysim.strategies.resumable_model import Resumable

from .queue import (
    LEASED,
    RECORD,
    RELIABLE,
    RESULTS_SCHEMA,
    SYNCHRONOUS,
    QueueDB,
    Unit,
    connect,
    job_db_path,
    job_key,
)
from .timescale import SIDEKIQ_BEATS_PER_TTL

log = logging.getLogger("deploysim.sim.chaos")

POLL_MIN = 0.001
"""Seconds an idle worker first waits before looking at the queue again; doubled while idle."""

POLL_MAX = 0.008
"""The longest wait of an idle worker between looks at the queue."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker process needs: where the run lives, which slot and life it is, the
    (scaled) strategy, how it fetches, and the work per item."""

    workdir: str
    slot: int
    life: int
    strategy: Strategy
    discipline: str
    exactly_once: bool
    item_time: float
    parent: int

    @property
    def owner(self) -> str:
        """This process's identity in the queue: slot and life."""
        return f"w{self.slot}.{self.life}"

    @property
    def engine_owner(self) -> str:
        """The resumable engine's lease owner: the slot, the same in every life, so that a
        worker coming back after a crash takes its own job back at once."""
        return f"w{self.slot}"

    @property
    def log_path(self) -> str:
        """This process's execution log."""
        return log_path(self.workdir, self.slot, self.life)


def log_path(workdir: str, slot: int, life: int) -> str:
    """The execution log of life ``life`` of worker slot ``slot``."""
    return os.path.join(workdir, "logs", f"w{slot:03d}-{life:05d}.log")


class ExecLog:
    """An append-only file of execution records (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, kind: str, *fields: Any, at: float | None = None) -> None:
        """Append one line: ``kind``, the wall-clock time (or ``at``), then ``fields``."""
        text = " ".join((kind, f"{time.time() if at is None else at:.6f}", *map(str, fields)))
        os.write(self.fd, (text + "\n").encode())


class _Term:
    """When SIGTERM (or SIGINT) first arrived; None before."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None

    def handler(self, _signum: int, _frame: object) -> None:
        """The signal handler: note the time of the first signal, nothing else."""
        if self.at is None:
            self.at = time.time()


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the controller dies (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


class _Effects:
    """The worker's connections to the job files, opened on first use."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self._conns: dict[int, sqlite3.Connection] = {}
        self._stores: dict[int, SQLiteStore] = {}

    def conn(self, job: int) -> sqlite3.Connection:
        """A plain connection to the job's file."""
        c = self._conns.get(job)
        if c is None:
            c = self._conns[job] = connect(job_db_path(self.workdir, job))
        return c

    def store(self, job: int) -> SQLiteStore:
        """The checkpoint store in the job's file."""
        s = self._stores.get(job)
        if s is None:
            s = self._stores[job] = SQLiteStore(job_db_path(self.workdir, job),
                                                 synchronous=SYNCHRONOUS)
        return s

    def lease_expiry(self, job: int) -> float:
        """The job's lease expiry in its checkpoint store (0: none held)."""
        row = self.conn(job).execute(
            "SELECT lease_expires FROM resumable_jobs WHERE job_id = ?", (job_key(job),)
        ).fetchone()
        return 0.0 if row is None else float(row[0])


def _insert_effect(conn: sqlite3.Connection, unit: Unit, item: int, pid: int) -> None:
    conn.execute("INSERT INTO results (item, unit, pid, at) VALUES (?, ?, ?, ?)",
                 (item, unit.unit, pid, time.time()))


class ChaosJob(IterationJob):
    """A resumable job over the items of one unit: sleep, write the effect, log it."""

    def __init__(self, conn: sqlite3.Connection, unit: Unit, item_time: float, xlog: ExecLog,
                 pid: int) -> None:
        self.conn = conn
        self.unit = unit
        self.item_time = item_time
        self.xlog = xlog
        self.pid = pid

    def build_enumerator(self, cursor: Any) -> Any:
        """The unit's item numbers after ``cursor``."""
        first = self.unit.first
        return enumerators.int_range(first, first + self.unit.items, cursor)

    def each_iteration(self, item: int) -> None:
        """One item of work and its effect."""
        time.sleep(self.item_time)
        _insert_effect(self.conn, self.unit, item, self.pid)
        self.xlog.write("I", self.unit.job, item)


def worker_main(spec: WorkerSpec, go: Any = None) -> None:
    """The body of a worker process. Its parent blocks SIGTERM and SIGINT while it forks it,
    so a signal sent at once is held until the handlers are in place. With ``go`` (the reading
    end of a pipe) the process is a warm spare: it opens its files, then waits for a message
    before doing what a starting worker does; it exits if the pipe closes first."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its own process group: a terminal's Ctrl-C goes to the controller
    _die_with_parent(spec.parent)
    worker = _Worker(spec)
    worker.warm_up()
    if go is not None:
        try:
            go.recv_bytes()
        except (EOFError, OSError):
            return
        go.close()
    worker.start_up()
    if isinstance(spec.strategy, Resumable):
        stop = StopSignal()
        with stop_on_signals(stop, STOP_SIGNALS):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            worker.run_resumable(stop)
    else:
        term = _Term()
        for s in STOP_SIGNALS:
            signal.signal(s, term.handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        worker.run_opaque(term)


class _Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.pid = os.getpid()
        self.xlog = ExecLog(spec.log_path)
        self.queue = QueueDB(os.path.join(spec.workdir, "queue.db"), spec.owner, self.pid)
        self.effects = _Effects(spec.workdir)
        self.how = spec.discipline
        self.beat_every = math.inf
        self.next_beat = math.inf
        outcome = spec.strategy.on_kill
        self.visibility = outcome.delay if isinstance(outcome, Requeue) else 0.0
        self._wake_r, wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    def warm_up(self) -> None:
        """Run the code paths of an attempt once on throwaway in-memory data. A forked process
        copies the pages of every object it touches for the first time; doing that here, while
        a spare waits, keeps it off the first real attempt."""
        self.queue.warm()
        scratch = SQLiteStore(":memory:")
        scratch.connection.executescript(RESULTS_SCHEMA)
        unit = Unit(-1, -1, 0, 3)
        devnull = ExecLog(os.devnull)
        for item in range(2):
            _insert_effect(scratch.connection, unit, item, self.pid)
            devnull.write("I", unit.job, item)
        strategy = self.spec.strategy
        if isinstance(strategy, Resumable):
            runner = Runner(scratch, owner=self.spec.engine_owner, stop=StopSignal(),
                            checkpoint_every=strategy.checkpoint_every,
                            lease_ttl=strategy.lease_ttl, exactly_once=self.spec.exactly_once)
            job = ChaosJob(scratch.connection, unit, 0.0, devnull, self.pid)
            runner.run(job_key(unit.job), job)
        scratch.close()
        os.close(devnull.fd)

    def start_up(self) -> None:
        """What a worker does when it starts: Sidekiq Pro's heartbeat and orphan check, or
        Resque's pruning of dead workers; then it says it is ready."""
        outcome = self.spec.strategy.on_kill
        if self.how == RELIABLE:
            assert isinstance(outcome, Recover)
            self.beat_every = outcome.heartbeat_ttl / SIDEKIQ_BEATS_PER_TTL
            self.queue.beat()
            self.next_beat = time.time() + self.beat_every
            self.queue.recover_orphans(outcome.heartbeat_ttl, outcome.check_every)
        elif self.how == RECORD:
            self.queue.prune_dead_workers(getattr(outcome, "reason", "DirtyExit"))
        self.xlog.write("P", self.pid, self.spec.slot, self.spec.life)

    def _idle_wait(self, seconds: float) -> None:
        """Wait before looking at the queue again; a signal ends the wait at once (it writes
        to the wake-up pipe), so that an idle worker stops as soon as SIGTERM comes."""
        try:
            select.select([self._wake_r], [], [], seconds)
        except InterruptedError:
            pass
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 64)

    def _parent_gone(self) -> bool:
        return os.getppid() != self.spec.parent

    def _beat(self, now: float) -> None:
        if now >= self.next_beat:
            self.queue.beat()
            self.next_beat = now + self.beat_every

    def _exit(self) -> None:
        self.queue.idle()
        self.xlog.write("X")

    # -- the opaque strategies ------------------------------------------------------------------

    def run_opaque(self, term: _Term) -> None:
        """Fetch and run jobs from scratch until SIGTERM (or the controller's death)."""
        wait = POLL_MIN
        while term.at is None and not self._parent_gone():
            fetched = time.time()
            self._beat(fetched)
            unit = self.queue.fetch(self.how, visibility=self.visibility)
            if unit is None:
                self._idle_wait(wait)
                wait = min(2 * wait, POLL_MAX)
                continue
            wait = POLL_MIN
            self._attempt(unit, term, fetched)
        self._exit()

    def _attempt(self, unit: Unit, term: _Term, fetched: float) -> None:
        """Run the unit's items from the start; ``fetched`` is when its fetch began, the start
        of the attempt's worker time."""
        spec = self.spec
        strategy = spec.strategy
        term_wait, run_limit = strategy.term_wait, strategy.run_limit
        conn = self.effects.conn(unit.job)
        xlog, pid, item_time = self.xlog, self.pid, spec.item_time
        start = fetched
        xlog.write("S", unit.unit, unit.job, unit.first, at=fetched)
        outcome: Outcome | None = None
        for item in range(unit.first, unit.first + unit.items):
            now = time.time()
            self._beat(now)
            if now - start >= run_limit:
                outcome = Fail("time limit")
                break
            if term.at is not None and now >= term.at + term_wait:
                outcome = strategy.on_timeout
                break
            time.sleep(item_time)
            _insert_effect(conn, unit, item, pid)
            xlog.write("I", unit.job, item)
        if outcome is None:
            xlog.write("E", unit.unit, "done")
            self.queue.ack(unit.unit, self.how)
        else:
            self._settle(unit, outcome)

    def _settle(self, unit: Unit, outcome: Outcome) -> None:
        if isinstance(outcome, Requeue):
            self.queue.requeue(unit.unit, self.how, outcome.end, outcome.delay)
            self.xlog.write("E", unit.unit, "requeued")
        elif isinstance(outcome, Fail):
            self.queue.fail(unit.unit, self.how, outcome.reason)
            self.xlog.write("E", unit.unit, "failed")
        elif isinstance(outcome, Lose):
            self.queue.drop(unit.unit, self.how)
            self.xlog.write("E", unit.unit, "dropped")
        else:  # a recovery is only ever a kill's fate: leave the job where it is
            self.xlog.write("E", unit.unit, "left")

    # -- the resumable engine -------------------------------------------------------------------

    def run_resumable(self, stop: StopSignal) -> None:
        """Fetch and run jobs in the engine until SIGTERM (or the controller's death)."""
        spec = self.spec
        strategy = spec.strategy
        assert isinstance(strategy, Resumable)
        wait = POLL_MIN
        while not stop.requested and not self._parent_gone():
            fetched = time.time()
            unit = self.queue.fetch_leased(spec.engine_owner, strategy.lease_ttl,
                                           self.effects.lease_expiry)
            if unit is None:
                self._idle_wait(wait)
                wait = min(2 * wait, POLL_MAX)
                continue
            wait = POLL_MIN
            if not self._run_engine(unit, strategy, stop, fetched):
                self._idle_wait(wait)
        self._exit()

    def _run_engine(self, unit: Unit, strategy: Resumable, stop: StopSignal,
                    fetched: float) -> bool:
        """One run of the unit in the engine, its worker time counted from ``fetched``; False
        if the engine refused to start it."""
        spec = self.spec
        store = self.effects.store(unit.job)
        job = ChaosJob(store.connection, unit, spec.item_time, self.xlog, self.pid)
        runner = Runner(
            store,
            owner=spec.engine_owner,
            stop=stop,
            checkpoint_every=strategy.checkpoint_every,
            max_runtime=strategy.max_runtime,
            lease_ttl=strategy.lease_ttl,
            exactly_once=spec.exactly_once,
        )
        try:
            execution = runner.start(job_key(unit.job), job)
        except ResumableError as exc:  # another owner's lease is still live
            log.debug("worker %s: %s", spec.owner, exc)
            self.queue.idle()
            return False
        cursor = execution.cursor
        self.xlog.write("S", unit.unit, unit.job, unit.first if cursor is None else cursor + 1,
                        at=fetched)
        try:
            execution.advance()
        except StaleLeaseError:
            self.xlog.write("E", unit.unit, "stale")
            self.queue.idle()
            return True
        result = execution.result
        assert result is not None
        if result.completed:
            self.xlog.write("E", unit.unit, "done")
            self.queue.ack(unit.unit, LEASED)
        elif result.interrupted:
            self.queue.requeue(unit.unit, LEASED, strategy.requeue, result.retry_after or 0.0)
            self.xlog.write("E", unit.unit, "interrupted")
        else:
            self.queue.fail(unit.unit, LEASED, result.reason)
            self.xlog.write("E", unit.unit, "failed")
        return True


