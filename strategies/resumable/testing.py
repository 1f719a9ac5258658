"""Put your own resumable jobs through deploys and crashes, in your own test suite.

    from hypothesis import given
    from deploysim.strategies.resumable import IterationJob, enumerators
    from deploysim.strategies.resumable.testing import (
        assert_each_item_at_least_once, assert_exactly_once, crash_schedules,
        interruption_schedules, run_with_crashes, run_with_interruptions,
    )

    class Backfill(IterationJob):
        def build_enumerator(self, cursor):
            return enumerators.int_range(0, 50, cursor)

        def each_iteration(self, n):
            ...

    @given(interruption_schedules(max_runs=5, max_items=60))
    def test_backfill_survives_deploys(schedule):
        outcome = run_with_interruptions(Backfill, "backfill", schedule)
        assert_exactly_once(outcome, range(50))

    @given(crash_schedules(max_runs=3, max_items=60))
    def test_backfill_survives_kills(schedule):
        outcome = run_with_crashes(Backfill, "backfill", schedule, checkpoint_every_items=10)
        assert_each_item_at_least_once(outcome, range(50))

A schedule is a list of item counts, one per run: ``[3, 0, 7]`` stops (or kills) the first run
after 3 items, the second at once and the third after 7, then lets the job run to its end. A
graceful stop is a ``StopSignal``, which the engine reads after every item, so a run stopped "at
once" (the stop comes while its first item runs) still finishes the item in hand; a runner whose
stop was requested before it started runs no item at all. A crash is a SIGKILL: no final
checkpoint, the uncommitted transaction of an ``exactly_once`` batch is rolled back, the lease
is left to expire, and a new runner (a new owner) resumes from the last durable checkpoint.

Pass the job as a factory (a class or a function: every run gets a fresh object, as a new
process would) or as one instance. Keyword arguments go to ``Runner``; the clock defaults to a
``VirtualClock``, so runs take no real time and a schedule always gives the same outcome.

The drivers and assertions need only the standard library. The schedule strategies
(``interruption_schedules``, ``crash_schedules``) need hypothesis, which they import when
called: install it where your tests run (``pip install hypothesis``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import VirtualClock
from .job import IterationJob
from .runner import Runner, RunResult
from .signals import StopSignal
from .store import CheckpointStore, JobRecord, MemoryStore, TransactionalStore

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "Executed",
    "Outcome",
    "assert_each_item_at_least_once",
    "assert_exactly_once",
    "crash_schedules",
    "interruption_schedules",
    "run_with_crashes",
    "run_with_interruptions",
]

_SHOWN = 20  # items named in an assertion message before "..."


@dataclass(frozen=True, slots=True)
class Executed:
    """One call of ``each_iteration`` that returned: the run it happened in (1, 2, ...) and
    the item it was given. Under a crash, the item whose effects were the last ones counts."""

    run: int
    item: Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a job put through a schedule.

    ``executions`` lists every item executed, in order, with its run; ``results`` holds each
    run's ``RunResult`` (None for a crashed run); ``records`` the store's record of the job after
    each run; ``store`` the store itself, for more checks.
    """

    job_id: str
    store: CheckpointStore
    executions: tuple[Executed, ...]
    results: tuple[RunResult | None, ...]
    records: tuple[JobRecord | None, ...]

    @property
    def runs(self) -> int:
        """How many runs the job took, crashed ones included."""
        return len(self.results)

    @property
    def crashes(self) -> int:
        """How many runs were killed."""
        return sum(r is None for r in self.results)

    @property
    def items(self) -> list[Any]:
        """The items executed, in order, repeats included."""
        return [e.item for e in self.executions]

    @property
    def duplicates(self) -> Counter[Any]:
        """Items executed more than once, with their counts (lists and dicts as tuples)."""
        counts = Counter(_key(e.item) for e in self.executions)
        return Counter({k: n for k, n in counts.items() if n > 1})

    @property
    def result(self) -> RunResult | None:
        """The last run's result (None if the last run crashed)."""
        return self.results[-1] if self.results else None

    @property
    def completed(self) -> bool:
        """True when the job finished all its items."""
        return self.result is not None and self.result.completed


class _Crash(BaseException):
    """The simulated SIGKILL. Not an Exception, so the engine cannot record it as a failure."""


