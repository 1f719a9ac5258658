"""The Dramatiq adapter run for real: ``dramatiq`` workers (a parent and one worker process each)
on a real Redis, stopped and killed as a platform stops and kills them (``Container``), with the
checkpoints in a ``RedisStore`` (another database of the same server) or an ``SQLiteStore``
file. Every item execution is counted in a Redis hash (HINCRBY per item), so that duplicates
and missing items are counted exactly.

The broker runs queue maintenance on every command (``maintenance_chance=1_000_000``) with a
2 s ``heartbeat_timeout``, so that a killed worker's message comes back within seconds, and the
workers' idle consumers poll every 0.1 s (``dramatiq_worker_timeout``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

dramatiq = pytest.importorskip("dramatiq")
redis = pytest.importorskip("redis")

from dramatiq import Message  # noqa: E402
from dramatiq.brokers.stub import StubBroker  # noqa: E402

from deploysim.sim.chaos.real.containers import Container, sweep_cgroups  # noqa: E402
from deploysim.strategies.resumable import IterationJob, ResumableError  # noqa: E402
from deploysim.strategies.resumable.dramatiq import (  # noqa: E402
    OPTION,
    ResumableActor,
    resumable_actor,
)

QUEUE = "jobs"
READY = b"Worker process is ready for action"

APP = '''
"""The Dramatiq app of the adapter's tests: ``dramatiq resumable_app:broker``, configured by the
JSON in RESUMABLE_APP. The job counts its items' executions in Redis."""

import json
import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit,
)

from deploysim.strategies.resumable import IterationJob, enumerators
from deploysim.strategies.resumable.dramatiq import resumable_actor

_clients = {}


def client(url):
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


class Count(IterationJob):
    """Items 0..n-1, each taking item_time seconds; executions counted under the key ns."""

    def __init__(self, ns, record_url, n, item_time):
        self.ns, self.r, self.n, self.item_time = ns, client(record_url), n, item_time

    def build_enumerator(self, cursor):
        return enumerators.int_range(0, self.n, cursor)

    def each_iteration(self, i):
        if self.r.incr(self.ns + ":inflight") > 1:
            self.r.incr(self.ns + ":overlap")
        time.sleep(self.item_time)
        self.r.hincrby(self.ns + ":items", i, 1)
        self.r.rpush(self.ns + ":order", "%d:%d" % (os.getpid(), i))
        self.r.decr(self.ns + ":inflight")

    def on_complete(self):
        self.r.incr(self.ns + ":completions")


def make(ns, broker_url, store_url, store_prefix, heartbeat_timeout=2000, lease_ttl=3.0,
         time_limit=1500):
    broker = RedisBroker(
        url=broker_url, namespace=ns, heartbeat_timeout=heartbeat_timeout,
        maintenance_chance=1_000_000,
        middleware=[AgeLimit(), TimeLimit(interval=50), ShutdownNotifications(), Callbacks(),
                    Pipelines(), Retries(min_backoff=100, max_backoff=200)])
    options = dict(store_url=store_url,
                   store_options={"prefix": store_prefix} if store_prefix else None,
                   checkpoint_every_items=5, lease_ttl=lease_ttl, queue_name="jobs",
                   broker=broker)
    count = resumable_actor(actor_name="count", **options)(Count)
    timed = resumable_actor(actor_name="timed", time_limit=time_limit, time_limit_margin=0.2,
                            **options)(Count)

    @dramatiq.actor(actor_name="done", queue_name="jobs", broker=broker)
    def done(message, result):
        client(message["args"][1]).incr(message["args"][0] + ":on_success")

    return broker, count, timed, done


if "RESUMABLE_APP" in os.environ:
    broker, count, timed, done = make(**json.loads(os.environ["RESUMABLE_APP"]))
