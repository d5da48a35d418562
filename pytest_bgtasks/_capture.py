"""Scoped capture: the tasks scheduled inside one ``with bgtasks.capture() as block:``."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_bgtasks._assertions import CallAssertions
from pytest_bgtasks._core import Core
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._rendering import Renderer


class CaptureBlock(CallAssertions):
    """The tasks scheduled between entering and leaving a ``bgtasks.capture()`` block.

    It answers the recorder's queries and assertions (``calls``, ``calls_to``,
    ``assert_scheduled``, ``assert_scheduled_once``, ``assert_scheduled_times``,
    ``assert_not_scheduled``, ...) about those tasks only. A block is a range of the record by
    scheduling order: a task scheduled while the block is open belongs to it, whichever thread
    scheduled it (a real server's, or a task the test runs with ``run_all()``). While open, the
    block grows; once left, it keeps the tasks it saw and can still be asserted on. Import it
    for type hints only; its constructor is private.
    """

    _owner = "block"

    def __init__(self, core: Core, renderer: Renderer) -> None:
        self._core = core
        self._renderer = renderer
        self._start = len(core.calls)
        self._end: int | None = None

    def _scope(self) -> Sequence[TaskCall]:
        return self._core.calls[self._start : self._end]

    def _everything(self) -> Sequence[TaskCall]:
        return self._core.calls

    def close(self) -> None:
        """Stop capturing: later tasks are not the block's. Leaving the block calls it."""
        if self._end is None:
            self._end = len(self._core.calls)

    def __repr__(self) -> str:
        state = "open" if self._end is None else "closed"
        return f"<CaptureBlock {state} calls={len(self._scope())}>"
