"""Fixtures for the example app's tests: settings in a temporary directory, a client, a real
SMTP server on 127.0.0.1 and a real uvicorn server in a thread."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
