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

import asyncio
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import anyio

from pytest_bgtasks._core import Core
from pytest_bgtasks._loops import EventLoop, LoopFinished, current_loop
from pytest_bgtasks._record import TaskCall

#: Seconds shutdown waits for the work it cancelled to finish its clean-up (``finally``).
CLEANUP_WAIT = 5.0
DISCARDED = "discarded by bgtasks.shutdown(): the server stopped before it ran"
SKIPPED = "skipped: bgtasks.shutdown() stopped its response before it started"


class ShutDown(BaseException):
    """Ends a task's run in place of the cancellation ``shutdown()`` sent into it; its text is
    the task's reason."""


class Cancels(Protocol):
    """What cancels one piece of async work on its event loop, from any thread, and says why."""

    #: Why it was cancelled: None until :meth:`request` asked for it.
    reason: str | None

    def request(self, reason: str) -> bool:
        """Have its loop cancel it soon; False when that loop has finished (nothing can)."""


def cancel_soon(loop: EventLoop, cancel: Callable[[], object]) -> bool:
    """Have ``loop`` call ``cancel()`` soon, from any thread; False when it has finished."""
    try:
        loop.call_soon(cancel)
    except LoopFinished:
        return False
    return True


class Cancellable:
    """While ``call``'s async work runs in this block, ``shutdown()`` can cancel it from any
    thread; that cancellation ends the block with :class:`ShutDown`, for the caller to book.

    On asyncio the block's task is cancelled, as uvicorn cancels it, and only while it is in
    the block; on trio, a cancel scope around the block is. It is the call's ``cancellation``
    while it runs, and after only if it was asked to cancel; what only a cancellation needs is
    made when one is asked for (every async task runs in one).
    """

    __slots__ = ("_call", "_task", "_scope", "_loop", "_cancel", "_inside", "_cancelled", "reason")

    def __init__(self, call: TaskCall) -> None:
        self._call = call
        self._loop: EventLoop | None = None  # made when a cancellation is asked for, on asyncio
        self._cancel: Callable[[], object] | None = None  # a trio scope's; else the task's
        self.reason: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._scope: anyio.CancelScope | None = None
        self._inside = False
        self._cancelled = False  # the task was cancelled, from the loop, while in the block

    def __enter__(self) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no asyncio loop in this thread
            task = None
        self._task = task
        if task is None:  # trio's
            self._loop = current_loop()
            assert self._loop is not None, "async work runs on an event loop"
            self._scope = anyio.CancelScope()
            self._cancel = self._scope.__enter__().cancel
        self._inside = True
        self._call.cancellation = self

    def request(self, reason: str) -> bool:
        """Have its loop cancel it soon; False when that loop has finished (nothing can)."""
        if self._loop is None:
            assert self._task is not None, "a block on trio has its loop"
            self._loop = EventLoop("asyncio", self._task.get_loop())
        self.reason = reason
        if cancel_soon(self._loop, self._cancel or self._cancel_task):
            return True
        self.reason = None
        return False

    def _cancel_task(self) -> None:
        if self._inside and self._task is not None:  # else it has left: the cancel is late
            self._cancelled = self._task.cancel()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._inside = False
        reason = self.reason
        if reason is None and self._call.cancellation is self:
            self._call.cancellation = None  # nothing asked for it: nothing to keep
        if self._scope is not None:
            if self._scope.__exit__(kind, exc, tb) and reason is not None:
                raise ShutDown(reason)  # the scope caught its own cancellation
            return
        if not self._cancelled or reason is None or not isinstance(exc, asyncio.CancelledError):
            return
        if sys.version_info >= (3, 11) and self._task is not None and self._task.uncancel():
            return  # cancelled by something else too: that cancellation goes on
        raise ShutDown(reason) from None


def cut_short(call: TaskCall) -> bool:
    """True when ``shutdown()`` cancelled ``call``."""
    return (
        call.status == "cancelled"
        and call.cancellation is not None
        and call.cancellation.reason is not None
    )


