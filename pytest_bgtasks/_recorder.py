"""The ``bgtasks`` fixture's object: the record of every task, assertions, control and faults."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio

from pytest_bgtasks._assertions import CallAssertions
from pytest_bgtasks._bounds import MAX_CHAINED, RunBounds, without_timeout
from pytest_bgtasks._capture import CaptureBlock
from pytest_bgtasks._concurrent_replay import ConcurrentRun
from pytest_bgtasks._core import Core
from pytest_bgtasks._dependencies import ClosedDependencyWarnings
from pytest_bgtasks._execution import execute
from pytest_bgtasks._faults import Fault, FaultKind, Predicate
from pytest_bgtasks._matching import Target, refers_to
from pytest_bgtasks._numbers import checked_count, checked_seconds
from pytest_bgtasks._options import Mode
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._rendering import Renderer
from pytest_bgtasks._replay import (
    Runner,
    in_event_loop,
    replay_async,
    replay_blocking,
    run_blocking,
)
from pytest_bgtasks._replay_order import Order, ReplayOrder, ReplayPlan
from pytest_bgtasks._shutdown import shut_down, shut_down_async


class BackgroundTaskRecorder(CallAssertions):
    """Records the background tasks that apps schedule while a test runs, and controls them.

    Returned by the ``bgtasks`` fixture; import it for type hints only, its constructor is
    private. In mode ``"eager"`` tasks run as Starlette runs them, after the response; in mode
    ``"deferred"`` they are held until the test calls :meth:`run_all` (or ``run_next``/``run``).
    """

    _owner = "bgtasks"

    def __init__(self, core: Core, renderer: Renderer | None = None) -> None:
        self._core = core
        self._calls = core.calls  # the core appends; the recorder reads
        self._renderer = renderer or Renderer()
        self._dependency_warnings = ClosedDependencyWarnings(self._renderer.request)
        #: How reordered runs ran, for a failing test's report (see ``ReplayOrder.note``).

    def _scope(self) -> Sequence[TaskCall]:
        return self._calls

    def _everything(self) -> Sequence[TaskCall]:
        return self._calls

    # -- the record (its queries and assertions: CallAssertions) ------------------------------

    @property
    def mode(self) -> Mode:
        return self._core.mode

    @property
    def max_concurrency(self) -> int:
        """The peak number of tasks running at once during the test."""
        return self._core.ledger.max_running

    # -- waiting ----------------------------------------------------------------------------

    def wait(self, timeout: float = 5.0) -> None:
        """Block until no request is in flight and no task is running (a real server).

        Raises TimeoutError naming the tasks still running when ``timeout`` seconds pass.
        """
        __tracebackhide__ = True
        self._refuse_in_loop("wait", "await bgtasks.wait_async()")
        timeout = checked_seconds(timeout, "bgtasks.wait(timeout=...)")
        if not self._core.ledger.wait_idle(timeout):
            raise TimeoutError(self._busy_message(timeout))

    async def wait_async(self, timeout: float = 5.0) -> None:
        """Like :meth:`wait`, from async code, without blocking the event loop."""
        __tracebackhide__ = True
        timeout = checked_seconds(timeout, "bgtasks.wait_async(timeout=...)")
        deadline = time.monotonic() + timeout
        while self._core.ledger.busy:
            if time.monotonic() >= deadline:
                raise TimeoutError(self._busy_message(timeout))
            await anyio.sleep(0.005)

    def _busy_message(self, timeout: float) -> str:
        running = [call for call in self._calls if call.status == "running"]
        listing = (
            self._renderer.block(running, tracebacks=False) or "(a request is still in flight)"
        )
        return f"background tasks still busy after {timeout:g}s:\n{listing}"

    # -- scoped capture ---------------------------------------------------------------------

    @contextmanager
    def capture(self) -> Iterator[CaptureBlock]:
        """Capture the tasks scheduled inside this block, to assert on them alone.

        ``with bgtasks.capture() as block:`` gives a :class:`CaptureBlock` with the recorder's
        queries and assertions over the tasks scheduled while the block is open, from any
        thread (a real server's too). Blocks nest; the recorder still sees every task.
        """
        block = CaptureBlock(self._core, self._renderer)
        try:
            yield block
        finally:
            block.close()

    # -- deferred mode ----------------------------------------------------------------------

    @contextmanager
    def deferred(self) -> Iterator[BackgroundTaskRecorder]:
        """Hold the tasks scheduled inside this block until the test runs them."""
        with self._mode("deferred"):
            yield self

    @contextmanager
    def eager(self) -> Iterator[BackgroundTaskRecorder]:
        """Run the tasks scheduled inside this block as in eager mode (in a deferred test).

        Tasks held before the block stay held.
        """
        with self._mode("eager"):
            yield self

    @contextmanager
    def _mode(self, mode: Mode) -> Iterator[None]:
        core = self._core
        previous, core.mode = core.mode, mode
        try:
            yield
        finally:
            core.mode = previous

    @property
    def held(self) -> list[TaskCall]:
        """Tasks held back in deferred mode, in scheduling order."""
        return self._core.held.in_order()

    def run_all(
        self,
        timeout: float | None = None,
        *,
        only: Target | None = None,
        limit: int | None = None,
        max_chained: int = MAX_CHAINED,
        order: Order = "scheduled",
        seed: int | None = None,
        concurrent: bool = False,
    ) -> list[TaskCall]:
        """Run the held tasks in scheduling order, and those they schedule; return them.

        ``only`` (a function or its name) runs the held tasks of that function alone;
        ``limit`` runs at most that many tasks. The others stay held.

        ``order="reversed"`` or ``"random"`` (shuffled with ``seed``; one is picked and shown
        in a failing test's report when None) reorders the responses, each response's own tasks
        kept in their order. ``concurrent=True`` runs different responses' tasks at once, as a
        real server does, each response's in sequence; the tasks come back as they finished.

        A failure is recorded (the strict check judges it) and skips the rest of its
        response's tasks, as Starlette would. Raises TimeoutError naming the running task
        when ``timeout`` seconds pass, and RuntimeError once the tasks it ran have scheduled
        ``max_chained`` more (an endless chain); the tasks not started by then stay held.
        """
        __tracebackhide__ = True
        self._refuse_in_loop("run_all", "await bgtasks.run_all_async()")
        timeout = _run_timeout(timeout, "run_all")
        pick = _Selection(only, limit, "run_all")
        bounds = RunBounds("run_all", timeout, max_chained, len(self._calls))
        plan = self._plan("run_all", pick, order, seed, concurrent)
        run = self._runner(None if timeout is not None else without_timeout("run_all"))
        if concurrent:
            batch = self._concurrent_run(plan, pick, bounds)
            anything, loop = batch.plan_first_round()
            if anything and not run_blocking(
                lambda: batch.drain(run), loop, timeout, name="bgtasks-replay-concurrent"
            ):
                message = batch.timeout_message("run_all", timeout)
                raise TimeoutError(message or self._timeout_message("run_all", timeout, None))
            return bounds.ran
        while pick.wants_more(bounds.ran) and (call := self._take_held(plan)) is not None:
            self._stop_if_bound_reached(bounds, call, timeout)
            if not replay_blocking(run, call, bounds.remaining()):
                call.expected = call.status == "cancelled"  # the test sees the TimeoutError
                raise TimeoutError(self._timeout_message("run_all", timeout, call))
            bounds.ran.append(call)
        return bounds.ran

    async def run_all_async(
        self,
        timeout: float | None = None,
        *,
        only: Target | None = None,
        limit: int | None = None,
        max_chained: int = MAX_CHAINED,
        order: Order = "scheduled",
        seed: int | None = None,
        concurrent: bool = False,
    ) -> list[TaskCall]:
        """Like :meth:`run_all`, from async code (asyncio or trio)."""
        __tracebackhide__ = True
        timeout = _run_timeout(timeout, "run_all_async")
        pick = _Selection(only, limit, "run_all_async")
        bounds = RunBounds("run_all_async", timeout, max_chained, len(self._calls))
        plan = self._plan("run_all_async", pick, order, seed, concurrent)
        run = self._runner(None if timeout is not None else without_timeout("run_all_async"))
        if concurrent:
            batch = self._concurrent_run(plan, pick, bounds)
            try:
                with anyio.fail_after(timeout):
                    await batch.drain(run)
            except TimeoutError:
                message = batch.timeout_message("run_all_async", timeout)
                raise TimeoutError(
                    message or self._timeout_message("run_all_async", timeout, None)
                ) from None
            return bounds.ran
        call: TaskCall | None = None
        try:
            with anyio.fail_after(timeout):
                while pick.wants_more(bounds.ran) and (call := self._take_held(plan)) is not None:
                    self._stop_if_bound_reached(bounds, call, timeout)
                    await replay_async(run, call)
                    bounds.ran.append(call)
        except TimeoutError:
            if call is not None and call.status == "cancelled":
                call.expected = True  # the test asked for the timeout and sees it raised
            raise TimeoutError(self._timeout_message("run_all_async", timeout, call)) from None
        return bounds.ran

    def _plan(
        self, method: str, pick: _Selection, order: object, seed: object, concurrent: object
    ) -> ReplayPlan:
        """The run's order, checked before anything is taken off the queue, and noted for a
        failing test's report."""
        __tracebackhide__ = True
        replay_order = ReplayOrder(order, seed, method)
        if not isinstance(concurrent, bool):
            raise TypeError(
                f"bgtasks.{method}(concurrent=...) takes True or False, got {concurrent!r}"
            )
        note = replay_order.note(concurrent)
        if note is not None and note not in self._core.replay_notes:
            self._core.replay_notes.append(note)
        return ReplayPlan(replay_order, pick.matching)

    def _concurrent_run(
        self, plan: ReplayPlan, pick: _Selection, bounds: RunBounds
    ) -> ConcurrentRun:
        return ConcurrentRun(
            self._core.held,
            plan,
            bounds,
            pick.limit,
            self._dependency_warnings.warn_once,
            self._renderer.line,
        )

    def run_next(self) -> TaskCall | None:
        """Run the first held task; return it, or None when nothing is held."""
        __tracebackhide__ = True
        self._refuse_in_loop("run_next", "await bgtasks.run_all_async()")
        call = self._take_held()
        if call is not None:
            replay_blocking(self._runner(without_timeout("run_next")), call, None)
        return call

    def run(self, call: TaskCall) -> TaskCall:
        """Run one held task now, out of order."""
        __tracebackhide__ = True
        self._refuse_in_loop("run", "await bgtasks.run_all_async()")
        if not isinstance(call, TaskCall):
            raise TypeError(f"bgtasks.run() takes a TaskCall from bgtasks.held, got {call!r}")
        if not self._core.held.remove(call):
            raise ValueError(
                f"bgtasks.run() takes a task held in deferred mode, but {call!r} is not held"
                f" (status {call.status!r})"
            )
        try:
            self._dependency_warnings.warn_once(call)
        except BaseException:
            self._core.held.push(call)  # a warning raised as an error keeps it held
            raise
        replay_blocking(self._runner(without_timeout("run")), call, None)
        return call

    def discard(self) -> list[TaskCall]:
        """Throw the held tasks away, as a crash after the response would; return them."""
        return self._core.held.discard("discarded by the test, never ran")

    def _take_held(self, plan: ReplayPlan | None = None) -> TaskCall | None:
        """The next held task (the next of ``plan``'s, if given), after warning about it; a
        warning raised keeps it held."""
        __tracebackhide__ = True
        call = self._core.held.pop() if plan is None else plan.take(self._core.held)
        if call is not None:
            try:
                self._dependency_warnings.warn_once(call)
            except BaseException:
                self._core.held.push(call)
                raise
        return call

    def _runner(self, hang_refusal: str | None) -> Runner:
        """What replays a held task; ``hang_refusal`` says why a hang would never end there."""

        async def run_held(call: TaskCall) -> None:
            try:
                await execute(self._core, call, reraise=False, hang_refusal=hang_refusal)
            finally:
                if call.held:  # cancelled before it started (a timeout): it is still held
                    self._core.held.push(call)

        return run_held

    def _stop_if_bound_reached(
        self, bounds: RunBounds, call: TaskCall, timeout: float | None
    ) -> None:
        """Raise, ``call`` held again, when the run must stop before it: time or chain."""
        __tracebackhide__ = True
        if bounds.remaining() == 0:
            self._core.held.push(call)  # the time ran out before it started: still held
            raise TimeoutError(self._timeout_message(bounds.method, timeout, None))
        chain_error = bounds.chain_too_long(call, self._renderer.line)
        if chain_error is not None:
            self._core.held.push(call)
            raise RuntimeError(chain_error)

    def _timeout_message(self, what: str, timeout: float | None, call: TaskCall | None) -> str:
        if call is None or call.held:
            held = self._renderer.block(self.held, tracebacks=False)
            return f"{what}() timed out after {timeout:g}s; still held, not started:\n{held}"
        return f"{what}() timed out after {timeout:g}s while running {self._renderer.line(call)}"

    # -- shutdown rehearsal ------------------------------------------------------------------

    def shutdown(self, grace: float = 1.0) -> list[TaskCall]:
        """Do what a server does when it stops; return the tasks it cut short.

        Held tasks are discarded. Running tasks get up to ``grace`` seconds to end; then the
        async ones are cancelled on their event loop (their ``finally`` blocks run; status
        "cancelled", expected) and waited for. A sync task still running cannot be stopped (a
        thread cannot be cancelled): it is returned as "running", its reason saying so, and
        teardown still waits for it and judges how it ends.
        """
        __tracebackhide__ = True
        self._refuse_in_loop("shutdown", "await bgtasks.shutdown_async()")
        return shut_down(self._core, checked_seconds(grace, "bgtasks.shutdown(grace=...)"))

    async def shutdown_async(self, grace: float = 1.0) -> list[TaskCall]:
        """Like :meth:`shutdown`, from async code, without blocking the event loop."""
        __tracebackhide__ = True
        grace = checked_seconds(grace, "bgtasks.shutdown_async(grace=...)")
        return await shut_down_async(self._core, grace)

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
        __tracebackhide__ = True
        return self._add_fault("fail", func_or_name, times, when, exception=exc)

    def fail_after(
        self,
        func_or_name: Target,
        exc: BaseException | type[BaseException],
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Run the real function (its side effects happen), then raise ``exc``."""
        __tracebackhide__ = True
        return self._add_fault("fail_after", func_or_name, times, when, exception=exc)

    def delay(
        self,
        func_or_name: Target,
        seconds: float,
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Add latency before the real function runs (on its loop, or in its worker thread)."""
        __tracebackhide__ = True
        return self._add_fault("delay", func_or_name, times, when, seconds=seconds)

    def replace(
        self,
        func_or_name: Target,
        substitute: Callable[..., Any],
        *,
        times: int | None = None,
        when: Predicate | None = None,
    ) -> Fault:
        """Run ``substitute(*args, **kwargs)`` (sync or async) instead of the function."""
        __tracebackhide__ = True
        return self._add_fault("replace", func_or_name, times, when, substitute=substitute)

    def hang(
        self, func_or_name: Target, *, times: int | None = None, when: Predicate | None = None
    ) -> Fault:
        """Make matching runs hang until cancelled, or until the test ends (then "cancelled").

        Pair it with something that returns while the task hangs: deferred mode with a
        ``run_all(timeout=...)``, or a real server. Where nothing could end it (a request from
        ``TestClient`` or ``httpx.ASGITransport``, which wait for their tasks; a run without a
        timeout) the run fails at once with a RuntimeError saying so.
        """
        __tracebackhide__ = True
        return self._add_fault("hang", func_or_name, times, when)

    def _add_fault(
        self,
        kind: FaultKind,
        target: Target,
        times: int | None,
        when: Predicate | None,
        **details: Any,
    ) -> Fault:
        __tracebackhide__ = True
        return self._core.faults.add(Fault(kind, target, times=times, when=when, **details))

    # -- messages ---------------------------------------------------------------------------

    def _refuse_in_loop(self, name: str, instead: str) -> None:
        __tracebackhide__ = True
        if in_event_loop():
            raise RuntimeError(
                f"bgtasks.{name}() blocks, and was called inside a running event loop;"
                f" in async code use {instead} instead"
            )

    def __repr__(self) -> str:
        return f"<BackgroundTaskRecorder mode={self.mode!r} calls={len(self._calls)}>"


def _run_timeout(timeout: object, method: str) -> float | None:
    """A run's timeout: None, or seconds > 0 (zero would stop before the first task)."""
    __tracebackhide__ = True
    return checked_seconds(
        timeout, f"bgtasks.{method}(timeout=...)", positive=True, none_means="no bound"
    )


class _Selection:
    """Which held tasks one run takes: those of ``only`` (any, when None), ``limit`` at most."""

    def __init__(self, only: Target | None, limit: int | None, method: str) -> None:
        __tracebackhide__ = True
        if only is not None and not (callable(only) or isinstance(only, str)):
            raise TypeError(
                f"bgtasks.{method}(only=...) takes the task function or its name as a string,"
                f" got {only!r}"
            )
        self.only = only
        self.limit = None if limit is None else checked_count(limit, f"bgtasks.{method}(limit=...)")

    def matching(self, call: TaskCall) -> bool:
        return self.only is None or refers_to(call, self.only)

    def wants_more(self, ran: list[TaskCall]) -> bool:
        return self.limit is None or len(ran) < self.limit
