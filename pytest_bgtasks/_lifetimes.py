"""What is wrong with a task's arguments, judged when the task is scheduled.

Lifetimes: a background task runs after its response, so an argument whose life ends with the
request breaks it in production, however well it works in a test: the request (or WebSocket)
itself, an upload the framework closes first, a value of a dependency whose exit code runs
first (a database session) and the ORM objects bound to that session. Which uploads and
dependency values end first depends on the installed FastAPI: its source
(``_sources/fastapi.py``) says so, through :attr:`ArgumentCheck.uploads_closed_by` and
``RequestInfo.ends_first``; this module knows no framework version.

Round trip (opt-in): the arguments must survive the serializer of a job queue.

Both judge background tasks only: an asyncio task the app starts may be awaited within the
request, where the request's objects are alive, and it is not a job a queue would carry.
Only the arguments themselves are looked at, one type check each, never what they contain.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import HTTPConnection

from pytest_bgtasks._callables import flatten_partial
from pytest_bgtasks._options import MARKER, Roundtrip
from pytest_bgtasks._record import RequestInfo, TaskCall
from pytest_bgtasks._rendering import Renderer
from pytest_bgtasks._roundtrip import roundtrip_failure

README_LIFETIMES = (
    "https://github.com/pytest-bgtasks/pytest-bgtasks#arguments-that-must-outlive-the-request"
)


class ArgumentCheck:
    """Judges the arguments of each background task as it is scheduled, keeping the problems."""

    def __init__(self, *, lifetimes: bool, roundtrip: Roundtrip | None) -> None:
        self.lifetimes = lifetimes
        self.roundtrip = roundtrip
        #: Which framework closes uploaded files before the tasks run ("FastAPI 0.115.14"),
        #: set by its source when the installed version does; None when none does.
        self.uploads_closed_by: str | None = None
        #: (task, what is wrong with one of its arguments), in scheduling order.
        self.problems: list[tuple[TaskCall, str]] = []
        self._lifetime_problems = 0
        self._kinds: dict[type, int] = {}

    def __call__(self, call: TaskCall) -> None:
        if call.kind != "background":
            return
        args, kwargs = call.args, call.kwargs
        if type(call.func) is partial:
            _, args, kwargs = flatten_partial(call.func, args, kwargs)
        passed = (*args, *kwargs.values()) if kwargs else args  # building it costs: only if needed
        if self.lifetimes:
            request = call.request
            ends_first = None if request is None else request.ends_first
            kinds = self._kinds
            for value in passed:
                kind = kinds.get(type(value))
                if kind is None:
                    kind = kinds[type(value)] = _kind(type(value))
                if kind == _PLAIN and not ends_first:
                    continue  # the common case: one dict lookup per argument
                why = self._ends_first(value, kind, request)
                if why is not None:
                    self.problems.append((call, _lifetime_problem(call, value, why)))
                    self._lifetime_problems += 1
        if self.roundtrip is not None:
            for value in passed:
                failure = roundtrip_failure(value, self.roundtrip)
                if failure is not None:
                    self.problems.append(
                        (call, _roundtrip_problem(call, value, self.roundtrip, failure))
                    )

    def blocks(self, render: Renderer) -> list[str]:
        """One block per task with problems: its line, then what is wrong with each argument."""
        grouped: dict[TaskCall, list[str]] = {}
        for call, problem in self.problems:
            grouped.setdefault(call, []).append(problem)
        blocks = ["\n    ".join([render.line(call), *found]) for call, found in grouped.items()]
        if blocks and self._lifetime_problems:
            blocks[-1] += (
                f"\n  (arguments that end before their task: see {README_LIFETIMES};"
                f" @pytest.mark.{MARKER}(lifetimes=False) turns this check off)"
            )
        return blocks

    def _ends_first(self, value: Any, kind: int, request: RequestInfo | None) -> str | None:
        """How ``value``'s life ends before the task runs, with the remedy; None if it does not."""
        if kind == _CONNECTION:
            return (
                f"is the {type(value).__name__} itself, which ends with its response, before"
                " the task runs: pass what the task needs (an id, the body, a header) instead"
            )
        if request is None:
            return None
        if (
            kind == _UPLOAD
            and self.uploads_closed_by is not None
            and getattr(request.route_object, "dependant", None) is not None
        ):
            return (
                f"is an upload that {self.uploads_closed_by} closes before the tasks run: read"
                " it in the endpoint (await file.read()) and pass the bytes, or save it and"
                " pass the path"
            )
        ends_first = request.ends_first
        if not ends_first:
            return None
        found = ends_first.get(id(value))
        if found is not None:
            return (
                f"was yielded by {found[1]}: pass the id or the data the task needs (for a"
                " database session: open a new session in the task)"
            )
        for session in _orm_sessions(value):
            found = ends_first.get(id(session))
            if found is not None:
                return (
                    f"is an ORM object of the session yielded by {found[1]}: pass its id and"
                    " load it in a new session opened in the task"
                )
        return None


#: What an argument's type says of its life: nothing, the request itself, an upload.
_PLAIN, _CONNECTION, _UPLOAD = 0, 1, 2


def _kind(cls: type) -> int:
    if issubclass(cls, HTTPConnection):
        return _CONNECTION
    return _UPLOAD if issubclass(cls, UploadFile) else _PLAIN


def _orm_sessions(value: Any) -> tuple[Any, ...]:
    """The SQLAlchemy sessions (sync, and async if any) an ORM instance is attached to."""
    state = getattr(value, "_sa_instance_state", None)
    if state is None or isinstance(value, type):
        return ()
    try:
        return (state.session, getattr(state, "async_session", None))
    except Exception:  # not SQLAlchemy's InstanceState after all
        return ()


def _parameter(call: TaskCall, value: Any) -> str:
    """The parameter ``value`` was bound to: bound only now, a problem is rare, binding is not."""
    for name, bound in call.arguments.items():
        if bound is value:
            return name
    for name, bound in call.arguments.items():  # collected by *args
        if isinstance(bound, tuple) and any(item is value for item in bound):
            return f"*{name}"
    return "?"


def _type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _lifetime_problem(call: TaskCall, value: Any, why: str) -> str:
    return f"argument {_parameter(call, value)!r} ({_type_name(value)}) {why}"


def _roundtrip_problem(call: TaskCall, value: Any, serializer: Roundtrip, failure: str) -> str:
    return (
        f"argument {_parameter(call, value)!r} ({_type_name(value)}) does not survive a"
        f" {serializer} round trip ({failure}), so a job queue could not carry it: pass plain"
        " data (ids, strings, numbers, lists, dicts)"
    )
