"""Eager mode runs tasks as Starlette does: after the response, in order, where Starlette would."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request, Response
from starlette.applications import Starlette
from starlette.background import BackgroundTasks as StarletteBackgroundTasks
from starlette.middleware.base import RequestResponseEndpoint
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, async_task, boom, sync_task
from tests.conftest import starlette_before


def test_tasks_run_in_order_sync_in_worker_threads_async_on_the_loop(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app).post("/items/3")

    assert [label for label, _ in apps.journal] == ["item 3", "async item 3"]
    (_, sync_thread), (_, async_thread) = apps.journal
    assert sync_thread.startswith("AnyIO worker thread")
    assert not async_thread.startswith("AnyIO worker thread")
    first, second = bgtasks.calls
    assert first.finished_at is not None and second.started_at is not None
    assert first.finished_at <= second.started_at


def test_a_failing_task_skips_the_rest_of_its_response_and_the_client_gets_the_response(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    response = TestClient(app).post("/fail")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert [label for label, _ in apps.journal] == ["before"]
    before, failed, after = bgtasks.calls
    assert (before.status, failed.status, after.status) == ("succeeded", "failed", "skipped")
    assert isinstance(failed.exception, RuntimeError)
    assert failed.traceback is not None and "RuntimeError: task boom" in failed.traceback
    assert after.reason == "skipped: #2 boom failed before it"
    bgtasks.assert_failed(boom, RuntimeError, match="task boom")


def test_a_failure_skips_only_its_own_response(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post("/fail")
        client.post("/items/5")

    bgtasks.assert_failed(boom)
    assert bgtasks.assert_scheduled(sync_task, "item 5").status == "succeeded"
    assert bgtasks.assert_scheduled(async_task, "async item 5").status == "succeeded"


def test_injected_tasks_replaced_by_an_explicit_background_are_dropped(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app).post("/override")

    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == (
        "dropped: the response brought its own background (Response(background=...)), which"
        " replaces the injected tasks"
    )
    assert bgtasks.assert_scheduled(async_task, "explicit").status == "succeeded"


def test_tasks_before_an_http_exception_are_dropped(bgtasks: BackgroundTaskRecorder) -> None:
    assert TestClient(app).get("/missing").status_code == 404

    (dropped,) = bgtasks.assert_dropped()
    assert dropped.reason == (
        "dropped: the app answered 404, and an error response does not run the injected tasks"
    )


def test_a_400_answer_drops_the_tasks_as_any_error_response_does(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    bad_request = FastAPI()

    @bad_request.post("/signup")
    async def signup(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(sync_task, "welcome")
        raise HTTPException(status_code=400, detail="bad e-mail")

    assert TestClient(bad_request).post("/signup").status_code == 400

    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == (
        "dropped: the app answered 400, and an error response does not run the injected tasks"
    )
    assert apps.journal == []


def test_a_task_that_schedules_work_no_response_will_run_has_it_dropped(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    def follow_up(label: str) -> None:
        tasks = StarletteBackgroundTasks()  # made after the response, handed to none
        tasks.add_task(sync_task, label)

    async def signup(request: StarletteRequest) -> PlainTextResponse:
        tasks = StarletteBackgroundTasks()
        tasks.add_task(follow_up, "too late")
        return PlainTextResponse("ok", background=tasks)

    client = TestClient(Starlette(routes=[Route("/", signup, methods=["POST"])]))
    assert client.post("/").status_code == 200

    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == (
        "dropped: scheduled after the response's background had started (in a dependency's"
        " exit code, or a task)"
    )
    assert str(dropped.request) == "POST /", "the request of the task that made it"
    assert [call.status for call in bgtasks.calls_to(follow_up)] == ["succeeded"]
    assert apps.journal == []


def test_tasks_a_response_never_carried_are_dropped(bgtasks: BackgroundTaskRecorder) -> None:
    async def forgetful(request: StarletteRequest) -> PlainTextResponse:
        tasks = StarletteBackgroundTasks()
        tasks.add_task(sync_task, "never handed over")
        return PlainTextResponse("ok")  # without background=tasks

    client = TestClient(Starlette(routes=[Route("/", forgetful, methods=["POST"])]))
    assert client.post("/").status_code == 200

    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == "dropped: the response was sent without running it"
    assert apps.journal == []


def test_websocket_tasks_never_run(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app).websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hi"

    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == "dropped: WebSocket endpoints never run background tasks"
    assert apps.journal == []


def test_without_the_fixture_test_client_reraises_the_task_error() -> None:
    with pytest.raises(RuntimeError, match="task boom"):
        TestClient(app).post("/fail")


def _failing_app() -> FastAPI:
    failing = FastAPI()

    @failing.post("/fail")
    async def fail(background_tasks: BackgroundTasks) -> dict[str, bool]:
        background_tasks.add_task(boom, "behind middleware")
        background_tasks.add_task(sync_task, "never")
        return {"ok": True}

    return failing


def _with_http_middleware(app: FastAPI) -> FastAPI:
    @app.middleware("http")
    async def passthrough(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)

    return app


def _with_exception_handler(app: FastAPI) -> FastAPI:
    @app.exception_handler(RuntimeError)
    async def on_error(request: Request, exc: RuntimeError) -> Response:
        return PlainTextResponse("handled", status_code=500)

    return app


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(
            _with_http_middleware,
            marks=starlette_before(
                "0.29",
                "BaseHTTPMiddleware runs the tasks before the response's last body message,"
                " so a failing task truncates the response, with or without the plugin",
            ),
        ),
        _with_exception_handler,
    ],
    ids=["base-http-middleware", "exception-handler"],
)
def test_failures_are_contained_through_middleware_and_handlers(
    bgtasks: BackgroundTaskRecorder, wrap: Callable[[FastAPI], FastAPI]
) -> None:
    response = TestClient(wrap(_failing_app())).post("/fail")

    assert response.json() == {"ok": True}
    bgtasks.assert_failed(boom, RuntimeError, match="behind middleware")
    assert bgtasks.calls_to(sync_task)[0].status == "skipped"


def test_an_error_that_is_not_a_task_failure_still_reaches_the_client(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    broken = FastAPI()

    @broken.get("/broken")
    async def endpoint() -> None:
        raise LookupError("endpoint bug")

    with pytest.raises(LookupError, match="endpoint bug"):
        TestClient(broken).get("/broken")


def test_task_keyword_arguments_named_like_starlettes_parameters(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    from starlette.background import BackgroundTask, BackgroundTasks

    received = []

    def takes(task: str = "", tasks: tuple[str, ...] = ()) -> None:
        received.append((task, tasks))

    container = BackgroundTasks()
    container.add_task(takes, tasks=("a",))
    single = BackgroundTask(takes, task="b")
    anyio.run(container)
    anyio.run(single)

    assert received == [("", ("a",)), ("b", ())]
    assert [call.arguments for call in bgtasks.calls] == [
        {"task": "", "tasks": ("a",)},
        {"task": "b", "tasks": ()},
    ]
    bgtasks.assert_all_succeeded()


def test_an_error_raised_while_handling_a_task_failure_reaches_the_client(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    from collections.abc import Iterator

    from fastapi import Depends

    rolled_back = FastAPI()

    def session() -> Iterator[None]:
        try:
            yield
        except RuntimeError:
            raise LookupError("rollback failed") from None

    @rolled_back.post("/save")
    def save(background_tasks: BackgroundTasks, _: None = Depends(session)) -> None:
        background_tasks.add_task(boom, "task boom")

    with pytest.raises(LookupError, match="rollback failed"):
        TestClient(rolled_back).post("/save")
    bgtasks.assert_failed(boom)


@pytest.mark.anyio
async def test_system_exit_from_a_task_is_not_contained(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    """SystemExit reaches whoever called the app, as it would reach the server.

    Through httpx's ASGITransport: TestClient can deadlock when its app raises SystemExit (a race
    in Starlette's TestClient, with or without the plugin), and a test must not hang.
    """
    exiting = FastAPI()

    def leave() -> None:
        raise SystemExit(3)

    @exiting.post("/exit")
    def endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(leave)

    transport = httpx.ASGITransport(app=exiting)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(SystemExit) as raised:
            await client.post("/exit")
    assert raised.value.code == 3
    bgtasks.assert_failed(leave, SystemExit)
