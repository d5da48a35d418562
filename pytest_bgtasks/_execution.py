"""Running one recorded task the way Starlette does, with its fault, and booking the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NoReturn

import anyio
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool

from pytest_bgtasks._bounds import INLINE_JOB, hang_refused
from pytest_bgtasks._core import Core
from pytest_bgtasks._faults import Fault, FaultReleased
from pytest_bgtasks._ledger import Ledger
from pytest_bgtasks._outcomes import skip_rest_of_batch
from pytest_bgtasks._record import NOT_STARTED, TaskCall, current_call
from pytest_bgtasks._shutdown import Cancellable, ShutDown

#: Why a ``hang()`` would never end where a task runs: the reason, a function that works it
#: out (asked only when a hang applies), or None where a hang can end.
HangRefusal = str | Callable[[], str | None] | None


async def execute(
    core: Core,
    call: TaskCall,
    *,
    reraise: bool,
    is_async: bool | None = None,
    hang_refusal: HangRefusal = None,
) -> None:
    """Run ``call`` now on this loop: async functions here, sync ones in the worker threadpool.

    A failure is recorded and skips the rest of its response's tasks. It is
    re-raised when ``reraise`` (the live path, so the app sees it as Starlette makes it see it),
    and always when it is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``), as
    Starlette would. ``is_async`` is the task's own cached flag, where the caller has the task.
    ``hang_refusal`` says why a ``hang()`` fault would never end here (or works it out, only
    when a hang applies): the run fails at once with it, an error the app does not contain,
    instead of blocking the test for ever.
    """
    fault: Fault | None = None
    ledger = core.ledger
    ledger.enter()
    running = current_call.set(call)  # work the task creates is attributed to it
    try:
        func, is_async, fault = _body(core, call, is_async, hang_refusal)
        if is_async:  # here, not in a coroutine of its own: one frame less on every step
            ledger.start(call)
            try:
                with Cancellable(call):
                    call.result = await core.blocking.steps(func(*call.args, **call.kwargs), call)
            finally:
                ledger.stop(call)
        else:
            call.result = await run_in_threadpool(_run_sync, ledger, call, func)
    except BaseException as exc:
        if exc is call.exception:  # a refused hang, booked already: the test's error, uncontained
            raise
        outcome = _book_failure(core, call, exc, fault)
        if outcome == "cancelled" or (
            outcome == "failed" and (reraise or not isinstance(exc, Exception))
        ):
            raise
    else:
        call.status = "succeeded"
    finally:
        current_call.reset(running)
        ledger.leave()


def execute_sync(core: Core, call: TaskCall) -> None:
    """Run ``call`` now in this thread, for a job enqueued from sync code.

    The outcome is recorded, not raised: enqueueing does not fail when the job does. Only what
    is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``) goes on up, and a refused
    ``hang()``: the enqueue waits for the job, so a hang would never end.
    """
    fault: Fault | None = None
    ledger = core.ledger
    ledger.enter()
    running = current_call.set(call)
    try:
        func, _, fault = _body(core, call, False, INLINE_JOB)
        call.result = _run_sync(ledger, call, func)
    except BaseException as exc:
        if exc is call.exception:  # a refused hang, booked already: the test's error
            raise
        outcome = _book_failure(core, call, exc, fault)
        if outcome == "cancelled" or (outcome == "failed" and not isinstance(exc, Exception)):
            raise
    else:
        call.status = "succeeded"
    finally:
        current_call.reset(running)
        ledger.leave()


def _body(
    core: Core, call: TaskCall, is_async: bool | None, hang_refusal: HangRefusal = None
) -> tuple[Callable[..., Any], bool, Fault | None]:
    """What runs for ``call`` (a queue's runner, or its function), under its fault if any.

    A fault's ``when=`` predicate that raises fails the run with its error (the caller books it).
    A ``hang()`` fault is refused with ``hang_refusal`` (why it would never end), if given.
    """
    job = call.job
    func = call.func if job is None or job.runner is None else job.runner
    assert func is not None, "a job without a function has a runner"
    if is_async is None:
        is_async = is_async_callable(func)
    fault = core.faults.claim(call)
    if fault is not None:
        call.fault = str(fault)
        if fault.kind == "hang" and hang_refusal is not None:
            why = hang_refusal() if callable(hang_refusal) else hang_refusal
            if why is not None:
                _refuse(call, hang_refused(fault, call, why))
        func, is_async = fault.body(func, is_async)
    return func, is_async, fault


def _run_sync(ledger: Ledger, call: TaskCall, func: Callable[..., Any]) -> Any:
    ledger.start(call)  # in the worker thread: a task queued for a thread is not running yet
    try:
        return func(*call.args, **call.kwargs)
    finally:
        ledger.stop(call)


def _refuse(call: TaskCall, error: RuntimeError) -> NoReturn:
    """Fail ``call`` with ``error`` before it starts, as the test's error, not the task's."""
    __tracebackhide__ = True
    call.status = "failed"
    call.exception = error
    skip_rest_of_batch(call)
    raise error


def _book_failure(
    core: Core, call: TaskCall, exc: BaseException, fault: Fault | None
) -> Literal["failed", "cancelled", "released"]:
    """Record how ``call`` ended, and skip the rest of its response as Starlette would."""
    if isinstance(exc, FaultReleased):
        call.status = "cancelled"
        call.reason = "hung by fault until the test ended"
        call.expected = True
        skip_rest_of_batch(call)
        return "released"
    if isinstance(exc, ShutDown):
        call.status = "cancelled"
        call.reason = str(exc)
        call.expected = True  # the test asked for it; the tasks after it are skipped already
        return "released"
    if _is_cancellation(exc):
        started = call.status not in NOT_STARTED
        if not started:
            call.fault = None  # nothing was applied to it
            if call.held:  # a replay cancelled before its task started: it stays held
                return "cancelled"
        call.status = "cancelled"
        call.reason = "cancelled while running" if started else "cancelled before it started"
        call.expected = fault is not None and fault.kind == "hang"
        return "cancelled"
    call.status = "failed"
    call.exception = exc
    call.expected = fault is not None and fault.raised(exc)
    core.failures[id(exc)] = call
    skip_rest_of_batch(call)
    return "failed"


def _is_cancellation(exc: BaseException) -> bool:
    """True for the running event loop's cancellation; a thread with no loop (a sync job's
    run) has none."""
    try:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    except RuntimeError:  # anyio's NoEventLoopError, sniffio's AsyncLibraryNotFoundError
        return False
