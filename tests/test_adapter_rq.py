"""The RQ adapter of the resumable engine (``deploysim.strategies.resumable.rq``) run for real:
``rq worker`` processes (RQ 3.0's default forking ``Worker``) on a real Redis (the ``redis_url``
server: RQ on db 0, each test on a queue of its own), stopped and killed as a platform does it
(``Container.term``: SIGTERM to the main process only; ``Container.kill``: SIGKILL to every
process of the worker, work horses included).

The job counts ``N`` items; each item HINCRBYs its number in a hash and appends "item pid start
end" to a list, on db 1, so the assertions count every execution: duplicates and missing items
exactly. Progress is kept in a ``RedisStore`` on db 3 (the workers read its URL from
``DEPLOYSIM_STORE_URL``), or an ``SQLiteStore`` in a temporary file. Each test takes 2-10 s.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus

from deploysim.sim.chaos.real.containers import Container, sweep_cgroups
from deploysim.strategies.resumable import IterationJob, ResumableError, open_store
from deploysim.strategies.resumable.rq import META, STORE_ENV, resumable

APP = '''
    """The jobs of tests/test_adapter_rq.py's workers; items are counted in the Redis that
    RESUMABLE_TEST_RECORDS names, progress kept in the store that DEPLOYSIM_STORE_URL names."""

    import os
    import time

    import redis

    from deploysim.strategies.resumable import IterationJob, enumerators
    from deploysim.strategies.resumable.rq import resumable

    _clients = {}


    def records():
        client = _clients.get(os.getpid())
        if client is None:
            client = _clients[os.getpid()] = redis.Redis.from_url(
                os.environ["RESUMABLE_TEST_RECORDS"])
        return client


    @resumable(checkpoint_every_items=5, lease_ttl=3.0, timeout_margin=2.0)
    class Count(IterationJob):
        def __init__(self, key, n, item_time):
            self.key, self.n, self.item_time = key, n, item_time

        def build_enumerator(self, cursor):
            return enumerators.int_range(0, self.n, cursor)

        def on_start(self):
            records().rpush(f"starts:{self.key}", os.getpid())

        def on_resume(self):
            records().rpush(f"starts:{self.key}", os.getpid())

        def each_iteration(self, i):
            start = time.time()
            time.sleep(self.item_time)
            pipe = records().pipeline()
            pipe.hincrby(f"items:{self.key}", str(i), 1)
            pipe.rpush(f"runs:{self.key}", f"{i} {os.getpid()} {start:.6f} {time.time():.6f}")
            pipe.execute()

        def on_complete(self):
            records().hincrby("completions", self.key, 1)


    class Brief(Count):
        max_runtime = 1.0


    class Flaky(Count):
        def each_iteration(self, i):
            if i == 3 and records().incr(f"fails:{self.key}") == 1:
                raise RuntimeError("item 3 failed")
            super().each_iteration(i)


    @resumable(retries=0)
    class Once(Count):
        pass


    @resumable(store="unix:///nonexistent/redis.sock?db=3", retries=0)
    class Unreachable(Count):
        pass
'''

APP_MODULE = "resumable_rq_app"
READY_WAIT = 20.0
"""Seconds a worker may take to log that it is ready (it takes about 0.5 s)."""


@pytest.fixture(autouse=True)
def _rq(need_system: Callable[[str], Any]) -> None:
    need_system("rq")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The job module, written where the workers import it from and imported here too."""
    import importlib

    folder = tmp_path_factory.mktemp("rq-app")
    (folder / f"{APP_MODULE}.py").write_text(textwrap.dedent(APP).lstrip())
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(APP_MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(APP_MODULE, None)


def db_url(redis_url: str, db: int) -> str:
    return f"{redis_url.split('?', 1)[0]}?db={db}"


class Env:
    """One test's queue, the workers it starts (all killed at its end) and the records of its
    job."""

    def __init__(self, redis_url: str, app: ModuleType, logs: Path, store: str) -> None:
        self.redis_url, self.app, self.logs, self.store = redis_url, app, logs, store
        self.connection = redis.Redis.from_url(db_url(redis_url, 0))
        self.records = redis.Redis.from_url(db_url(redis_url, 1))
        self.key = uuid.uuid4().hex
        self.job_id = f"job-{self.key[:12]}"
        self.queue = Queue(f"q-{self.key[:8]}", connection=self.connection)
        self.workers: list[Container] = []

    def worker(self, name: str, *options: str, env: dict[str, str] | None = None,
               ready: bool = True) -> Container:
        """An ``rq worker`` on the test's queue, started (and ready, unless ``ready=False``);
        its log is ``self.log(name)``."""
        argv = [sys.executable, "-m", "rq.cli", "worker", "--url", self.redis_url,
                "--name", f"{name}-{self.key[:8]}", *options, self.queue.name]
        environment = {STORE_ENV: self.store,
                       "RESUMABLE_TEST_RECORDS": db_url(self.redis_url, 1),
                       "PYTHONPATH": os.pathsep.join([str(Path(self.app.__file__).parent),
                                                      *sys.path]),
                       **(env or {})}
        worker = Container(argv, environment, self.logs / f"{name}.log")
        self.workers.append(worker)
        if ready:
            self.wait(lambda: "*** Listening on" in self.log(name) or not worker.alive(),
                      READY_WAIT, f"worker {name} to start")
            assert worker.alive(), self.log(name)
        return worker

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def enqueue(self, job_class: type[IterationJob] | None = None, n: int = 40,
                item_time: float = 0.1, **options: Any) -> Job:
        """The test's job, as a client enqueues it: ``Count`` (or ``job_class``) of ``n`` items
        under the test's job id."""
        job_class = job_class or self.app.Count
        options.setdefault("job_id", self.job_id)
        return job_class.enqueue(self.queue, self.key, n, item_time, **options)

    def job(self) -> Job:
        return Job.fetch(self.job_id, connection=self.connection)

    def record(self) -> Any:
        """The job's record in the checkpoint store."""
        store = open_store(self.store)
        try:
            return store.get(self.job_id)
        finally:
            store.close()

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

    def completions(self) -> int:
        return int(self.records.hget("completions", self.key) or 0)

    def wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                                 for p in sorted(self.logs.glob("*.log")))
                pytest.fail(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.02)

    def status(self) -> str:
        return self.job().get_status()

    def failed(self) -> list[str]:
        """The ids in the queue's ``FailedJobRegistry``, read without RQ's clean-up: reading
        must not act as a maintenance pass."""
        return self.queue.failed_job_registry.get_job_ids(cleanup=False)

    def exited(self, worker: Container, seconds: float = 15.0) -> float:
        """Wait for ``worker`` to exit on its own; the seconds it took."""
        start = time.monotonic()
        self.wait(lambda: not worker.alive(), seconds, "the worker to exit")
        return time.monotonic() - start

    def close(self) -> None:
        try:
            for worker in self.workers:
                worker.kill()
        finally:
            sweep_cgroups(wait=1.0)
            for client in (self.connection, self.records):
                client.close()


