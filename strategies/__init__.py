"""Shutdown strategies of real job systems, and the reference resumable job engine.

Each module models one system's behaviour on deploy (its row in ``docs/semantics.md``);
``deploysim.strategies.resumable`` is a real engine that runs in production workers and,
unchanged, under the simulator's virtual clock. ``STRATEGIES`` names every strategy and
``make_strategy`` builds one from a scenario's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Strategy, StrategyError
from .celery import Celery
from .dramatiq import Dramatiq
from .hints import did_you_mean
from .resque import Resque
from .resumable_model import Resumable
from .rq import Rq
from .sidekiq import Sidekiq
from .split import Split

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Sidekiq, Resque, Celery, Rq, Dramatiq, Split, Resumable)
}


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy called ``name`` with the given parameters (defaults: the real system's).
    Parameters are Python values: durations in seconds, as numbers."""
    if name not in STRATEGIES:
        hint = did_you_mean(name, STRATEGIES, always=True)
        raise StrategyError(f"strategy '{name}': unknown; {hint}")
    return STRATEGIES[name].from_params(params, f"strategies.{name}")
