"""A real RabbitMQ broker for one run: a node of its own (Debian's ``rabbitmq-server``, 3.10 on
Debian 12), its data, logs, Erlang cookie and configuration in the run's folder, listening on
free loopback ports (AMQP, Erlang distribution, and an ``epmd`` of its own), stopped at the end.

The node runs in a ``Container``, so that stopping it kills every process it started: the
Erlang VM, its ``erl_child_setup`` and the ``epmd`` daemon, which leaves its parent's session
and would otherwise outlive the run. It starts in about 5 s on a 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from ...errors import SimError
from .containers import Container

START_TIMEOUT = 60.0
"""Seconds to wait for the node to say its start-up is complete."""

READY = b"Server startup complete"
"""The line the node logs when it takes connections."""

DEBIAN = "/usr/lib/rabbitmq/bin/rabbitmq-server"
"""Debian's start script itself. The ``rabbitmq-server`` on the PATH (``/usr/sbin``) is a wrapper
that, run as root, switches to the ``rabbitmq`` user, who may not write the run's folder."""


def rabbitmq_server_binary() -> str | None:
    """The ``rabbitmq-server`` start script to run, or None."""
    if os.access(DEBIAN, os.X_OK):
        return DEBIAN
    return shutil.which("rabbitmq-server")


def _free_ports(n: int) -> list[int]:
    """``n`` loopback ports free right now (held open together, so they differ)."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


class RabbitMQServer:
    """``with RabbitMQServer(folder) as rabbit:`` runs a node until the block ends;
    ``rabbit.url`` is its AMQP address for kombu and Celery."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.port = 0
        self.container: Container | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> RabbitMQServer:
        binary = rabbitmq_server_binary()
        if binary is None:
            raise SimError("no rabbitmq-server found: apt-get install rabbitmq-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        amqp, dist, epmd = _free_ports(3)
        self.port = amqp
        config = self.folder / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
                          "loopback_users.guest = true\n", encoding="ascii")
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(exist_ok=True)
        plugins = self.folder / "enabled_plugins"
        plugins.write_text("[].\n", encoding="ascii")
        name = f"deploysim-{amqp}@localhost"
        env = {
            "HOME": str(self.folder),  # the Erlang cookie goes there
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid"),
            "RABBITMQ_NODENAME": name,
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_PORT": str(epmd),
        }
        log = self.folder / "rabbitmq.log"
        self.container = Container([binary], env, log, str(self.folder))
        self._wait_ready(log)
        return self

    def _wait_ready(self, log: Path) -> None:
        assert self.container is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if log.exists() and READY in log.read_bytes():
                return
            if not self.container.alive():
                self.stop()
                raise SimError(f"rabbitmq-server exited at start-up; see {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise SimError(f"rabbitmq-server was not ready within {START_TIMEOUT:.0f} s; "
                               f"see {log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the node and everything it started."""
        container, self.container = self.container, None
        if container is not None:
            container.kill()

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
