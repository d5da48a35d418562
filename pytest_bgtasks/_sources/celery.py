"""The Celery source: jobs the app sends to Celery, recorded instead of reaching the broker.

Patch points, both at class level: ``Task.apply_async``, where ``task.delay()``,
``task.apply_async()`` and a signature's ``.delay()``/``.apply_async()`` all end; and
``Celery.send_task``, where jobs named by string go. ``Task.apply_async`` itself sends through
``send_task``: that send is let through when the job passes through, and never recorded twice.

A job's arguments are encoded with its serializer at enqueue, as Celery encodes the message (an
argument it cannot encode raises ``EncodeError`` into the app there, as Celery does); the job
runs from the decoded copy through ``Task.apply``, Celery's own local run (retries, ``bind=True``,
``link`` callbacks), as a worker would run the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import Celery, states
from celery.app.task import Task
from celery.exceptions import NotRegistered
from celery.result import AsyncResult, EagerResult
from kombu.serialization import dumps, loads
from kombu.utils.uuid import uuid

from pytest_bgtasks._core import Core
from pytest_bgtasks._jobs import dispatch_sync, passes_through
from pytest_bgtasks._record import JobInfo, TaskCall
from pytest_bgtasks._sources.patching import patched, unpatched

#: The task whose own send (``Task.apply_async`` into ``send_task``) is being let through.
_letting_through: ContextVar[Task | None] = ContextVar("bgtasks_celery_sending", default=None)


class UnregisteredTask(NotRegistered):  # type: ignore[misc]
    """A job sent by name (``app.send_task``) to a task this process does not have."""

    def __str__(self) -> str:
        name = self.args[0]
        return (
            f"no task named {name!r} is registered in this process, so the test cannot run it"
            " as a worker would: import the module that defines it, hold it with deferred"
            f" mode, or stand in for it with bgtasks.replace({name!r}, substitute)"
        )


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record every job the process sends to Celery into ``core`` until the block ends."""
    apply_async, send_task = unpatched("Celery jobs", (Task, "apply_async"), (Celery, "send_task"))

    def apply_async_patch(
        task: Task,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        **options: Any,
    ) -> AsyncResult:
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        _check_arguments(task, args, kwargs)
        given = _given(options, task_id=task_id)

        def send() -> AsyncResult:
            letting = _letting_through.set(task)
            try:
                return apply_async(task, args, kwargs, task_id, **options)
            finally:
                _letting_through.reset(letting)

        return _enqueue(core, task._get_app(), task, task.name, args, kwargs, given, send)

    def send_task_patch(
        app: Celery, name: str, args: Any = None, kwargs: Any = None, **options: Any
    ) -> AsyncResult:
        task_type = options.get("task_type")
        if task_type is not None and task_type is _letting_through.get():
            return send_task(app, name, args, kwargs, **options)
        args, kwargs = tuple(args or ()), dict(kwargs or {})

        def send() -> AsyncResult:
            return send_task(app, name, args, kwargs, **options)

        return _enqueue(
            core, app, _registered(app, name), name, args, kwargs, _given(options), send
        )

    with patched((Task, "apply_async", apply_async_patch), (Celery, "send_task", send_task_patch)):
        yield


def _enqueue(
    core: Core,
    app: Celery,
    task: Task | None,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    given: dict[str, Any],
    send: Callable[[], AsyncResult],
) -> AsyncResult:
    """Record one job, then send it on (passthrough), run it now (eager) or hold it.

    ``given`` are the options the app gave; the task's own (its queue, priority, serializer)
    fill in the rest, as ``apply_async`` merges them.
    """
    options = given if task is None else {**_given(task._get_exec_options()), **given}
    task_id = given.get("task_id") or uuid()
    run = _WorkerRun(task, name, task_id, _encode(app, task, args, kwargs, options), options)
    job = JobInfo(
        name,
        queue=_queue(app, task, name, args, kwargs, options),
        options=given,
        aliases=(name,) if task is None else (task, name),
        runner=run,
    )
    call = core.schedule(None if task is None else task.run, args, kwargs, "celery", job=job)
    if passes_through(core, call):
        return send()
    dispatch_sync(core, call)
    return _result(app, task, task_id, call, run, given.get("result_cls"))


