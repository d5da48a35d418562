"""``run_all(concurrent=True)``: held responses run at once, as a real server runs them.

Each response's tasks run in sequence (a failure skips the rest of them), different responses
at the same time: async tasks on one event loop, sync ones in worker threads, as Starlette runs
them. The responses held when a round starts run together; the tasks they schedule form the
next round. What runs is booked by ``_execution.execute`` in the core's ledger, as any task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio

from pytest_bgtasks._bounds import RunBounds
from pytest_bgtasks._held import HeldQueue
from pytest_bgtasks._loops import EventLoop
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._replay import Runner, replay_async
from pytest_bgtasks._replay_order import ReplayPlan


class ConcurrentRun:
    """One concurrent run of held tasks: what it took off the queue, and running it."""

    def __init__(
        self,
        held: HeldQueue,
        plan: ReplayPlan,
        bounds: RunBounds,
        limit: int | None,
        admit: Callable[[TaskCall], None],
        line: Callable[[TaskCall], str],
    ) -> None:
        self._held = held
        self._plan = plan
        self._bounds = bounds
        self._limit = limit
        #: Called on each task taken off the queue before it runs (it may raise: a warning
        #: as an error); the task goes back on the queue then.
        self._admit = admit
        self._line = line
        #: Every task the run took off the queue, in the order it took them.
        self.taken: list[TaskCall] = []
        self._first_round: tuple[list[list[TaskCall]], str | None] | None = None

    def take_first_round(self) -> EventLoop | None:
        """Take the first round off the queue now, in the calling thread (a warning points at
        the test's line there); return the event loop to run on: that of its first task."""
        self._first_round = self._take_round()
        for response in self._first_round[0]:
            return response[0].loop
        return None

    async def drain(self, run: Runner) -> None:
        """Run round after round until nothing matching is held (or the limit, or a chain)."""
        while True:
            if self._first_round is not None:
                (responses, chain_error), self._first_round = self._first_round, None
            else:
                responses, chain_error = self._take_round()
            if responses:
                await self._run_at_once(run, responses)
            if chain_error is not None:
                raise RuntimeError(chain_error)
            if not responses:
                return

    def cut_short(self) -> list[TaskCall]:
        """The tasks still running or cancelled when the run stopped (its timeout)."""
        return [call for call in self.taken if call.status in ("running", "cancelled")]

    def _take_round(self) -> tuple[list[list[TaskCall]], str | None]:
        """The held responses of this round, their tasks taken off the queue; and why the run
        must stop after them, if a chain of tasks scheduling tasks ran too long."""
        responses: list[list[TaskCall]] = []
        try:
            for response in self._plan.next_round(self._held):
                taken: list[TaskCall] = []
                responses.append(taken)
                for call in response:
                    if self._limit is not None and len(self.taken) >= self._limit:
                        break
                    if not self._held.remove(call):
                        continue
                    try:
                        self._admit(call)
                    except BaseException:
                        self._held.push(call)
                        raise
                    chain_error = self._bounds.chain_too_long(call, self._line)
                    if chain_error is not None:
                        self._held.push(call)
                        return [taken for taken in responses if taken], chain_error
                    taken.append(call)
                    self.taken.append(call)
        except BaseException:
            for taken in responses:
                self._give_back(taken)
            raise
        return [taken for taken in responses if taken], None

    async def _run_at_once(self, run: Runner, responses: list[list[TaskCall]]) -> None:
        try:
            async with anyio.create_task_group() as group:
                for response in responses:
                    group.start_soon(self._run_in_sequence, run, response)
        except BaseException as error:
            inner = _first_of(error)
            if inner is error:
                raise
            raise inner from None

    async def _run_in_sequence(self, run: Runner, response: list[TaskCall]) -> None:
        for position, call in enumerate(response):
            if not call.held:  # skipped: an earlier task of its response failed
                continue
            try:
                await replay_async(run, call)
            except BaseException:
                self._give_back(response[position + 1 :])
                raise
            self._bounds.ran.append(call)

    def _give_back(self, calls: Sequence[TaskCall]) -> None:
        """Put the tasks that never started back on the queue."""
        for call in calls:
            if call.held:
                self._held.push(call)


def _first_of(error: BaseException) -> BaseException:
    """The error a task group raised, out of its exception group: an interrupt (Ctrl-C,
    ``SystemExit``) first. Cancellation and lone errors are returned as they are."""
    inner: Sequence[BaseException] | None = getattr(error, "exceptions", None)
    if not inner:
        return error
    interrupts = [exc for exc in inner if not isinstance(exc, Exception)]
    return _first_of((interrupts or list(inner))[0])
