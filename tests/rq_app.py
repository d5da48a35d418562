"""A FastAPI app that enqueues RQ jobs, its queue from a dependency tests override.

Its default Redis is whatever ``REDIS_URL`` names: under the plugin no command reaches it, so
tests run where no Redis is (they override the queue only to pass jobs through to a real one).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Depends, FastAPI
from redis import Redis
from rq import Queue, Retry, get_current_job

sent: list[str] = []


def send_welcome(user_id: int, template: str = "welcome") -> str:
    job = get_current_job()
    sent.append(f"{template}:{user_id}:{None if job is None else job.id}")
    return f"sent {user_id}"


async def send_digest(user_id: int) -> str:
    sent.append(f"digest:{user_id}")
    return "digest sent"


def charge(amount: int) -> None:
    raise RuntimeError(f"card declined for {amount}")


def get_queue() -> Queue:
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return Queue("emails", connection=redis)


app = FastAPI()


@app.post("/signup/{user_id}")
def signup(user_id: int, queue: Queue = Depends(get_queue)) -> dict[str, Any]:
    job = queue.enqueue(send_welcome, user_id, template="hello", job_timeout=30)
    return {"job_id": job.id}


@app.post("/digest/{user_id}")
async def digest(user_id: int, queue: Queue = Depends(get_queue)) -> dict[str, Any]:
    job = queue.enqueue_call(
        "tests.rq_app.send_digest", args=(user_id,), job_id=f"digest-{user_id}"
    )
    return {"job_id": job.id}


@app.post("/charge/{amount}")
def charge_card(amount: int, queue: Queue = Depends(get_queue)) -> dict[str, Any]:
    job = queue.enqueue(charge, amount, retry=Retry(max=3))
    return {"job_id": job.id}


@app.post("/remind/{user_id}")
def remind(user_id: int, queue: Queue = Depends(get_queue)) -> dict[str, Any]:
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    queue.enqueue_at(at, send_welcome, user_id, template="reminder")
    queue.enqueue_in(timedelta(hours=1), send_welcome, user_id, template="nudge")
    return {"scheduled": 2}
