"""Async work that blocks the event loop: how long each step held it, and on which line.

An async task shares its thread with everything else on the loop: while one step of its
coroutine runs (from one ``await`` that suspends to the next), no other request or task moves.
``_steps`` drives the coroutine one step at a time and times each step; the longest is the
record's ``blocked_for``. Garbage-collection pauses that the loop's thread runs inside a step
are not counted: a step that happens to trigger a collection did not block the loop any more
than the others. Collections in other threads are not subtracted: the loop's thread may be
sleeping in C meanwhile, blocking the loop all the same. When a limit is set, one watchdog
thread for the process wakes when a step is due to pass the limit and reads the loop thread's
stack, to say which line of the app held the loop. Works on any event loop (asyncio, trio):
it only sees ``send`` and ``throw``.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Awaitable, Coroutine, Generator
from threading import get_ident
from time import perf_counter
from types import CodeType, CoroutineType, FrameType
from typing import Any, cast

from pytest_bgtasks._record import TaskCall

#: The watchdog never sleeps less than this between looks, so it cannot spin.
_MIN_WAIT = 0.001
#: Packages that run around the app's code, never a line to blame.
_MACHINERY = frozenset({"asyncio", "anyio", "sniffio", "starlette", "fastapi", "pytest_bgtasks"})


class BlockingWatch:
    """One test's view of the loop threads: what step runs on each, and the limit."""

    def __init__(self, limit: float | None) -> None:
        #: Seconds a step may hold the loop; None: only measure.
        self.limit = limit
        self._threads: dict[int, _LoopThread] = {}
        self._lock = threading.Lock()
        self._where: dict[CodeType, bool] = {}  # the watchdog's cache: is this the app's code?
        #: Seconds each loop thread spent collecting garbage, subtracted from its steps.
        self.collecting = _CollectorClock(self._threads)

    def steps(self, awaitable: Awaitable[Any], call: TaskCall) -> Awaitable[Any]:
        """``awaitable`` run one timed step at a time, booking into ``call``."""
        iterator = awaitable if type(awaitable) is CoroutineType else awaitable.__await__()
        return _steps(self, iterator, call)

    def timed(self, coro: Coroutine[Any, Any, Any], call: TaskCall) -> Coroutine[Any, Any, Any]:
        """A coroutine for an asyncio task that runs ``coro`` in timed steps (named as it)."""
        timed = cast("CoroutineType[Any, Any, Any]", _timed(self, coro, call))
        timed.__name__ = getattr(coro, "__name__", timed.__name__)
        timed.__qualname__ = getattr(coro, "__qualname__", timed.__qualname__)
        return timed

    def stop(self) -> None:
        """The test is over: the watchdog stops looking at these threads."""
        if self.collecting in gc.callbacks:
            gc.callbacks.remove(self.collecting)
        if _watchdog is not None:
            _watchdog.forget(self)

    def _loop_thread(self) -> _LoopThread:
        """This thread's entry, made at its first step; the watchdog starts with the first."""
        ident = threading.get_ident()
        thread = self._threads.get(ident)
        if thread is None:
            with self._lock:
                thread = self._threads.setdefault(ident, _LoopThread(ident))
                if self.collecting not in gc.callbacks:
                    gc.callbacks.append(self.collecting)
            if self.limit is not None:
                _follow(self)
        return thread

    def look(self) -> float:
        """Read the stack of each loop thread whose step passed the limit (once per step);
        return the seconds until the next step running now is due to pass it."""
        limit = self.limit
        assert limit is not None
        wait = limit
        now = perf_counter()
        for thread in list(self._threads.values()):
            started = thread.started
            if started is None:
                continue
            due = started + limit - now
            if due > 0:
                wait = min(wait, due)
            elif thread.sampled is None or thread.sampled[0] != started:
                where = self._line(sys._current_frames().get(thread.ident))
                if where is not None and thread.started == started:
                    thread.sampled = (started, where)  # the same step ran before and after
        return max(wait, _MIN_WAIT)

    def _line(self, frame: FrameType | None) -> str | None:
        """``file:line`` of the innermost frame of the app's code inside a step (the library
        it called is not the line to fix), else the innermost frame that is not machinery."""
        inside: list[FrameType] = []
        while frame is not None and frame.f_code is not _STEP_CODE:
            inside.append(frame)
            frame = frame.f_back
        if frame is None:  # no step runs on that thread any more
            return None
        chosen = next((f for f in inside if self._is_app(f)), None)
        if chosen is None:
            chosen = next((f for f in inside if not _is_machinery(f)), None)
        return None if chosen is None else f"{chosen.f_code.co_filename}:{chosen.f_lineno}"

    def _is_app(self, frame: FrameType) -> bool:
        code = frame.f_code
        known = self._where.get(code)
        if known is None:
            path = code.co_filename
            known = self._where[code] = not (
                path.startswith("<") or path.startswith(_library_paths()) or _is_machinery(frame)
            )
        return known