def _store_url(kind: str, redis_url: str, tmp_path: Path) -> str:
    return db_url(redis_url, 3) if kind == "redis" else f"sqlite:///{tmp_path / 'progress.db'}"


@pytest.fixture
def env(redis_url: str, app: ModuleType, tmp_path: Path) -> Iterator[Env]:
    environment = Env(redis_url, app, tmp_path, _store_url("redis", redis_url, tmp_path))
    try:
        yield environment
    finally:
        environment.close()


def _worker_counts(env: Env, name: str) -> tuple[int, int]:
    """The worker's own successful and failed job counts, from its hash."""
    key = f"rq:worker:{name}-{env.key[:8]}"
    values = env.connection.hmget(key, "successful_job_count", "failed_job_count")
    return int(values[0] or 0), int(values[1] or 0)


# -- a warm shutdown -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "worker_class"), [
    ("redis", "rq.worker.Worker"), ("sqlite", "rq.worker.Worker"),
    ("redis", "rq.worker.SpawnWorker")])
def test_sigterm_stops_at_an_item_and_a_later_worker_resumes(
        kind: str, worker_class: str, env: Env, tmp_path: Path) -> None:
    env.store = _store_url(kind, env.redis_url, tmp_path)
    first = env.worker("first", "-w", worker_class)
    env.enqueue(n=60)
    env.wait(lambda: len(env.counts()) >= 8, 15, "8 items")
    other = env.app.Count.enqueue(env.queue, f"{env.key}-other", 2, 0.01)  # queued behind it
    first.term()
    assert env.exited(first) < 4.0  # at the next item, not after the 5 s left of the job

    record = env.record()
    done = env.counts()
    assert record.status == "interrupted" and record.cursor == max(done) == len(done) - 1
    assert set(done.values()) == {1}
    job = env.job()
    assert job.get_status() == JobStatus.QUEUED
    assert env.queue.get_job_ids() == [other.id, env.job_id]  # the same id, at the back
    assert job.meta[META]["status"] == "interrupted"
    assert job.meta[META]["cursor"] == record.cursor
    assert job.retries_left == 3 and job.results() == []  # not a retry, no result at all
    assert env.failed() == []
    assert env.queue.started_job_registry.get_job_ids(cleanup=False) == []
    assert _worker_counts(env, "first") == (0, 0)  # neither a success nor a failure
    worked = env.connection.hget(f"rq:worker:first-{env.key[:8]}", "total_working_time")
    assert float(worked) > 0.5  # but time worked
    log = env.log("first")
    assert "Job OK" not in log
    if worker_class == "rq.worker.Worker":  # a SpawnWorker's horse logs nothing, RQ's lines too
        assert f"Job interrupted (warm shutdown of the RQ worker) at cursor {record.cursor}" in log

    env.worker("second", "-w", worker_class)
    env.wait(lambda: env.status() == JobStatus.FINISHED, 15, "the job to finish")
    assert env.counts() == {i: 1 for i in range(60)}  # every item, none twice
    pids = {pid for item, pid, _, _ in env.runs() if item > record.cursor}
    assert pids and pids.isdisjoint(pid for item, pid, _, _ in env.runs()
                                    if item <= record.cursor)
    assert env.completions() == 1 and env.failed() == []
    job = env.job()
    assert job.meta[META]["status"] == "completed" and job.meta[META]["interruptions"] == 1
    assert [r.type.name for r in job.results()] == ["SUCCESSFUL"]
    second = env.log("second")
    assert second.index(f"({other.id})") < second.index(f"({env.job_id})")  # in queue order


