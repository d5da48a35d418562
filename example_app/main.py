"""The FastAPI app: an endpoint per kind of background work, settings from ``get_settings``.

Run it with ``uvicorn example_app.main:app``; configure it with ``EXAMPLE_*`` variables
(see ``settings.py``).
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, UploadFile

from example_app import db
from example_app.background import BackgroundJSONResponse
from example_app.celery_app import process_records
from example_app.settings import Settings, get_settings
from example_app.tasks import (
    announce_signup,
    log_error,
    process_csv,
    process_data,
    send_email,
    write_log,
)

SettingsDep = Annotated[Settings, Depends(get_settings)]

app = FastAPI(title="pytest-bgtasks example app")


@app.post("/process/", status_code=202)
def process_endpoint(
    data: list[dict[str, Any]], background_tasks: BackgroundTasks, settings: SettingsDep
) -> BackgroundJSONResponse:
    """Take a list of sales records and total them with pandas in the background, as a job."""
    job_id = _new_job(data, settings)
    background_tasks.add_task(process_data, job_id, data, settings)
    return BackgroundJSONResponse(
        {"message": "Data is being processed", "job_id": job_id}, settings, status_code=202
    )


@app.post("/process-durable/", status_code=202)
def process_durable_endpoint(data: list[dict[str, Any]], settings: SettingsDep) -> dict[str, str]:
    """The same job sent to Celery (``celery_app.py``): a crash of this process loses nothing."""
    job_id = _new_job(data, settings)
    process_records.delay(job_id, data)
    return {"message": "Data is being processed", "job_id": job_id}


def _new_job(data: list[dict[str, Any]], settings: Settings) -> str:
    """A new pending job for ``data``; 413 when there are too many records."""
    if len(data) > settings.max_records:
        raise HTTPException(
            status_code=413,
            detail=f"at most {settings.max_records} records per request, got {len(data)}",
        )
    job_id = uuid4().hex
    db.create_job(settings.database_path, settings.database_timeout, job_id, len(data))
    return job_id


@app.post("/process/upload/", status_code=202)
async def process_upload_endpoint(
    file: UploadFile, background_tasks: BackgroundTasks, settings: SettingsDep
) -> BackgroundJSONResponse:
    """Take a CSV file of sales records and total them in the background, as a job.

    The task gets the file's bytes, read here, not the ``UploadFile``: FastAPI closes uploads
    when the request ends, before the tasks run on FastAPI 0.106 to 0.117, and a job queue
    could not carry an open file either.
    """
    content = await file.read()
    job_id = uuid4().hex
    rows = max(len(content.splitlines()) - 1, 0)  # below the header line
    db.create_job(settings.database_path, settings.database_timeout, job_id, rows)
    background_tasks.add_task(process_csv, job_id, content, settings)
    return BackgroundJSONResponse(
        {"message": "File is being processed", "job_id": job_id}, settings, status_code=202
    )


@app.get("/jobs/{job_id}")
def read_job(job_id: str, settings: SettingsDep) -> dict[str, Any]:
    """A ``/process/`` job: ``pending`` until its task ran, then ``done`` or ``failed``."""
    job = db.read_job(settings.database_path, settings.database_timeout, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"no job {job_id}")
    return job


@app.post("/send-notification/{email}")
async def send_notification(
    email: str, background_tasks: BackgroundTasks, settings: SettingsDep
) -> BackgroundJSONResponse:
    """Log "Notification sent to {email}" after a delay (a slow task), in the background."""
    message = f"Notification sent to {email}"
    background_tasks.add_task(write_log, message, settings.log_path, settings.notify_delay)
    return BackgroundJSONResponse({"message": "Notification sent in the background"}, settings)


@app.post("/email/{to_email}")
async def send_email_route(
    to_email: str, background_tasks: BackgroundTasks, settings: SettingsDep
) -> BackgroundJSONResponse:
    """Send an e-mail through the configured SMTP server, in the background."""
    subject = "Test Email"
    body = "This is a test email sent from FastAPI."
    background_tasks.add_task(send_email, to_email, subject, body, settings)
    return BackgroundJSONResponse({"message": "Email sent in the background"}, settings)


#: The announcements still running. The app keeps a reference to each task until it is done:
#: asyncio itself keeps only a weak one, and may garbage-collect a task mid-flight.
announcing: set[asyncio.Task[None]] = set()


@app.post("/signup/{email}", status_code=201)
async def signup(email: str, settings: SettingsDep) -> dict[str, str]:
    """Announce a sign-up with a fire-and-forget asyncio task; its failure goes to the error log."""
    task = asyncio.create_task(announce_signup(email, settings.log_path))
    announcing.add(task)
    task.add_done_callback(partial(_announced, settings.error_log_path))
    return {"message": f"Welcome, {email}"}


def _announced(error_log_path: Path, task: asyncio.Task[None]) -> None:
    announcing.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        log_error(error_log_path, f"announce_signup: {error!r}")
