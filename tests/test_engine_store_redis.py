"""``RedisStore`` on a real Redis server: what the shared store tests (``test_engine_store``,
the properties and the stateful machine, which run on it too) do not cover: several workers'
connections to one store, bad URLs and servers, records it did not write."""

from __future__ import annotations

import pytest
from conftest import new_redis_store

from deploysim.strategies.resumable import (
    IterationJob,
    LeaseHeldError,
    RedisStore,
    ResumableError,
    Runner,
    StaleLeaseError,
)
from deploysim.strategies.resumable import enumerators as en


class Count(IterationJob):
    def __init__(self, n: int, seen: list[int]) -> None:
        self.n, self.seen = n, seen

    def build_enumerator(self, cursor):
        return en.int_range(0, self.n, cursor=cursor)

    def each_iteration(self, item) -> None:
        self.seen.append(item)


def test_two_workers_connections_share_one_job(redis_url):
    """Two connections (two worker machines) to the same keys: one holds the lease, the other
    is refused; once the first is fenced out it can write nothing."""
    first = new_redis_store(redis_url)
    second = RedisStore(redis_url, prefix=first.prefix)
    lease, _ = first.acquire("job", "a", 10.0, 60.0)
    with pytest.raises(LeaseHeldError):
        second.acquire("job", "b", 20.0, 60.0)
    later, _ = second.acquire("job", "b", 71.0, 60.0)  # a's lease expired
    assert later.generation == lease.generation + 1
    with pytest.raises(StaleLeaseError):
        first.checkpoint(lease, cursor_json="5", status="running", items_done=5, run_time=1.0,
                         interruptions=0, now=72.0, ttl=60.0)
    assert second.get("job").cursor is None and second.get("job").owner == "b"
    first.close()
    second.close()


def test_a_runner_resumes_from_the_redis_store(redis_url):
    seen: list[int] = []
    with new_redis_store(redis_url) as store:
        looks = iter([False, False, False, True])
        first = Runner(store, stop_when=[lambda: next(looks, False)], checkpoint_every_items=1)
        result = first.run("count", Count(10, seen))
        assert result.interrupted and store.get("count").cursor == seen[-1]
        assert Runner(store).run("count", Count(10, seen)).completed
        assert seen == list(range(10))
        assert [r.job_id for r in store.jobs()] == ["count"]


def test_stores_with_other_prefixes_do_not_see_each_other(redis_url):
    a, b = new_redis_store(redis_url), new_redis_store(redis_url)
    a.acquire("job", "w", 0.0, 60.0)
    assert b.get("job") is None and b.jobs() == []
    b.acquire("job", "w", 0.0, 60.0)  # no lease of a's in b's keys
    a.close()
    b.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "give a url"),
    ({"url": "redis://localhost:6379/0", "client": object()}, "give a url"),
    ({"url": "http://example.com"}, "RedisStore url 'http://example.com'"),
    ({"url": "unix:///nonexistent/redis.sock"}, "cannot reach the server"),
    ({"url": "redis://localhost:6379/0", "prefix": "has space"}, "prefix"),
    ({"url": "redis://localhost:6379/0", "prefix": ""}, "prefix"),
])
def test_a_bad_url_or_prefix_is_one_clear_error(kwargs, message):
    with pytest.raises(ResumableError, match=message):
        RedisStore(**kwargs)


def test_a_record_it_did_not_write_is_refused_by_name(redis_url):
    import redis

    store = new_redis_store(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{store.prefix}:job:odd", mapping={"status": "sleeping", "generation": "x"})
    with pytest.raises(ResumableError, match="'odd'"):
        store.get("odd")
    client.hset(f"{store.prefix}:job:odd", "generation", "3")
    with pytest.raises(ResumableError, match="'sleeping' is not one of"):
        store.acquire("odd", "w", 0.0, 60.0)
    client.close()
    store.close()


def test_a_deleted_jobs_old_lease_stays_fenced(redis_url):
    store = new_redis_store(redis_url)
    old, _ = store.acquire("job", "a", 0.0, 60.0)
    store.delete("job")
    new, record = store.acquire("job", "b", 1.0, 60.0)
    assert new.generation > old.generation and record.executions == 1
    with pytest.raises(StaleLeaseError):
        store.checkpoint(old, cursor_json="1", status="running", items_done=1, run_time=0.1,
                         interruptions=0, now=2.0, ttl=60.0)
    store.close()
