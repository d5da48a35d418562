"""The session summary (``--bgtasks-report``) and JSON export, aggregated across xdist workers.

Each test's teardown report carries its tasks as plain rows (``report.bgtasks``); xdist ships
report attributes to the controller, so the controller sees every worker's rows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_bgtasks._record import FINAL_STATUSES

if TYPE_CHECKING:
    from pytest_bgtasks._recorder import BackgroundTaskRecorder

SLOWEST = 5
STATUS_ORDER = (
    "succeeded",
    "failed",
    "skipped",
    "dropped",
    "cancelled",
    "discarded",
    "running",
    "scheduled",
)


def summary_rows(recorder: BackgroundTaskRecorder) -> list[dict[str, Any]]:
    """The recorder's tasks as JSON-ready rows, every text field rendered and redacted already."""
    rows = []
    for call in recorder.calls:
        shown = recorder._renderer.redacted(call)
        rows.append(
            {
                "index": call.index,
                "task": shown.signature,
                "status": call.status,
                "duration": call.duration,
                "request": shown.request,
                "error": shown.error,
                "expected": call.expected,
                "fault": shown.fault,
            }
        )
    return rows


class SessionSummary:
    """Collects every test's rows, then prints the summary and writes the JSON file."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for row in getattr(report, "bgtasks", None) or ():
            self.rows.append({"test": report.nodeid, **row})

    def headline(self) -> str:
        counts = Counter(row["status"] for row in self.rows)
        parts = [f"{counts[status]} {status}" for status in STATUS_ORDER if counts[status]]
        return f"background tasks: {len(self.rows)} total" + (
            ", " + ", ".join(parts) if parts else ""
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if _is_xdist_worker(self.config) or not self.config.getoption("bgtasks_report"):
            return
        write = terminalreporter.write_line
        verbosity = self.config.getoption("verbose")
        terminalreporter.section("background tasks")
        write(self.headline())
        if verbosity > 0:
            write("every task, by test:")
            for row in self.rows:
                write(f"  {row['test']}  #{row['index']} {row['task']}  {row['status']}")
        timed = sorted(
            (r for r in self.rows if r["duration"] is not None), key=lambda r: -r["duration"]
        )
        if timed and verbosity == 0:
            write(f"slowest {min(SLOWEST, len(timed))}:")
            for row in timed[:SLOWEST]:
                write(f"  {row['duration']:.3f}s  {row['task']}  {row['test']}")
        troubled = [r for r in self.rows if r["status"] in FINAL_STATUSES - {"succeeded"}]
        if troubled and verbosity >= 0:
            write("not succeeded, by test:")
            for test in dict.fromkeys(row["test"] for row in troubled):
                write(f"  {test}")
                for row in (r for r in troubled if r["test"] == test):
                    expected = " (expected)" if row["expected"] else ""
                    detail = f"  {row['error']}" if row["error"] else ""
                    write(f"    #{row['index']} {row['task']}  {row['status']}{expected}{detail}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.config.getoption("bgtasks_json")
        if path and not _is_xdist_worker(self.config):
            document = {"summary": self.headline(), "tasks": self.rows}
            Path(path).write_text(json.dumps(document, indent=2, default=repr), encoding="utf-8")


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
