"""``wait()`` and ``wait_async()`` return once the app is idle, and name what is still busy."""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder


def gated_app(started: anyio.Event, release: anyio.Event, *, block: str) -> Starlette:
    """An app blocked until ``release``: in its endpoint, or in the task it schedules."""

    async def gated_task() -> str:
        started.set()
        await release.wait()
        return "done"

    async def endpoint(request: Request) -> PlainTextResponse:
        if block == "endpoint":
            started.set()
            await release.wait()
        return PlainTextResponse("ok", background=BackgroundTask(gated_task))

    return Starlette(routes=[Route("/", endpoint, methods=["POST"])])


@pytest.mark.anyio
async def test_wait_async_returns_once_the_running_task_finishes(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    started, release = anyio.Event(), anyio.Event()
    transport = httpx.ASGITransport(app=gated_app(started, release, block="task"))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(client.post, "/")
        await started.wait()
        (call,) = bgtasks.calls
        assert call.status == "running"

        release.set()
        await bgtasks.wait_async(timeout=60)

        assert (call.status, call.result) == ("succeeded", "done")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("block", "busy"),
    [("task", r"#1 gated_task\(\)  running"), ("endpoint", r"\(a request is still in flight\)")],
)
async def test_wait_async_times_out_naming_what_is_busy(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str, block: str, busy: str
) -> None:
    started, release = anyio.Event(), anyio.Event()
    transport = httpx.ASGITransport(app=gated_app(started, release, block=block))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(client.post, "/")
        await started.wait()

        with pytest.raises(TimeoutError, match=rf"still busy after 0.05s:\n{busy}"):
            await bgtasks.wait_async(timeout=0.05)

        release.set()
        await bgtasks.wait_async(timeout=60)
    bgtasks.assert_all_succeeded()


def test_wait_returns_when_the_last_task_finishes(bgtasks: BackgroundTaskRecorder) -> None:
    """The task finishes while wait() already waits: wait() must be woken, not time out.

    If the idle notification were lost, wait(timeout=60) would sit out its full minute.
    """
    started, release = threading.Event(), threading.Event()

    def gated_task() -> str:
        started.set()
        release.wait()
        return "done"

    def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", background=BackgroundTask(gated_task))

    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
    client = threading.Thread(target=TestClient(app).post, args=("/",))
    client.start()
    started.wait()

    release.set()
    bgtasks.wait(timeout=60)

    (call,) = bgtasks.calls
    assert (call.status, call.result) == ("succeeded", "done")
    client.join()


def test_teardown_returns_when_a_released_hang_ends(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    """Teardown releases the hang, then waits: it must be woken when the task ends."""
    pytester.makeini("[pytest]\nbgtasks_teardown_timeout = 60\n")
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import threading
        import anyio
        from starlette.background import BackgroundTask
        from apps import sync_task

        seen = []

        def test_hang(bgtasks):
            claimed = threading.Event()

            def signal_the_claim(call):
                claimed.set()
                return True

            bgtasks.hang(sync_task, when=signal_the_claim)
            threading.Thread(target=anyio.run, args=(BackgroundTask(sync_task, "x"),)).start()
            claimed.wait()
            seen.append(bgtasks.calls)

        def test_after():
            ((call,),) = seen
            assert (call.status, call.reason) == ("cancelled", "hung by fault until the test ended")
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
