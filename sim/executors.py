"""Where independent pieces of work run: in this process, on every core, or on a Dask cluster.

Every fan-out of the simulator (replications, sweep cells, the report's runs, benchmarks)
goes through ``run_all``, so each honours the same ``executor`` choice and returns results
in the order of its tasks, whatever order they finished in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from .errors import SimError

__all__ = ["EXECUTORS", "check_executor", "cores", "run_all"]

EXECUTORS = ("processes", "serial", "dask")

T = TypeVar("T")


def cores() -> int:
    """The cores this process may use (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_executor(executor: str) -> str:
    """``executor`` if it is one of ``EXECUTORS``; else a SimError naming the choices."""
    if executor not in EXECUTORS:
        raise SimError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    return executor


def run_all(
    fn: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    *,
    executor: str = "processes",
    processes: int | None = None,
    scheduler: str | None = None,
    on_done: Callable[[int], None] | None = None,
    fresh: bool = False,
) -> list[T]:
    """``[fn(*task) for task in tasks]``, run by ``executor``: "serial" here, "processes" on
    ``processes`` worker processes (default: one per core), "dask" on the cluster at
    ``scheduler`` (default: a local one). ``on_done(i)`` is called as task ``i`` finishes.
    One task, or one process, runs here. ``fresh``: each task in a new process of its own
    (started with ``spawn``), so that what a task measures of its process is its own."""
    check_executor(executor)
    results: list[Any] = [None] * len(tasks)
    workers = min(len(tasks), processes or cores())
    if executor == "dask" and tasks:
        return _run_dask(fn, tasks, scheduler, on_done)
    if executor == "serial" or workers <= 1:
        for i, task in enumerate(tasks):
            results[i] = fn(*task)
            if on_done is not None:
                on_done(i)
        return results
    with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1 if fresh else None
                             ) as pool:
        futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if on_done is not None:
                on_done(i)
    return results


def _run_dask(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], scheduler: str | None,
              on_done: Callable[[int], None] | None) -> list[T]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise SimError(
            "executor 'dask' needs the dask extra: pip install 'deploysim[dask]'"
        ) from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=cores(), threads_per_worker=1, processes=True,
                               dashboard_address=None)
    results: list[Any] = [None] * len(tasks)
    try:
        with Client(scheduler or cluster) as client:
            futures = [client.submit(fn, *task, pure=False) for task in tasks]
            index = {f.key: i for i, f in enumerate(futures)}
            for future in dask_completed(futures):
                i = index[future.key]
                results[i] = future.result()
                if on_done is not None:
                    on_done(i)
    finally:
        if cluster is not None:
            cluster.close()
    return results
