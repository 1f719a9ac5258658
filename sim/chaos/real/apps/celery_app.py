"""The Celery app a real Celery worker loads (``celery -A deploysim.sim.chaos.real.apps.celery_app
worker``) and the harness enqueues through: one task, ``deploysim.run_job``, whose body is
``deploysim.sim.chaos.real.work.run_job``.

The worker's app is built from the environment at import: ``DEPLOYSIM_BROKER`` (the run's
Redis, database 0, as ``unix:///path/redis.sock?db=0``, or its RabbitMQ's ``amqp://`` address),
``DEPLOYSIM_SETTINGS`` (JSON written by ``systems/celery.py``: the run's Celery settings,
durations already compressed) and ``DEPLOYSIM_RESULTS`` (the run's Redis). The enqueuing process
builds the same app with ``make_app``. Results go to database 2 of the run's Redis, so that a
task that fails is on record as FAILURE.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from celery import Celery

from ..work import run_job as _run_job

TASK = "deploysim.run_job"
"""The task's name, the same in the worker and in the enqueuing process."""

RESULTS_DB = 2
"""The database of the run's Redis that holds Celery's result backend."""


def kombu_url(url: str, db: int | None = None) -> str:
    """A ``unix:///path?db=N`` address as kombu and Celery's Redis backend spell it
    (``redis+socket:///path?virtual_host=N``); other URLs are returned as they are."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    number = db if db is not None else int(parse_qs(parts.query).get("db", ["0"])[0])
    return f"redis+socket://{parts.path}?virtual_host={number}"


TRANSPORT = ("visibility_timeout", "unacked_restore_interval", "unacked_restore_throttle",
             "unacked_mutex_expire")
"""The settings that go to kombu's Redis transport (a RabbitMQ run has none)."""


def configure(app: Celery, broker: str, settings: dict[str, Any], results: str) -> None:
    """Set ``app`` up for one run: the broker, the result backend (database ``RESULTS_DB`` of
    the run's Redis at ``results``) and the run's settings (the keys ``systems/celery.py``
    writes)."""
    app.conf.update(
        broker_url=kombu_url(broker),
        result_backend=kombu_url(results, RESULTS_DB),
        broker_transport_options={key: settings[key] for key in TRANSPORT if key in settings},
        task_acks_late=settings["acks_late"],
        worker_prefetch_multiplier=settings["prefetch_multiplier"],
        worker_disable_prefetch=settings.get("disable_prefetch", False),
        worker_soft_shutdown_timeout=settings["soft_shutdown_timeout"],
        broker_connection_retry_on_startup=True,
        result_expires=None,  # no clean-up task: the run's records stay as they are
    )


def run_job(job: int, items: int, item_time: float) -> None:
    """The task's body: job ``job``, the work every Python system shares."""
    _run_job(job, items, item_time)


def make_app(broker: str | None = None, settings: dict[str, Any] | None = None,
             results: str | None = None) -> Celery:
    """The run's app with its one task; unconfigured when ``broker`` is None. ``results`` is the
    run's Redis (default: the broker)."""
    app = Celery("deploysim")
    if broker is not None:
        configure(app, broker, settings or {}, results or broker)
    app.task(name=TASK, shared=False)(run_job)
    return app


app = make_app(os.environ.get("DEPLOYSIM_BROKER"),
               json.loads(os.environ.get("DEPLOYSIM_SETTINGS", "{}")),
               os.environ.get("DEPLOYSIM_RESULTS"))
