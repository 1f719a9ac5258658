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
those of ``deploysim run`` (``sim.results.summarize``), plus ``duplicate_effects``,
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

from strategies.base import Recover, Requeue, Strategy
from strategies.resumable.policy import Resumable

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


def audit(workdir: str, config: ChaosConfig, strategy: Strategy, how: str,
          record: RunRecord) -> dict[str, Any]:
    """The JSON-ready audit of a finished run (see the module docstring)."""
    t0 = record.t0
    queue_path = os.path.join(workdir, "queue.db")
    conn = sqlite3.connect(queue_path)
    try:
        enqueued = {job: (items, units) for job, items, units in
                    _rows(conn, "SELECT job, items, units FROM enqueued")}
        unit_job = dict(_rows(conn, "SELECT unit, job FROM units"))
        queued = {u for (u,) in _rows(conn, "SELECT unit FROM queue")}
        queued |= {u for (u,) in _rows(conn, "SELECT unit FROM inprogress")}
        queued |= {u for (u,) in _rows(conn, "SELECT unit FROM working")}
        failed_units = {u for (u,) in _rows(conn, "SELECT unit FROM failed")}
        busy = _rows(conn, "SELECT pid, unit FROM busy")
    finally:
        conn.close()

    # -- the execution logs ---------------------------------------------------------------------
    attempts: list[Attempt] = []
    ready: dict[tuple[int, int], float] = {}
    died: dict[tuple[int, int], float] = {}
    for life in record.lives:
        found, at, exiting = _read_log(log_path(workdir, life.slot, life.life), life, t0)
        attempts += found
        if at is not None:
            ready[life.slot, life.life] = at
        end = life.killed_at if life.killed_at is not None else exiting
        if end is None:
            end = life.ended
        if end is not None:
            died[life.slot, life.life] = end
    attempts.sort(key=lambda a: a.start)

    gaps_by_job: dict[int, list[float]] = defaultdict(list)
    for at in attempts:
        gaps_by_job[at.job] += [b - a for a, b in zip(at.item_times, at.item_times[1:],
                                                      strict=False)]
    gaps = [g for job_gaps in gaps_by_job.values() for g in job_gaps]
    item_time = statistics.fmean(gaps) if gaps else config.item_time
    job_item_time = {job: statistics.fmean(g) if g else item_time
                     for job, g in gaps_by_job.items()}
    # the fixed cost of an attempt that runs a unit through: its start and its acknowledgement
    overhead = _start_cost(attempts, item_time) + _end_cost(attempts, "done")[0]
    seen: set[int] = set()
    resumed: list[Attempt] = []
    for at in attempts:  # in order of start
        if at.unit in seen:
            resumed.append(at)
        seen.add(at.unit)
    # Each completed unit's length holds one start (the mean over all attempts) and one
    # acknowledgement; every further attempt pays a start again, and an interrupted one its
    # stop (checkpoint, re-queue): for resumable jobs, which do not start over, that is what
    # resuming costs beyond the items.
    start_cost = _start_cost(attempts, item_time)
    stop_cost, stops = _end_cost(attempts, "interrupted")
    resume_overhead = start_cost + stop_cost * stops / len(resumed) if resumed else 0.0
    resume_costs = resume_overhead * len(resumed) if how == LEASED else 0.0

    # -- the fate of every job ------------------------------------------------------------------
    done_units: dict[int, float] = {}
    for at in attempts:
        if at.outcome == "done" and at.unit not in done_units:
            done_units[at.unit] = at.end
    units_done_by_job: dict[int, list[float]] = defaultdict(list)
    for unit, t in done_units.items():
        units_done_by_job[unit_job[unit]].append(t)
    completed = {job for job, times in units_done_by_job.items()
                 if len(times) >= enqueued[job][1]}
    failed = {unit_job[u] for u in failed_units} - completed
    final_pids = {life.pid for life in record.lives if life.cause == "final"}
    in_flight = {unit for pid, unit in busy if pid in final_pids}
    logged_in_flight = {at.unit for at in attempts if at.outcome == "final"}
    pending = {unit_job[u] for u in queued | in_flight | logged_in_flight} - completed - failed
    lost = set(enqueued) - completed - failed - pending

    # -- effects and checkpoints ----------------------------------------------------------------
    effects = duplicate_effects = missing_effects = 0
    retained: dict[int, int] = {}
    integrity_ok = _integrity(queue_path)
    for job, (items, _) in enqueued.items():
        path = job_db_path(workdir, job)
        integrity_ok = _integrity(path) and integrity_ok
        jc = sqlite3.connect(path)
        try:
            count, distinct = jc.execute(
                "SELECT count(*), count(DISTINCT item) FROM results").fetchone()
            effects += count
            duplicate_effects += count - distinct
            if job in completed:
                missing_effects += items - distinct
            if isinstance(strategy, Resumable) and job in pending:
                with contextlib.suppress(sqlite3.Error):
                    row = jc.execute(
                        "SELECT items_done FROM resumable_jobs WHERE job_id = ? AND status != "
                        "'completed'", (job_key(job),)).fetchone()
                    if row is not None:
                        retained[job] = int(row[0])
        finally:
            jc.close()

    # -- work -----------------------------------------------------------------------------------
    work: dict[int, float] = defaultdict(float)
    item_execs: dict[int, int] = defaultdict(int)
    unique: set[tuple[int, int]] = set()
    for at in attempts:
        work[at.job] += max(0.0, at.end - at.start)
        item_execs[at.job] += len(at.items)
        unique.update((at.job, i) for i in at.items)
    # Measured lengths scatter around the mean: a job's work beyond its length (or beyond the
    # progress it keeps) is summed with its sign, so that the scatter cancels instead of being
    # clipped into waste.
    wasted = 0.0
    useful = 0.0
    lengths: dict[int, float] = {}
    for job, (items, units) in enqueued.items():
        w = work.get(job, 0.0)
        per_item = job_item_time.get(job, item_time)
        lengths[job] = items * per_item + units * overhead
        if job in completed:
            useful += lengths[job]
            wasted += w - lengths[job]
        elif job in pending:
            wasted += w - retained.get(job, 0) * per_item
        else:
            wasted += w
    wasted = max(0.0, wasted)

    # -- pick-up after kills --------------------------------------------------------------------
    bound = pickup_bound(strategy)
    pickups: list[float] = []
    stuck = 0
    if how in (LEASED, RELIABLE, UNACKED):
        by_unit: dict[int, list[Attempt]] = defaultdict(list)
        for at in attempts:
            by_unit[at.unit].append(at)
        for unit_attempts in by_unit.values():
            for i, at in enumerate(unit_attempts):
                if at.outcome not in KILLS:
                    continue
                later = [b.start for b in unit_attempts[i + 1:] if b.start >= at.end]
                if later:
                    pickups.append(later[0] - at.end)
                elif bound is not None and record.end - at.end > bound + 0.5:
                    stuck += 1

    # -- signals and lives ----------------------------------------------------------------------
    restarts = []  # from a process's death (its SIGKILL, or its own last line) to the next
    for life in record.lives:
        at = ready.get((life.slot, life.life))
        before = died.get((life.slot, life.life - 1))
        if at is not None and before is not None:
            restarts.append(max(0.0, at - before))
    n_enq = len(enqueued)
    hits = [c for c in record.crashes if c["hit"]]
    return {
        "strategy": config.strategy,
        "enqueued": n_enq,
        "completed": len(completed),
        "failed": len(failed),
        "lost": len(lost),
        "pending": len(pending),
        "completion_rate": len(completed) / n_enq if n_enq else math.nan,
        "executions": len(attempts),
        "duplicate_item_executions": sum(item_execs.values()) - len(unique),
        "duplicate_effects": duplicate_effects,
        "missing_effects": missing_effects,
        "effects": effects,
        "useful_work_s": useful,
        "wasted_work_s": wasted,
        "deploys": len(record.deploys),
        "sigterms": sum(d["sigterms"] for d in record.deploys),
        "sigkills": sum(1 for life in record.lives if life.killed_as in KILLS),
        "hard_kills": sum(1 for life in record.lives if life.killed_as == "deploy-kill"),
        "crashes": len(hits),
        "integrity_ok": integrity_ok,
        "duration_s": record.end,
        "ended_by": record.ended_by,
        "item_time_s": item_time,
        "attempt_overhead_s": overhead,
        "resume_overhead_s": resume_overhead,
        "resume_costs_s": resume_costs,
        "job_length_s": config.items * item_time + max(units for _, units in
                                                       enqueued.values()) * overhead,
        "restart_delay_s": statistics.fmean(restarts) if restarts else 0.0,
        "max_pickup_s": max(pickups) if pickups else None,
        "pickup_bound_s": None if bound is None else bound + POLL_MAX,
        "stuck_jobs": stuck,
        "processes": len(record.lives),
        "worker_errors": sum(1 for life in record.lives if life.cause == "error"),
        "survivors": len(record.survivors),
        "stopped_at_end": sum(1 for life in record.lives if life.cause == "final"),
        "in_flight_at_end": len(in_flight | logged_in_flight),
        "params": {k: _jsonable(v) for k, v in strategy.params().items()},
        "timescale": config.scale.factor,
        "config": config.to_dict(),
        "timeline": {
            "deploys": [d["t"] for d in record.deploys],
            "crashes": [[c["t"], c["slot"]] for c in hits],
            "end_s": record.end,
            "job_lengths_s": [lengths[job] for job in sorted(enqueued)],
            "pids": sorted({life.pid for life in record.lives} | set(record.spares)),
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    return value