@types.coroutine
def _steps(watch: BlockingWatch, iterator: Any, call: TaskCall) -> Generator[Any, Any, Any]:
    """Drive ``iterator`` as ``yield from`` would, timing each step into ``call``."""
    # the first step runs on the loop's thread
    thread = watch._threads.get(get_ident()) or watch._loop_thread()
    limit = math.inf if watch.limit is None else watch.limit
    resume, value = iterator.send, None
    longest = call.blocked_for = 0.0
    while True:
        outer = thread.started  # a step inside a step: an eagerly started task
        collected = thread.collected
        thread.started = started = perf_counter()
        try:
            signal = resume(value)
        except StopIteration as done:
            return done.value
        finally:
            held = perf_counter() - started - (thread.collected - collected)
            thread.started = outer
            if held > longest:
                longest = call.blocked_for = held
                sampled = thread.sampled
                if held > limit and sampled is not None and sampled[0] == started:
                    call.blocked_at = sampled[1]
        try:
            value = yield signal
        except GeneratorExit:
            iterator.close()
            raise
        except BaseException as exc:  # thrown in by the loop (a cancellation): pass it on
            resume, value = iterator.throw, exc
        else:
            resume = iterator.send


_STEP_CODE = _steps.__code__


async def _timed(watch: BlockingWatch, coro: Coroutine[Any, Any, Any], call: TaskCall) -> Any:
    return await _steps(watch, coro, call)


class _LoopThread:
    """A thread that runs an event loop, and when the timed step it runs now started."""

    __slots__ = ("ident", "started", "sampled", "collected")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        #: Seconds this thread spent collecting garbage (see ``_CollectorClock``).
        self.collected = 0.0
        #: ``perf_counter()`` at the start of the step running now; None between steps.
        self.started: float | None = None
        #: (step start, ``file:line``): where the watchdog saw a step past the limit.
        self.sampled: tuple[float, str] | None = None


class _CollectorClock:
    """A ``gc.callbacks`` entry that adds the seconds a collection ran to the loop thread that
    ran it (a collection runs in the thread whose allocation triggered it)."""

    __slots__ = ("_threads", "_began")

    def __init__(self, threads: dict[int, _LoopThread]) -> None:
        self._threads = threads
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        thread = self._threads.get(threading.get_ident())
        if thread is None:
            return
        if phase == "start":
            self._began = perf_counter()
        else:
            thread.collected += perf_counter() - self._began


def describe(call: TaskCall, limit: float) -> str:
    """Why a task that held the loop longer than ``limit`` is a problem, and what to do."""
    where = f", at {call.blocked_at}" if call.blocked_at else ""
    if call.kind == "background":
        fix = (
            "make it a `def` task, which Starlette runs in a worker thread, or await"
            " non-blocking calls in it (`await anyio.to_thread.run_sync(func)` for a blocking one)"
        )
    else:
        fix = (
            "await non-blocking calls in it (`await anyio.to_thread.run_sync(func)` or"
            " `asyncio.to_thread` for a blocking one)"
        )
    return (
        f"held the event loop for {call.blocked_for:.3f}s without yielding{where}"
        f" (limit {limit:g}s): nothing else on that loop ran meanwhile; {fix}; or allow it"
        " with @pytest.mark.bgtasks(blocking_limit=...)"
    )


def _is_machinery(frame: FrameType) -> bool:
    return frame.f_globals.get("__name__", "").partition(".")[0] in _MACHINERY


@functools.cache
def _library_paths() -> tuple[str, ...]:
    """Where the standard library and installed packages live: not the app's code."""
    paths = sysconfig.get_paths()
    found = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(site.getsitepackages())
    return tuple(os.path.join(path, "") for path in found)


class _Watchdog(threading.Thread):
    """The process's one watchdog: looks at the current test's loop threads, else sleeps.

    One thread for the process rather than one per test: starting a thread costs more than
    the checks of a typical test, and only one recorder is active at a time.
    """

    def __init__(self) -> None:
        super().__init__(name="bgtasks-blocking-watchdog", daemon=True)
        self._watch: BlockingWatch | None = None
        self._wake = threading.Event()

    def follow(self, watch: BlockingWatch) -> None:
        self._watch = watch
        self._wake.set()

    def forget(self, watch: BlockingWatch) -> None:
        if self._watch is watch:
            self._watch = None

    def run(self) -> None:
        while True:
            watch = self._watch
            self._wake.wait(None if watch is None else watch.look())
            self._wake.clear()


_watchdog: _Watchdog | None = None
_starting = threading.Lock()


def _follow(watch: BlockingWatch) -> None:
    """Have the watchdog, started on first use, watch ``watch``'s threads."""
    global _watchdog
    with _starting:
        if _watchdog is None:
            _watchdog = _Watchdog()
            _watchdog.start()
    _watchdog.follow(watch)
