"""The Starlette source: class-level patches that feed the core, installed only while it records.

Patch points: ``BackgroundTask.__init__`` sees every task, explicit ones
included; ``BackgroundTask.__call__`` is the one execution hook every Starlette and FastAPI
version goes through (FastAPI's own ``BackgroundTasks.__call__`` is not, since 0.142);
``BackgroundTasks.__init__``/``add_task`` tell which tasks share a response;
``Starlette.__call__`` (outermost app only) tells which request scheduled a task, whether a real
server or an in-process client that waits for the tasks sent it, and contains task failures, so
clients get the response a real client would get (unless the test says ``contain=False``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import CodeType
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.types import Message, Receive, Scope, Send

from pytest_bgtasks._bounds import Caller, caller_of, hang_in_request
from pytest_bgtasks._core import Core
from pytest_bgtasks._execution import execute
from pytest_bgtasks._outcomes import drop_unrun
from pytest_bgtasks._record import (
    Lifespan,
    RequestInfo,
    TaskCall,
    current_lifespan,
    current_request,
)
from pytest_bgtasks._sources.patching import patched, unpatched

_PATCHED = (
    (BackgroundTask, "__init__"),
    (BackgroundTask, "__call__"),
    (BackgroundTasks, "__init__"),
    (BackgroundTasks, "add_task"),
)


class _AppHook:
    """The ``Starlette.__call__`` patch, and the core it feeds (None: it passes straight through).

    Another library may wrap it while a test records: sentry-sdk's Starlette integration
    replaces ``Starlette.__call__`` at its first ``init``, calling what was there before, for
    the rest of the process. The hook cannot be taken out of that wrapper, so it stays in it,
    inert, and the next recorder feeds it rather than wrapping the wrapper: the hook then sits
    inside the other library's, the same in every test, whichever test initialised it first.
    """

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.core: Core | None = None
        self.patch = _app_patch(self, original)


#: The hook in ``Starlette.__call__``'s chain, installed or left inside another's wrapper.
_app_hook: _AppHook | None = None


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Feed ``core`` every task scheduled in this process until the block ends."""
    originals = unpatched("background tasks", *_PATCHED)
    patches = zip(_PATCHED, _patches(core, originals), strict=True)
    with patched(*((owner, name, patch) for (owner, name), patch in patches)), _app_hooked(core):
        yield


@contextmanager
def _app_hooked(core: Core) -> Iterator[None]:
    """Feed ``core`` through the hook on ``Starlette.__call__`` until the block ends; then put
    Starlette's own method back, or, where another library has wrapped the hook meanwhile,
    leave the hook there, inert, for the next recorder."""
    global _app_hook
    hook = _hook_in_chain()
    hook.core = core
    try:
        yield
    finally:
        hook.core = None
        _callers.clear()
        if Starlette.__dict__["__call__"] is hook.patch:
            Starlette.__call__ = hook.original  # type: ignore[method-assign]
            _app_hook = None


def _hook_in_chain() -> _AppHook:
    """The hook ``Starlette.__call__`` goes through: the one left in another library's wrapper,
    or a new one (also when that library has put Starlette's own method back since)."""
    global _app_hook
    current = Starlette.__dict__["__call__"]
    if _app_hook is None or current is _app_hook.original:
        _app_hook = _AppHook(current)
        Starlette.__call__ = _app_hook.patch  # type: ignore[method-assign]
    return _app_hook


