"""The apps under measurement: one endpoint that schedules three no-op tasks, two async, one sync.

The FastAPI and the plain Starlette versions do the same work, so their rows compare.
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks as FastAPIBackgroundTasks
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def noop_async(i: int) -> None:
    pass


def noop_sync(i: int) -> None:
    pass


def noop(i: int = 0) -> None:
    pass


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/work/{i}")
    async def work(i: int, background_tasks: FastAPIBackgroundTasks) -> dict[str, int]:
        background_tasks.add_task(noop_async, i)
        background_tasks.add_task(noop_async, i)
        background_tasks.add_task(noop_sync, i)
        return {"i": i}

    return app


def starlette_app() -> Starlette:
    async def work(request: Request) -> PlainTextResponse:
        i = int(request.path_params["i"])
        tasks = BackgroundTasks()
        tasks.add_task(noop_async, i)
        tasks.add_task(noop_async, i)
        tasks.add_task(noop_sync, i)
        return PlainTextResponse("ok", background=tasks)

    return Starlette(routes=[Route("/work/{i}", work, methods=["POST"])])


def http_scope(path: str) -> dict[str, Any]:
    """The ASGI scope of a ``POST path``, for calling an app directly without a client."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }
