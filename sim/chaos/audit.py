"""The audit of a chaos run, after Jepsen's total-queue checker: every number is counted from
records kept apart, and the losses are derived, never assumed.

- the controller's record: what it enqueued (``enqueued`` and ``units`` tables), the signals it
  sent and when, how each worker process ended;
- the queue tables: what is still queued, reserved, in progress, held by a worker, failed;
- each job's ``results`` table: the effects, one row per item execution that wrote one;
- each worker's append-only execution log: attempts, item executions, how attempts ended.

A job is completed when the log shows every one of its units done; failed when the failed
queue holds one of its units; pending when a queue table still holds a unit, or a worker held
one when the run ended. ``lost = enqueued - completed - failed - pending``. The JSON names are
those of ``deploysim run`` (``deploysim.sim.fleet.results.summarize``), plus ``duplicate_effects``,
``sigterms``, ``sigkills`` and ``integrity_ok`` (``PRAGMA integrity_check`` on every database).
Work is worker time: an attempt lasts from the fetch that began it to its end line, or to the
SIGKILL that ended its process. A job's length is what one undisturbed attempt takes: its items
times its item time as measured in the run (the mean gap between its item records), plus, per
unit, the measured fixed cost of an attempt (fetch, opening the job's file, taking the lease,
acknowledging).
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from deploysim.strategies.base import Recover, Requeue, Strategy
from deploysim.strategies.resumable_model import Resumable

from .config import ChaosConfig
from .controller import Life, RunRecord
from .queue import LEASED, RELIABLE, UNACKED, job_db_path, job_key
from .worker import POLL_MAX, log_path

KILLS = ("crash", "deploy-kill")


@dataclass(slots=True)
class Attempt:
    """One attempt of a unit as its worker's log tells it; times from the run's start."""

    unit: int
    job: int
    start: float
    life: Life
    end: float = math.nan
    outcome: str = ""
    item_times: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)


def _read_log(path: str, life: Life, t0: float
              ) -> tuple[list[Attempt], float | None, float | None]:
    """The attempts in one process's log, when the process said it was ready and when it said
    it was exiting."""
    attempts: list[Attempt] = []
    ready = exiting = None
    current: Attempt | None = None
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.split()
        try:
            kind, t = parts[0], float(parts[1]) - t0
            if kind == "I" and current is not None:
                current.item_times.append(t)
                current.items.append(int(parts[3]))
            elif kind == "S":
                if current is not None:  # a start without an end: cannot happen, but count it
                    current.end, current.outcome = t, "unknown"
                    attempts.append(current)
                current = Attempt(int(parts[2]), int(parts[3]), t, life)
            elif kind == "E" and current is not None:
                current.end, current.outcome = t, parts[3]
                attempts.append(current)
                current = None
            elif kind == "P":
                ready = t
            elif kind == "X":
                exiting = t
        except (IndexError, ValueError):
            continue  # a torn last line of a killed process
    if current is not None:
        died = life.died
        current.end = died if died is not None else (current.item_times or [current.start])[-1]
        current.outcome = life.cause or "unknown"
        attempts.append(current)
    return attempts, ready, exiting


def _start_cost(attempts: list[Attempt], item_time: float) -> float:
    """The mean time from an attempt's start to its first item's end, less an item."""
    first = [at.item_times[0] - at.start for at in attempts if at.item_times]
    return max(0.0, statistics.fmean(first) - item_time) if first else 0.0


def _end_cost(attempts: list[Attempt], outcome: str) -> tuple[float, int]:
    """The mean time from the last item's end to the end line, over attempts that ended with
    ``outcome``, and how many did."""
    ends = [at.end - at.item_times[-1] for at in attempts
            if at.item_times and at.outcome == outcome]
    return (statistics.fmean(ends) if ends else 0.0), len(ends)


def _integrity(path: str) -> bool:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def pickup_bound(strategy: Strategy) -> float | None:
    """The documented longest wait, after a SIGKILL, before another process may take the
    killed worker's job: the lease for the resumable engine, the heartbeat TTL plus the
    recovery interval for super_fetch, the visibility timeout for an unacknowledged message.
    None where the job is never taken again (lost or failed)."""
    if isinstance(strategy, Resumable):
        return strategy.lease_ttl
    outcome = strategy.on_kill
    if isinstance(outcome, Recover):
        return outcome.heartbeat_ttl + outcome.check_every
    if isinstance(outcome, Requeue):
        return outcome.delay
    return None


@dataclass(slots=True)
class _Queue:
    """What the queue database says at the end of a run."""

    enqueued: dict[int, tuple[int, int]]  # job -> (items, units)
    unit_job: dict[int, int]
    held: set[int]  # units still queued, reserved, in progress or in a worker's record
    failed: set[int]  # units in the failed queue
    busy: list[tuple[int, int]]  # (pid, unit): what each process said it was working on


def _read_queue(path: str) -> _Queue:
    conn = sqlite3.connect(path)
    try:
        held: set[int] = set()
        for table in ("queue", "inprogress", "working"):
            held |= {u for (u,) in _rows(conn, f"SELECT unit FROM {table}")}
        return _Queue(
            enqueued={job: (items, units) for job, items, units in
                      _rows(conn, "SELECT job, items, units FROM enqueued")},
            unit_job=dict(_rows(conn, "SELECT unit, job FROM units")),
            held=held,
            failed={u for (u,) in _rows(conn, "SELECT unit FROM failed")},
            busy=[(int(pid), int(unit)) for pid, unit in
                  _rows(conn, "SELECT pid, unit FROM busy")],
        )
    finally:
        conn.close()


@dataclass(slots=True)
class _Timing:
    """What the run's records say about the cost of work."""

    item_time: float  # mean gap between consecutive item records
    job_item_time: dict[int, float]
    overhead: float  # fixed cost of an attempt that runs a unit through
    resume_overhead: float  # what an attempt beyond a unit's first costs beside its items
    resumed: int  # attempts beyond each unit's first


