"""Bad input: a clear error naming the method and argument, raised before anything changes."""

from __future__ import annotations

import asyncio
import math
import smtplib
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import trio
from starlette.background import BackgroundTask
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, sync_task

BadCall = Callable[[BackgroundTaskRecorder], object]


class NeedsACode(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)


def run_async(method: Callable[..., Any], **kwargs: Any) -> object:
    """Call an async method of the recorder from a sync test."""
    return anyio.run(partial(method, **kwargs))


def bad(call: BadCall, error: type[Exception], message: str, id: str) -> Any:
    return pytest.param(call, error, message, id=id)


SECONDS_GT_0 = r"takes a finite number of seconds > 0, or None for no bound, got "
SECONDS_GE_0 = r"takes a finite number of seconds >= 0, got "

NUMBERS = [
    bad(
        lambda b: b.run_all(timeout=math.nan),
        ValueError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}nan",
        "run_all-nan",
    ),
    bad(
        lambda b: b.run_all(timeout=-1),
        ValueError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}-1$",
        "run_all-negative",
    ),
    bad(
        lambda b: b.run_all(timeout=0),
        ValueError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}0$",
        "run_all-zero",
    ),
    bad(
        lambda b: b.run_all(timeout=math.inf),
        ValueError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}inf",
        "run_all-inf",
    ),
    bad(
        lambda b: b.run_all(timeout=True),
        TypeError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}True",
        "run_all-bool",
    ),
    bad(
        lambda b: b.run_all(timeout="5"),
        TypeError,
        rf"run_all\(timeout=...\) {SECONDS_GT_0}'5'",
        "run_all-str",
    ),
    bad(
        lambda b: run_async(b.run_all_async, timeout=math.nan),
        ValueError,
        rf"run_all_async\(timeout=...\) {SECONDS_GT_0}nan",
        "run_all_async-nan",
    ),
    bad(
        lambda b: run_async(b.run_all_async, timeout=0),
        ValueError,
        rf"run_all_async\(timeout=...\) {SECONDS_GT_0}0$",
        "run_all_async-zero",
    ),
    bad(
        lambda b: run_async(b.run_all_async, timeout=-math.inf),
        ValueError,
        rf"run_all_async\(timeout=...\) {SECONDS_GT_0}-inf",
        "run_all_async-minus-inf",
    ),
    bad(
        lambda b: b.wait(timeout=math.nan),
        ValueError,
        rf"bgtasks.wait\(timeout=...\) {SECONDS_GE_0}nan",
        "wait-nan",
    ),
    bad(
        lambda b: b.wait(timeout=-0.5),
        ValueError,
        rf"bgtasks.wait\(timeout=...\) {SECONDS_GE_0}-0.5",
        "wait-negative",
    ),
    bad(
        lambda b: b.wait(timeout=math.inf),
        ValueError,
        rf"bgtasks.wait\(timeout=...\) {SECONDS_GE_0}inf",
        "wait-inf",
    ),
    bad(
        lambda b: b.wait(timeout=1e300),
        ValueError,
        r"got 1e\+300, more than a wait can take",
        "wait-huge",
    ),
    bad(
        lambda b: b.wait(timeout=None),
        TypeError,
        rf"bgtasks.wait\(timeout=...\) {SECONDS_GE_0}None",
        "wait-none",
    ),
    bad(
        lambda b: b.wait(timeout=False),
        TypeError,
        rf"bgtasks.wait\(timeout=...\) {SECONDS_GE_0}False",
        "wait-bool",
    ),
    bad(
        lambda b: run_async(b.wait_async, timeout=math.nan),
        ValueError,
        rf"wait_async\(timeout=...\) {SECONDS_GE_0}nan",
        "wait_async-nan",
    ),
    bad(
        lambda b: run_async(b.wait_async, timeout=None),
        TypeError,
        rf"wait_async\(timeout=...\) {SECONDS_GE_0}None",
        "wait_async-none",
    ),
    bad(
        lambda b: b.shutdown(grace=-1),
        ValueError,
        rf"bgtasks.shutdown\(grace=...\) {SECONDS_GE_0}-1",
        "shutdown-negative",
    ),
    bad(
        lambda b: b.shutdown(grace=math.nan),
        ValueError,
        rf"bgtasks.shutdown\(grace=...\) {SECONDS_GE_0}nan",
        "shutdown-nan",
    ),
    bad(
        lambda b: b.shutdown(grace="1"),
        TypeError,
        rf"bgtasks.shutdown\(grace=...\) {SECONDS_GE_0}'1'",
        "shutdown-str",
    ),
    bad(
        lambda b: b.shutdown(grace=None),
        TypeError,
        rf"bgtasks.shutdown\(grace=...\) {SECONDS_GE_0}None",
        "shutdown-none",
    ),
    bad(
        lambda b: run_async(b.shutdown_async, grace=math.inf),
        ValueError,
        rf"bgtasks.shutdown_async\(grace=...\) {SECONDS_GE_0}inf",
        "shutdown_async-inf",
    ),
    bad(
        lambda b: b.delay(sync_task, math.nan),
        ValueError,
        rf"bgtasks.delay\(seconds=...\) {SECONDS_GE_0}nan",
        "delay-nan",
    ),
    bad(
        lambda b: b.delay(sync_task, math.inf),
        ValueError,
        r"got inf: use bgtasks.hang\(\) for a task that never finishes",
        "delay-inf",
    ),
    bad(
        lambda b: b.delay(sync_task, -1),
        ValueError,
        rf"bgtasks.delay\(seconds=...\) {SECONDS_GE_0}-1",
        "delay-negative",
    ),
    bad(
        lambda b: b.delay(sync_task, True),
        TypeError,
        rf"bgtasks.delay\(seconds=...\) {SECONDS_GE_0}True",
        "delay-bool",
    ),
    bad(
        lambda b: b.delay(sync_task, "1s"),
        TypeError,
        rf"bgtasks.delay\(seconds=...\) {SECONDS_GE_0}'1s'",
        "delay-str",
    ),
    bad(
        lambda b: b.fail(sync_task, ValueError, times=True),
        TypeError,
        r"bgtasks.fail\(times=...\) takes a whole number >= 1, got True",
        "times-bool",
    ),
    bad(
        lambda b: b.fail(sync_task, ValueError, times=0),
        ValueError,
        r"bgtasks.fail\(times=...\) takes a whole number >= 1, got 0",
        "times-zero",
    ),
    bad(
        lambda b: b.hang(sync_task, times=1.0),
        TypeError,
        r"bgtasks.hang\(times=...\) takes a whole number >= 1, got 1.0",
        "times-float",
    ),
]

