"""Injected faults: make matching task runs fail, slow down, hang or run a substitute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import anyio
from starlette._utils import is_async_callable

from pytest_bgtasks._callables import callable_name
from pytest_bgtasks._matching import Target, check_target, describe_target, refers_to
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
        check_target(target, kind)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(
                f"{kind}(times=...) takes a positive whole number or None, got {times!r}"
            )
        if when is not None and not callable(when):
            raise TypeError(f"{kind}(when=...) takes a predicate on the TaskCall, got {when!r}")
        if kind in ("fail", "fail_after"):
            self.exception = _exception_arg(kind, exception)
        if kind == "delay":
            self.seconds = _seconds_arg(seconds)
        if kind == "replace":
            self.substitute = _substitute_arg(substitute)
        self.kind: FaultKind = kind
        self.target = target
        self.times = times
        self.when = when
        #: How many task runs this fault was applied to.
        self.applied = 0
        self._released = threading.Event()
        self._counting = threading.Lock()
        self._raised: list[BaseException] = []

    def claims(self, call: TaskCall) -> bool:
        """True, and counted, when this fault applies to this run of ``call``."""
        if not refers_to(call, self.target):
            return False
        if self.when is not None and not self.when(call):
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
        return [fault for fault in self._faults if fault.applied == 0]


def _exception_arg(kind: str, exception: object) -> BaseException | type[BaseException]:
    if isinstance(exception, BaseException) or (
        isinstance(exception, type) and issubclass(exception, BaseException)
    ):
        return exception
    raise TypeError(
        f"{kind}() needs an exception instance or class to raise, such as"
        f" ConnectionError('smtp down'), got {exception!r}"
    )


def _seconds_arg(seconds: object) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"delay() takes the latency in seconds as a number, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"delay() takes a latency of zero seconds or more, got {seconds!r}")
    return float(seconds)


def _substitute_arg(substitute: object) -> Callable[..., Any]:
    if not callable(substitute):
        raise TypeError(
            "replace() needs a callable to run instead (sync or async, called with the task's"
            f" arguments), got {substitute!r}"
        )
    return substitute
