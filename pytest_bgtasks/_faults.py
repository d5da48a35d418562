"""Injected faults: make matching task runs fail, slow down, hang or run a substitute."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import anyio
from starlette._utils import is_async_callable

from pytest_bgtasks._callables import callable_name
from pytest_bgtasks._matching import Target, check_target, describe_target, refers_to
from pytest_bgtasks._numbers import checked_count, checked_seconds
from pytest_bgtasks._record import TaskCall

FaultKind = Literal["fail", "fail_after", "delay", "replace", "hang"]
Predicate = Callable[[TaskCall], bool]


class FaultReleased(BaseException):
    """Raised inside a hanging task when its test ends; the task is recorded as cancelled."""


class Fault:
    """One fault, registered by ``bgtasks.fail()``, ``delay()``, ``replace()`` or ``hang()``."""

    exception: BaseException | type[BaseException] | None = None
    seconds: float = 0.0
    substitute: Callable[..., Any] | None = None

    def __init__(
        self,
        kind: FaultKind,
        target: Target,
        *,
        times: int | None,
        when: Predicate | None,
        exception: object = None,
        seconds: object = 0.0,
        substitute: object = None,
    ) -> None:
        """Check every argument of ``bgtasks.<kind>()``: a bad one raises before anything runs."""
        __tracebackhide__ = True
        method = f"bgtasks.{kind}"
        check_target(target, method)
        if times is not None:
            checked_count(times, f"{method}(times=...)")
        if when is not None and not callable(when):
            raise TypeError(f"{method}(when=...) takes a predicate on the TaskCall, got {when!r}")
        if kind in ("fail", "fail_after"):
            self.exception = _exception_arg(method, exception)
        if kind == "delay":
            self.seconds = checked_seconds(
                seconds,
                "bgtasks.delay(seconds=...)",
                forever="use bgtasks.hang() for a task that never finishes",
            )
        if kind == "replace":
            self.substitute = _substitute_arg(substitute)
        self.kind: FaultKind = kind
        self.target = target
        self.times = times
        self.when = when
        #: How many task runs this fault was applied to.
        self.applied = 0
        #: True once ``when`` raised: those runs failed with its error instead.
        self.predicate_raised = False
        self._released = threading.Event()
        self._counting = threading.Lock()
        self._raised: list[BaseException] = []

    def claims(self, call: TaskCall) -> bool:
        """True, and counted, when this fault applies to this run of ``call``."""
        if not refers_to(call, self.target):
            return False
        if self.when is not None:
            try:
                applies = self.when(call)
            except Exception:  # a bug in the test's predicate: the run fails with it, said so
                self.predicate_raised = True
                call.fault = str(self)
                call.reason = "the fault's when= predicate raised (below), so the task never ran"
                raise
            if not applies:
                return False
        with self._counting:  # concurrent runs must not overshoot ``times``
            if self.times is not None and self.applied >= self.times:
                return False
            self.applied += 1
        return True

    def release(self) -> None:
        """Let tasks hanging on this fault go (they end as cancelled)."""
        self._released.set()

    def body(self, func: Callable[..., Any], is_async: bool) -> tuple[Callable[..., Any], bool]:
        """What runs instead of ``func``, and whether it is a coroutine function."""
        if self.kind == "replace":
            assert self.substitute is not None
            return self.substitute, is_async_callable(self.substitute)
        if is_async:

            async def body_async(*args: Any, **kwargs: Any) -> Any:
                await self._before_async()
                result = await func(*args, **kwargs)
                self._after()
                return result

            return body_async, True

        def body_sync(*args: Any, **kwargs: Any) -> Any:
            self._before_sync()
            result = func(*args, **kwargs)
            self._after()
            return result

        return body_sync, False

    async def _before_async(self) -> None:
        if self.kind == "delay":
            await anyio.sleep(self.seconds)
        elif self.kind == "hang":
            while not self._released.is_set():
                await anyio.sleep(0.01)
            raise FaultReleased
        elif self.kind == "fail":
            self._raise()

    def _before_sync(self) -> None:
        if self.kind == "delay":
            time.sleep(self.seconds)
        elif self.kind == "hang":
            self._released.wait()
            raise FaultReleased
        elif self.kind == "fail":
            self._raise()

    def _after(self) -> None:
        if self.kind == "fail_after":
            self._raise()

    def raised(self, exception: BaseException) -> bool:
        """True when ``exception`` is one this fault raised (not the task's own error)."""
        return any(raised is exception for raised in self._raised)

    def _raise(self) -> None:
        exception = self.exception
        assert exception is not None
        instance = exception() if isinstance(exception, type) else exception
        self._raised.append(instance)
        raise instance.with_traceback(None)

    def __str__(self) -> str:
        if self.kind in ("fail", "fail_after"):
            detail = f", {self.exception!r}"
        elif self.kind == "delay":
            detail = f", {self.seconds}"
        elif self.kind == "replace":
            detail = f", {callable_name(self.substitute)}"
        else:
            detail = ""
        target = repr(self.target) if isinstance(self.target, str) else describe_target(self.target)
        return f"{self.kind}({target}{detail})"


class FaultRegistry:
    """The faults a test registered, checked when added and claimed by task runs in order."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def claim(self, call: TaskCall) -> Fault | None:
        """The first fault that applies to this run of ``call``, counted as applied."""
        for fault in self._faults:
            if fault.claims(call):
                return fault
        return None

    def release(self) -> None:
        """Let every task hanging on a fault go."""
        for fault in self._faults:
            fault.release()

    def never_applied(self) -> list[Fault]:
        return [
            fault for fault in self._faults if fault.applied == 0 and not fault.predicate_raised
        ]


def _exception_arg(method: str, exception: object) -> BaseException | type[BaseException]:
    __tracebackhide__ = True
    if isinstance(exception, BaseException):
        cls = type(exception)
    elif isinstance(exception, type) and issubclass(exception, BaseException):
        cls = exception
    else:
        raise TypeError(
            f"{method}() needs an exception instance or class to raise, such as"
            f" ConnectionError('smtp down'), got {exception!r}"
        )
    unraisable = _why_unraisable(cls)
    if unraisable:
        raise ValueError(f"{method}() cannot raise {cls.__name__}: {unraisable}")
    if exception is cls:
        try:
            cls()  # each run raises a new instance: it must be possible to make one
        except Exception as error:
            raise TypeError(
                f"{method}() got the class {cls.__name__}, which cannot be made without"
                f" arguments ({type(error).__name__}: {error}); pass an instance instead,"
                f" such as {cls.__name__}(...)"
            ) from None
    return exception


def _why_unraisable(cls: type[BaseException]) -> str:
    """Why a task cannot fail with ``cls`` as the test means it, or '' when it can."""
    if issubclass(cls, StopIteration):
        return (
            "Python turns a StopIteration that leaves a coroutine into"
            " RuntimeError('coroutine raised StopIteration'), so the task would fail with that"
            " instead; raise another exception"
        )
    trio = sys.modules.get("trio")
    if issubclass(cls, asyncio.CancelledError) or (trio and issubclass(cls, trio.Cancelled)):
        return (
            "the event loop takes it for a cancellation of the task (recorded as cancelled,"
            " and it cancels the request around it), not a failure; use bgtasks.hang() for a"
            " task that never ends, or raise another exception"
        )
    return ""


def _substitute_arg(substitute: object) -> Callable[..., Any]:
    __tracebackhide__ = True
    if not callable(substitute):
        raise TypeError(
            "bgtasks.replace() needs a callable to run instead (sync or async, called with the"
            f" task's arguments), got {substitute!r}"
        )
    return substitute
