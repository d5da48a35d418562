"""Scenario 4: a background task that fails is written to the error log.

The app's ``BackgroundJSONResponse`` (background.py) logs any exception a task raises, then
lets it go on to the server. ``bgtasks.fail`` makes a task fail on purpose, without touching
the app, to prove it.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import write_log
from pytest_bgtasks import BackgroundTaskRecorder


def test_failing_task_is_written_to_the_error_log(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    bgtasks.fail(write_log, OSError(28, "No space left on device"))

    response = client.post("/send-notification/ann@example.com")

    # The client got its normal response: the task failed after it was sent.
    assert response.json() == {"message": "Notification sent in the background"}
    [call] = bgtasks.failed
    assert call.func is write_log and isinstance(call.exception, OSError)
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith(
        "Error in background task write_log: OSError: [Errno 28] No space left on device"
    )
    assert not settings.log_path.exists()


def test_a_transient_failure_affects_one_request_only(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    bgtasks.fail(write_log, TimeoutError("disk busy"), times=1)  # the first run only

    client.post("/send-notification/ann@example.com")
    client.post("/send-notification/bob@example.com")

    assert [call.status for call in bgtasks.calls_to(write_log)] == ["failed", "succeeded"]
    assert settings.log_path.read_text() == "Notification sent to bob@example.com\n"
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith("write_log: TimeoutError: disk busy")
