"""The real-systems harness itself: bad arguments, and nothing outliving a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real import SYSTEM_DEFAULTS, SYSTEM_NAMES
from deploysim.sim.chaos.real.systems import get_system
from deploysim.sim.errors import SimError

CLI = [sys.executable, "-m", "deploysim.sim.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "needle"), [
    (("chaos", "--system", "celry"), "did you mean 'celery'"),
    (("chaos", "--system", "rq", "--strategy", "celery"), "--system and --strategy"),
    (("calibrate", "--system", "sidekick"), "did you mean 'sidekiq'"),
    (("chaos", "--system", "rq", "--workers", "0"), "--workers"),
    (("chaos", "--system", "rq", "--grace", "soon"), "--grace"),
    (("chaos", "--system", "rq", "--setting", "job_timout=5"), "did you mean 'job_timeout'"),
    (("chaos", "--system", "rq", "--setting", "job_timeout"), "KEY=VALUE"),
    (("chaos", "--system", "dramatiq", "--setting", "maintenance_chance=often"),
     "not a whole number"),
    (("chaos", "--system", "celery", "--setting", "acks_late=maybe"), "true or false"),
    (("chaos", "--setting", "retry=1"), "only with --system"),
    (("calibrate", "--system", "rq", "--replications", "0"), "--replications"),
    (("chaos", "--system", "rq", "--store", "postgres"), "only with a resumable --system"),
    (("chaos", "--exactly-once"), "only with a resumable --system"),
    (("chaos", "--system", "resumable-rq", "--exactly-once"), "needs --store postgres"),
    (("chaos", "--system", "resumable-celery", "--store", "mysql"), "invalid choice"),
    (("chaos", "--system", "resumable-dramatiq", "--setting", "checkpoint_every=9"),
     "at most half of lease_ttl"),
])
def test_a_bad_argument_is_one_line_and_exit_2(args, needle):
    done = _cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_every_system_name_has_an_adapter():
    for name in SYSTEM_NAMES:
        system = get_system(name)
        assert system.name == name and system.model and system.ready
    with pytest.raises(SimError, match="unknown"):
        get_system("resque")


def test_settings_go_over_the_defaults_in_the_systems_units():
    system = get_system("celery")
    defaults = system.settings(0.05, 1.5)
    ours = system.configure(defaults, {"visibility_timeout": "5", "acks_late": "true",
                                       "pool": "solo"})
    assert ours["visibility_timeout"] == 5.0 and ours["acks_late"] is True
    assert ours["exit_time"] != defaults["exit_time"]  # the solo pool exits in its own time
    assert system.configure(defaults, {}) == defaults
    rq = get_system("rq")
    assert rq.configure(rq.settings(0.05, 1.5), {"retry": 2})["retry"] == 2


def test_the_events_give_each_containers_own_ready_time(need_system, tmp_path):
    """An R line, from a system's start-up hook, is the container's ready time in the audit."""
    need_system("rq")  # a Redis server and redis-py
    import redis

    from deploysim.sim.chaos.real.audit import read_events
    from deploysim.sim.chaos.real.redis_server import RedisServer
    from deploysim.sim.chaos.real.work import EVENTS

    with RedisServer(str(tmp_path / "redis")) as server:
        client = redis.Redis.from_url(server.url(1))
        client.rpush(EVENTS, "R - 0.1 100.25", "S 3 0.1 100.5", "I 3 0 0.1 100.75",
                     "D 3 0.1 101.0", "R - 1.1 100.1")
        events = read_events(client, 100.0)
        client.close()
    assert events.ready == {"0.1": 0.25, "1.1": pytest.approx(0.1)}
    (attempt,) = events.attempts
    assert (attempt.job, attempt.start, attempt.end, attempt.completed) == (3, 0.5, 1.0, True)
    assert events.total == 1 and events.executions == {3: 1}


def _redis_servers_in(folder_prefix: str) -> list[str]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in cmd and folder_prefix in cmd:
            out.append(cmd)
    return out


def test_a_run_leaves_no_worker_and_no_redis_behind(need_system, tmp_path):
    need_system("rq")
    from deploysim.sim.chaos.real import run_system

    keep = tmp_path / "run"
    config = ChaosConfig.from_args(SYSTEM_DEFAULTS, jobs=4, items=4, item_time="0.2s",
                                   deploy_every="3s", duration="8s", seed=3)
    audit = run_system(config, "rq", keep=str(keep))
    assert audit["survivors"] == []
    assert _redis_servers_in(str(keep)) == []
    assert audit["sigterms"] >= 3
    assert audit["enqueued"] == 4
    assert sum(audit[k] for k in ("completed", "failed", "lost", "pending")) == 4
    assert len(audit["fates"]) == 4
    json.dumps(audit, allow_nan=False)  # JSON-ready as the CLI prints it
    from deploysim.sim.chaos.real import format_system

    text = format_system(audit)
    assert text.startswith(f"rq {audit['version']}: 3 workers, 4 jobs")
    assert "  enqueued                   4" in text
    n = audit["deploys"]
    assert f": {n} deploy{'' if n == 1 else 's'}, {audit['sigterms']} SIGTERM" in text
    lives = audit["timeline"]["lives"]
    assert len(lives) > 3  # replacements came up after the deploy
    assert len(list((keep / "logs").iterdir())) == len(lives)
    assert all(life["ended"] is not None for life in lives)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    needle = text.encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in environ or needle in cmdline:
            found.append(int(pid))
    return found


def test_a_run_stopped_with_sigterm_stops_its_workers_and_redis(need_system, tmp_path):
    need_system("rq")
    import signal
    import time

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.Popen([*CLI, "chaos", "--system", "rq", "--duration", "60s", "--quiet"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(_processes_mentioning(str(tmp_path))) < 4:  # redis and three workers up
            assert time.monotonic() < deadline and run.poll() is None, run.stderr
            time.sleep(0.1)
        run.send_signal(signal.SIGTERM)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    time.sleep(0.2)
    assert _processes_mentioning(str(tmp_path)) == []
