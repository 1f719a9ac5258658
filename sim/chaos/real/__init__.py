"""The real job systems in the loop: Celery, RQ, Dramatiq and Sidekiq workers on a real Redis,
stopped and killed as a platform does, and audited from records kept apart.

    from deploysim.sim.chaos import ChaosConfig
    from deploysim.sim.chaos.real import SYSTEM_DEFAULTS, run_system
    audit = run_system(ChaosConfig.from_args(SYSTEM_DEFAULTS, seed=2), "celery")

``run_system_calibration`` sets each system's real numbers beside the simulator's for the
same run. The settings (``SYSTEM_DEFAULTS``, ``SYSTEM_NAMES``) need only the standard library;
the rest is imported when first used, and each system's packages only by its own adapter.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .config import SYSTEM_DEFAULTS, SYSTEM_NAMES

__all__ = [
    "SYSTEM_DEFAULTS",
    "SYSTEM_NAMES",
    "format_system",
    "run_system",
    "run_system_calibration",
]

_LAZY = {
    "format_system": ".tables",
    "run_system": ".harness",
    "run_system_calibration": ".calibrate",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
