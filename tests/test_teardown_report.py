"""The teardown check lists every unexpected problem, and only those, as users read it."""

from __future__ import annotations

import pytest

from tests.conftest import report_body

HEADER = """
import anyio
import pytest
from starlette.background import BackgroundTask
from starlette.testclient import TestClient
from apps import app, async_task, boom, sync_task
"""


@pytest.fixture
def project(pytester: pytest.Pytester, apps_source: str) -> pytest.Pytester:
    pytester.makepyfile(apps=apps_source)
    return pytester


def run(project: pytest.Pytester, body: str) -> pytest.RunResult:
    project.makepyfile(test_it=HEADER + body)
    return project.runpytest("-p", "no:randomly")


def test_an_expected_failure_does_not_hide_a_later_unexpected_one(
    project: pytest.Pytester,
) -> None:
    result = run(
        project,
        """
def test_two_failures(bgtasks):
    bgtasks.fail(sync_task, ConnectionError("expected"), times=1)
    client = TestClient(app)
    client.post("/items/1")  # #1 fails by the fault (expected), #2 is skipped
    client.post("/fail")  # #4 boom fails unexpectedly
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #4 boom(message='task boom')  failed in *s  POST /fail",
        ]
    )
    result.stdout.no_fnmatch_line("  #1 sync_task*")


def test_a_cancelled_task_is_reported(project: pytest.Pytester) -> None:
    result = run(
        project,
        """
async def wait_forever():
    await anyio.sleep_forever()

def test_cancelled(bgtasks):
    async def main():
        with anyio.CancelScope() as scope:
            scope.cancel()
            await BackgroundTask(wait_forever)()

    anyio.run(main)
    assert bgtasks.calls[0].status == "cancelled"
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 wait_forever()  cancelled in *s  cancelled while running",
        ]
    )


def test_a_task_never_handed_to_a_response_is_reported(project: pytest.Pytester) -> None:
    result = run(
        project,
        """
def test_forgotten(bgtasks):
    BackgroundTask(sync_task, "forgotten")
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 sync_task(label='forgotten')  scheduled  (never handed to a response, never ran)",
        ]
    )


def test_assert_dropped_excuses_only_the_drops_of_its_function(
    project: pytest.Pytester,
) -> None:
    result = run(
        project,
        """
def test_two_drops(bgtasks):
    assert TestClient(app).get("/missing-both").status_code == 404
    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.arguments == {"label": "before 404"}
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #2 async_task(label='also before 404')  dropped  GET /missing-both  dropped: the app"
            " answered 404*",
        ]
    )
    result.stdout.no_fnmatch_line("  #1 sync_task*")


def test_a_teardown_error_prints_each_traceback_once(project: pytest.Pytester) -> None:
    result = run(project, "\ndef test_fail(bgtasks):\n    TestClient(app).post('/fail')\n")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #2 boom(message='task boom')  failed in *s  POST /fail",
            "      Traceback (most recent call last):",
            "      RuntimeError: task boom",
            "Expected? Say so in the test*",
            "*- background tasks -*",
            "#2 boom(message='task boom')  failed in *s  POST /fail",
            "#3 async_task(label='after')  skipped  *",
        ]
    )
    assert report_body(result).count("raise RuntimeError(message)") == 1


def test_a_marker_error_is_printed_once(project: pytest.Pytester) -> None:
    result = run(
        project, "\n@pytest.mark.bgtasks(mod='deferred')\ndef test_it(bgtasks):\n    pass\n"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["pytest-bgtasks: @pytest.mark.bgtasks got unknown keyword(s) mod*"]
    )
    assert report_body(result).count("got unknown keyword(s) mod") == 1
    result.stdout.no_fnmatch_line("During handling of the above exception*")


def test_a_fault_that_never_applied_offers_no_expected_footer(project: pytest.Pytester) -> None:
    result = run(
        project,
        "\ndef test_typo(bgtasks):\n"
        "    bgtasks.fail('sync_tsk', RuntimeError)\n"
        "    TestClient(app).post('/items/1')\n",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  fault fail('sync_tsk', *) was never applied: no matching task ran"
            " (a typo? tasks recorded: async_task, sync_task)",
        ]
    )
    result.stdout.no_fnmatch_line("Expected? Say so*")
