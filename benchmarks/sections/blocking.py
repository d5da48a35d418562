"""What the blocking check costs: an async task run one timed step at a time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from apps import noop_async
from harness import Pairs, Row, Section, added_row, alternate_async
from sides import step_timer

Wrap = Callable[[Awaitable[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Sizes:
    tasks: int  # per round
    rounds: int


def measure(sizes: Sizes) -> list[Row]:
    return [
        added_row(
            "blocking check: an async task's steps timed, added per task",
            "us/task",
            anyio.run(timed_tasks, sizes),
            f"{sizes.rounds} alternating pairs of {sizes.tasks} awaited one-step tasks"
            " (apps.noop_async) on one anyio loop: timed as the plugin runs every async task,"
            " vs awaited as they are",
            at_most=2.0,
        )
    ]


def unchanged(awaitable: Awaitable[Any]) -> Awaitable[Any]:
    return awaitable


async def timed_tasks(sizes: Sizes) -> Pairs:
    async def block(wrap: Wrap) -> float:
        start = time.perf_counter()
        for i in range(sizes.tasks):
            await wrap(noop_async(i))
        return (time.perf_counter() - start) / sizes.tasks * 1e6

    with step_timer() as timed:
        return await alternate_async(sizes.rounds, lambda: block(timed), lambda: block(unchanged))


SECTION = Section(
    name="blocking",
    measure=measure,
    full=Sizes(tasks=20_000, rounds=21),
    quick=Sizes(tasks=5_000, rounds=5),
)
