"""Scenario 8: a real HTTP server. uvicorn serves the app in a thread of the test process.

Over real HTTP the client gets its response as soon as the body is sent, while the task still
runs: the opposite of ``TestClient``, which waits for the tasks. ``bgtasks.wait()`` blocks
until no request is in flight and no task is running, then the test checks the outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from example_app.settings import Settings
from example_app.tasks import write_log
from pytest_bgtasks import BackgroundTaskRecorder


def test_response_arrives_before_the_two_second_task_finishes(
    live_server: str, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    settings = configure(notify_delay=2.0)  # the default, a real "time-consuming task"
    # The real task runs, but only once the test has its response: no clock decides the order,
    # so a loaded machine cannot turn "before" into "after".
    response_seen = threading.Event()

    def after_the_response(*args: Any, **kwargs: Any) -> None:
        assert response_seen.wait(10), "the response never came while the task waited"
        write_log(*args, **kwargs)

    bgtasks.replace(write_log, after_the_response)

    response = httpx.post(f"{live_server}/send-notification/ann@example.com", timeout=10)

    assert response.json() == {"message": "Notification sent in the background"}
    call = bgtasks.assert_scheduled_once(write_log, "Notification sent to ann@example.com")
    assert call.finished_at is None  # not done: waiting for the test
    assert not settings.log_path.exists()
    response_seen.set()

    bgtasks.wait(timeout=10)

    assert call.status == "succeeded"
    assert call.duration is not None and call.duration >= 2.0
    assert settings.log_path.read_text() == "Notification sent to ann@example.com\n"


def test_a_failing_task_under_a_real_server(
    live_server: str, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    bgtasks.fail(write_log, OSError(28, "No space left on device"))

    response = httpx.post(f"{live_server}/send-notification/ann@example.com", timeout=10)
    bgtasks.wait(timeout=10)

    assert response.status_code == 200  # the client never hears of the failure
    [call] = bgtasks.failed
    assert call.func is write_log and call.request is not None
    assert str(call.request) == "POST /send-notification/ann@example.com"
    # What the operator sees: the line the app wrote to its error log.
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith("write_log: OSError: [Errno 28] No space left on device")
