"""Scenario 11: a task that blocks the event loop is caught; the ``def`` task passes.

``write_log`` (scenario 2) waits with ``time.sleep``, as the FastAPI docs' example does. As a
``def`` task Starlette runs it in a worker thread, and the server goes on serving requests.
Written as ``async def`` the same body runs on the event loop, and every other request waits
out the sleep: in production the whole server stalls, under a ``TestClient`` nobody notices.
The plugin times every step of every async task, and errors the test at teardown when one
holds the loop longer than ``bgtasks_blocking_limit`` (0.1 s), naming the line.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import write_log
from pytest_bgtasks import BackgroundTaskRecorder


async def write_log_async(message: str, log_path: Path, delay: float) -> None:
    """``write_log`` written as ``async def``: the mistake this scenario catches."""
    time.sleep(delay)  # on the event loop: no other request runs meanwhile
    with open(log_path, "a", encoding="utf-8") as file:
        file.write(message + "\n")


SOURCE, FIRST = inspect.getsourcelines(write_log_async)
SLEEP_LINE = FIRST + next(n for n, line in enumerate(SOURCE) if "time.sleep" in line)


# Strict, this test errors at teardown; the error is what the test shows, so the check is off
# here and the test asserts what the plugin measured. The error reads:
#   #1 write_log(...)  succeeded in 0.505s  POST /send-notification/ann@example.com (...)
#   fault replace(write_log, write_log_async)  held the event loop for 0.502s without yielding,
#   at .../test_event_loop.py:28 (limit 0.1s): nothing else on that loop ran meanwhile; make it
#   a `def` task, which Starlette runs in a worker thread, or await non-blocking calls in it ...
@pytest.mark.bgtasks(strict=False)
def test_an_async_def_task_that_sleeps_holds_the_event_loop(
    client: TestClient, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    settings = configure(notify_delay=0.5)
    bgtasks.replace(write_log, write_log_async)  # the endpoint's task, as if written async

    client.post("/send-notification/ann@example.com")

    (call,) = bgtasks.calls_to(write_log)
    assert call.status == "succeeded"
    assert call.blocked_for is not None and call.blocked_for >= settings.notify_delay
    assert call.blocked_at == f"{__file__}:{SLEEP_LINE}"


def test_the_def_task_sleeps_in_a_worker_thread_and_passes(
    client: TestClient, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    settings = configure(notify_delay=0.5)

    client.post("/send-notification/ann@example.com")

    (call,) = bgtasks.calls_to(write_log)
    assert call.duration is not None and call.duration >= settings.notify_delay
    assert call.blocked_for is None  # never on the event loop: nothing to judge
    assert settings.log_path.read_text() == "Notification sent to ann@example.com\n"
