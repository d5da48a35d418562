"""The order a run of held tasks takes them in: as scheduled, or with the responses reversed or
shuffled.

Starlette runs one response's tasks in sequence, and a failure skips the rest of them; different
responses do not wait for each other. So a reordered run keeps each response's tasks together
and in their order, and permutes the responses, to find tests that pass only because tasks
happen to run in scheduling order. Work that belongs to no response (a queue's job) is a group
of its own. Tasks that the run's own tasks schedule come after, in the same order, round by round.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal, get_args

from pytest_bgtasks._held import HeldQueue
from pytest_bgtasks._record import TaskCall

Order = Literal["scheduled", "reversed", "random"]
ORDERS: tuple[Order, ...] = get_args(Order)

#: Seeds picked for ``order="random"`` without one are below this: short enough to retype.
_SEED_RANGE = 1_000_000


class ReplayOrder:
    """How one ``run_all()`` orders the held responses, checked; picks a seed if ``random``."""

    def __init__(self, order: object, seed: object, method: str) -> None:
        __tracebackhide__ = True
        if order not in ORDERS:
            choices = ", ".join(f'"{name}"' for name in ORDERS)
            raise ValueError(f"bgtasks.{method}(order=...) takes one of {choices}, got {order!r}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"bgtasks.{method}(seed=...) takes a whole number, got {seed!r}")
        if seed is not None and order != "random":
            raise ValueError(
                f'bgtasks.{method}(seed=...) goes with order="random" only, got order={order!r};'
                f' pass bgtasks.{method}(order="random", seed={seed!r}), or leave seed out'
            )
        self.order: Order = order
        self.method = method
        #: The random order's seed, given or picked; None for the other orders.
        self.seed: int | None = None
        self._random: random.Random | None = None
        if order == "random":
            self.seed = secrets.randbelow(_SEED_RANGE) if seed is None else seed
            self._random = random.Random(self.seed)

    def responses(self, calls: Sequence[TaskCall]) -> list[list[TaskCall]]:
        """``calls`` (in scheduling order) grouped by response, the groups in this order."""
        groups: dict[int, list[TaskCall]] = {}
        for call in calls:
            key = id(call) if call.batch is None else id(call.batch)
            groups.setdefault(key, []).append(call)
        ordered = list(groups.values())
        if self.order == "reversed":
            ordered.reverse()
        elif self._random is not None:
            self._random.shuffle(ordered)
        return ordered

    def note(self, concurrent: bool) -> str | None:
        """What a failing test's report says about this run, so it can be replayed; None for
        the scheduling order."""
        if self.order == "scheduled":
            return None
        arguments = f'order="{self.order}"'
        seed = ""
        if self.seed is not None:
            arguments += f", seed={self.seed}"
            seed = f", seed={self.seed}"
        how = ", responses concurrently" if concurrent else ""
        if concurrent:
            arguments += ", concurrent=True"
        return (
            f"bgtasks: {self.method} replayed in {self.order} order{seed}{how};"
            f" {self.method}({arguments}) replays it"
        )


class ReplayPlan:
    """The held tasks one run takes next, in its order; refilled from the queue round by round
    (a round's tasks may schedule more)."""

    def __init__(self, order: ReplayOrder, matching: Callable[[TaskCall], bool]) -> None:
        self.order = order
        self._matching = matching
        self._next: deque[TaskCall] = deque()

    def take(self, held: HeldQueue) -> TaskCall | None:
        """The next task to run, taken off ``held``; None when no matching task is held."""
        if self.order.order == "scheduled":
            return held.pop(self._matching)  # the lowest number first, chained ones included
        while True:
            while self._next:
                call = self._next.popleft()
                if held.remove(call):  # not skipped meanwhile by a failure of its response
                    return call
            round_ = self.next_round(held)
            if not round_:
                return None
            self._next.extend(call for response in round_ for call in response)

    def next_round(self, held: HeldQueue) -> list[list[TaskCall]]:
        """The matching held tasks by response, in this order (still held: the caller takes)."""
        return self.order.responses([call for call in held.in_order() if self._matching(call)])
