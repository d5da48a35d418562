"""pytest runs in subprocesses under mutmut (the nox session `mutation`); inert otherwise.

mutmut runs the suite in its own process on a mutated copy of the project (``mutants/``) and
learns which tests reach which function from that process alone. Most tests here run pytest in
a subprocess (pytester), which would import the original package (the editable install) and
report nothing: every mutant those tests alone reach would count as untested and could never be
killed. Under mutmut, the ``pytester`` fixture (tests/conftest.py) calls
:func:`route_subprocesses`: the subprocesses import the mutated copy first (``PYTHONPATH``), so
the active mutant (mutmut's ``MUTANT_UNDER_TEST``, inherited) runs in them too, and load this
module as a plugin (``-p tests.mutation``). While mutmut maps tests to functions, a subprocess
writes the functions it reached to a file, which :func:`collect_subprocess_hits` adds to mutmut's
record in the test's own process when the test's call ends.

This reads two internals of mutmut 3.8 (``mutmut.state.state()._stats``, the set the stats run
attributes to the running test, and its config loader), hence the exact pin in noxfile.py.

mutmut calls every function of the package through two frames of its own, so the tests in
:data:`FRAME_SENSITIVE` cannot pass under it; :func:`deselect_frame_sensitive` leaves them out
there (they run everywhere else). PYTEST_DONT_REWRITE: loaded early by ``-p`` in-process too.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

import pytest_bgtasks

#: The project copy the package was imported from: ``mutants/`` under mutmut.
PROJECT = Path(pytest_bgtasks.__file__).resolve().parents[1]
UNDER_MUTMUT = PROJECT.name == "mutants"

_HITS = "BGTASKS_MUTMUT_HITS"  # the directory the subprocesses write their hits to
_PARENT = "BGTASKS_MUTMUT_PARENT"  # the pid of the test's process, which merges them
_PLUGIN = "-p tests.mutation"


#: Tests that read what mutmut's extra frames change: the line a warning or a misuse error
#: points at (``stacklevel``, ``__tracebackhide__``), or the app's line that created an asyncio
#: task (found by walking up the stack).
FRAME_SENSITIVE = frozenset(
    {
        "test_a_misuse_error_points_at_the_test_line_not_the_plugin",
        "test_the_teardown_error_names_the_task_the_seconds_and_the_line",
        "test_every_way_an_app_starts_a_task_is_recorded",
        "test_an_exception_nobody_retrieved_fails_the_test",
        "test_a_task_destroyed_while_pending_fails_the_test",
        "test_a_task_pending_when_its_loop_shuts_down_fails_the_test",
        "test_a_task_still_pending_when_the_test_ends_is_a_leak",
        "test_a_lifespan_task_that_outlives_the_app_fails_the_test",
        "test_a_failed_job_fails_the_test_with_its_kind_shown",
        "test_the_warning_points_at_the_tests_line",
        "test_running_held_tasks_after_yield_dependencies_closed_warns",
        "test_filterwarnings_error_fails_the_test_at_its_line_and_keeps_the_task_held",
        "test_the_warning_names_the_override_in_use",
        "test_teardown_errors_sections_warnings_and_timeouts_hide_secrets",
        "test_bgtasks_redact_adds_names",
        "test_a_failing_test_gets_a_background_tasks_section_with_secrets_redacted",
        "test_redacted_names_are_configurable",
    }
)


def deselect_frame_sensitive(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut, leave out the tests of :data:`FRAME_SENSITIVE`."""
    if not UNDER_MUTMUT:
        return
    left_out = [item for item in items if getattr(item, "originalname", "") in FRAME_SENSITIVE]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


def route_subprocesses(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the test's subprocesses at the mutated copy; the pytest options they need."""
    if not UNDER_MUTMUT:
        return ""
    hits = _hits_directory()
    hits.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv(_HITS, str(hits))
    monkeypatch.setenv(_PARENT, str(os.getpid()))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PROJECT), path])))
    return _PLUGIN


def collect_subprocess_hits() -> None:
    """Add what the test's subprocesses reached to mutmut's record of the running test."""
    if not UNDER_MUTMUT:
        return
    hits = _hits_directory()
    if not hits.is_dir():
        return
    from mutmut.state import state

    for written in sorted(hits.glob("*.json")):
        state()._stats.update(json.loads(written.read_text(encoding="utf-8")))
        written.unlink()


def _hits_directory() -> Path:
    return PROJECT / "subprocess-hits" / str(os.getpid())


def _in_subprocess() -> bool:
    parent = os.environ.get(_PARENT)
    return parent is not None and parent != str(os.getpid())


def _load_mutmut_config() -> None:
    """mutmut reads its config from the working directory the first time a function is reached
    while it maps tests; a subprocess works in pytester's directory, so load it from the copy."""
    from mutmut.configuration import config

    here = Path.cwd()
    os.chdir(PROJECT)
    try:
        config()
    finally:
        os.chdir(here)


if _in_subprocess() and os.environ.get("MUTANT_UNDER_TEST") == "stats":
    _load_mutmut_config()


def pytest_unconfigure(config: pytest.Config) -> None:
    """In a subprocess while mutmut maps tests: write the functions this run reached."""
    if not (_in_subprocess() and os.environ.get("MUTANT_UNDER_TEST") == "stats"):
        return
    from mutmut.state import state

    written = Path(os.environ[_HITS]) / f"{uuid.uuid4().hex}.json"
    written.write_text(json.dumps(sorted(state()._stats)), encoding="utf-8")
