"""The controller of a chaos run: it fills the queue, starts one worker process per slot, plays
the seeded schedule of deploys (SIGTERM to every worker, SIGKILL to those still alive after the
grace) and crashes (SIGKILL to one worker), starts a replacement as soon as a worker is gone,
and stops everything at the end.

A run ends after ``duration`` seconds, or earlier once nothing is left to do: no job in any
queue table and no live worker holding one. Every worker still alive then is SIGKILLed and
reaped; the job a worker held at that moment counts as pending, as the simulator counts the
jobs in flight at its horizon. Worker processes are forked (spawned where fork is unsafe), each
in a process group of its own, and die with the controller (Linux's parent-death signal).
Each slot keeps a warm spare: its next process, forked and waiting on a pipe, so that a
replacement starts within a few milliseconds of its predecessor's death, and with little
spread, whatever a fork costs. A ``finally`` block and an ``atexit`` hook SIGKILL and reap
whatever is left, so no worker outlives a run.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from typing import Any

from deploysim.strategies.base import Strategy

from .config import ChaosConfig
from .queue import (
    QUEUE_SCHEMA,
    RESULTS_SCHEMA,
    SYNCHRONOUS,
    connect,
    job_db_path,
    process_alive,
)
from .schedule import Schedule, make_schedule
from .worker import STOP_SIGNALS, WorkerSpec, worker_main

Progress = Callable[[str], None]
"""A callback that receives a short status line about once a second."""

CHECK_EVERY = 0.05
"""Seconds between the controller's looks at the queue for the end of the work."""


@dataclass(slots=True, eq=False)
class Life:
    """One worker process: a life of a worker slot. Times are seconds from the run's start.
    ``cause`` says how it ended: "exit" (by itself), "term" (by itself after SIGTERM),
    "deploy-kill", "crash", "final" (SIGKILLed when the run ended) or "error" (it exited
    with a non-zero status nobody asked for)."""

    slot: int
    life: int
    pid: int
    started: float
    process: Any = None
    ended: float | None = None
    cause: str = ""
    term_at: float | None = None
    kill_due: float = math.inf
    killed_as: str = ""
    killed_at: float | None = None
    exitcode: int | None = None

    @property
    def died(self) -> float | None:
        """When the process died: when it was SIGKILLed, else when it was seen gone."""
        return self.killed_at if self.killed_at is not None else self.ended


@dataclass(slots=True, eq=False)
class _Spare:
    """A forked worker process waiting for the message that makes it live."""

    life: int
    process: Any
    go: Any


@dataclass(slots=True)
class RunRecord:
    """What the controller did and saw, as it happened; the audit reads it beside the queue,
    the results and the execution logs."""

    t0: float
    end: float = 0.0
    ended_by: str = ""
    lives: list[Life] = field(default_factory=list)
    deploys: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    spares: list[int] = field(default_factory=list)  # every process forked, live or not
    survivors: list[int] = field(default_factory=list)


