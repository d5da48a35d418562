"""Injected faults: rehearse failures and latency without editing the app."""

from __future__ import annotations

import json
from smtplib import SMTPException

import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, async_task, send_email, sync_task


@pytest.fixture(params=["eager", "deferred"])
def mode(request: pytest.FixtureRequest, bgtasks: BackgroundTaskRecorder) -> str:
    """Run the test in both modes; in deferred mode, ``settle()`` runs what was held."""
    return str(request.param)


def settle(bgtasks: BackgroundTaskRecorder, mode: str) -> None:
    if mode == "deferred":
        bgtasks.run_all()


def post(bgtasks: BackgroundTaskRecorder, mode: str, path: str) -> None:
    if mode == "deferred":
        with bgtasks.deferred():
            TestClient(app).post(path)
    else:
        TestClient(app).post(path)
    settle(bgtasks, mode)


def test_fail_raises_instead_of_running_and_skips_the_rest(
    bgtasks: BackgroundTaskRecorder, mode: str
) -> None:
    fault = bgtasks.fail(sync_task, SMTPException("smtp down"))

    post(bgtasks, mode, "/items/1")

    failed = bgtasks.assert_failed(sync_task, SMTPException, match="smtp down")
    assert failed.fault == "fail(sync_task, SMTPException('smtp down'))"
    assert bgtasks.calls_to(async_task)[0].status == "skipped"
    assert apps.journal == []
    assert fault.applied == 1


def test_fail_by_name_with_times_and_when(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.fail(
        "sync_task", ConnectionError, times=1, when=lambda call: call.arguments["label"] != "item 1"
    )
    client = TestClient(app)
    for number in (1, 2, 3):
        client.post(f"/items/{number}")

    statuses = [(call.arguments["label"], call.status) for call in bgtasks.calls_to(sync_task)]
    assert statuses == [("item 1", "succeeded"), ("item 2", "failed"), ("item 3", "succeeded")]


def test_fail_after_runs_the_function_then_raises(
    bgtasks: BackgroundTaskRecorder, mode: str
) -> None:
    bgtasks.fail_after(send_email, TimeoutError("no ack"))

    post(bgtasks, mode, "/email/ann@example.com")

    bgtasks.assert_failed(send_email, TimeoutError)
    assert [label for label, _ in apps.journal] == ["mail ann@example.com"]


def test_delay_adds_latency_where_the_task_runs(bgtasks: BackgroundTaskRecorder, mode: str) -> None:
    bgtasks.delay(sync_task, 0.2)
    bgtasks.delay(async_task, 0.2)

    post(bgtasks, mode, "/items/1")

    sync_call, async_call = bgtasks.calls
    assert sync_call.duration is not None and sync_call.duration >= 0.2
    assert async_call.duration is not None and async_call.duration >= 0.2
    assert apps.journal[0][1].startswith("AnyIO worker thread")
    bgtasks.assert_all_succeeded()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_replace_runs_a_substitute_with_the_task_arguments(
    bgtasks: BackgroundTaskRecorder, mode: str, kind: str
) -> None:
    outbox: list[tuple[str, str]] = []

    def fake_send(to: str, subject: str, password: str = "") -> str:
        outbox.append((to, subject))
        return "sent"

    async def fake_send_async(to: str, subject: str, password: str = "") -> str:
        return fake_send(to, subject)

    bgtasks.replace(send_email, fake_send if kind == "sync" else fake_send_async)

    post(bgtasks, mode, "/email/bob@example.com")

    assert outbox == [("bob@example.com", "Hello")]
    assert apps.journal == []
    assert bgtasks.calls[0].result == "sent"


def test_hang_until_the_test_ends_is_recorded_as_cancelled(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import threading
        import anyio
        from starlette.background import BackgroundTask
        from apps import sync_task
        from conftest import until_running

        def test_hang(bgtasks):
            bgtasks.hang(sync_task)
            threading.Thread(target=anyio.run, args=(BackgroundTask(sync_task, "x"),)).start()
            until_running(bgtasks.calls[0])
        """
    )
    pytester.makeconftest(UNTIL_RUNNING)

    assert statuses_after_teardown(pytester) == ["cancelled"]


def test_a_fault_that_never_applied_errors_the_test(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        def test_typo(bgtasks):
            bgtasks.fail("sned_email", ValueError)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  fault fail('sned_email', <class 'ValueError'>) was never applied*"]
    )


def test_faults_do_not_leak_into_the_next_test(pytester: pytest.Pytester, apps_source: str) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        from starlette.testclient import TestClient
        from apps import app, sync_task

        def test_with_fault(bgtasks):
            bgtasks.fail(sync_task, ValueError)
            TestClient(app).post("/items/1")

        def test_next(bgtasks):
            TestClient(app).post("/items/1")
            bgtasks.assert_all_succeeded()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_real_error_before_fail_after_is_not_excused(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        from starlette.testclient import TestClient
        from apps import app, boom

        def test_real_error(bgtasks):
            bgtasks.fail_after(boom, ConnectionError)
            TestClient(app).post("/fail")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["      RuntimeError: task boom"])


def test_a_released_hang_skips_the_rest_of_its_response(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import threading
        import anyio
        from starlette.background import BackgroundTasks
        from apps import sync_task, async_task
        from conftest import until_running

        def test_hang(bgtasks):
            bgtasks.hang(sync_task)
            tasks = BackgroundTasks()
            tasks.add_task(sync_task, "stuck")
            tasks.add_task(async_task, "after")
            threading.Thread(target=anyio.run, args=(tasks,)).start()
            until_running(bgtasks.calls[0])
        """
    )
    pytester.makeconftest(UNTIL_RUNNING)

    assert statuses_after_teardown(pytester) == ["cancelled", "skipped"]


UNTIL_RUNNING = """
import time

def until_running(call):
    deadline = time.monotonic() + 10
    while call.status != "running":
        assert time.monotonic() < deadline, f"still {call.status} after 10s"
        time.sleep(0.01)
"""


def statuses_after_teardown(pytester: pytest.Pytester) -> list[str]:
    """Run the project's one test; the statuses its tasks ended with, after its teardown.

    The JSON report takes each test's tasks from its teardown report, so it shows what the
    teardown left, in the run that made them: no second test reads state across tests.
    """
    result = pytester.runpytest("--bgtasks-json=tasks.json")
    result.assert_outcomes(passed=1)
    document = json.loads((pytester.path / "tasks.json").read_text(encoding="utf-8"))
    return [row["status"] for row in document["tasks"]]
