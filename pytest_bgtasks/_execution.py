"""Running one recorded task the way Starlette does, with its fault, and booking the outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool

from pytest_bgtasks._faults import Fault, FaultReleased
from pytest_bgtasks._record import TaskCall

if TYPE_CHECKING:
    from pytest_bgtasks._recorder import BackgroundTaskRecorder


class Ledger:
    """Counts requests in flight and running tasks, so ``wait()`` knows when all is idle."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self.busy = 0
        self.running = 0
        self.max_running = 0

    def enter(self, *, task: bool) -> None:
        with self._idle:
            self.busy += 1
            if task:
                self.running += 1
                self.max_running = max(self.max_running, self.running)

    def leave(self, *, task: bool) -> None:
        with self._idle:
            self.busy -= 1
            if task:
                self.running -= 1
            if self.busy == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.busy == 0, timeout)


async def execute(recorder: BackgroundTaskRecorder, call: TaskCall, *, reraise: bool) -> None:
    """Run ``call`` now on this loop: async functions here, sync ones in the worker threadpool.

    A failure is recorded, skips the rest of its response's tasks, and is re-raised when
    ``reraise`` (the live path, so the app sees it as Starlette would make it see it).
    """
    func: Callable[..., Any] = call.func
    is_async = is_async_callable(func)
    fault = recorder._claim_fault(call)
    if fault is not None:
        call.fault = str(fault)
        call.expected = fault.kind in ("fail", "fail_after", "hang")
        func, is_async = fault.body(func, is_async)
    ledger = recorder._ledger
    call.status = "running"
    call.started_at = time.monotonic()
    ledger.enter(task=True)
    try:
        if is_async:
            call.result = await func(*call.args, **call.kwargs)
        else:
            call.result = await run_in_threadpool(func, *call.args, **call.kwargs)
    except BaseException as exc:
        if _book_failure(recorder, call, exc, fault):
            if reraise:
                raise
        elif not isinstance(exc, FaultReleased):
            raise  # cancellation always goes on up
    else:
        call.status = "succeeded"
    finally:
        call.finished_at = time.monotonic()
        ledger.leave(task=True)


def _book_failure(
    recorder: BackgroundTaskRecorder, call: TaskCall, exc: BaseException, fault: Fault | None
) -> bool:
    """Record how ``call`` ended: True for a failure, False for a cancellation."""
    if isinstance(exc, (FaultReleased, anyio.get_cancelled_exc_class())):
        call.status = "cancelled"
        call.reason = "hung by fault until the test ended" if fault else "cancelled while running"
        return False
    call.status = "failed"
    call.exception = exc
    recorder._failures[id(exc)] = call
    recorder._skip_rest_of_batch(call)
    return True
