"""pytest-bgtasks: capture, run, inspect and inject failures into Starlette background tasks."""

from pytest_bgtasks._faults import Fault
from pytest_bgtasks._record import RequestInfo, TaskCall
from pytest_bgtasks._recorder import BackgroundTaskRecorder
from pytest_bgtasks._warnings import BgTasksWarning

__all__ = ["BackgroundTaskRecorder", "BgTasksWarning", "Fault", "RequestInfo", "TaskCall"]