FAULTS = [
    bad(
        lambda b: b.fail(sync_task, "boom"),
        TypeError,
        r"bgtasks.fail\(\) needs an exception instance or class",
        "fail-not-exception",
    ),
    bad(
        lambda b: b.fail(42, ValueError),
        TypeError,
        r"bgtasks.fail\(\) takes the task function or its name",
        "fail-bad-target",
    ),
    bad(
        lambda b: b.fail(sync_task, ValueError, when=1),
        TypeError,
        r"bgtasks.fail\(when=...\) takes a predicate",
        "when-not-callable",
    ),
    bad(
        lambda b: b.replace(sync_task, "fake"),
        TypeError,
        r"bgtasks.replace\(\) needs a callable",
        "replace-not-callable",
    ),
    bad(
        lambda b: b.fail(sync_task, smtplib.SMTPResponseException),
        TypeError,
        r"bgtasks.fail\(\) got the class SMTPResponseException, which cannot be made without"
        r" arguments \(TypeError: .*missing 2 required positional arguments.*\); pass an"
        r" instance instead, such as SMTPResponseException\(...\)",
        "fail-class-needs-arguments",
    ),
    bad(
        lambda b: b.fail_after("sync_task", NeedsACode),
        TypeError,
        r"bgtasks.fail_after\(\) got the class NeedsACode, which cannot be made",
        "fail_after-class-needs-arguments",
    ),
    bad(
        lambda b: b.fail(sync_task, StopIteration),
        ValueError,
        r"bgtasks.fail\(\) cannot raise StopIteration: Python turns a StopIteration that leaves a coroutine into RuntimeError",
        "fail-stopiteration",
    ),
    bad(
        lambda b: b.fail_after(sync_task, StopIteration("done")),
        ValueError,
        r"bgtasks.fail_after\(\) cannot raise StopIteration",
        "fail_after-stopiteration-instance",
    ),
    bad(
        lambda b: b.fail(sync_task, asyncio.CancelledError),
        ValueError,
        r"bgtasks.fail\(\) cannot raise CancelledError: the event loop takes it for a cancellation .* use bgtasks.hang\(\)",
        "fail-cancellederror",
    ),
    bad(
        lambda b: b.fail(sync_task, asyncio.CancelledError()),
        ValueError,
        r"cannot raise CancelledError",
        "fail-cancellederror-instance",
    ),
    bad(
        lambda b: b.fail(sync_task, trio.Cancelled),
        ValueError,
        r"cannot raise Cancelled: the event loop takes it",
        "fail-trio-cancelled",
    ),
]

