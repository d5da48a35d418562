"""A FastAPI app that sends Dramatiq messages, for the Dramatiq source's tests.

The broker is Dramatiq's ``StubBroker``, its testing broker: with the plugin intercepting,
nothing is enqueued on it; with ``queues="passthrough"`` a real ``Worker`` runs its messages.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from fastapi import FastAPI

broker = StubBroker()
broker.add_middleware(CurrentMessage())
#: What the actors did, in order.
sent: list[Any] = []


@dramatiq.actor(broker=broker, queue_name="emails", max_retries=0)
def send_welcome(user_id: int, greeting: str = "hi", tags: Any = ()) -> None:
    if user_id < 0:
        raise ValueError(f"no user {user_id}")
    message = CurrentMessage.get_current_message()
    sent.append(("welcome", user_id, greeting, tags, message and message.message_id))


@dramatiq.actor(broker=broker, actor_name="reports.build", max_retries=0)
async def build_report(report_id: int, fmt: str = "pdf") -> None:
    sent.append(("report", report_id, fmt))


app = FastAPI()


@app.post("/signup/{user_id}")
def signup(user_id: int) -> dict[str, Any]:
    message = send_welcome.send(user_id, greeting="welcome", tags=("new", "trial"))
    return {"message_id": message.message_id, "queue": message.queue_name}


@app.post("/reports/{report_id}")
async def report(report_id: int) -> dict[str, Any]:
    message = build_report.send_with_options(
        args=(report_id,), kwargs={"fmt": "csv"}, delay=60_000, max_retries=2
    )
    return {"message_id": message.message_id}
