"""The Celery adapter of the resumable engine (``deploysim.strategies.resumable.celery``) run for
real: ``celery worker`` processes (prefork by default, also threads and solo) on a real Redis
(the ``redis_url`` server: each test's broker on a database of its own, results on db 2),
stopped and killed as a platform does it (``Container.term``: SIGTERM to the main process only;
``Container.kill``: SIGKILL to every process of the worker).

The job counts ``N`` items; each item HINCRBYs its number in a hash and appends "item pid start
end" to a list, on db 1, so the assertions count every execution: duplicates and missing items
exactly. Progress is kept in a ``RedisStore`` on db 3, or an ``SQLiteStore`` in a temporary
file. The tests with workers take 3-10 s each, about 60 s in all.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import celery
import pytest
import redis

from deploysim.sim.chaos.real.containers import Container, sweep_cgroups
from deploysim.strategies.resumable import IterationJob, JobRecord, enumerators, open_store
from deploysim.strategies.resumable.celery import (
    INTERRUPTED,
    CeleryConfigError,
    ResumableTask,
)

APP = '''
    """The Celery app of tests/test_adapter_celery.py's workers, configured from the
    environment: RESUMABLE_TEST_SETTINGS (JSON: "conf" for the app, "task" for the task's
    options) and RESUMABLE_TEST_RECORDS (the Redis URL the items are counted in)."""

    import json
    import os
    import time

    import redis
    from celery import Celery

    from deploysim.strategies.resumable import IterationJob, enumerators
    from deploysim.strategies.resumable.celery import ResumableTask

    SETTINGS = json.loads(os.environ["RESUMABLE_TEST_SETTINGS"])
    app = Celery("resumable_celery_app")
    app.conf.update(broker_connection_retry_on_startup=True, result_expires=None,
                    worker_prefetch_multiplier=1, **SETTINGS["conf"])
    _clients = {}


    def records():
        client = _clients.get(os.getpid())
        if client is None:
            client = _clients[os.getpid()] = redis.Redis.from_url(
                os.environ["RESUMABLE_TEST_RECORDS"])
        return client


    class Count(IterationJob):
        def __init__(self, key, n, item_time):
            self.key, self.n, self.item_time = key, n, item_time

        def build_enumerator(self, cursor):
            return enumerators.int_range(0, self.n, cursor)

        def each_iteration(self, i):
            start = time.time()
            time.sleep(self.item_time)
            pipe = records().pipeline()
            pipe.hincrby(f"items:{self.key}", str(i), 1)
            pipe.rpush(f"runs:{self.key}", f"{i} {os.getpid()} {start:.6f} {time.time():.6f}")
            pipe.execute()

        def on_complete(self):
            records().hincrby("completions", self.key, 1)


    @app.task(base=ResumableTask, name="count", **SETTINGS["task"])
    def count(key, n, item_time):
        return Count(key, n, item_time)
'''

READY_WAIT = 20.0
"""Seconds a worker may take to log that it is ready (it takes about 0.5 s)."""


@pytest.fixture(autouse=True)
def _celery(need_system: Callable[[str], Any]) -> None:
    need_system("celery")


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("celery-app")
    (folder / "resumable_celery_app.py").write_text(textwrap.dedent(APP).lstrip())
    return folder


def _socket(redis_url: str) -> str:
    return redis_url.split("://", 1)[1].split("?", 1)[0]


def kombu(redis_url: str, db: int) -> str:
    """The server of ``redis_url`` as kombu and Celery's Redis backend spell a socket."""
    return f"redis+socket://{_socket(redis_url)}?virtual_host={db}"


def db_url(redis_url: str, db: int) -> str:
    return f"unix://{_socket(redis_url)}?db={db}"


_BROKER_DBS = itertools.count(4)


