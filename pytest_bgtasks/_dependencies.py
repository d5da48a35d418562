"""FastAPI dependencies with ``yield``: they have closed by the time a held task runs."""

from __future__ import annotations

import inspect
from typing import Any

from pytest_bgtasks._record import RequestInfo


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
