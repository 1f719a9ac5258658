"""Dramatiq 2.2.1 run for real (``dramatiq -p 1 -t 1`` on a real Redis), killed as a platform
kills it, and the ``dramatiq`` model built from the same settings.

The real runs take 10-30 s each. The redelivery run sets ``maintenance_chance`` to every
command: with Dramatiq's 0.1% a killed message comes back after the heartbeat timeout plus an
exponential wait (a mean of 12.5 s for three idle workers at this scale), too random for a test.
"""

from __future__ import annotations

import math

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real import harness
from deploysim.sim.chaos.real.systems.dramatiq import DramatiqSystem
from deploysim.strategies.base import Redeliver, Requeue
from deploysim.strategies.dramatiq import Dramatiq


def _run(settings: dict, **config: object) -> dict:
    return harness.run_system(ChaosConfig.from_args(**config), "dramatiq", settings=settings)


def test_model_defaults_are_dramatiqs() -> None:
    model = Dramatiq()
    assert model.term_wait == 600.0 and model.notice_every == 1.0
    assert model.prefetch == 1
    # back after the 60 s heartbeat at a maintenance: 0.1% of the commands, an idle consumer
    # polling every 0.75 s
    assert model.on_kill == Redeliver(after=60.0, chance=0.001, poll=0.75, end="back")
    assert model.redelivery_delay == 60.0 + 750.0  # for one idle consumer
    assert model.on_timeout == model.on_kill
    assert model.on_kill_reserved == model.on_kill
    assert model.on_exit_reserved == Requeue(0.0, "back")
    assert model.exit_time == 1.0
    assert math.isclose(model.command_exit_time, 3.05)
    assert Dramatiq(maintenance_chance=0).redelivery_delay == math.inf


def test_settings_are_scaled_in_dramatiqs_units() -> None:
    system = DramatiqSystem()
    settings = system.settings(0.05, 1.5)
    assert settings["worker_shutdown_timeout"] == 30_000
    assert settings["heartbeat_timeout"] == 3_000
    assert settings["worker_timeout"] == 50
    assert settings["maintenance_chance"] == 1000
    model = system.strategy(settings)
    assert model.heartbeat_timeout == 3.0
    assert model.term_wait == 30.0 and model.notice_every == 1.0  # a constant of the code
    assert model.exit_time == 0.05
    assert math.isclose(model.command_exit_time, 1.53)
    argv = system.worker(_context(settings), 0, 1).argv
    assert argv[argv.index("--worker-shutdown-timeout") + 1] == "30000"


def _context(settings: dict) -> object:
    from deploysim.sim.chaos.real.systems.base import RunContext

    return RunContext(workdir="/tmp", redis_socket="/tmp/redis.sock", broker_url="",
                      results_url="", jobs=1, items=1, item_time=0.1, grace=1.5,
                      settings=settings)


def test_a_killed_message_is_redelivered_and_completes(need_system) -> None:
    need_system("dramatiq")
    result = _run({"maintenance_chance": 1_000_000},
                  workers=3, jobs=6, items=10, item_time="0.1s", deploy_every=0,
                  grace="1.5s", crash_every="1.5s", duration="40s", seed=3)
    assert result["version"] == "2.2.1"
    assert result["sigkills"] > 0
    assert result["executions"] > result["enqueued"], "no crash hit a job in hand"
    assert result["completed"] == result["enqueued"] == 6
    assert result["lost"] == 0 and result["failed"] == 0
    assert result["bookkeeping"] == {}


def test_a_sigterm_with_a_long_grace_lets_the_message_finish(need_system) -> None:
    need_system("dramatiq")
    result = _run({}, workers=3, jobs=12, items=20,
                  item_time="0.1s", deploy_every="6s", grace="5s", crash_every=0,
                  duration="45s", seed=1)
    assert result["sigterms"] > 0
    assert result["sigkills"] == 0
    assert result["completed"] == result["enqueued"] == 12
    assert result["duplicate_item_executions"] == 0
    assert result["wasted_work_s"] == 0
