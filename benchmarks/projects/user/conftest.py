"""Times every test, set-up and teardown included, and writes them to ``$BGTASKS_BENCH_OUT``.

``maybe_bgtasks`` requests the plugin's ``bgtasks`` fixture on the plugin side of a pair only.
"""

from __future__ import annotations

import json
import os

import pytest

_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("BGTASKS_BENCH_OUT")
    if out:
        with open(out, "w") as file:
            json.dump(_durations, file)


@pytest.fixture
def maybe_bgtasks(request: pytest.FixtureRequest) -> None:
    if request.param == "plugin":
        request.getfixturevalue("bgtasks")
