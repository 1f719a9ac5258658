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
from .resque import Resque
from .resumable_model import Resumable
from .sidekiq import Sidekiq
from .split import Split

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Sidekiq, Resque, Celery, Split, Resumable)
}


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy called ``name`` with the given parameters (defaults: the real system's)."""
    base = name
    if base not in STRATEGIES:
        import difflib

        near = difflib.get_close_matches(base, list(STRATEGIES), n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise StrategyError(f"strategy '{name}': unknown; {hint}known: {', '.join(STRATEGIES)}")
    return STRATEGIES[base].from_params(params, f"strategies.{name}")
