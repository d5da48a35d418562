"""The durable version of ``POST /process/``: the job goes to Celery's broker, which keeps it.

A background task lives in the memory of the process that answered; this job lives in the
broker until a worker has done it. Run a worker beside the app::

    celery -A example_app.celery_app worker --pool=solo

The broker comes from ``EXAMPLE_BROKER_URL``, read once at import: by default a sqlite file
through kombu's SQLAlchemy transport (no server to run), or ``redis://127.0.0.1:6379/0``. There
is no result backend: the job stores its result in the app's jobs table, which
``GET /jobs/{job_id}`` reads. The worker reads the rest of its settings (the database path, the
delay) from its own ``EXAMPLE_*`` variables, as a deployed worker reads its environment.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from example_app.settings import Settings, get_settings
from example_app.tasks import process_data

_settings = Settings.from_env()
celery_app = Celery("example_app", broker=_settings.broker_url)
celery_app.conf.update(
    task_ignore_result=True,
    # Acknowledge a job only once it is done: a worker that dies mid-job leaves it in the broker
    # for the next worker, instead of losing it as a killed web process loses its tasks.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    broker_connection_retry_on_startup=True,
)


@celery_app.task(name="example_app.process_records")
def process_records(job_id: str, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``process_data`` on a worker, with the worker's settings; the result goes to the job."""
    return process_data(job_id, records, get_settings())