def shut_down(core: Core, grace: float) -> list[TaskCall]:
    """Rehearse a server's stop from a thread with no event loop; return the work cut short."""
    cut = _Cut(core, grace)
    if not core.ledger.wait_idle(grace):
        cut.cancel_running()
        if not core.ledger.wait_until(cut.cancelled_ended, CLEANUP_WAIT):
            cut.note_unfinished()
    return cut.done()


async def shut_down_async(core: Core, grace: float) -> list[TaskCall]:
    """Like :func:`shut_down`, from async code, without blocking its event loop."""
    cut = _Cut(core, grace)
    if not await _waited(lambda: core.ledger.busy == 0, grace):
        cut.cancel_running()
        if not await _waited(cut.cancelled_ended, CLEANUP_WAIT):
            cut.note_unfinished()
    return cut.done()


class _Cut:
    """The work one shutdown cuts short; held tasks are discarded as it begins."""

    def __init__(self, core: Core, grace: float) -> None:
        self._core = core
        self._grace = grace
        self._discarded = core.held.discard(DISCARDED)
        self._cancelled: list[TaskCall] = []
        self._unstoppable: list[TaskCall] = []
        self._skipped: list[TaskCall] = []

    def cancel_running(self) -> None:
        """Ask every running task's loop to cancel it; note those none can stop.

        A response's tasks not started yet are skipped, as cancelling the response skips them.
        A lifespan's tasks may rightly run as long as the app: its shut-down stops them.
        """
        grace = f"bgtasks.shutdown(grace={self._grace:g})"
        reason = f"cancelled by {grace}: still running when the grace ended"
        calls = list(self._core.calls)  # the app may schedule more, from other threads
        for call in calls:  # first, so that none starts once the task before it is cancelled
            if _response_runs_it_next(call):
                call.status = "skipped"
                call.reason = SKIPPED
                self._skipped.append(call)
        for call in calls:
            if call.status != "running" or call.lifespan is not None:
                continue
            cancellation = call.cancellation  # once: a task that ends drops it, in its thread
            if cancellation is None and call.status != "running":
                continue  # it ended meanwhile
            if cancellation is not None and cancellation.request(reason):
                self._cancelled.append(call)
            else:
                call.reason = f"not stopped by {grace}: " + (
                    "a sync task runs in a worker thread, and a thread cannot be cancelled; a"
                    " server stops waiting for it, and its process's exit kills it mid-way (the"
                    " test still waits for it at teardown, and judges how it ends)"
                    if cancellation is None
                    else "its event loop has finished, so nothing can cancel it"
                )
                self._unstoppable.append(call)

    def cancelled_ended(self) -> bool:
        return all(call.status != "running" for call in self._cancelled)

    def note_unfinished(self) -> None:
        for call in self._cancelled:
            if call.status == "running" and call.cancellation is not None:
                call.reason = (
                    f"{call.cancellation.reason}; its clean-up had not finished"
                    f" {CLEANUP_WAIT:g}s later"
                )

    def done(self) -> list[TaskCall]:
        """Everything cut short, in scheduling order, with the tasks held while the running
        ones were waited for."""
        self._discarded += self._core.held.discard(DISCARDED)
        cut = {*self._discarded, *self._cancelled, *self._unstoppable, *self._skipped}
        return sorted(cut, key=lambda call: call.index)


def _response_runs_it_next(call: TaskCall) -> bool:
    """True for a task whose response has started running its tasks, not started itself."""
    request = call.request
    return (
        call.status == "scheduled"
        and call.job is None  # a queue's job is not the response's to run
        and request is not None
        and request.dispatched_at is not None
    )


async def _waited(done: Callable[[], bool], timeout: float) -> bool:
    """Wait, yielding to the event loop, until ``done()``; False when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(0.005)
    return True
