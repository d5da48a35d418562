"""Scenario 6: many background tasks at once are bounded by a configurable limit.

60 requests go through ``httpx.AsyncClient`` over ``httpx.ASGITransport`` in one event loop,
so they really overlap. Each schedules ``write_log``; the app runs at most
``settings.max_concurrent_tasks`` of them at once (``EXAMPLE_MAX_CONCURRENT_TASKS``).

``bgtasks.max_concurrency`` is the peak number of tasks *running* at once: counted from the
moment Starlette calls the task until it returns. The app takes its limiter slot *before*
calling the task (background.py), so a task waiting for a slot is not running yet, and the
peak is the limit. Had the task taken the slot itself (``async with limiter:`` inside the
task function), every waiting task would already count as running, and the peak would be
the number of requests in flight: a measure of the pressure on the limiter, not of the
limit. Measure the limit where the limit is applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import httpx
import pytest
from fastapi import FastAPI

from example_app.settings import Settings
from pytest_bgtasks import BackgroundTaskRecorder

REQUESTS = 60
LIMIT = 5
DELAY = 0.05


@pytest.mark.anyio
async def test_concurrent_tasks_are_bounded_by_the_configured_limit(
    app: FastAPI, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    settings = configure(max_concurrent_tasks=LIMIT, notify_delay=DELAY)
    emails = [f"user{number}@example.com" for number in range(REQUESTS)]
    responses: list[httpx.Response] = []

    async def notify(email: str) -> None:
        responses.append(await client.post(f"/send-notification/{email}"))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for email in emails:
                group.start_soon(notify, email)
        elapsed = time.monotonic() - started

    assert [response.status_code for response in responses] == [200] * REQUESTS
    assert len(bgtasks.succeeded) == REQUESTS
    # Never more than the limit at once, and the limit was reached: the requests overlapped.
    assert bgtasks.max_concurrency == LIMIT
    # The same bound seen from the clock: LIMIT at a time, DELAY seconds each, at the least.
    assert elapsed >= REQUESTS / LIMIT * DELAY
    lines = settings.log_path.read_text().splitlines()
    assert sorted(lines) == sorted(f"Notification sent to {email}" for email in emails)