def test_a_sigterm_to_the_work_horse_itself_interrupts_the_job(env: Env) -> None:
    # as systemd's default KillMode=control-group does: the worker goes on and runs it again
    worker = env.worker("only")
    env.enqueue(n=30)
    env.wait(lambda: len(env.counts()) >= 5, 15, "5 items")
    horses = worker.processes() - {worker.pid}
    assert len(horses) == 1
    os.kill(horses.pop(), signal.SIGTERM)
    env.wait(lambda: env.status() == JobStatus.FINISHED, 15, "the job to finish")
    assert worker.alive()
    assert env.counts() == {i: 1 for i in range(30)}
    assert env.job().meta[META]["interruptions"] == 1 and env.failed() == []
    assert "Job interrupted (signal SIGTERM)" in env.log("only")


def test_a_second_sigterm_still_kills_the_horse(env: Env) -> None:
    # RQ's cold shutdown: a SIGTERM more than 1 s after the first kills the horse mid-item
    worker = env.worker("only")
    env.enqueue(n=3, item_time=4.0)
    env.wait(lambda: env.records.llen(f"starts:{env.key}") == 1, 15, "the job to start")
    worker.term()
    time.sleep(1.3)
    assert worker.alive() and env.counts() == {}  # waiting for the item in hand
    worker.term()
    assert env.exited(worker) < 3.0
    assert worker.processes() == set()
    assert env.counts() == {}  # the item in hand never finished
    assert "cold shut down" in env.log("only")
    assert env.status() == JobStatus.STARTED  # left for RQ's abandoned-job handling


