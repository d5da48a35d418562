"""A FastAPI app that enqueues arq jobs by name, with its worker settings beside it.

The pool comes from a dependency (``get_redis``), as arq's docs build it with ``create_pool``;
tests override it with a pool of their own (an ``ArqRedis`` on an unreachable port when jobs
are intercepted, a real redis-server when they pass through).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Retry, func
from fastapi import Depends, FastAPI

sent: list[str] = []


async def send_welcome(ctx: dict[str, Any], user_id: int, template: str = "welcome") -> str:
    sent.append(f"{template}:{user_id}:try{ctx['job_try']}")
    return f"sent {user_id}"


async def charge(ctx: dict[str, Any], amount: int) -> None:
    raise RuntimeError(f"card declined for {amount}")


async def flaky(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 3:
        raise Retry(defer=60)
    sent.append(f"flaky:{ctx['job_id']}:try{ctx['job_try']}:{ctx['greeting']}")
    return "done"


class WorkerSettings:
    functions = (send_welcome, func(charge, name="charge_card", max_tries=1), flaky)
    ctx: ClassVar[dict[str, str]] = {"greeting": "hi"}
    redis_settings = RedisSettings()


async def get_redis() -> AsyncIterator[ArqRedis]:
    redis = await create_pool(RedisSettings())
    try:
        yield redis
    finally:
        await redis.aclose()


app = FastAPI()


@app.post("/signup/{user_id}")
async def signup(user_id: int, redis: ArqRedis = Depends(get_redis)) -> dict[str, Any]:
    job = await redis.enqueue_job("send_welcome", user_id, template="hello", _defer_by=10)
    return {"job_id": None if job is None else job.job_id}


@app.post("/charge/{amount}")
async def charge_card(amount: int, redis: ArqRedis = Depends(get_redis)) -> dict[str, Any]:
    job = await redis.enqueue_job("charge_card", amount, _job_id=f"charge-{amount}")
    return {"job_id": None if job is None else job.job_id}


@app.post("/flaky")
async def start_flaky(redis: ArqRedis = Depends(get_redis)) -> dict[str, Any]:
    job = await redis.enqueue_job("flaky", _queue_name="slow")
    return {"job_id": None if job is None else job.job_id}


@app.post("/report")
async def report(redis: ArqRedis = Depends(get_redis)) -> dict[str, Any]:
    job = await redis.enqueue_job("build_report", 2026)  # its worker lives elsewhere
    return {"job_id": None if job is None else job.job_id}
