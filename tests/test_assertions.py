"""Assertions on the record: matching by binding, and messages that show what was scheduled."""

from __future__ import annotations

import functools
import threading
from functools import partial
from unittest.mock import ANY

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests.apps import app, async_task, boom, send_email, sync_task


def test_positional_and_keyword_forms_match_each_other(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/email/ann@example.com")

    bgtasks.assert_scheduled(send_email, "ann@example.com", "Hello")
    bgtasks.assert_scheduled(send_email, to="ann@example.com")
    bgtasks.assert_scheduled(send_email, ANY, subject="Hello")
    bgtasks.assert_scheduled("send_email", subject="Hello")
    bgtasks.assert_scheduled("tests.apps.send_email", to="ann@example.com")
    assert bgtasks.assert_scheduled_once(send_email).arguments == {
        "to": "ann@example.com",
        "subject": "Hello",
        "password": "s3cret",
    }


def test_a_mismatch_lists_what_was_scheduled(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/items/8")

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled(sync_task, "item 9")

    lines = str(raised.value).splitlines()
    assert lines[0] == "Expected a background task sync_task(label='item 9') to be scheduled."
    assert lines[1] == "Scheduled tasks (2):"
    assert lines[2].startswith("#1 sync_task(label='item 8')  succeeded in ")
    assert lines[3].startswith("#2 async_task(label='async item 8')  succeeded in ")
    assert lines[3].endswith("POST /items/8 (/items/{item_id})")


def test_arguments_that_cannot_fit_the_function_are_a_type_error(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(
        TypeError, match=r"the expected arguments don't fit sync_task\(\): .*unexpected keyword"
    ):
        bgtasks.assert_scheduled(sync_task, colour="red")


def test_scheduled_once_counts(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/1")

    with pytest.raises(AssertionError, match="to be scheduled once, it was scheduled 2 times"):
        bgtasks.assert_scheduled_once(sync_task, "item 1")


def test_not_scheduled(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.assert_not_scheduled()
    TestClient(app).post("/items/1")
    bgtasks.assert_not_scheduled(boom)

    with pytest.raises(
        AssertionError, match=r"Expected no background task to be scheduled.\nOffending tasks \(2\)"
    ):
        bgtasks.assert_not_scheduled()
    with pytest.raises(AssertionError, match=r"Expected no call to async_task to be scheduled"):
        bgtasks.assert_not_scheduled(async_task)


def test_all_succeeded_and_failed(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/fail")

    with pytest.raises(
        AssertionError, match=r"Expected every background task to succeed, 2 did not"
    ) as error:
        bgtasks.assert_all_succeeded()
    listing = str(error.value).splitlines()[1:]
    assert listing[0] == "Offending tasks (2):", "only the tasks that did not succeed are listed"
    shown = [line.split("(")[0] for line in listing if line.startswith("#")]
    assert shown == ["#2 boom", "#3 async_task"]
    with pytest.raises(
        AssertionError, match=r"^Expected a call to sync_task to be dropped without running\.\n"
    ):
        bgtasks.assert_dropped(sync_task)
    with pytest.raises(AssertionError, match=r"Expected boom to fail with ValueError"):
        bgtasks.assert_failed(boom, ValueError)
    with pytest.raises(
        AssertionError, match=r"Expected boom to fail with RuntimeError matching 'other'"
    ):
        bgtasks.assert_failed(boom, RuntimeError, match="other")
    assert bgtasks.assert_failed(boom, RuntimeError, match="task").status == "failed"
    assert bgtasks.failed == bgtasks.calls_to(boom)


def test_partials_are_matched_through(bgtasks: BackgroundTaskRecorder) -> None:
    from starlette.background import BackgroundTask

    task = BackgroundTask(functools.partial(sync_task, "bound"))
    anyio.run(task)

    assert bgtasks.calls_to(sync_task)[0].name == "sync_task"
    assert bgtasks.calls[0].request is None


def test_pending_and_dropped_empty_message(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(
        AssertionError,
        match=r"Expected a background task to be dropped without running.\n.*\n\(no background task was scheduled\)",
    ):
        bgtasks.assert_dropped()


async def post_concurrently(paths: list[str], *, to: FastAPI = app, **params: float) -> None:
    """POST to every path at once through one AsyncClient over ASGITransport."""
    transport = httpx.ASGITransport(app=to)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        anyio.create_task_group() as group,
    ):
        for path in paths:
            group.start_soon(partial(client.post, path, params=params))


@pytest.mark.anyio
async def test_150_concurrent_requests_lose_no_record(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    await post_concurrently([f"/items/{number}" for number in range(150)])

    assert len(bgtasks.calls) == 300
    assert len(bgtasks.succeeded) == 300
    assert sorted(call.index for call in bgtasks.calls) == list(range(1, 301))
    labels = {call.arguments["label"] for call in bgtasks.calls_to(sync_task)}
    assert labels == {f"item {number}" for number in range(150)}
    assert {call.request.path for call in bgtasks.calls if call.request} == {
        f"/items/{n}" for n in range(150)
    }


REQUESTS = 60
WORKER_THREADS = 40  # anyio's default limit, on asyncio and on trio


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_max_concurrency_counts_tasks_that_really_run_at_once(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str, kind: str
) -> None:
    """Async tasks all overlap; sync ones queue for anyio's 40 worker threads, and wait there.

    Each task waits, at a gate, until as many tasks as can run at once have started: the peak
    is reached however loaded the machine is, and a task that cannot reach it fails in 10 s.
    """
    arrived: list[str] = []
    lock = threading.Lock()  # sync tasks arrive from many worker threads

    def arrive() -> bool:
        """Count this task in; True for the one that makes the peak."""
        with lock:
            arrived.append(kind)
            return len(arrived) == peak

    peak = REQUESTS if kind == "async" else WORKER_THREADS
    all_in = anyio.Event()  # the async tasks wait on the loop
    threads_full = threading.Event()  # the sync ones in their worker threads

    async def async_gate() -> None:
        if arrive():
            all_in.set()
        with anyio.fail_after(10):
            await all_in.wait()

    def sync_gate() -> None:
        if arrive():
            threads_full.set()
        assert threads_full.wait(10), f"{len(arrived)} tasks ran at once, never {peak}"

    gated = FastAPI()

    @gated.post("/gated")
    async def endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(async_gate if kind == "async" else sync_gate)

    await post_concurrently(["/gated"] * REQUESTS, to=gated)

    assert len(bgtasks.succeeded) == REQUESTS
    assert bgtasks.max_concurrency == peak