def run_with_interruptions(
    make_job: Callable[[], IterationJob] | IterationJob,
    job_id: str,
    interrupt_after: Sequence[int],
    *,
    store: CheckpointStore | None = None,
    max_runs: int = 1000,
    **runner_kwargs: Any,
) -> Outcome:
    """Run the job to its end, stopping run ``i`` gracefully after ``interrupt_after[i]`` items
    (``StopSignal``, as a deploy's SIGTERM would), then running it to the end. Gives up after
    ``max_runs`` runs (a job that keeps interrupting itself): check ``Outcome.completed``."""
    return _drive(make_job, job_id, interrupt_after, False, store, max_runs, runner_kwargs)


def run_with_crashes(
    make_job: Callable[[], IterationJob] | IterationJob,
    job_id: str,
    crash_after: Sequence[int],
    *,
    store: CheckpointStore | None = None,
    max_runs: int = 1000,
    **runner_kwargs: Any,
) -> Outcome:
    """Run the job to its end, killing run ``i`` as soon as ``crash_after[i]`` of its items have
    had their effects (before the engine records the last of them): no final checkpoint, the
    open batch rolled back, the lease left to expire. Each run has its own owner. The clock
    must be one the helper can move (``advance``); the default VirtualClock is."""
    return _drive(make_job, job_id, crash_after, True, store, max_runs, runner_kwargs)


def interruption_schedules(max_runs: int = 5, max_items: int = 20) -> SearchStrategy[list[int]]:
    """Hypothesis strategy: up to ``max_runs`` item counts, each in ``[0, max_items]``, for
    ``run_with_interruptions`` (or, as ``crash_schedules``, ``run_with_crashes``). Shrinks
    towards fewer stops, earlier. Needs hypothesis."""
    from hypothesis import strategies as st

    return st.lists(st.integers(0, max_items), max_size=max_runs)


crash_schedules = interruption_schedules
"""The same strategy, under the name that reads well beside ``run_with_crashes``."""


def assert_each_item_at_least_once(
    observed: Outcome | Iterable[Any], expected_items: Iterable[Any]
) -> None:
    """Fail, naming them, if an expected item never ran or an unexpected one did. ``observed``
    is an Outcome or the effects you read back (rows of a table, say)."""
    _assert_items(observed, expected_items, exactly_once=False)


def assert_exactly_once(observed: Outcome | Iterable[Any], expected_items: Iterable[Any]) -> None:
    """Fail, naming them, if an expected item never ran, ran more than once, or an unexpected
    one ran. ``observed`` is an Outcome or the effects you read back."""
    _assert_items(observed, expected_items, exactly_once=True)


# -- the driver ---------------------------------------------------------------------------------


def _drive(
    make_job: Callable[[], IterationJob] | IterationJob,
    job_id: str,
    schedule: Sequence[int],
    crash: bool,
    store: CheckpointStore | None,
    max_runs: int,
    runner_kwargs: dict[str, Any],
) -> Outcome:
    if "stop" in runner_kwargs:
        raise TypeError("the helper owns the stop signal: do not pass stop=")
    if any(n < 0 for n in schedule):
        raise ValueError(f"schedule {list(schedule)!r}: item counts must be >= 0")
    store = MemoryStore() if store is None else store
    clock = runner_kwargs.pop("clock", None) or VirtualClock()
    advance: Callable[[float], None] | None = getattr(clock, "advance", None)
    if crash and schedule and advance is None:
        raise TypeError(
            f"run_with_crashes lets leases expire by moving the clock: {type(clock).__name__} "
            f"has no advance(); use a VirtualClock"
        )
    owner = runner_kwargs.pop("owner", None)
    executions: list[Executed] = []
    results: list[RunResult | None] = []
    records: list[JobRecord | None] = []
    for run in range(1, max_runs + 1):
        limit = schedule[run - 1] if run <= len(schedule) else None
        stop = StopSignal()
        runner = Runner(store, clock=clock, stop=stop, owner=owner or f"{job_id}/run-{run}",
                        **runner_kwargs)
        job = make_job if isinstance(make_job, IterationJob) else make_job()
        result = _one_run(runner, job, job_id, run, limit, crash, executions)
        results.append(result)
        if result is None:  # killed: the process's open transaction dies with it
            if isinstance(store, TransactionalStore):
                store.rollback()
            assert advance is not None  # checked above: a crash needs a clock that moves
            advance(runner.lease_ttl)
        records.append(store.get(job_id))
        if result is not None and (result.completed or result.failed):
            break
        if result is not None and result.retry_after and advance is not None:
            advance(result.retry_after)  # a throttled job asked to wait
    return Outcome(job_id, store, tuple(executions), tuple(results), tuple(records))


