"""What is in flight and what runs, so waiting knows when everything is idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pytest_bgtasks._record import TaskCall


class Ledger:
    """Counts what is in flight and what runs, so ``wait()`` knows when all is idle.

    ``busy`` counts requests being handled and tasks handed over to run (a sync task queued
    for a worker thread included); ``running`` counts tasks whose function has started.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiters = 0  # notifying costs; only done when someone waits
        self.busy = 0
        self.running = 0
        self.max_running = 0

    # The lock's acquire() and release() rather than ``with``: these run several times per
    # task, and the with-statement costs twice as much; the body between cannot raise.
    def enter(self) -> None:
        self._lock.acquire()
        try:
            self.busy += 1
        finally:
            self._lock.release()

    def leave(self) -> None:
        self._lock.acquire()
        try:
            self.busy -= 1
            if self._waiters:  # each waits for its own condition: idle, or chosen tasks done
                self._idle.notify_all()
        finally:
            self._lock.release()

    def start(self, call: TaskCall) -> None:
        call.status = "running"
        call.started_at = time.monotonic()
        self._lock.acquire()
        try:
            self.running += 1
            if self.running > self.max_running:
                self.max_running = self.running
        finally:
            self._lock.release()

    def stop(self, call: TaskCall) -> None:
        call.finished_at = time.monotonic()
        self._lock.acquire()
        try:
            self.running -= 1
        finally:
            self._lock.release()

    def wait_idle(self, timeout: float | None) -> bool:
        return self.wait_until(lambda: self.busy == 0, timeout)

    def wait_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Block until ``done()`` is true, checked each time work leaves; False at the timeout."""
        with self._lock:
            self._waiters += 1
            try:
                return self._idle.wait_for(done, timeout)
            finally:
                self._waiters -= 1
