"""The two sides of every comparison: the plugin recording, and the same code without it.

This is the only module that reaches into the plugin's internals, so when they move, only this
module follows them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from pytest_bgtasks._blocking import BlockingWatch
from pytest_bgtasks._core import Core
from pytest_bgtasks._lifetimes import ArgumentCheck
from pytest_bgtasks._options import DEFAULT_BLOCKING_LIMIT, Mode
from pytest_bgtasks._record import RequestInfo, TaskCall, current_request
from pytest_bgtasks._recorder import BackgroundTaskRecorder
from pytest_bgtasks._sources import installed

__all__ = [
    "RequestInfo",
    "Side",
    "baseline",
    "current_request",
    "deferred",
    "plugin",
    "plugin_without_lifetimes",
    "step_timer",
]

#: A side of a comparison: a fresh context manager per round.
Side = Callable[[], AbstractContextManager[object]]


def _core(mode: Mode, *, lifetimes: bool = True) -> Core:
    """A core as the fixture builds it by default: the argument lifetime check on."""
    return Core(mode, check=ArgumentCheck(lifetimes=True, roundtrip=None) if lifetimes else None)


def plugin() -> AbstractContextManager[object]:
    """The plugin side: every source of background work recording, in eager mode."""
    return installed(_core("eager"))


def plugin_without_lifetimes() -> AbstractContextManager[object]:
    """The plugin side with the argument lifetime check off (``lifetimes=False``), the baseline
    of that check's own cost."""
    return installed(_core("eager", lifetimes=False))


def baseline() -> AbstractContextManager[object]:
    """The baseline side: the same code with no recorder."""
    return nullcontext()


@contextmanager
def deferred() -> Iterator[BackgroundTaskRecorder]:
    """The plugin in deferred mode: tasks are held, not run; the recorder can discard them."""
    core = _core("deferred")
    recorder = BackgroundTaskRecorder(core)
    with installed(core):
        yield recorder


@contextmanager
def step_timer() -> Iterator[Callable[[Awaitable[Any]], Awaitable[Any]]]:
    """What the blocking check wraps around every async task, at the default limit (the
    watchdog on): a function that turns an awaitable into its timed steps."""
    watch = BlockingWatch(DEFAULT_BLOCKING_LIMIT)
    call = TaskCall(0, step_timer, (), {}, None, 0.0)
    try:
        yield lambda awaitable: watch.steps(awaitable, call)
    finally:
        watch.stop()
