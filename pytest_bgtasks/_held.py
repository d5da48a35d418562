"""The held queue of deferred mode: tasks waiting for the test to run them, in order."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable

from pytest_bgtasks._record import TaskCall


class HeldQueue:
    """Held tasks by scheduling order; safe across threads (apps under uvicorn hold from theirs).

    Every operation takes the lock once, so checking and removing a task is one step.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, TaskCall]] = []
        self._lock = threading.Lock()

    def push(self, call: TaskCall) -> None:
        with self._lock:
            heapq.heappush(self._heap, (call.index, call))

    def pop(self, matching: Callable[[TaskCall], bool] | None = None) -> TaskCall | None:
        """The first task still waiting to run (that ``matching`` accepts), taken off the queue;
        None when none is. The others stay queued."""
        with self._lock:
            if matching is None:
                while self._heap:
                    _, call = heapq.heappop(self._heap)
                    if call.status == "held":
                        return call
                return None
            for entry in sorted(self._heap):
                call = entry[1]
                if call.status == "held" and matching(call):
                    self._heap.remove(entry)
                    heapq.heapify(self._heap)
                    return call
        return None

    def remove(self, call: TaskCall) -> bool:
        """Take ``call`` off the queue; False when it was not waiting there."""
        with self._lock:
            entries = [entry for entry in self._heap if entry[1] is not call]
            if len(entries) == len(self._heap) or call.status != "held":
                return False
            self._heap = entries
            heapq.heapify(self._heap)
            return True

    def in_order(self) -> list[TaskCall]:
        """The tasks still waiting to run, in scheduling order."""
        with self._lock:
            return self._waiting()

    def clear(self) -> list[TaskCall]:
        """Empty the queue; return the tasks that were still waiting, in order."""
        with self._lock:
            waiting = self._waiting()
            self._heap.clear()
            return waiting

    def discard(self, reason: str) -> list[TaskCall]:
        """Empty the queue, marking each task still waiting "discarded" with ``reason``; return
        them, in order."""
        discarded = self.clear()
        for call in discarded:
            call.status = "discarded"
            call.reason = reason
        return discarded

    def _waiting(self) -> list[TaskCall]:
        return [call for _, call in sorted(self._heap) if call.status == "held"]
