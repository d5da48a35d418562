"""Scenario 7: background tasks are lost when the process dies after the response.

A background task lives only in the memory of the process that answered the request. If that
process dies (a deploy, a crash, an out-of-memory kill) after the response went out and
before the task ran, the client was told "Data is being processed", and nothing ever will be.
Deferred mode holds the tasks; ``bgtasks.discard()`` throws them away as that death would.

The remedy is not in the test: put work that must happen in a durable queue (Celery, RQ, arq,
Dramatiq, or a jobs table that a worker polls), which keeps it until a worker has done it.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import process_data, write_log
from example_app.tests.test_process import SALES, SUMMARY
from pytest_bgtasks import BackgroundTaskRecorder

pytestmark = pytest.mark.bgtasks(mode="deferred")


def test_held_tasks_are_lost_when_the_process_dies(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    response = client.post("/process/", json=SALES)
    job_id = response.json()["job_id"]
    client.post("/send-notification/ann@example.com")

    assert response.json()["message"] == "Data is being processed"  # the promise was made
    assert [call.func for call in bgtasks.held] == [process_data, write_log]

    lost = bgtasks.discard()  # the process dies here, before the tasks ran

    assert [call.status for call in lost] == ["discarded", "discarded"]
    assert bgtasks.held == []
    # The job stays pending for ever, no log line is written, and no error says so.
    assert client.get(f"/jobs/{job_id}").json()["status"] == "pending"
    assert not settings.log_path.exists()
    assert not settings.error_log_path.exists()


def test_the_same_tasks_complete_when_the_process_lives(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    job_id = client.post("/process/", json=SALES).json()["job_id"]
    client.post("/send-notification/ann@example.com")
    assert client.get(f"/jobs/{job_id}").json()["status"] == "pending"

    bgtasks.run_all(timeout=5)

    bgtasks.assert_all_succeeded()
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "done" and job["summary"] == SUMMARY
    assert settings.log_path.read_text() == "Notification sent to ann@example.com\n"
