"""What keeps every run finite: hangs nothing could end are refused, and runs of held tasks
stop at their deadline and at an endless chain of tasks scheduling tasks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Literal

from pytest_bgtasks._numbers import checked_count
from pytest_bgtasks._record import TaskCall

#: Top-level packages of ASGI servers that answer a client before the tasks end.
REAL_SERVERS = frozenset({"uvicorn", "hypercorn", "daphne", "granian"})

#: Clients that run the app on the test's own event loop, so the test can cancel a request.
SAME_LOOP_CLIENTS = ("httpx._transports.asgi", "httpx2._transports.asgi")

#: How many tasks the tasks run by one ``run_all()`` may schedule in turn, by default.
MAX_CHAINED = 1000

Caller = Literal["server", "same loop", "client"]

IN_PROCESS_CLIENT = (
    "runs inside a request from an in-process client (TestClient, httpx.ASGITransport), which"
    " waits for the request's background tasks, and only the end of the test releases a hang."
    " Use deferred mode (@pytest.mark.bgtasks(mode='deferred')) and bgtasks.run_all(timeout=...),"
    " which raises TimeoutError, or a real server (uvicorn in a thread)"
)


INLINE_JOB = (
    "is a queue's job run in eager mode inside the app's enqueue call, which waits for it, and"
    " only the end of the test releases a hang. Use deferred mode"
    " (@pytest.mark.bgtasks(mode='deferred')) and bgtasks.run_all(timeout=...), which raises"
    " TimeoutError"
)


def caller_of(frame: FrameType | None, known: dict[CodeType, Caller | None]) -> Caller:
    """Who called the app at ``frame``: a real server, a client on the test's loop, or another.

    Read from the modules on the call stack. ``known`` remembers what each code object on it
    says (a code object runs in one module), so later reads in the test look up each frame
    instead of reading its module's name.
    """
    while frame is not None:
        code = frame.f_code
        if code in known:
            verdict = known[code]
        else:
            verdict = known[code] = _caller_in(frame)
        if verdict is not None:
            return verdict
        frame = frame.f_back
    return "client"


def _caller_in(frame: FrameType) -> Caller | None:
    """What the module running ``frame`` says of the caller, if it is a server or a client."""
    module = frame.f_globals.get("__name__")
    if isinstance(module, str):
        if module.partition(".")[0] in REAL_SERVERS:
            return "server"
        if module.startswith(SAME_LOOP_CLIENTS):
            return "same loop"
    return None


def hang_in_request(caller: str | None, is_async: bool) -> str | None:
    """Why a hang in a task of a request from ``caller`` would never end, or None if it can.

    A real server answers first and teardown releases the hang; on the test's own loop
    (httpx.ASGITransport) the test can cancel the request, which ends an async task but not a
    sync one in its worker thread; a client in another thread (TestClient) waits for ever.
    Outside a request (``caller`` None) the test drives the task itself.
    """
    if caller is None or caller == "server" or (caller == "same loop" and is_async):
        return None
    return IN_PROCESS_CLIENT


def without_timeout(method: str) -> str:
    """Why a hang in ``method()`` (a run of held tasks with no timeout) would never end."""
    return (
        f"runs in bgtasks.{method}(), which has no timeout, and only the end of the test releases"
        " a hang. Give the run one: bgtasks.run_all(timeout=...) or"
        " await bgtasks.run_all_async(timeout=...), which raise TimeoutError"
    )


def hang_refused(fault: object, call: TaskCall, why: str) -> RuntimeError:
    """The error a refused hang raises: which fault, which task, why, and what to do."""
    return RuntimeError(
        f"bgtasks.{fault} would block the test for ever: #{call.index} {call.name} {why}."
    )


class RunBounds:
    """One run of held tasks: its deadline, and how many tasks its own tasks may schedule."""

    def __init__(
        self, method: str, timeout: float | None, max_chained: object, scheduled_before: int
    ) -> None:
        __tracebackhide__ = True
        self.max_chained = checked_count(max_chained, f"bgtasks.{method}(max_chained=...)")
        self.method = method
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._scheduled_before = scheduled_before  # tasks with a later index came from this run
        self._chained: Counter[str] = Counter()
        self.ran: list[TaskCall] = []

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without a timeout."""
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def chain_too_long(self, call: TaskCall, line: Callable[[TaskCall], str]) -> str | None:
        """Why the run stops before ``call``, scheduled by its own tasks, or None to run it."""
        if call.index <= self._scheduled_before:
            return None
        if sum(self._chained.values()) < self.max_chained:
            self._chained[call.name] += 1
            return None
        chain = ", ".join(f"{name} x{count}" for name, count in self._chained.most_common(3))
        return (
            f"{self.method}() stopped: the tasks it ran scheduled {self.max_chained} more"
            f" ({chain}), an endless chain of tasks scheduling tasks? The next is still held:"
            f" {line(call)}. Run them step by step with bgtasks.run_next(), or allow a longer"
            f" chain with bgtasks.{self.method}(max_chained=...)"
        )
