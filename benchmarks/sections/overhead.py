"""What a request costs with the plugin: through a TestClient, and with the app called directly."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

from apps import fastapi_app, http_scope, starlette_app
from harness import Pairs, Row, Section, added_row, alternate, alternate_async, ratio_row
from sides import Side, baseline, plugin


@dataclass(frozen=True)
class Sizes:
    block: int  # requests per TestClient round
    pairs: int
    asgi_block: int  # direct calls per round
    asgi_pairs: int


def measure(sizes: Sizes) -> list[Row]:
    rows = []
    for label, app in (("FastAPI", fastapi_app()), ("Starlette", starlette_app())):
        rows.append(
            ratio_row(
                f"overhead, {label} request with 3 tasks (TestClient)",
                "us/request",
                through_client(app, sizes.block, sizes.pairs),
                f"{sizes.pairs} alternating pairs of {sizes.block}-request blocks, one"
                " TestClient portal",
            )
        )
        rows.append(
            added_row(
                f"  same, {label} app called directly (plugin CPU cost)",
                "us/request",
                anyio.run(called_directly, app, sizes.asgi_block, sizes.asgi_pairs),
                f"{sizes.asgi_pairs} pairs of {sizes.asgi_block} ASGI calls on one anyio loop:"
                " no TestClient thread hand-offs, so the plugin's own work stands out",
                at_most=None,
            )
        )
    return rows


def through_client(app: ASGIApp, n: int, pairs: int) -> Pairs:
    """µs per request through one TestClient used as a context manager (one portal)."""
    with TestClient(app) as client:

        def block(side: Side) -> float:
            with side():
                start = time.perf_counter()
                for i in range(n):
                    client.post(f"/work/{i}")
                return (time.perf_counter() - start) / n * 1e6

        return alternate(pairs, lambda: block(plugin), lambda: block(baseline), full_gc=False)


async def called_directly(app: ASGIApp, n: int, pairs: int) -> Pairs:
    """µs per request with the app awaited on this loop, with a minimal receive and send."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    async def block(side: Side) -> float:
        with side():
            start = time.perf_counter()
            for i in range(n):
                await app(http_scope(f"/work/{i}"), receive, send)
            return (time.perf_counter() - start) / n * 1e6

    return await alternate_async(pairs, lambda: block(plugin), lambda: block(baseline))


SECTION = Section(
    name="overhead",
    measure=measure,
    full=Sizes(block=10, pairs=300, asgi_block=50, asgi_pairs=200),
    quick=Sizes(block=10, pairs=20, asgi_block=50, asgi_pairs=20),
)
