"""The state every source of work feeds and the recorder reads: records, queue, faults, ledger.

Sources (``pytest_bgtasks._sources``) hand new work to :meth:`Core.schedule`, then hold it or
run it with ``_execution.execute``; the core knows no source.
"""

from __future__ import annotations

import gc
import itertools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pytest_bgtasks._blocking import BlockingWatch
from pytest_bgtasks._faults import FaultRegistry
from pytest_bgtasks._held import HeldQueue
from pytest_bgtasks._ledger import Ledger
from pytest_bgtasks._lifetimes import ArgumentCheck
from pytest_bgtasks._loops import current_loop
from pytest_bgtasks._options import DEFAULT_BLOCKING_LIMIT, Mode, Queues
from pytest_bgtasks._record import JobInfo, TaskCall, current_call, current_request

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class Core:
    """One test's recorded work and what controls it."""

    def __init__(
        self,
        mode: Mode,
        queues: Queues = "intercept",
        check: ArgumentCheck | None = None,
        *,
        blocking_limit: float | None = DEFAULT_BLOCKING_LIMIT,
        contain: bool = True,
    ) -> None:
        self.mode: Mode = mode
        #: Whether a task's exception stops at the outermost app (the client gets the response
        #: a real client gets) or leaves it, as it would without the plugin.
        self.contain = contain
        #: What queue sources do with jobs: "intercept" them, or let them "passthrough".
        self.queues: Queues = queues
        #: Judges each task's arguments as it is scheduled; None when no check is on.
        self.check = check
        self.calls: list[TaskCall] = []
        self.ledger = Ledger()
        self.held = HeldQueue()
        self.faults = FaultRegistry()
        #: Times each step of async work run through it, against the blocking limit.
        self.blocking = BlockingWatch(blocking_limit)
        #: Task failures by ``id(exception)``, so the app's error path can tell them apart.
        self.failures: dict[int, TaskCall] = {}
        #: How the test's reordered replays can be run again, for a failing test's report.
        self.replay_notes: list[str] = []
        self._numbers = itertools.count(1)
        self._scheduling = threading.Lock()  # numbers and order agree across threads

    def schedule(
        self,
        func: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        kind: str = "background",
        job: JobInfo | None = None,
    ) -> TaskCall:
        """Record new work, attributed to the request being handled in this context, or to
        the request of the recorded task running in it."""
        request = current_request.get()
        if request is None and (running := current_call.get()) is not None:
            request = running.request
        self._scheduling.acquire()  # not ``with``: see Ledger, this runs once per task
        try:
            call = TaskCall(
                next(self._numbers), func, args, kwargs, request, time.monotonic(), kind
            )
            if job is not None:
                call.job = job
            self.calls.append(call)
        finally:
            self._scheduling.release()
        if request is not None:
            request.calls.append(call)
        if self.check is not None:
            self.check(call)
        return call

    def hold(self, call: TaskCall) -> None:
        """Hold ``call`` for the test, remembering the event loop to replay it on, if any.

        Held from sync code outside any loop (a queue's sync enqueue), there is none.
        """
        call.hold(current_loop())
        self.held.push(call)

    def contains(self, exc: BaseException) -> bool:
        """True when the outermost app keeps ``exc`` in: a task failure, and containment on."""
        return self.contain and self.caused_by_task_failure(exc)

    def caused_by_task_failure(self, exc: BaseException) -> bool:
        """True when ``exc`` is, wraps (``raise ... from``), or groups only task failures.

        Only ``Exception`` is contained: ``SystemExit`` and ``KeyboardInterrupt`` go on up.
        """
        if not isinstance(exc, Exception):
            return False
        if id(exc) in self.failures:
            return True
        if isinstance(exc, BaseExceptionGroup):
            return all(self.caused_by_task_failure(inner) for inner in exc.exceptions)
        return exc.__cause__ is not None and self.caused_by_task_failure(exc.__cause__)

    def settle(self, timeout: float) -> list[TaskCall]:
        """Release hanging faults and wait for running tasks; return those still running.

        Work that only the garbage collector still holds is collected first, so that sources
        tracking it by weak reference see it gone instead of waiting for it.
        """
        self.faults.release()
        if self.ledger.wait_idle(0):
            return []
        gc.collect()
        if self.ledger.wait_idle(timeout):
            return []
        return [call for call in self.calls if call.status == "running"]
