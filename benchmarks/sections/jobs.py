"""What recording a queue's job costs: a Celery ``task.delay(i)``, run at once on both sides.

The baseline is Celery's own eager mode (``task_always_eager``: ``delay()`` runs the job in
place with ``Task.apply``); the plugin side records the job and runs it the same way, in eager
mode, after encoding its arguments as the broker's message would be. No broker is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery

from harness import Row, Section, added_row, alternate
from sides import Side, baseline, plugin


@dataclass(frozen=True)
class Sizes:
    jobs: int  # per round
    rounds: int


def celery_app() -> Celery:
    app = Celery("bench", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    app.conf.task_store_eager_result = False
    return app


def notify(i: int) -> int:
    return i


def per_job(side: Side, enqueue: Callable[[int], object], k: int) -> Callable[[], float]:
    """A round: ``k`` jobs enqueued under ``side``, in µs per job."""

    def run() -> float:
        with side():
            start = time.perf_counter()
            for i in range(k):
                enqueue(i)
            elapsed = time.perf_counter() - start
        return elapsed / k * 1e6

    return run


def measure(sizes: Sizes) -> list[Row]:
    task: Any = celery_app().task(notify)  # Celery's decorator is untyped

    def enqueue(i: int) -> object:
        return task.delay(i)

    pairs = alternate(
        sizes.rounds,
        per_job(plugin, enqueue, sizes.jobs),
        per_job(baseline, enqueue, sizes.jobs),
    )
    return [
        added_row(
            "queue: Celery task.delay(i), run eagerly, added per job",
            "us/job",
            pairs,
            f"{sizes.rounds} alternating pairs of {sizes.jobs} jobs, outside any request;"
            " baseline: Celery's own task_always_eager",
            at_most=3.0,
        )
    ]


SECTION = Section(
    name="jobs",
    measure=measure,
    full=Sizes(jobs=2_000, rounds=21),
    quick=Sizes(jobs=200, rounds=5),
)