class Env:
    """One test's Redis databases, the workers it starts (all killed at its end) and the
    records of its job."""

    def __init__(self, redis_url: str, app_dir: Path, logs: Path) -> None:
        self.redis_url, self.app_dir, self.logs = redis_url, app_dir, logs
        self.broker_db = next(_BROKER_DBS)
        assert self.broker_db < 16, "more tests than Redis databases"
        self.broker = redis.Redis.from_url(db_url(redis_url, self.broker_db))
        self.records = redis.Redis.from_url(db_url(redis_url, 1))
        self.results = redis.Redis.from_url(db_url(redis_url, 2))
        self.workers: list[Container] = []
        self.key = uuid.uuid4().hex
        self.task_id = f"job-{self.key[:12]}"

    def settings(self, store: str, conf: dict[str, Any] | None = None,
                 task: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"conf": {"broker_url": kombu(self.redis_url, self.broker_db),
                         "result_backend": kombu(self.redis_url, 2),
                         "resumable_store_url": store, **(conf or {})},
                "task": task or {}}

    def worker(self, name: str, settings: dict[str, Any], *, pool: str = "prefork",
               concurrency: int = 1, env: dict[str, str] | None = None,
               options: tuple[str, ...] = ()) -> Container:
        """A worker started and ready, with ``options`` on its command line; its log is
        ``self.log(name)``."""
        argv = [sys.executable, "-m", "celery", "-A", "resumable_celery_app", "worker",
                "--pool", pool, "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
                "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--without-heartbeat", *options]
        environment = {"RESUMABLE_TEST_SETTINGS": json.dumps(settings),
                       "RESUMABLE_TEST_RECORDS": db_url(self.redis_url, 1),
                       "PYTHONPATH": os.pathsep.join([str(self.app_dir), *sys.path]),
                       **(env or {})}
        worker = Container(argv, environment, self.logs / f"{name}.log")
        self.workers.append(worker)
        deadline = time.monotonic() + READY_WAIT
        while " ready." not in self.log(name):
            assert worker.alive() and time.monotonic() < deadline, (
                f"worker {name} did not start:\n{self.log(name)[-3000:]}")
            time.sleep(0.05)
        return worker

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, n: int, item_time: float) -> None:
        """The job, as a client sends it: the task ``count`` under the test's task id."""
        client = celery.Celery(broker=kombu(self.redis_url, self.broker_db),
                               backend=kombu(self.redis_url, 2))
        try:
            client.send_task("count", (self.key, n, item_time), task_id=self.task_id)
        finally:
            client.close()

    def counts(self) -> dict[int, int]:
        """How many times each item ran."""
        return {int(k): int(v) for k, v in self.records.hgetall(f"items:{self.key}").items()}

    def runs(self) -> list[tuple[int, int, float, float]]:
        """Every item execution in order: (item, pid, start, end)."""
        out = []
        for line in self.records.lrange(f"runs:{self.key}", 0, -1):
            item, pid, start, end = line.split()
            out.append((int(item), int(pid), float(start), float(end)))
        return out

    def record(self, store_url: str) -> JobRecord | None:
        """What the store at ``store_url`` holds of the job now."""
        with open_store(store_url) as store:
            return store.get(self.task_id)

    def completions(self) -> int:
        return int(self.records.hget("completions", self.key) or 0)

    def wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                                 for p in sorted(self.logs.glob("*.log")))
                pytest.fail(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.02)

    def exited(self, worker: Container, seconds: float = 15.0) -> int:
        """Wait for ``worker`` to exit on its own; its exit code."""
        self.wait(lambda: not worker.alive(), seconds, "the worker to exit")
        return worker.process.returncode

    def queued(self) -> list[dict[str, Any]]:
        """The messages waiting in kombu's ``celery`` list, as kombu stored them."""
        return [json.loads(raw) for raw in self.broker.lrange("celery", 0, -1)]

    def unacked(self) -> list[dict[str, Any]]:
        """The messages delivered and not acknowledged (kombu's ``unacked`` hash)."""
        return [json.loads(raw)[0] for raw in self.broker.hvals("unacked")]

    def result(self) -> dict[str, Any] | None:
        raw = self.results.get(f"celery-task-meta-{self.task_id}")
        return None if raw is None else json.loads(raw)

    def close(self) -> None:
        try:
            for worker in self.workers:
                worker.kill()
        finally:
            sweep_cgroups(wait=1.0)
            for client in (self.broker, self.records, self.results):
                client.close()


@pytest.fixture
def env(redis_url: str, app_dir: Path, tmp_path: Path) -> Iterator[Env]:
    environment = Env(redis_url, app_dir, tmp_path)
    try:
        yield environment
    finally:
        environment.close()


def _store_url(kind: str, redis_url: str, tmp_path: Path) -> str:
    return db_url(redis_url, 3) if kind == "redis" else f"sqlite:///{tmp_path / 'progress.db'}"


def _items_by(runs: list[tuple[int, int, float, float]], pids: set[int]) -> list[int]:
    return [item for item, pid, _, _ in runs if pid in pids]


