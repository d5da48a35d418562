"""Scenario 13: a failing background task reaches the error reporter (Sentry).

In production a task's exception leaves the app: Sentry's ASGI middleware around it reports it,
and the server logs it. The plugin keeps it in by default (the client gets the response a real
client gets), so the test of the reporter says ``@pytest.mark.bgtasks(contain=False)``: the
exception then travels as it would without the plugin, and the test catches it where
``TestClient`` raises it.

The SDK is the real one, initialised in the test with a transport that keeps its envelopes in
memory, and its real ``SentryAsgiMiddleware`` wraps the app: nothing goes over the network, and
nothing of Sentry is mocked. Only the middleware reports: the SDK's integrations, which patch
libraries for the rest of the process (Celery's tasks, Starlette's classes), stay off, so the
other tests run on the libraries as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.transport import Transport

from example_app.settings import Settings
from example_app.tasks import write_log
from pytest_bgtasks import BackgroundTaskRecorder

DISK_FULL = OSError(28, "No space left on device")


class EnvelopesInMemory(Transport):
    """A sentry-sdk transport that keeps what the SDK would send."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def exceptions(self) -> list[list[tuple[str, str]]]:
        """Per error event sent: (type, message) of each exception in it."""
        events = [envelope.get_event() for envelope in self.envelopes]
        return [
            [(value["type"], value["value"]) for value in event["exception"]["values"]]
            for event in events
            if event is not None and "exception" in event
        ]


@pytest.fixture
def sentry() -> Iterator[EnvelopesInMemory]:
    """sentry-sdk, sending to memory; no integration patches anything."""
    transport = EnvelopesInMemory()
    sentry_sdk.init(
        dsn="https://key@sentry.invalid/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        yield transport
    finally:
        client = sentry_sdk.get_client()
        client.flush()
        client.close()
        sentry_sdk.Scope.get_global_scope().set_client(None)  # no reporting after this test


@pytest.fixture
def reported_client(app: FastAPI, sentry: EnvelopesInMemory) -> Iterator[TestClient]:
    """A client of the app behind Sentry's ASGI middleware, as it would be deployed."""
    with TestClient(SentryAsgiMiddleware(app)) as client:
        yield client


@pytest.mark.bgtasks(contain=False)
def test_sentry_reports_a_failing_task(
    reported_client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    sentry: EnvelopesInMemory,
    settings: Settings,
) -> None:
    bgtasks.fail(write_log, DISK_FULL)

    with pytest.raises(OSError, match="No space left on device"):
        reported_client.post("/send-notification/ann@example.com")  # as without the plugin

    sentry_sdk.flush()
    assert sentry.exceptions() == [[("OSError", "[Errno 28] No space left on device")]]
    [call] = bgtasks.failed  # still recorded; expected, as the injected failure
    assert call.exception is DISK_FULL and call.expected
    # The app's own error log has it too (scenario 4).
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith("write_log: OSError: [Errno 28] No space left on device")


def test_contained_sentry_sees_nothing(
    reported_client: TestClient, bgtasks: BackgroundTaskRecorder, sentry: EnvelopesInMemory
) -> None:
    """The default: the client gets its response, and the reporter never hears of it."""
    bgtasks.fail(write_log, DISK_FULL)

    response = reported_client.post("/send-notification/ann@example.com")

    assert response.json() == {"message": "Notification sent in the background"}
    sentry_sdk.flush()
    assert sentry.exceptions() == []
    bgtasks.assert_failed(write_log, OSError, match="No space left on device")
