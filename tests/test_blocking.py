"""Async tasks that hold the event loop: measured per step, located, and judged at teardown."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import blocking_app
from tests.blocking_app import (
    app,
    collect_garbage,
    idle,
    sleep_in_thread,
    stall,
    wait_on_event,
)

APP_FILE = blocking_app.__file__
SOURCE = Path(APP_FILE).read_text(encoding="utf-8")
#: Seconds a blocking task holds the loop: five times the default limit, so the watchdog has
#: time to see it however loaded the machine is.
HOLD = 0.5


def line_of(marker: str) -> int:
    """The line of ``blocking_app.py`` that carries ``marker`` in a comment."""
    return next(n for n, text in enumerate(SOURCE.splitlines(), 1) if f"# {marker}" in text)


STALL_LINE = line_of("STALL")
WAIT_LINE = line_of("WAIT")


@pytest.fixture
def server_url() -> Iterator[str]:
    """``app`` served by a real uvicorn in a thread of this process."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.bgtasks(strict=False)  # the teardown error itself is shown by the pytester tests
@pytest.mark.parametrize(
    ("path", "func", "line"),
    [
        (f"/stall/{HOLD}", stall, STALL_LINE),
        (f"/wait/{HOLD}", wait_on_event, WAIT_LINE),
        (f"/spawn-stall/{HOLD}", stall, STALL_LINE),
    ],
    ids=["background", "stdlib-frames-skipped", "asyncio"],
)
def test_through_testclient_the_longest_step_and_its_line_are_recorded(
    bgtasks: BackgroundTaskRecorder, path: str, func: object, line: int
) -> None:
    with TestClient(app) as client:
        client.post(path)
        bgtasks.wait()

    (call,) = bgtasks.calls_to(func)  # type: ignore[arg-type]
    assert call.status == "succeeded"
    assert call.blocked_for is not None and call.blocked_for >= HOLD
    assert call.blocked_at == f"{APP_FILE}:{line}"


