"""What building a task costs while the plugin records, outside any request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.background import BackgroundTask, BackgroundTasks

from apps import noop
from harness import Row, Section, added_row, alternate, median
from sides import RequestInfo, Side, baseline, current_request, plugin, plugin_without_lifetimes


@dataclass(frozen=True)
class Sizes:
    tasks: int  # per round
    rounds: int


def construct(k: int) -> None:
    for i in range(k):
        BackgroundTask(noop, i)


def add_task(k: int) -> None:
    for i in range(k // 3):  # as requests do: a container of three tasks each
        tasks = BackgroundTasks()
        tasks.add_task(noop, i)
        tasks.add_task(noop, i)
        tasks.add_task(noop, i)


async def announce(i: int) -> int:
    return i


def app_tasks(k: int) -> None:
    """``k`` asyncio tasks started, and awaited, by an app's code during a request."""

    async def request() -> None:
        token = current_request.set(RequestInfo({"type": "http", "method": "POST", "path": "/"}))
        try:
            await asyncio.gather(*[asyncio.create_task(announce(i)) for i in range(k)])
        finally:
            current_request.reset(token)

    asyncio.run(request())


def bare(k: int) -> None:
    for i in range(k):
        noop(i)


def per_task(body: Callable[[int], None], side: Side, k: int) -> Callable[[], float]:
    """A round: ``body(k)`` under ``side``, in µs per task."""

    def run() -> float:
        with side():
            start = time.perf_counter()
            body(k)
            elapsed = time.perf_counter() - start
        return elapsed / k * 1e6

    return run


def measure(sizes: Sizes) -> list[Row]:
    k = sizes.tasks - sizes.tasks % 3
    floor = [per_task(bare, baseline, k)() for _ in range(sizes.rounds)]
    rows = [
        Row(
            metric="capture: bare function call (the floor)",
            unit="us/call",
            plugin=None,
            baseline=median(floor),
            figure=f"{median(floor):.3f} us",
            target="-",
            verdict="INFO",
            samples={"floor": floor},
        )
    ]
    for label, body in (
        ("BackgroundTask(f, i)", construct),
        ("BackgroundTasks() + 3 x add_task(f, i)", add_task),
        ("asyncio.create_task(f(i)) by the app, run and awaited", app_tasks),
    ):
        rows.append(
            added_row(
                f"capture: {label}, added per task",
                "us/task",
                alternate(sizes.rounds, per_task(body, plugin, k), per_task(body, baseline, k)),
                f"{sizes.rounds} alternating pairs of {k} tasks, outside any request",
                at_most=2.0,
            )
        )
    rows.append(
        added_row(
            "lifetime check: BackgroundTasks() + 3 x add_task(f, i), added per task",
            "us/task",
            alternate(
                sizes.rounds,
                per_task(add_task, plugin, k),
                per_task(add_task, plugin_without_lifetimes, k),
            ),
            f"{sizes.rounds} alternating pairs of {k} tasks: the plugin with the check (its"
            " default) vs the plugin with lifetimes=False",
            at_most=None,
        )
    )
    return rows


SECTION = Section(
    name="capture",
    measure=measure,
    full=Sizes(tasks=20_000, rounds=21),
    quick=Sizes(tasks=5_000, rounds=5),
)
