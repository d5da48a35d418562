"""The session summary and JSON export: only when asked, written once, ordered and honest."""

from __future__ import annotations

import json

import pytest

SUITE = """
import anyio
from starlette.background import BackgroundTask
from starlette.testclient import TestClient
from apps import app, boom

def test_items(bgtasks):
    TestClient(app).post("/items/1")

def test_expected_failure(bgtasks):
    TestClient(app).post("/fail")
    bgtasks.assert_failed(boom)

def test_nested(bgtasks):
    # level_k awaits level_(k+1) inside it: each task's run contains the next one's, so the
    # durations order is certain. Scheduled innermost first: scheduling order is the reverse.
    tasks = {}

    def level(depth):
        async def run():
            if depth < 6:
                await tasks[depth + 1]()
        run.__qualname__ = f"level_{depth}"
        return run

    for depth in range(6, 0, -1):
        tasks[depth] = BackgroundTask(level(depth))
    anyio.run(tasks[1])
"""


@pytest.fixture
def project(pytester: pytest.Pytester, apps_source: str) -> pytest.Pytester:
    pytester.makepyfile(apps=apps_source, test_suite=SUITE)
    return pytester


@pytest.mark.parametrize("flags", [(), ("--bgtasks-json=tasks.json",)], ids=["none", "json-only"])
def test_no_summary_without_the_report_flag(project: pytest.Pytester, flags: tuple[str]) -> None:
    result = project.runpytest("-p", "no:randomly", *flags)
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*background tasks*")


def test_the_slowest_list_is_ordered_longest_first_and_keeps_five(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("-p", "no:randomly", "--bgtasks-report", "-k", "nested")
    result.stdout.fnmatch_lines(
        [
            "background tasks: 6 total, 6 succeeded",
            "slowest 5:",
            *(f"  *s  level_{depth}()  test_suite.py::test_nested" for depth in range(1, 6)),
        ]
    )
    result.stdout.no_fnmatch_line("*level_6()*")


def test_succeeded_tasks_are_never_listed_as_not_succeeded(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:randomly", "--bgtasks-report")
    result.stdout.fnmatch_lines(
        [
            "not succeeded, by test:",
            "  test_suite.py::test_expected_failure",
            "    #2 boom(message='task boom')  failed (expected)  RuntimeError: task boom",
            "    #3 async_task(label='after')  skipped",
        ]
    )
    result.stdout.no_fnmatch_line("    #* succeeded*")
    result.stdout.no_fnmatch_line("  test_suite.py::test_items")


WORKER_PROBE = """
import pathlib
import pytest

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    # After the plugin's own hook, before the worker tells the controller it finished.
    config = session.config
    if hasattr(config, "workerinput"):
        found = pathlib.Path(config.getoption("bgtasks_json")).exists()
        pathlib.Path(f"probe-{config.workerinput['workerid']}").write_text(str(found))
"""


def test_under_xdist_the_controller_writes_one_document_with_every_test(
    project: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    project.makeconftest(WORKER_PROBE)
    path = project.path / "tasks.json"
    result = project.runpytest_subprocess(
        "-p", "no:randomly", "-n", "2", "--bgtasks-report", f"--bgtasks-json={path}", timeout=60
    )
    result.assert_outcomes(passed=3)

    document = json.loads(path.read_text())
    assert (
        document["summary"]
        == "background tasks: 11 total, 9 succeeded, 1 failed (1 expected), 1 skipped"
    )
    rows = sorted((row["test"].partition("::")[2], row["index"]) for row in document["tasks"])
    assert rows == [
        *(("test_expected_failure", index) for index in (1, 2, 3)),
        ("test_items", 1),
        ("test_items", 2),
        *(("test_nested", index) for index in range(1, 7)),
    ]
    probes = sorted(probe.read_text() for probe in project.path.glob("probe-*"))
    assert probes == ["False", "False"], "a worker wrote the JSON itself"
    headlines = [line for line in result.stdout.lines if line.startswith("background tasks: ")]
    assert headlines == [document["summary"]], "printed once, by the controller"
