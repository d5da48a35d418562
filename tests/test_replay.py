"""Deferred replay off the main path: held by trio, by another loop alive or gone, or failing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.conftest import skip_sync_client_in_trio_on_anyio_3

pytestmark = pytest.mark.bgtasks(mode="deferred")


def where() -> list[str]:
    """The kind of event loop running here, and the thread it runs in."""
    try:
        asyncio.get_running_loop()
        kind = "asyncio"
    except RuntimeError:
        kind = "trio"
    return [kind, threading.current_thread().name]


async def where_task() -> list[str]:
    return where()


def leave() -> None:
    raise SystemExit(3)


async def endpoint(request: Request) -> JSONResponse:
    tasks = BackgroundTasks()
    tasks.add_task(where_task)
    tasks.add_task(apps.sync_task, "sync")
    return JSONResponse(where(), background=tasks)


async def leave_endpoint(request: Request) -> JSONResponse:
    tasks = BackgroundTasks()
    tasks.add_task(leave)
    return JSONResponse(where(), background=tasks)


app = Starlette(
    routes=[
        Route("/", endpoint, methods=["POST"]),
        Route("/leave", leave_endpoint, methods=["POST"]),
    ]
)


async def post(path: str = "/") -> list[str]:
    """POST over ASGITransport, on the running loop; the endpoint's ``where()``."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer: list[str] = (await c.post(path)).json()
        return answer


def assert_both_ran(bgtasks: BackgroundTaskRecorder, ran: list[Any]) -> list[str]:
    """Both held tasks ran and succeeded; the async one's ``where()``."""
    assert [call.status for call in ran] == ["succeeded", "succeeded"]
    assert apps.journal[0][0] == "sync"
    assert bgtasks.held == []
    result: list[str] = ran[0].result
    return result


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("blocking_call", "instead"),
    [
        (lambda bgtasks: bgtasks.run_all(timeout=5), "await bgtasks.run_all_async()"),
        (lambda bgtasks: bgtasks.run_next(), "await bgtasks.run_all_async()"),
        (lambda bgtasks: bgtasks.wait(timeout=5), "await bgtasks.wait_async()"),
        (lambda bgtasks: bgtasks.shutdown(), "await bgtasks.shutdown_async()"),
    ],
    ids=["run_all", "run_next", "wait", "shutdown"],
)
async def test_blocking_calls_inside_a_running_loop_point_to_the_async_ones(
    bgtasks: BackgroundTaskRecorder,
    anyio_backend: str,
    blocking_call: Callable[[BackgroundTaskRecorder], object],
    instead: str,
) -> None:
    await post()

    with pytest.raises(RuntimeError, match=rf"inside a running event loop.*use {instead}"):
        blocking_call(bgtasks)

    assert len(bgtasks.held) == 2, "the refused call must not lose the held tasks"
    assert_both_ran(bgtasks, await bgtasks.run_all_async(timeout=60))


def test_tasks_held_by_a_live_trio_loop_run_on_it(bgtasks: BackgroundTaskRecorder) -> None:
    with anyio.from_thread.start_blocking_portal(backend="trio") as portal:
        endpoint_ran_on = portal.call(post)
        ran = bgtasks.run_all(timeout=60)

    assert endpoint_ran_on[0] == "trio"
    assert assert_both_ran(bgtasks, ran) == endpoint_ran_on


def test_tasks_held_by_a_trio_loop_that_ended_run_on_a_fresh_trio_loop(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    endpoint_ran_on = anyio.run(post, backend="trio")

    ran = bgtasks.run_all(timeout=60)

    kind, thread = assert_both_ran(bgtasks, ran)
    assert (kind, endpoint_ran_on[0]) == ("trio", "trio")
    assert thread != endpoint_ran_on[1], "a fresh loop runs in the replay thread"


@pytest.mark.anyio
async def test_run_all_async_sends_tasks_back_to_the_live_loop_that_held_them(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    skip_sync_client_in_trio_on_anyio_3(anyio_backend)
    with TestClient(app) as client:  # its loop lives in a portal thread until the block ends
        endpoint_ran_on = client.post("/").json()
        ran = await bgtasks.run_all_async(timeout=60)

    assert endpoint_ran_on[1] != threading.current_thread().name
    assert assert_both_ran(bgtasks, ran) == endpoint_ran_on


@pytest.mark.anyio
async def test_run_all_async_runs_tasks_whose_loop_is_gone_on_this_loop(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    skip_sync_client_in_trio_on_anyio_3(anyio_backend)
    TestClient(app).post("/")  # without `with`, the request's loop ends with the request

    ran = await bgtasks.run_all_async(timeout=60)

    assert assert_both_ran(bgtasks, ran) == [anyio_backend, threading.current_thread().name]


@pytest.mark.parametrize(
    "replay",
    [
        lambda bgtasks: bgtasks.run_all(),
        lambda bgtasks: bgtasks.run_next(),
        lambda bgtasks: bgtasks.run(bgtasks.held[0]),
    ],
    ids=["run_all", "run_next", "run"],
)
def test_a_base_exception_in_a_replayed_task_reaches_the_caller(
    bgtasks: BackgroundTaskRecorder, replay: Callable[[BackgroundTaskRecorder], object]
) -> None:
    TestClient(app).post("/leave")

    with pytest.raises(SystemExit):
        replay(bgtasks)

    bgtasks.assert_failed(leave, SystemExit)
