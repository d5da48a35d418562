"""Scenario 9: ``POST /signup/{email}`` announces the sign-up with ``asyncio.create_task``.

The app keeps each task until it is done and logs its failure in a done callback. The plugin
records the task like a background task (kind ``"asyncio"``), waits for it, injects a fault
into it, and would fail the test had the app lost the task or ignored its exception.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import announce_signup
from pytest_bgtasks import BackgroundTaskRecorder


def test_signup_is_announced_in_the_background(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    response = client.post("/signup/ann@example.com")
    bgtasks.wait()

    assert response.status_code == 201
    call = bgtasks.assert_scheduled_once(announce_signup, email="ann@example.com")
    assert (call.kind, call.status) == ("asyncio", "succeeded")
    assert call.request is not None and call.request.route == "/signup/{email}"
    assert settings.log_path.read_text() == "Welcome announced for ann@example.com\n"


def test_a_failed_announcement_goes_to_the_error_log(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    bgtasks.fail(announce_signup, OSError("disk full"))

    response = client.post("/signup/bob@example.com")
    bgtasks.wait()

    assert response.status_code == 201  # the client never hears of it, as in production
    call = bgtasks.assert_failed(announce_signup, OSError, match="disk full")
    assert call.kind == "asyncio"
    assert not settings.log_path.exists()
    assert "announce_signup: OSError('disk full')" in settings.error_log_path.read_text()
