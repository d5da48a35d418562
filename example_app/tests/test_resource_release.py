"""Scenario 5: a task closes its sqlite3 connection in ``finally``, even on failure, and
when the server stops while it runs.

The task of ``POST /process/`` stores its result through ``db.finish_job``, which opens a
connection and closes it in ``finally``. The ``connections`` fixture keeps every connection
the app opens, so the tests can check each one is closed afterwards.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from example_app import db
from example_app.settings import Settings
from example_app.tasks import process_data
from example_app.tests.test_process import SALES
from pytest_bgtasks import BackgroundTaskRecorder


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every sqlite3 connection the app opens during the test, in order."""
    opened: list[sqlite3.Connection] = []
    real_connect = db.connect

    def connect(path: Path, timeout: float) -> sqlite3.Connection:
        connection = real_connect(path, timeout)
        opened.append(connection)
        return connection

    monkeypatch.setattr(db, "connect", connect)  # undone by monkeypatch after the test
    return opened


def is_closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.total_changes  # noqa: B018 - unlike execute(), allowed from any thread
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return True
    return False


def test_connections_are_closed_after_the_task(
    client: TestClient, bgtasks: BackgroundTaskRecorder, connections: list[sqlite3.Connection]
) -> None:
    client.post("/process/", json=SALES)

    bgtasks.assert_all_succeeded()
    assert len(connections) == 2  # the endpoint's (create the job), the task's (store it)
    assert all(is_closed(connection) for connection in connections)


def test_connection_is_closed_when_the_task_fails(
    client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    settings: Settings,
    connections: list[sqlite3.Connection],
) -> None:
    # Make the database refuse the task's write (the endpoint only inserts, the task updates).
    setup = sqlite3.connect(settings.database_path)
    try:
        setup.execute(db.SCHEMA)
        setup.execute(
            "CREATE TRIGGER no_updates BEFORE UPDATE ON jobs"
            " BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"
        )
    finally:
        setup.close()

    response = client.post("/process/", json=SALES)

    assert response.status_code == 202
    call = bgtasks.assert_failed(process_data, sqlite3.IntegrityError, match="disk quota exceeded")
    task_connection = connections[-1]
    assert is_closed(task_connection)  # closed by finally, though the UPDATE raised
    assert all(is_closed(connection) for connection in connections)
    assert call.traceback is not None and "finish_job" in call.traceback
    assert "process_data: IntegrityError: disk quota exceeded" in (
        settings.error_log_path.read_text()
    )


def test_connection_is_closed_when_the_server_stops_while_the_task_waits_on_the_database(
    live_server: str,
    bgtasks: BackgroundTaskRecorder,
    configure: Callable[..., Settings],
    connections: list[sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure(database_timeout=30.0)  # the task waits for the lock, not an error
    other_writer = sqlite3.connect(
        settings.database_path, isolation_level=None, check_same_thread=False
    )
    task_waits = threading.Event()
    recording_connect = db.connect  # the connections fixture's

    def connect(path: Path, timeout: float) -> sqlite3.Connection:
        connection = recording_connect(path, timeout)
        if len(connections) == 2:  # the task's: another writer takes the database first
            other_writer.execute("BEGIN EXCLUSIVE")
            task_waits.set()
        return connection

    monkeypatch.setattr(db, "connect", connect)
    response = httpx.post(f"{live_server}/process/", json=SALES, timeout=10)
    assert response.status_code == 202
    assert task_waits.wait(30)

    # The server stops now: a sync task runs in a worker thread, which nothing can cancel.
    [call] = bgtasks.shutdown(grace=0)

    assert call.func is process_data and call.status == "running"
    assert call.reason is not None and "a thread cannot be cancelled" in call.reason
    other_writer.execute("ROLLBACK")  # the other writer lets go: the task goes on, and ends
    other_writer.close()
    bgtasks.wait(timeout=30)
    assert call.status == "succeeded"
    assert len(connections) == 2 and all(is_closed(connection) for connection in connections)
    job = db.read_job(settings.database_path, 5, response.json()["job_id"])
    assert job is not None and job["status"] == "done"