# -- (a) SIGTERM: stop at an item, re-enqueue under the same id, resume on another worker --------


@pytest.mark.parametrize(("pool", "store"), [("prefork", "redis"), ("threads", "sqlite"),
                                             ("solo", "redis")])
def test_sigterm_stops_at_an_item_and_a_new_worker_resumes_from_the_cursor(
        env: Env, pool: str, store: str, tmp_path: Path) -> None:
    n = 40
    store_url = _store_url(store, env.redis_url, tmp_path)
    settings = env.settings(store_url)
    first = env.worker("first", settings, pool=pool)
    env.send(n, 0.05)
    env.wait(lambda: len(env.counts()) >= 8, 15, "8 items")
    first.term()  # SIGTERM to the main process only, as a platform sends it
    assert env.exited(first) == 0  # a warm shutdown that did not wait for the 2 s job
    done_first = env.counts()
    assert 8 <= len(done_first) < n // 2

    # the checkpoint is durable at the item the run stopped at
    record = env.record(store_url)
    assert record is not None
    assert (record.status, record.interruptions) == ("interrupted", 1)
    assert record.cursor == max(done_first) and record.items_done == len(done_first)
    # sent again through Celery under the same task id, not as a retry, and acknowledged
    queued = env.queued()
    assert [m["headers"]["id"] for m in queued] == [env.task_id]
    assert queued[0]["headers"]["retries"] == 0 and env.unacked() == []
    # Celery's records say interrupted: the result backend's state and the worker's log
    result = env.result()
    assert result is not None and result["status"] == INTERRUPTED
    assert result["result"]["cursor"] == record.cursor
    log = env.log("first")
    assert f"job {env.task_id} interrupted at cursor {record.cursor}" in log
    assert "worker warm shutdown (SIGTERM)" in log
    assert f"Task count[{env.task_id}] ignored" in log
    for wrong in ("succeeded", "retry", "raised"):
        assert wrong not in log

    second = env.worker("second", settings, pool=pool)
    env.wait(lambda: env.completions() == 1, 15, "the job to complete")
    env.wait(lambda: (env.result() or {}).get("status") == "SUCCESS", 5, "the task's success")
    counts = env.counts()
    assert counts == dict.fromkeys(range(n), 1)  # every item, each exactly once
    runs = env.runs()
    first_pids = {pid for item, pid, _, _ in runs if item in done_first}
    resumed = [item for item, pid, _, _ in runs if pid not in first_pids]
    assert resumed == list(range(record.cursor + 1, n))  # from the cursor on, nothing before
    final = env.record(store_url)
    assert final is not None
    assert (final.status, final.executions, final.interruptions) == ("completed", 2, 1)
    assert f"Task count[{env.task_id}] succeeded" in env.log("second")
    second.term()
    assert env.exited(second) == 0
    assert env.queued() == [] and env.unacked() == []


def test_a_cold_shutdowns_soft_timeout_stops_the_job_before_celery_cancels_it(env: Env) -> None:
    """With REMAP_SIGTERM=SIGQUIT a SIGTERM is a cold shutdown: Celery waits
    worker_soft_shutdown_timeout, then terminates the tasks in hand. The job stops during that
    wait, at an item, and is sent again."""
    n = 60
    store_url = db_url(env.redis_url, 3)
    settings = env.settings(store_url, conf={"worker_soft_shutdown_timeout": 3})
    worker = env.worker("cold", settings, env={"REMAP_SIGTERM": "SIGQUIT"})
    env.send(n, 0.1)
    env.wait(lambda: len(env.counts()) >= 5, 15, "5 items")
    worker.term()
    env.exited(worker)
    done = env.counts()
    assert set(done) == set(range(len(done))) and len(done) < 25  # stopped long before 3 s
    record = env.record(store_url)
    assert record is not None and (record.status, record.cursor) == ("interrupted", len(done) - 1)
    log = env.log("cold")
    assert "Initiating Soft Shutdown" in log and "(worker cold shutdown): sent again" in log
    assert [m["headers"]["id"] for m in env.queued()] == [env.task_id]
    assert env.unacked() == []


# -- (b) SIGKILL: Celery's redelivery (acks_late, visibility timeout) brings it back -------------


