"""The jobs of ``POST /process/`` in sqlite3: created pending by the endpoint, finished by the task.

Every function here closes its connection in ``finally``. ``with connection:`` is a
transaction (commit, or roll back on error); it does *not* close the connection.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,        -- pending, done or failed
    records INTEGER NOT NULL,
    summary TEXT,                -- JSON, when done
    error TEXT                   -- why it failed
)
"""


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """Open the database; the caller closes the connection in ``finally``."""
    return sqlite3.connect(path, timeout=timeout)


def create_job(path: Path, timeout: float, job_id: str, records: int) -> None:
    connection = connect(path, timeout)
    try:
        with connection:
            connection.execute(SCHEMA)
            connection.execute(
                "INSERT INTO jobs (id, status, records) VALUES (?, 'pending', ?)", (job_id, records)
            )
    finally:
        connection.close()


def finish_job(
    path: Path,
    timeout: float,
    job_id: str,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Mark the job done with its summary, or failed with the error."""
    status = "failed" if error is not None else "done"
    connection = connect(path, timeout)
    try:
        with connection:
            connection.execute(
                "UPDATE jobs SET status = ?, summary = ?, error = ? WHERE id = ?",
                (status, None if summary is None else json.dumps(summary), error, job_id),
            )
    finally:
        connection.close()  # even when the write failed (a locked database, a full disk)


def read_job(path: Path, timeout: float, job_id: str) -> dict[str, Any] | None:
    connection = connect(path, timeout)
    try:
        connection.execute(SCHEMA)
        row = connection.execute(
            "SELECT status, records, summary, error FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    finally:
        connection.close()
    if row is None:
        return None
    status, records, summary, error = row
    return {
        "job_id": job_id,
        "status": status,
        "records": records,
        "summary": None if summary is None else json.loads(summary),
        "error": error,
    }
