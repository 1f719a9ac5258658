"""Sidekiq 6.4.1 (Debian's ruby-sidekiq) run for real (``sidekiq -c 1 -t N`` on a real Redis),
killed as a platform kills it, and the ``sidekiq`` model built from the same settings.

Every run has a 1.5 s grace, so ``-t 1``: a job in hand is pushed back to the front of the queue
0.5 s after SIGTERM and the process exits 1 s after it, before the platform's SIGKILL. The real
runs take 5-20 s each; their schedules are seeded (deploys every 10 s first at 7.0 s, crashes at
3.7 s and 8.4 s, deploys every 4 s first at 2.8 s), and each assertion holds with seconds to spare
on either side of the events it depends on.
"""

from __future__ import annotations

import math
from typing import Any

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real.harness import run_system
from deploysim.sim.chaos.real.systems.base import RunContext
from deploysim.sim.chaos.real.systems.sidekiq import SidekiqSystem, _job_number
from deploysim.strategies.base import Lose, Recover, Requeue
from deploysim.strategies.sidekiq import Sidekiq


def _run(**config: Any) -> dict[str, Any]:
    values = {"grace": "1.5s", "crash_every": 0, "seed": 1, **config}
    return run_system(ChaosConfig.from_args(**values), "sidekiq")


# -- the model and the settings, without Sidekiq -----------------------------------------------


def test_model_defaults_are_sidekiqs() -> None:
    model = Sidekiq()
    assert model.term_wait == 25.0
    assert model.on_timeout == Requeue(0.0, "front", restart=True)
    assert isinstance(model.on_kill, Lose)
    assert Sidekiq(fetch="reliable").on_kill == Recover(60.0, 3600.0)
    assert model.prefetch == 0 and model.exit_time == 0.0


def test_the_shutdown_poll_takes_half_a_second_off_the_timeout() -> None:
    # the manager sleeps one poll, then looks every poll, and gives up at the last look that
    # leaves less than a poll before the deadline; the process exits one poll later
    def wait(timeout: float) -> float:
        return Sidekiq(timeout=timeout, shutdown_poll=0.5).term_wait

    assert [wait(t) for t in (1, 2, 3, 25)] == [0.5, 1.5, 2.5, 24.5]
    assert wait(0.3) == 0.5  # the first look comes after a whole poll
    assert wait(2.2) == 2.0
    assert Sidekiq(timeout=3, shutdown_poll=0.5).exit_time == 0.5
    assert Sidekiq(timeout=math.inf, shutdown_poll=0.5).term_wait == math.inf


def test_settings_scale_the_timeout_to_whole_seconds_inside_the_grace() -> None:
    system = SidekiqSystem()
    assert system.settings(1.0, 30.0)["timeout"] == 25
    assert system.settings(0.05, 1.5)["timeout"] == 1  # 1.25 s
    assert system.settings(0.1, 3.0)["timeout"] == 2  # 2.5 s, rounded down: inside the grace
    assert system.settings(0.01, 0.3)["timeout"] == 1  # -t takes 1 at the least
    settings = system.settings(0.05, 1.5)
    model = system.strategy(settings)
    assert (model.timeout, model.term_wait, model.exit_time) == (1.0, 0.5, 0.5)
    assert model.requeue == "front" and isinstance(model.on_kill, Lose)
    ctx = RunContext(workdir="/tmp", redis_socket="/tmp/redis.sock",
                     broker_url="unix:///tmp/redis.sock?db=0",
                     results_url="unix:///tmp/redis.sock?db=1", jobs=1, items=1, item_time=0.1,
                     grace=1.5, settings=settings)
    argv = system.worker(ctx, 2, 3).argv
    assert argv[argv.index("-t") + 1] == "1" and argv[argv.index("-c") + 1] == "1"
    assert argv[argv.index("-r") + 1].endswith("sidekiq_job.rb")


def test_missing_says_how_to_get_sidekiq(monkeypatch) -> None:
    from deploysim.sim.chaos.real.systems import sidekiq

    monkeypatch.setattr(sidekiq.shutil, "which", lambda name: None)
    sidekiq._probe.cache_clear()
    try:
        assert SidekiqSystem().missing() == (
            "sidekiq needs Ruby and the sidekiq command: apt-get install ruby-sidekiq")
    finally:
        sidekiq._probe.cache_clear()


def test_job_numbers_are_read_from_sidekiqs_payloads() -> None:
    assert _job_number(b'{"class":"DeploysimJob","args":[7,10,0.1],"jid":"x"}') == 7
    assert _job_number(b'{"class":"Other","args":[]}') is None
    assert _job_number(b"not json") is None


# -- Sidekiq for real ---------------------------------------------------------------------------


def test_a_job_in_hand_at_the_timeout_goes_back_and_starts_over(need_system) -> None:
    # two 4 s jobs on one worker; the deploy at 7.0 s finds job 1 about 2.5 s in: it is pushed
    # back to the front 0.5 s later, runs again from its first item and completes
    system = need_system("sidekiq")
    result = _run(workers=1, jobs=2, items=20, item_time="0.2s", deploy_every="10s",
                  duration="30s")
    assert result["version"] == system.version()  # 6.4.1 where these facts were seen
    assert result["settings"]["timeout"] == 1
    assert result["sigterms"] >= 1
    assert result["completed"] == 2 and result["lost"] == 0 and result["failed"] == 0
    assert result["fates"] == {"0": "completed", "1": "completed"}
    assert result["executions"] >= 3
    assert result["duplicate_item_executions"] > 0


def test_basic_fetch_loses_the_job_of_a_killed_worker(need_system) -> None:
    # crashes at 0.4, 3.7 and 8.4 s; each 4 s job is popped off the queue when it starts and
    # nothing in Redis holds it: the crash at 3.7 s kills a job in hand, which never comes back
    need_system("sidekiq")
    result = _run(workers=1, jobs=3, items=20, item_time="0.2s", deploy_every=0, crash_every="5s",
                  seed=3, duration="12s")
    assert result["sigkills"] >= 2
    assert result["lost"] >= 1
    assert result["completed"] + result["lost"] + result["pending"] == 3
    lost = [job for job, fate in result["fates"].items() if fate == "lost"]
    assert not set(lost) & set(result["bookkeeping"])  # in no record of Sidekiq's


def test_jobs_longer_than_the_deploy_period_never_complete(need_system) -> None:
    # deploys every 4 s. 5 s jobs are interrupted at every deploy, pushed back to the FRONT and
    # fetched first by the replacements: jobs 0 and 1 start over and over, jobs 2 and 3 behind
    # them never start, and nothing completes. 1 s jobs on the same schedule all complete.
    need_system("sidekiq")
    long = _run(workers=2, jobs=4, items=10, item_time="0.5s", deploy_every="4s",
                duration="16s")
    assert long["completed"] == 0
    assert long["lost"] == 0 and long["failed"] == 0
    assert long["executions"] >= 6  # jobs 0 and 1, started again after each deploy
    assert {job for job, where in long["bookkeeping"].items() if where == "queued"} >= {"2", "3"}
    short = _run(workers=2, jobs=4, items=10, item_time="0.1s", deploy_every="4s",
                 duration="16s")
    assert short["completed"] == 4 and short["lost"] == 0