# -- a SIGKILL -------------------------------------------------------------------------------------


def test_sigkill_is_redelivered_by_rqs_maintenance_and_resumes_at_the_checkpoint(env: Env) -> None:
    first = env.worker("first")
    env.enqueue(n=40)
    env.wait(lambda: len(env.counts()) >= 12, 15, "12 items")
    first.kill()
    killed = env.counts()
    checkpoint = env.record().cursor  # the last durable checkpoint: every 5 items
    assert checkpoint is not None and checkpoint <= max(killed)
    job = env.job()
    assert job.get_status() == JobStatus.STARTED
    registry = env.queue.started_job_registry
    assert registry.get_job_ids(cleanup=False) == [env.job_id]  # held, not lost
    # RQ keeps the entry 60 s (a constant of its code) past the horse's last heartbeat: move
    # its score to the past, as if that time had gone by, for the next maintenance pass
    entries = env.connection.zrange(registry.key, 0, -1)
    env.connection.zadd(registry.key, {entry: time.time() - 1 for entry in entries})

    env.worker("second")  # its start-up maintenance gives the job up as abandoned and retries it
    env.wait(lambda: env.status() == JobStatus.FINISHED, 20, "the job to finish")
    counts = env.counts()
    assert set(counts) == set(range(40))  # none missing
    twice = {i for i, c in counts.items() if c > 1}
    assert twice <= set(range(checkpoint + 1, max(killed) + 1))  # only since the checkpoint
    assert set(counts.values()) <= {1, 2}
    killed_pids = {pid for _, pid, _, _ in env.runs()[:sum(killed.values())]}
    resumed = [item for item, pid, _, _ in env.runs() if pid not in killed_pids]
    assert resumed == list(range(checkpoint + 1, 40))  # the new run starts after the cursor
    assert env.job().retries_left == 2  # the kill took one of the three retries
    assert env.failed() == [] and env.completions() == 1


# -- a duplicate delivery --------------------------------------------------------------------------


def test_a_duplicate_delivery_is_busy_and_comes_back_through_the_scheduler(env: Env) -> None:
    first = env.worker("first")
    env.enqueue(n=40)
    env.wait(lambda: len(env.counts()) >= 3, 15, "3 items")
    second = env.worker("second", "--with-scheduler")
    env.wait(lambda: env.queue.scheduler_pid is not None, 10, "the scheduler")
    env.enqueue(n=40)  # the same job id again, while the first run holds the job
    env.wait(lambda: "Job busy" in env.log("second"), 10, "the duplicate to be busy")
    assert "scheduled in" in env.log("second")
    env.wait(lambda: env.status() == JobStatus.FINISHED
             and f"Job OK ({env.job_id})" in env.log("second"), 25,
             "the duplicate to come back after the job finished")
    assert env.counts() == {i: 1 for i in range(40)}
    assert len({pid for _, pid, _, _ in env.runs()}) == 1  # one runner ran every item
    assert env.completions() == 1 and env.failed() == []
    assert env.job().meta[META]["reason"] == "already completed"  # the duplicate's last run
    assert f"Job OK ({env.job_id})" in env.log("first")
    assert first.alive() and second.alive()


# -- time limits -----------------------------------------------------------------------------------


