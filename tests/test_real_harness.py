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
