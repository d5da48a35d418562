"""What is captured, through every kind of client, and that the patches come off again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.background import BackgroundTask
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, async_task, starlette_app, sync_task
from tests.servers import serving


def test_injected_tasks_are_recorded_with_arguments_and_request(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    response = TestClient(app).post("/items/42")

    assert response.json() == {"id": 42}
    first = bgtasks.assert_scheduled(sync_task, "item 42")
    second = bgtasks.assert_scheduled(async_task, label="async item 42")
    assert [call.status for call in bgtasks.calls] == ["succeeded", "succeeded"]
    assert (first.result, second.result) == ("sync:item 42", "async:async item 42")
    assert first.arguments == {"label": "item 42"}
    assert first.request is not None
    assert (first.request.method, first.request.path, first.request.route) == (
        "POST",
        "/items/42",
        "/items/{item_id}",
    )
    assert first.scheduled_at <= first.started_at <= first.finished_at  # type: ignore[operator]
    assert first.duration is not None and first.duration >= 0


def test_dependencies_and_endpoint_share_one_container(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).put("/sync/abc")

    assert [call.arguments["label"] for call in bgtasks.calls] == [
        "from dependency",
        "sync endpoint abc",
    ]
    assert {call.request.route for call in bgtasks.calls if call.request} == {"/sync/{name}"}
    assert bgtasks.calls[0].batch is bgtasks.calls[1].batch


def test_a_response_background_is_recorded(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(starlette_app).post("/plain")

    call = bgtasks.assert_scheduled_once(sync_task, "plain starlette")
    assert call.status == "succeeded"
    assert call.request is not None and call.request.path == "/plain"


def test_tasks_of_a_streaming_response_run_after_the_stream(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    response = TestClient(app).get("/stream")

    assert response.text == "chunk0\nchunk1\nchunk2\n"
    assert bgtasks.assert_scheduled(sync_task, "after stream").status == "succeeded"


def test_file_response_background_is_recorded(bgtasks: BackgroundTaskRecorder, tmp_path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    path = tmp_path / "report.csv"
    path.write_text("a,b\n1,2\n")

    def download(request):  # type: ignore[no-untyped-def]
        return FileResponse(path, background=BackgroundTask(sync_task, "after file"))

    response = TestClient(Starlette(routes=[Route("/file", download)])).get("/file")

    assert response.text == "a,b\n1,2\n"
    assert bgtasks.assert_scheduled(sync_task, "after file").status == "succeeded"


def test_test_client_as_context_manager_runs_tasks_on_its_portal(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/items/1")
        client.post("/items/2")

    assert len(bgtasks.succeeded) == 4
    threads = dict(apps.journal)
    assert threads["item 1"].startswith("AnyIO worker thread")
    assert not threads["async item 1"].startswith("AnyIO worker thread")


@pytest.mark.anyio
async def test_async_client_over_asgi_transport(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/fail")

    assert response.json() == {"ok": True}
    bgtasks.assert_failed(apps.boom, RuntimeError, match="task boom")
    assert [call.status for call in bgtasks.calls] == ["succeeded", "failed", "skipped"]


@pytest.fixture
def server_url() -> Iterator[str]:
    """The test app served by a real uvicorn in a thread of this process."""
    with serving(app, lifespan="off") as url:
        yield url


class Gate:
    """A stand-in for a slow task that runs until the test opens the gate (10 s at most)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.entered.set()
        assert self.opened.wait(10), "the test never opened the gate"


def test_real_server_returns_before_the_task_and_wait_sees_it_finish(
    bgtasks: BackgroundTaskRecorder, server_url: str
) -> None:
    gate = Gate()
    bgtasks.replace(apps.slow_task, gate)

    response = httpx.post(f"{server_url}/slow", params={"seconds": 0.5})

    assert response.json() == {"ok": True}
    call = bgtasks.assert_scheduled_once(apps.slow_task, 0.5)
    assert call.finished_at is None, "the response should arrive before the task ends"
    gate.opened.set()
    bgtasks.wait(timeout=5)
    assert call.status == "succeeded"


def test_wait_times_out_naming_the_running_task(
    bgtasks: BackgroundTaskRecorder, server_url: str
) -> None:
    gate = Gate()
    bgtasks.replace(apps.slow_task, gate)
    httpx.post(f"{server_url}/slow", params={"seconds": 0.6})
    assert gate.entered.wait(10)

    with pytest.raises(
        TimeoutError, match=r"still busy after 0.05s:\n#1 slow_task\(seconds=0.6\)  running"
    ):
        bgtasks.wait(timeout=0.05)
    gate.opened.set()
    bgtasks.wait(timeout=5)


def test_test_client_on_httpx2_is_recorded_too(bgtasks: BackgroundTaskRecorder) -> None:
    httpx2 = pytest.importorskip("httpx2")
    if not issubclass(TestClient, httpx2.Client):
        pytest.skip("this Starlette's TestClient runs on httpx: it predates httpx2")

    response = TestClient(app).post("/items/7")

    assert isinstance(response, httpx2.Response)
    assert [(call.name, call.status, str(call.request)) for call in bgtasks.calls] == [
        ("sync_task", "succeeded", "POST /items/7"),
        ("async_task", "succeeded", "POST /items/7"),
    ]


def test_patches_are_removed_when_the_run_is_interrupted(pytester: pytest.Pytester) -> None:
    original = BackgroundTask.__call__
    pytester.makepyfile(
        """
        def test_interrupted(bgtasks):
            raise KeyboardInterrupt
        """
    )
    result = pytester.inline_run(no_reraise_ctrlc=True)

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert BackgroundTask.__call__ is original


def test_patches_are_removed_after_the_test(pytester: pytest.Pytester, apps_source: str) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import pytest
        from starlette.background import BackgroundTask
        from starlette.testclient import TestClient
        from apps import app, boom

        ORIGINAL = BackgroundTask.__call__

        def test_with_fixture(bgtasks):
            assert BackgroundTask.__call__ is not ORIGINAL
            bgtasks.fail(boom, ValueError)
            raise AssertionError("the test fails, the patches must still come off")

        def test_without_fixture():
            assert BackgroundTask.__call__ is ORIGINAL
            with pytest.raises(RuntimeError, match="task boom"):
                TestClient(app).post("/fail")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1, errors=1)
