"""Where a task failure goes: it skips its response's later tasks, and stops at the app's edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import anyio
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, boom, sync_task


@pytest.mark.parametrize("mode", ["eager", "deferred"])
def test_when_the_first_of_three_tasks_fails_all_the_rest_are_skipped(
    bgtasks: BackgroundTaskRecorder, mode: str
) -> None:
    bgtasks.fail(sync_task, ConnectionError("down"))
    with bgtasks.deferred() if mode == "deferred" else nullcontext():
        assert TestClient(app).post("/fail").json() == {"ok": True}
    bgtasks.run_all()

    first, second, third = bgtasks.calls
    assert (first.status, second.status, third.status) == ("failed", "skipped", "skipped")
    assert second.reason == third.reason == "skipped: #1 sync_task failed before it"
    assert apps.journal == []


class TaskGroupMiddleware:
    """A pure ASGI middleware that runs the app in a task group, as many real ones do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self.app, scope, receive, send)


def test_a_task_failure_inside_an_exception_group_is_contained(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", background=BackgroundTask(boom, "grouped"))

    grouped = Starlette(
        routes=[Route("/", endpoint, methods=["POST"])],
        middleware=[Middleware(TaskGroupMiddleware)],
    )
    response = TestClient(grouped).post("/")

    assert response.text == "ok"
    bgtasks.assert_failed(boom, RuntimeError, match="grouped")


def _rolling_back_app(cause: str) -> FastAPI:
    """An app whose dependency turns any error into LookupError, chained ``from`` the cause."""
    rolling_back = FastAPI()

    def session() -> Iterator[None]:
        try:
            yield
        except Exception as error:
            raise LookupError("rollback failed") from error

    @rolling_back.post("/save")
    def save(background_tasks: BackgroundTasks, _: None = Depends(session)) -> None:
        if cause == "app error":
            raise KeyError("the app's own bug")
        background_tasks.add_task(boom, "task boom")

    return rolling_back


def test_an_app_error_raised_from_another_app_error_reaches_the_client(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(LookupError, match="rollback failed") as raised:
        TestClient(_rolling_back_app("app error")).post("/save")

    assert isinstance(raised.value.__cause__, KeyError)
    bgtasks.assert_not_scheduled()


def test_an_app_error_raised_from_a_task_failure_is_contained(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    response = TestClient(_rolling_back_app("task failure")).post("/save")

    assert response.status_code == 200
    bgtasks.assert_failed(boom, RuntimeError, match="task boom")


class ErrorReporter:
    """A pure ASGI middleware that reports every error passing through it (as Sentry does)."""

    def __init__(self, app: ASGIApp, reported: list[BaseException]) -> None:
        self.app = app
        self.reported = reported

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            self.reported.append(error)
            raise


def test_a_task_failure_in_a_mounted_app_reaches_the_outer_apps_middleware(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    """As in production, the outer app sees it; only the outermost app contains it."""
    inner = FastAPI()

    @inner.post("/")
    async def endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(boom, "mounted")

    reported: list[BaseException] = []
    outer = Starlette(middleware=[Middleware(ErrorReporter, reported=reported)])
    outer.mount("/sub", inner)

    assert TestClient(outer).post("/sub/").status_code == 200

    failed = bgtasks.assert_failed(boom, RuntimeError, match="mounted")
    assert reported == [failed.exception]
