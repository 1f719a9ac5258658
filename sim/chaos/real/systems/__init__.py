"""The real job systems the harness runs, by ``--system`` name.

``SYSTEMS`` maps each name to the module of its adapter; ``get_system(name)`` imports it and
returns the adapter (a ``base.System``). The names need only the standard library, so the
command line can list them without the systems installed.
"""

from __future__ import annotations

from importlib import import_module
from types import MappingProxyType

from deploysim.strategies.hints import did_you_mean

from ....errors import SimError
from .base import System

SYSTEMS = MappingProxyType({
    "celery": "celery",
    "celery-acks-late": "celery",
    "celery-rabbitmq": "celery",
    "celery-acks-late-rabbitmq": "celery",
    "rq": "rq",
    "dramatiq": "dramatiq",
    "sidekiq": "sidekiq",
    "resumable-celery": "resumable",
    "resumable-rq": "resumable",
    "resumable-dramatiq": "resumable",
})
"""Every ``--system`` name -> the module (in this package) of its adapter."""

RESUMABLE = ("resumable-celery", "resumable-rq", "resumable-dramatiq")
"""The systems that run the resumable engine through its adapters."""

CALIBRATED = tuple(name for name in SYSTEMS if name not in RESUMABLE)
"""What ``calibrate --system all`` runs: the systems whose models the simulator holds to their
real runs (the resumable ones are audited by ``chaos``; their model leaves out the cost of each
resumed attempt, as ``calibrate``'s own targets say)."""


def get_system(name: str) -> System:
    """The adapter of the system called ``name``; SimError naming the right ones if unknown."""
    if name not in SYSTEMS:
        raise SimError(f"--system: '{name}' is unknown; "
                       f"{did_you_mean(name, SYSTEMS, always=True)}")
    module = import_module(f".{SYSTEMS[name]}", __name__)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, System) and value.name == name:
            return value()
    raise SimError(f"--system: '{name}' has no adapter in {module.__name__}")
