"""pytest wiring: options, the marker, the ``bgtasks`` fixture, report sections, the summary."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_bgtasks._numbers import checked_seconds
from pytest_bgtasks._options import DEFAULT_SECRET_NAMES, MARKER, MARKER_DOC, Options

if TYPE_CHECKING:  # imported when first needed: start-up stays light
    from pytest_bgtasks._core import Core
    from pytest_bgtasks._recorder import BackgroundTaskRecorder
    from pytest_bgtasks._rendering import Renderer
    from pytest_bgtasks._summary import SessionSummary

DEFAULTS_KEY = pytest.StashKey[Options]()
RENDERER_KEY: pytest.StashKey[Renderer] = pytest.StashKey()
CORE_KEY: pytest.StashKey[Core] = pytest.StashKey()
SUMMARY_KEY: pytest.StashKey[SessionSummary] = pytest.StashKey()
TEARDOWN_TIMEOUT_KEY = pytest.StashKey[float]()
STRICT_FAILED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bgtasks", "background tasks (pytest-bgtasks)")
    group.addoption(
        "--bgtasks-report",
        action="store_true",
        default=False,
        help="print a summary of every background task at the end of the run.",
    )
    group.addoption(
        "--bgtasks-json",
        metavar="PATH",
        default=None,
        help="write every background task of the run to PATH as JSON (for CI dashboards).",
    )
    parser.addini(
        "bgtasks_mode", "default bgtasks mode: eager (default) or deferred.", default="eager"
    )
    parser.addini(
        "bgtasks_strict",
        "error a test whose background tasks failed or were dropped unexpectedly (default true).",
        type="bool",
        default=True,
    )
    parser.addini(
        "bgtasks_roundtrip",
        "json or pickle: error a test whose background task arguments do not survive that"
        " serializer, as before moving the tasks to a job queue (default: no check).",
        default="",
    )
    parser.addini(
        "bgtasks_redact",
        "more names (arguments, dict keys, fields, route parameters) whose values are shown"
        " as *** (defaults: " + ", ".join(DEFAULT_SECRET_NAMES) + ").",
        type="linelist",
        default=[],
    )
    parser.addini(
        "bgtasks_blocking_limit",
        "seconds an async task may hold the event loop without yielding before the test errors"
        " (default 0.1; none: no limit).",
        default="0.1",
    )
    parser.addini(
        "bgtasks_teardown_timeout",
        "seconds teardown waits for running background tasks (default 5).",
        default="5",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    config.stash[DEFAULTS_KEY] = Options.from_ini(config)
    config.stash[TEARDOWN_TIMEOUT_KEY] = _teardown_timeout(config)
    if config.getoption("bgtasks_report") or config.getoption("bgtasks_json"):
        from pytest_bgtasks._summary import SessionSummary

        summary = SessionSummary(config)
        config.stash[SUMMARY_KEY] = summary
        config.pluginmanager.register(summary, "bgtasks-summary")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``bgtasks`` (at any level) gets the fixture without requesting it."""
    for item in items:
        names = getattr(item, "fixturenames", None)  # Function items only
        if names is not None and "bgtasks" not in names and item.get_closest_marker(MARKER):
            names.insert(0, "bgtasks")


def _renderer(config: pytest.Config) -> Renderer:
    """The run's one renderer, which redacts everything printed; made on first use."""
    renderer = config.stash.get(RENDERER_KEY, None)
    if renderer is None:
        from pytest_bgtasks._rendering import Renderer

        names = (*DEFAULT_SECRET_NAMES, *config.getini("bgtasks_redact"))
        renderer = config.stash[RENDERER_KEY] = Renderer(names)
    return renderer


def _teardown_timeout(config: pytest.Config) -> float:
    raw = config.getini("bgtasks_teardown_timeout")
    try:
        value: object = float(raw)
    except ValueError:
        value = raw  # refused below, shown as written
    try:
        return checked_seconds(value, "ini option bgtasks_teardown_timeout")
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture
def bgtasks(request: pytest.FixtureRequest) -> Iterator[BackgroundTaskRecorder]:
    """Record the background tasks that Starlette/FastAPI apps schedule during the test.

    Tasks run as Starlette runs them (mode "eager"), or are held until ``bgtasks.run_all()``
    (mode "deferred"). Assert with ``bgtasks.assert_scheduled(func, *args, **kwargs)``; inject
    faults with ``bgtasks.fail(func, exc)``. At teardown a task that failed or never ran errors
    the test, unless expected, and so does an argument that ends before its task runs in
    production. Configure with ``@pytest.mark.bgtasks(mode=..., strict=..., lifetimes=...,
    roundtrip=..., contain=...)``.
    """
    from pytest_bgtasks import _strict
    from pytest_bgtasks._core import Core
    from pytest_bgtasks._lifetimes import ArgumentCheck
    from pytest_bgtasks._recorder import BackgroundTaskRecorder
    from pytest_bgtasks._sources import installed

    config = request.config
    try:
        options = config.stash[DEFAULTS_KEY].merged(request.node)
    except (TypeError, ValueError) as error:
        bad_marker: str | None = f"pytest-bgtasks: {error}"
    else:
        bad_marker = None
    if bad_marker is not None:  # failed outside the except: the error shows once, not chained
        pytest.fail(bad_marker, pytrace=False)
    renderer = _renderer(config)
    check = None
    if options.strict and (options.lifetimes or options.roundtrip is not None):
        check = ArgumentCheck(lifetimes=options.lifetimes, roundtrip=options.roundtrip)
    core = Core(
        options.mode,
        options.queues,
        check,
        blocking_limit=options.blocking_limit,
        contain=options.contain,
    )
    recorder = BackgroundTaskRecorder(core, renderer)
    request.node.stash[CORE_KEY] = core
    with installed(core):
        try:
            yield recorder
        finally:
            still_running = core.settle(config.stash[TEARDOWN_TIMEOUT_KEY])
    if not options.strict or request.session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return  # an interrupted run (Ctrl-C) tears down in session finish: report nothing there
    problems = _strict.problems(core, renderer, still_running)
    if problems:
        request.node.stash[STRICT_FAILED_KEY] = True
        pytest.fail(_strict.report(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    core = item.stash.get(CORE_KEY, None)
    if core is None:
        return
    report: pytest.TestReport = outcome.get_result()
    renderer = _renderer(item.config)
    if report.failed and core.calls:
        # The strict check's error shows the tracebacks already: list the tasks without them.
        tracebacks = not (report.when == "teardown" and item.stash.get(STRICT_FAILED_KEY, False))
        block = renderer.block(core.calls, tracebacks=tracebacks)
        report.sections.append(("background tasks", block))
    if report.failed and core.replay_notes:  # how to run its reordered runs again
        notes = renderer.scrub("\n".join(core.replay_notes), core.calls)
        report.sections.append(("bgtasks replay order", notes))
    if report.when == "teardown":
        if SUMMARY_KEY in item.config.stash:
            from pytest_bgtasks._summary import summary_rows

            report.bgtasks = summary_rows(core.calls, renderer)  # type: ignore[attr-defined]
        del item.stash[CORE_KEY]  # the record holds arguments and results: free them
