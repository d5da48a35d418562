"""Nothing fails silently: the teardown check, as pytest users see it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import starlette_before

HEADER = """
import pytest
from starlette.testclient import TestClient
from apps import app, boom, sync_task, async_task
"""


@pytest.fixture
def project(pytester: pytest.Pytester, apps_source: str) -> pytest.Pytester:
    pytester.makepyfile(apps=apps_source)
    return pytester


def test_an_unexpected_task_failure_errors_the_test_at_teardown(project: pytest.Pytester) -> None:
    project.makepyfile(
        HEADER
        + """
        def test_fail(bgtasks):
            assert TestClient(app).post("/fail").json() == {"ok": True}
        """.replace("\n        ", "\n")
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_fail*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #2 boom(message='task boom')  failed in *s  POST /fail",
            "      Traceback (most recent call last):",
            '        File "*apps.py", line *, in boom',
            "      RuntimeError: task boom",
            "Expected? Say so in the test with bgtasks.assert_failed(func)*",
        ]
    )
    result.stdout.no_fnmatch_line("*site-packages/starlette*")


def test_expected_failures_and_drops_pass(project: pytest.Pytester) -> None:
    project.makepyfile(
        HEADER
        + """
def test_fail(bgtasks):
    TestClient(app).post("/fail")
    bgtasks.assert_failed(boom, RuntimeError, match="task boom")

def test_override(bgtasks):
    TestClient(app).post("/override")
    bgtasks.assert_dropped(sync_task)
"""
    )
    project.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("request_line", "reason"),
    [
        ('client.post("/override")', "*the response brought its own background*"),
        ('client.get("/missing")', "*the app answered 404*"),
        ('client.websocket_connect("/ws").__enter__().close()', "*WebSocket endpoints never run*"),
    ],
    ids=["replaced-by-response-background", "http-exception", "websocket"],
)
def test_a_dropped_task_errors_the_test_and_says_why(
    project: pytest.Pytester, request_line: str, reason: str
) -> None:
    project.makepyfile(
        HEADER
        + f"""
def test_drop(bgtasks):
    client = TestClient(app)
    {request_line}
"""
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  #1 sync_task(label=*)  dropped  *" + reason.lstrip("*")])


@starlette_before("1.9", "TestClient.stream() runs the whole app before it returns")
def test_a_stream_left_unread_drops_its_tasks(project: pytest.Pytester) -> None:
    project.makepyfile(
        HEADER
        + """
from apps import journal

def test_stream(bgtasks):
    with TestClient(app).stream("GET", "/stream") as response:
        assert response.status_code == 200
    (dropped,) = bgtasks.assert_dropped(sync_task)
    assert dropped.reason == (
        "dropped: the request was cancelled first (a streamed response left unread, or the"
        " client went away)"
    )
    assert journal == []
"""
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "where",
    ["function", "class", "module", "ini"],
)
def test_strict_false_turns_the_check_off_at_every_level(
    project: pytest.Pytester, where: str
) -> None:
    body = """
    def test_fail(self, bgtasks):
        TestClient(app).post("/fail")
"""
    marker = "@pytest.mark.bgtasks(strict=False)"
    source = {
        "function": f"class TestIt:\n    {marker}{body}",
        "class": f"{marker}\nclass TestIt:{body}",
        "module": f"pytestmark = pytest.mark.bgtasks(strict=False)\nclass TestIt:{body}",
        "ini": f"class TestIt:{body}",
    }[where]
    if where == "ini":
        project.makeini("[pytest]\nbgtasks_strict = false\n")
    project.makepyfile(HEADER + source)
    project.runpytest().assert_outcomes(passed=1)


def test_the_nearest_marker_wins(project: pytest.Pytester) -> None:
    project.makepyfile(
        HEADER
        + """
pytestmark = pytest.mark.bgtasks(strict=False)

@pytest.mark.bgtasks(strict=True)
def test_fail(bgtasks):
    TestClient(app).post("/fail")
"""
    )
    project.runpytest().assert_outcomes(passed=1, errors=1)


def test_records_do_not_leak_between_tests(project: pytest.Pytester) -> None:
    project.makepyfile(
        HEADER
        + """
from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks

def starlettes_methods():
    return [
        BackgroundTask.__init__,
        BackgroundTask.__call__,
        BackgroundTasks.__init__,
        BackgroundTasks.add_task,
        Starlette.__call__,
    ]

OWN = starlettes_methods()  # at collection, before any test took the fixture

def test_first(bgtasks):
    bgtasks.assert_not_scheduled()
    TestClient(app).post("/items/1")
    assert [c.index for c in bgtasks.calls] == [1, 2]

def test_second(bgtasks):
    bgtasks.assert_not_scheduled()
    TestClient(app).post("/items/2")
    assert [c.index for c in bgtasks.calls] == [1, 2]

def test_without_the_fixture_starlette_is_left_alone():
    assert all(now is own for now, own in zip(starlettes_methods(), OWN, strict=True))
    # Starlette's own behaviour: the task failure reaches the client, no record contains it.
    with pytest.raises(RuntimeError, match="task boom"):
        TestClient(app).post("/fail")
"""
    )
    project.runpytest("--bgtasks-json=tasks.json").assert_outcomes(passed=3)
    document = json.loads((project.path / "tasks.json").read_text(encoding="utf-8"))
    assert [(row["test"].split("::")[1], row["index"]) for row in document["tasks"]] == [
        ("test_first", 1),
        ("test_first", 2),
        ("test_second", 1),
        ("test_second", 2),
    ]


def test_teardown_waits_for_running_tasks_and_reports_those_that_outlive_it(
    project: pytest.Pytester,
) -> None:
    project.makeini("[pytest]\nbgtasks_teardown_timeout = 0.2\n")
    project.makepyfile(
        HEADER
        + """
import threading
import anyio
from starlette.background import BackgroundTask

started, release = threading.Event(), threading.Event()

def outlive_the_test(label):
    started.set()
    release.wait(10)

@pytest.fixture(scope="module", autouse=True)
def release_after_the_test():
    yield
    release.set()  # after the test's teardown, so the task outlives it

def test_slow(bgtasks):
    task = BackgroundTask(outlive_the_test, "slow")
    threading.Thread(target=anyio.run, args=(task,)).start()
    assert started.wait(10)
    assert bgtasks.calls[0].status == "running"
"""
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  #1 outlive_the_test(label='slow')  running  (still running after teardown waited)"]
    )
