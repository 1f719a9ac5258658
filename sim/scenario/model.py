"""The scenario as values: ``Scenario`` holds a ``Fleet``, a platform, deploys, crashes, a
workload and the strategies' parameter tables (``FrozenTable``), all frozen and checked when
built. ``Fleet.validate`` and ``Scenario.validate`` are the one place of their rules: the
readers of scenario files call them with the path of the table, so errors name the key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SimError
from .deploys import Crashes, Deploys, Platform
from .workloads import DEFAULT_CLASS, Workload

__all__ = ["DEFAULT_CLASS", "Fleet", "FrozenTable", "Scenario", "freeze", "thaw"]


class FrozenTable(Mapping[str, Any]):
    """A read-only, hashable, picklable table: nested tables are FrozenTables, arrays are
    tuples. Strategy parameters are handed to the strategy code in this form."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        items = dict(data or {}).items()
        object.__setattr__(self, "_data", {str(k): freeze(v) for k, v in items})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FrozenTable is read-only")

    def __repr__(self) -> str:
        return f"FrozenTable({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenTable, (self._data,))

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy (tables as dicts, arrays as lists)."""
        return thaw(self)


def freeze(value: Any) -> Any:
    """``value`` with tables as FrozenTables and arrays as tuples, all the way down."""
    if isinstance(value, FrozenTable):
        return value
    if isinstance(value, Mapping):
        return FrozenTable(value)
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable copy of ``value``: tables as dicts, arrays as lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Fleet:
    """The workers that run jobs: how many, and how long one takes to come back after it
    stops (boot time of the new release)."""

    workers: int = 10
    restart_delay: float = 0.0

    def __post_init__(self) -> None:
        self.validate(vars(self), "Fleet")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid fleet."""
        workers = values["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SimError(f"{where}.workers: must be an integer >= 1, got {workers!r}")
        delay = values["restart_delay"]
        if not _is_number(delay) or not math.isfinite(delay) or delay < 0:
            raise SimError(f"{where}.restart_delay: must be a duration >= 0, got {delay!r}")


@dataclass(frozen=True)
class Scenario:
    """Everything one simulation run needs. ``strategies`` maps a strategy name to its
    parameter table (a FrozenTable of Python values, durations in seconds), checked by the
    strategy code when the strategy is built."""

    name: str
    description: str
    seed: int
    horizon: float
    replications: int
    fleet: Fleet
    platform: Platform
    deploys: Deploys
    crashes: Crashes
    workload: Workload
    strategies: Mapping[str, Mapping[str, Any]] = field(default_factory=FrozenTable)

    def __post_init__(self) -> None:
        self.validate(vars(self), "Scenario")
        for name, kind in (
            ("fleet", Fleet),
            ("platform", Platform),
            ("deploys", Deploys),
            ("crashes", Crashes),
            ("workload", Workload),
        ):
            if not isinstance(getattr(self, name), kind):
                raise SimError(
                    f"Scenario.{name}: must be a {kind.__name__}, got {getattr(self, name)!r}"
                )
        self.validate_strategies(self.strategies, "Scenario.strategies")
        object.__setattr__(self, "strategies", freeze(self.strategies))

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming the field unless the top-level ``values`` are valid."""
        prefix = f"{where}." if where else ""
        name = values["name"]
        if not isinstance(name, str) or not name.strip():
            raise SimError(f"{prefix}name: must be a non-empty string, got {name!r}")
        if not isinstance(values["description"], str):
            raise SimError(f"{prefix}description: must be a string, got {values['description']!r}")
        seed = values["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SimError(f"{prefix}seed: must be an integer >= 0, got {seed!r}")
        horizon = values["horizon"]
        if not _is_number(horizon) or not math.isfinite(horizon) or horizon <= 0:
            raise SimError(f"{prefix}horizon: must be a duration > 0, e.g. '7d', got {horizon!r}")
        replications = values["replications"]
        if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
            raise SimError(f"{prefix}replications: must be an integer >= 1, got {replications!r}")

    @staticmethod
    def validate_strategies(strategies: object, where: str) -> None:
        """Raise SimError naming ``where.<name>`` unless ``strategies`` is a table of tables."""
        if not isinstance(strategies, Mapping):
            raise SimError(f"{where}: must be a table, got {strategies!r}")
        for key, table in strategies.items():
            if not isinstance(table, Mapping):
                raise SimError(f"{where}.{key}: must be a table, got {table!r}")
