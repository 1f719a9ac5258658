"""The audit of a real-systems run, counted from records kept apart (after Jepsen's total-queue
checker), under the JSON names of ``deploysim chaos``:

- the results database: which attempts started, which items ran, which jobs completed
  (``work``), written by the job itself;
- the system's own records at the end (``System.bookkeeping``): queued, held (started, unacked,
  in an acks set), scheduled for a retry, failed;
- the controller's record: signals, and when and how each container ended.

A job is completed when it wrote its last line (a resumable job, also when the engine's store
has it completed: a kill can fall between that and the line); failed when the system's records
say so; pending when they still hold it (queued, held, retry) or a container was working on it
when the run ended; ``lost = enqueued - completed - failed - pending``, never assumed zero.
Work is the time of every attempt, from its start line to its completion line or to the death of its
container (or, when the system gave the job up before its container died, one item after its
last record); wasted work is that of attempts that did not complete, as ``deploysim run``
counts it, or, for a system that resumes jobs from a cursor, the work beyond one pass over the
job's items. Each attempt also costs the fetch before it: the mean time from a job's completion
line to its worker's next start line. A job's length (what the simulator is given) is its
completed attempt's time with that fetch; jobs that never completed get the mean of those that
did.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .controller import RealRecord
from .systems.base import RunContext, System
from .work import EVENTS, results_key

KILLS = ("crash", "deploy-kill")


@dataclass(slots=True)
class Attempt:
    job: int
    container: str
    start: float
    end: float | None = None  # None: not ended by a line
    completed: bool = False
    items: int = 0
    last_item: float | None = None


@dataclass(slots=True)
class Events:
    """What the results list says: the attempts (times from the run's start), the executions of
    each item by job, how many item executions there were in all, and when each container that
    says so was ready (``R`` lines, written by the system's own start-up hook)."""

    attempts: list[Attempt]
    executions: dict[int, int]
    total: int
    ready: dict[str, float]


def read_events(client: Any, t0: float) -> Events:
    """The results list's events (see ``Events``)."""
    attempts: list[Attempt] = []
    open_by_container: dict[str, Attempt] = {}
    executions: dict[int, int] = defaultdict(int)
    ready: dict[str, float] = {}
    total = 0
    for raw in client.lrange(EVENTS, 0, -1):
        parts = raw.decode().split()
        kind = parts[0]
        t = float(parts[-1]) - t0
        container = parts[-2]
        if kind == "R":
            ready.setdefault(container, t)
            continue
        job = int(parts[1])
        if kind == "S":
            previous = open_by_container.get(container)
            if previous is not None and previous.end is None:
                previous.end = t  # a job that raised: its worker took the next one
            at = Attempt(job, container, t)
            attempts.append(at)
            open_by_container[container] = at
        elif kind == "I":
            total += 1
            executions[job] += 1
            at = open_by_container.get(container)
            if at is not None and at.job == job:
                at.items += 1
                at.last_item = t
        elif kind == "D":
            at = open_by_container.get(container)
            if at is not None and at.job == job:
                at.end, at.completed = t, True
    return Events(attempts, executions, total, ready)


def audit(system: System, ctx: RunContext, record: RealRecord, *,
          bookkeeping: dict[int, str]) -> dict[str, Any]:
    """The JSON-ready audit of a run (see the module docstring)."""
    import redis

    client = redis.Redis.from_url(ctx.results_url)
    try:
        events = read_events(client, record.t0)
        unique = {job: int(client.hlen(f"deploysim:items:{job}")) for job in range(ctx.jobs)}
        results = {job: int(client.hlen(results_key(job))) for job in range(ctx.jobs)}
    finally:
        client.close()
    attempts, executions, total = events.attempts, events.executions, events.total
    for life in record.lives:
        # the system's own start-up hook is more exact than its log line, which a
        # process may relay late (Dramatiq's parent forwards its worker's log)
        life.ready = events.ready.get(life.name, life.ready)
    lives = {life.name: life for life in record.lives}
    item_time = _item_time(attempts, ctx)  # completed attempts only: their ends are known
    for at in attempts:
        if at.end is None:
            # an attempt that did not complete ran until its container died, or until the
            # system abandoned it (Sidekiq's requeue at the timeout, before the exit): within
            # one item of its last record
            life = lives.get(at.container)
            died = life.ended if life is not None and life.ended is not None else record.end
            last = at.last_item if at.last_item is not None else at.start
            at.end = min(died, last + item_time)
    completed = {at.job for at in attempts if at.completed}
    # completed for the engine's store, the job's own line lost to a kill right after
    unrecorded = system.stored_completions(ctx) - completed
    completed |= unrecorded
    failed = {j for j, where in bookkeeping.items() if where == "failed"} - completed
    in_hand = {at.job for at in attempts if not at.completed
               and (life := lives.get(at.container)) is not None and life.cause == "final"
               and at is _last_of(attempts, at.container)}
    pending = ({j for j, where in bookkeeping.items() if where in ("queued", "held", "retry")}
               | in_hand) - completed - failed
    enqueued = set(range(ctx.jobs))
    lost = enqueued - completed - failed - pending
    duplicates = int(sum(executions[j] - unique[j] for j in enqueued))
    missing = int(sum(ctx.items - results[j] for j in completed))
    gap = _fetch_gap(attempts)
    if system.resumes:  # the completing attempt did only the items after the cursor
        lengths = {at.job: ctx.items * item_time + gap for at in attempts if at.completed}
    else:
        lengths = {at.job: at.end - at.start + gap for at in attempts
                   if at.completed and at.end is not None}
    mean_length = statistics.fmean(lengths.values()) if lengths else ctx.items * ctx.item_time
    work: dict[int, float] = defaultdict(float)
    wasted = 0.0
    for at in attempts:
        assert at.end is not None
        work[at.job] += max(0.0, at.end - at.start) + gap
    for job in enqueued:
        if job in completed:
            wasted += max(0.0, work[job] - lengths.get(job, 0.0))
        else:
            wasted += work[job]
    ready = [life.ready - life.started for life in record.lives if life.ready is not None]
    restarts = [_restart_delay(life, record) for life in record.lives if life.life > 1]
    restarts = [d for d in restarts if d is not None]
    # a ready worker still has to fetch its first job: that too keeps the slot empty
    first_fetch = _first_fetch(attempts, record)
    sigterms = sum(d["sigterms"] for d in record.deploys)
    sigkills = sum(1 for life in record.lives if life.cause in KILLS)
    fates = {job: ("completed" if job in completed else "failed" if job in failed
                   else "pending" if job in pending else "lost") for job in sorted(enqueued)}
    return {
        "system": system.name,
        "version": system.version(),
        "enqueued": len(enqueued),
        "completed": len(completed),
        "completion_rate": len(completed) / len(enqueued) if enqueued else 0.0,
        "failed": len(failed),
        "lost": len(lost),
        "pending": len(pending),
        "executions": len(attempts),
        "item_executions": total,
        "completions_without_a_line": len(unrecorded),
        "duplicate_item_executions": duplicates,
        "missing_results": missing,
        **_effects(system, ctx, completed, duplicates, missing),
        "wasted_work_s": wasted,
        "deploys": len(record.deploys),
        "sigterms": sigterms,
        "sigkills": sigkills,
        "deploy_sigkills": sum(d["sigkills"] for d in record.deploys),
        "crashes": sum(1 for c in record.crashes if c["hit"]),
        "started_at": record.t0,
        "duration_s": record.end,
        "ended_by": record.ended_by,
        "survivors": list(record.survivors),
        "item_time_s": item_time,
        "job_length_s": mean_length,
        "start_up_s": statistics.fmean(ready) if ready else None,
        # what a worker spends between one job's end and the next one's start line (fetch,
        # RQ's fork of a work horse) is counted with each attempt; none resumes from a cursor
        "attempt_overhead_s": gap,
        "resume_overhead_s": 0.0,
        "resume_costs_s": 0.0,
        "first_fetch_s": first_fetch,
        "restart_delay_s": first_fetch + (statistics.fmean(restarts) if restarts else (
            statistics.fmean(ready) if ready else 0.0)),
        "settings": dict(ctx.settings),
        "fates": {str(j): f for j, f in fates.items()},
        "bookkeeping": {str(j): where for j, where in sorted(bookkeeping.items())},
        "timeline": {
            "end_s": record.end,
            "deploys": [d["t"] for d in record.deploys],
            "crashes": [(c["t"], c["slot"]) for c in record.crashes if c["hit"]],
            "job_lengths_s": [lengths.get(j, mean_length) for j in range(ctx.jobs)],
            "ready": _ready(record),
            "lives": [life.to_dict() for life in record.lives],
        },
    }


def _effects(system: System, ctx: RunContext, completed: set[int], duplicates: int,
             missing: int) -> dict[str, int]:
    """``duplicate_effects`` (effects on record more than once) and ``missing_effects`` (items
    of completed jobs with no effect on record). Where the system keeps no effects apart
    (``System.effects`` is None), an item's record is its effect: the figures are those of
    the item records."""
    effects = system.effects(ctx)
    if effects is None:
        return {"duplicate_effects": duplicates, "missing_effects": missing}
    return {
        "duplicate_effects": sum(n - 1 for job in effects.values() for n in job.values()),
        "missing_effects": sum(ctx.items - len(effects.get(j, {})) for j in completed),
    }


def _fetch_gap(attempts: list[Attempt]) -> float:
    """The mean time a worker takes from one job's completion to its next job's start line:
    the cost of fetching and starting a job, which the job's own lines do not bracket."""
    gaps = []
    previous: dict[str, Attempt] = {}
    for at in attempts:  # in the order of their start lines
        before = previous.get(at.container)
        if before is not None and before.completed and before.end is not None:
            gaps.append(max(0.0, at.start - before.end))
        previous[at.container] = at
    return statistics.fmean(gaps) if gaps else 0.0


def _first_fetch(attempts: list[Attempt], record: RealRecord) -> float:
    """The median time from a replacement container's ready line to its first job's start
    line, over those that started one (the first containers were ready before the jobs were
    enqueued): the median, or with four or more the lower quartile."""
    first: dict[str, float] = {}
    for at in attempts:
        first.setdefault(at.container, at.start)
    waits = [first[life.name] - life.ready for life in record.lives
             if life.life > 1 and life.ready is not None and life.name in first
             and first[life.name] >= life.ready]
    if len(waits) < 4:
        return statistics.median(waits) if waits else 0.0
    # the lower quartile: a replacement that finds the queue empty (its jobs held by a dead
    # worker, waiting for redelivery) waits for work, not for its fetch
    return statistics.quantiles(waits, n=4)[0]


def _ready(record: RealRecord) -> list[list[float]]:
    """Per slot, when each of its containers (first, second, ...) was ready (the run's end for
    one that never said it was)."""
    out: list[list[float]] = [[] for _ in range(1 + max(life.slot for life in record.lives))]
    for life in sorted(record.lives, key=lambda life: (life.slot, life.life)):
        out[life.slot].append(life.ready if life.ready is not None else record.end)
    return out


def _last_of(attempts: list[Attempt], container: str) -> Attempt | None:
    last = None
    for at in attempts:
        if at.container == container:
            last = at
    return last


def _item_time(attempts: list[Attempt], ctx: RunContext) -> float:
    """The mean time of an item as measured: completed attempts' times over their items."""
    spans = [(at.end - at.start, at.items) for at in attempts
             if at.completed and at.end is not None and at.items]
    if not spans:
        return ctx.item_time
    return sum(s for s, _ in spans) / sum(n for _, n in spans)


def _restart_delay(life: Any, record: RealRecord) -> float | None:
    """Seconds from the death of the slot's previous container to this one being ready."""
    if life.ready is None:
        return None
    before = [p for p in record.lives if p.slot == life.slot and p.life == life.life - 1]
    if not before or before[0].ended is None:
        return None
    return max(0.0, life.ready - before[0].ended)
