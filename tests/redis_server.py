"""A real Redis for the queue tests that pass jobs through: a redis-server on a free port.

Skips, saying why, where no ``redis-server`` binary is installed (CI installs one with
``apt-get install -y redis-server``). Readiness is the server's own "Ready to accept
connections" line, not a wait.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Seconds the server gets to say it is ready.
START_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a redis-server started for this session (or this xdist worker)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no redis-server binary on PATH: passthrough to a real Redis needs one"
            " (apt-get install -y redis-server)"
        )
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--loglevel", "notice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    ready = threading.Event()
    log: list[str] = []

    def watch() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            log.append(line)
            if "Ready to accept connections" in line:
                ready.set()

    watcher = threading.Thread(target=watch, name="redis-server-log", daemon=True)
    watcher.start()
    try:
        if not ready.wait(START_TIMEOUT):
            pytest.fail(f"redis-server on port {port} did not start:\n{''.join(log)}")
        yield port
    finally:
        server.terminate()
        server.wait(10)
        watcher.join(10)  # its log ends with the server
        assert server.stdout is not None
        server.stdout.close()


def free_port() -> int:
    """A TCP port nothing listens on now (the queue tests' unreachable Redis, or a server's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
