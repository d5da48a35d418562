"""Shutdown rehearsal: what a server does to the work still there when it stops.

uvicorn, stopping, waits up to ``timeout_graceful_shutdown`` seconds for its running tasks,
then cancels them (``server.py``, ``Server.shutdown``); ``asyncio.run`` cancels every task left
when its loop ends. :func:`shut_down` does both to one test's work: it waits up to ``grace``
seconds, then cancels the async work still running on its own event loop, thread-safely (the
loop may be a uvicorn server's or a ``TestClient`` portal's, in another thread), and waits
for its ``finally`` blocks. A sync task runs in a worker thread, which nothing can cancel: it
is reported, and runs on. Held tasks are discarded. The app's lifespan tasks are left to the
lifespan's own shut-down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio

from pytest_bgtasks._core import Core
from pytest_bgtasks._loops import EventLoop, LoopFinished, current_loop
from pytest_bgtasks._outcomes import rest_of_batch
from pytest_bgtasks._record import TaskCall

#: Seconds shutdown waits for the work it cancelled to finish its clean-up (``finally``).
CLEANUP_WAIT = 5.0
#: What happened to a task cut short, as the skipped tasks after it in its response say.
CUT_SHORT = "was cancelled by bgtasks.shutdown()"
DISCARDED = "discarded by bgtasks.shutdown(): the server stopped before it ran"


class ShutDown(BaseException):
    """Ends a task's run in place of the cancellation ``shutdown()`` sent into it; its text is
    the task's reason."""


class Cancellation:
    """Cancels one piece of async work on its event loop, from any thread; says why."""

    __slots__ = ("_loop", "_cancel", "reason")

    def __init__(self, loop: EventLoop, cancel: Callable[[], object]) -> None:
        self._loop = loop
        self._cancel = cancel
        #: Why it was cancelled: None until :meth:`request` asked for it.
        self.reason: str | None = None

    def request(self, reason: str) -> bool:
        """Have its loop cancel it soon; False when that loop has finished (nothing can)."""
        self.reason = reason
        try:
            self._loop.call_soon(self._cancel)
        except LoopFinished:
            self.reason = None
            return False
        return True


@contextmanager
def cancellable(call: TaskCall) -> Iterator[None]:
    """Let ``shutdown()`` cancel the async work that ``call`` runs in this block.

    Its cancellation ends the block with :class:`ShutDown`, for the caller to book.
    """
    loop = current_loop()
    assert loop is not None, "async work runs on an event loop"
    with anyio.CancelScope() as scope:
        cancellation = call.cancellation = Cancellation(loop, scope.cancel)
        yield
    if scope.cancelled_caught and cancellation.reason is not None:
        raise ShutDown(cancellation.reason)


def cut_short(call: TaskCall) -> bool:
    """True when ``shutdown()`` cancelled ``call``."""
    return (
        call.status == "cancelled"
        and call.cancellation is not None
        and call.cancellation.reason is not None
    )


def shut_down(core: Core, grace: float) -> list[TaskCall]:
    """Rehearse a server's stop from a thread with no event loop; return the work cut short."""
    discarded = core.held.discard(DISCARDED)
    cancelled: list[TaskCall] = []
    unstoppable: list[TaskCall] = []
    if not core.ledger.wait_idle(grace):
        cancelled, unstoppable = _cancel_running(core, grace)
        if not core.ledger.wait_until(lambda: _ended(cancelled), CLEANUP_WAIT):
            _note_unfinished(cancelled)
    return _cut(discarded, cancelled, unstoppable, core)


async def shut_down_async(core: Core, grace: float) -> list[TaskCall]:
    """Like :func:`shut_down`, from async code, without blocking its event loop."""
    discarded = core.held.discard(DISCARDED)
    cancelled: list[TaskCall] = []
    unstoppable: list[TaskCall] = []
    if not await _waited(lambda: core.ledger.busy == 0, grace):
        cancelled, unstoppable = _cancel_running(core, grace)
        if not await _waited(lambda: _ended(cancelled), CLEANUP_WAIT):
            _note_unfinished(cancelled)
    return _cut(discarded, cancelled, unstoppable, core)


def _cancel_running(core: Core, grace: float) -> tuple[list[TaskCall], list[TaskCall]]:
    """Ask every running task's loop to cancel it; return those asked, and those none can stop.

    A lifespan's tasks may rightly run as long as the app: its shut-down stops them.
    """
    reason = f"cancelled by bgtasks.shutdown(grace={grace:g}): still running when the grace ended"
    cancelled: list[TaskCall] = []
    unstoppable: list[TaskCall] = []
    for call in list(core.calls):  # the app may schedule more meanwhile, from other threads
        if call.status != "running" or call.lifespan is not None:
            continue
        if call.cancellation is not None and call.cancellation.request(reason):
            cancelled.append(call)
            continue
        call.reason = f"not stopped by bgtasks.shutdown(grace={grace:g}): " + (
            "a sync task runs in a worker thread, and a thread cannot be cancelled; a server"
            " stops waiting for it, and its process's exit kills it mid-way (the test still"
            " waits for it at teardown, and judges how it ends)"
            if call.cancellation is None
            else "its event loop has finished, so nothing can cancel it"
        )
        unstoppable.append(call)
    return cancelled, unstoppable


def _ended(calls: list[TaskCall]) -> bool:
    return all(call.status != "running" for call in calls)


def _note_unfinished(cancelled: list[TaskCall]) -> None:
    for call in cancelled:
        if call.status == "running" and call.cancellation is not None:
            call.reason = (
                f"{call.cancellation.reason}; its clean-up had not finished {CLEANUP_WAIT:g}s later"
            )


def _cut(
    discarded: list[TaskCall], cancelled: list[TaskCall], unstoppable: list[TaskCall], core: Core
) -> list[TaskCall]:
    """Everything cut short, in scheduling order: the tasks skipped after a cancelled one
    too, and the tasks held while the running ones were waited for."""
    skipped = [
        later
        for call in cancelled
        if cut_short(call)
        for later in rest_of_batch(call)
        if later.status == "skipped" and later.reason is not None and CUT_SHORT in later.reason
    ]
    discarded += core.held.discard(DISCARDED)
    return sorted({*discarded, *cancelled, *unstoppable, *skipped}, key=lambda call: call.index)


async def _waited(done: Callable[[], bool], timeout: float) -> bool:
    """Wait, yielding to the event loop, until ``done()``; False when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(0.005)
    return True
