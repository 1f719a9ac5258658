"""Job splitting: the "many smaller jobs" advice, after the Sidekiq OSS row of docs/semantics.md.

A job of n items is enqueued as ceil(n / ``chunk``) sub-jobs, each a plain Sidekiq job: on TERM
it gets ``timeout`` seconds, then goes back to the ``requeue`` end of the queue and starts that
sub-job over; SIGKILL loses it with basic fetch. The job is complete when every sub-job is. A
deploy now costs at most one sub-job's work per worker instead of the whole job's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import StrategyError, keyed_field
from .sidekiq import Sidekiq


@dataclass(frozen=True)
class Split(Sidekiq):
    """Sidekiq semantics applied to sub-jobs of ``chunk`` items each."""

    name = "split"
    summary = "Split into sub-jobs of `chunk` items, each a Sidekiq job"

    #: the parameter ``chunk`` (the name of the field is the decision ``chunk``'s)
    chunk_items: int = keyed_field(100, "chunk")

    def __post_init__(self) -> None:
        super().__post_init__()
        c = self.chunk_items
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise StrategyError(f"chunk: {c!r} must be a whole number of items >= 1")

    @property
    def chunk(self) -> int | None:
        return self.chunk_items
