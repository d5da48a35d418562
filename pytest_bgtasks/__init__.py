"""pytest-bgtasks: capture, run, inspect and inject failures into Starlette background tasks.

The names below are imported on first use, so that loading the pytest plugin at start-up
does not import Starlette and anyio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_bgtasks._capture import CaptureBlock
    from pytest_bgtasks._faults import Fault
    from pytest_bgtasks._record import RequestInfo, TaskCall
    from pytest_bgtasks._recorder import BackgroundTaskRecorder
    from pytest_bgtasks._warnings import BgTasksWarning

__all__ = [
    "BackgroundTaskRecorder",
    "BgTasksWarning",
    "CaptureBlock",
    "Fault",
    "RequestInfo",
    "TaskCall",
]

_HOMES = {
    "BackgroundTaskRecorder": "pytest_bgtasks._recorder",
    "BgTasksWarning": "pytest_bgtasks._warnings",
    "CaptureBlock": "pytest_bgtasks._capture",
    "Fault": "pytest_bgtasks._faults",
    "RequestInfo": "pytest_bgtasks._record",
    "TaskCall": "pytest_bgtasks._record",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pytest_bgtasks' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
