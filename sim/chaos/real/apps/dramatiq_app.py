"""The Dramatiq module a real ``dramatiq`` command loads (``dramatiq
deploysim.sim.chaos.real.apps.dramatiq_app``) and the harness enqueues through: a RedisBroker on
the run's Redis and one actor, ``run_job``, whose body is ``deploysim.sim.chaos.real.work.run_job``.

Everything comes from the environment at import, so that the worker processes and the
enqueuing process build the same broker: ``DEPLOYSIM_BROKER`` (the run's Redis, database 0, as
``unix:///path/redis.sock?db=0``, which redis-py reads as it is) and ``DEPLOYSIM_SETTINGS``
(JSON, written by ``systems/dramatiq.py``: Dramatiq's settings for the run, in its own units,
milliseconds, already compressed). The middleware is Dramatiq's default list, built here so
that its durations (time limit, retry backoff) can be compressed too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from ..work import record_ready
from ..work import run_job as _run_job

ACTOR = "run_job"
"""The actor's name, the same in the workers and in the enqueuing process."""

QUEUE = "default"
"""The one queue the actor is on (Redis keys ``dramatiq:default``, ``.DQ``, ``.XQ``)."""


class Ready(Middleware):
    """Records the moment the worker process is ready, which its log line reaches the harness
    only later (the parent relays it); the process's main loop, which looks at its stop flag
    once a second, starts right then."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if "DEPLOYSIM_RESULTS" in os.environ:
            record_ready()


def make_broker(url: str, settings: dict[str, Any]) -> RedisBroker:
    """A RedisBroker on ``url`` with the run's heartbeat, maintenance and middleware settings;
    a setting left out keeps Dramatiq's default."""
    broker_options = {key: settings[key] for key in
                      ("heartbeat_timeout", "maintenance_chance", "dead_message_ttl")
                      if key in settings}
    time_limit = {option: settings[key] for key, option in
                  (("time_limit", "time_limit"), ("time_limit_interval", "interval"))
                  if key in settings}
    retries = {key: settings[key] for key in ("max_retries", "min_backoff", "max_backoff")
               if key in settings}
    middleware = [AgeLimit(), TimeLimit(**time_limit), ShutdownNotifications(), Callbacks(),
                  Pipelines(), Retries(**retries), Ready()]
    return RedisBroker(url=url, middleware=middleware, **broker_options)


broker = make_broker(os.environ.get("DEPLOYSIM_BROKER", "redis://localhost:6379/0"),
                     json.loads(os.environ.get("DEPLOYSIM_SETTINGS") or "{}"))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE)
def run_job(job: int, items: int, item_time: float) -> None:
    """Run job ``job``: the shared body every Python system runs."""
    _run_job(job, items, item_time)