def _patches(core: Core, originals: list[Any]) -> list[Callable[..., Any]]:
    task_init, task_call, tasks_init, add_task = originals

    def __init__(
        task: BackgroundTask, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> None:
        task_init(task, func, *args, **kwargs)
        task._bgtasks_call = core.schedule(func, args, kwargs)  # type: ignore[attr-defined]

    async def __call__(task: BackgroundTask) -> None:
        call = getattr(task, "_bgtasks_call", None)
        if call is None:  # made before recording started
            await task_call(task)
            return
        if call.status == "skipped":  # an earlier task of this response failed
            return
        if call.status != "scheduled":  # one task object run again (or held): a new record
            previous, call = call, core.schedule(task.func, task.args, task.kwargs)
            if previous.batch is not None:
                call.batch = previous.batch
                call.batch[call.batch.index(previous)] = call
            task._bgtasks_call = call  # type: ignore[attr-defined]
        request = call.request
        if request is not None and request.dispatched_at is None:
            request.dispatched_at = time.monotonic()
        if core.mode == "deferred":
            core.hold(call)
            return
        refusal = _hang_refusal_async if task.is_async else _hang_refusal_sync
        await execute(core, call, reraise=True, is_async=task.is_async, hang_refusal=refusal)

    def tasks_init_patch(
        tasks: BackgroundTasks, tasks_arg: Sequence[BackgroundTask] | None = None, /
    ) -> None:
        tasks_init(tasks, tasks_arg)
        for task in tasks.tasks:
            _join_batch(tasks, task)

    def add_task_patch(
        tasks: BackgroundTasks, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> None:
        add_task(tasks, func, *args, **kwargs)
        _join_batch(tasks, tasks.tasks[-1])

    return [__init__, __call__, tasks_init_patch, add_task_patch]


def _app_patch(hook: _AppHook, app_call: Callable[..., Any]) -> Callable[..., Any]:
    """``Starlette.__call__`` for ``hook``: attributes work to requests, contains task failures."""

    async def app_patch(app: Starlette, scope: Scope, receive: Receive, send: Send) -> None:
        core = hook.core
        if core is None:  # its test ended: another library's wrapper still calls it
            await app_call(app, scope, receive, send)
            return
        if scope["type"] == "lifespan" and current_lifespan.get() is None:
            await _run_lifespan(app_call, app, scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket") or current_request.get() is not None:
            await app_call(app, scope, receive, send)
            return
        request = RequestInfo(scope)
        reset = current_request.set(request)

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request.status_code = message["status"]
            await send(message)

        core.ledger.enter()
        try:
            await app_call(app, scope, receive, observed_send)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                request.cancelled = True
                raise
            if not core.contains(exc):  # contain=False: on to the server, the client
                raise
        finally:
            current_request.reset(reset)
            request.release_scope()
            drop_unrun(request)
            core.ledger.leave()

    return app_patch


async def _run_lifespan(
    app_call: Callable[..., Any], app: Starlette, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run the outermost app's lifespan, marking the work created during it as its own."""
    lifespan = Lifespan()
    reset = current_lifespan.set(lifespan)
    try:
        await app_call(app, scope, receive, send)
    finally:
        lifespan.ended = True
        current_lifespan.reset(reset)


#: ``caller_of``'s memo: what each code object on a request's stack says of the caller;
#: cleared when a test's recording ends.
_callers: dict[CodeType, Caller | None] = {}


def _hang_refusal(is_async: bool) -> str | None:
    """Why a hang in the task about to run here would never end, read from who called the
    app: the stack is the request's, as the response runs its tasks in the request's own call
    (read only when a hang applies: walking the stack costs)."""
    if current_request.get() is None:
        return hang_in_request(None, is_async)
    return hang_in_request(caller_of(sys._getframe(1), _callers), is_async)


def _hang_refusal_async() -> str | None:
    return _hang_refusal(True)


def _hang_refusal_sync() -> str | None:
    return _hang_refusal(False)


def _join_batch(tasks: BackgroundTasks, task: BackgroundTask) -> None:
    """Add ``task``'s record to the list of records its container shares among them.

    The records share a plain list rather than the container, so a record does not keep the
    container (and every task's arguments) alive after its request.
    """
    call = getattr(task, "_bgtasks_call", None)
    if call is None:
        return
    batch: list[TaskCall] | None = getattr(tasks, "_bgtasks_batch", None)
    if batch is None:
        batch = tasks._bgtasks_batch = []  # type: ignore[attr-defined]
    batch.append(call)
    call.batch = batch
