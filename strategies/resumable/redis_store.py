"""``RedisStore``: cursors, status, counters and fenced leases in Redis, the server most Celery,
RQ and Dramatiq fleets already run, so that every worker machine reaches the same progress.

Each job is a hash ``PREFIX:job:JOB_ID``; ``PREFIX:generation`` is the store-wide counter the
generations (fencing tokens) are drawn from, and ``PREFIX:jobs`` the set of job ids. Taking a
lease and writing a checkpoint are each one Lua script, so the fence is checked and the write
made atomically: a zombie runner whose lease was replaced writes nothing. Effects are
at-least-once (Redis holds no transaction with the job's own database): the job's writes
since its last checkpoint are done again after a crash, so they should be idempotent.

Needs the ``redis`` package (``pip install 'deploysim[redis]'``); the rest of the engine needs
only the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import LeaseHeldError, ResumableError
from .store import STATUSES, JobRecord, Lease, _bad_status, _stale, decode_cursor

DEFAULT_PREFIX = "deploysim:resumable"

_FIELDS = ("status", "cursor", "executions", "interruptions", "items_done", "run_time", "owner",
           "generation", "lease_expires", "error", "updated_at")

# KEYS: job hash, generation counter, jobs set. ARGV: job id, owner, now, expires, statuses.
# Returns {"ok", generation, flat hash} | {"held", owner, expires, generation} | {"bad", status}
_ACQUIRE = """
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then
  redis.call('HSET', job, 'status', 'pending', 'executions', 0, 'interruptions', 0,
             'items_done', 0, 'run_time', 0, 'generation', 0, 'lease_expires', 0,
             'updated_at', 0)
  redis.call('SADD', KEYS[3], ARGV[1])
end
local status = redis.call('HGET', job, 'status')
local known = false
for i = 5, #ARGV do if ARGV[i] == status then known = true end end
if not known then return {'bad', status} end
local owner = redis.call('HGET', job, 'owner')
local expires = tonumber(redis.call('HGET', job, 'lease_expires'))
local current = tonumber(redis.call('HGET', job, 'generation'))
if owner and owner ~= ARGV[2] and expires > tonumber(ARGV[3]) then
  return {'held', owner, tostring(expires), tostring(current)}
end
local generation = redis.call('INCR', KEYS[2])
if generation <= current then
  generation = current + 1
  redis.call('SET', KEYS[2], generation)
end
if status ~= 'completed' then redis.call('HINCRBY', job, 'executions', 1) end
redis.call('HSET', job, 'owner', ARGV[2], 'generation', generation,
           'lease_expires', ARGV[4], 'updated_at', ARGV[3])
