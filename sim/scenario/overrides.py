"""Changing a scenario by dotted key: ``with_values`` (Python values or text, as a sweep's grid
gives them), and the command line's ``--set key=value`` (``parse_assignments`` reads the text,
``with_overrides`` applies it). Each goes through the scenario's tables and back through
``scenario_from_dict``, so a changed scenario is checked like a file and errors name the key.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import SimError
from .applies import prune
from .model import Scenario
from .reading import LENGTH_PARAMS, check_rate_units, scenario_from_dict
from .writing import scenario_to_dict

__all__ = ["parse_assignments", "with_overrides", "with_values"]

logger = logging.getLogger(__name__)


def _parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value if it reads as one ("5", "true", "[1, 2]", "{...}"),
    else the bare string ("1h", "poisson")."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        for entry in node:
            if isinstance(entry, dict) and entry.get("name") == part:
                return entry
        raise SimError(f"{path}: no entry '{part}'; give an index or the name of an entry")
    child = node.setdefault(part, {})
    if not isinstance(child, dict | list):
        raise SimError(f"{path}: is {child!r}, not a table; set it as a whole")
    return child


def _tables_with_choices(d: dict[str, Any]) -> list[tuple[str, Any]]:
    """The tables of ``d`` whose keys depend on a choice, each with the path ``prune`` takes:
    deploys (schedule), workload (arrivals), every length table (kind), and the class entries
    of a trace's workload (which have no length or weight)."""
    tables: list[tuple[str, Any]] = [("deploys", d.get("deploys")),
                                     ("workload", d.get("workload"))]
    workload = d.get("workload")
    if isinstance(workload, dict):
        entries = [workload, *(workload.get("classes") or [])]
        tables += [("length", e.get("length")) for e in entries if isinstance(e, dict)]
        if workload.get("arrivals") == "trace" and isinstance(workload.get("classes"), list):
            tables += [("class", e) for e in workload["classes"]]
    return [(path, table) for path, table in tables if isinstance(table, dict)]


def with_values(s: Scenario, values: Mapping[str, Any], source: str = "") -> Scenario:
    """``s`` with each dotted key of ``values`` set to its value: ``deploys.every`` (3600.0 or
    "1h"), ``fleet.workers``, ``workload.length.median``, ``workload.classes.batch.weight``
    (an entry by name or index) or ``strategies.sidekiq.timeout``. The result is checked like
    a scenario file, and errors name the key.

    Values are Python values or text: a duration is seconds (3600.0) or "1h", a rate is
    events per second (0.5) or "30/m"; text without a unit ("300") is an error, as in a file.
    A key the scenario's deploy schedule, arrivals or length kind does not use is an error
    that names the key that does (``deploys.every`` on Poisson deploys); set the choice too
    (``deploys.schedule``) and the keys of the old choice are dropped."""
    d = scenario_to_dict(s)
    user_keys: set[tuple[int, str]] = set()  # (table, key) pairs set here, not written back
    user_tables: set[int] = set()
    for key, value in values.items():
        parts = [part.strip() for part in str(key).split(".")]
        if not key or any(not part for part in parts):
            raise SimError(f"'{key}': not a dotted scenario key, e.g. deploys.every")
        inline = ("length", "item_time", "hang_probability")
        if (
            parts[:1] == ["workload"]
            and parts[1:2] != []
            and parts[1] in inline
            and ("classes" in d["workload"])
        ):
            rest = ".".join(parts[1:])
            raise SimError(
                f"{key}: this workload has job classes; set workload.classes.<name>.{rest}"
            )
        node: Any = d
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]))
        last = parts[-1]
        if isinstance(node, list):
            target = _child(node, last, key)
            node[node.index(target)] = value
        else:
            node[last] = value
            user_keys.add((id(node), last))
        user_tables.add(id(value))
        logger.debug("scenario %r: set %s = %r", s.name, key, value)
    for path, table in _tables_with_choices(d):
        if id(table) not in user_tables:
            keep = {k for k in table if (id(table), k) in user_keys}
            prune(table, path, keep, LENGTH_PARAMS)
    return scenario_from_dict(d, source or f"{s.name} with values")


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """The ``key=value`` strings of the CLI's ``--set`` as a mapping for ``with_values``:
    values are read as TOML values when they can be ("5", "true", "[1, 2]"), else as bare
    strings ("1h", "poisson")."""
    if isinstance(assignments, str):
        assignments = [assignments]
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        key = key.strip()
        if not equals or not key or any(not part.strip() for part in key.split(".")):
            raise SimError(
                f"--set '{assignment}': write key=value, e.g. deploys.every=1h or fleet.workers=5"
            )
        values[".".join(part.strip() for part in key.split("."))] = _parse_value(text.strip())
    return values


def with_overrides(s: Scenario, assignments: Iterable[str]) -> Scenario:
    """``s`` with the CLI's ``--set key=value`` strings applied (``parse_assignments``, then
    ``with_values``); a rate is text here and needs its unit (``workload.rate=300/h``)."""
    values = parse_assignments(assignments)
    check_rate_units(values)
    return with_values(s, values, f"{s.name} with --set")