def _context() -> Any:
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def prepare(workdir: str, config: ChaosConfig, strategy: Strategy, resumable: bool) -> float:
    """Create the queue and the job files and enqueue every job; returns the enqueue time."""
    os.makedirs(os.path.join(workdir, "jobs"))
    os.makedirs(os.path.join(workdir, "logs"))
    chunk = strategy.chunk
    now = time.time()
    conn = connect(os.path.join(workdir, "queue.db"))
    try:
        conn.executescript(QUEUE_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        unit = 0
        for job in range(config.jobs):
            n = config.items
            size = n if chunk is None or n <= chunk else chunk
            firsts = range(0, n, size)
            conn.execute("INSERT INTO enqueued (job, items, units, at) VALUES (?, ?, ?, ?)",
                         (job, n, len(firsts), now))
            for first in firsts:
                conn.execute("INSERT INTO units (unit, job, first, items) VALUES (?, ?, ?, ?)",
                             (unit, job, first, min(size, n - first)))
                conn.execute("INSERT INTO queue (unit, pos) VALUES (?, ?)",
                             (unit, now + unit * 1e-6))
                unit += 1
        conn.execute("COMMIT")
    finally:
        conn.close()
    for job in range(config.jobs):
        jc = connect(job_db_path(workdir, job))
        try:
            jc.executescript(RESULTS_SCHEMA)
        finally:
            jc.close()
        if resumable:
            from deploysim.strategies.resumable import SQLiteStore

            SQLiteStore(job_db_path(workdir, job), synchronous=SYNCHRONOUS).close()
    return now


class Controller:
    """Runs the worker processes of one chaos run (see the module docstring)."""

    def __init__(self, workdir: str, config: ChaosConfig, strategy: Strategy, how: str,
                 exactly_once: bool, progress: Progress | None = None) -> None:
        self.workdir = workdir
        self.config = config
        self.strategy = strategy
        self.how = how
        self.exactly_once = exactly_once
        self.progress = progress
        self.schedule: Schedule = make_schedule(
            config.seed, config.duration, config.workers, config.deploy_every,
            config.crash_every)
        self.ctx = _context()
        self.live: dict[int, Life] = {}  # slot -> its current process
        self.spares: dict[int, _Spare] = {}  # slot -> its next process, waiting
        self._stopping = False
        self.lives_started = [0] * config.workers
        self.record = RunRecord(t0=time.time())
        self._mono0 = time.monotonic()

    # -- clock ----------------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._mono0

    # -- processes ------------------------------------------------------------------------------

    def _fork(self, slot: int) -> _Spare:
        """Fork the next life of ``slot`` as a warm spare, waiting for its go."""
        self.lives_started[slot] += 1
        spec = WorkerSpec(
            workdir=self.workdir, slot=slot, life=self.lives_started[slot],
            strategy=self.strategy, discipline=self.how, exactly_once=self.exactly_once,
            item_time=self.config.item_time, parent=os.getpid(),
        )
        reader, writer = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=worker_main, args=(spec, reader), daemon=True,
                                   name=f"chaos-{spec.owner}")
        # held until the child's handlers are in place: a deploy may come at once
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        reader.close()
        self.record.spares.append(int(process.pid or 0))
        return _Spare(spec.life, process, writer)

    def _start(self, slot: int) -> None:
        """Make the slot's spare its live worker, and fork the next spare."""
        spare = self.spares.pop(slot, None) or self._fork(slot)
        try:
            spare.go.send_bytes(b"go")
        except OSError:  # the spare died waiting: start a fresh one at once
            spare.go.close()
            spare.process.join(1.0)
            spare = self._fork(slot)
            spare.go.send_bytes(b"go")
        spare.go.close()
        life = Life(slot, spare.life, int(spare.process.pid or 0), self.now(), spare.process)
        self.live[slot] = life
        self.record.lives.append(life)
        if not self._stopping:
            self.spares[slot] = self._fork(slot)

    def _signal(self, life: Life, sig: signal.Signals) -> bool:
        """Send ``sig`` to a live (not yet reaped) worker; False if it had already died."""
        if life.ended is not None or not life.process.is_alive():
            return False
        try:
            os.kill(life.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def _kill(self, life: Life, cause: str) -> bool:
        if life.killed_as:
            return False
        if self._signal(life, signal.SIGKILL):
            life.killed_as = cause
            life.killed_at = self.now()
            return True
        return False

    def _reap(self) -> None:
        for slot, life in list(self.live.items()):
            if life.process.is_alive():
                continue
            life.ended = self.now()
            life.exitcode = life.process.exitcode
            if life.killed_as:
                life.cause = life.killed_as
            elif life.exitcode not in (0, None):
                life.cause = "error"
            else:
                life.cause = "term" if life.term_at is not None else "exit"
            del self.live[slot]

    def kill_all(self, cause: str = "final") -> None:
        """SIGKILL every worker still alive and every spare, and reap them."""
        self._stopping = True
        for life in list(self.live.values()):
            self._kill(life, cause)
        for spare in self.spares.values():
            spare.go.close()
            if spare.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(spare.process.pid, signal.SIGKILL)
        for life in list(self.live.values()):
            life.process.join(5.0)
        for spare in self.spares.values():
            spare.process.join(5.0)
        self.spares.clear()
        self._reap()

    # -- the run --------------------------------------------------------------------------------

    def _nothing_left(self) -> bool:
        """True when no job waits in any queue table and no live worker holds one."""
        try:
            conn = sqlite3.connect(os.path.join(self.workdir, "queue.db"), timeout=1.0)
        except sqlite3.Error:
            return False
        try:
            for table in ("queue", "inprogress", "working"):
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    return False
            pids = {life.pid for life in self.live.values()}
            busy = [pid for (pid,) in conn.execute("SELECT pid FROM busy")]
            return not any(pid in pids for pid in busy)
        except sqlite3.Error:
            return False
        finally:
            conn.close()

    def run(self) -> RunRecord:
        """Play the schedule until the duration ends or the work is done."""
        config, record = self.config, self.record
        deploys = list(self.schedule.deploys)
        crashes = list(self.schedule.crashes)
        atexit.register(self.kill_all)
        try:
            for slot in range(config.workers):
                self.spares[slot] = self._fork(slot)
            record.t0, self._mono0 = time.time(), time.monotonic()
            for slot in range(config.workers):
                self._start(slot)
            next_check = CHECK_EVERY
            next_report = 1.0
            while True:
                now = self.now()
                if now >= config.duration:
                    record.ended_by = "duration"
                    break
                self._reap()
                for life in list(self.live.values()):
                    if life.kill_due <= now and self._kill(life, "deploy-kill"):
                        record.deploys[-1]["sigkills"] += 1
                while deploys and deploys[0] <= now:
                    deploys.pop(0)
                    self._deploy(now)
                while crashes and crashes[0][0] <= now:
                    _, slot = crashes.pop(0)
                    self._crash(now, slot)
                self._reap()
                for slot in range(config.workers):
                    if slot not in self.live:
                        self._start(slot)
                if now >= next_check:
                    next_check = now + CHECK_EVERY
                    if self._nothing_left():
                        record.ended_by = "done"
                        break
                if self.progress is not None and now >= next_report:
                    next_report = now + 1.0
                    self.progress(self._status(now))
                due = [config.duration, next_check]
                due += [life.kill_due for life in self.live.values() if not life.killed_as]
                if deploys:
                    due.append(deploys[0])
                if crashes:
                    due.append(crashes[0][0])
                timeout = max(0.0, min(due) - self.now())
                if timeout > 0:
                    wait_for([life.process.sentinel for life in self.live.values()], timeout)
        finally:
            record.end = self.now()
            self.kill_all()
            atexit.unregister(self.kill_all)
        pids = {life.pid for life in record.lives} | set(record.spares)
        record.survivors = sorted(pid for pid in pids if process_alive(pid))
        return record

    def _deploy(self, now: float) -> None:
        entry = {"t": now, "sigterms": 0, "sigkills": 0}
        self.record.deploys.append(entry)
        for life in self.live.values():
            if self._signal(life, signal.SIGTERM):
                entry["sigterms"] += 1
                if life.term_at is None:
                    life.term_at = now
                life.kill_due = min(life.kill_due, now + self.config.grace)

    def _crash(self, now: float, slot: int) -> None:
        life = self.live.get(slot)
        hit = life is not None and self._kill(life, "crash")
        at = life.killed_at if hit and life is not None and life.killed_at is not None else now
        self.record.crashes.append({"t": at, "slot": slot, "hit": hit})

    def _status(self, now: float) -> str:
        kills = sum(1 for life in self.record.lives if life.killed_as in ("crash", "deploy-kill"))
        return (f"{self.config.strategy}: {now:.1f}s, {len(self.record.deploys)} deploys, "
                f"{kills} SIGKILLs, {len(self.record.lives)} processes")
