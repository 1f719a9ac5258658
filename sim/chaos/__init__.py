"""Chaos runs: real worker processes, a durable SQLite queue, real SIGTERM and SIGKILL.

    config = ChaosConfig.from_args(strategy="sidekiq", crash_every="1s", duration="10s")
    audit = run_chaos(config)
    print(format_chaos(audit))

``run_calibration`` runs one compressed scenario for real and in the simulator and sets the
numbers side by side (``format_calibration``). Bad settings raise
``deploysim.sim.errors.SimError`` with a one-line message naming the flag.

The settings (``ChaosConfig``, ``CHAOS_STRATEGIES``, ``CALIBRATION_DEFAULTS``) need only the
standard library, so the command line can describe them without the simulator's packages; the
rest is imported when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .config import CALIBRATION_DEFAULTS, CHAOS_STRATEGIES, ChaosConfig

__all__ = [
    "CALIBRATION_DEFAULTS",
    "CHAOS_STRATEGIES",
    "ChaosConfig",
    "format_calibration",
    "format_chaos",
    "run_calibration",
    "run_chaos",
]

#: The names imported when first used, and their modules.
_LAZY = {
    "format_calibration": ".tables",
    "format_chaos": ".tables",
    "run_calibration": ".calibrate",
    "run_chaos": ".harness",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
