"""What the plugin keeps in memory: per recorded task, at the peak, and after real requests."""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.testclient import TestClient

from apps import fastapi_app, noop
from harness import Row, Section, judge
from sides import Side, baseline, plugin

#: The most a recorded task may keep alive, in bytes.
TARGET = 1024


@dataclass(frozen=True)
class Sizes:
    tasks: int  # live tasks traced at once
    requests: int  # requests whose leftovers are traced


def traced(n: int, side: Side) -> tuple[int, int]:
    """Bytes still allocated, and the peak, for ``n`` live ``BackgroundTask(noop, i)``."""
    gc.collect()
    tracemalloc.start()
    try:
        with side():
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            tasks = [BackgroundTask(noop, i) for i in range(n)]
            current, peak = tracemalloc.get_traced_memory()
            del tasks
    finally:
        tracemalloc.stop()
    return current - before, peak - before


def retained_by_requests(n: int) -> tuple[dict[str, float], list[tuple[str, int]]]:
    """Bytes still allocated per request through a TestClient, and where the plugin's go."""
    per_request: dict[str, float] = {}
    with TestClient(fastapi_app()) as client:
        for i in range(50):
            client.post(f"/work/{i}")
        for name, side in (("plugin", plugin), ("baseline", baseline)):
            gc.collect()
            tracemalloc.start()
            try:
                with side():
                    before = tracemalloc.get_traced_memory()[0]
                    if name == "plugin":  # what installing the sources imported is not kept
                        start = tracemalloc.take_snapshot()  # per request: compare to this
                    for i in range(n):
                        client.post(f"/work/{i}")
                    gc.collect()
                    per_request[name] = (tracemalloc.get_traced_memory()[0] - before) / n
                    if name == "plugin":
                        growth = tracemalloc.take_snapshot().compare_to(start, "lineno")
            finally:
                tracemalloc.stop()
    sites = []
    for stat in growth[:12]:
        frame = stat.traceback[0]
        where = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
        sites.append((where, round(stat.size_diff / n)))
    return per_request, sites


def measure(sizes: Sizes) -> list[Row]:
    n = sizes.tasks
    on_current, on_peak = traced(n, plugin)
    off_current, off_peak = traced(n, baseline)
    per_record = (on_current - off_current) / n
    per_request, sites = retained_by_requests(sizes.requests)
    kept = (per_request["plugin"] - per_request["baseline"]) / 3
    top = ", ".join(f"{where} {size} B" for where, size in sites[:4])
    return [
        Row(
            metric="memory: bytes per recorded task",
            unit="B/task",
            plugin=on_current / n,
            baseline=off_current / n,
            figure=f"+{per_record:.0f} B",
            target=f"<= {TARGET} B",
            verdict=judge(per_record <= TARGET),
            notes=f"tracemalloc, {n} live BackgroundTask(f, i), recorder active minus without",
        ),
        Row(
            metric=f"memory: peak for {n:,} tasks",
            unit="MiB",
            plugin=on_peak / 2**20,
            baseline=off_peak / 2**20,
            figure=f"+{(on_peak - off_peak) / 2**20:.1f} MiB",
            target="-",
            verdict="INFO",
        ),
        Row(
            metric="memory: kept alive per recorded task, FastAPI requests",
            unit="B/request",
            plugin=per_request["plugin"],
            baseline=per_request["baseline"],
            figure=f"+{kept:.0f} B/task",
            target=f"<= {TARGET} B",
            verdict=judge(kept <= TARGET),
            details={"top_sites_bytes_per_request": sites},
            notes=f"tracemalloc, {sizes.requests} TestClient requests of 3 tasks, after"
            f" gc.collect(), while the recorder is alive; biggest sites per request: {top}",
        ),
    ]


SECTION = Section(
    name="memory",
    measure=measure,
    full=Sizes(tasks=100_000, requests=1_000),
    quick=Sizes(tasks=20_000, requests=100),
)
