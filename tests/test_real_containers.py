"""A container is every process a worker starts: the platform's SIGKILL leaves none alive, even
one that moved to a session of its own (RQ's work horse) or cleared its environment."""

from __future__ import annotations

import os
import sys
import time

import pytest

from deploysim.sim.chaos.real.containers import Container

# The main process forks a child that starts a session of its own and forks a grandchild, and a
# second child that execs with an empty environment; then all of them sleep.
TREE = r"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    time.sleep(600)
if os.fork() == 0:
    os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], {})
print("ready", flush=True)
time.sleep(600)
"""


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


@pytest.fixture
def tree(tmp_path):
    c = Container([sys.executable, "-c", TREE], {}, tmp_path / "log")
    _wait_for(lambda: b"ready" in (tmp_path / "log").read_bytes() and len(c.processes()) == 4)
    yield c
    c.kill()


def test_a_kill_leaves_no_process_of_the_container(tree):
    pids = tree.processes()
    assert len(pids) == 4 and tree.pid in pids
    killed = tree.kill()
    assert killed == 4
    assert tree.processes() == set()
    assert all(_gone(pid) for pid in pids)
    assert not tree.alive()
    assert tree.cgroup is None or not tree.cgroup.exists()  # nothing left on the machine


def test_an_orphan_in_its_own_session_is_still_found_after_its_parent_dies(tree):
    pids = tree.processes()
    os.kill(tree.pid, 9)  # the main process alone: its children live on, reparented
    _wait_for(lambda: not tree.alive())
    left = tree.processes()
    assert left == pids - {tree.pid}
    tree.kill()
    assert tree.processes() == set()
    assert all(_gone(pid) for pid in left)


def test_term_signals_the_main_process_only(tmp_path):
    script = ("import os, signal, sys, time\n"
              "if os.fork() == 0:\n"
              "    signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
              "    time.sleep(600)\n"
              "print('ready', flush=True)\n"
              "time.sleep(600)\n")
    c = Container([sys.executable, "-c", script], {}, tmp_path / "log")
    try:
        _wait_for(lambda: len(c.processes()) == 2)
        assert c.term()
        _wait_for(lambda: not c.alive())
        assert len(c.processes()) == 1  # the child did not get the SIGTERM
        assert not c.term()
    finally:
        c.kill()
    assert c.processes() == set()


def test_a_killed_containers_cgroup_is_removed_and_stale_ones_are_swept(tmp_path):
    """A kill removes the container's cgroup; an empty one left behind (its last zombie reaped
    late, or a harness killed outright) goes at the next sweep once it is stale, a young one
    only if this process made it."""
    from deploysim.sim.chaos.real import containers

    root = containers._cgroup_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root, where the harness makes a cgroup per container")
        pytest.skip("no writable cgroup v2 hierarchy here (not root)")
    c = Container([sys.executable, "-c", "import time; time.sleep(60)"], {},
                  tmp_path / "log")
    assert c.cgroup is not None and c.cgroup.exists()
    c.kill()
    assert not c.cgroup.exists()
    stale, young = root / "deploysim-test-stale", root / "deploysim-test-young"
    stale.mkdir()
    young.mkdir()
    try:
        old = time.time() - 2 * containers.STALE
        os.utime(stale, (old, old))
        containers.sweep_cgroups()
        assert not stale.exists() and young.exists()
        containers._LEFT.add(young)  # as a kill whose rmdir failed leaves it
        assert containers.sweep_cgroups() == 1 and not young.exists()
    finally:
        for path in (stale, young):
            if path.exists():
                path.rmdir()
