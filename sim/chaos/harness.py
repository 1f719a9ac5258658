"""A chaos run from end to end: a temporary directory, the queue filled, the workers put
through deploys and crashes by the controller, the audit, the directory removed."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from .audit import audit
from .config import ChaosConfig
from .controller import Controller, Progress, prepare
from .queue import LEASED, discipline

log = logging.getLogger("deploysim.sim.chaos")


def run_chaos(config: ChaosConfig, progress: Progress | None = None, *,
              keep: str | None = None) -> dict[str, Any]:
    """Run ``config`` for real and return its audit (a JSON-ready dict; see
    ``deploysim.sim.chaos.audit``).
    ``keep`` names a directory to create and leave behind with the databases and logs;
    otherwise they live in a temporary directory removed at the end."""
    strategy = config.scaled_strategy()
    how = discipline(strategy)
    if keep is not None:
        os.makedirs(keep, exist_ok=False)
        workdir = keep
    else:
        workdir = tempfile.mkdtemp(prefix="deploysim-chaos-")
    try:
        prepare(workdir, config, strategy, resumable=how == LEASED)
        controller = Controller(workdir, config, strategy, how, config.variant.exactly_once,
                                progress)
        record = controller.run()
        result = audit(workdir, config, strategy, how, record)
        log.info("chaos run %s: %d/%d completed, %d lost, %d SIGKILLs", config.strategy,
                 result["completed"], result["enqueued"], result["lost"], result["sigkills"])
        return result
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
