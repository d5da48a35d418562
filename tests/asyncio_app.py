"""A FastAPI app that starts asyncio tasks of its own, every way an app can, for the tests."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import BackgroundTasks, FastAPI
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

#: What the tasks did, in order.
sent: list[str] = []
#: Tasks the app keeps a reference to until they are done, as it should.
running: set[asyncio.Task[None]] = set()


async def notify(user_id: int, channel: str = "email") -> None:
    await asyncio.sleep(0)
    sent.append(f"{channel}:{user_id}")


async def explode(reason: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"explode: {reason}")


async def wait_forever(future: asyncio.Future[None]) -> None:
    await future


def keep(task: asyncio.Task[None]) -> None:
    running.add(task)
    task.add_done_callback(running.discard)


async def heartbeat(beats: list[int]) -> None:
    while True:
        beats.append(1)
        await asyncio.sleep(0.01)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    beats: list[int] = []
    task = asyncio.create_task(heartbeat(beats))
    yield
    task.cancel()


class Passthrough(BaseHTTPMiddleware):
    """A middleware whose own anyio task group is Starlette's plumbing, not the app's work."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


app = FastAPI(lifespan=lifespan)
app.add_middleware(Passthrough)


@app.post("/notify/{user_id}")
async def notify_user(user_id: int, how: str = "create_task") -> dict[str, str]:
    loop = asyncio.get_running_loop()
    if how == "create_task":
        keep(asyncio.create_task(notify(user_id)))
    elif how == "loop":
        keep(loop.create_task(notify(user_id, channel="sms")))
    elif how == "ensure_future":
        keep(asyncio.ensure_future(notify(user_id)))  # type: ignore[arg-type]
    elif how == "task_group":
        async with asyncio.TaskGroup() as group:
            group.create_task(notify(user_id))
    elif how == "anyio":
        async with anyio.create_task_group() as group:
            group.start_soon(notify, user_id)
    elif how == "awaited":
        await asyncio.create_task(notify(user_id))
    return {"how": how}


@app.post("/from-background-task/{user_id}")
async def via_background_task(user_id: int, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(notify_later, user_id)
    return {"ok": True}


async def notify_later(user_id: int) -> None:
    await asyncio.create_task(notify(user_id, channel="later"))


@app.post("/explode")
async def explode_unwatched() -> dict[str, bool]:
    keep(asyncio.create_task(explode("unwatched")))
    return {"ok": True}


@app.post("/explode-handled")
async def explode_handled() -> dict[str, str]:
    try:
        await asyncio.create_task(explode("handled"))
    except ValueError as error:
        return {"handled": str(error)}
    return {"handled": "nothing"}


@app.post("/forgotten")
async def forgotten() -> dict[str, bool]:
    """A task nothing keeps: its future is only reachable from the task itself."""
    asyncio.create_task(wait_forever(asyncio.get_running_loop().create_future()))  # noqa: RUF006
    return {"ok": True}


@app.post("/collect")
async def collect() -> dict[str, bool]:
    gc.collect()
    return {"ok": True}


@app.post("/pending")
async def pending() -> dict[str, bool]:
    keep(asyncio.create_task(wait_forever(asyncio.get_running_loop().create_future())))
    return {"ok": True}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"

    return StreamingResponse(chunks())


class EventBus:
    """Per-request objects whose methods become tasks, as in real apps."""

    async def publish(self, event: str, payload: int = 0) -> None:
        await asyncio.sleep(0)
        sent.append(f"published:{event}")

    @classmethod
    async def announce(cls, event: str) -> None:
        await asyncio.sleep(0)
        sent.append(f"announced:{event}")


def make_greeter(greeting: str) -> Callable[[str], Coroutine[Any, Any, None]]:
    """A nested ``async def``: the plugin knows it only by the coroutines it makes."""

    async def greet(name: str) -> None:
        sent.append(f"{greeting}:{name}")

    return greet


greet = make_greeter("hello")


@app.post("/greet/{name}")
async def greet_later(name: str) -> dict[str, bool]:
    await asyncio.create_task(greet(name))
    return {"ok": True}


@app.post("/events")
async def events() -> dict[str, bool]:
    async def audit(entry: str, *extra: str) -> None:
        sent.append(f"audit:{entry}")

    keep(asyncio.create_task(EventBus().publish("user.created", payload=3)))
    keep(asyncio.create_task(EventBus.announce("hello")))
    await asyncio.create_task(audit("signup"))
    return {"ok": True}
