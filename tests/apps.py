"""Real apps for the plugin's tests: a FastAPI app and a plain Starlette app, with a journal."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import anyio
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

#: What the tasks did, in order: (label, thread name).
journal: list[tuple[str, str]] = []


def record(label: str) -> None:
    journal.append((label, threading.current_thread().name))


def sync_task(label: str) -> str:
    record(label)
    return f"sync:{label}"


async def async_task(label: str) -> str:
    record(label)
    return f"async:{label}"


def boom(message: str = "boom") -> None:
    raise RuntimeError(message)


def send_email(to: str, subject: str, password: str = "hunter2") -> None:
    record(f"mail {to}")


def slow_task(seconds: float) -> None:
    import time

    time.sleep(seconds)
    record("slow")


async def slow_async_task(seconds: float) -> None:
    await anyio.sleep(seconds)
    record("slow async")


def dependency(background_tasks: BackgroundTasks) -> None:
    background_tasks.add_task(sync_task, "from dependency")


app = FastAPI()


@app.post("/items/{item_id}")
async def create_item(item_id: int, background_tasks: BackgroundTasks) -> dict[str, int]:
    background_tasks.add_task(sync_task, f"item {item_id}")
    background_tasks.add_task(async_task, label=f"async item {item_id}")
    return {"id": item_id}


@app.put("/sync/{name}")
def sync_endpoint(
    name: str, background_tasks: BackgroundTasks, _: None = Depends(dependency)
) -> dict[str, str]:
    background_tasks.add_task(sync_task, f"sync endpoint {name}")
    return {"name": name}


@app.post("/fail")
async def fail(background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(sync_task, "before")
    background_tasks.add_task(boom, "task boom")
    background_tasks.add_task(async_task, "after")
    return {"ok": True}


@app.post("/override")
async def override(background_tasks: BackgroundTasks) -> JSONResponse:
    background_tasks.add_task(sync_task, "injected")
    return JSONResponse({"ok": True}, background=BackgroundTask(async_task, "explicit"))


@app.get("/missing")
async def missing(background_tasks: BackgroundTasks) -> None:
    background_tasks.add_task(sync_task, "before 404")
    raise HTTPException(status_code=404, detail="nope")


@app.post("/email/{to}")
async def email(to: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(send_email, to, subject="Hello", password="s3cret")
    return {"queued": to}


@app.post("/slow")
async def slow(background_tasks: BackgroundTasks, seconds: float = 0.5) -> dict[str, bool]:
    background_tasks.add_task(slow_task, seconds)
    return {"ok": True}


@app.post("/slow-async")
async def slow_async(background_tasks: BackgroundTasks, seconds: float = 0.5) -> dict[str, bool]:
    background_tasks.add_task(slow_async_task, seconds)
    return {"ok": True}


@app.get("/stream")
async def stream(background_tasks: BackgroundTasks) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"chunk{number}\n".encode()

    background_tasks.add_task(sync_task, "after stream")
    return StreamingResponse(chunks(), background=background_tasks)


@app.websocket("/ws")
async def websocket(ws: WebSocket, background_tasks: BackgroundTasks) -> None:
    await ws.accept()
    background_tasks.add_task(sync_task, "from websocket")
    await ws.send_text("hi")
    await ws.close()


async def starlette_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("plain", background=BackgroundTask(sync_task, "plain starlette"))


starlette_app = Starlette(routes=[Route("/plain", starlette_endpoint, methods=["POST"])])


@app.get("/missing-both")
async def missing_both(background_tasks: BackgroundTasks) -> None:
    background_tasks.add_task(sync_task, "before 404")
    background_tasks.add_task(async_task, "also before 404")
    raise HTTPException(status_code=404, detail="nope")


async def job_endpoint(request: Request) -> PlainTextResponse:
    task = sync_task if request.path_params["flavour"] == "sync" else async_task
    return PlainTextResponse(
        "queued", background=BackgroundTask(task, request.path_params["label"])
    )


#: A plain Starlette app whose endpoint runs on the loop: no worker thread before the task.
jobs_app = Starlette(routes=[Route("/jobs/{flavour}/{label}", job_endpoint, methods=["POST"])])
