"""Deferred mode: hold tasks, let responses return at once, run them when the test says."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Request
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder, BgTasksWarning
from pytest_bgtasks._dependencies import fastapi_version, production_closes_first
from tests import apps
from tests.apps import app, boom, sync_task

pytestmark = pytest.mark.bgtasks(mode="deferred")


def test_held_tasks_do_not_run_until_run_all(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/slow", params={"seconds": 1.0})

    # Held, not run by the client, and nothing in the journal.
    (held,) = bgtasks.held
    assert held.status == "held" and bgtasks.pending == [held]
    assert apps.journal == []

    assert bgtasks.run_all() == [held]
    assert held.status == "succeeded"
    assert [label for label, _ in apps.journal] == ["slow"]


def test_run_all_keeps_order_and_skips_the_rest_of_a_failed_response(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    client = TestClient(app)
    client.post("/fail")
    client.post("/items/9")

    ran = bgtasks.run_all()

    assert [call.status for call in ran] == ["succeeded", "failed", "succeeded", "succeeded"]
    assert [call.status for call in bgtasks.calls] == [
        "succeeded",
        "failed",
        "skipped",
        "succeeded",
        "succeeded",
    ]
    assert [label for label, _ in apps.journal] == ["before", "item 9", "async item 9"]
    bgtasks.assert_failed(boom)


def test_run_next_and_run_give_step_by_step_control(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/items/1")
    first, second = bgtasks.held

    assert bgtasks.run(second) is second
    assert [label for label, _ in apps.journal] == ["async item 1"]
    assert bgtasks.run_next() is first
    assert bgtasks.run_next() is None
    with pytest.raises(ValueError, match=r"run\(\) takes a task held in deferred mode"):
        bgtasks.run(first)


def test_discard_loses_the_held_tasks_like_a_crash(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/items/1")

    discarded = bgtasks.discard()

    assert [call.status for call in discarded] == ["discarded", "discarded"]
    assert {call.reason for call in discarded} == {"discarded by the test, never ran"}
    assert bgtasks.run_all() == []
    assert apps.journal == []


def test_held_tasks_left_at_teardown_are_not_an_error(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/items/1")
    assert len(bgtasks.held) == 2


def test_run_all_timeout_names_the_running_task(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/slow", params={"seconds": 0.5})

    with pytest.raises(
        TimeoutError, match=r"run_all\(\) timed out after 0.05s while running #1 slow_task"
    ):
        bgtasks.run_all(timeout=0.05)


def test_tasks_scheduled_while_draining_run_too(bgtasks: BackgroundTaskRecorder) -> None:
    chained = FastAPI()

    def second() -> None:
        apps.record("second")

    def first() -> None:
        apps.record("first")
        TestClient(chained).post("/second")

    @chained.post("/first")
    def first_endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(first)

    @chained.post("/second")
    def second_endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(second)

    TestClient(chained).post("/first")
    assert len(bgtasks.run_all()) == 2
    assert [label for label, _ in apps.journal] == ["first", "second"]


def test_async_tasks_run_on_the_apps_loop_while_it_lives(bgtasks: BackgroundTaskRecorder) -> None:
    """Loop-bound resources made in the lifespan keep working: the task goes back to that loop."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        yield {"loop": asyncio.get_running_loop(), "queue": asyncio.Queue()}

    app_with_lifespan = FastAPI(lifespan=lifespan)

    async def on_app_loop(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str]) -> bool:
        await queue.put("job")
        return asyncio.get_running_loop() is loop and await queue.get() == "job"

    @app_with_lifespan.post("/loop")
    async def endpoint(request: Request, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(on_app_loop, request.state.loop, request.state.queue)

    with TestClient(app_with_lifespan) as client:
        client.post("/loop")
        (call,) = bgtasks.run_all()

    assert (call.status, call.result) == ("succeeded", True)


@pytest.mark.parametrize("concurrent", [False, True])
def test_running_held_tasks_after_yield_dependencies_closed_warns(
    bgtasks: BackgroundTaskRecorder, concurrent: bool
) -> None:
    with_db = FastAPI()
    state = {"open": False}

    def get_db() -> Iterator[dict[str, bool]]:
        state["open"] = True
        yield state
        state["open"] = False

    def uses_db(db: dict[str, bool]) -> bool:
        return db["open"]

    @with_db.post("/save")
    def save(background_tasks: BackgroundTasks, db: dict[str, bool] = Depends(get_db)) -> None:
        background_tasks.add_task(uses_db, db)

    TestClient(with_db).post("/save")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BgTasksWarning)
        with pytest.raises(BgTasksWarning):
            bgtasks.run_all(concurrent=concurrent)
    assert len(bgtasks.held) == 1, "a warning turned into an error must not lose the task"

    with pytest.warns(
        BgTasksWarning, match=r"POST /save has dependencies with yield \(.*get_db\)"
    ) as warned:
        (call,) = bgtasks.run_all(concurrent=concurrent)
    assert call.result is False, "the dependency had closed before the held task ran"
    assert warned[0].filename == __file__, "the warning points at the test's line"


