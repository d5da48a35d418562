"""Running one recorded task the way Starlette does, with its fault, and booking the outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool

from pytest_bgtasks._faults import Fault, FaultReleased
from pytest_bgtasks._record import TaskCall

if TYPE_CHECKING:
    from pytest_bgtasks._recorder import BackgroundTaskRecorder


class Ledger:
    """Counts what is in flight and what runs, so ``wait()`` knows when all is idle.

    ``busy`` counts requests being handled and tasks handed over to run (a sync task queued
    for a worker thread included); ``running`` counts tasks whose function has started.
    """

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self.busy = 0
        self.running = 0
        self.max_running = 0

    def enter(self) -> None:
        with self._idle:
            self.busy += 1

    def leave(self) -> None:
        with self._idle:
            self.busy -= 1
            if self.busy == 0:
                self._idle.notify_all()

    def start(self, call: TaskCall) -> None:
        call.status = "running"
        call.started_at = time.monotonic()
        with self._idle:
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def stop(self, call: TaskCall) -> None:
        call.finished_at = time.monotonic()
        with self._idle:
            self.running -= 1

    def wait_idle(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.busy == 0, timeout)


async def execute(
    recorder: BackgroundTaskRecorder, call: TaskCall, *, reraise: bool, is_async: bool | None = None
) -> None:
    """Run ``call`` now on this loop: async functions here, sync ones in the worker threadpool.

    A failure is recorded and skips the rest of its response's tasks. It is re-raised when
    ``reraise`` (the live path, so the app sees it as Starlette makes it see it), and always
    when it is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``), as Starlette would.
    ``is_async`` is the task's own cached flag, where the caller has the task.
    """
    func: Callable[..., Any] = call.func
    if is_async is None:
        is_async = is_async_callable(func)
    fault = recorder._claim_fault(call)
    if fault is not None:
        call.fault = str(fault)
        func, is_async = fault.body(func, is_async)
    ledger = recorder._ledger
    ledger.enter()
    try:
        if is_async:
            call.result = await _run_async(ledger, call, func)
        else:
            call.result = await run_in_threadpool(_run_sync, ledger, call, func)
    except BaseException as exc:
        outcome = _book_failure(recorder, call, exc, fault)
        if outcome == "cancelled" or (
            outcome == "failed" and (reraise or not isinstance(exc, Exception))
        ):
            raise
    else:
        call.status = "succeeded"
    finally:
        ledger.leave()


async def _run_async(ledger: Ledger, call: TaskCall, func: Callable[..., Any]) -> Any:
    ledger.start(call)
    try:
        return await func(*call.args, **call.kwargs)
    finally:
        ledger.stop(call)


def _run_sync(ledger: Ledger, call: TaskCall, func: Callable[..., Any]) -> Any:
    ledger.start(call)  # in the worker thread: a task queued for a thread is not running yet
    try:
        return func(*call.args, **call.kwargs)
    finally:
        ledger.stop(call)


def _book_failure(
    recorder: BackgroundTaskRecorder, call: TaskCall, exc: BaseException, fault: Fault | None
) -> Literal["failed", "cancelled", "released"]:
    """Record how ``call`` ended, and skip the rest of its response as Starlette would."""
    if isinstance(exc, FaultReleased):
        call.status = "cancelled"
        call.reason = "hung by fault until the test ended"
        call.expected = True
        recorder._skip_rest_of_batch(call)
        return "released"
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        call.status = "cancelled"
        call.reason = "cancelled while running"
        call.expected = fault is not None and fault.kind == "hang"
        return "cancelled"
    call.status = "failed"
    call.exception = exc
    call.expected = fault is not None and fault.raised(exc)
    recorder._failures[id(exc)] = call
    recorder._skip_rest_of_batch(call)
    return "failed"
