"""Text for people: one line per task, arguments shortened and secrets redacted, tracebacks."""

from __future__ import annotations

import os
import reprlib
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_bgtasks._record import TaskCall

#: Parameter names whose values never appear in output (matched as lower-case substrings).
DEFAULT_SECRET_NAMES: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "private_key",
    "cookie",
)
REDACTED = "***"

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 6
_short.maxlevel = 3

#: Frames from these packages are trimmed from task tracebacks: they are the machinery.
_MACHINERY = (
    *(
        os.sep + name + os.sep
        for name in ("pytest_bgtasks", "starlette", "anyio", "asyncio", "concurrent", "fastapi")
    ),
    os.sep + "threading.py",
)


class Renderer:
    """Renders task calls, redacting arguments whose names look secret."""

    def __init__(self, secret_names: Iterable[str] = DEFAULT_SECRET_NAMES) -> None:
        self.secret_names = tuple(name.lower() for name in secret_names)

    def is_secret(self, name: str) -> bool:
        lowered = name.lower()
        return any(secret in lowered for secret in self.secret_names)

    def value(self, name: str, value: Any) -> str:
        return REDACTED if self.is_secret(name) else _short.repr(value)

    def arguments(self, arguments: dict[str, Any]) -> str:
        return ", ".join(
            self.value(name, value) if name.isdigit() else f"{name}={self.value(name, value)}"
            for name, value in arguments.items()
        )

    def signature(self, call: TaskCall) -> str:
        """``name(arg=value, ...)`` with secrets redacted."""
        return f"{call.name}({self.arguments(call.arguments)})"

    def line(self, call: TaskCall) -> str:
        """``#1 write_log(message='hi')  succeeded in 2.00s  POST /send  [fault]``."""
        kind = "" if call.kind == "background" else f" ({call.kind} task)"
        parts = [
            f"#{call.index} {self.signature(call)}{kind}",
            "held" if call.held else call.status,
        ]
        if call.duration is not None:
            parts[-1] += f" in {call.duration:.3f}s"
        if call.request is not None:
            route = call.request.route
            request = str(call.request)
            parts.append(request if route in (None, call.request.path) else f"{request} ({route})")
        if call.origin is not None:
            parts.append(f"created at {call.origin}")
        if call.fault is not None:
            parts.append(f"fault {call.fault}")
        if call.reason is not None:
            parts.append(call.reason)
        return "  ".join(parts)

    def block(self, calls: Sequence[TaskCall], *, tracebacks: bool = True) -> str:
        """One line per call, each failure followed by its trimmed traceback."""
        lines: list[str] = []
        for call in calls:
            lines.append(self.line(call))
            if tracebacks and call.exception is not None:
                lines.extend(
                    "    " + text for text in trimmed_traceback(call.exception).splitlines()
                )
        return "\n".join(lines)


def trimmed_traceback(exception: BaseException) -> str:
    """The exception's traceback without the frames of Starlette, anyio and this plugin."""
    frames = [
        frame
        for frame in traceback.extract_tb(exception.__traceback__)
        if not any(part in frame.filename for part in _MACHINERY)
    ]
    text = "".join(traceback.format_list(frames))
    head = "Traceback (most recent call last):\n" if frames else ""
    return head + text + "".join(traceback.format_exception_only(type(exception), exception))
