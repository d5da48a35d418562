"""Running held (deferred) tasks later, on the app's own event loop while it is alive."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from pytest_bgtasks._record import TaskCall

#: Seconds a timed-out replay gets for an async task's cancellation to land.
CANCEL_GRACE = 0.5

Runner = Callable[[TaskCall], Coroutine[Any, Any, None]]


def in_event_loop() -> bool:
    """True when called from a thread that is running an asyncio or trio event loop."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_trio_token()
        return True
    except RuntimeError:
        return False


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
            _run_on_token_or_fresh(bounded, call)
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
    token = call.token
    if token is None or token.native_token == anyio.lowlevel.current_token().native_token:
        await run(call)
        return
    if not await anyio.to_thread.run_sync(_run_on_token, run, call, abandon_on_cancel=True):
        await run(call)  # its loop is gone: this loop is the nearest to it


def _run_on_token_or_fresh(run: Runner, call: TaskCall) -> None:
    if not _run_on_token(run, call):
        anyio.run(run, call, backend=_backend_name(call.token))


def _run_on_token(run: Runner, call: TaskCall) -> bool:
    """Run on the loop that held ``call``; False when that loop has finished."""
    if call.token is None:
        return False
    loop = call.token.native_token
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_running():
        return False  # stopped but not closed (asyncio.Runner between runs): it would never run
    try:
        anyio.from_thread.run(run, call, token=call.token)
    except anyio.RunFinishedError:
        return False
    return True


def _backend_name(token: Any) -> str:
    if token is not None and "trio" in token.backend_class.__module__:
        return "trio"
    return "asyncio"