def test_sigkill_is_redelivered_by_celery_and_resumes_from_the_last_checkpoint(env: Env) -> None:
    n = 30
    store_url = db_url(env.redis_url, 3)
    # acks_late and reject_on_worker_lost are the adapter's defaults; a 5 s visibility timeout,
    # swept every 0.5 s, redelivers the killed task soon after; leases short enough to expire
    settings = env.settings(
        store_url,
        conf={"broker_transport_options": {"visibility_timeout": 5,
                                           "unacked_restore_interval": 0.5,
                                           "unacked_restore_throttle": 1}},
        task={"lease_ttl": 3.0, "checkpoint_every_items": 4, "time_limit_margin": 1.0})
    first = env.worker("first", settings)
    env.send(n, 0.1)
    env.wait(lambda: len(env.counts()) >= 10, 15, "10 items")
    first.kill()  # every process of the worker, at once
    ran_first = sorted(env.counts())
    record = env.record(store_url)
    assert record is not None and record.status == "running"
    checkpoint = record.cursor
    assert checkpoint is not None and checkpoint < max(ran_first)  # items since it are lost
    # the message is not in the queue: kombu holds it as delivered and unacknowledged
    assert env.queued() == []
    assert [m["headers"]["id"] for m in env.unacked()] == [env.task_id]

    second = env.worker("second", settings)
    env.wait(lambda: env.completions() == 1, 20, "the redelivered job to complete")
    counts = env.counts()
    assert set(counts) == set(range(n))  # none missing
    twice = {item for item, times in counts.items() if times > 1}
    assert twice == set(range(checkpoint + 1, max(ran_first) + 1))  # only since the checkpoint
    assert max(counts.values()) == 2
    runs = env.runs()
    first_pids = {pid for item, pid, _, _ in runs[:len(ran_first)]}
    assert _items_by(runs, {pid for _, pid, _, _ in runs} - first_pids) == list(
        range(checkpoint + 1, n))
    final = env.record(store_url)
    assert final is not None and (final.status, final.executions) == ("completed", 2)
    assert f"Task count[{env.task_id}] received" in env.log("second")
    env.wait(lambda: (env.result() or {}).get("status") == "SUCCESS", 5, "the task's success")
    second.term()
    assert env.exited(second) == 0
    assert env.queued() == [] and env.unacked() == []


def test_a_pool_process_killed_alone_is_requeued_at_once_and_resumes(
        env: Env, tmp_path: Path) -> None:
    """An OOM kill of the pool process only: Celery sees its worker lost and, with
    reject_on_worker_lost, puts the message back at once (no visibility timeout); the new pool
    process resumes from the last checkpoint, here in an SQLite file."""
    n = 30
    store_url = _store_url("sqlite", env.redis_url, tmp_path)
    settings = env.settings(store_url, task={"lease_ttl": 2.0, "checkpoint_every_items": 4})
    worker = env.worker("oom", settings)
    env.send(n, 0.1)
    env.wait(lambda: len(env.counts()) >= 10, 15, "10 items")
    child = env.runs()[0][1]
    assert child != worker.pid
    os.kill(child, signal.SIGKILL)
    ran_first = sorted(env.counts())
    record = env.record(store_url)
    assert record is not None and record.cursor is not None
    checkpoint = record.cursor
    env.wait(lambda: env.completions() == 1, 20, "the requeued job to complete")
    counts = env.counts()
    assert set(counts) == set(range(n))
    assert {item for item, times in counts.items() if times > 1} == set(
        range(checkpoint + 1, max(ran_first) + 1))
    assert [item for item, pid, _, _ in env.runs() if pid != child] == list(
        range(checkpoint + 1, n))
    final = env.record(store_url)
    assert final is not None and (final.status, final.executions) == ("completed", 2)
    log = env.log("oom")
    assert "exited with 'signal 9 (SIGKILL)'" in log and "WorkerLostError" in log
    # the requeued copy, and one more each time it found the dead run's lease not yet expired
    assert log.count(f"Task count[{env.task_id}] received") == 2 + log.count(
        f"job {env.task_id} is busy, leased by")
    env.wait(lambda: (env.result() or {}).get("status") == "SUCCESS", 5, "the task's success")
    worker.term()
    assert env.exited(worker) == 0


# -- (c) a duplicate delivery is fenced off; (e) a completed job delivered again is a no-op ------


