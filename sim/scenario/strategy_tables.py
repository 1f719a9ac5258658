"""The ``[strategies.NAME]`` tables of a scenario file, read and written.

A strategy takes Python values (durations as seconds); a scenario file writes durations as
text ("25s"). ``read_strategy_params`` turns the text of a table's duration parameters into
seconds, naming ``strategies.NAME.KEY`` when it is not a duration, and leaves every other
value as it is, for the strategy to check when it is built (unknown keys included, so that
the strategy's own "did you mean" names them). ``write_strategy_params`` goes back.

A table is a built-in strategy's (``[strategies.sidekiq]``) or a variant's, naming its
strategy (``[strategies.celery-late]`` with ``strategy = "celery"``); a table whose strategy
is unknown is left as it is, for ``strategies_of`` to refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from deploysim.strategies import STRATEGIES

from ..durations import format_duration, parse_duration
from .model import thaw

__all__ = ["duration_params_of", "read_strategy_params", "write_strategy_params"]


def duration_params_of(name: str, table: Mapping[str, Any]) -> tuple[str, ...]:
    """The duration parameters of the strategy that the table ``name`` configures (none when
    its strategy is unknown)."""
    base = table.get("strategy", name)
    cls = STRATEGIES.get(base) if isinstance(base, str) else None
    return cls.duration_params() if cls is not None else ()


def read_strategy_params(
    name: str, table: Mapping[str, Any], where: str | None = None
) -> dict[str, Any]:
    """The table ``name`` with its durations in seconds (floats): text is parsed ("25s"),
    whole numbers become floats, anything else is left for the strategy to check. Errors name
    ``where.KEY`` (default ``strategies.NAME.KEY``)."""
    where = where or f"strategies.{name}"
    durations = duration_params_of(name, table)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in durations and isinstance(value, str):
            value = parse_duration(value, f"{where}.{key}")
        elif key in durations and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


def write_strategy_params(name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The table ``name`` as a scenario file writes it: durations as text ("25s") where they
    are finite seconds >= 0, every other value as it is (tables as dicts, arrays as lists);
    ``read_strategy_params`` reads it back to equal values."""
    durations = duration_params_of(name, table)
    out: dict[str, Any] = {}
    for key, value in table.items():
        is_seconds = isinstance(value, int | float) and not isinstance(value, bool)
        if key in durations and is_seconds and math.isfinite(value) and value >= 0:
            out[key] = format_duration(value)
        else:
            out[key] = thaw(value)
    return out
