"""Reports people can read: failure sections, the session summary, JSON, redaction."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_bgtasks._record import STATUSES

SUITE = """
import pytest
from starlette.testclient import TestClient
from apps import app, boom, send_email, sync_task

@pytest.mark.parametrize("number", range(4))
def test_items(bgtasks, number):
    TestClient(app).post(f"/items/{number}")

def test_email(bgtasks):
    TestClient(app).post("/email/ann@example.com")
    bgtasks.assert_scheduled(send_email, "ann@example.com", subject="Bye")

def test_expected_failure(bgtasks):
    TestClient(app).post("/fail")
    bgtasks.assert_failed(boom)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, apps_source: str) -> pytest.Pytester:
    pytester.makepyfile(apps=apps_source, test_suite=SUITE)
    return pytester


def test_a_failing_test_gets_a_background_tasks_section_with_secrets_redacted(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("-k", "email")
    result.assert_outcomes(failed=1, deselected=5)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected a background task send_email(to='ann@example.com', subject='Bye') to be scheduled.",
            "E       Scheduled tasks (1):",
            "E       #1 send_email(to='ann@example.com', subject='Hello', password=***)  succeeded in *s  POST /email/ann@example.com (/email/{to})",
            "*- background tasks -*",
            "#1 send_email(to='ann@example.com', subject='Hello', password=***)  succeeded in *s  POST /email/ann@example.com (/email/{to})",
        ]
    )
    result.stdout.no_fnmatch_line("*s3cret*")


def test_session_summary_counts_every_task(project: pytest.Pytester) -> None:
    result = project.runpytest("--bgtasks-report", "-k", "not email")
    result.assert_outcomes(passed=5, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*= background tasks =*",
            "background tasks: 11 total, 9 succeeded, 1 failed (1 expected), 1 skipped",
            "slowest 5:",
            "not succeeded, by test:",
            "  test_suite.py::test_expected_failure",
            "    #2 boom(message='task boom')  failed (expected)  RuntimeError: task boom",
            "    #3 async_task(label='after')  skipped",
        ]
    )


SUMMARY = [
    "background tasks: 11 total, 9 succeeded, 1 failed (1 expected), 1 skipped",
    "slowest 5:",
    "not succeeded, by test:",
    "  test_suite.py::test_expected_failure",
    "    #2 boom(message='task boom')  failed (expected)  RuntimeError: task boom",
]
EVERY_TASK = [
    "every task, by test:",
    "  test_suite.py::test_items?0?  #1 sync_task(label='item 0')  succeeded",
]


@pytest.mark.parametrize(
    ("flags", "every_task"),
    [(("-q",), False), (("-qq",), False), ((), False), (("-v",), True)],
    ids=["-q", "-qq", "default", "-v"],
)
def test_the_summary_is_the_same_at_every_verbosity_and_v_adds_every_task(
    project: pytest.Pytester, flags: tuple[str, ...], every_task: bool
) -> None:
    result = project.runpytest("-p", "no:randomly", "--bgtasks-report", *flags, "-k", "not email")
    result.stdout.fnmatch_lines(SUMMARY[:1] + (EVERY_TASK if every_task else []) + SUMMARY[1:])
    if not every_task:
        result.stdout.no_fnmatch_line("every task, by test:")


def test_summary_adds_up_across_xdist_workers(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = project.runpytest_subprocess("-n", "2", "--bgtasks-report", "-k", "not email")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        ["background tasks: 11 total, 9 succeeded, 1 failed (1 expected), 1 skipped"]
    )


def test_json_export_lists_every_task_redacted(project: pytest.Pytester) -> None:
    path = project.path / "tasks.json"
    project.runpytest(f"--bgtasks-json={path}", "-k", "email or failure")
    document = json.loads(path.read_text())

    assert (
        document["summary"]
        == "background tasks: 4 total, 2 succeeded, 1 failed (1 expected), 1 skipped"
    )
    email = next(row for row in document["tasks"] if row["task"].startswith("send_email"))
    assert email["task"] == "send_email(to='ann@example.com', subject='Hello', password=***)"
    assert email["test"] == "test_suite.py::test_email"
    assert email["request"] == "POST /email/ann@example.com"


def test_redacted_names_are_configurable(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nbgtasks_redact =\n    subject\n")
    result = project.runpytest("-k", "email")
    result.stdout.fnmatch_lines(
        ["E       #1 send_email(to='ann@example.com', subject=***, password=***)*"]
    )


def test_long_arguments_are_shortened(bgtasks: object) -> None:
    from pytest_bgtasks._record import TaskCall
    from pytest_bgtasks._rendering import Renderer

    def ingest(rows: list[int], api_key: str) -> None: ...

    call = TaskCall(1, ingest, (list(range(1000)), "abc"), {}, None, 0.0)
    assert Renderer().signature(call) == "ingest(rows=[0, 1, 2, 3, 4, 5, ...], api_key=***)"


def test_the_readme_lists_every_status_in_the_order_reports_count_them() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `status` |"))
    listed = [name for name in re.findall(r"`(\w+)`", row) if name != "status"]
    assert listed[: len(STATUSES)] == list(STATUSES)