def _timing(attempts: list[Attempt], default_item_time: float) -> _Timing:
    gaps_by_job: dict[int, list[float]] = defaultdict(list)
    for at in attempts:
        gaps_by_job[at.job] += [b - a for a, b in zip(at.item_times, at.item_times[1:],
                                                      strict=False)]
    gaps = [g for job_gaps in gaps_by_job.values() for g in job_gaps]
    item_time = statistics.fmean(gaps) if gaps else default_item_time
    start_cost = _start_cost(attempts, item_time)
    seen: set[int] = set()
    resumed = 0
    for at in attempts:  # in order of start
        resumed += at.unit in seen
        seen.add(at.unit)
    # Each completed unit's length holds one start (the mean over all attempts) and one
    # acknowledgement; every further attempt pays a start again, and an interrupted one its
    # stop (checkpoint, re-queue): for resumable jobs, which do not start over, that is what
    # resuming costs beyond the items.
    stop_cost, stops = _end_cost(attempts, "interrupted")
    return _Timing(
        item_time=item_time,
        job_item_time={job: statistics.fmean(g) if g else item_time
                       for job, g in gaps_by_job.items()},
        overhead=start_cost + _end_cost(attempts, "done")[0],
        resume_overhead=start_cost + stop_cost * stops / resumed if resumed else 0.0,
        resumed=resumed,
    )


@dataclass(slots=True)
class _Fates:
    """Every enqueued job in exactly one bucket."""

    completed: set[int]
    failed: set[int]
    pending: set[int]
    lost: set[int]
    in_flight: set[int]  # units a worker held when the run ended


def _fates(queue: _Queue, attempts: list[Attempt], record: RunRecord) -> _Fates:
    done_units = {at.unit for at in attempts if at.outcome == "done"}
    units_done: dict[int, int] = defaultdict(int)
    for unit in done_units:
        units_done[queue.unit_job[unit]] += 1
    completed = {job for job, n in units_done.items() if n >= queue.enqueued[job][1]}
    failed = {queue.unit_job[u] for u in queue.failed} - completed
    final = {life.pid for life in record.lives if life.cause == "final"}
    in_flight = {unit for pid, unit in queue.busy if pid in final}
    in_flight |= {at.unit for at in attempts if at.outcome == "final"}
    pending = {queue.unit_job[u] for u in queue.held | in_flight} - completed - failed
    lost = set(queue.enqueued) - completed - failed - pending
    return _Fates(completed, failed, pending, lost, in_flight)


@dataclass(slots=True)
class _Effects:
    """What the job files hold."""

    effects: int = 0
    duplicates: int = 0
    missing: int = 0  # items of completed jobs without an effect
    retained: dict[int, int] = field(default_factory=dict)  # pending job -> items checkpointed
    integrity_ok: bool = True


def _read_effects(workdir: str, queue: _Queue, fates: _Fates, resumable: bool) -> _Effects:
    out = _Effects(integrity_ok=_integrity(os.path.join(workdir, "queue.db")))
    for job, (items, _) in queue.enqueued.items():
        path = job_db_path(workdir, job)
        out.integrity_ok = _integrity(path) and out.integrity_ok
        conn = sqlite3.connect(path)
        try:
            count, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT item) FROM results").fetchone()
            out.effects += count
            out.duplicates += count - distinct
            if job in fates.completed:
                out.missing += items - distinct
            if resumable and job in fates.pending:
                with contextlib.suppress(sqlite3.Error):
                    row = conn.execute(
                        "SELECT items_done FROM resumable_jobs WHERE job_id = ? AND status != "
                        "'completed'", (job_key(job),)).fetchone()
                    if row is not None:
                        out.retained[job] = int(row[0])
        finally:
            conn.close()
    return out


def _pickups(attempts: list[Attempt], bound: float | None, end: float
             ) -> tuple[list[float], int]:
    """For each attempt ended by a SIGKILL, how long until the unit was started again; and
    how many were never started again although ``bound`` (plus half a second) had passed."""
    by_unit: dict[int, list[Attempt]] = defaultdict(list)
    for at in attempts:
        by_unit[at.unit].append(at)
    pickups: list[float] = []
    stuck = 0
    for unit_attempts in by_unit.values():
        for i, at in enumerate(unit_attempts):
            if at.outcome not in KILLS:
                continue
            later = [b.start for b in unit_attempts[i + 1:] if b.start >= at.end]
            if later:
                pickups.append(later[0] - at.end)
            elif bound is not None and end - at.end > bound + 0.5:
                stuck += 1
    return pickups, stuck


