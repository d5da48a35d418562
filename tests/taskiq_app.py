"""A FastAPI app that sends taskiq jobs, for the taskiq source's tests.

The broker is taskiq's ``InMemoryBroker``: with the plugin intercepting nothing reaches its
``kick``; with ``queues="passthrough"`` it is the real broker, running jobs as its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel
from taskiq import Context, InMemoryBroker, TaskiqDepends
from taskiq.kicker import AsyncKicker

broker = InMemoryBroker()
#: What the jobs did, in order.
sent: list[Any] = []


class Profile(BaseModel):
    name: str
    plan: str = "free"


def sender(context: Annotated[Context, TaskiqDepends()]) -> str:
    """A taskiq dependency: only a receiver running the message can provide it."""
    return f"mailer for {context.message.task_name}"


@broker.task
async def send_welcome(
    user_id: int, profile: Profile, mailer: Annotated[str, TaskiqDepends(sender)]
) -> str:
    if user_id < 0:
        raise ValueError(f"no user {user_id}")
    sent.append(("welcome", user_id, profile, mailer))
    return f"welcomed {profile.name}"


@broker.task(task_name="reports.build", retry_on_error=False)
def build_report(report_id: int, *, fmt: str = "pdf") -> str:
    """A sync job: the receiver runs it in its executor."""
    sent.append(("report", report_id, fmt))
    return f"report-{report_id}.{fmt}"


app = FastAPI()


@app.post("/signup/{user_id}")
async def signup(user_id: int, name: str = "Ada") -> dict[str, Any]:
    handle = await send_welcome.kiq(user_id, Profile(name=name))
    return {"task_id": handle.task_id}


@app.post("/reports/{report_id}")
async def report(report_id: int, wait: bool = False) -> dict[str, Any]:
    handle = (
        await build_report.kicker()
        .with_labels(priority=5)
        .with_task_id(f"report-{report_id}")
        .kiq(report_id, fmt="csv")
    )
    if not wait:
        return {"task_id": handle.task_id}
    result = await handle.wait_result(timeout=5)
    return {"task_id": handle.task_id, "file": result.return_value}


@app.post("/by-name/{task_name}")
async def by_name(task_name: str) -> dict[str, Any]:
    """A job sent by name, as a service sends a job whose code lives in the workers."""
    handle = await AsyncKicker(task_name, broker, {}).kiq(7)
    return {"task_id": handle.task_id}
