"""The chaos harness: real worker processes, real SIGTERM and SIGKILL, a durable SQLite queue.

The runs are short and dense (a crash every few tens of milliseconds) so that the whole module
takes well under a minute on a busy two-core machine. What is asserted is what each real system
does: the resumable engine loses nothing, its exactly-once mode duplicates no effect, Sidekiq's
basic fetch loses killed jobs, Resque sends jobs killed after the grace to the failed queue;
and no worker process outlives its run.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from deploysim.sim.chaos import (
    CALIBRATION_DEFAULTS,
    CHAOS_STRATEGIES,
    ChaosConfig,
    format_chaos,
    run_chaos,
)
from deploysim.sim.chaos.queue import BASIC, LEASED, RECORD, RELIABLE, UNACKED, discipline
from deploysim.sim.chaos.schedule import make_schedule
from deploysim.sim.chaos.timescale import REFERENCE_GRACE, TimeScale
from deploysim.sim.errors import SimError
from deploysim.strategies import make_strategy

# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"workers": 0}, "--workers"),
        ({"workers": "many"}, "--workers"),
        ({"jobs": -3}, "--jobs"),
        ({"items": 0}, "--items"),
        ({"item_time": "2 parsecs"}, "--item-time"),
        ({"item_time": "0ms"}, "--item-time"),
        ({"deploy_every": "soon"}, "--deploy-every"),
        ({"grace": "0s"}, "--grace"),
        ({"crash_every": "-1s"}, "--crash-every"),
        ({"duration": "forever"}, "--duration"),
        ({"seed": -1}, "--seed"),
        ({"strategy": "sidekick"}, "--strategy"),
        ({"strategy": "sidekiq", "params": {"fetch": "bogus"}}, "--strategy"),
        ({"strategy": "resumable", "params": {"lease": "1m"}}, "--strategy"),
    ],
)
def test_bad_settings_name_their_flag(values: dict, flag: str) -> None:
    with pytest.raises(SimError) as err:
        ChaosConfig.from_args(**values)
    message = str(err.value)
    assert flag in message
    assert "\n" not in message


def test_unknown_strategy_suggests_the_nearest() -> None:
    with pytest.raises(SimError, match="did you mean 'sidekiq'"):
        ChaosConfig.from_args(strategy="sidekick")


def test_settings_parse_durations_and_take_defaults() -> None:
    config = ChaosConfig.from_args(strategy="celery", item_time="3ms", grace="1s",
                                   crash_every="0", workers="2", jobs=None)
    assert config.item_time == pytest.approx(0.003)
    assert config.grace == 1.0
    assert config.crash_every == 0.0
    assert config.workers == 2
    assert config.jobs == ChaosConfig().jobs
    assert ChaosConfig.from_args() == ChaosConfig()
    calibration = ChaosConfig.from_args(CALIBRATION_DEFAULTS)
    assert calibration == CALIBRATION_DEFAULTS
    assert calibration.crash_every == pytest.approx(0.04)
    assert ChaosConfig.from_args(CALIBRATION_DEFAULTS, jobs=7).jobs == 7


def test_flags_are_what_the_command_line_reads_back() -> None:
    assert ChaosConfig().flags() == {
        "strategy": "resumable", "workers": 4, "jobs": 100, "items": 200, "item_time": "2ms",
        "deploy_every": "2s", "grace": "500ms", "crash_every": "5s", "duration": "30s", "seed": 1,
    }
    assert CALIBRATION_DEFAULTS.flags()["item_time"] == "0.5ms"
    for config in (ChaosConfig(), CALIBRATION_DEFAULTS):
        assert ChaosConfig.from_args(**config.flags()) == config


def test_every_chaos_strategy_builds() -> None:
    for name in CHAOS_STRATEGIES:
        config = ChaosConfig.from_args(strategy=name)
        assert config.scaled_strategy().name == CHAOS_STRATEGIES[name].base


# -- the time scale, in one place -------------------------------------------------------------


def test_time_scale_compresses_every_duration_of_a_strategy() -> None:
    scale = TimeScale.for_grace(0.5)
    assert scale.factor == pytest.approx(0.5 / REFERENCE_GRACE)
    sidekiq = scale.strategy(make_strategy("sidekiq", {"fetch": "reliable"}))
    assert sidekiq.term_wait == pytest.approx(25 / 60)
    assert sidekiq.on_kill.heartbeat_ttl == pytest.approx(1.0)
    assert sidekiq.on_kill.check_every == pytest.approx(60.0)
    resumable = scale.strategy(make_strategy("resumable"))
    assert resumable.lease_ttl == pytest.approx(1.0)
    assert resumable.checkpoint_every == pytest.approx(5 / 60)
    celery = scale.strategy(make_strategy("celery", {"acks_late": True}))
    # the visibility timeout and half of kombu's restore period, both scaled
    assert celery.on_kill.delay == pytest.approx((3600 + 50) / 60)
    assert math.isinf(scale.strategy(make_strategy("resque")).term_wait)


def test_fetch_discipline_follows_what_a_kill_does() -> None:
    assert discipline(make_strategy("sidekiq")) == BASIC
    assert discipline(make_strategy("sidekiq", {"fetch": "reliable"})) == RELIABLE
    assert discipline(make_strategy("resque")) == RECORD
    assert discipline(make_strategy("celery")) == BASIC
    assert discipline(make_strategy("celery", {"acks_late": True})) == UNACKED
    assert discipline(make_strategy("split")) == BASIC
    assert discipline(make_strategy("resumable")) == LEASED


def test_schedule_is_a_function_of_the_seed() -> None:
    one = make_schedule(7, 30.0, 4, 2.0, 0.5)
    assert one == make_schedule(7, 30.0, 4, 2.0, 0.5)
    assert one != make_schedule(8, 30.0, 4, 2.0, 0.5)
    gaps = [b - a for a, b in zip(one.deploys, one.deploys[1:], strict=False)]
    assert all(g == pytest.approx(2.0) for g in gaps)
    assert 0 <= one.deploys[0] < 2.0
    assert all(0 <= slot < 4 for _, slot in one.crashes)
    assert 30 < len(one.crashes) < 90  # about 60 for a mean gap of 0.5 s
    none = make_schedule(7, 30.0, 4, 0.0, 0.0)
    assert none.deploys == () and none.crashes == ()


# -- real runs ---------------------------------------------------------------------------------


def _run(**values: object) -> dict:
    audit = run_chaos(ChaosConfig.from_args(**values))
    json.dumps(audit, allow_nan=False)  # JSON-ready
    return audit


def _assert_sound(audit: dict) -> None:
    """What every run must show, whatever the strategy."""
    assert audit["integrity_ok"], "PRAGMA integrity_check failed"
    assert audit["worker_errors"] == 0, "a worker process died of an error"
    assert audit["enqueued"] == (audit["completed"] + audit["failed"] + audit["lost"]
                                 + audit["pending"])
    assert audit["missing_effects"] == 0, "a completed job lacks effects"
    assert audit["survivors"] == 0
    for pid in audit["timeline"]["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert audit["duration_s"] <= audit["config"]["duration_s"] + 1.0


@pytest.fixture(scope="module")
def resumable_audit() -> dict:
    return _run(strategy="resumable", jobs=60, items=100, item_time="1ms", crash_every="15ms",
                deploy_every="500ms", grace="150ms", duration="20s", seed=3)


@pytest.fixture(scope="module")
def exactly_once_audit() -> dict:
    return _run(strategy="resumable-exactly-once", jobs=60, items=100, item_time="1ms",
                crash_every="15ms", deploy_every="500ms", grace="150ms", duration="20s", seed=4)


def test_resumable_loses_nothing_across_a_hundred_sigkills(resumable_audit: dict) -> None:
    a = resumable_audit
    _assert_sound(a)
    assert a["sigkills"] >= 100
    assert a["lost"] == 0 and a["failed"] == 0
    assert a["completed"] == a["enqueued"]
    # at-least-once effects: items redone after a crash wrote their effect twice
    assert a["duplicate_item_executions"] > 0
    assert a["duplicate_effects"] > 0


def test_exactly_once_duplicates_no_effect(exactly_once_audit: dict) -> None:
    a = exactly_once_audit
    _assert_sound(a)
    assert a["sigkills"] >= 100
    assert a["lost"] == 0 and a["failed"] == 0
    assert a["completed"] == a["enqueued"]
    assert a["duplicate_item_executions"] > 0  # items were redone after crashes...
    assert a["duplicate_effects"] == 0  # ...but their effects were rolled back with the batch


@pytest.mark.alone  # times lease take-overs in tenths of a second
def test_killed_resumable_workers_leave_no_stuck_lease(resumable_audit: dict,
                                                       exactly_once_audit: dict) -> None:
    for a in (resumable_audit, exactly_once_audit):
        assert a["stuck_jobs"] == 0
        assert a["pickup_bound_s"] == pytest.approx(a["params"]["lease_ttl"] + 0.008)
        assert a["max_pickup_s"] is not None
        assert a["max_pickup_s"] <= a["pickup_bound_s"]


def test_sidekiq_basic_fetch_loses_killed_jobs() -> None:
    a = _run(strategy="sidekiq", jobs=40, items=100, item_time="1ms", crash_every="60ms",
             deploy_every="0", grace="150ms", duration="10s", seed=5)
    _assert_sound(a)
    assert a["lost"] > 0
    assert a["lost"] <= a["crashes"]  # a SIGKILL takes at most the one job in hand
    assert a["failed"] == 0
    assert a["duplicate_effects"] == 0  # basic fetch never runs a job twice


def test_resque_quit_sends_jobs_killed_after_the_grace_to_the_failed_queue() -> None:
    # jobs of about 0.2 s, a grace of 50 ms: a deploy kills most jobs in hand
    a = _run(strategy="resque", jobs=30, items=100, item_time="2ms", crash_every="0",
             deploy_every="300ms", grace="50ms", duration="10s", seed=6)
    _assert_sound(a)
    assert a["hard_kills"] > 0
    assert a["failed"] > 0
    assert a["lost"] == 0


def test_super_fetch_recovers_orphans_once_their_heartbeat_expired() -> None:
    a = _run(strategy="sidekiq-reliable", jobs=30, items=100, item_time="1ms",
             crash_every="100ms", deploy_every="0", grace="150ms", duration="10s", seed=7,
             params={"recovery_every": "1m"})
    _assert_sound(a)
    assert a["crashes"] > 0
    assert a["lost"] == 0
    assert a["completed"] == a["enqueued"]
    assert a["duplicate_item_executions"] > 0  # recovered jobs start over


def test_a_run_stops_at_its_duration_and_counts_jobs_in_flight_as_pending() -> None:
    a = _run(strategy="sidekiq", jobs=200, items=100, item_time="5ms", crash_every="0",
             deploy_every="0", duration="1500ms", seed=8)
    _assert_sound(a)
    assert a["ended_by"] == "duration"
    assert 1.5 <= a["duration_s"] < 2.5
    assert a["in_flight_at_end"] >= a["config"]["workers"] - 1  # one may be between two jobs
    assert a["lost"] == 0  # nothing killed them but the end of the run
    assert a["pending"] > 0
    assert a["stopped_at_end"] == a["config"]["workers"]


def test_format_chaos_is_a_small_table(exactly_once_audit: dict) -> None:
    text = format_chaos(exactly_once_audit)
    assert text.startswith("resumable-exactly-once:")
    for label in ("enqueued", "completed", "lost", "duplicate effects", "integrity_check"):
        assert label in text
    assert len(text.splitlines()) < 20


def _children(pid: int) -> set[int]:
    """The child processes of ``pid``, from /proc (Linux)."""
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out |= {int(x) for x in f.read().split()}
    return out


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc")


@needs_proc
def test_an_aborted_run_leaves_no_process_behind() -> None:
    before = _children(os.getpid())

    def abort(_message: str) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        run_chaos(ChaosConfig.from_args(strategy="celery", jobs=400, items=100, duration="20s",
                                        crash_every="200ms", deploy_every="700ms"),
                  progress=abort)
    assert _children(os.getpid()) - before == set()


@needs_proc
def test_workers_die_with_a_killed_controller(tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from deploysim.sim.chaos.queue import process_alive

    keep = tmp_path / "run"
    code = ("from deploysim.sim.chaos import ChaosConfig, run_chaos\n"
            "run_chaos(ChaosConfig.from_args(strategy='resumable', jobs=400, duration='30s',"
            f" crash_every='300ms'), keep={str(keep)!r})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")])}
    controller = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 8:  # 4 workers and 4 spares
            time.sleep(0.1)
            workers = _children(controller.pid) if controller.poll() is None else set()
        assert workers, "the controller started no worker"
        controller.send_signal(signal.SIGKILL)
        controller.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(process_alive(p) for p in workers):
            time.sleep(0.05)
        assert not any(process_alive(p) for p in workers)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(10)