def test_a_duplicate_delivery_waits_for_the_lease_and_a_completed_job_is_a_no_op(
        env: Env) -> None:
    n = 25
    store_url = db_url(env.redis_url, 3)
    settings = env.settings(store_url, task={"lease_ttl": 2.0})
    worker = env.worker("pair", settings, concurrency=2)  # two pool processes: both copies run
    env.send(n, 0.1)
    env.send(n, 0.1)  # the same task id and arguments again, while the first runs
    env.wait(lambda: env.completions() == 1, 20, "the job to complete")
    # the duplicate found the lease held, ran nothing and was sent again for its expiry;
    # once back after the job's end it finds it completed and runs nothing
    env.wait(lambda: f"job {env.task_id} was already completed" in env.log("pair"), 15,
             "the duplicate's return")
    log = env.log("pair")
    assert f"job {env.task_id} is busy, leased by" in log
    assert env.counts() == dict.fromkeys(range(n), 1)
    runs = env.runs()
    assert len({pid for _, pid, _, _ in runs}) == 1  # one runner processed every item
    assert all(a[3] <= b[2] for a, b in itertools.pairwise(runs))  # never two at once
    record = env.record(store_url)
    assert record is not None and (record.status, record.executions) == ("completed", 1)

    # (e) delivered once more, later: nothing runs, the store is unchanged, the task succeeds
    env.records.hdel("completions", env.key)
    successes = log.count(f"Task count[{env.task_id}] succeeded")
    env.send(n, 0.1)
    env.wait(lambda: env.log("pair").count(f"Task count[{env.task_id}] succeeded")
             > successes, 10, "the redelivered completed job")
    assert env.counts() == dict.fromkeys(range(n), 1) and env.completions() == 0
    again = env.record(store_url)
    assert again is not None
    assert (again.status, again.executions, again.items_done) == ("completed", 1, n)
    assert (env.result() or {}).get("status") == "SUCCESS"
    worker.term()
    assert env.exited(worker) == 0
    assert env.queued() == [] and env.unacked() == []


# -- (d) a run ends and sends itself again before Celery's time limit ----------------------------


def test_runs_end_before_the_time_limit_and_the_job_completes(env: Env) -> None:
    n = 24
    store_url = db_url(env.redis_url, 3)
    # the worker's hard limit of 3 s and a job of 4.8 s: each run may take 3 - 1 = 2 s
    settings = env.settings(store_url, task={"time_limit_margin": 1.0})
    worker = env.worker("limited", settings, options=("--time-limit", "3"))
    env.send(n, 0.2)
    env.wait(lambda: env.completions() == 1, 25, "the job to complete")
    assert env.counts() == dict.fromkeys(range(n), 1)
    runs = env.runs()
    assert len({pid for _, pid, _, _ in runs}) == 1  # the pool process was never killed
    record = env.record(store_url)
    assert record is not None and record.status == "completed"
    assert record.interruptions >= 2 and record.executions == record.interruptions + 1
    log = env.log("limited")
    assert log.count("(max runtime): sent again") == record.interruptions
    assert "time limit" not in log.lower() and "raised" not in log
    env.wait(lambda: (env.result() or {}).get("status") == "SUCCESS", 5, "the task's success")
    worker.term()
    assert env.exited(worker) == 0


# -- configuration ------------------------------------------------------------------------------


def _app(**conf: Any) -> Any:
    app = celery.Celery("config-test", broker="memory://", set_as_current=False)
    app.conf.update(**conf)
    return app


def _bind(app: Any, **options: Any) -> Any:
    @app.task(base=ResumableTask, name="job", shared=False, **options)
    def job() -> IterationJob:
        return IterationJob()

    app.finalize()
    return app.tasks["job"]


