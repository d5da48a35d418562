"""Running held (deferred) tasks later, on the app's own event loop while it is alive."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from pytest_bgtasks._loops import EventLoop, LoopFinished, current_loop, in_worker_thread
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._shutdown import cut_short

#: Seconds a timed-out replay gets for an async task's cancellation to land.
CANCEL_GRACE = 0.5

Runner = Callable[[TaskCall], Coroutine[Any, Any, None]]


def in_event_loop() -> bool:
    """True when called from a thread that is running an asyncio or trio event loop."""
    return current_loop() is not None


def replay_blocking(run: Runner, call: TaskCall, timeout: float | None) -> bool:
    """Run ``call`` from a thread with no event loop; False when ``timeout`` ran out first.

    An async task is cancelled at the timeout; a sync one cannot be, and runs on. One that
    ``shutdown()`` cancelled meanwhile has ended, not timed out.

    The task goes back to the loop that held it when that loop still runs (a ``TestClient``
    used as a context manager, uvicorn), so loop-bound resources from the lifespan work;
    otherwise it runs on a fresh loop of the same kind.
    """
    finished = run_blocking(
        lambda: run(call),
        call.loop,
        timeout,
        name=f"bgtasks-replay-{call.index}",
        cancellable=call.is_async,
    )
    return finished and (call.status != "cancelled" or cut_short(call))


def run_blocking(
    work: Callable[[], Coroutine[Any, Any, None]],
    loop: EventLoop | None,
    timeout: float | None,
    *,
    name: str,
    cancellable: bool = True,
) -> bool:
    """Await ``work()`` on ``loop`` while it still runs, else on a fresh loop of its kind, from
    a worker thread; False when ``timeout`` ran out first.

    At the timeout ``work`` is cancelled; a sync task it waits for cannot be, and runs on.
    ``cancellable``: whether it may end soon after its cancellation (async tasks), worth a
    short wait.
    """
    outcome: list[BaseException] = []
    timed_out: list[bool] = []

    async def bounded() -> None:
        finished = False  # not scope.cancelled_caught, which anyio 3 lacks
        with anyio.move_on_after(timeout):
            await work()
            finished = True
        timed_out.append(not finished)

    def target() -> None:
        try:
            if loop is None or not _run_on(loop, bounded):
                backend = "asyncio" if loop is None else loop.backend
                anyio.run(bounded, backend=backend)
        except BaseException as exc:  # handed to the calling thread
            outcome.append(exc)

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() and cancellable:
        worker.join(CANCEL_GRACE)  # an async task's cancellation lands at once
    if worker.is_alive():
        return False
    if outcome:
        raise outcome[0]
    return timed_out == [False]


async def replay_async(run: Runner, call: TaskCall) -> None:
    """Run ``call`` from async code: on this loop when it held the task, else on its own loop."""
    loop: EventLoop | None = call.loop
    if loop is None or loop.is_current():
        await run(call)
        return
    if not await in_worker_thread(_run_on_its_loop, run, call):
        await run(call)  # its loop is gone: this loop is the nearest to it


def _run_on_its_loop(run: Runner, call: TaskCall) -> bool:
    """Run on the loop that held ``call``; False when that loop has finished."""
    return call.loop is not None and _run_on(call.loop, run, call)


def _run_on(loop: EventLoop, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> bool:
    """Await ``func(*args)`` on ``loop`` from outside it; False when that loop has finished."""
    try:
        loop.run(func, *args)
    except LoopFinished:
        return False
    return True