RECORDER = [
    bad(
        lambda b: b.assert_failed(sync_task, "RuntimeError"),
        TypeError,
        r"bgtasks.assert_failed\(\) takes the exception class .* got 'RuntimeError'",
        "assert_failed-string",
    ),
    bad(
        lambda b: b.assert_failed(sync_task, RuntimeError("x")),
        TypeError,
        r"bgtasks.assert_failed\(\) takes the exception class .* got RuntimeError\('x'\)",
        "assert_failed-instance",
    ),
    bad(
        lambda b: b.assert_failed(sync_task, (ValueError, "KeyError")),
        TypeError,
        r"bgtasks.assert_failed\(\) takes the exception class .* got \(<class 'ValueError'>, 'KeyError'\)",
        "assert_failed-tuple-with-string",
    ),
    bad(
        lambda b: b.assert_failed(sync_task, match=1),
        TypeError,
        r"bgtasks.assert_failed\(match=...\) takes a regular expression string, got 1",
        "assert_failed-match-int",
    ),
    bad(
        lambda b: b.assert_failed(sync_task, match="(unclosed"),
        ValueError,
        r"bgtasks.assert_failed\(match=...\) is not a valid regular expression",
        "assert_failed-match-bad-regex",
    ),
    bad(
        lambda b: b.assert_failed(42),
        TypeError,
        r"bgtasks.assert_failed\(\) takes the task function or its name",
        "assert_failed-bad-target",
    ),
    bad(
        lambda b: b.run(42),
        TypeError,
        r"bgtasks.run\(\) takes a TaskCall from bgtasks.held, got 42",
        "run-int",
    ),
    bad(
        lambda b: b.run(None),
        TypeError,
        r"bgtasks.run\(\) takes a TaskCall from bgtasks.held, got None",
        "run-none",
    ),
    bad(
        lambda b: b.calls_to(42),
        TypeError,
        r"bgtasks.calls_to\(\) takes the task function or its name",
        "calls_to-int",
    ),
    bad(
        lambda b: b.assert_scheduled(None),
        TypeError,
        r"bgtasks.assert_scheduled\(\) takes the task function",
        "assert_scheduled-none",
    ),
    bad(
        lambda b: b.assert_scheduled_once(None),
        TypeError,
        r"bgtasks.assert_scheduled_once\(\) takes the task function",
        "assert_scheduled_once-none",
    ),
    bad(
        lambda b: b.assert_not_scheduled(42),
        TypeError,
        r"bgtasks.assert_not_scheduled\(\) takes the task function",
        "assert_not_scheduled-int",
    ),
    bad(
        lambda b: b.assert_dropped(42),
        TypeError,
        r"bgtasks.assert_dropped\(\) takes the task function",
        "assert_dropped-int",
    ),
    bad(
        lambda b: b.assert_scheduled(sync_task, "a", "b"),
        TypeError,
        r"bgtasks.assert_scheduled\(\): ",
        "assert_scheduled-misfit",
    ),
    bad(
        lambda b: b.assert_scheduled_once(sync_task, nope=1),
        TypeError,
        r"bgtasks.assert_scheduled_once\(\): ",
        "assert_scheduled_once-misfit",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), NUMBERS + FAULTS + RECORDER)