def test_bad_configuration_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CeleryConfigError, match=r"task 'job': no store URL: set "
                                                r"app.conf.resumable_store_url .* redis://"):
        _bind(_app())
    with pytest.raises(CeleryConfigError, match=r"'mysql://h/db': scheme 'mysql://' is not a "
                                                r"store's; use redis://.*resumable_store_url"):
        _bind(_app(resumable_store_url="mysql://h/db"))
    with pytest.raises(CeleryConfigError, match=r"exactly_once=True needs a store that commits"):
        _bind(_app(resumable_store_url="redis://h/3"), exactly_once=True)
    for url in ("postgresql://app@db/app", "sqlite:///x.db"):  # stores that commit effects
        assert _bind(_app(resumable_store_url=url), exactly_once=True).exactly_once is True
    with pytest.raises(CeleryConfigError, match="names no file"):
        _bind(_app(), store_url="sqlite:///")
    with pytest.raises(CeleryConfigError, match=r"task 'job': lease_ttl='60': must be a "
                                                r"positive number of seconds"):
        _bind(_app(resumable_store_url="sqlite:///x.db"), lease_ttl="60")
    with pytest.raises(CeleryConfigError, match="checkpoint_every and checkpoint_every_items"):
        _bind(_app(resumable_store_url="sqlite:///x.db"), checkpoint_every=None)
    with pytest.raises(CeleryConfigError, match="time_limit_margin=-1: must be a number"):
        _bind(_app(resumable_store_url="sqlite:///x.db"), time_limit_margin=-1)
    # a time limit the margin leaves nothing of, found when the task runs
    store_url = f"sqlite:///{tmp_path / 'progress.db'}"
    task = _bind(_app(resumable_store_url=store_url), time_limit=5)
    with pytest.raises(CeleryConfigError, match=r"time_limit=5 s leaves no time for a run after "
                                                r"time_limit_margin=10 s"):
        task.apply().get()
    # a function that returns something else than a job
    app = _app(resumable_store_url=store_url)

    @app.task(base=ResumableTask, name="not_a_job", shared=False)
    def not_a_job() -> int:
        return 3

    with pytest.raises(CeleryConfigError, match=r"returned 3; with base=ResumableTask it must "
                                                r"return the IterationJob"):
        not_a_job.apply().get()


def test_a_worker_without_a_store_url_refuses_to_start(env: Env) -> None:
    settings = env.settings("")
    worker = Container(
        [sys.executable, "-m", "celery", "-A", "resumable_celery_app", "worker", "--pool",
         "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        {"RESUMABLE_TEST_SETTINGS": json.dumps(settings),
         "RESUMABLE_TEST_RECORDS": db_url(env.redis_url, 1),
         "PYTHONPATH": os.pathsep.join([str(env.app_dir), *sys.path])},
        env.logs / "bad.log")
    env.workers.append(worker)
    assert env.exited(worker) != 0
    assert ("CeleryConfigError: task 'count': no store URL: set app.conf.resumable_store_url"
            in env.log("bad"))


def test_a_runs_time_is_the_smallest_limit_less_the_margin() -> None:
    app = _app(resumable_store_url="sqlite:///x.db", broker_url="redis://localhost:6379/0",
               task_soft_time_limit=100)
    task = _bind(app, max_runtime=600.0)
    task.push_request(timelimit=(None, None))
    try:
        assert task.run_max_runtime() == 90.0  # the app's soft limit, less 10 s
        task.request.timelimit = (50, None)  # the message's own limit wins over the task's
        assert task.run_max_runtime() == 40.0
    finally:
        task.pop_request()
    # with acks_late on Redis, kombu's visibility timeout (3600 s by default) is a limit too
    late = _bind(_app(resumable_store_url="sqlite:///x.db", broker_url="redis://h:6379/0",
                      broker_transport_options={"visibility_timeout": 300}))
    assert late.run_max_runtime() == 290.0
    assert _bind(_app(resumable_store_url="sqlite:///x.db", broker_url="redis://h:6379/0"),
                 acks_late=False).run_max_runtime() is None
    assert _bind(_app(resumable_store_url="sqlite:///x.db",
                      broker_url="amqp://h//")).run_max_runtime() is None


def test_an_eager_run_that_is_interrupted_returns_its_summary(tmp_path: Path) -> None:
    app = _app(resumable_store_url=f"sqlite:///{tmp_path / 'progress.db'}")

    class Slow(IterationJob):
        max_runtime = 0.05

        def build_enumerator(self, cursor: Any) -> Any:
            return enumerators.int_range(0, 10, cursor)

        def each_iteration(self, item: int) -> None:
            time.sleep(0.02)

    @app.task(base=ResumableTask, name="slow", shared=False)
    def slow() -> IterationJob:
        return Slow()

    first = slow.apply(task_id="slow-1").get()
    assert first["status"] == "interrupted" and first["reason"] == "max runtime"
    assert 0 < first["items"] < 10 and first["cursor"] == first["items"] - 1
    while (summary := slow.apply(task_id="slow-1").get())["status"] != "completed":
        assert summary["status"] == "interrupted"
    assert summary["items_done"] == 10