@pytest.mark.skipif(
    production_closes_first(fastapi_version(), None),
    reason="this FastAPI closes yield dependencies before the tasks too: no warning",
)
def test_the_warning_names_async_and_class_based_yield_dependencies(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    pooled = FastAPI()

    async def get_session() -> AsyncIterator[str]:
        yield "session"

    class Pool:
        def __call__(self) -> Iterator[str]:
            yield "connection"

    def settings() -> str:  # no yield: nothing closes
        return "settings"

    @pooled.post("/save")
    def save(
        background_tasks: BackgroundTasks,
        session: str = Depends(get_session),
        connection: str = Depends(Pool()),
        config: str = Depends(settings),
    ) -> None:
        background_tasks.add_task(sync_task, f"{session} {connection} {config}")

    TestClient(pooled).post("/save")
    with pytest.warns(BgTasksWarning) as warned:
        bgtasks.run_all()

    message = str(warned[0].message)
    assert message.startswith("POST /save has dependencies with yield (Pool, get_session);")
    assert apps.journal[0][0] == "session connection settings"


@pytest.mark.bgtasks(mode="eager")
def test_deferred_block_holds_only_what_it_schedules(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    with bgtasks.deferred():
        client.post("/items/1")
    client.post("/items/2")

    assert [call.arguments["label"] for call in bgtasks.held] == ["item 1", "async item 1"]
    assert [label for label, _ in apps.journal] == ["item 2", "async item 2"]


def test_run_all_inside_an_event_loop_points_to_run_all_async(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    async def misuse() -> None:
        bgtasks.run_all()

    with pytest.raises(RuntimeError, match=r"use await bgtasks.run_all_async\(\) instead"):
        anyio.run(misuse)


@pytest.mark.anyio
async def test_run_all_async_on_the_test_loop(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        await client.post("/items/4")
    assert apps.journal == []

    ran = await bgtasks.run_all_async(timeout=5)

    assert [call.status for call in ran] == ["succeeded", "succeeded"]
    assert [label for label, _ in apps.journal] == ["item 4", "async item 4"]


@pytest.mark.anyio
async def test_run_all_async_timeout_cancels_the_running_task(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        await client.post("/slow-async", params={"seconds": 5})

    with pytest.raises(TimeoutError, match="while running #1 slow_async_task"):
        await bgtasks.run_all_async(timeout=0.05)
    assert bgtasks.calls[0].status == "cancelled"


def test_a_task_object_reused_by_two_responses_runs_twice(bgtasks: BackgroundTaskRecorder) -> None:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    shared = BackgroundTask(sync_task, "shared")
    reusing = Starlette(
        routes=[
            Route("/", lambda request: PlainTextResponse("x", background=shared), methods=["POST"])
        ]
    )
    client = TestClient(reusing)
    client.post("/")
    client.post("/")

    assert len(bgtasks.run_all()) == 2
    assert [label for label, _ in apps.journal] == ["shared", "shared"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner arrived in Python 3.11")
def test_a_stopped_loop_falls_back_to_a_fresh_one(bgtasks: BackgroundTaskRecorder) -> None:
    async def post() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            await client.post("/items/6")

    with asyncio.Runner() as runner:  # its loop stays open, stopped, between runs
        runner.run(post())
        ran = bgtasks.run_all(timeout=5)

    assert [call.status for call in ran] == ["succeeded", "succeeded"]


def test_run_all_timeout_cancels_an_async_task(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/slow-async", params={"seconds": 5})

    with pytest.raises(TimeoutError, match="while running #1 slow_async_task"):
        bgtasks.run_all(timeout=0.1)
    assert bgtasks.calls[0].status == "cancelled"
    assert apps.journal == []


def test_dependencies_scoped_to_the_function_do_not_warn(bgtasks: BackgroundTaskRecorder) -> None:
    import inspect

    if "scope" not in inspect.signature(Depends).parameters:
        pytest.skip("Depends(scope=...) arrived in FastAPI 0.121")
    scoped = FastAPI()

    def get_db() -> Iterator[None]:
        yield

    @scoped.post("/save")
    def save(
        background_tasks: BackgroundTasks, _: None = Depends(get_db, scope="function")
    ) -> None:
        background_tasks.add_task(sync_task, "saved")

    TestClient(scoped).post("/save")
    (call,) = bgtasks.run_all()  # under -W error, a warning here would fail the test
    assert call.status == "succeeded"