'''


# -- the app, its workers and what they recorded ------------------------------------------------

class App:
    """One test's app: its namespace (broker keys, store prefix, record keys), the actors as the
    test process sends with them, the workers it started, and what the jobs recorded."""

    def __init__(self, folder: Path, redis_url: str, store: str) -> None:
        self.folder = folder
        self.ns = f"t{uuid.uuid4().hex[:12]}"
        base = redis_url.rsplit("?db=", 1)[0]
        self.record_url = f"{base}?db=4"
        store_url = f"{base}?db=3" if store == "redis" else f"sqlite:///{folder / 'progress.db'}"
        self.config = {"ns": self.ns, "broker_url": redis_url, "store_url": store_url,
                       "store_prefix": self.ns if store == "redis" else None}
        (folder / "resumable_app.py").write_text(APP, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"resumable_app_{self.ns}",
                                                      folder / "resumable_app.py")
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.broker, self.count, self.timed, self.done = module.make(**self.config)
        self.r = redis.Redis.from_url(redis_url)
        self.record = redis.Redis.from_url(self.record_url)
        self.workers: list[tuple[Container, Path]] = []

    def job(self, actor: ResumableActor, n: int, item_time: float, **options: Any) -> Message:
        """Send a job of ``n`` items through Dramatiq's own API."""
        return actor.send_with_options(args=(self.ns, self.record_url, n, item_time), **options)

    def start(self, threads: int = 1, prefetch: int | None = None) -> Container:
        """A ``dramatiq`` worker container (a parent and one worker process), once it is ready."""
        log = self.folder / f"worker{len(self.workers)}.log"
        env = {"RESUMABLE_APP": json.dumps(self.config), "dramatiq_worker_timeout": "100",
               "PYTHONPATH": os.pathsep.join(
                   [str(self.folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
        if prefetch is not None:
            env["dramatiq_queue_prefetch"] = str(prefetch)
        argv = [sys.executable, "-m", "dramatiq", "resumable_app:broker", "--processes", "1",
                "--threads", str(threads), "--worker-shutdown-timeout", "20000",
                "--queues", QUEUE]
        worker = Container(argv, env, log, cwd=str(self.folder))
        self.workers.append((worker, log))
        wait_for(lambda: READY in log.read_bytes() or not worker.alive(), 30, "worker ready")
        assert worker.alive(), log.read_text()
        return worker

    def log(self, worker: Container) -> str:
        return next(log for w, log in self.workers if w is worker).read_text()

    def logs(self) -> str:
        return "".join(log.read_text() for _, log in self.workers)

    def stop(self, worker: Container) -> None:
        """SIGTERM to the worker's main process, as a platform sends it; it must exit by itself."""
        assert worker.term()
        wait_for(lambda: not worker.alive(), 15, "worker exit after SIGTERM")

    # what the jobs recorded
    def items(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.record.hgetall(f"{self.ns}:items").items()}

    def counter(self, name: str) -> int:
        return int(self.record.get(f"{self.ns}:{name}") or 0)

    def order(self) -> list[tuple[int, int]]:
        """(worker pid, item) in the order items ended."""
        return [tuple(map(int, e.split(b":"))) for e in self.record.lrange(f"{self.ns}:order",
                                                                            0, -1)]

    # the broker's own records
    def messages(self, key: str) -> list[Message]:
        """The messages of queue ``key`` (``jobs``, ``jobs.DQ``), in queue order."""
        ids = self.r.lrange(f"{self.ns}:{key}", 0, -1)
        data = self.r.hmget(f"{self.ns}:{key}.msgs", ids) if ids else []
        return [Message.decode(d) for d in data if d is not None]

    def held(self) -> int:
        """Messages fetched and not acknowledged, in every worker's acks sets."""
        return sum(self.r.scard(k) for k in self.r.scan_iter(f"{self.ns}:__acks__.*"))

    def dead(self) -> int:
        return self.r.zcard(f"{self.ns}:{QUEUE}.XQ")

    def settled(self) -> bool:
        """Nothing queued, delayed or held: every delivery has ended."""
        return (not self.r.llen(f"{self.ns}:{QUEUE}") and not self.r.llen(f"{self.ns}:{QUEUE}.DQ")
                and not self.held())

    def close(self) -> None:
        for worker, _ in self.workers:
            worker.kill()
        self.broker.close()
        for client in (self.broker.client, self.r, self.record):
            client.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def app(request, need_system, redis_url, tmp_path) -> Iterator[App]:
    need_system("dramatiq")
    made = App(tmp_path, redis_url, getattr(request, "param", "redis"))
    try:
        yield made
    finally:
        made.close()
        sweep_cgroups(wait=1.0)


def assert_no_failure_nor_retry(app: App) -> None:
    logs = app.logs()
    assert "Failed to process message" not in logs
    assert "Retrying message" not in logs
    assert "Time limit exceeded" not in logs
    assert app.dead() == 0


# -- (a) SIGTERM ----------------------------------------------------------------------------------

@pytest.mark.parametrize("app", ["redis", "sqlite"], indirect=True)
def test_a_sigterm_stops_the_job_at_an_item_and_the_next_worker_resumes_it(app):
    first = app.start()
    sent = app.job(app.count, 60, 0.05, on_success=app.done)
    wait_for(lambda: len(app.items()) >= 8, 15, "items run")
    app.stop(first)

    record = app.count.progress(sent)
    assert record.status == "interrupted" and record.interruptions == 1
    cursor = record.cursor
    # the stop came after an item: every item up to the cursor ran once, none after it
    assert app.items() == {i: 1 for i in range(cursor + 1)}
    assert cursor < 59
    # enqueued again through Dramatiq: the same message, at the back of the queue, no retry,
    # and no on_success message beside it: an interrupted run is no success
    assert [m.actor_name for m in app.messages(QUEUE)] == ["count"]
    [again] = app.messages(QUEUE)
    assert again.message_id == sent.message_id
    assert again.options[OPTION] == {"status": "interrupted", "reason": "worker shutdown",
                                     "times_interrupted": 1}
    assert "retries" not in again.options
    assert not app.messages(f"{QUEUE}.DQ") and app.held() == 0
    log = app.log(first)
    assert f"Interrupted job {sent.message_id!r} at cursor {cursor}" in log
    assert "Message count(" in log and "was skipped" in log
    assert app.counter("on_success") == 0
    assert app.counter("completions") == 0

    second = app.start()
    wait_for(lambda: app.counter("completions") == 1 and app.settled(), 20, "completion")
    assert app.items() == {i: 1 for i in range(60)}
    first_pid = app.order()[0][0]
    resumed = [item for pid, item in app.order() if pid != first_pid]
    assert resumed == list(range(cursor + 1, 60))  # from the cursor on, in the second worker
    record = app.count.progress(sent)
    assert record.status == "completed" and record.items_done == 60
    assert f"Completed job {sent.message_id!r}" in app.log(second)
    wait_for(lambda: app.counter("on_success") == 1, 5, "on_success")
    app.stop(second)
    assert app.counter("on_success") == 1
    assert_no_failure_nor_retry(app)


# -- (b) SIGKILL ----------------------------------------------------------------------------------

@pytest.mark.parametrize("app", ["redis", "sqlite"], indirect=True)
def test_b_a_sigkilled_job_is_redelivered_and_resumes_from_its_last_checkpoint(app):
    first = app.start()
    sent = app.job(app.count, 40, 0.05)
    wait_for(lambda: len(app.items()) >= 12, 15, "items run")
    first.kill()  # every process of the container, at once
    ran = app.items()
    record = app.count.progress(sent)
    assert record.status == "running"  # no final checkpoint: the lease is left to expire
    checkpoint = record.cursor
    assert checkpoint is not None and (checkpoint + 1) % 5 == 0  # checkpoint_every_items=5
    assert app.held() == 1  # the message is in the dead process's acks, unacknowledged

    second = app.start()  # its commands run maintenance: the dead worker's message comes back
    wait_for(lambda: app.counter("completions") == 1 and app.settled(), 25, "completion")
    items = app.items()
    assert set(items) == set(range(40))  # none missing
    twice = {i for i, n in items.items() if n > 1}
    assert all(n <= 2 for n in items.values())
    # at least once: only items after the last checkpoint, and run before the kill, ran twice
    assert twice == {i for i in ran if i > checkpoint}
    resumed = [item for pid, item in app.order() if pid != app.order()[0][0]]
    assert resumed == list(range(checkpoint + 1, 40))
    record = app.count.progress(sent)
    assert record.status == "completed" and record.executions >= 2
    app.stop(second)
    assert_no_failure_nor_retry(app)


# -- (c) a duplicate delivery ---------------------------------------------------------------------

def test_c_a_duplicate_delivery_waits_for_the_lease_and_the_job_runs_once(app):
    # prefetch 1: a busy worker takes no second message, so the duplicate goes to the other one
    workers = [app.start(prefetch=1), app.start(prefetch=1)]
    sent = app.job(app.count, 60, 0.05, on_success=app.done)
    wait_for(lambda: len(app.items()) >= 3, 15, "items run")
    app.broker.enqueue(sent)  # the same message again, while its first delivery runs
    wait_for(lambda: "is busy" in app.logs(), 10, "the duplicate delivery")
    wait_for(lambda: app.counter("completions") == 1 and app.settled()
             and "is already completed" in app.logs(), 25, "completion and the duplicate's end")
    assert app.counter("overlap") == 0  # never two runners at once
    assert app.items() == {i: 1 for i in range(60)}
    assert len({pid for pid, _ in app.order()}) == 1  # one runner did every item
    assert app.counter("completions") == 1
    assert app.counter("on_success") == 1  # the duplicate's end is no second success
    logs = app.logs()
    assert f"message {sent.message_id!r} enqueued again in " in logs  # via the delay queue
    for worker in workers:
        app.stop(worker)
    assert_no_failure_nor_retry(app)


# -- (d) the time limit ---------------------------------------------------------------------------

def test_d_a_run_ends_and_is_enqueued_again_before_the_time_limit(app):
    worker = app.start()
    # 3 s of items; time_limit=1500 ms less a margin of 0.2: runs of 1.2 s
    sent = app.job(app.timed, 60, 0.05)
    wait_for(lambda: app.counter("completions") == 1 and app.settled(), 25, "completion")
    record = app.timed.progress(sent)
    assert record.status == "completed" and record.interruptions >= 2
    assert app.items() == {i: 1 for i in range(60)}
    log = app.log(worker)
    assert log.count("(max runtime)") == record.interruptions
    app.stop(worker)
    assert_no_failure_nor_retry(app)


# -- (e) a completed job delivered again ----------------------------------------------------------

def test_e_a_completed_job_delivered_again_runs_nothing(app):
    worker = app.start()
    sent = app.job(app.count, 5, 0.01, on_success=app.done)
    wait_for(lambda: app.counter("completions") == 1 and app.settled(), 15, "completion")
    wait_for(lambda: app.counter("on_success") == 1, 5, "on_success")
    before = app.count.progress(sent)
    app.broker.enqueue(sent)
    wait_for(lambda: "is already completed" in app.log(worker) and app.settled(), 10,
             "the second delivery")
    assert app.items() == {i: 1 for i in range(5)}
    assert app.counter("completions") == 1 and app.counter("on_success") == 1
    after = app.count.progress(sent)
    assert (after.status, after.items_done, after.executions) == (
        "completed", 5, before.executions)
    app.stop(worker)
    assert_no_failure_nor_retry(app)


# -- the job id -----------------------------------------------------------------------------------

class Nothing(IterationJob):
    def build_enumerator(self, cursor):
        return iter(())

    def each_iteration(self, item):
        pass


def test_the_job_id_is_the_message_id_unless_set():
    broker = StubBroker()
    plain = resumable_actor(Nothing, store_url="sqlite:///p.db", broker=broker)
    keyed = resumable_actor(Nothing, store_url="sqlite:///p.db", broker=broker,
                            actor_name="keyed", job_id=lambda tenant: f"backfill-{tenant}")
    message = plain.message(7)
    assert plain.job_id_of(message) == message.message_id
    assert keyed.job_id_of(keyed.message(7)) == "backfill-7"
    assert keyed.job_id_of(keyed.message_with_options(args=(7,), job_id="mine")) == "mine"
    with pytest.raises(ResumableError, match=r"job_id=''"):
        plain.job_id_of(plain.message_with_options(job_id=""))
    assert isinstance(plain, ResumableActor) and plain.job_class is Nothing
    assert plain.actor_name == "Nothing"


# -- (f) bad configuration ------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "error"), [
    ({}, r"resumable_actor\(Nothing\): store_url=None: must be a store URL: redis://"),
    ({"store_url": " "}, r"store_url=' ': must be a store URL"),
    ({"store_url": "mysql://db/app"}, r"store_url='mysql://db/app': scheme 'mysql://' is not a "
                                      r"store's; use redis://"),
    ({"store_url": "sqlite:///"}, r"store_url='sqlite:///': names no file"),
    ({"store_url": "redis://r/1", "exactly_once": True},
     r"store_url='redis://r/1': exactly_once=True needs a store that commits effects"),
    ({"store_url": "redis://r/1", "lease_ttl": 0},
     r"resumable_actor\(Nothing\): lease_ttl=0: must be a positive number of seconds"),
    ({"store_url": "redis://r/1", "checkpoint_every": None},
     r"checkpoint_every and checkpoint_every_items are both None"),
    ({"store_url": "redis://r/1", "time_limit_margin": 1},
     r"time_limit_margin=1: must be a fraction between 0 and 1"),
    ({"store_url": "redis://r/1", "store_options": "prefix"}, r"store_options='prefix'"),
    ({"store_url": "redis://r/1", "job_id": "x"}, r"job_id='x': must be a function"),
    ({"store_url": "redis://r/1", "notify_shutdown": True}, r"notify_shutdown=True would raise"),
])
def test_f_a_bad_setting_is_one_error_naming_it(settings, error):
    with pytest.raises(ResumableError, match=error):
        resumable_actor(Nothing, broker=StubBroker(), **settings)


def test_f_only_a_job_class_can_be_decorated_and_an_actor_only_runs_messages():
    with pytest.raises(ResumableError, match=r"decorates a subclass of IterationJob"):
        resumable_actor(store_url="redis://r/1", broker=StubBroker())(lambda: None)
    actor = resumable_actor(Nothing, store_url="redis://r/1", broker=StubBroker())
    with pytest.raises(ResumableError, match=r"called outside a Dramatiq worker: .* "
                                             r"Nothing\.send\(\.\.\.\)"):
        actor()


def test_f_shutdown_notifications_never_reach_a_resumable_actor():
    broker = StubBroker()  # Dramatiq's default middleware, ShutdownNotifications included
    actor = resumable_actor(Nothing, store_url="redis://r/1", broker=broker)
    assert actor.options["notify_shutdown"] is False
