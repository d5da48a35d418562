"""``run_all(concurrent=True)``: held responses run at once, as a real server runs them.

Each response's tasks run in sequence (a failure skips the rest of them), different responses
at the same time: async tasks on one event loop, sync ones in worker threads, as Starlette runs
them. The responses held when a round starts run together; the tasks they schedule form the
next round.

A task stays on the core's held queue until its turn comes, and what runs is booked by
``_execution.execute`` in the core's ledger, as any task: the core, not this run, knows what is
held and what runs (a shutdown that discards the held tasks stops the run's next ones too).
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

#: One round: the responses that run at once, each a list of tasks run in sequence; and why
#: the run stops after it (a chain of tasks scheduling tasks ran too long), if it does.
Round = tuple[list[list[TaskCall]], str | None]


class ConcurrentRun:
    """One concurrent run of held tasks, round by round."""

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
        #: Called on each task of a round before the round starts (it warns, and may raise: a
        #: warning as an error); nothing has left the queue then.
        self._admit = admit
        self._line = line
        #: Every task the run took off the queue to run, in the order it took them.
        self.taken: list[TaskCall] = []
        self._first_round: Round | None = None

    def plan_first_round(self) -> tuple[bool, EventLoop | None]:
        """Plan the first round now, in the calling thread (a warning points at the test's
        line there): whether there is anything to run, and the event loop to run on (that of
        its first task)."""
        self._first_round = self._plan_round()
        responses = self._first_round[0]
        return bool(responses), responses[0][0].loop if responses else None

    async def drain(self, run: Runner) -> None:
        """Run round after round until nothing matching is held (or the limit, or a chain)."""
        while True:
            if self._first_round is not None:
                (responses, chain_error), self._first_round = self._first_round, None
            else:
                responses, chain_error = self._plan_round()
            if responses:
                await self._run_at_once(run, responses)
            if chain_error is not None:
                raise RuntimeError(chain_error)
            if not responses or self._limit_reached():
                return

    def timeout_message(self, what: str, timeout: float | None) -> str | None:
        """What a timed-out run says about the tasks it cut short (cancelled ones become
        expected: the test sees the TimeoutError); None when none had started."""
        cut = [call for call in self.taken if call.status in ("running", "cancelled")]
        if not cut:
            return None
        for call in cut:
            call.expected = call.status == "cancelled"
        running = "; ".join(self._line(call) for call in cut)
        return f"{what}() timed out after {timeout:g}s while running {running}"

    def _plan_round(self) -> Round:
        """The held responses of the next round, admitted, still on the queue."""
        responses: list[list[TaskCall]] = []
        for response in self._plan.next_round(self._held):
            planned: list[TaskCall] = []
            for call in response:
                self._admit(call)
                chain_error = self._bounds.chain_too_long(call, self._line)
                if chain_error is not None:
                    return [*responses, planned] if planned else responses, chain_error
                planned.append(call)
            responses.append(planned)
        return responses, None

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
        for call in response:
            if self._limit_reached():
                return
            # Taken at its turn: it may have been skipped (an earlier task of its response
            # failed), discarded or run meanwhile; then it is not on the queue any more.
            if not self._held.remove(call):
                continue
            self.taken.append(call)
            await replay_async(run, call)  # cancelled before it starts: back on the queue
            self._bounds.ran.append(call)

    def _limit_reached(self) -> bool:
        return self._limit is not None and len(self.taken) >= self._limit


def _first_of(error: BaseException) -> BaseException:
    """The error a task group raised, out of its exception group: an interrupt (Ctrl-C,
    ``SystemExit``) first. Cancellation and lone errors are returned as they are."""
    inner: Sequence[BaseException] | None = getattr(error, "exceptions", None)
    if not inner:
        return error
    interrupts = [exc for exc in inner if not isinstance(exc, Exception)]
    return _first_of((interrupts or list(inner))[0])