def _given(options: dict[str, Any], **named: Any) -> dict[str, Any]:
    """The options the app gave (those set to None dismissed, as Celery's signatures do)."""
    return {key: value for key, value in {**named, **options}.items() if value is not None}


def _check_arguments(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise TypeError for arguments that don't fit the task, as ``apply_async`` does."""
    if task.typing:
        header = getattr(task, "__header__", None)
        if header is not None:
            header(*args, **kwargs)


def _registered(app: Celery, name: str) -> Task | None:
    """The task of this name in ``app``'s registry, as a worker of this process would find it."""
    registry = app.tasks if app.autofinalize or app.finalized else app._tasks
    task: Task | None = registry.get(name)
    return task


def _encode(
    app: Celery,
    task: Task | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: dict[str, Any],
) -> tuple[str, str, Any]:
    """The job's arguments as the message carries them: (content type, encoding, body)."""
    serializer = options.get("serializer") or (
        app.conf.task_serializer if task is None else task.serializer
    )
    dump_models = getattr(task, "_dump_pydantic_arguments", None)  # pydantic=True tasks
    if dump_models is not None and serializer != "pickle":
        args, kwargs = dump_models(args, kwargs)
    content_type, encoding, body = dumps((args, kwargs), serializer)  # type: ignore[no-untyped-call]
    return content_type, encoding, body


def _queue(
    app: Celery,
    task: Task | None,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: dict[str, Any],
) -> str | None:
    """The queue Celery's router sends the job to (task_routes, the task's queue, the default)."""
    route = app.amqp.router.route(dict(options), name, args, kwargs, task)
    queue = route.get("queue")  # a kombu Queue, or its name
    return None if queue is None else str(getattr(queue, "name", queue))


class _WorkerRun:
    """Runs one job as a worker would: the message decoded, then Celery's ``Task.apply``.

    Called with the job's recorded arguments (the record's runner), it runs from the message
    instead, as a worker does; Celery's ``EagerResult`` of the run is kept for the app.
    """

    def __init__(
        self,
        task: Task | None,
        name: str,
        task_id: str,
        message: tuple[str, str, Any],
        options: dict[str, Any],
    ) -> None:
        self._task = task
        self._name = name
        self._task_id = task_id
        self._message = message
        self._options = {
            key: value
            for key, value in options.items()
            if key not in ("task_id", "throw", "result_cls", "task_type")
        }
        #: Celery's result of the run, once it ran.
        self.result: EagerResult | None = None

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        if self._task is None:
            raise UnregisteredTask(self._name)
        content_type, encoding, body = self._message
        args, kwargs = loads(body, content_type, encoding, accept=[content_type])  # type: ignore[no-untyped-call]
        # throw=False: Celery's own retry handling runs (a raised Retry would end the run).
        result = self._task.apply(args, kwargs, task_id=self._task_id, throw=False, **self._options)
        self.result = result
        if result.state in states.PROPAGATE_STATES:
            outcome = result.result
            raise outcome if isinstance(outcome, BaseException) else Exception(outcome)
        return result.result


def _result(
    app: Celery,
    task: Task | None,
    task_id: str,
    call: TaskCall,
    run: _WorkerRun,
    result_cls: Any,
) -> AsyncResult:
    """What the enqueue returns: Celery's result of a job that ran (one of the job's outcome
    when a fault changed it), or a pending AsyncResult."""
    if run.result is not None and call.fault is None:
        return run.result
    if call.status == "succeeded":
        return EagerResult(task_id, call.result, states.SUCCESS)
    if call.status == "failed":
        return EagerResult(task_id, call.exception, states.FAILURE, traceback=call.traceback)
    if task is not None:
        return task.AsyncResult(task_id)
    return (result_cls or app.AsyncResult)(task_id)
