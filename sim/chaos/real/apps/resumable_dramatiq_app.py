"""The Dramatiq module of ``--system resumable-dramatiq``: the broker of ``dramatiq_app`` (the
same environment) and one resumable actor of the adapter
(``deploysim.strategies.resumable.dramatiq``), ``resumable_job``, running the shared resumable
work with the engine's settings of the run and its store (``DEPLOYSIM_STORE_URL``). The harness
enqueues plain messages to it (``ACTOR`` on ``QUEUE``), which needs neither this module nor
the store."""

from __future__ import annotations

import json
import os
from typing import Any

from deploysim.strategies.resumable.dramatiq import resumable_actor

from ..systems.resumable import DRAMATIQ_ACTOR as ACTOR
from ..systems.resumable import store_job_id
from ..work import STORE_ENV, ResumableWork
from .dramatiq_app import QUEUE, broker

_settings: dict[str, Any] = json.loads(os.environ.get("DEPLOYSIM_SETTINGS") or "{}")
_exactly_once = bool(_settings.get("exactly_once", False))


@resumable_actor(store_url=os.environ.get(STORE_ENV) or None, broker=broker, actor_name=ACTOR,
                 queue_name=QUEUE, checkpoint_every=_settings.get("checkpoint_every", 5.0),
                 lease_ttl=_settings.get("lease_ttl", 60.0), exactly_once=_exactly_once,
                 job_id=lambda job, items, item_time: store_job_id(job))
class Work(ResumableWork):
    """``ResumableWork`` as a Dramatiq actor."""

    def __init__(self, job: int, items: int, item_time: float) -> None:
        super().__init__(job, items, item_time, exactly_once=_exactly_once)