def test_a_bad_call_is_a_clear_error(
    bgtasks: BackgroundTaskRecorder, call: BadCall, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(bgtasks)
    # a refused fault is not registered: teardown would report it "never applied"


REFUSED_RUNS = [
    pytest.param(lambda b: b.run_all(timeout=math.nan), id="run_all-nan"),
    pytest.param(lambda b: b.run_all(timeout=0), id="run_all-zero"),
    pytest.param(lambda b: b.run_all(timeout=-1), id="run_all-negative"),
    pytest.param(lambda b: b.run_all(timeout=math.inf), id="run_all-inf"),
    pytest.param(lambda b: run_async(b.run_all_async, timeout=math.nan), id="run_all_async-nan"),
    pytest.param(lambda b: run_async(b.run_all_async, timeout=True), id="run_all_async-bool"),
    pytest.param(lambda b: b.run("not a task"), id="run-str"),
    pytest.param(lambda b: b.shutdown(grace=-1), id="shutdown-negative"),
    pytest.param(lambda b: run_async(b.shutdown_async, grace=math.nan), id="shutdown_async-nan"),
]


@pytest.mark.bgtasks(mode="deferred")
@pytest.mark.parametrize("refused", REFUSED_RUNS)
def test_a_refused_run_leaves_the_held_tasks_held(
    bgtasks: BackgroundTaskRecorder, refused: BadCall
) -> None:
    TestClient(app).post("/items/1")
    held = bgtasks.held

    with pytest.raises((TypeError, ValueError)):
        refused(bgtasks)

    assert bgtasks.held == held
    assert [call.status for call in held] == ["held", "held"]
    ran = bgtasks.run_all(timeout=5)
    assert [call.status for call in ran] == ["succeeded", "succeeded"]
    assert [label for label, _ in apps.journal] == ["item 1", "async item 1"]


def test_a_refused_fault_changes_nothing(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(ValueError, match="cannot raise StopIteration"):
        bgtasks.fail(sync_task, StopIteration)

    TestClient(app).post("/items/1")

    bgtasks.assert_all_succeeded()


def test_an_exception_class_that_needs_no_arguments_is_raised_fresh_each_run(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    bgtasks.fail(sync_task, ConnectionError, times=2)
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/2")

    first, second = (call.exception for call in bgtasks.failed)
    assert isinstance(first, ConnectionError) and isinstance(second, ConnectionError)
    assert first is not second


@pytest.mark.bgtasks(mode="deferred")
@pytest.mark.anyio
async def test_a_run_cancelled_before_the_task_started_leaves_it_held(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        await client.post("/items/1")
    first, second = bgtasks.held

    with anyio.CancelScope() as scope:
        scope.cancel()  # the sync task's hand-over to its worker thread never happens
        await bgtasks.run_all_async()

    assert bgtasks.held == [first, second]
    assert (first.status, first.reason, first.fault) == ("held", None, None)
    assert apps.journal == []
    ran = await bgtasks.run_all_async(timeout=5)
    assert [call.status for call in ran] == ["succeeded", "succeeded"]


@pytest.mark.bgtasks(strict=False)
def test_an_eager_task_cancelled_before_it_started_says_so(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    async def cancelled_first() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()  # the sync task's hand-over to its worker thread never happens
            await BackgroundTask(sync_task, "never")()

    anyio.run(cancelled_first)

    (call,) = bgtasks.calls
    assert (call.status, call.reason) == ("cancelled", "cancelled before it started")
    assert apps.journal == []


def test_a_when_predicate_that_raises_is_reported_as_such(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        from starlette.testclient import TestClient
        from apps import app, sync_task

        def test_predicate(bgtasks):
            bgtasks.fail(sync_task, ValueError, when=lambda call: call.arguments["to"])
            response = TestClient(app).post("/items/1")
            assert response.json() == {"id": 1}
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 sync_task(label='item 1')  failed  POST /items/1 (/items/{item_id})"
            "  fault fail(sync_task, <class 'ValueError'>)"
            "  the fault's when= predicate raised (below), so the task never ran",
            '        File "*", line 5, in <lambda>',
            "          bgtasks.fail(sync_task, ValueError, when=lambda call: call.arguments*",
            "*KeyError: 'to'",
        ]
    )
    result.stdout.no_fnmatch_line("*  dropped  *")
    result.stdout.no_fnmatch_line("*never applied*")


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("bgtasks_strict = maybe", "*ini option bgtasks_strict takes true or false*'maybe'*"),
        (
            "bgtasks_mode = later",
            "*ini option bgtasks_mode: *one of 'eager', 'deferred', got 'later'",
        ),
        (
            "bgtasks_roundtrip = yaml",
            "*ini option bgtasks_roundtrip takes json or pickle, got 'yaml'",
        ),
        (
            "bgtasks_teardown_timeout = soon",
            "*ini option bgtasks_teardown_timeout takes a finite number of seconds >= 0, got 'soon'",
        ),
        (
            "bgtasks_teardown_timeout = inf",
            "*ini option bgtasks_teardown_timeout takes a finite number of seconds >= 0, got inf",
        ),
        (
            "bgtasks_teardown_timeout = nan",
            "*ini option bgtasks_teardown_timeout takes a finite number of seconds >= 0, got nan",
        ),
        (
            "bgtasks_teardown_timeout = -1",
            "*ini option bgtasks_teardown_timeout takes a finite number of seconds >= 0, got -1.0",
        ),
        (
            "bgtasks_blocking_limit = fast",
            "*ini option bgtasks_blocking_limit takes a finite number of seconds > 0, got 'fast'"
            " (or none for no limit)",
        ),
        (
            "bgtasks_blocking_limit = 0",
            "*ini option bgtasks_blocking_limit takes a finite number of seconds > 0, got 0.0*",
        ),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_it(bgtasks): pass")
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_misuse_error_points_at_the_test_line_not_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.bgtasks(mode="deferred")
        def test_timeout(bgtasks):
            bgtasks.run_all(timeout=float("nan"))

        def test_fault(bgtasks):
            bgtasks.fail("send_email", StopIteration)

        def test_assertion(bgtasks):
            bgtasks.assert_failed("send_email", "RuntimeError")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            '>       bgtasks.run_all(timeout=float("nan"))',
            "E       ValueError: bgtasks.run_all(timeout=...) takes *, got nan",
            '>       bgtasks.fail("send_email", StopIteration)',
            "E       ValueError: bgtasks.fail() cannot raise StopIteration: *",
            '>       bgtasks.assert_failed("send_email", "RuntimeError")',
            "E       TypeError: bgtasks.assert_failed() takes the exception class *",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_bgtasks*")


def test_assert_failed_takes_a_tuple_of_classes_as_isinstance_does(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app).post("/fail")

    bgtasks.assert_failed(apps.boom, (KeyError, RuntimeError), match="task boom")
    with pytest.raises(AssertionError, match="to fail with KeyError or ValueError"):
        bgtasks.assert_failed(apps.boom, (KeyError, ValueError))
