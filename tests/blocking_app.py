"""A FastAPI app whose async tasks hold the event loop, or do not, for the blocking tests."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import anyio
from fastapi import BackgroundTasks, FastAPI

#: Tasks the app keeps a reference to until they are done.
running: set[asyncio.Task[None]] = set()


async def stall(seconds: float) -> None:
    time.sleep(seconds)  # STALL: the whole event loop waits here


async def wait_on_event(seconds: float) -> None:
    threading.Event().wait(seconds)  # WAIT: threading.py is the library, this line is the app's


async def nibble(steps: int, seconds: float) -> None:
    """Blocks a little at a time, yielding to the loop in between."""
    for _ in range(steps):
        time.sleep(seconds)
        await anyio.sleep(0)


async def collect_garbage(seconds: float) -> None:
    """Only the garbage collector runs: its pauses stop every thread, not this task's doing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gc.collect()


async def idle() -> None:
    await anyio.sleep(0)


def sleep_in_thread(seconds: float) -> None:
    time.sleep(seconds)


app = FastAPI()


@app.post("/stall/{seconds}")
async def stall_endpoint(seconds: float, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(stall, seconds)
    return {"ok": True}


@app.post("/wait/{seconds}")
async def wait_endpoint(seconds: float, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(wait_on_event, seconds)
    return {"ok": True}


@app.post("/nibble/{steps}/{seconds}")
async def nibble_endpoint(steps: int, seconds: float, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(nibble, steps, seconds)
    return {"ok": True}


@app.post("/collect/{seconds}")
async def collect_endpoint(seconds: float, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(collect_garbage, seconds)
    return {"ok": True}


@app.post("/idle")
async def idle_endpoint(tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(idle)
    return {"ok": True}


@app.post("/sync/{seconds}")
async def sync_endpoint(seconds: float, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(sleep_in_thread, seconds)
    return {"ok": True}


@app.post("/spawn-stall/{seconds}")
async def spawn_stall(seconds: float) -> dict[str, bool]:
    task = asyncio.create_task(stall(seconds))
    running.add(task)
    task.add_done_callback(running.discard)
    return {"ok": True}
