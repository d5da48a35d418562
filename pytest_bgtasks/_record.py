"""The record of one background task: what was scheduled, by which request, and what it did."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args, overload

from pytest_bgtasks._callables import (
    Aliases,
    Binding,
    bind,
    callable_name,
    flatten_partial,
    full_name,
    unwrap_partial,
)

if TYPE_CHECKING:
    from pytest_bgtasks._loops import EventLoop
    from pytest_bgtasks._shutdown import Cancels

#: A task's status; the one list of them, in the order reports count them (the README's table
#: of statuses is checked against it).
Status = Literal[
    "succeeded",
    "failed",
    "skipped",
    "dropped",
    "cancelled",
    "discarded",
    "running",
    "held",
    "scheduled",
]
STATUSES: tuple[Status, ...] = get_args(Status)
#: Statuses after which a task will never run (again).
FINAL_STATUSES: frozenset[Status] = frozenset(STATUSES) - {"running", "held", "scheduled"}
#: Statuses of work that has not started: scheduled, or held for the test in deferred mode.
NOT_STARTED: frozenset[Status] = frozenset({"held", "scheduled"})


class RequestInfo:
    """The HTTP or WebSocket request during which a task was scheduled."""

    __slots__ = (
        "method",
        "path",
        "type",
        "status_code",
        "cancelled",
        "dispatched_at",
        "calls",
        "ends_first",
        "_scope",
        "_route",
    )

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self._scope: Mapping[str, Any] | None = scope
        self._route: Any = None
        self.method: str = scope.get("method", "WEBSOCKET")
        self.path: str = scope.get("path", "")
        #: The ASGI scope type: "http" or "websocket".
        self.type: str = scope["type"]
        #: Status code of the response, once it started.
        self.status_code: int | None = None
        #: True when the request was cancelled (client gone, stream left unread).
        self.cancelled = False
        #: When the response first handed a background task over to run.
        self.dispatched_at: float | None = None
        #: The tasks scheduled during this request.
        self.calls: list[TaskCall] = []
        #: Values whose life ends before this request's tasks run, by ``id``: (the value, held
        #: so its id stays its own, and what ends it). Filled by a framework's source; dropped
        #: when the request ends.
        self.ends_first: dict[int, tuple[Any, str]] | None = None

    @property
    def route_object(self) -> Any:
        """The matched route object (FastAPI's ``APIRoute``), if any."""
        return self._route if self._scope is None else self._scope.get("route")

    @property
    def route(self) -> str | None:
        """The path template of the matched route (``/items/{item_id}``), if known."""
        return getattr(self.route_object, "path", None)

    @property
    def is_websocket(self) -> bool:
        return self.type == "websocket"

    def release_scope(self) -> None:
        """Keep only what the record needs once the request ended: the scope holds a lot."""
        self._route = self.route_object
        self._scope = None
        self.ends_first = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def __repr__(self) -> str:
        return f"<RequestInfo {self}>"


class Lifespan:
    """The app's lifespan (start-up to shut-down), for work created during it."""

    __slots__ = ("ended",)

    def __init__(self) -> None:
        #: True once the app has shut down.
        self.ended = False


#: The request being handled by the outermost Starlette app in this context.
current_request: ContextVar[RequestInfo | None] = ContextVar("bgtasks_request", default=None)
#: The lifespan of the outermost Starlette app, while it runs in this context.
current_lifespan: ContextVar[Lifespan | None] = ContextVar("bgtasks_lifespan", default=None)
#: The recorded task running in this context, so work it creates is attributed to it.
current_call: ContextVar[TaskCall | None] = ContextVar("bgtasks_call", default=None)


class JobInfo:
    """What a durable queue (Celery, arq, taskiq, Dramatiq, RQ) adds to a job's record."""

    __slots__ = ("aliases", "name", "options", "queue", "runner", "signature")

    def __init__(
        self,
        name: str,
        *,
        queue: str | None = None,
        options: dict[str, Any] | None = None,
        aliases: tuple[Any, ...] = (),
        runner: Callable[..., Any] | None = None,
        signature: inspect.Signature | None = None,
    ) -> None:
        #: The queue's name for the task (``app.tasks.send_welcome``, arq's function name).
        self.name = name
        self.queue = queue
        self.options = options or {}
        #: More targets the job answers to: the task object, its names.
        self.aliases = aliases
        #: What runs the job the way the queue's worker would, called with the job's
        #: arguments; None: the record's function itself.
        self.runner = runner
        #: The parameters the app passes, where they are not the function's own (arq's
        #: ``ctx``, taskiq's dependencies left out); None: the function's signature.
        self.signature = signature


_T = TypeVar("_T")


class _Details:
    """The fields of a record that most records never set, in one object made on demand: a
    record stays small (memory kept per task is a target of the benchmarks)."""

    __slots__ = (
        "lifespan",
        "result",
        "exception",
        "reason",
        "fault",
        "loop",
        "job",
        "blocked_at",
        "_arguments",
        "_binding",
        "_aliases",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, None)


class _Detail(Generic[_T]):
    """A field of :class:`TaskCall` kept in its ``_details``: None until set to something."""

    __slots__ = ("_name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, call: None, owner: type) -> _Detail[_T]: ...
    @overload
    def __get__(self, call: TaskCall, owner: type) -> _T | None: ...
    def __get__(self, call: TaskCall | None, owner: type) -> _Detail[_T] | _T | None:
        if call is None:
            return self
        details = call._details
        return None if details is None else getattr(details, self._name)

    def __set__(self, call: TaskCall, value: _T | None) -> None:
        details = call._details
        if details is None:
            if value is None:
                return
            details = call._details = _Details()
        setattr(details, self._name, value)


class TaskCall:
    """One piece of background work and its outcome: a ``BackgroundTask`` (kind "background")
    or an asyncio task the app created (kind "asyncio").

    Times are ``time.monotonic()`` readings; ``duration`` is in seconds.
    """

    __slots__ = (
        "kind",
        "origin",
        "index",
        "func",
        "args",
        "_kwargs",
        "request",
        "status",
        "expected",
        "scheduled_at",
        "started_at",
        "finished_at",
        "batch",
        "blocked_for",
        "cancellation",
        "_details",
    )

    #: The app lifespan it was created during, if any (requests excluded).
    lifespan: _Detail[Lifespan] = _Detail()
    #: What the task returned (None until it succeeded).
    result: _Detail[Any] = _Detail()
    exception: _Detail[BaseException] = _Detail()
    #: Why a task was dropped or skipped, in words.
    reason: _Detail[str] = _Detail()
    #: Description of the injected fault applied to this run, if any.
    fault: _Detail[str] = _Detail()
    #: The event loop of the app that held it in deferred mode (replay goes back to it).
    loop: _Detail[EventLoop] = _Detail()
    #: What a durable queue adds, for a job enqueued on one (None for other work).
    job: _Detail[JobInfo] = _Detail()
    #: ``file:line`` of the app's code seen holding the loop past the blocking limit.
    blocked_at: _Detail[str] = _Detail()
    _arguments: _Detail[dict[str, Any]] = _Detail()
    _binding: _Detail[Binding] = _Detail()
    _aliases: _Detail[Aliases] = _Detail()

    def __init__(
        self,
        index: int,
        func: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        request: RequestInfo | None,
        scheduled_at: float,
        kind: str = "background",
    ) -> None:
        #: Which source of work it came from: "background" or "asyncio".
        self.kind = kind
        #: Where the app created it (``file:line``), where the source knows.
        self.origin: str | None = None
        self.index = index
        #: What runs: the task function; for a queue's job, None when this process lacks it.
        self.func = func
        self.args = args
        self._kwargs = kwargs or None  # most tasks have none: keep no empty dict per record
        #: The request that scheduled it; None outside a request.
        self.request = request
        self.status: Status = "scheduled"
        #: True when the test said it expected this failure or drop.
        self.expected = False
        self.scheduled_at = scheduled_at
        self.started_at: float | None = None
        self.finished_at: float | None = None
        #: The tasks of the same ``BackgroundTasks``, in order (a failure skips the rest).
        self.batch: list[TaskCall] | None = None
        #: An async task's longest stretch, in seconds, holding its event loop without
        #: yielding; None for a sync task (it runs in a worker thread) or one not run yet.
        self.blocked_for: float | None = None
        #: What cancels it from any thread while it runs on an event loop (``shutdown()``
        #: uses it); None for work no loop runs (a sync task, in its worker thread).
        self.cancellation: Cancels | None = None
        #: The fields most records never set (see ``_Detail``), made when one is.
        self._details: _Details | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments it was scheduled with."""
        kwargs = self._kwargs
        return {} if kwargs is None else kwargs

    @property
    def name(self) -> str:
        """The short qualified name: ``Mailer.send``, ``inner`` for ``outer.<locals>.inner``;
        for a queue's job, the queue's name for its task."""
        return callable_name(self.func) if self.job is None else self.job.name

    @property
    def queue(self) -> str | None:
        """The queue a job was enqueued on (None for other work)."""
        return None if self.job is None else self.job.queue

    @property
    def options(self) -> dict[str, Any]:
        """The enqueue options the app gave a job: countdown, eta, priority, job id..."""
        return {} if self.job is None else self.job.options

    @property
    def full_name(self) -> str:
        """``module.qualname`` in full: ``app.tasks.outer.<locals>.inner``; for a job this
        process has no function for, the queue's name for it."""
        if self.func is None and self.job is not None:
            return self.job.name
        return full_name(self.func)

    @property
    def arguments(self) -> dict[str, Any]:
        """Arguments bound to the function's parameter names, defaults applied.

        A ``functools.partial``'s baked-in arguments are included; a bound method's ``self``
        is not. Extra keyword arguments collected by ``**kwargs`` are merged in by name. When
        the function has no signature or the arguments don't fit it, positional arguments are
        named by index (``"0"``, ``"1"``) beside the keyword arguments.
        """
        if self._arguments is None:
            _, args, kwargs = flatten_partial(self.func, self.args, self.kwargs)
            self._arguments = bind(self.binding.signature, args, kwargs, partial=False)
        return self._arguments

    @property
    def binding(self) -> Binding:
        """The signature the arguments bind to, looking through partials."""
        if self._binding is None:
            signature = None if self.job is None else self.job.signature
            self._binding = Binding(unwrap_partial(self.func), signature)
        return self._binding

    @property
    def aliases(self) -> Aliases:
        """The objects and names this task answers to (see ``_matching.refers_to``)."""
        if self._aliases is None:
            self._aliases = Aliases(self.func, () if self.job is None else self.job.aliases)
        return self._aliases

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def traceback(self) -> str | None:
        """The failure's traceback as text, or None."""
        if self.exception is None:
            return None
        return "".join(traceback.format_exception(self.exception))

    @property
    def held(self) -> bool:
        """True while deferred mode holds this task for the test to run (status "held")."""
        return self.status == "held"

    def hold(self, loop: EventLoop | None) -> None:
        """Mark it held, with the event loop to replay it on (None: no loop held it)."""
        self.loop = loop
        self.status = "held"

    @property
    def is_async(self) -> bool:
        from starlette._utils import is_async_callable

        return bool(is_async_callable(self.func))

    def __repr__(self) -> str:
        return f"<TaskCall #{self.index} {self.name} {self.status}>"
