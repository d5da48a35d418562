"""Fixtures for the example app's tests: settings in a temporary directory, a client, a real
SMTP server on 127.0.0.1, a real uvicorn server in a thread, and real processes (uvicorn, a
Celery worker, a Redis server) that are always killed at the end."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from packaging.requirements import Requirement
from packaging.version import Version

from example_app.main import app as example_app
from example_app.settings import Settings, get_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fast settings in a temporary directory: no delay, and no SMTP server until asked for."""
    return Settings(
        log_path=tmp_path / "log.txt",
        error_log_path=tmp_path / "error_log.txt",
        database_path=tmp_path / "jobs.sqlite3",
        database_timeout=0.5,
        notify_delay=0.0,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # a closed port: e-mail fails unless a test starts smtp_server
        smtp_timeout=5.0,
        max_concurrent_tasks=4,
        max_records=100,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """The example app, its settings replaced by the test's (the FastAPI way)."""
    example_app.dependency_overrides[get_settings] = lambda: settings
    yield example_app
    example_app.dependency_overrides.clear()


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test's settings as ``EXAMPLE_*`` variables, for code that reads its settings from the
    environment (a Celery job, as its worker would) rather than from the request."""
    variables = settings.environ()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def configure(app: FastAPI) -> Callable[..., Settings]:
    """``configure(notify_delay=2.0)``: change some settings for the rest of the test."""

    def configure(**changes: Any) -> Settings:
        current: Settings = app.dependency_overrides[get_settings]()
        changed = dataclasses.replace(current, **changes)
        app.dependency_overrides[get_settings] = lambda: changed
        return changed

    return configure


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


# -- a real SMTP server -------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps every message, and refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        #: (MAIL FROM, RCPT TO) of each message, as the SMTP conversation gave them.
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.content.replace(b"\r\n", b"\n")  # as it was before the wire
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(configure: Callable[..., Settings]) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, and the app configured to send through it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    configure(smtp_host=controller.hostname, smtp_port=controller.port)
    yield mailbox
    controller.stop()


# -- a real HTTP server -------------------------------------------------------------------------


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn in a thread of this process; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True  # uvicorn waits for running background tasks, then stops
    thread.join(timeout=10)


# -- real processes -----------------------------------------------------------------------------

#: The repository: processes run from here, so ``example_app`` imports as it does for the tests.
ROOT = Path(__file__).resolve().parents[2]
#: Seconds a process gets to start, or to finish what a test waits for. A test's waits add up to
#: well under pytest-timeout's limit (pyproject.toml), so the code that kills them always runs.
PROCESS_TIMEOUT = 30.0
#: Seconds a killed process gets to end.
EXIT_TIMEOUT = 10.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = PROCESS_TIMEOUT) -> Any:
    """Poll ``condition`` until it returns something truthy; past ``timeout``, fail."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return result


class Processes:
    """The test's subprocesses: each logs to a file in ``tmp_path``; all are killed at the end."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log_path(name), "ab") as log:
            process = subprocess.Popen(
                args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        self._running[name] = process
        return process

    def log_path(self, name: str) -> Path:
        return self._directory / f"{name}.log"

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(encoding="utf-8", errors="replace")

    def check_alive(self, name: str) -> bool:
        """True while ``name`` runs; fails the test with its log when it has exited."""
        code = self._running[name].poll()
        if code is not None:
            pytest.fail(f"{name} exited with {code}:\n{self.log(name)}")
        return True

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send ``sig`` to ``name`` and wait for it to end (bounded); return its exit code."""
        process = self._running.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=EXIT_TIMEOUT)

    def kill_all(self) -> None:
        for name in reversed(list(self._running)):  # the last started may need the first
            self.kill(name)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()


def serve(processes: Processes, env: dict[str, str]) -> str:
    """The example app under uvicorn in a process of its own; returns its base URL once it
    answers."""
    port = free_port()
    processes.start(
        "uvicorn",
        [sys.executable, "-m", "uvicorn", "example_app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        processes.check_alive("uvicorn")
        try:
            return httpx.get(f"{url}/jobs/none", timeout=5).status_code == 404
        except httpx.TransportError:
            return False

    wait_for(answers, "uvicorn to answer")
    return url


def start_worker(processes: Processes, env: dict[str, str]) -> None:
    """A real Celery worker for ``example_app.celery_app``, one job at a time."""
    processes.start(
        "worker",
        [sys.executable, "-m", "celery", "-A", "example_app.celery_app", "worker",
         "--pool=solo", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
         "--without-mingle"],
        env,
    )  # fmt: skip


REDIS_SERVER = shutil.which("redis-server")


def kombu_takes_the_redis_client() -> bool:
    """True when a redis client is installed in a version kombu's Redis transport asks for.

    kombu >= 5.7 refuses redis-py < 6, which arq (the queues extra) requires: there the Redis
    variant skips, and the celery_* nox sessions run it.
    """
    try:
        installed = Version(metadata.version("redis"))
        wanted = metadata.requires("kombu") or []
    except metadata.PackageNotFoundError:
        return False
    for text in wanted:
        requirement = Requirement(text)
        if requirement.name == "redis" and (
            requirement.marker is None or requirement.marker.evaluate({"extra": "redis"})
        ):
            return requirement.specifier.contains(installed, prereleases=True)
    return True


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(
                REDIS_SERVER is None or not kombu_takes_the_redis_client(),
                reason="needs redis-server on PATH and a redis client kombu takes",
            ),
        ),
    ]
)
def broker(request: pytest.FixtureRequest, tmp_path: Path, processes: Processes) -> dict[str, str]:
    """A broker that outlives the app's processes: a sqlite file through kombu's SQLAlchemy
    transport, or a real Redis on 127.0.0.1 (when ``redis-server`` is installed). Returns the
    ``EXAMPLE_*`` variable that points the app and its worker at it."""
    if request.param == "sqlite":
        return {"EXAMPLE_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"}
    assert REDIS_SERVER is not None
    port = free_port()
    processes.start(
        "redis",
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        {},
    )  # fmt: skip

    def pongs() -> bool:
        processes.check_alive("redis")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for(pongs, "redis-server to answer PING")
    return {"EXAMPLE_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
