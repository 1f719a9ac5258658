"""RQ 3.0 run for real (``rq worker``, the forking ``Worker``, on a real Redis), killed as a
platform kills it, and the ``rq`` model built from the same settings.

A warm shutdown lets the job in hand finish, so only jobs longer than the grace are killed; a
killed job stays STARTED in ``StartedJobRegistry`` for at least the 60 s RQ adds to its last
heartbeat, longer than any run here: the runs see it held, never gone. The real runs take 5-20 s
each; their schedules are seeded (deploys every 4 s first at 2.8 s, every 5 s first at 3.5 s).
"""

from __future__ import annotations

import math
import os
import signal
import time
from typing import Any

import pytest

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real.harness import run_system
from deploysim.sim.chaos.real.systems.base import RunContext
from deploysim.sim.chaos.real.systems.rq import RqSystem, _job_number
from deploysim.strategies.base import Fail, Requeue, StrategyError
from deploysim.strategies.rq import Rq


def _run(**config: Any) -> dict[str, Any]:
    values = {"crash_every": 0, "seed": 1, **config}
    return run_system(ChaosConfig.from_args(**values), "rq")


def _context(settings: dict[str, Any], socket: str = "/tmp/redis.sock") -> RunContext:
    return RunContext(workdir=os.path.dirname(socket), redis_socket=socket,
                      broker_url=f"unix://{socket}?db=0", results_url=f"unix://{socket}?db=1",
                      jobs=1, items=20, item_time=0.1, grace=1.5, settings=settings)


# -- the model and the settings, without RQ ---------------------------------------------------


def test_model_defaults_are_rqs() -> None:
    model = Rq()
    assert model.term_wait == math.inf
    assert model.run_limit == 180.0
    # expires 60 s + half a 30 s monitoring interval after the kill, settled half a 600 s
    # maintenance interval later on average
    assert model.on_kill == Fail("AbandonedJobError", delay=60.0 + 15.0 + 300.0)
    assert Rq(retry=2).on_kill == Requeue(delay=375.0, end="back", restart=True)
    assert model.prefetch == 0 and 0.0 < model.exit_time < 1.0
    assert Rq.from_params({"exit_time": 0}).exit_time == 0.0
    with pytest.raises(StrategyError, match="retry"):
        Rq(retry=-1)


def test_settings_scale_rqs_durations_to_whole_seconds() -> None:
    system = RqSystem()
    real = system.settings(1.0, 30.0)
    assert (real["worker_ttl"], real["maintenance_interval"], real["job_monitoring_interval"],
            real["job_timeout"]) == (420, 600, 30, 180)
    settings = system.settings(0.05, 1.5)
    assert (settings["worker_ttl"], settings["maintenance_interval"],
            settings["job_monitoring_interval"], settings["job_timeout"]) == (21, 30, 2, 9)
    assert settings["heartbeat_slack"] == 60.0  # RQ's constant: not scaled
    assert system.settings(0.001, 0.03)["worker_ttl"] == 16  # RQ blocks worker_ttl - 15 s
    model = system.strategy(settings)
    assert model.run_limit == 9.0 and model.on_kill == Fail("AbandonedJobError", 60 + 1 + 15)
    argv = system.worker(_context(settings), 2, 3).argv
    assert argv[argv.index("--maintenance-interval") + 1] == "30"
    assert argv[argv.index("--job-monitoring-interval") + 1] == "2"
    assert argv[argv.index("--worker-ttl") + 1] == "21"
    assert argv[argv.index("--name") + 1] == "deploysim-2.3"


def test_job_numbers_are_read_from_rqs_ids() -> None:
    assert _job_number("deploysim-7") == 7
    assert _job_number("deploysim-12:9aecf2d9a1bd4f5fa487789ddd79602b") == 12  # started entry
    assert _job_number("other-3") is None and _job_number("deploysim-x") is None


# -- RQ for real -------------------------------------------------------------------------------


def test_a_killed_job_stays_started_never_lost(need_system) -> None:
    # 8 s jobs, deploys every 4 s, 1.5 s grace: the warm shutdown waits for the job in hand,
    # the platform SIGKILLs the container, and the job stays in StartedJobRegistry (its entry
    # expires 60 s after its last heartbeat, after the run's end): held, pending, not lost
    need_system("rq")
    result = _run(workers=2, jobs=6, items=40, item_time="0.2s", deploy_every="4s",
                  grace="1.5s", duration="15s")
    assert result["version"] == "3.0.0"
    assert result["sigkills"] >= 6
    assert result["completed"] == 0 and result["failed"] == 0
    assert result["lost"] == 0 and result["pending"] == 6
    assert result["bookkeeping"] == {str(job): "held" for job in range(6)}
    assert result["executions"] == 6  # nothing runs a killed job again
    model = RqSystem().strategy(result["settings"])
    assert isinstance(model.on_kill, Fail) and model.on_kill.delay > 15.0


def test_a_warm_shutdown_lets_the_job_in_hand_finish(need_system) -> None:
    # 1.5 s jobs and a 4 s grace: every SIGTERM finds a job in hand, which finishes, and the
    # worker exits before the SIGKILL; nothing runs twice
    need_system("rq")
    result = _run(workers=2, jobs=10, items=15, item_time="0.1s", deploy_every="5s",
                  grace="4s", duration="40s")
    assert result["sigterms"] >= 2 and result["sigkills"] == 0
    assert result["completed"] == 10 and result["lost"] == 0 and result["failed"] == 0
    assert result["executions"] == 10 and result["duplicate_item_executions"] == 0
    assert result["bookkeeping"] == {}


def test_killing_the_main_process_alone_leaves_the_horse_to_finish(need_system, tmp_path) -> None:
    # not what a platform does: SIGKILL to the worker's main process alone; the work horse is in
    # a process group of its own, outlives its parent and finishes the job
    import redis

    from deploysim.sim.chaos.real.containers import Container
    from deploysim.sim.chaos.real.redis_server import RedisServer

    system = need_system("rq")
    with RedisServer(tmp_path / "redis") as server:
        ctx = _context(system.settings(0.05, 1.5), server.socket)
        results = redis.Redis.from_url(ctx.results_url)
        command = system.worker(ctx, 0, 1)
        env = {**command.env, "DEPLOYSIM_RESULTS": ctx.results_url,
               "DEPLOYSIM_CONTAINER": "0.1"}
        container = Container(command.argv, env, tmp_path / "worker.log", cwd=command.cwd)
        try:
            system.enqueue(ctx)  # one 2 s job
            deadline = time.monotonic() + 20
            while not results.lrange("deploysim:events", 0, 0):
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.02)
            os.kill(container.pid, signal.SIGKILL)
            container.process.wait(5)
            assert container.processes()  # the horse lives on
            while not any(e.startswith(b"D 0 ") for e in results.lrange("deploysim:events", 0, -1)):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert system.bookkeeping(ctx) == {}  # finished: out of StartedJobRegistry
        finally:
            container.kill()
            results.close()
