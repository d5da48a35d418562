"""``with bgtasks.eager():`` in a deferred test: the block's tasks run as in eager mode."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, boom, sync_task

pytestmark = pytest.mark.bgtasks(mode="deferred")


def labels() -> list[str]:
    return [label for label, _ in apps.journal]


def test_tasks_scheduled_in_the_block_run_and_the_others_stay_held(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    client = TestClient(app)
    client.post("/items/1")  # held

    with bgtasks.eager() as same:
        assert same is bgtasks and bgtasks.mode == "eager"
        client.post("/items/2")  # runs before the client returns, as without the plugin
        assert labels() == ["item 2", "async item 2"]

    client.post("/items/3")  # held again
    assert bgtasks.mode == "deferred"
    statuses = [call.status for call in bgtasks.calls]
    assert statuses == ["held"] * 2 + ["succeeded"] * 2 + ["held"] * 2
    assert [call.index for call in bgtasks.held] == [1, 2, 5, 6]


def test_blocks_nest_and_restore_the_mode(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    with bgtasks.eager():
        with bgtasks.deferred():
            client.post("/items/1")
            assert bgtasks.mode == "deferred"
        client.post("/items/2")
        assert bgtasks.mode == "eager"

    assert bgtasks.mode == "deferred"
    assert [call.index for call in bgtasks.held] == [1, 2]
    assert labels() == ["item 2", "async item 2"]


def test_a_failure_in_the_block_is_recorded_and_contained(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with bgtasks.eager():
        response = TestClient(app).post("/fail")

    assert response.status_code == 200
    bgtasks.assert_failed(boom, RuntimeError, match="task boom")
    assert [call.status for call in bgtasks.calls] == ["succeeded", "failed", "skipped"]


def test_the_mode_comes_back_when_the_block_raises(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(KeyError), bgtasks.eager():
        raise KeyError("in the block")

    assert bgtasks.mode == "deferred"


@pytest.mark.anyio
async def test_an_async_client_in_the_block(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        with bgtasks.eager():
            await client.post("/items/1")
            assert labels() == ["item 1", "async item 1"]
        await client.post("/items/2")

    bgtasks.assert_scheduled_once(sync_task, "item 2")
    assert [call.arguments["label"] for call in bgtasks.held] == ["item 2", "async item 2"]