async def post_through_asgi_transport(path: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post(path)


@pytest.mark.bgtasks(strict=False)
@pytest.mark.anyio
async def test_through_asgi_transport_on_asyncio_and_trio(bgtasks: BackgroundTaskRecorder) -> None:
    await post_through_asgi_transport(f"/stall/{HOLD}")

    (call,) = bgtasks.calls_to(stall)
    assert call.blocked_for is not None and call.blocked_for >= HOLD
    assert call.blocked_at == f"{APP_FILE}:{STALL_LINE}"


@pytest.mark.bgtasks(strict=False)
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio apps have no asyncio tasks
async def test_an_asyncio_task_through_asgi_transport(bgtasks: BackgroundTaskRecorder) -> None:
    await post_through_asgi_transport(f"/spawn-stall/{HOLD}")
    await bgtasks.wait_async()

    (call,) = bgtasks.calls_to(stall)
    assert call.blocked_for is not None and call.blocked_for >= HOLD
    assert call.blocked_at == f"{APP_FILE}:{STALL_LINE}"


@pytest.mark.bgtasks(strict=False)
@pytest.mark.parametrize("path", [f"/stall/{HOLD}", f"/spawn-stall/{HOLD}"])
def test_through_a_real_server(bgtasks: BackgroundTaskRecorder, server_url: str, path: str) -> None:
    httpx.post(f"{server_url}{path}")
    bgtasks.wait(timeout=10)

    (call,) = bgtasks.calls_to(stall)
    assert call.blocked_for is not None and call.blocked_for >= HOLD
    assert call.blocked_at == f"{APP_FILE}:{STALL_LINE}"


@pytest.mark.bgtasks(mode="deferred", strict=False)
def test_a_held_task_is_measured_when_it_runs(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post(f"/stall/{HOLD}")
        (held,) = bgtasks.held
        assert held.blocked_for is None  # not run yet
        bgtasks.run_all()

    assert held.blocked_for is not None and held.blocked_for >= HOLD
    assert held.blocked_at == f"{APP_FILE}:{STALL_LINE}"


def test_sync_tasks_run_in_a_thread_and_are_never_measured(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post(f"/sync/{HOLD}")
        client.post("/idle")

    (sync,) = bgtasks.calls_to(sleep_in_thread)
    assert sync.duration is not None and sync.duration >= HOLD
    assert (sync.blocked_for, sync.blocked_at) == (None, None)
    (quick,) = bgtasks.calls_to(idle)
    assert quick.blocked_for is not None and quick.blocked_at is None


def test_garbage_collection_pauses_are_not_counted(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post(f"/collect/{HOLD}")  # one step of collections, strictly checked

    (call,) = bgtasks.calls_to(collect_garbage)
    assert call.duration is not None and call.duration >= HOLD
    assert call.blocked_for is not None and call.blocked_at is None


@pytest.mark.bgtasks(blocking_limit=None)
def test_no_limit_still_measures(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post("/stall/0.2")

    (call,) = bgtasks.calls_to(stall)
    assert call.blocked_for is not None and call.blocked_for >= 0.2
    assert call.blocked_at is None  # no limit: no watchdog looked for the line


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with ``blocking_app`` beside its tests."""
    pytester.makepyfile(blocking_app=SOURCE)
    return pytester


def test_the_teardown_error_names_the_task_the_seconds_and_the_line(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        f"""
        import pytest
        from fastapi.testclient import TestClient
        from blocking_app import app, nibble, sleep_in_thread

        def test_background(bgtasks):
            TestClient(app).post("/stall/{HOLD}")

        def test_asyncio(bgtasks):
            with TestClient(app) as client:
                client.post("/spawn-stall/{HOLD}")
                bgtasks.wait()

        def test_never_blocks(bgtasks):
            TestClient(app).post("/idle")

        @pytest.mark.bgtasks(blocking_limit=0.5)
        def test_blocks_in_short_steps(bgtasks):
            TestClient(app).post("/nibble/12/0.05")  # 0.6 s in all, 0.05 s at a time
            (call,) = bgtasks.calls_to(nibble)
            assert call.duration >= 0.6 and call.blocked_for >= 0.05

        @pytest.mark.bgtasks(blocking_limit=None)
        def test_no_limit(bgtasks):
            TestClient(app).post("/stall/{HOLD}")

        def test_sync_task(bgtasks):
            TestClient(app).post("/sync/{HOLD}")
            assert bgtasks.calls_to(sleep_in_thread)[0].blocked_for is None
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=6, errors=2)
    where = f"*blocking_app.py:{STALL_LINE}"
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_background*",
            "pytest-bgtasks: 1 background task problem(s):",
            f"  #1 stall(seconds={HOLD})  succeeded in *s  POST /stall/{HOLD} (*)  held the event"
            f" loop for *s without yielding, at {where} (limit 0.1s): nothing else on that loop"
            " ran meanwhile; make it a `def` task, which Starlette runs in a worker thread, or"
            " await non-blocking calls in it (`await anyio.to_thread.run_sync(func)` for a"
            " blocking one); or allow it with @pytest.mark.bgtasks(blocking_limit=...)",
            "*ERROR at teardown of test_asyncio*",
            f"  #1 stall(seconds={HOLD}) (asyncio task)  succeeded in *s  POST /spawn-stall/{HOLD} (*)"
            f"  created at *blocking_app.py:*  held the event loop for *s without yielding, at"
            f" {where} (limit 0.1s): nothing else on that loop ran meanwhile; await non-blocking"
            " calls in it (`await anyio.to_thread.run_sync(func)` or `asyncio.to_thread` for a"
            " blocking one); or allow it with @pytest.mark.bgtasks(blocking_limit=...)",
        ]
    )


def test_the_ini_sets_the_limit_and_a_marker_overrides_it(inner: pytest.Pytester) -> None:
    inner.makeini("[pytest]\nbgtasks_blocking_limit = 10\n")
    inner.makepyfile(
        f"""
        import pytest
        from fastapi.testclient import TestClient
        from blocking_app import app

        def test_under_the_ini_limit(bgtasks):
            TestClient(app).post("/stall/{HOLD}")

        @pytest.mark.bgtasks(blocking_limit=0.1)
        def test_marker(bgtasks):
            TestClient(app).post("/stall/{HOLD}")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_marker*", "*(limit 0.1s)*"])


def test_the_ini_can_turn_the_limit_off(inner: pytest.Pytester) -> None:
    inner.makeini("[pytest]\nbgtasks_blocking_limit = none\n")
    inner.makepyfile(
        f"""
        from fastapi.testclient import TestClient
        from blocking_app import app

        def test_no_limit(bgtasks):
            TestClient(app).post("/stall/{HOLD}")
            assert bgtasks.calls[0].blocked_for >= {HOLD}
        """
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=120).assert_outcomes(passed=1)
