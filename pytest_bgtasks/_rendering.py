"""Text for people: one line per task, arguments shortened and secrets redacted, tracebacks.

Everything the plugin prints or writes about a task goes through :class:`Renderer`, and so
through one redaction (:mod:`pytest_bgtasks._redaction`).
"""

from __future__ import annotations

import os
import reprlib
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_bgtasks._options import DEFAULT_SECRET_NAMES
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._redaction import MaskedObject, Redaction, Redactor

#: Frames from these packages are trimmed from task tracebacks: they are the machinery.
_MACHINERY = (
    *(
        os.sep + name + os.sep
        for name in ("pytest_bgtasks", "starlette", "anyio", "asyncio", "concurrent", "fastapi")
    ),
    os.sep + "threading.py",
    os.sep + os.path.join("celery", "app", "trace.py"),  # Celery's run of a job
)


#: Where the plugin's hook on the outermost app runs: the frames before it are outside the app.
_APP_EDGE = (os.path.join("pytest_bgtasks", "_sources", "starlette.py"), "app_patch")


def _at_app_edge(frame: traceback.FrameSummary) -> bool:
    return frame.filename.endswith(_APP_EDGE[0]) and frame.name == _APP_EDGE[1]


class _Short(reprlib.Repr):
    """reprlib's shortening, which also knows the masked dataclasses and models."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = 60
        self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 6
        self.maxlevel = 3

    def repr_MaskedObject(self, value: MaskedObject, level: int) -> str:  # reprlib's naming
        if level <= 0:
            return f"{value.name}(...)"
        shown = value.fields[: self.maxdict]
        inner = ", ".join(f"{name}={self.repr1(item, level - 1)}" for name, item in shown)
        more = ", ..." if len(value.fields) > self.maxdict else ""
        return f"{value.name}({inner}{more})"


_short = _Short()


@dataclass(frozen=True)
class RedactedCall:
    """What may be printed about one task, every field already redacted."""

    signature: str
    request: str | None
    route: str | None
    error: str | None
    fault: str | None
    reason: str | None
    redaction: Redaction

    def traceback(self, exception: BaseException) -> str:
        return self.redaction.scrub(trimmed_traceback(exception))


class Renderer:
    """Renders task calls with their secrets redacted, by name and by what the values are."""

    def __init__(self, secret_names: Iterable[str] = DEFAULT_SECRET_NAMES) -> None:
        self.redactor = Redactor(secret_names)

    def is_secret(self, name: str) -> bool:
        return self.redactor.is_secret(name)

    def redaction(self, call: TaskCall) -> Redaction:
        """The secrets of ``call``: its arguments and the secret-named parts of its path."""
        return self.redactor.redaction(call.arguments, _path_secrets(self.redactor, call))

    def arguments(self, arguments: Mapping[str, Any], redaction: Redaction | None = None) -> str:
        """``a, b=value, password=***``: shortened, secrets hidden.

        Given the ``redaction`` of a call, its masked arguments are shown (and ``arguments``,
        which it was made from, is not read again).
        """
        if redaction is None:
            redaction = self.redactor.redaction(arguments)
        return ", ".join(
            shown if name.isdigit() else f"{name}={shown}"
            for name, shown in (
                (name, redaction.scrub(_short.repr(value)))
                for name, value in redaction.arguments.items()
            )
        )

    def signature(self, call: TaskCall) -> str:
        """``name(arg=value, ...)`` with secrets redacted."""
        return self.redacted(call).signature

    def redacted(self, call: TaskCall) -> RedactedCall:
        """Every printable field of ``call``, redacted through one :class:`Redaction`."""
        redaction = self.redaction(call)
        scrub = redaction.scrub
        request = call.request
        exception = call.exception
        return RedactedCall(
            signature=scrub(f"{call.name}({self.arguments(call.arguments, redaction)})"),
            request=None if request is None else f"{request.method} {redaction.path(request.path)}",
            route=None if request is None or request.route is None else scrub(request.route),
            error=None if exception is None else scrub(_error_text(exception)),
            fault=None if call.fault is None else scrub(call.fault),
            reason=None if call.reason is None else scrub(call.reason),
            redaction=redaction,
        )

    def request(self, call: TaskCall) -> str | None:
        """``POST /reset/***``: the request that scheduled ``call``, redacted."""
        return self.redacted(call).request

    def line(self, call: TaskCall, redacted: RedactedCall | None = None) -> str:
        """``#1 write_log(message='hi')  succeeded in 2.00s  POST /send  [fault]``."""
        shown = redacted or self.redacted(call)
        kind = "" if call.kind == "background" else f" ({call.kind} task)"
        parts = [f"#{call.index} {shown.signature}{kind}", call.status]
        if call.duration is not None:
            parts[-1] += f" in {call.duration:.3f}s"
        if shown.request is not None:
            route = shown.route
            raw_path = None if call.request is None else call.request.path
            same = route is None or route == raw_path
            parts.append(shown.request if same else f"{shown.request} ({route})")
        if call.origin is not None:
            parts.append(f"created at {shown.redaction.scrub(call.origin)}")
        if shown.fault is not None:
            parts.append(f"fault {shown.fault}")
        if shown.reason is not None:
            parts.append(shown.reason)
        return "  ".join(parts)

    def block(self, calls: Sequence[TaskCall], *, tracebacks: bool = True) -> str:
        """One line per call, each failure followed by its trimmed traceback."""
        lines: list[str] = []
        for call in calls:
            shown = self.redacted(call)
            lines.append(self.line(call, shown))
            if tracebacks and call.exception is not None:
                lines.extend("    " + text for text in shown.traceback(call.exception).splitlines())
        return "\n".join(lines)

    def scrub(self, text: str, calls: Iterable[TaskCall] = ()) -> str:
        """``text`` with URL credentials, secret assignments and the secrets of ``calls`` hidden.

        For messages that are not about one call: an assertion message, a warning.
        """
        secrets: set[str] = set()
        for call in calls:
            secrets |= self.redaction(call).secrets
        return self.redactor.redaction({}, secrets).scrub(text)


def _path_secrets(redactor: Redactor, call: TaskCall) -> list[str]:
    """The values of the path's secret-named parameters (``/reset/{token}``), by position.

    The route's template is aligned with the end of the path (a mounted app's routes are
    relative); templates with a ``:path`` parameter, which spans segments, are not aligned.
    """
    request = call.request
    if request is None or request.route is None or ":path}" in request.route:
        return []
    template = request.route.strip("/").split("/")
    path = request.path.strip("/").split("/")
    if len(template) > len(path):
        return []
    secrets = []
    for pattern, segment in zip(template, path[len(path) - len(template) :], strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            name = pattern[1:-1].partition(":")[0]
            if redactor.is_secret(name):
                secrets.append(segment)
    return secrets


def _error_text(exception: BaseException) -> str:
    message = str(exception)
    return f"{type(exception).__name__}: {message}" if message else type(exception).__name__


def trimmed_traceback(exception: BaseException) -> str:
    """The exception's traceback without the frames of Starlette, anyio and this plugin, nor,
    for one that left the app (``contain=False``), those outside it: client, server, test."""
    extracted = traceback.extract_tb(exception.__traceback__)
    edge = next((index for index, frame in enumerate(extracted) if _at_app_edge(frame)), 0)
    frames = [
        frame
        for frame in extracted[edge:]
        if not any(part in frame.filename for part in _MACHINERY)
    ]
    text = "".join(traceback.format_list(frames))
    head = "Traceback (most recent call last):\n" if frames else ""
    return head + text + "".join(traceback.format_exception_only(type(exception), exception))
