"""The asyncio source: tasks the app creates itself (``create_task``, ``TaskGroup``, anyio).

One class-level patch on ``asyncio.BaseEventLoop.create_task`` sees every task on every
asyncio loop: ``asyncio.create_task``, ``ensure_future``, ``TaskGroup.create_task`` and
anyio's ``start_soon`` all end there. Only the app's own tasks are recorded: created while a
request, the app's lifespan or a recorded task runs, from a coroutine of the app's code (not
Starlette's, anyio's or asyncio's plumbing). Tasks are watched through weak references, so a
task nothing else keeps is still garbage-collected, as in production.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import CodeType, CoroutineType, FrameType, FunctionType, MethodType
from typing import Any

from pytest_bgtasks._core import Core
from pytest_bgtasks._faults import Fault, FaultReleased
from pytest_bgtasks._loops import EventLoop
from pytest_bgtasks._record import TaskCall, current_call, current_lifespan, current_request
from pytest_bgtasks._shutdown import cancel_soon
from pytest_bgtasks._sources.patching import patched, unpatched

#: Top-level packages whose coroutines are plumbing, not the app's own work.
_PLUMBING = frozenset(
    {
        "asyncio",
        "anyio",
        "starlette",
        "fastapi",
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "uvicorn",
        "h11",
        "httptools",
        "websockets",
        "wsproto",
        "sniffio",
        "concurrent",
        "pytest_bgtasks",
    }
)
_ARGUMENT_FLAGS = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS

UNRETRIEVED = (
    "raised an exception nobody retrieved (it was not awaited, and neither .exception() nor"
    " .result() was called)"
)
LEAKED = (
    "still pending when the test ended: a leak (await it, cancel it, or wait for it with"
    " bgtasks.wait())"
)
DESTROYED = (
    "destroyed while pending: garbage-collected because nothing kept a reference to it;"
    " keep one (a set of tasks, discarded in a done callback) until it is done"
)
LOOP_CLOSED = (
    "cancelled unfinished when its event loop shut down: the test's client or event loop"
    " closed while it was pending (a TestClient used without `with` closes its loop after"
    " each request); wait for it first, with bgtasks.wait() or await bgtasks.wait_async()"
)

OUTLIVED_APP = (
    "outlived the app: its lifespan ended with it still running, and it was cancelled when"
    " the event loop shut down (cancel it, and await it, in the lifespan's shut-down)"
)


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record the app's asyncio tasks into ``core`` until the block ends, then judge them."""
    (original,) = unpatched("asyncio tasks", (asyncio.BaseEventLoop, "create_task"))
    watcher = _Watcher(core)

    def create_task(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> Any:
        if (
            type(coro) is CoroutineType
            and (current_request.get() or current_lifespan.get() or current_call.get())
            and (work := watcher.app_work(coro)) is not None
            and not _runs_a_loop(sys._getframe(1))
        ):
            return watcher.create(original, loop, coro, work, options)
        return original(loop, coro, **options)

    try:
        with patched((asyncio.BaseEventLoop, "create_task", create_task)):
            yield
    finally:
        watcher.judge()


class _Watcher:
    """Records each task, follows it to its end, and judges what the test left behind."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._facts: dict[CodeType, _CodeFacts] = {}
        #: The recorded tasks still pending, by ``id()`` (a task's id is its own while it lives).
        self._refs: dict[int, _TaskRef] = {}
        self._on_done = self._done  # one bound method for every task's done callback
        #: Failed tasks, kept until teardown to see whether the app retrieved the exception.
        self._failed: list[tuple[TaskCall, asyncio.Task[Any]]] = []

    def create(
        self,
        create_task: Callable[..., asyncio.Task[Any]],
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        work: Work,
        options: dict[str, Any],
    ) -> asyncio.Task[Any]:
        """Create the task for ``coro``, whose work is the app's coroutine in ``work``."""
        app_coro, frame, facts = work
        core = self._core
        values = frame.f_locals  # the arguments, read before the coroutine starts
        arguments = {name: _held(values[name]) for name in facts.parameters if name in values}
        func = facts.function
        if facts.method and facts.parameters[0] in arguments:
            func = MethodType(func, arguments.pop(facts.parameters[0]))
        call = core.schedule(func, (), arguments, "asyncio")
        call.origin = self._origin(sys._getframe(2))
        if current_request.get() is None and current_call.get() is None:
            call.lifespan = current_lifespan.get()
        fault = core.faults.claim(call)
        if fault is not None:
            call.fault = str(fault)
            coro = _faulted(fault, coro, app_coro, call)
        task = create_task(loop, core.blocking.timed(coro, call), **options)
        counted = call.lifespan is None  # lifespan tasks may rightly run as long as the app
        call.status = "running"
        call.started_at = call.scheduled_at
        if counted:
            core.ledger.enter()
        task.add_done_callback(self._on_done)
        ref = self._refs[id(task)] = _TaskRef(task, self._collected)
        ref.call, ref.counted, ref.fault, ref.loop = call, counted, fault, loop
        ref.reason, ref.task_id = None, id(task)
        call.cancellation = ref
        return task

    def app_work(self, coro: CoroutineType[Any, Any, Any]) -> Work | None:
        """The app's own coroutine that ``coro`` runs, with its frame; None for plumbing."""
        frame = coro.cr_frame
        if frame is None:
            return None
        facts = self._facts.get(frame.f_code)
        if facts is None:
            facts = self._facts[frame.f_code] = _CodeFacts(coro, frame)
        if facts.runs_wrapped:
            inner = getattr(frame.f_locals.get("self"), "_coro", None)
            return self.app_work(inner) if type(inner) is CoroutineType else None
        return None if facts.plumbing else (coro, frame, facts)

    def _origin(self, frame: FrameType | None) -> str | None:
        """``file:line`` of the app's code that created the task, out of ``frame`` and up."""
        while frame is not None:
            code = frame.f_code
            facts = self._facts.get(code)
            if facts is None:
                facts = self._facts[code] = _CodeFacts(None, frame)
            if not facts.plumbing:
                line = frame.f_lineno
                origin = facts.origins.get(line)
                if origin is None:  # one string per line, shared by the tasks it creates
                    origin = facts.origins[line] = f"{code.co_filename}:{line}"
                return origin
            frame = frame.f_back
        return None

    def _done(self, task: asyncio.Task[Any]) -> None:
        ref = self._refs.pop(id(task), None)
        if ref is None:  # it ended after the test judged it (a leak): nothing to book
            return
        call, fault, counted = ref.call, ref.fault, ref.counted
        call.finished_at = time.monotonic()
        exception = None if task.cancelled() else getattr(task, "_exception", None)  # unretrieved
        if task.cancelled():
            call.status = "cancelled"
            if call.cancellation is not None and call.cancellation.reason is not None:
                call.reason = call.cancellation.reason  # shutdown() cancelled it
                call.expected = True
            elif fault is not None and fault.kind == "hang":
                call.reason = "hung by fault until cancelled"
                call.expected = True
            else:
                call.reason = _cancel_reason(call)
        elif isinstance(exception, FaultReleased):
            task.exception()  # the plugin's own exception: retrieved, so asyncio logs nothing
            call.status = "cancelled"
            call.reason = "hung by fault until the test ended"
            call.expected = True
        elif exception is not None:
            call.status = "failed"
            call.exception = exception
            call.expected = fault is not None and fault.raised(exception)
            self._failed.append((call, task))
        else:
            call.status = "succeeded"
            call.result = task.result()
        if counted:  # after the app's own done callbacks, which asyncio runs next, in order
            task.get_loop().call_soon(self._core.ledger.leave)

    def _collected(self, ref: _TaskRef) -> None:
        if self._refs.get(ref.task_id) is ref:
            del self._refs[ref.task_id]
        call, counted = ref.call, ref.counted
        if call.status != "running":
            return
        call.status = "dropped"
        call.reason = DESTROYED
        call.finished_at = time.monotonic()
        if counted:
            self._core.ledger.leave()

    def judge(self) -> None:
        """Say, on each record, whether what became of its task is a problem for the test."""
        for call, task in self._failed:
            if not task._log_traceback:
                call.expected = True
                call.reason = "its exception was retrieved by the app"
            elif call.reason is None:
                call.reason = UNRETRIEVED
        self._failed.clear()
        for call in self._core.calls:
            if call.kind != "asyncio":
                continue
            lifespan_runs = call.lifespan is not None and not call.lifespan.ended
            if call.status == "running":
                call.reason = "still running with the app's lifespan" if lifespan_runs else LEAKED
                call.expected = call.expected or lifespan_runs
            elif call.status == "cancelled" and call.reason not in (LOOP_CLOSED, OUTLIVED_APP):
                call.expected = True
        self._refs.clear()


class _CodeFacts:
    """What the plugin needs to know of a code object, worked out once per test."""

    __slots__ = ("function", "method", "origins", "parameters", "plumbing", "runs_wrapped")

    def __init__(self, coro: CoroutineType[Any, Any, Any] | None, frame: FrameType) -> None:
        code = frame.f_code
        package = frame.f_globals.get("__name__", "").partition(".")[0]
        self.plumbing = package in _PLUMBING
        #: anyio >= 4.14 runs start_soon()'s coroutine inside a TaskHandle's own coroutine.
        self.runs_wrapped = package == "anyio" and code.co_name == "_run_coro"
        count = code.co_argcount + code.co_kwonlyargcount
        count += bin(code.co_flags & _ARGUMENT_FLAGS).count("1")
        self.parameters = code.co_varnames[:count]
        #: The ``async def`` function, for a coroutine's code (None for other frames), and
        #: whether it is a method, recorded bound to its object as ``obj.method`` would be.
        self.function: Any = None
        self.method = False
        #: ``file:line`` of each line of this code that created a task (see ``_origin``).
        self.origins: dict[int, str] = {}
        if coro is not None:
            self.function, self.method = _function_of(coro, code, frame)


class _TaskRef(weakref.ref["asyncio.Task[Any]"]):
    """A weak reference to a recorded task that carries what its callbacks need, so that
    they need no closure of their own per task, and that is its record's cancellation."""

    __slots__ = ("call", "counted", "fault", "loop", "reason", "task_id")
    call: TaskCall
    #: Whether the task is counted in the ledger (lifespan tasks are not).
    counted: bool
    #: The fault applied to its run, if any.
    fault: Fault | None
    loop: asyncio.AbstractEventLoop
    #: Why ``shutdown()`` cancelled it: None until :meth:`request` asked for it.
    reason: str | None
    #: ``id()`` of the task, its key among the tasks watched while it lives.
    task_id: int

    def request(self, reason: str) -> bool:
        """Have its loop cancel it soon; False when that loop has finished (nothing can)."""
        self.reason = reason
        if cancel_soon(EventLoop("asyncio", self.loop), self._cancel):
            return True
        self.reason = None
        return False

    def _cancel(self) -> None:
        task = self()  # held weakly, it may be gone
        if task is not None:
            task.cancel()


#: The app's coroutine that a task runs, its frame, and the facts of its code.
Work = tuple["CoroutineType[Any, Any, Any]", FrameType, _CodeFacts]


def _function_of(
    coro: CoroutineType[Any, Any, Any], code: CodeType, frame: FrameType
) -> tuple[Any, bool]:
    """The ``async def`` function that made ``coro``, found by name where it is defined, and
    whether it is a method (or classmethod) whose first argument it is bound to."""
    qualname = coro.__qualname__
    if "<locals>" not in qualname:
        owner: Any = None
        found: Any = frame.f_globals
        for part in qualname.split("."):
            owner = found
            found = found.get(part) if isinstance(found, dict) else getattr(found, part, None)
        attribute = (
            owner.__dict__.get(qualname.rpartition(".")[2]) if isinstance(owner, type) else None
        )
        method = isinstance(attribute, (FunctionType, classmethod))
        found = getattr(found, "__func__", found)  # a classmethod, looked up on its class
        while found is not None:
            if getattr(found, "__code__", None) is code:
                return found, method
            found = getattr(found, "__wrapped__", None)
    return CoroutineFunction(coro, code, frame.f_globals.get("__name__", "")), False


def _held(value: Any) -> Any:
    """``value`` as the record keeps it: asyncio's own objects (a future, an event, a queue)
    weakly, since holding what the task waits on would keep the task alive."""
    if type(value).__module__.lstrip("_").partition(".")[0] == "asyncio":
        try:
            return WeakArgument(value)
        except TypeError:  # no weak references to it
            pass
    return value


class WeakArgument:
    """An asyncio object among a task's arguments, held weakly; equal to that object."""

    __slots__ = ("_ref", "_type")

    def __init__(self, value: Any) -> None:
        self._ref = weakref.ref(value)
        self._type = type(value).__name__

    def __eq__(self, other: object) -> bool:
        value = self._ref()
        if isinstance(other, WeakArgument):
            return value is not None and value is other._ref()
        return value is not None and value is other

    def __hash__(self) -> int:
        return id(self._ref)

    def __repr__(self) -> str:
        value = self._ref()
        return f"<{self._type}, garbage-collected>" if value is None else repr(value)


class CoroutineFunction:
    """Stands for an ``async def`` function known only by its coroutine (a nested one).

    It equals the real function, so ``assert_scheduled(inner)`` and faults match it.
    """

    def __init__(self, coro: CoroutineType[Any, Any, Any], code: CodeType, module: str) -> None:
        self.__name__ = coro.__name__
        self.__qualname__ = coro.__qualname__
        self.__module__ = module
        self.__code__ = code

    @property
    def __signature__(self) -> inspect.Signature:
        """The parameters, read from the code (no defaults: its coroutine has every value)."""
        code, kind = self.__code__, inspect.Parameter
        names, positional, keyword = code.co_varnames, code.co_argcount, code.co_kwonlyargcount
        parameters = [
            kind(
                name,
                kind.POSITIONAL_ONLY if i < code.co_posonlyargcount else kind.POSITIONAL_OR_KEYWORD,
            )
            for i, name in enumerate(names[:positional])
        ]
        rest = positional + keyword  # co_varnames: positionals, keyword-only, *args, **kwargs
        if code.co_flags & inspect.CO_VARARGS:
            parameters.append(kind(names[rest], kind.VAR_POSITIONAL))
            rest += 1
        parameters += [
            kind(name, kind.KEYWORD_ONLY) for name in names[positional : positional + keyword]
        ]
        if code.co_flags & inspect.CO_VARKEYWORDS:
            parameters.append(kind(names[rest], kind.VAR_KEYWORD))
        return inspect.Signature(parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.__qualname__} is known here only by a coroutine it made")

    def __eq__(self, other: object) -> bool:
        return getattr(other, "__code__", None) is self.__code__

    def __hash__(self) -> int:
        return hash(self.__code__)

    def __repr__(self) -> str:
        return f"<async function {self.__qualname__}>"


#: Where a loop's main task is created (``asyncio.run``, ``run_until_complete``): it is awaited
#: until done by whoever runs the loop, never left to run on its own (a queue's async job).
_MAIN_TASK_CODES: frozenset[CodeType] = frozenset(
    {asyncio.BaseEventLoop.run_until_complete.__code__}
    | ({asyncio.Runner.run.__code__} if sys.version_info >= (3, 11) else set())
)


def _runs_a_loop(frame: FrameType | None) -> bool:
    """True when the task being created is a loop's main task (looked up to 3 frames up)."""
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code in _MAIN_TASK_CODES:
            return True
        frame = frame.f_back
    return False


def _cancel_reason(call: TaskCall) -> str:
    if not _loop_shutting_down():
        return "cancelled by the app"
    if call.lifespan is not None:
        return OUTLIVED_APP
    return LOOP_CLOSED


def _loop_shutting_down() -> bool:
    """True when asyncio is cancelling every task left because its loop is shutting down."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_cancel_all_tasks":
            return True
        frame = frame.f_back
    return False


async def _faulted(
    fault: Fault, coro: Coroutine[Any, Any, Any], work: Coroutine[Any, Any, Any], call: TaskCall
) -> Any:
    """Run ``coro`` under ``fault``; a fault that never runs it closes it (and ``work``)."""

    async def original(*_args: Any, **_kwargs: Any) -> Any:
        return await coro

    body, is_async = fault.body(original, True)
    try:
        result = body(*call.args, **call.kwargs)
        return await result if is_async else result  # a sync substitute runs on the loop
    finally:
        coro.close()
        work.close()