def audit(workdir: str, config: ChaosConfig, strategy: Strategy, how: str,
          record: RunRecord) -> dict[str, Any]:
    """The JSON-ready audit of a finished run (see the module docstring)."""
    queue = _read_queue(os.path.join(workdir, "queue.db"))
    attempts: list[Attempt] = []
    ready: dict[tuple[int, int], float] = {}
    died: dict[tuple[int, int], float] = {}
    for life in record.lives:
        found, at, exiting = _read_log(log_path(workdir, life.slot, life.life), life, record.t0)
        attempts += found
        if at is not None:
            ready[life.slot, life.life] = at
        end = life.killed_at if life.killed_at is not None else exiting
        end = life.ended if end is None else end
        if end is not None:
            died[life.slot, life.life] = end
    attempts.sort(key=lambda a: a.start)
    timing = _timing(attempts, config.item_time)
    fates = _fates(queue, attempts, record)
    effects = _read_effects(workdir, queue, fates, how == LEASED)

    # Work, and the waste in it. Measured lengths scatter around the mean: a job's work beyond
    # its length (or beyond the progress it keeps) is summed with its sign, so that the scatter
    # cancels instead of being clipped into waste.
    work: dict[int, float] = defaultdict(float)
    for at in attempts:
        work[at.job] += max(0.0, at.end - at.start)
    executed = sum(len(at.items) for at in attempts)
    unique = len({(at.job, i) for at in attempts for i in at.items})
    wasted = useful = 0.0
    lengths: dict[int, float] = {}
    for job, (items, units) in queue.enqueued.items():
        per_item = timing.job_item_time.get(job, timing.item_time)
        lengths[job] = items * per_item + units * timing.overhead
        if job in fates.completed:
            useful += lengths[job]
            wasted += work[job] - lengths[job]
        elif job in fates.pending:
            wasted += work[job] - effects.retained.get(job, 0) * per_item
        else:
            wasted += work[job]

    bound = pickup_bound(strategy)
    pickups, stuck = (_pickups(attempts, bound, record.end)
                      if how in (LEASED, RELIABLE, UNACKED) else ([], 0))
    restarts = [ready[key] - died[key[0], key[1] - 1] for key in ready
                if (key[0], key[1] - 1) in died]
    n = len(queue.enqueued)
    hits = [c for c in record.crashes if c["hit"]]
    return {
        "strategy": config.strategy,
        "enqueued": n,
        "completed": len(fates.completed),
        "failed": len(fates.failed),
        "lost": len(fates.lost),
        "pending": len(fates.pending),
        "completion_rate": len(fates.completed) / n if n else math.nan,
        "executions": len(attempts),
        "duplicate_item_executions": executed - unique,
        "duplicate_effects": effects.duplicates,
        "missing_effects": effects.missing,
        "effects": effects.effects,
        "useful_work_s": useful,
        "wasted_work_s": max(0.0, wasted),
        "deploys": len(record.deploys),
        "sigterms": sum(d["sigterms"] for d in record.deploys),
        "sigkills": sum(1 for life in record.lives if life.killed_as in KILLS),
        "hard_kills": sum(1 for life in record.lives if life.killed_as == "deploy-kill"),
        "crashes": len(hits),
        "integrity_ok": effects.integrity_ok,
        "duration_s": record.end,
        "ended_by": record.ended_by,
        "item_time_s": timing.item_time,
        "attempt_overhead_s": timing.overhead,
        "resume_overhead_s": timing.resume_overhead,
        "resume_costs_s": timing.resume_overhead * timing.resumed if how == LEASED else 0.0,
        "job_length_s": config.items * timing.item_time + max(
            units for _, units in queue.enqueued.values()) * timing.overhead,
        "restart_delay_s": statistics.fmean(max(0.0, r) for r in restarts) if restarts else 0.0,
        "max_pickup_s": max(pickups) if pickups else None,
        "pickup_bound_s": None if bound is None else bound + POLL_MAX,
        "stuck_jobs": stuck,
        "processes": len(record.lives),
        "worker_errors": sum(1 for life in record.lives if life.cause == "error"),
        "survivors": len(record.survivors),
        "stopped_at_end": sum(1 for life in record.lives if life.cause == "final"),
        "in_flight_at_end": len(fates.in_flight),
        "params": {k: _jsonable(v) for k, v in strategy.params().items()},
        "timescale": config.scale.factor,
        "config": config.to_dict(),
        "timeline": {
            "deploys": [d["t"] for d in record.deploys],
            "crashes": [[c["t"], c["slot"]] for c in hits],
            "end_s": record.end,
            "job_lengths_s": [lengths[job] for job in sorted(queue.enqueued)],
            "pids": sorted({life.pid for life in record.lives} | set(record.spares)),
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    return value
