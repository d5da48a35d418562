"""Scoped capture: ``with bgtasks.capture() as block:`` asserts on the block's tasks alone."""

from __future__ import annotations

import threading

import httpx
import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder, CaptureBlock
from tests.apps import app, async_task, boom, send_email, sync_task
from tests.servers import serving


def test_a_block_sees_only_what_was_scheduled_inside_it(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/email/ann@example.com")  # set-up: sign-up mails ann

    with bgtasks.capture() as block:
        client.post("/items/7")

    client.post("/email/bob@example.com")  # after the block: not the block's
    assert isinstance(block, CaptureBlock)
    assert [call.name for call in block.calls] == ["sync_task", "async_task"]
    block.assert_scheduled_once(sync_task, "item 7")
    block.assert_scheduled(async_task, label="async item 7")
    block.assert_not_scheduled(send_email)
    assert block.calls_to(sync_task) == bgtasks.calls_to(sync_task)
    assert block.succeeded == block.calls and block.failed == [] and block.pending == []
    assert [call.name for call in bgtasks.calls] == [
        "send_email",
        "sync_task",
        "async_task",
        "send_email",
    ]
    bgtasks.assert_scheduled_times(send_email, 2)
    block.assert_scheduled_times(send_email, 0)


def test_a_block_that_saw_nothing(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/items/1")

    with bgtasks.capture() as block:
        pass

    block.assert_not_scheduled()
    assert block.calls == []
    with pytest.raises(AssertionError) as raised:
        block.assert_scheduled(sync_task)
    assert str(raised.value).splitlines() == [
        "Expected a background task sync_task() to be scheduled.",
        "Scheduled tasks (0):",
        "(no background task was scheduled)",
    ]


def test_a_block_failure_lists_the_block_tasks_only(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/items/1")
    with bgtasks.capture() as block:
        client.post("/email/ann@example.com")

    with pytest.raises(AssertionError) as raised:
        block.assert_scheduled_once(sync_task, "item 1")

    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "Expected a background task sync_task(label='item 1') to be scheduled once,"
        " it was scheduled 0 times."
    )
    assert lines[1] == "Scheduled tasks (1):"
    assert lines[2].startswith("#3 send_email(to='ann@example.com', subject='Hello', password=***)")
    assert len(lines) == 3
    with pytest.raises(AssertionError, match=r"Offending tasks \(1\):\n#3 send_email"):
        block.assert_not_scheduled()


def test_blocks_nest_and_the_recorder_sees_all(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    with bgtasks.capture() as outer:
        client.post("/items/1")
        with bgtasks.capture() as inner:
            client.post("/items/2")
            assert [call.index for call in inner.calls] == [3, 4]  # an open block grows
        client.post("/items/3")

    assert [call.index for call in outer.calls] == [1, 2, 3, 4, 5, 6]
    assert [call.index for call in inner.calls] == [3, 4]
    inner.assert_scheduled_once(sync_task, "item 2")
    with pytest.raises(AssertionError, match="it was scheduled 0 times"):
        inner.assert_scheduled_once(sync_task, "item 1")
    outer.assert_scheduled_once(sync_task, "item 1")
    outer.assert_scheduled_times(sync_task, 3)
    inner.assert_scheduled_times(sync_task, 1)
    assert bgtasks.calls == outer.calls


def test_failures_inside_a_block_are_asserted_on_the_block(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with bgtasks.capture() as block:
        TestClient(app).post("/fail")

    call = block.assert_failed(boom, RuntimeError, match="task boom")
    assert call.expected  # the strict check at teardown lets it pass
    with pytest.raises(AssertionError, match="Expected every background task to succeed, 2 did"):
        block.assert_all_succeeded()


def test_tasks_scheduled_by_other_threads_while_open_count(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    posted = threading.Event()

    def post_from_another_thread() -> None:
        TestClient(app).post("/items/5")
        posted.set()

    with bgtasks.capture() as block:
        thread = threading.Thread(target=post_from_another_thread)
        thread.start()
        assert posted.wait(10)
        thread.join(10)

    block.assert_scheduled_once(sync_task, "item 5")


def test_a_real_server_tasks_belong_to_the_open_block(bgtasks: BackgroundTaskRecorder) -> None:
    with serving(app) as url:
        httpx.post(f"{url}/items/1")
        bgtasks.wait(timeout=5)
        with bgtasks.capture() as block:
            httpx.post(f"{url}/items/2")
            bgtasks.wait(timeout=5)

    block.assert_scheduled_once(sync_task, "item 2")
    assert [call.arguments for call in block.calls_to(sync_task)] == [{"label": "item 2"}]
    bgtasks.assert_scheduled_times(sync_task, 2)


def test_bad_input_names_the_block_method(bgtasks: BackgroundTaskRecorder) -> None:
    with bgtasks.capture() as block:
        pass

    with pytest.raises(TypeError, match=r"^block\.assert_scheduled\(\) takes the task function"):
        block.assert_scheduled(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^block\.assert_failed\(\) takes the exception class"):
        block.assert_failed(boom, "RuntimeError")  # type: ignore[arg-type]
    assert repr(block) == "<CaptureBlock closed calls=0>"


def test_block_messages_hide_secrets_given_as_expected_values(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app).post("/email/ann@example.com")  # password s3cret, outside the block
    with bgtasks.capture() as block:
        TestClient(app).post("/items/1")

    with pytest.raises(AssertionError) as raised:
        block.assert_scheduled(sync_task, "s3cret")

    assert "s3cret" not in str(raised.value)
