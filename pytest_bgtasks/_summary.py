"""The session summary (``--bgtasks-report``) and JSON export, aggregated across xdist workers.

Each test's teardown report carries its tasks as plain rows (``report.bgtasks``); xdist ships
report attributes to the controller, so the controller sees every worker's rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pytest

from pytest_bgtasks._record import FINAL_STATUSES, STATUSES

if TYPE_CHECKING:
    from pytest_bgtasks._record import TaskCall
    from pytest_bgtasks._rendering import Renderer

SLOWEST = 5


class TaskRow(TypedDict):
    """One task as the summary and the JSON file show it; every text rendered and redacted."""

    index: int
    task: str
    status: str
    duration: float | None
    request: str | None
    error: str | None
    expected: bool
    fault: str | None


class SessionRow(TaskRow):
    """A task row with the node id of the test that recorded it."""

    test: str


def summary_rows(calls: Sequence[TaskCall], renderer: Renderer) -> list[TaskRow]:
    """A test's tasks as JSON-ready rows, rendered by ``renderer`` (redaction applied)."""
    rows: list[TaskRow] = []
    for call in calls:
        shown = renderer.redacted(call)
        rows.append(
            TaskRow(
                index=call.index,
                task=shown.signature,
                status=call.status,
                duration=call.duration,
                request=shown.request,
                error=shown.error,
                expected=call.expected,
                fault=shown.fault,
            )
        )
    return rows


def headline(rows: Sequence[SessionRow]) -> str:
    """``background tasks: 18 total, 14 succeeded, 4 failed (3 expected)``."""
    counts = Counter(row["status"] for row in rows)
    expected = Counter(row["status"] for row in rows if row["expected"])
    parts = [
        f"{counts[status]} {status}"
        + (f" ({expected[status]} expected)" if expected[status] else "")
        for status in STATUSES
        if counts[status]
    ]
    return ", ".join([f"background tasks: {len(rows)} total", *parts])


def every_task(rows: Sequence[SessionRow]) -> list[str]:
    """Each task on a line, by test (verbose runs only)."""
    return ["every task, by test:"] + [
        f"  {row['test']}  #{row['index']} {row['task']}  {row['status']}" for row in rows
    ]


def slowest(rows: Sequence[SessionRow]) -> list[str]:
    """The tasks that took longest, longest first."""
    timed = sorted(
        (row for row in rows if row["duration"] is not None),
        key=lambda row: -(row["duration"] or 0.0),
    )[:SLOWEST]
    if not timed:
        return []
    return [f"slowest {len(timed)}:"] + [
        f"  {row['duration']:.3f}s  {row['task']}  {row['test']}" for row in timed
    ]


def not_succeeded(rows: Sequence[SessionRow]) -> list[str]:
    """Tasks that ended otherwise than succeeding, grouped by test, with their errors."""
    troubled = [row for row in rows if row["status"] in FINAL_STATUSES - {"succeeded"}]
    if not troubled:
        return []
    lines = ["not succeeded, by test:"]
    for test in dict.fromkeys(row["test"] for row in troubled):
        lines.append(f"  {test}")
        for row in troubled:
            if row["test"] == test:
                expected = " (expected)" if row["expected"] else ""
                detail = f"  {row['error']}" if row["error"] else ""
                lines.append(
                    f"    #{row['index']} {row['task']}  {row['status']}{expected}{detail}"
                )
    return lines


class SessionSummary:
    """Collects every test's rows, then prints the summary and writes the JSON file."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[SessionRow] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows: list[TaskRow] = getattr(report, "bgtasks", None) or []
        for row in rows:
            session_row: SessionRow = {**row, "test": report.nodeid}
            self.rows.append(session_row)

    def headline(self) -> str:
        return headline(self.rows)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The same summary at every verbosity; ``-v`` adds every task."""
        if _is_xdist_worker(self.config) or not self.config.getoption("bgtasks_report"):
            return
        terminalreporter.section("background tasks")
        sections: list[Callable[[Sequence[SessionRow]], list[str]]] = [slowest, not_succeeded]
        if self.config.getoption("verbose") > 0:
            sections.insert(0, every_task)
        for line in [self.headline()] + [
            line for section in sections for line in section(self.rows)
        ]:
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.config.getoption("bgtasks_json")
        if path and not _is_xdist_worker(self.config):
            document = {"summary": self.headline(), "tasks": self.rows}
            Path(path).write_text(json.dumps(document, indent=2, default=repr), encoding="utf-8")


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