return {'ok', generation, redis.call('HGETALL', job)}
"""

# KEYS: job hash. ARGV: generation, then field/value pairs to set, then "--", fields to delete.
# Returns {"ok"} | {"stale", current generation or ""}
_CHECKPOINT = """
local job = KEYS[1]
local current = redis.call('HGET', job, 'generation')
if not current then return {'stale', ''} end
if current ~= ARGV[1] then return {'stale', current} end
local i = 2
local set = {}
while ARGV[i] ~= '--' do
  set[#set + 1] = ARGV[i]
  set[#set + 1] = ARGV[i + 1]
  i = i + 2
end
redis.call('HSET', job, unpack(set))
for j = i + 1, #ARGV do redis.call('HDEL', job, ARGV[j]) end
return {'ok'}
"""

# KEYS: job hash. Keeps the generation and the time of the last write.
_RESET = """
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return 0 end
local generation = redis.call('HGET', job, 'generation')
local updated = redis.call('HGET', job, 'updated_at')
redis.call('DEL', job)
redis.call('HSET', job, 'status', 'pending', 'executions', 0, 'interruptions', 0,
           'items_done', 0, 'run_time', 0, 'generation', generation, 'lease_expires', 0,
           'updated_at', updated)
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(job_id: str, flat: list[Any]) -> JobRecord:
    """A JobRecord from a hash's HGETALL, as a flat list or a dict."""
    if isinstance(flat, dict):
        fields = {_text(k): _text(v) for k, v in flat.items()}
    else:
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    try:
        return JobRecord(
            job_id=job_id,
            status=fields.get("status", "pending"),
            cursor=decode_cursor(job_id, fields.get("cursor")),
            executions=int(fields.get("executions", 0)),
            interruptions=int(fields.get("interruptions", 0)),
            items_done=int(fields.get("items_done", 0)),
            run_time=float(fields.get("run_time", 0.0)),
            owner=fields.get("owner"),
            generation=int(fields.get("generation", 0)),
            lease_expires=float(fields.get("lease_expires", 0.0)),
            error=fields.get("error"),
            updated_at=float(fields.get("updated_at", 0.0)),
        )
    except ValueError as exc:
        raise ResumableError(f"job {job_id!r}: its record in Redis is not one RedisStore wrote "
                             f"({exc}); reset or delete it") from None


class RedisStore:
    """A checkpoint store in Redis (see the module docstring). ``url`` is a redis-py URL
    (``redis://host:6379/0``, ``unix:///path/redis.sock?db=0``), or give a ready ``client``;
    ``prefix`` keeps one store's keys apart from another's on the same server."""

    def __init__(self, url: str | None = None, *, client: Any = None,
                 prefix: str = DEFAULT_PREFIX) -> None:
        if (url is None) == (client is None):
            raise ResumableError("RedisStore: give a url (redis://host:6379/0) or a client")
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ResumableError(f"RedisStore prefix: {prefix!r} must be a non-empty string "
                                 "without spaces")
        self.prefix = prefix
        self.where = url if url is not None else repr(client)
        try:
            import redis
        except ImportError:
            raise ResumableError("RedisStore needs the redis package: "
                                 "pip install 'deploysim[redis]'") from None
        self._unreachable = redis.exceptions.ConnectionError
        self._refused = redis.exceptions.ResponseError
        if client is None:
            try:
                client = redis.Redis.from_url(url)
            except ValueError as exc:
                raise ResumableError(f"RedisStore url {url!r}: {exc}") from None
        self._client = client
        self._owns_client = url is not None
        self._acquire = client.register_script(_ACQUIRE)
        self._checkpoint = client.register_script(_CHECKPOINT)
        self._reset = client.register_script(_RESET)
        self._call(client.ping)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _call(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """``action`` with a server that cannot be reached turned into one clear error."""
        try:
            return action(*args, **kwargs)
        except self._unreachable as exc:
            raise ResumableError(f"RedisStore {self.where}: cannot reach the server "
                                 f"({exc})") from None
        except self._refused as exc:
            raise ResumableError(f"RedisStore {self.where}: {exc}") from None

    def acquire(self, job_id: str, owner: str, now: float, ttl: float) -> tuple[Lease, JobRecord]:
        """Take the job's lease (bumping its generation) and return it with the job's record.
        Raises LeaseHeldError while another owner's lease is live."""
        expires = now + ttl
        reply = self._call(
            self._acquire,
            keys=[self._key(job_id), f"{self.prefix}:generation", f"{self.prefix}:jobs"],
            args=[job_id, owner, repr(float(now)), repr(float(expires)), *STATUSES],
        )
        kind = _text(reply[0])
        if kind == "bad":
            raise ResumableError(f"job {job_id!r}: stored status {_text(reply[1])!r} is not one "
                                 f"of {STATUSES}")
        if kind == "held":
            raise LeaseHeldError(job_id, _text(reply[1]), float(reply[2]) - now, int(reply[3]))
        record = _record(job_id, reply[2])
        return Lease(job_id, owner, int(reply[1]), expires), record

    def checkpoint(
        self,
        lease: Lease,
        *,
        cursor_json: str | None,
        status: str,
        items_done: int,
        run_time: float,
        interruptions: int,
        now: float,
        ttl: float,
        error: str | None = None,
    ) -> Lease:
        """Write progress under ``lease``; refused with StaleLeaseError, writing nothing, if a
        newer lease replaced it."""
        if status not in STATUSES:
            raise _bad_status(lease, status)
        held = status == "running"
        expires = now + ttl if held else 0.0
        values: list[Any] = ["status", status, "items_done", int(items_done),
                             "run_time", repr(float(run_time)),
                             "interruptions", int(interruptions),
                             "lease_expires", repr(float(expires)), "updated_at", repr(float(now))]
        gone = []
        for field, value in (("cursor", cursor_json), ("error", error),
                             ("owner", lease.owner if held else None)):
            if value is None:
                gone.append(field)
            else:
                values += [field, value]
        reply = self._call(self._checkpoint, keys=[self._key(lease.job_id)],
                           args=[lease.generation, *values, "--", *gone])
        if _text(reply[0]) != "ok":
            current = _text(reply[1])
            raise _stale(lease, int(current) if current else None)
        return Lease(lease.job_id, lease.owner, lease.generation, expires)

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has never seen it."""
        flat = self._call(self._client.hgetall, self._key(job_id))
        return _record(job_id, flat) if flat else None

    def jobs(self) -> list[JobRecord]:
        """Every record, in job-id order."""
        ids = sorted(_text(j) for j in self._call(self._client.smembers, f"{self.prefix}:jobs"))
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self._key(job_id))
        rows = self._call(pipe.execute)
        return [_record(j, row) for j, row in zip(ids, rows, strict=True) if row]

    def reset(self, job_id: str) -> None:
        """Forget a job's progress (its generation survives, so old leases stay fenced)."""
        self._call(self._reset, keys=[self._key(job_id)], args=[])

    def delete(self, job_id: str) -> None:
        """Remove a job's record. Its generations are never handed out again (the counter is
        store-wide), so a runner still holding one of its leases stays fenced."""
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key(job_id))
        pipe.srem(f"{self.prefix}:jobs", job_id)
        self._call(pipe.execute)

    def close(self) -> None:
        """Close the connection the store opened (not a client it was given)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self.jobs())