def _one_run(
    runner: Runner,
    job: IterationJob,
    job_id: str,
    run: int,
    limit: int | None,
    crash: bool,
    executions: list[Executed],
) -> RunResult | None:
    """One run of the job with its ``each_iteration`` wrapped to count, stop or crash."""
    original = job.each_iteration
    shadowed = "each_iteration" in vars(job)
    done = 0

    def each_iteration(item: Any) -> None:
        nonlocal done
        if crash and limit == 0:
            raise _Crash
        original(item)
        executions.append(Executed(run, item))
        done += 1
        if limit == 0 and not crash and done == 1:  # a stop that came as the run began
            runner.stop.request(f"test schedule: stop at once in run {run}")
        elif done == limit:
            if crash:
                raise _Crash
            runner.stop.request(f"test schedule: stop after {limit} items in run {run}")

    job.each_iteration = each_iteration  # type: ignore[method-assign]
    try:
        return runner.run(job_id, job)
    except _Crash:
        return None
    finally:
        if shadowed:
            job.each_iteration = original  # type: ignore[method-assign]
        else:
            del job.each_iteration


# -- assertions ---------------------------------------------------------------------------------


def _key(item: Any) -> Any:
    """A hashable stand-in for an item: lists as tuples, dicts as sorted pairs, sets frozen."""
    if isinstance(item, (list, tuple)):
        return tuple(_key(x) for x in item)
    if isinstance(item, dict):
        return tuple(sorted((k, _key(v)) for k, v in item.items()))
    if isinstance(item, (set, frozenset)):
        return frozenset(_key(x) for x in item)
    try:
        hash(item)
    except TypeError:
        return repr(item)
    return item


def _show(keys: Iterable[Any]) -> str:
    keys = list(keys)
    try:
        keys.sort()
    except TypeError:
        pass
    text = ", ".join(repr(k) for k in keys[:_SHOWN])
    return f"[{text}{', ...' if len(keys) > _SHOWN else ''}]"


def _assert_items(observed: Outcome | Iterable[Any], expected_items: Iterable[Any], *,
                  exactly_once: bool) -> None:
    outcome = observed if isinstance(observed, Outcome) else None
    items = outcome.items if outcome is not None else list(observed)
    seen = Counter(_key(x) for x in items)
    expected = Counter(_key(x) for x in expected_items)
    problems = []
    missing = expected - seen
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} expected items never ran: "
                        f"{_show(missing)}")
    unexpected = [k for k in seen if k not in expected]
    if unexpected:
        problems.append(f"{len(unexpected)} items ran that were not expected: "
                        f"{_show(unexpected)}")
    if exactly_once:
        extra = {k: n for k, n in (seen - expected).items() if k in expected}
        if extra:
            detail = ", ".join(
                f"{k!r} x{seen[k]}{_runs_of(outcome, k)}" for k in sorted(extra, key=repr)[:_SHOWN]
            )
            more = ", ..." if len(extra) > _SHOWN else ""
            problems.append(f"{len(extra)} items ran more than once: {detail}{more}")
    if problems:
        if outcome is not None:
            problems.append(_ending(outcome))
        raise AssertionError("\n".join(problems))


def _runs_of(outcome: Outcome | None, key: Any) -> str:
    if outcome is None:
        return ""
    runs = [e.run for e in outcome.executions if _key(e.item) == key]
    return f" (runs {', '.join(map(str, runs))})"


def _ending(outcome: Outcome) -> str:
    last = outcome.result
    if last is None:
        return f"the last of {outcome.runs} runs crashed"
    return (f"after {outcome.runs} runs ({outcome.crashes} crashed) the job is {last.status}: "
            f"{last.reason}")
