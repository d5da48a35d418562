"""FastAPI dependencies with ``yield``: does a held task run after they closed, unlike production.

Which ones production closes before the tasks depends on the installed FastAPI (observed):

- < 0.106 and >= 0.118: after the tasks (a held task runs after them: worth a warning);
- 0.106 to 0.117: before the tasks, like deferred mode (nothing to warn about);
- >= 0.121: ``Depends(..., scope="function")`` before the tasks.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from types import FrameType
from typing import Any

from pytest_bgtasks._callables import callable_name
from pytest_bgtasks._record import RequestInfo, TaskCall
from pytest_bgtasks._warnings import BgTasksWarning

_PACKAGE = __name__.partition(".")[0]

#: FastAPI releases whose yield dependencies all close before the response's tasks run.
CLOSED_BEFORE_TASKS = ((0, 106), (0, 118))


@functools.cache
def fastapi_version() -> tuple[int, int]:
    """The installed FastAPI's (major, minor)."""
    major, minor, *_ = metadata.version("fastapi").split(".")
    return int(major), int(minor)


def production_closes_first(version: tuple[int, int], scope: str | None) -> bool:
    """True when FastAPI ``version`` closes a dependency of ``scope`` before the tasks run."""
    first, end = CLOSED_BEFORE_TASKS
    return first <= version < end or scope == "function"


def yield_dependencies(request: RequestInfo) -> list[str]:
    """The yield dependencies of ``request``'s route that production keeps open while its
    tasks run, named as the app resolves them (``app.dependency_overrides`` applied)."""
    route = request.route_object
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # not a FastAPI route
        return []
    version = fastapi_version()
    provider = getattr(route, "dependency_overrides_provider", None)
    overrides = getattr(provider, "dependency_overrides", None) or {}
    found: list[str] = []
    pending = list(getattr(dependant, "dependencies", ()))
    while pending:
        sub: Any = pending.pop()
        scope = getattr(sub, "scope", None)  # an override keeps the overridden one's scope
        call = getattr(sub, "call", None)
        if call in overrides:
            call = overrides[call]
            sub = _dependant(call, route)
        if call is None:
            continue
        if _is_generator(call) and not production_closes_first(version, scope):
            found.append(callable_name(call))  # a class-based one by its class
        pending.extend(getattr(sub, "dependencies", ()))
    return sorted(set(found))


def _dependant(call: Any, route: Any) -> Any:
    """FastAPI's dependency tree of an override, as it builds it for each request."""
    from fastapi.dependencies.utils import get_dependant

    return get_dependant(path=getattr(route, "path", ""), call=call)


def _is_generator(call: Any) -> bool:
    target = call if inspect.isfunction(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target)


def _first_frame_outside_the_plugin() -> int:
    """The ``stacklevel`` that points a warning raised in the caller at the user's code."""
    level = 1  # stacklevel=1 is the caller's own frame
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == _PACKAGE:
        level += 1
        frame = frame.f_back
    return level


class ClosedDependencyWarnings:
    """Warns, once per request, that a held task runs after yield dependencies that production
    keeps open for it.

    ``describe_request`` gives the request as it may be printed (its path may hold a secret).
    """

    def __init__(self, describe_request: Callable[[TaskCall], str | None]) -> None:
        self._describe_request = describe_request
        self._warned: set[int] = set()

    def warn_once(self, call: TaskCall) -> None:
        """Warn about ``call``'s request, pointing at the test's line that runs it.

        A queue's job is not the response's: a worker runs it after them in production too.
        """
        __tracebackhide__ = True  # under -W error the test's line is the place to show
        request = call.request
        if request is None or call.job is not None or id(request) in self._warned:
            return
        names = yield_dependencies(request)
        if names:
            shown = self._describe_request(call)
            major, minor = fastapi_version()
            warnings.warn(
                f"{shown} has dependencies with yield ({', '.join(names)}); they closed when"
                " the response ended, so its held tasks now run after them, unlike production"
                f" (FastAPI {major}.{minor} runs the tasks before they close). A task that uses"
                " their resources may fail here only: test it in eager mode.",
                BgTasksWarning,
                stacklevel=_first_frame_outside_the_plugin(),
            )
        self._warned.add(id(request))