def test_a_run_ends_and_re_enqueues_before_rqs_job_timeout(env: Env) -> None:
    env.worker("only")
    env.enqueue(n=40, item_time=0.15, job_timeout=5)  # 6 s of work; a run ends 2 s early
    brief = env.app.Brief.enqueue(env.queue, f"{env.key}-brief", 10, 0.2)
    env.wait(lambda: env.status() == JobStatus.FINISHED
             and brief.get_status() == JobStatus.FINISHED, 30, "both jobs to finish")
    assert env.counts() == {i: 1 for i in range(40)} and env.failed() == []
    spans: dict[int, list[float]] = {}
    for _, pid, start, end in env.runs():
        spans.setdefault(pid, []).extend((start, end))
    assert len(spans) >= 2  # two runs at least, each a work horse of its own
    assert all(max(t) - min(t) < 4.0 for t in spans.values())  # 5 s - 2 s margin + an item
    assert env.job().meta[META]["interruptions"] >= 1
    log = env.log("only")
    assert "Job interrupted (max runtime)" in log and "JobTimeoutException" not in log

    brief_spans: dict[int, list[float]] = {}
    for line in env.records.lrange(f"runs:{env.key}-brief", 0, -1):
        _, pid, start, end = line.split()
        brief_spans.setdefault(int(pid), []).extend((float(start), float(end)))
    assert len(brief_spans) >= 2  # the job's own max_runtime (1 s) wins over the 3 s limit
    assert all(max(t) - min(t) < 2.0 for t in brief_spans.values())


# -- a completed job -------------------------------------------------------------------------------


def test_a_completed_job_delivered_again_is_a_no_op(env: Env) -> None:
    env.worker("only")
    job = env.enqueue(n=5, item_time=0.01)
    env.wait(lambda: env.status() == JobStatus.FINISHED, 15, "the job to finish")
    env.queue.enqueue_job(env.job())  # RQ's own API, the same job and id again
    env.wait(lambda: len(env.job().results()) == 2, 15, "the second delivery to finish")
    assert env.counts() == {i: 1 for i in range(5)} and env.completions() == 1
    assert env.job().meta[META]["reason"] == "already completed"
    assert env.status() == JobStatus.FINISHED and job.id == env.job_id


# -- a failure -----------------------------------------------------------------------------------


def test_a_failed_item_fails_the_run_and_rqs_retry_resumes_at_it(env: Env) -> None:
    env.worker("only")
    env.enqueue(env.app.Flaky, n=6, item_time=0.0)
    env.wait(lambda: env.status() == JobStatus.FINISHED, 15, "the job to finish")
    assert env.counts() == {i: 1 for i in range(6)}  # items 0-2 not run again
    job = env.job()
    assert job.retries_left == 2 and [r.type.name for r in job.results()] == ["SUCCESSFUL"]
    assert "RuntimeError: item 3 failed" in env.log("only")
    assert _worker_counts(env, "only") == (1, 1)
    assert env.record().status == "completed" and env.failed() == []


# -- configuration ---------------------------------------------------------------------------------


