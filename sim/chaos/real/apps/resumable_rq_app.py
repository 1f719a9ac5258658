"""The resumable job RQ's work horses import for ``--system resumable-rq``: ``Work``, the shared
resumable work made an RQ job by the adapter (``deploysim.strategies.resumable.rq``), with the
engine's settings of the run from ``DEPLOYSIM_SETTINGS`` (JSON, written by
``systems/resumable.py``, durations already compressed) and its store from
``DEPLOYSIM_STORE_URL``, which the adapter itself reads where it runs a job."""

from __future__ import annotations

import json
import os
from typing import Any

from deploysim.strategies.resumable.rq import resumable

from ..work import ResumableWork

_settings: dict[str, Any] = json.loads(os.environ.get("DEPLOYSIM_SETTINGS") or "{}")


@resumable(
    checkpoint_every=_settings.get("checkpoint_every", 5.0),
    lease_ttl=_settings.get("lease_ttl", 60.0),
    exactly_once=_settings.get("exactly_once", False),
    retries=_settings.get("retry", 3),
    timeout_margin=_settings.get("timeout_margin", 10.0),
)
class Work(ResumableWork):
    """``ResumableWork`` as an RQ job: ``Work.enqueue(queue, job, items, item_time)``."""

    def __init__(self, job: int, items: int, item_time: float) -> None:
        super().__init__(job, items, item_time, exactly_once=_settings.get("exactly_once", False))
