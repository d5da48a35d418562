"""FastAPI dependencies with ``yield``: they have closed by the time a held task runs."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from pytest_bgtasks._record import RequestInfo, TaskCall
from pytest_bgtasks._warnings import BgTasksWarning


def yield_dependencies(request: RequestInfo) -> list[str]:
    """Names of the generator dependencies of the FastAPI route that handled ``request``."""
    found: list[str] = []
    pending = list(getattr(getattr(request.route_object, "dependant", None), "dependencies", ()))
    while pending:
        dependant: Any = pending.pop()
        call = getattr(dependant, "call", None)
        closes_early = getattr(dependant, "scope", None) == "function"  # before tasks anyway
        if call is not None and not closes_early and _is_generator(call):
            found.append(getattr(call, "__qualname__", repr(call)))
        pending.extend(getattr(dependant, "dependencies", ()))
    return sorted(set(found))


def _is_generator(call: Any) -> bool:
    target = call if inspect.isfunction(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target)


class ClosedDependencyWarnings:
    """Warns, once per request, that a held task runs after its route's yield dependencies.

    ``describe_request`` gives the request as it may be printed (its path may hold a secret).
    """

    def __init__(self, describe_request: Callable[[TaskCall], str | None]) -> None:
        self._describe_request = describe_request
        self._warned: set[int] = set()

    def warn_once(self, call: TaskCall, *, stacklevel: int) -> None:
        """A queue's job is not the response's: a worker runs it after them in production too."""
        request = call.request
        if request is None or call.job is not None or id(request) in self._warned:
            return
        names = yield_dependencies(request)
        if names:
            shown = self._describe_request(call)
            warnings.warn(
                f"{shown} has dependencies with yield ({', '.join(names)}); they closed when"
                " the response ended, so its held tasks now run after them, unlike production"
                " (FastAPI >= 0.118 runs tasks before they close). A task that uses their"
                " resources may fail here only: test it in eager mode.",
                BgTasksWarning,
                stacklevel=stacklevel + 1,
            )
        self._warned.add(id(request))
