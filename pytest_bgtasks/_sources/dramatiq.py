"""The Dramatiq source: messages sent with ``actor.send()`` or ``actor.send_with_options()``.

``send`` ends in ``Actor.send_with_options``, the one class-level patch. It builds the message
with Dramatiq's own ``message_with_options`` and encodes it with the global encoder, as every
broker's ``enqueue`` does first, so an argument the encoder refuses fails ``send()`` as without
the plugin; the message is not enqueued. A job runs the actor on the decoded arguments, as a
worker's ``process_message`` calls it, with ``CurrentMessage`` set when the broker has that
middleware. The other worker middleware is not run: a failure is recorded on the first
attempt, not retried (``Retries``), and no result reaches a result backend.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from dramatiq import Actor, Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import CurrentMessage

from pytest_bgtasks._core import Core
from pytest_bgtasks._jobs import dispatch_sync, passes_through
from pytest_bgtasks._record import JobInfo
from pytest_bgtasks._sources.patching import patched, unpatched


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Record every Dramatiq message sent in this process into ``core`` until the block ends."""
    (original,) = unpatched("Dramatiq messages", (Actor, "send_with_options"))

    def send_with_options(
        actor: Actor[Any, Any],
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        delay: Any = None,
        **options: Any,
    ) -> Any:
        sent = {**options} if delay is None else {"delay": delay, **options}
        job = JobInfo(
            actor.actor_name,
            queue=actor.queue_name,
            options=sent,
            aliases=(actor, actor.actor_name),
        )
        if core.queues == "passthrough":
            passes_through(
                core, core.schedule(actor.fn, tuple(args), dict(kwargs or {}), "dramatiq", job)
            )
            return original(actor, args=args, kwargs=kwargs, delay=delay, **options)
        message = actor.message_with_options(args=args, kwargs=kwargs, **options)
        job.runner = partial(_process, actor, message.encode())
        call = core.schedule(actor.fn, tuple(args), dict(kwargs or {}), "dramatiq", job)
        dispatch_sync(core, call)
        return message

    with patched((Actor, "send_with_options", send_with_options)):
        yield


def _process(actor: Actor[Any, Any], encoded: bytes, *_: Any, **__: Any) -> Any:
    """Run the encoded message as a worker would: decoded, the actor called with its arguments."""
    message = MessageProxy(Message.decode(encoded))
    current = [m for m in actor.broker.middleware if isinstance(m, CurrentMessage)]
    for middleware in current:
        middleware.before_process_message(actor.broker, message)  # type: ignore[no-untyped-call]
    try:
        return _call(actor, message.args, message.kwargs)
    finally:
        for middleware in current:
            middleware.after_process_message(actor.broker, message)  # type: ignore[no-untyped-call]


def _call(actor: Actor[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call the actor; an async one runs on a loop of its own when the worker's loop thread
    (the ``AsyncIO`` middleware's, started by a worker) is not there."""
    coroutine_function = getattr(actor.fn, "__wrapped__", None)
    if not inspect.iscoroutinefunction(coroutine_function) or _worker_loop_running():
        return actor(*args, **kwargs)
    with ThreadPoolExecutor(1, thread_name_prefix="bgtasks-dramatiq") as pool:
        return pool.submit(asyncio.run, coroutine_function(*args, **kwargs)).result()


def _worker_loop_running() -> bool:
    try:
        from dramatiq.asyncio import get_event_loop_thread
    except ImportError:  # pragma: no cover - Dramatiq without async actors
        return False
    return get_event_loop_thread() is not None
