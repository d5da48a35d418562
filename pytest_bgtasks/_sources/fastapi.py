"""The FastAPI source: which request values end before the background tasks run.

It schedules no work of its own; it tells the argument check (``_lifetimes``) what the installed
FastAPI closes first. Observed per release, with a task reading what its endpoint was given:

- before 0.106, and 0.118 to 0.120: nothing; dependencies with yield exit, and uploaded files
  close, after the tasks;
- 0.106 to 0.117: every dependency with yield exits, and every uploaded file is closed, before
  the tasks run (0.106 release notes: resources from dependencies with yield are no longer
  available to background tasks);
- 0.121 and later: dependencies declared ``Depends(..., scope="function")`` exit before the
  tasks; the others, and uploaded files, after.

FastAPI keeps no record of the values its dependencies produced, so the source wraps the
function that enters a dependency with yield (``_solve_generator``, ``solve_generator`` before
0.118) and notes each value it returns on the request being handled.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any, Literal

from pytest_bgtasks._callables import callable_name
from pytest_bgtasks._core import Core
from pytest_bgtasks._record import current_request

#: Which dependencies with yield exit before the tasks: all of them, or scope="function" ones.
Rule = Literal["every", "function"]

#: Values that have no life of their own to end, and whose identity other values share.
_TIMELESS = (type(None), bool, int, float, complex, str, bytes)


@functools.cache
def installed_version() -> tuple[int, ...]:
    """The installed FastAPI's version, as numbers (``(0, 115, 14)``)."""
    return tuple(int(part) for part in re.findall(r"\d+", metadata.version("fastapi"))[:3])


def rule(version: tuple[int, ...]) -> Rule | None:
    """Which dependencies with yield FastAPI ``version`` exits before the tasks, if any.

    On the "every" releases uploaded files are closed before the tasks too.
    """
    if (0, 106) <= version < (0, 118):
        return "every"
    if version >= (0, 121):
        return "function"
    return None


@contextmanager
def install(core: Core) -> Iterator[None]:
    """Note the values that end before the tasks on each request, while the block runs."""
    check = core.check
    version = installed_version()
    found = rule(version)
    if check is None or not check.lifetimes or found is None:
        yield
        return
    label = "FastAPI " + ".".join(map(str, version))
    if found == "every":
        check.uploads_closed_by = label
    from fastapi.dependencies import utils

    name = "_solve_generator" if hasattr(utils, "_solve_generator") else "solve_generator"
    original = getattr(utils, name, None)
    if original is None:  # a FastAPI laid out otherwise: dependency values go unattributed
        yield
        return
    setattr(utils, name, _noting(original, found, label))
    try:
        yield
    finally:
        setattr(utils, name, original)


def _noting(original: Callable[..., Any], found: Rule, label: str) -> Callable[..., Any]:
    """``original``, noting on the current request each value that ends before its tasks."""

    async def solve_generator(**kwargs: Any) -> Any:
        value = await original(**kwargs)
        request = current_request.get()
        if request is None or isinstance(value, _TIMELESS):
            return value
        dependant = kwargs.get("dependant")  # FastAPI >= 0.118; before, only ``call``
        if found == "every":
            call = kwargs.get("call") if dependant is None else dependant.call
            why = (
                f"the dependency {callable_name(call)}, whose exit code {label} runs before the"
                " tasks (as it does for every dependency with yield on FastAPI 0.106 to 0.117)"
            )
        elif getattr(dependant, "scope", None) == "function":
            why = (
                f"the dependency {callable_name(dependant.call)}, declared with"  # type: ignore[union-attr]
                f' Depends(..., scope="function"), whose exit code {label} runs before the tasks'
            )
        else:
            return value
        if request.ends_first is None:
            request.ends_first = {}
        request.ends_first[id(value)] = (value, why)
        return value

    return solve_generator
