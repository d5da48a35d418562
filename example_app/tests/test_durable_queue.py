"""Scenario 12: the remedy for scenario 7, for real: the job goes to a durable Celery broker.

``POST /process/`` runs ``process_data`` as a background task of the process that answered;
``POST /process-durable/`` sends ``process_records`` to Celery's broker (``celery_app.py``).
The first two tests run real processes: uvicorn serving the app answers, then is killed
(SIGKILL) while the job has not run yet. The background task dies with the process; the Celery
job waits in the broker, and a worker started afterwards finishes it. The broker is a sqlite
file (kombu's SQLAlchemy transport), and a real Redis too where ``redis-server`` is installed.

The tests after them write the plugin's assertions once, for both endpoints: in a test, a job
sent to Celery is recorded, run, faulted and held like a background task.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from example_app import db
from example_app.celery_app import process_records
from example_app.settings import Settings
from example_app.tasks import process_data
from example_app.tests.conftest import Processes, serve, start_worker, wait_for
from example_app.tests.test_process import SALES, SUMMARY
from pytest_bgtasks import BackgroundTaskRecorder

ENDPOINTS = [
    pytest.param("/process/", process_data, "background", id="background-task"),
    pytest.param("/process-durable/", process_records, "celery", id="celery"),
]


def job_status(settings: Settings, job_id: str) -> str:
    """The job's status, read from the app's database as the API reads it."""
    job = db.read_job(settings.database_path, settings.database_timeout, job_id)
    assert job is not None, f"no job {job_id}"
    return str(job["status"])


# -- with real processes ------------------------------------------------------------------------


def test_a_crash_loses_the_background_task(
    settings: Settings, environment: dict[str, str], processes: Processes
) -> None:
    # The task waits a minute before it works: the process is killed well inside that wait.
    url = serve(processes, {**environment, "EXAMPLE_PROCESS_DELAY": "60"})
    response = httpx.post(f"{url}/process/", json=SALES, timeout=10)
    assert response.status_code == 202  # "Data is being processed": the promise is made
    job_id = response.json()["job_id"]

    assert processes.kill("uvicorn") == -signal.SIGKILL  # the crash, after the response

    # The task lived only in the killed process: nothing will ever run it, and nothing says so.
    assert job_status(settings, job_id) == "pending"
    assert not settings.error_log_path.exists()


def test_a_crash_loses_nothing_sent_to_celery(
    settings: Settings,
    environment: dict[str, str],
    broker: dict[str, str],
    processes: Processes,
) -> None:
    env = {**environment, **broker}
    url = serve(processes, env)
    response = httpx.post(f"{url}/process-durable/", json=SALES, timeout=10)
    assert response.status_code == 202
    job_id = response.json()["job_id"]

    assert processes.kill("uvicorn") == -signal.SIGKILL  # the same crash
    assert job_status(settings, job_id) == "pending"  # no worker has run it yet

    start_worker(processes, env)  # after the crash: the job waited in the broker

    wait_for(
        lambda: processes.check_alive("worker") and job_status(settings, job_id) == "done",
        "the worker to finish the job",
    )
    job = db.read_job(settings.database_path, settings.database_timeout, job_id)
    assert job is not None and job["summary"] == SUMMARY
    assert "example_app.process_records" in processes.log("worker")


# -- the same assertions for both endpoints -----------------------------------------------------


@pytest.mark.parametrize(("path", "task", "kind"), ENDPOINTS)
def test_the_job_is_scheduled_and_done(
    client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    settings: Settings,
    environment: dict[str, str],
    path: str,
    task: Callable[..., Any],
    kind: str,
) -> None:
    response = client.post(path, json=SALES)

    assert response.status_code == 202
    job_id = response.json()["job_id"]
    call = bgtasks.assert_scheduled_once(task, job_id, SALES)
    assert (call.kind, call.status, call.result) == (kind, "succeeded", SUMMARY)
    assert job_status(settings, job_id) == "done"


@pytest.mark.parametrize(("path", "task", "kind"), ENDPOINTS)
def test_a_database_outage_leaves_the_job_pending(
    client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    settings: Settings,
    environment: dict[str, str],
    path: str,
    task: Callable[..., Any],
    kind: str,
) -> None:
    bgtasks.fail(task, sqlite3.OperationalError("database is locked"))

    response = client.post(path, json=SALES)

    assert response.status_code == 202  # the client is told nothing of it
    bgtasks.assert_failed(task, sqlite3.OperationalError, match="locked")
    assert job_status(settings, response.json()["job_id"]) == "pending"


@pytest.mark.parametrize(("path", "task", "kind"), ENDPOINTS)
@pytest.mark.bgtasks(mode="deferred")
def test_the_job_waits_until_the_test_runs_it(
    client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    settings: Settings,
    environment: dict[str, str],
    path: str,
    task: Callable[..., Any],
    kind: str,
) -> None:
    job_id = client.post(path, json=SALES).json()["job_id"]

    [held] = bgtasks.held
    assert held.kind == kind
    assert job_status(settings, job_id) == "pending"

    bgtasks.run_all(timeout=10)

    bgtasks.assert_all_succeeded()
    assert job_status(settings, job_id) == "done"
