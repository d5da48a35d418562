"""The event loop that held a task, and running coroutine functions on it from another thread.

Deferred replay sends a held async task back to the app's own loop. This module does that with
the event loops' own thread-safe entry points (``asyncio.run_coroutine_threadsafe``,
``trio.from_thread.run``), as anyio >= 4.11 does with its tokens, so it works on every anyio
that Starlette allows (3.x and 4.x) without asking users to upgrade it.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio.to_thread

Backend = Literal["asyncio", "trio"]


class LoopFinished(Exception):
    """The loop has stopped or finished: it will run nothing more."""


class EventLoop:
    """A running asyncio loop or trio run, remembered to run code on later from other threads."""

    __slots__ = ("backend", "native")

    def __init__(self, backend: Backend, native: Any) -> None:
        self.backend: Backend = backend
        #: The ``asyncio.AbstractEventLoop``, or the ``trio.lowlevel.TrioToken``.
        self.native = native

    def is_current(self) -> bool:
        """True when called from code running on this loop."""
        current = current_loop()
        return current is not None and current.native is self.native

    def run(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``func(*args)`` on this loop from a thread outside it; wait for its result.

        Raises :class:`LoopFinished` when the loop stopped or finished first.
        """
        if self.backend == "trio":
            trio = sys.modules["trio"]
            try:
                return trio.from_thread.run(func, *args, trio_token=self.native)
            except trio.RunFinishedError:
                raise LoopFinished from None
        loop: asyncio.AbstractEventLoop = self.native
        # A stopped loop that is not closed (asyncio.Runner between runs) would never run it.
        if loop.is_closed() or not loop.is_running():
            raise LoopFinished

        async def wrapper() -> Any:
            return await func(*args)

        try:
            future = asyncio.run_coroutine_threadsafe(wrapper(), loop)
        except RuntimeError:  # closed between the check and the call
            raise LoopFinished from None
        return future.result()

    def call_soon(self, func: Callable[[], object]) -> None:
        """Have this loop call ``func()`` soon, from any thread, without waiting for it.

        Raises :class:`LoopFinished` when the loop has finished first.
        """
        if self.backend == "trio":
            trio = sys.modules["trio"]
            try:
                self.native.run_sync_soon(func)
            except trio.RunFinishedError:
                raise LoopFinished from None
            return
        loop: asyncio.AbstractEventLoop = self.native
        if loop.is_closed() or not loop.is_running():  # a stopped loop would never call it
            raise LoopFinished
        try:
            loop.call_soon_threadsafe(func)
        except RuntimeError:  # "Event loop is closed"
            raise LoopFinished from None

    def __repr__(self) -> str:
        return f"<EventLoop {self.backend} {self.native!r}>"


def current_loop() -> EventLoop | None:
    """The event loop running in this thread, or None outside one."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return EventLoop("trio", trio.lowlevel.current_trio_token())
        except RuntimeError:
            pass
    try:
        return EventLoop("asyncio", asyncio.get_running_loop())
    except RuntimeError:
        return None


#: anyio 4.1 renamed ``to_thread.run_sync(cancellable=)`` to ``abandon_on_cancel=``.
_ABANDON_ON_CANCEL = (
    "abandon_on_cancel"
    if "abandon_on_cancel" in inspect.signature(anyio.to_thread.run_sync).parameters
    else "cancellable"
)


async def in_worker_thread(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` in anyio's worker threads; on cancellation the wait is abandoned."""
    options: dict[str, Any] = {_ABANDON_ON_CANCEL: True}
    return await anyio.to_thread.run_sync(func, *args, **options)
