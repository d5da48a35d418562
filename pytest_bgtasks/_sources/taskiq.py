"""The taskiq source: jobs sent with ``task.kiq()`` or ``task.kicker()...kiq()``.

Both end in ``AsyncKicker.kiq``, the one class-level patch. It runs taskiq's own ``kiq`` (the
task's labels, the ``pre_send``/``post_send`` middlewares, the broker's formatter and
serializer) on a copy of the kicker whose broker keeps the message instead of kicking it, so
the bytes held are those a worker would receive, and an argument the serializer refuses fails
``kiq()`` as it does without the plugin. A job runs the way ``InMemoryBroker`` runs one inline:
the message goes to a taskiq ``Receiver``, which decodes it, casts the parameters, resolves
``TaskiqDepends``, runs the execution middlewares and stores the result in the broker's result
backend, so ``await handle.wait_result()`` works where that backend is in memory.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, get_origin

from taskiq import AsyncBroker
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_dependencies.dependency import Dependency

from pytest_bgtasks._core import Core
from pytest_bgtasks._jobs import dispatch_async, passes_through
from pytest_bgtasks._record import JobInfo
from pytest_bgtasks._sources.patching import patched, unpatched

_SUFFIX = "__taskiq_original"  # taskiq renames the function it decorates so
#: Where the receiver hands the result of the run it made, for the runner that asked.
_outcome: ContextVar[list[Any] | None] = ContextVar("bgtasks_taskiq_outcome", default=None)


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record every taskiq job sent in this process into ``core`` until the block ends."""
    (original,) = unpatched("taskiq jobs", (AsyncKicker, "kiq"))
    receivers = _Receivers()

    async def kiq(kicker: AsyncKicker[Any, Any], *args: Any, **kwargs: Any) -> Any:
        if core.queues == "passthrough":
            passes_through(core, core.schedule(*_record(kicker, args, kwargs, None)))
            return await original(kicker, *args, **kwargs)
        caught = _CaughtBroker(kicker.broker)
        twin = copy.copy(kicker)
        twin.broker = caught  # type: ignore[assignment]
        handle = await original(twin, *args, **kwargs)
        message = caught.message  # the serialized message, as the broker's kick got it

        async def run(*_: Any, **__: Any) -> Any:
            return await receivers.run(kicker.broker, kicker.task_name, message)

        call = core.schedule(*_record(kicker, args, kwargs, run))
        await dispatch_async(core, call)
        return handle

    with patched((AsyncKicker, "kiq", kiq)):
        yield


def _record(
    kicker: AsyncKicker[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], runner: Any
) -> tuple[Any, tuple[Any, ...], dict[str, Any], str, JobInfo]:
    """``Core.schedule``'s arguments for a job: the function where the broker knows the task."""
    name = kicker.task_name
    task = kicker.broker.find_task(name)
    func: Any = None if task is None else task.original_func
    aliases: tuple[Any, ...] = (name,)
    if task is not None:
        short = func.__name__.removesuffix(_SUFFIX)
        aliases = (task, name, short, f"{func.__module__}.{short}")
    options = dict(kicker.labels)
    if kicker.custom_task_id is not None:
        options["task_id"] = kicker.custom_task_id
    signature = None if task is None else _sent_parameters(func)
    job = JobInfo(name, options=options, aliases=aliases, runner=runner, signature=signature)
    return func, args, kwargs, "taskiq", job


def _sent_parameters(func: Any) -> inspect.Signature | None:
    """The function's signature without the parameters taskiq's dependencies fill in."""
    try:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # no signature, or annotations that do not resolve here
        return None
    return signature.replace(
        parameters=[
            parameter
            for name, parameter in signature.parameters.items()
            if not _is_dependency(parameter.default, hints.get(name))
        ]
    )


def _is_dependency(default: Any, hint: Any) -> bool:
    metadata = getattr(hint, "__metadata__", ()) if get_origin(hint) is Annotated else ()
    return any(isinstance(value, Dependency) for value in (default, *metadata))


class _CaughtBroker:
    """A broker's stand-in for one ``kiq()``: ``kick`` keeps the message, the rest is the
    broker's own (formatter, middlewares, result backend)."""

    def __init__(self, broker: AsyncBroker) -> None:
        self._broker = broker
        self.message: Any = None

    async def kick(self, message: Any) -> None:
        self.message = message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


class _Receiver(Receiver):
    """taskiq's receiver, telling the runner how the task it ran ended."""

    async def run_task(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().run_task(*args, **kwargs)
        outcome = _outcome.get()
        if outcome is not None:
            outcome.append(result)
        return result


class _Receivers:
    """One receiver per broker, made on the first job run through it, as a worker makes one."""

    def __init__(self) -> None:
        self._by_broker: dict[int, tuple[AsyncBroker, _Receiver]] = {}

    def receiver(self, broker: AsyncBroker) -> _Receiver:
        known = self._by_broker.get(id(broker))
        if known is None:
            own = getattr(broker, "receiver", None)  # InMemoryBroker's: run as it would
            settings: dict[str, Any] = {}
            if isinstance(own, Receiver):
                settings = {
                    "executor": own.executor,
                    "validate_params": own.validate_params,
                    "propagate_exceptions": own.propagate_exceptions,
                }
            known = self._by_broker[id(broker)] = (
                broker,
                _Receiver(broker, max_async_tasks=1, **settings),
            )
        return known[1]

    async def run(self, broker: AsyncBroker, name: str, message: Any) -> Any:
        """Run the job in ``message`` through the broker's receiver; raise what it raised."""
        outcome: list[Any] = []
        reset = _outcome.set(outcome)
        try:
            await self.receiver(broker).callback(message.message)
        finally:
            _outcome.reset(reset)
        if not outcome:
            raise LookupError(
                f"taskiq did not run task {name!r}: the broker has no task of that name (a"
                " worker would log that it is not found, and drop the message); import the"
                " module that defines it"
            )
        result = outcome[0]
        if result.is_err and not isinstance(result.error, NoResultError):
            raise result.error
        return result.return_value