def test_bad_settings_are_one_error_naming_them(app: ModuleType,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    class Local(IterationJob):
        pass

    for settings, message in [
        ({"store": "mysql://db/app"},
         r"^resumable\(store='mysql://db/app'\): scheme 'mysql://' is not a store's"),
        ({"store": ""}, "store.*must be a store URL"),
        ({"store": "redis://"}, "names no server"),
        ({"store": "sqlite:///"}, "names no file; use sqlite:////ABSOLUTE/PATH.db"),
        ({"store": "redis://h/3", "exactly_once": True}, "a RedisStore keeps them at least once"),
        ({"retries": -1}, r"retries=-1: must be an int >= 0"),
        ({"timeout_margin": 0}, r"timeout_margin=0: must be a positive number"),
        ({"job_timeout": 5}, r"job_timeout=5: leaves no run time after timeout_margin=10"),
        ({"job_timeout": "soon"}, r"job_timeout='soon': must be seconds"),
        ({"checkpoint_every": None}, "checkpoint_every and checkpoint_every_items are both"),
        ({"lease_ttl": "60"}, r"lease_ttl='60': must be a positive number"),
    ]:
        with pytest.raises(ResumableError, match=message):
            resumable(**settings)(type("Job", (IterationJob,), {"__module__": APP_MODULE}))
    with pytest.raises(ResumableError, match="not an IterationJob subclass"):
        resumable(object)
    with pytest.raises(ResumableError, match="not at the top level of its module"):
        resumable(Local)
    with pytest.raises(ResumableError, match="already has an attribute 'enqueue'"):
        resumable(type("Job", (IterationJob,), {"enqueue": 1}))

    queue = Queue("nowhere", connection=redis.Redis(unix_socket_path="/nonexistent"))
    with pytest.raises(ResumableError, match=r"job_timeout=8: leaves no run time .*margin=10"):
        resumable(type("Job", (IterationJob,), {"__module__": APP_MODULE})).enqueue(
            queue, job_timeout=8)
    with pytest.raises(ResumableError, match="defined in __main__"):
        resumable(type("Job", (IterationJob,), {"__module__": "__main__"})).enqueue(queue)
    with pytest.raises(ResumableError, match=r"must be an rq\.Queue"):
        app.Count.enqueue("default")
    with pytest.raises(ResumableError, match="resumable_id='': must be a non-empty str"):
        app.Count.enqueue(queue, resumable_id="")
    with pytest.raises(ResumableError, match=r"Count.perform runs as an RQ job in a worker"):
        app.Count.perform("k", 1, 0.0)
    monkeypatch.delenv(STORE_ENV, raising=False)
    with pytest.raises(ResumableError, match=f"pass resumable.store=URL. or set {STORE_ENV}"):
        app.Count.rq_settings.store_url()
    assert app.Count.enqueue.__func__ is app.Once.enqueue.__func__


def test_a_worker_without_a_store_or_a_horse_fails_the_job_saying_why(env: Env) -> None:
    missing = env.app.Once.enqueue(env.queue, f"{env.key}-missing", 3, 0.0)
    unreachable = env.app.Unreachable.enqueue(env.queue, f"{env.key}-unreachable", 3, 0.0)
    env.exited(env.worker("nostore", "--burst", env={STORE_ENV: ""}, ready=False))
    assert missing.get_status() == unreachable.get_status() == JobStatus.FAILED
    assert f"no checkpoint store: pass resumable(store=URL) or set {STORE_ENV}" in (
        missing.latest_result().exc_string)
    error = unreachable.latest_result().exc_string
    assert "Unreachable: checkpoint store: RedisStore unix:///nonexistent/redis.sock" in error

    simple = env.app.Once.enqueue(env.queue, f"{env.key}-simple", 3, 0.0)
    env.exited(env.worker("simple", "--burst", "-w", "rq.worker.SimpleWorker", ready=False))
    assert simple.get_status() == JobStatus.FAILED
    assert "runs jobs in its own process (SimpleWorker)" in simple.latest_result().exc_string
    assert env.records.hlen(f"items:{env.key}-simple") == 0

    in_process = Queue(env.queue.name, connection=env.connection, is_async=False)
    sync = env.app.Once.enqueue(in_process, f"{env.key}-sync", 3, 0.0)  # runs here and now
    assert sync.get_status() == JobStatus.FAILED
    assert "'sync' is no RQ worker (a Queue(is_async=False)" in sync.latest_result().exc_string


def test_the_logical_id_can_be_set_apart_from_rqs(env: Env) -> None:
    env.worker("only")
    job = env.enqueue(n=3, item_time=0.0, resumable_id=f"logical-{env.key}",
                      retry=Retry(max=1))
    env.wait(lambda: env.status() == JobStatus.FINISHED, 15, "the job to finish")
    store = open_store(env.store)
    try:
        assert store.get(env.job_id) is None
        assert store.get(f"logical-{env.key}").status == "completed"
    finally:
        store.close()
    assert env.job().meta[META]["id"] == f"logical-{env.key}"
    assert job.retries_left == 1
