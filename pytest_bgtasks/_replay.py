"""Running held (deferred) tasks later, on the app's own event loop while it is alive."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from pytest_bgtasks._loops import EventLoop, LoopFinished, current_loop, in_worker_thread
from pytest_bgtasks._record import TaskCall

#: Seconds a timed-out replay gets for an async task's cancellation to land.
CANCEL_GRACE = 0.5

Runner = Callable[[TaskCall], Coroutine[Any, Any, None]]


def in_event_loop() -> bool:
    """True when called from a thread that is running an asyncio or trio event loop."""
    return current_loop() is not None


def replay_blocking(run: Runner, call: TaskCall, timeout: float | None) -> bool:
    """Run ``call`` from a thread with no event loop; False when ``timeout`` ran out first.

    An async task is cancelled at the timeout; a sync one cannot be, and runs on.

    The task goes back to the loop that held it when that loop still runs (a ``TestClient``
    used as a context manager, uvicorn), so loop-bound resources from the lifespan work;
    otherwise it runs on a fresh loop of the same kind.
    """
    outcome: list[BaseException] = []

    async def bounded(call: TaskCall) -> None:
        with anyio.move_on_after(timeout):
            await run(call)

    def target() -> None:
        try:
            _run_on_its_loop_or_fresh(bounded, call)
        except BaseException as exc:  # handed to the calling thread
            outcome.append(exc)

    worker = threading.Thread(target=target, name=f"bgtasks-replay-{call.index}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() and call.is_async:
        worker.join(CANCEL_GRACE)  # an async task's cancellation lands at once
    if worker.is_alive():
        return False
    if outcome:
        raise outcome[0]
    return call.status != "cancelled"


async def replay_async(run: Runner, call: TaskCall) -> None:
    """Run ``call`` from async code: on this loop when it held the task, else on its own loop."""
    loop: EventLoop | None = call.loop
    if loop is None or loop.is_current():
        await run(call)
        return
    if not await in_worker_thread(_run_on_its_loop, run, call):
        await run(call)  # its loop is gone: this loop is the nearest to it


def _run_on_its_loop_or_fresh(run: Runner, call: TaskCall) -> None:
    if not _run_on_its_loop(run, call):
        backend = "asyncio" if call.loop is None else call.loop.backend
        anyio.run(run, call, backend=backend)


def _run_on_its_loop(run: Runner, call: TaskCall) -> bool:
    """Run on the loop that held ``call``; False when that loop has finished."""
    loop: EventLoop | None = call.loop
    if loop is None:
        return False
    try:
        loop.run(run, call)
    except LoopFinished:
        return False
    return True
