"""The arq source: jobs the app enqueues with ``ArqRedis.enqueue_job(name, ...)``.

One class-level patch on ``ArqRedis.enqueue_job``, before any Redis command, so an app whose
pool points at no server still works under the plugin. arq names jobs by string; the name is
resolved the way arq's worker resolves it: through a module-level ``WorkerSettings`` class
(``arq app.WorkerSettings``) of a module the process has imported, its own ``functions``. A
job runs as ``Worker.run_job`` runs it: its arguments round-tripped through the pool's
serializer, the function called with a ``ctx`` dict (``redis``, ``job_id``, ``job_try``,
``enqueue_time``, ``score`` and the settings' own ``ctx``), under the job timeout, retried on
``arq.Retry`` up to ``max_tries`` (at once: a test does not wait out the retry's ``defer``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import anyio
from arq.connections import ArqRedis
from arq.jobs import Job, deserialize_job_raw, serialize_job
from arq.utils import ms_to_datetime, timestamp_ms, to_ms, to_seconds, to_unix_ms
from arq.worker import Function, JobExecutionFailed, Retry, func

from pytest_bgtasks._core import Core
from pytest_bgtasks._jobs import dispatch_async, passes_through
from pytest_bgtasks._record import JobInfo
from pytest_bgtasks._sources.patching import patched, unpatched

#: ``Worker``'s defaults, where the settings class gives none.
_MAX_TRIES = 5
_JOB_TIMEOUT = 300.0
#: The options of ``enqueue_job``; the app's other keyword arguments are the job's.
OPTIONS = ("_job_id", "_queue_name", "_defer_until", "_defer_by", "_expires", "_job_try")


class FunctionNotFound(JobExecutionFailed):
    """A job whose name no ``WorkerSettings.functions`` of this process registers."""

    def __str__(self) -> str:
        name = self.args[0]
        return (
            f"function {name!r} not found: no WorkerSettings class in an imported module lists"
            f" it in its functions, so the test cannot run it as arq's worker would. Import the"
            f" module that defines WorkerSettings (in conftest.py), or stand in for the job"
            f" with bgtasks.replace({name!r}, substitute)"
        )


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record every job enqueued through ``ArqRedis.enqueue_job`` into ``core``."""
    (original,) = unpatched("arq jobs", (ArqRedis, "enqueue_job"))
    registry = Registry()
    job_ids: set[str] = set()

    async def enqueue_job(redis: ArqRedis, function: str, *args: Any, **kwargs: Any) -> Job | None:
        given = {key: kwargs.pop(key) for key in OPTIONS if kwargs.get(key) is not None}
        if "_defer_until" in given and "_defer_by" in given:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        job_id = given.get("_job_id") or uuid4().hex
        queue = given.get("_queue_name") or redis.default_queue_name
        enqueued_ms = timestamp_ms()
        # Serialized here, as enqueue_job does: what arq cannot send fails in the app.
        data = serialize_job(
            function,
            args,
            kwargs,
            given.get("_job_try"),
            enqueued_ms,
            serializer=redis.job_serializer,
        )
        if core.queues != "passthrough" and job_id in job_ids:
            return None  # arq keeps one job per id: the second enqueue is refused
        job_ids.add(job_id)
        target = registry.find(function)
        job = JobInfo(
            function,
            queue=queue,
            options=given,
            aliases=(function,),
            runner=_runner(redis, function, target, data, job_id, _score(given, enqueued_ms)),
            signature=None if target is None else _without_ctx(target.function.coroutine),
        )
        coroutine = None if target is None else target.function.coroutine
        call = core.schedule(coroutine, args, kwargs, "arq", job=job)
        if passes_through(core, call):
            result: Job | None = await original(redis, function, *args, **given, **kwargs)
            return result
        await dispatch_async(core, call)
        return Job(job_id, redis=redis, _queue_name=queue, _deserializer=redis.job_deserializer)

    with patched((ArqRedis, "enqueue_job", enqueue_job)):
        yield


class Target:
    """A job function as a worker of the settings class that lists it would run it."""

    __slots__ = ("ctx", "function", "job_timeout", "max_tries", "retry_jobs")

    def __init__(self, function: Function, settings: dict[str, Any]) -> None:
        self.function = function
        self.ctx: dict[Any, Any] = dict(settings.get("ctx") or {})
        self.max_tries: int = (
            function.max_tries
            if function.max_tries is not None
            else settings.get("max_tries", _MAX_TRIES)
        )
        self.job_timeout: float | None = (
            function.timeout_s
            if function.timeout_s is not None
            else to_seconds(settings.get("job_timeout", _JOB_TIMEOUT))
        )
        self.retry_jobs: bool = settings.get("retry_jobs", True)


class Registry:
    """The job functions of every ``WorkerSettings`` class in an imported module, by name.

    Found once per test, and again only when modules were imported since and a name is missing.
    Like arq's ``get_kwargs``, only what a settings class itself defines counts.
    """

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}
        self._modules_seen = -1

    def find(self, name: str) -> Target | None:
        if name not in self._targets and len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            self._targets = self._scan()
        return self._targets.get(name)

    def _scan(self) -> dict[str, Target]:
        targets: dict[str, Target] = {}
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            value = namespace.get("WorkerSettings") if isinstance(namespace, dict) else None
            if not isinstance(value, type):
                continue
            settings = dict(vars(value))
            for entry in settings.get("functions") or ():
                try:
                    function = func(entry)
                except Exception:  # not a job function: arq's worker would refuse it
                    continue
                targets.setdefault(function.name, Target(function, settings))
        return targets


def _without_ctx(coroutine: Callable[..., Any]) -> inspect.Signature | None:
    """The parameters the app passes: the function's, without the worker's ``ctx``."""
    try:
        signature = inspect.signature(coroutine)
    except (TypeError, ValueError):
        return None
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _score(given: dict[str, Any], enqueued_ms: int) -> int:
    """When the job is due, in ms since the epoch, as ``enqueue_job`` scores it."""
    defer_until: datetime | None = given.get("_defer_until")
    if defer_until is not None:
        return to_unix_ms(defer_until)
    defer_by: float | timedelta | None = given.get("_defer_by")
    return enqueued_ms + (to_ms(defer_by) or 0)


def _runner(
    redis: ArqRedis,
    name: str,
    target: Target | None,
    data: bytes,
    job_id: str,
    score: int,
) -> Callable[..., Any]:
    """What runs the job as ``Worker.run_job`` would, from its serialized form."""

    async def run_like_a_worker(*_args: Any, **_kwargs: Any) -> Any:
        if target is None:
            raise FunctionNotFound(name)
        _, args, kwargs, enqueued_try, enqueued_ms = deserialize_job_raw(
            data, deserializer=redis.job_deserializer
        )
        job_try = max(enqueued_try or 1, 1)
        while True:
            ctx = {
                **target.ctx,
                "redis": redis,
                "job_id": job_id,
                "job_try": job_try,
                "enqueue_time": ms_to_datetime(enqueued_ms),
                "score": score,
            }
            try:
                with anyio.fail_after(target.job_timeout):
                    return await target.function.coroutine(ctx, *args, **kwargs)
            except Retry as retry:
                if not target.retry_jobs:
                    raise
                job_try += 1
                if job_try > target.max_tries:
                    raise JobExecutionFailed(f"max {target.max_tries} retries exceeded") from retry

    return run_like_a_worker
