"""A worker container as a platform sees it: a command and every process it ever starts.

A platform stops a container in two steps: SIGTERM to its main process (PID 1 of the container:
what Kubernetes, Docker and ECS signal), then, after the grace, SIGKILL to EVERY process in it.
Job systems fork: Celery's prefork pool children, RQ's work horse (which runs in a process group
of its own and outlives a SIGKILL of its parent alone), Dramatiq's worker processes. Killing the
main process, or its process group, is not what a platform does.

Where this process may create cgroups (a writable cgroup v2 hierarchy: root on Linux, as in
CI), each container gets its own, as a container runtime does: the main process enters it
before it execs, every descendant is born in it and cannot leave, and ``kill`` writes
``cgroup.kill``, which SIGKILLs all of them at once. Everywhere, a ``Container`` also finds its
processes two more ways and takes the union: every process whose environment carries the
container's marker (``DEPLOYSIM_CONTAINER_TOKEN``, inherited by every descendant, including the
orphans a dead parent leaves to init), and every descendant of the main process by parent
links. Without a cgroup, ``kill`` freezes them all with SIGSTOP, looking again until no new
process appears (a stopped process cannot fork), then SIGKILLs them all. Either way it waits
until none is left: ``processes()`` after a kill is empty, and the tests prove it. Only a
process that both clears its environment and loses its parent escapes the search without a
cgroup.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

MARKER = "DEPLOYSIM_CONTAINER_TOKEN"
"""The environment variable that marks every process of a container."""

KILL_WAIT = 10.0
"""Seconds to wait for every killed process to be gone before giving up loudly."""


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or not ours to read
        return b""


def _state_and_parent(pid: int) -> tuple[str, int]:
    """A process's state letter and parent pid, from /proc (("", 0) if it is gone)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return "", 0
    # the command name is in parentheses and may hold spaces: split after the last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[1])


def die_with_parent() -> None:
    """In a child before it execs: ask Linux to SIGKILL it if the harness dies first (a
    harness killed outright cannot stop its containers; this stops at least their main
    processes, and with them most systems' pools). A no-op where prctl is missing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cgroup_root() -> Path | None:
    """A cgroup v2 folder under which this process may create cgroups, or None."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            own = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")),
                       None)
        with open("/proc/mounts", encoding="ascii") as f:
            mount = next((line.split()[1] for line in f if line.split()[2] == "cgroup2"), None)
    except OSError:
        return None
    if own is None or mount is None:
        return None
    root = Path(mount) / own.lstrip("/")
    return root if os.access(root, os.W_OK) and (root / "cgroup.procs").exists() else None


def _make_cgroup(token: str) -> Path | None:
    root = _cgroup_root()
    if root is None:
        return None
    path = root / f"deploysim-{token}"
    try:
        path.mkdir()
    except OSError:
        return None
    if not (path / "cgroup.kill").exists():  # before Linux 5.14: no way to kill them at once
        path.rmdir()
        return None
    return path


STALE = 60.0
"""Seconds after which an empty cgroup no container of this process made is swept."""

_LEFT: set[Path] = set()
"""Cgroups of killed containers that could not be removed yet."""


def sweep_cgroups(wait: float = 0.0) -> int:
    """Remove the empty cgroups that killed containers left (``wait`` seconds at most for their
    last zombies to be reaped), and any other empty ``deploysim-*`` cgroup of this process's own
    hierarchy more than ``STALE`` seconds old, left by a harness that was itself killed; how
    many were removed. A cgroup with a process in it is never touched (rmdir refuses it), nor a
    young one, which another harness may be about to start a container in."""
    root = _cgroup_root()
    found = set(_LEFT)
    if root is not None:
        now = time.time()
        with contextlib.suppress(OSError):
            found |= {path for path in root.glob("deploysim-*")
                      if now - path.stat().st_mtime > STALE}
    removed = 0
    deadline = time.monotonic() + wait
    while True:
        for path in sorted(found):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                continue
            else:
                removed += 1
            found.discard(path)
            _LEFT.discard(path)
        if not found or time.monotonic() >= deadline:
            return removed
        time.sleep(0.05)


class Container:
    """One worker container: ``argv`` started in a session of its own with ``env`` and its
    output appended to ``log``. ``term()`` signals the main process; ``kill()`` kills every
    process of the container and reaps the main one."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: str | os.PathLike[str],
                 cwd: str | None = None) -> None:
        self.token = secrets.token_hex(8)
        self.marker = f"{MARKER}={self.token}".encode()
        self.log = Path(log)
        self.cgroup = _make_cgroup(self.token)
        environment = {**os.environ, **env, MARKER: self.token}
        procs = str(self.cgroup / "cgroup.procs") if self.cgroup is not None else None

        def enter_cgroup() -> None:  # in the child, before it execs
            die_with_parent()
            if procs is not None:
                with open(procs, "w", encoding="ascii") as f:
                    f.write("0")

        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                list(argv), env=environment, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=enter_cgroup,
            )
        finally:
            out.close()
        self.pid = self.process.pid

    # -- what is alive --------------------------------------------------------------------------

    def alive(self) -> bool:
        """True while the main process runs (it is reaped here when it has exited)."""
        return self.process.poll() is None

    def processes(self) -> set[int]:
        """The pids of every live (not zombie) process of the container."""
        pids = _all_pids()
        parents: dict[int, int] = {}
        found: set[int] = set(self._cgroup_pids())
        for pid in pids:
            state, parent = _state_and_parent(pid)
            if not state or state in "ZX":
                continue
            parents[pid] = parent
            if pid in found:
                continue
            if self.marker in _read(f"/proc/{pid}/environ").split(b"\0"):
                found.add(pid)
        if self.pid in parents:
            found.add(self.pid)
        grew = True
        while grew:  # descendants by parent links, for any process that cleared its environment
            grew = False
            for pid, parent in parents.items():
                if parent in found and pid not in found:
                    found.add(pid)
                    grew = True
        return {pid for pid in found if pid in parents}

    def _cgroup_pids(self) -> list[int]:
        if self.cgroup is None:
            return []
        try:
            text = (self.cgroup / "cgroup.procs").read_text(encoding="ascii")
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    # -- signals --------------------------------------------------------------------------------

    def term(self) -> bool:
        """SIGTERM to the main process, as a platform sends it; False if it had exited."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            return True
        return False

    def kill(self) -> int:
        """SIGKILL every process of the container (frozen first, so that none forks away) and
        reap the main one; returns how many processes were killed. Raises RuntimeError if any
        survives ``KILL_WAIT`` seconds."""
        frozen: set[int] = set()
        if self.cgroup is not None:
            frozen = self.processes()
            with contextlib.suppress(OSError):
                (self.cgroup / "cgroup.kill").write_text("1", encoding="ascii")
        while True:
            pids = self.processes() - frozen
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            frozen |= pids
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(KILL_WAIT)
        deadline = time.monotonic() + KILL_WAIT
        while (left := self.processes()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"container {self.pid}: processes {sorted(left)} survived "
                                   "SIGKILL")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        if self.cgroup is not None:
            # a killed orphan stays in the cgroup until init has reaped it (an init may take
            # its time): then it can go; if it cannot yet, sweep_cgroups tries again later
            while self._cgroup_pids() and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                self.cgroup.rmdir()
            except OSError:
                _LEFT.add(self.cgroup)
        return len(frozen)
