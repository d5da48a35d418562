"""Scenario 2: ``POST /send-notification/{email}`` logs a line after a delay.

The delay is 2 seconds by default (``EXAMPLE_NOTIFY_DELAY``). These tests make it short, or hold
the task in deferred mode; ``test_real_server.py`` keeps the real 2 seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import write_log
from pytest_bgtasks import BackgroundTaskRecorder


def test_notification_is_logged(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    response = client.post("/send-notification/ann@example.com")

    assert response.status_code == 200
    assert response.json() == {"message": "Notification sent in the background"}
    call = bgtasks.assert_scheduled_once(write_log, "Notification sent to ann@example.com")
    assert call.status == "succeeded"
    assert call.request is not None and call.request.route == "/send-notification/{email}"
    assert settings.log_path.read_text() == "Notification sent to ann@example.com\n"


def test_each_notification_appends_a_line(client: TestClient, settings: Settings) -> None:
    for email in ("ann@example.com", "bob@example.com"):
        client.post(f"/send-notification/{email}")

    assert settings.log_path.read_text().splitlines() == [
        "Notification sent to ann@example.com",
        "Notification sent to bob@example.com",
    ]


def test_deferred_the_client_does_not_wait_for_the_delay(
    client: TestClient, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    settings = configure(notify_delay=0.5)

    with bgtasks.deferred():  # or @pytest.mark.bgtasks(mode="deferred") on the test
        response = client.post("/send-notification/ann@example.com")

    # A plain TestClient waits for the tasks; here the task is held, not run: the response came
    # without the half-second delay (the record says so, where a clock could be slowed down).
    assert response.json() == {"message": "Notification sent in the background"}
    [held] = bgtasks.held
    assert held.arguments == {
        "message": "Notification sent to ann@example.com",
        "log_path": settings.log_path,
        "delay": 0.5,
    }
    assert not settings.log_path.exists()  # nothing written yet

    [ran] = bgtasks.run_all(timeout=5)

    assert ran is held and ran.status == "succeeded"
    assert ran.duration is not None and ran.duration >= 0.5
    assert settings.log_path.read_text() == "Notification sent to ann@example.com\n"
