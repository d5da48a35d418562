"""A FastAPI app that sends Celery jobs every way the issue lists, on an in-memory broker."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from fastapi import FastAPI

celery = Celery("shop", broker="memory://", backend="cache+memory://")
celery.conf.task_routes = {"shop.invoices.*": {"queue": "billing"}}

#: What the jobs did, in order.
done: list[str] = []


@celery.task
def send_welcome(user_id: int, template: str = "welcome") -> str:
    done.append(f"welcome {user_id} {template}")
    return f"sent {template} to {user_id}"


@celery.task(name="shop.invoices.render")
def render_invoice(order_id: int, lines: list[Any]) -> int:
    done.append(f"invoice {order_id} {type(lines).__name__}")
    return len(lines)


@celery.task(bind=True, max_retries=3, default_retry_delay=0)
def charge(self: Task, order_id: int, fail_times: int = 0) -> str:
    done.append(f"charge {order_id} try {self.request.retries}")
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError("payment gateway timed out"))
    return f"charged {order_id} on try {self.request.retries}"


@celery.task
def explode(reason: str) -> None:
    raise RuntimeError(reason)


app = FastAPI()


@app.post("/welcome/{user_id}")
def welcome(user_id: int, how: str = "delay") -> dict[str, str]:
    """Send ``send_welcome`` through the enqueue form named by ``how``."""
    if how == "delay":
        result = send_welcome.delay(user_id, template="welcome")
    elif how == "apply_async":
        result = send_welcome.apply_async((user_id,), {"template": "welcome"})
    elif how == "signature":
        result = send_welcome.s(user_id, template="welcome").delay()
    elif how == "signature_apply_async":
        result = send_welcome.signature((user_id,), {"template": "welcome"}).apply_async()
    elif how == "send_task":
        result = celery.send_task(send_welcome.name, (user_id,), {"template": "welcome"})
    else:
        raise ValueError(how)
    return {"task_id": result.id, "state": result.state}


@app.post("/invoices/{order_id}")
async def invoice(order_id: int) -> dict[str, str]:
    """An async endpoint, with options: the job's id is the app's own."""
    result = render_invoice.apply_async(
        (order_id, ("widget", "gadget")), countdown=30, priority=5, task_id=f"invoice-{order_id}"
    )
    return {"task_id": result.id}


@app.post("/charge/{order_id}")
def charge_order(order_id: int, fail_times: int = 0) -> dict[str, str]:
    result = charge.apply_async((order_id,), {"fail_times": fail_times}, queue="payments")
    return {"task_id": result.id, "state": result.state}


@app.post("/explode")
def explode_later() -> dict[str, str]:
    result = explode.delay("disk full")
    return {"task_id": result.id, "state": result.state}


@app.post("/remote/{report}")
def remote(report: str) -> dict[str, str]:
    """A job for a task that only the workers have: sent by name."""
    result = celery.send_task("reports.build", (report,), queue="reports")
    return {"task_id": result.id}
