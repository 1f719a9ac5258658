"""Scenario files: the bundled set (package data) and any TOML file, read with ``tomllib``
and turned into a ``Scenario`` by ``scenario_from_dict``."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from deploysim.strategies.hints import did_you_mean

from ..errors import SimError
from .model import Scenario
from .reading import check_rate_units, scenario_from_dict

__all__ = ["BUNDLED_DIR", "bundled_scenarios", "load_scenario"]

logger = logging.getLogger(__name__)

#: Where the bundled scenario files live (package data).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def _bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def bundled_scenarios() -> dict[str, str]:
    """Bundled scenario names (sorted) with the one-line description each file gives."""
    result = {}
    for name in _bundled_names():
        with (BUNDLED_DIR / f"{name}.toml").open("rb") as handle:
            data = tomllib.load(handle)
        description = str(data.get("description", ""))
        result[name] = description.strip().splitlines()[0] if description.strip() else ""
    return result


def load_scenario(name_or_path: str) -> Scenario:
    """The bundled scenario called ``name_or_path`` (see ``bundled_scenarios``), or the
    scenario in the TOML file at that path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text or path.is_file()
    if looks_like_path:
        if not path.is_file():
            raise SimError(
                f"scenario: file '{text}' not found; give a .toml path or a bundled name: "
                f"{', '.join(_bundled_names())}"
            )
    else:
        path = BUNDLED_DIR / f"{text}.toml"
        if not path.is_file():
            hint = did_you_mean(text, _bundled_names(), "bundled", always=True)
            raise SimError(f"scenario: no bundled scenario '{text}'; {hint}")
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SimError(f"scenario: {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SimError(f"scenario: cannot read {path}: {exc.strerror}") from None
    check_rate_units(data)  # a file is text: a rate says per what
    scenario = scenario_from_dict(data, str(path))
    logger.debug("loaded scenario %r from %s", scenario.name, path)
    return scenario
