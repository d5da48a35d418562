"""Pairs of identical tests of a few requests each: one side uses the ``bgtasks`` fixture.

``$BGTASKS_BENCH_PAIRS`` sets the number of pairs, ``$BGTASKS_BENCH_REQUESTS`` the requests in
each test. A pair's two tests run back to back, alternating which side goes first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient

PAIRS = int(os.environ.get("BGTASKS_BENCH_PAIRS", "150"))
REQUESTS = int(os.environ.get("BGTASKS_BENCH_REQUESTS", "10"))

app = FastAPI()


async def noop_async(i: int) -> None:
    pass


def noop_sync(i: int) -> None:
    pass


@app.post("/work/{i}")
async def work(i: int, background_tasks: BackgroundTasks) -> dict[str, int]:
    background_tasks.add_task(noop_async, i)
    background_tasks.add_task(noop_async, i)
    background_tasks.add_task(noop_sync, i)
    return {"i": i}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


SIDES = [
    (n, side)
    for n in range(PAIRS)
    for side in (("plugin", "baseline") if n % 2 == 0 else ("baseline", "plugin"))
]


@pytest.mark.parametrize(("n", "maybe_bgtasks"), SIDES, indirect=["maybe_bgtasks"])
def test_requests(client: TestClient, n: int, maybe_bgtasks: None) -> None:
    for i in range(REQUESTS):
        assert client.post(f"/work/{i}").status_code == 200
