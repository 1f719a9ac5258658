"""The settings of real-systems runs, with the standard library only (the command line shows
them without the systems installed)."""

from __future__ import annotations

from ..config import ChaosConfig
from .systems import SYSTEMS

SYSTEM_NAMES = tuple(SYSTEMS)
"""Every ``--system`` name."""

SYSTEM_DEFAULTS = ChaosConfig(
    workers=3, jobs=30, items=10, item_time=0.25, deploy_every=7.0, grace=1.5,
    crash_every=0.0, duration=45.0)
"""The defaults of ``deploysim chaos --system`` and ``deploysim calibrate --system``: three
single-process workers, jobs of 2.5 s, a deploy every 7 s with a 1.5 s grace (a platform's
30 s at 1/20 of real time), no crashes, at most 45 s: a run of under a minute that holds a
few deploys and a dozen interrupted jobs, with room for a real worker's start-up of one to two
seconds."""
