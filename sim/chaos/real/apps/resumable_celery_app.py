"""The Celery app of ``--system resumable-celery``: the shared resumable work as one task of
the resumable adapter (``deploysim.strategies.resumable.celery``), ``deploysim.resumable_job``,
on the run's broker and settings (see ``celery_app``: the same environment, and
``DEPLOYSIM_STORE_URL``, the run's store). The enqueuing process builds the same app with
``make_app``."""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery

from deploysim.strategies.resumable.celery import STORE_SETTING, ResumableTask

from ..work import STORE_ENV, ResumableWork
from .celery_app import configure

TASK = "deploysim.resumable_job"
"""The task's name, the same in the worker and in the enqueuing process."""


def make_app(broker: str | None, settings: dict[str, Any], results: str | None,
             store: str | None) -> Celery:
    """The run's app with its one resumable task (the engine's settings from ``settings``, the
    progress in the store at ``store``); unconfigured when ``broker`` is None."""
    app = Celery("deploysim")
    if broker is not None:
        configure(app, broker, settings, results or broker)
    app.conf[STORE_SETTING] = store
    exactly_once = bool(settings.get("exactly_once", False))

    @app.task(name=TASK, base=ResumableTask, shared=False,
              checkpoint_every=settings.get("checkpoint_every", ResumableTask.checkpoint_every),
              lease_ttl=settings.get("lease_ttl", ResumableTask.lease_ttl),
              time_limit_margin=settings.get("time_limit_margin",
                                             ResumableTask.time_limit_margin),
              exactly_once=exactly_once)
    def resumable_job(job: int, items: int, item_time: float) -> ResumableWork:
        return ResumableWork(job, items, item_time, exactly_once=exactly_once, store_url=store)

    return app


app = make_app(os.environ.get("DEPLOYSIM_BROKER"),
               json.loads(os.environ.get("DEPLOYSIM_SETTINGS", "{}")),
               os.environ.get("DEPLOYSIM_RESULTS"), os.environ.get(STORE_ENV))
