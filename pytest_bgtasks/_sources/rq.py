"""The RQ source: jobs the app enqueues on an ``rq.Queue``, recorded before any Redis command.

``enqueue()``, ``enqueue_call()``, ``enqueue_at()`` and ``enqueue_in()`` all build the job in
``Queue.create_job`` (every option the app gave is an argument there), then hand it to Redis
in ``Queue.enqueue_job`` (run now) or ``Queue.schedule_job`` (run at a time). Those three are
patched at class level: the options are read in the first, the job is taken in the other two,
so an app whose ``Redis`` connection points at no server works under the plugin (a connection
object is still needed: ``Queue`` requires one, and redis-py connects only on a command).

A job runs as RQ runs it in process (``Queue(is_async=False)``, a worker's ``job.perform()``):
a copy of the job rebuilt from its serialized data, the function imported by its name, async
functions on a loop of their own, ``get_current_job()`` answering. RQ's worker-side machinery
(retries, timeouts, callbacks, dependencies) stays with the worker.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rq.job import Job, JobStatus
from rq.queue import Queue

from pytest_bgtasks._core import Core
from pytest_bgtasks._jobs import dispatch_sync, passes_through
from pytest_bgtasks._record import JobInfo
from pytest_bgtasks._replay import in_event_loop
from pytest_bgtasks._sources.patching import patched, unpatched

#: ``create_job``'s parameters that are the job itself, not options.
_NOT_OPTIONS = frozenset({"self", "func", "args", "kwargs", "status"})


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record every job enqueued on an RQ queue into ``core`` until the block ends."""
    create_job, enqueue_job, schedule_job = unpatched(
        "RQ jobs", (Queue, "create_job"), (Queue, "enqueue_job"), (Queue, "schedule_job")
    )
    created = _Created(create_job)

    def create_job_patch(queue: Queue, *args: Any, **kwargs: Any) -> Job:
        job: Job = create_job(queue, *args, **kwargs)
        created.remember(job, queue, args, kwargs)
        return job

    def enqueue_job_patch(
        queue: Queue, job: Job, pipeline: Any = None, at_front: bool = False, **more: Any
    ) -> Job:
        def send() -> Job:
            sent: Job = enqueue_job(queue, job, pipeline=pipeline, at_front=at_front, **more)
            return sent

        extra = {"at_front": at_front, **more}
        return _enqueue(core, queue, job, created.given(job, extra), JobStatus.QUEUED, send)

    def schedule_job_patch(
        queue: Queue, job: Job, datetime: datetime, pipeline: Any = None, **more: Any
    ) -> Job:
        def send() -> Job:
            sent: Job = schedule_job(queue, job, datetime, pipeline=pipeline, **more)
            return sent

        extra = {"at": datetime, **more}
        return _enqueue(core, queue, job, created.given(job, extra), JobStatus.SCHEDULED, send)

    with patched(
        (Queue, "create_job", create_job_patch),
        (Queue, "enqueue_job", enqueue_job_patch),
        (Queue, "schedule_job", schedule_job_patch),
    ):
        yield


class _Created:
    """What the app gave ``create_job`` for each job, until the job is enqueued."""

    def __init__(self, create_job: Callable[..., Job]) -> None:
        self._signature = inspect.signature(create_job)
        self._given: weakref.WeakKeyDictionary[Job, tuple[Any, dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def remember(
        self, job: Job, queue: Queue, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        bound = self._signature.bind(queue, *args, **kwargs)
        parameters = self._signature.parameters
        options = {
            name: value
            for name, value in bound.arguments.items()
            if name not in _NOT_OPTIONS and value not in (None, parameters[name].default)
        }
        self._given[job] = (bound.arguments.get("func"), options)

    def given(self, job: Job, extra: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The function the app named (None for a job it built itself) and its options."""
        func, options = self._given.pop(job, (None, {}))
        return func, {**options, **{key: value for key, value in extra.items() if value}}


def _enqueue(
    core: Core,
    queue: Queue,
    job: Job,
    given: tuple[Any, dict[str, Any]],
    status: JobStatus,
    send: Callable[[], Job],
) -> Job:
    """Record one job, then send it on (passthrough), run it now (eager) or hold it."""
    named, options = given
    data = job.data  # serialized here, as saving it would: what RQ cannot send fails here
    func = named if callable(named) else _importable(job)
    name = job.func_name or ""
    info = JobInfo(
        name,
        queue=queue.name,
        options=options,
        aliases=(name, name.rpartition(".")[2]),
        runner=_runner(queue, job, data),
    )
    call = core.schedule(func, tuple(job.args), dict(job.kwargs), "rq", job=info)
    if passes_through(core, call):
        return send()
    job.origin = queue.name
    job._status = status
    dispatch_sync(core, call)
    return job


def _importable(job: Job) -> Callable[..., Any] | None:
    """The job's function as a worker finds it (imported by name), or None."""
    try:
        func: Callable[..., Any] | None = job.func
    except Exception:  # not importable here: a worker elsewhere may have it
        return None
    return func


def _runner(queue: Queue, job: Job, data: bytes) -> Callable[..., Any]:
    """What runs the job as RQ does in process: ``perform()`` on a copy rebuilt from ``data``."""
    serializer = queue.serializer
    meta = serializer.dumps(job.meta)

    def run_like_a_worker(*_args: Any, **_kwargs: Any) -> Any:
        connection: Any = _NoPersist(queue.connection)
        copy = queue.job_class(job.id, connection=connection, serializer=serializer)
        copy.data = data
        copy.origin = queue.name
        copy.description = job.description
        copy.meta = serializer.loads(meta)
        if not in_event_loop():
            return copy.perform()
        return _off_the_loop(copy.perform)  # an async job runs its own loop, as on a worker

    return run_like_a_worker


def _off_the_loop(perform: Callable[[], Any]) -> Any:
    """``perform()`` in a thread of its own, for a job enqueued on a running event loop."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["result"] = context.run(perform)
        except BaseException as exc:  # handed to the enqueuing thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="bgtasks-rq-job", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class _NoPersist:
    """The queue's connection, but for the one command ``perform()`` sends before RQ 2.6
    (``PERSIST`` of the job's key, which an intercepted job never had): answered here."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def persist(self, name: Any) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)
