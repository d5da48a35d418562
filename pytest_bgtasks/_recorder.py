"""The ``bgtasks`` fixture's object: the record of every task, assertions, control and faults."""

from __future__ import annotations

import heapq
import itertools
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.lowlevel

from pytest_bgtasks import _faults
from pytest_bgtasks._dependencies import yield_dependencies
from pytest_bgtasks._execution import Ledger, execute
from pytest_bgtasks._faults import Fault, FaultKind, Predicate
from pytest_bgtasks._matching import (
    Target,
    arguments_match,
    check_target,
    describe_target,
    expected_arguments,
    refers_to,
)
from pytest_bgtasks._options import Mode
from pytest_bgtasks._record import RequestInfo, TaskCall, current_request
from pytest_bgtasks._rendering import Renderer
from pytest_bgtasks._replay import in_event_loop, replay_async, replay_blocking
from pytest_bgtasks._warnings import BgTasksWarning

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class BackgroundTaskRecorder:
    """Records the background tasks that apps schedule while a test runs, and controls them.

    Returned by the ``bgtasks`` fixture; import it for type hints only, its constructor is
    private. In mode ``"eager"`` tasks run as Starlette runs them, after the response; in mode
    ``"deferred"`` they are held until the test calls :meth:`run_all` (or ``run_next``/``run``).
    """

    def __init__(self, *, mode: Mode = "eager", renderer: Renderer | None = None) -> None:
        self._mode: Mode = mode
        self._renderer = renderer or Renderer()
        self._calls: list[TaskCall] = []
        self._numbers = itertools.count(1)
        self._scheduling = threading.Lock()  # numbers and order agree across threads
        self._ledger = Ledger()
        self._held: list[tuple[int, TaskCall]] = []
        self._held_lock = threading.Lock()  # apps under uvicorn hold from their own thread
        self._faults: list[Fault] = []
        #: Task failures by ``id(exception)``, so the app's error path can tell them apart.
        self._failures: dict[int, TaskCall] = {}
        self._warned_requests: set[int] = set()

    # -- the record -------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def calls(self) -> list[TaskCall]:
        """Every recorded task, in scheduling order."""
        return list(self._calls)

    @property
    def succeeded(self) -> list[TaskCall]:
        return [call for call in self._calls if call.status == "succeeded"]

    @property
    def failed(self) -> list[TaskCall]:
        return [call for call in self._calls if call.status == "failed"]

    @property
    def pending(self) -> list[TaskCall]:
        """Tasks scheduled but not run yet: held in deferred mode, or about to run."""
        return [call for call in self._calls if call.status == "scheduled"]

    @property
    def max_concurrency(self) -> int:
        """The peak number of tasks running at once during the test."""
        return self._ledger.max_running

    def calls_to(self, func_or_name: Target) -> list[TaskCall]:
        """The recorded calls of a function, or of a function by name."""
        check_target(func_or_name, "calls_to")
        return [call for call in self._calls if refers_to(call, func_or_name)]

    # -- assertions -------------------------------------------------------------------------

    def assert_scheduled(self, func: Target, /, *args: Any, **kwargs: Any) -> TaskCall:
        """Assert some task ran or will run ``func`` with these arguments; return the first.

        Only the arguments given are compared, after binding them to ``func``'s signature, so
        positional and keyword forms match each other; ``unittest.mock.ANY`` matches anything.
        """
        __tracebackhide__ = True
        matches = self._matching(func, args, kwargs)
        if not matches:
            self._fail(f"Expected {self._expectation(func, args, kwargs)} to be scheduled")
        return matches[0]

    def assert_scheduled_once(self, func: Target, /, *args: Any, **kwargs: Any) -> TaskCall:
        """Assert exactly one task matches, as :meth:`assert_scheduled` matches; return it."""
        __tracebackhide__ = True
        matches = self._matching(func, args, kwargs)
        if len(matches) != 1:
            self._fail(
                f"Expected {self._expectation(func, args, kwargs)} to be scheduled once,"
                f" it was scheduled {len(matches)} times"
            )
        return matches[0]

    def assert_not_scheduled(self, func: Target | None = None, /) -> None:
        """Assert no task ran ``func`` (with ``None``: that no task was scheduled at all)."""
        __tracebackhide__ = True
        calls = self._calls if func is None else self.calls_to(func)
        if calls:
            what = "no background task" if func is None else f"no call to {describe_target(func)}"
            self._fail(f"Expected {what} to be scheduled", calls)

    def assert_all_succeeded(self) -> None:
        """Assert every recorded task ran and succeeded."""
        __tracebackhide__ = True
        others = [call for call in self._calls if call.status != "succeeded"]
        if others:
            self._fail(f"Expected every background task to succeed, {len(others)} did not", others)

    def assert_failed(
        self, func: Target, /, exc_type: type[BaseException] = Exception, match: str | None = None
    ) -> TaskCall:
        """Assert a call to ``func`` failed with ``exc_type`` (message searched for ``match``).

        The failures that match are expected: the strict check at teardown lets them pass.
        """
        __tracebackhide__ = True
        matches = [
            call
            for call in self.calls_to(func)
            if call.status == "failed"
            and isinstance(call.exception, exc_type)
            and (match is None or re.search(match, str(call.exception)))
        ]
        if not matches:
            wanted = f"{describe_target(func)} to fail with {exc_type.__name__}"
            self._fail(f"Expected {wanted}" + (f" matching {match!r}" if match else ""))
        for call in matches:
            call.expected = True
        return matches[0]

    def assert_dropped(self, func: Target | None = None, /) -> list[TaskCall]:
        """Assert tasks (of ``func``, or any) were scheduled and dropped unrun; return them.

        The drops that match are expected: the strict check at teardown lets them pass.
        """
        __tracebackhide__ = True
        pool = self._calls if func is None else self.calls_to(func)
        dropped = [call for call in pool if call.status == "dropped"]
        if not dropped:
            what = "a background task" if func is None else f"a call to {describe_target(func)}"
            self._fail(f"Expected {what} to be dropped without running")
        for call in dropped:
            call.expected = True
        return dropped

    # -- waiting ----------------------------------------------------------------------------

    def wait(self, timeout: float = 5.0) -> None:
        """Block until no request is in flight and no task is running (a real server).

        Raises TimeoutError naming the tasks still running when ``timeout`` seconds pass.
        """
        __tracebackhide__ = True
        self._refuse_in_loop("wait", "await bgtasks.wait_async()")
        if not self._ledger.wait_idle(timeout):
            raise TimeoutError(self._busy_message(timeout))

    async def wait_async(self, timeout: float = 5.0) -> None:
        """Like :meth:`wait`, from async code, without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while self._ledger.busy:
            if time.monotonic() >= deadline:
                raise TimeoutError(self._busy_message(timeout))
            await anyio.sleep(0.005)

    def _busy_message(self, timeout: float) -> str:
        running = [call for call in self._calls if call.status == "running"]
        listing = (
            self._renderer.block(running, tracebacks=False) or "(a request is still in flight)"
        )
        return f"background tasks still busy after {timeout}s:\n{listing}"

    # -- deferred mode ----------------------------------------------------------------------

    @contextmanager
    def deferred(self) -> Iterator[BackgroundTaskRecorder]:
        """Hold the tasks scheduled inside this block until the test runs them."""
        previous, self._mode = self._mode, "deferred"
        try:
            yield self
        finally:
            self._mode = previous

    @property
    def held(self) -> list[TaskCall]:
        """Tasks held back in deferred mode, in scheduling order."""
        with self._held_lock:
            return self._held_in_order()

    def run_all(self, timeout: float | None = None) -> list[TaskCall]:
        """Run the held tasks in scheduling order, and those they schedule; return them.

        A failure is recorded (the strict check judges it) and skips the rest of its
        response's tasks, as Starlette would. Raises TimeoutError naming the running task
        when ``timeout`` seconds pass.
        """
        __tracebackhide__ = True
        self._refuse_in_loop("run_all", "await bgtasks.run_all_async()")
        deadline = None if timeout is None else time.monotonic() + timeout
        ran: list[TaskCall] = []
        while (call := self._take_held()) is not None:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not replay_blocking(self._run_held, call, remaining):
                call.expected = call.status == "cancelled"  # the test sees the TimeoutError
                raise TimeoutError(self._timeout_message("run_all", timeout, call))
            ran.append(call)
        return ran

    async def run_all_async(self, timeout: float | None = None) -> list[TaskCall]:
        """Like :meth:`run_all`, from async code (asyncio or trio)."""
        ran: list[TaskCall] = []
        call: TaskCall | None = None
        try:
            with anyio.fail_after(timeout):
                while (call := self._take_held()) is not None:
                    await replay_async(self._run_held, call)
                    ran.append(call)
        except TimeoutError:
            if call is not None and call.status == "cancelled":
                call.expected = True  # the test asked for the timeout and sees it raised
            raise TimeoutError(self._timeout_message("run_all_async", timeout, call)) from None
        return ran

    def run_next(self) -> TaskCall | None:
        """Run the first held task; return it, or None when nothing is held."""
        self._refuse_in_loop("run_next", "await bgtasks.run_all_async()")
        call = self._take_held()
        if call is not None:
            replay_blocking(self._run_held, call, None)
        return call

    def run(self, call: TaskCall) -> TaskCall:
        """Run one held task now, out of order."""
        self._refuse_in_loop("run", "await bgtasks.run_all_async()")
        if call not in self.held:
            raise ValueError(
                f"run() takes a task held in deferred mode, but {call!r} is not held"
                f" (status {call.status!r})"
            )
        self._warn_if_dependencies_closed(call)
        with self._held_lock:
            self._held = [(index, held) for index, held in self._held if held is not call]
            heapq.heapify(self._held)
        replay_blocking(self._run_held, call, None)
        return call

    def discard(self) -> list[TaskCall]:
        """Throw the held tasks away, as a crash after the response would; return them."""
        with self._held_lock:
            discarded = self._held_in_order()
            self._held.clear()
        for call in discarded:
            call.status = "discarded"
            call.reason = "discarded by the test, never ran"
        return discarded

    def _held_in_order(self) -> list[TaskCall]:
        """The held queue in scheduling order, without tasks already run; hold the lock."""
        return [call for _, call in sorted(self._held) if call.status == "scheduled"]

    def _take_held(self) -> TaskCall | None:
        """The next held task, after warning about it; a warning raised keeps it held."""
        call = self._next_held()
        if call is not None:
            try:
                self._warn_if_dependencies_closed(call)
            except BaseException:
                self._push_held(call)
                raise
        return call

    def _push_held(self, call: TaskCall) -> None:
        with self._held_lock:
            heapq.heappush(self._held, (call.index, call))

    def _next_held(self) -> TaskCall | None:
        with self._held_lock:
            while self._held:
                _, call = heapq.heappop(self._held)
                if call.status == "scheduled":
                    return call
        return None

    def _warn_if_dependencies_closed(self, call: TaskCall) -> None:
        request = call.request
        if request is None or id(request) in self._warned_requests:
            return
        names = yield_dependencies(request)
        if names:
            warnings.warn(
                f"{request} has dependencies with yield ({', '.join(names)}); they closed when"
                " the response ended, so its held tasks now run after them, unlike production"
                " (FastAPI >= 0.118 runs tasks before they close). A task that uses their"
                " resources may fail here only: test it in eager mode.",
                BgTasksWarning,
                stacklevel=4,
            )
        self._warned_requests.add(id(request))

    async def _run_held(self, call: TaskCall) -> None:
        await execute(self, call, reraise=False)

    def _timeout_message(self, what: str, timeout: float | None, call: TaskCall | None) -> str:
        running = self._renderer.line(call) if call is not None else "(none)"
        return f"{what}() timed out after {timeout}s while running {running}"

    # -- faults -----------------------------------------------------------------------------

    def fail(
        self,
        func_or_name: Target,
        exc: BaseException | type[BaseException],
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Make matching runs raise ``exc`` instead of running the function."""
        return self._add_fault(
            "fail", func_or_name, times, when, exception=_faults.exception_arg("fail", exc)
        )

    def fail_after(
        self,
        func_or_name: Target,
        exc: BaseException | type[BaseException],
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Run the real function (its side effects happen), then raise ``exc``."""
        exception = _faults.exception_arg("fail_after", exc)
        return self._add_fault("fail_after", func_or_name, times, when, exception=exception)

    def delay(
        self,
        func_or_name: Target,
        seconds: float,
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Add latency before the real function runs (on its loop, or in its worker thread)."""
        return self._add_fault(
            "delay", func_or_name, times, when, seconds=_faults.seconds_arg(seconds)
        )

    def replace(
        self,
        func_or_name: Target,
        substitute: Callable[..., Any],
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Run ``substitute(*args, **kwargs)`` (sync or async) instead of the function."""
        substitute = _faults.substitute_arg(substitute)
        return self._add_fault("replace", func_or_name, times, when, substitute=substitute)

    def hang(
        self, func_or_name: Target, *, times: int | None = None, when: Predicate | None = None
    ) -> Fault:
        """Make matching runs hang until cancelled, or until the test ends (then "cancelled").

        Pair it with something that returns while the task hangs: deferred mode with a
        ``run_all(timeout=...)``, or a real server. A plain ``TestClient`` waits for its tasks,
        so ``client.post()`` would never return.
        """
        return self._add_fault("hang", func_or_name, times, when)

    def _add_fault(
        self,
        kind: FaultKind,
        target: Target,
        times: int | None,
        when: Predicate | None,
        **details: Any,
    ) -> Fault:
        fault = Fault(kind, target, times=times, when=when, **details)
        self._faults.append(fault)
        return fault

    def _claim_fault(self, call: TaskCall) -> Fault | None:
        for fault in self._faults:
            if fault.claims(call):
                return fault
        return None

    # -- the hooks interception calls -------------------------------------------------------

    def _schedule(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        request = current_request.get()
        with self._scheduling:
            call = TaskCall(next(self._numbers), func, args, kwargs, request, time.monotonic())
            self._calls.append(call)
        if request is not None:
            request.calls.append(call)
        return call

    def _hold(self, call: TaskCall) -> None:
        call.token = anyio.lowlevel.current_token()
        self._push_held(call)

    def _skip_rest_of_batch(self, failed: TaskCall) -> None:
        batch = failed.batch or []
        if failed not in batch:
            return
        for call in batch[batch.index(failed) + 1 :]:
            if call.status == "scheduled":
                call.status = "skipped"
                call.reason = f"skipped: #{failed.index} {failed.name} failed before it"

    def _caused_by_task_failure(self, exc: BaseException) -> bool:
        """True when ``exc`` is, wraps (``raise ... from``), or groups only task failures.

        Only ``Exception`` is contained: ``SystemExit`` and ``KeyboardInterrupt`` go on up.
        """
        if not isinstance(exc, Exception):
            return False
        if id(exc) in self._failures:
            return True
        if isinstance(exc, BaseExceptionGroup):
            return all(self._caused_by_task_failure(inner) for inner in exc.exceptions)
        return exc.__cause__ is not None and self._caused_by_task_failure(exc.__cause__)

    def _request_finished(self, request: RequestInfo) -> None:
        request.release_scope()
        for call in request.calls:
            if call.status == "scheduled" and not call.held:
                call.status = "dropped"
                call.reason = _drop_reason(request, call)

    # -- teardown ---------------------------------------------------------------------------

    def _settle(self, timeout: float) -> list[TaskCall]:
        """Release hanging faults and wait for running tasks; return those still running."""
        for fault in self._faults:
            fault.release()
        if self._ledger.wait_idle(timeout):
            return []
        return [call for call in self._calls if call.status == "running"]

    def _problems(self) -> list[str]:
        """What the strict check reports: unexpected failures and drops, tasks never run."""
        problems: list[str] = []
        render = self._renderer
        for call in self._calls:
            if call.expected:
                continue
            if call.status in ("failed", "dropped", "cancelled"):
                problems.append(render.block([call]))
            elif call.status == "scheduled" and not call.held and call.request is None:
                problems.append(render.line(call) + "  (never handed to a response, never ran)")
        names = ", ".join(sorted({call.name for call in self._calls})) or "none"
        for fault in self._faults:
            if fault.applied == 0:
                problems.append(
                    f"fault {fault} was never applied: no matching task ran (a typo? tasks"
                    f" recorded: {names})"
                )
        return problems

    # -- messages ---------------------------------------------------------------------------

    def _matching(
        self, func: Target, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[TaskCall]:
        check_target(func, "assert_scheduled")
        expected = expected_arguments(func, args, kwargs)
        return [call for call in self.calls_to(func) if arguments_match(call, expected)]

    def _expectation(self, func: Target, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        shown = self._renderer.arguments(expected_arguments(func, args, kwargs))
        return f"a background task {describe_target(func)}({shown})"

    def _fail(self, message: str, calls: list[TaskCall] | None = None) -> None:
        __tracebackhide__ = True
        shown = self._calls if calls is None else calls
        label = "Scheduled tasks" if calls is None else "Offending tasks"
        listing = self._renderer.block(shown) if shown else "(no background task was scheduled)"
        raise AssertionError(f"{message}.\n{label} ({len(shown)}):\n{listing}")

    def _refuse_in_loop(self, name: str, instead: str) -> None:
        if in_event_loop():
            raise RuntimeError(
                f"bgtasks.{name}() blocks, and was called inside a running event loop;"
                f" in async code use {instead} instead"
            )

    def __repr__(self) -> str:
        return f"<BackgroundTaskRecorder mode={self._mode!r} calls={len(self._calls)}>"


def _drop_reason(request: RequestInfo, call: TaskCall) -> str:
    if request.is_websocket:
        return "dropped: WebSocket endpoints never run background tasks"
    if request.cancelled:
        return (
            "dropped: the request was cancelled first (a streamed response left unread,"
            " or the client went away)"
        )
    if request.status_code is not None and request.status_code >= 400:
        return (
            f"dropped: the app answered {request.status_code}, and an error response does not"
            " run the injected tasks"
        )
    if request.dispatched_at is not None and call.scheduled_at > request.dispatched_at:
        return (
            "dropped: scheduled after the response's background had started (in a"
            " dependency's exit code, or a task)"
        )
    if request.dispatched_at is not None:
        return (
            "dropped: the response brought its own background (Response(background=...)),"
            " which replaces the injected tasks"
        )
    return "dropped: the response was sent without running it"
