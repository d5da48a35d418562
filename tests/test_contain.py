"""``contain=False``: a task's exception leaves the app as it would without the plugin.

By default the outermost app keeps a task failure in (the client gets the response a real
client gets), which also hides it from whatever is outside the app: an error-reporting
middleware, the server's error log. With ``contain=False`` it goes on to them, and the test
still has the record, judged by the strict check.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, async_task, boom, sync_task
from tests.servers import serving
from tests.test_task_failures import ErrorReporter

uncontained = pytest.mark.bgtasks(contain=False)


@uncontained
def test_the_test_client_raises_the_tasks_exception(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(RuntimeError, match="task boom") as raised:
        TestClient(app).post("/fail")

    failed = bgtasks.assert_failed(boom, RuntimeError, match="task boom")
    assert raised.value is failed.exception  # the task's own exception, not a copy
    assert bgtasks.calls_to(async_task)[0].status == "skipped"  # as Starlette skips it
    assert [label for label, _ in apps.journal] == ["before"]


@pytest.mark.parametrize(
    "marks", [pytest.param({}, id="default"), pytest.param({"contain": True}, id="contain=True")]
)
def test_contained_the_client_gets_its_response(
    pytester: pytest.Pytester, apps_source: str, marks: dict[str, bool]
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        f"""
        import pytest
        from starlette.testclient import TestClient
        from apps import app, boom

        @pytest.mark.bgtasks(**{marks!r})
        def test_it(bgtasks):
            assert TestClient(app).post("/fail").json() == {{"ok": True}}
            bgtasks.assert_failed(boom)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@uncontained
@pytest.mark.anyio
async def test_asgi_transport_raises_the_tasks_exception(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="task boom"):
            await client.post("/fail")

    bgtasks.assert_failed(boom, RuntimeError, match="task boom")


@uncontained
def test_an_outer_error_reporter_sees_the_tasks_exception(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    reported: list[BaseException] = []
    with pytest.raises(RuntimeError, match="task boom"):
        TestClient(ErrorReporter(app, reported)).post("/fail")

    failed = bgtasks.assert_failed(boom)
    assert reported == [failed.exception]


def test_contained_an_outer_error_reporter_sees_nothing(bgtasks: BackgroundTaskRecorder) -> None:
    reported: list[BaseException] = []
    assert TestClient(ErrorReporter(app, reported)).post("/fail").status_code == 200

    bgtasks.assert_failed(boom)
    assert reported == []


@pytest.mark.parametrize(
    "contain",
    [
        pytest.param(True, marks=pytest.mark.bgtasks(contain=True), id="contained"),
        pytest.param(False, marks=uncontained, id="uncontained"),
    ],
)
def test_a_real_server_logs_the_tasks_exception_only_uncontained(
    bgtasks: BackgroundTaskRecorder, caplog: pytest.LogCaptureFixture, contain: bool
) -> None:
    """uvicorn logs what leaves the app. It waits for each request's cycle when it stops, so
    its log is complete once the server has stopped."""
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"), serving(app) as url:
        response = httpx.post(url + "/fail", timeout=10)

    assert response.json() == {"ok": True}  # sent before the task ran, either way
    failed = bgtasks.assert_failed(boom, RuntimeError, match="task boom")
    logged = [
        (record.getMessage().strip(), record.exc_info[1] if record.exc_info else None)
        for record in caplog.records
        if record.name == "uvicorn.error"
    ]
    if contain:
        assert logged == []
    else:
        assert logged == [("Exception in ASGI application", failed.exception)]


@uncontained
@pytest.mark.bgtasks(mode="deferred")
def test_deferred_replay_records_the_failure_and_raises_nothing(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    """``run_all()`` runs held tasks outside any app: nothing is around them to reach."""
    assert TestClient(app).post("/fail").status_code == 200

    bgtasks.run_all()

    bgtasks.assert_failed(boom, RuntimeError, match="task boom")


@uncontained
@pytest.mark.bgtasks(mode="deferred")
def test_an_eager_block_in_a_deferred_test_lets_the_exception_out(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with bgtasks.eager(), pytest.raises(RuntimeError, match="task boom"):
        TestClient(app).post("/fail")

    bgtasks.assert_failed(boom)
    assert bgtasks.calls_to(sync_task)[0].status == "succeeded"


def test_what_the_user_sees(pytester: pytest.Pytester, apps_source: str) -> None:
    """Uncaught, the exception fails the test where the client raised it; caught but not
    declared expected, the strict check still errors the test at teardown."""
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import pytest
        from starlette.testclient import TestClient
        from apps import app, boom

        pytestmark = pytest.mark.bgtasks(contain=False)

        def test_uncaught(bgtasks):
            TestClient(app).post("/fail")

        def test_caught_and_declared(bgtasks):
            with pytest.raises(RuntimeError, match="task boom"):
                TestClient(app).post("/fail")
            bgtasks.assert_failed(boom, RuntimeError, match="task boom")

        def test_caught_not_declared(bgtasks):
            with pytest.raises(RuntimeError):
                TestClient(app).post("/fail")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_uncaught _*",
            '*TestClient(app).post("/fail")*',
            "*RuntimeError: task boom*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_caught_not_declared*",
            "*#2 boom(message='task boom')  failed in *",
            "*RuntimeError: task boom",
            "Expected? Say so in the test with bgtasks.assert_failed(func)*",
        ]
    )
    teardown = result.stdout.str().partition("ERROR at teardown of test_caught_not_declared")[2]
    report = teardown.partition("Expected? Say so")[0]
    # The task's traceback stops at the app's edge, as when contained: none of the frames the
    # exception went through afterwards (the client's, the test's, pytest's).
    assert ", in boom" in report
    assert ", in test_caught_not_declared" not in report and "pluggy" not in report


def test_the_hook_stays_inert_inside_a_wrapper_another_library_put_round_it(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    """sentry-sdk's integration wraps ``Starlette.__call__`` for good at its first ``init``:
    whichever test does it first, containment then sits inside the wrapper in every test, and
    a test without the fixture gets Starlette's own behaviour."""
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import pytest
        from starlette.applications import Starlette
        from starlette.testclient import TestClient
        from apps import app, boom

        reported = []

        def test_a_library_wraps_starlette_while_a_test_records(bgtasks):
            wrapped = Starlette.__call__

            async def reporting(self, scope, receive, send):
                try:
                    await wrapped(self, scope, receive, send)
                except Exception as error:
                    reported.append(error)
                    raise

            Starlette.__call__ = reporting  # for the rest of the process, as sentry-sdk does
            TestClient(app).post("/fail")
            bgtasks.assert_failed(boom)

        def test_contained_the_wrapper_sees_nothing(bgtasks):
            reported.clear()
            assert TestClient(app).post("/fail").status_code == 200
            bgtasks.assert_failed(boom)
            assert reported == []

        @pytest.mark.bgtasks(contain=False)
        def test_uncontained_the_wrapper_sees_it(bgtasks):
            reported.clear()
            with pytest.raises(RuntimeError):
                TestClient(app).post("/fail")
            assert reported == [bgtasks.assert_failed(boom).exception]

        def test_without_the_fixture_starlette_behaves_as_its_own():
            reported.clear()
            with pytest.raises(RuntimeError, match="task boom"):
                TestClient(app).post("/fail")
            assert len(reported) == 1
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=4)
