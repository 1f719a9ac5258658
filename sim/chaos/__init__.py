"""Chaos runs: real worker processes, a durable SQLite queue, real SIGTERM and SIGKILL.

    config = ChaosConfig.from_args(strategy="sidekiq", crash_every="1s", duration="10s")
    audit = run_chaos(config)
    print(format_chaos(audit))

``run_calibration`` runs one compressed scenario for real and in the simulator and sets the
numbers side by side (``format_calibration``). Bad settings raise ``sim.errors.SimError`` with
a one-line message naming the flag.
"""

from .calibrate import run_calibration
from .config import CALIBRATION_DEFAULTS, CHAOS_STRATEGIES, ChaosConfig
from .harness import run_chaos
from .tables import format_calibration, format_chaos

__all__ = [
    "CALIBRATION_DEFAULTS",
    "CHAOS_STRATEGIES",
    "ChaosConfig",
    "format_calibration",
    "format_chaos",
    "run_calibration",
    "run_chaos",
]
