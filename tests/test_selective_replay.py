"""``run_all(only=..., limit=...)``: run some held tasks, keep the others held."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, async_task, boom, sync_task

pytestmark = pytest.mark.bgtasks(mode="deferred")


def labels() -> list[str]:
    return [label for label, _ in apps.journal]


def test_only_runs_the_held_tasks_of_one_function(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/2")

    ran = bgtasks.run_all(only=sync_task)

    assert [call.index for call in ran] == [1, 3]
    assert labels() == ["item 1", "item 2"]
    assert [call.index for call in bgtasks.held] == [2, 4]
    assert bgtasks.run_all(only="async_task") == bgtasks.calls_to(async_task)
    assert labels() == ["item 1", "item 2", "async item 1", "async item 2"]
    assert bgtasks.held == []


def test_limit_runs_the_first_tasks_and_keeps_the_rest_held(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/2")

    assert [call.index for call in bgtasks.run_all(limit=3)] == [1, 2, 3]
    assert labels() == ["item 1", "async item 1", "item 2"]
    assert [call.index for call in bgtasks.held] == [4]
    assert [call.index for call in bgtasks.run_all(limit=3)] == [4]


def test_only_and_limit_together(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    for item in (1, 2, 3):
        client.post(f"/items/{item}")

    (ran,) = bgtasks.run_all(only=sync_task, limit=1)

    assert ran.arguments == {"label": "item 1"}
    assert labels() == ["item 1"]
    assert [call.index for call in bgtasks.held] == [2, 3, 4, 5, 6]


def test_a_failure_run_alone_still_skips_the_rest_of_its_response(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app).post("/fail")

    bgtasks.run_all(only=boom)

    bgtasks.assert_failed(boom, RuntimeError)
    assert [call.status for call in bgtasks.calls] == ["held", "failed", "skipped"]
    assert [call.name for call in bgtasks.held] == ["sync_task"]


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"limit": 0}, ValueError, r"run_all\(limit=...\) takes a whole number >= 1, got 0"),
        ({"limit": 1.5}, TypeError, r"run_all\(limit=...\) takes a whole number >= 1, got 1.5"),
        ({"limit": True}, TypeError, r"run_all\(limit=...\) takes a whole number >= 1"),
        ({"only": 42}, TypeError, r"run_all\(only=...\) takes the task function or its name"),
    ],
)
def test_bad_selection_is_refused_before_anything_runs(
    bgtasks: BackgroundTaskRecorder,
    keywords: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    TestClient(app).post("/items/1")

    with pytest.raises(error, match=rf"^bgtasks\.{message}"):
        bgtasks.run_all(**keywords)  # type: ignore[arg-type]

    assert len(bgtasks.held) == 2 and apps.journal == []


@pytest.mark.anyio
async def test_run_all_async_takes_only_and_limit(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await client.post("/items/1")
        await client.post("/items/2")

    ran = await bgtasks.run_all_async(only="async_task", limit=1)

    assert [call.arguments for call in ran] == [{"label": "async item 1"}]
    assert labels() == ["async item 1"]
    with pytest.raises(TypeError, match=r"^bgtasks\.run_all_async\(limit=...\) takes a whole"):
        await bgtasks.run_all_async(limit="2")  # type: ignore[arg-type]
    assert len(await bgtasks.run_all_async(only=sync_task)) == 2
    assert labels() == ["async item 1", "item 1", "item 2"]
    assert [call.arguments for call in bgtasks.held] == [{"label": "async item 2"}]
