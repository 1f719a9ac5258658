"""The resumable engine inside the real job systems, through its adapters, on short chaos runs
(``deploysim chaos --system resumable-*``): real workers of Celery, RQ and Dramatiq, deploys'
SIGTERMs and crashes' SIGKILLs, progress in the run's Redis or in a PostgreSQL of the run's own.

Whatever the kills, no job is lost, no item of a completed job is missing, and no job fails;
in at-least-once mode an item runs twice only when a kill beat its checkpoint (the work since
the last durable checkpoint, here one item, and the item in hand); in exactly-once mode on
PostgreSQL no effect is committed twice. Each run takes 25-35 s; its schedule is seeded.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real import SYSTEM_DEFAULTS
from deploysim.sim.chaos.real.harness import run_system
from deploysim.sim.chaos.real.systems import get_system
from deploysim.sim.errors import SimError
from deploysim.strategies.resumable_model import Resumable

SYSTEMS = ("resumable-celery", "resumable-rq", "resumable-dramatiq")


#: Celery's own: a grace that covers an idle prefork worker's exit (2.2 s, which no run
#: scales), as a real one does (``ResumableCelerySystem.cautions``), and a visibility timeout
#: that fits the run, so that killed tasks come back in it
CELERY = {"config": {"grace": "3s"}, "settings": {"visibility_timeout": 12.0}}


def _run(name: str, settings: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    own = CELERY if name == "resumable-celery" else {"config": {}, "settings": {}}
    values = {"jobs": 15, "items": 8, "item_time": "0.2s", "deploy_every": "5s",
              "crash_every": "2s", "duration": "28s", "seed": 4, **own["config"], **config}
    audit = run_system(ChaosConfig.from_args(SYSTEM_DEFAULTS, **values), name,
                       settings={**own["settings"], **(settings or {})})
    assert audit["cautions"] == []
    return audit


def _holds_the_engines_promises(audit: dict[str, Any]) -> None:
    assert audit["sigkills"] >= 3, audit["timeline"]["lives"]  # the crashes that hit a worker
    lost = [job for job, fate in audit["fates"].items() if fate == "lost"]
    assert audit["lost"] == 0, (lost, audit["bookkeeping"], audit["timeline"]["lives"])
    assert audit["failed"] == 0, audit["bookkeeping"]
    assert audit["missing_effects"] == 0
    assert audit["completed"] + audit["pending"] == audit["enqueued"]
    assert audit["completed"] >= audit["enqueued"] // 2, audit["fates"]


def _items_at_risk_per_kill(audit: dict[str, Any]) -> int:
    """What one SIGKILL may make run again: the items since the last durable checkpoint and
    the item in hand."""
    settings = audit["settings"]
    return math.ceil(settings["checkpoint_every"] / audit["config"]["item_time_s"]) + 1


@pytest.mark.parametrize("name", SYSTEMS)
def test_no_job_and_no_item_is_lost_through_kills(need_system, name):
    need_system(name)
    audit = _run(name)
    _holds_the_engines_promises(audit)
    assert audit["sigterms"] >= 6
    bound = audit["sigkills"] * _items_at_risk_per_kill(audit)
    assert audit["duplicate_effects"] <= bound
    assert audit["duplicate_effects"] == audit["duplicate_item_executions"]


def test_exactly_once_on_postgres_duplicates_no_effect(need_system, postgres_url):
    need_system("resumable-dramatiq")  # postgres_url: a server can be started here
    audit = _run("resumable-dramatiq", {"store": "postgres", "exactly_once": True}, seed=5)
    _holds_the_engines_promises(audit)
    assert audit["settings"]["store"] == "postgres"
    assert audit["executions"] > audit["enqueued"]  # killed jobs did resume
    assert audit["duplicate_effects"] == 0
    # an item that ran twice (a kill beat its batch's commit) had its first effect rolled back
    assert audit["duplicate_item_executions"] <= audit["sigkills"] * _items_at_risk_per_kill(
        audit)


def test_the_settings_are_checked_and_the_model_is_the_engines():
    system = get_system("resumable-celery")
    defaults = system.settings(0.05, 1.5)
    assert (defaults["store"], defaults["exactly_once"], defaults["acks_late"]) == (
        "redis", False, True)
    with pytest.raises(SimError, match="--exactly-once needs --store postgres"):
        system.configure(defaults, {"exactly_once": "true"})
    with pytest.raises(SimError, match="--store: 'mysql'"):
        system.configure(defaults, {"store": "mysql"})
    model = system.strategy(defaults)
    assert isinstance(model, Resumable)
    # a grace shorter than the worker's own exit is a compressed run's artefact: said aloud
    assert system.cautions(defaults, 3.0) == []
    assert "--grace 3s or more" in system.cautions(defaults, 1.5)[0]
    # a killed task is taken up again once Celery redelivers it (the visibility timeout)
    assert model.lease_ttl >= defaults["visibility_timeout"]
