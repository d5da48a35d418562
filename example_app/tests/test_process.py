"""Scenario 1: ``POST /process/`` summarizes records with pandas in the background."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import process_data
from pytest_bgtasks import BackgroundTaskRecorder

SALES = [
    {"region": "north", "product": "tea", "quantity": 3, "unit_price": 2.5},
    {"region": "south", "product": "tea", "quantity": 1, "unit_price": 2.5},
    {"region": "north", "product": "coffee", "quantity": 2, "unit_price": 4.0},
    {"region": "east", "product": "coffee", "quantity": "5", "unit_price": "4"},  # numeric text
]
#: Worked out by hand: revenue = quantity x unit_price, summed per region.
SUMMARY = {
    "records": 4,
    "total_revenue": 38.0,
    "by_region": {
        "east": {"orders": 1, "quantity": 5.0, "revenue": 20.0},
        "north": {"orders": 2, "quantity": 5.0, "revenue": 15.5},
        "south": {"orders": 1, "quantity": 1.0, "revenue": 2.5},
    },
}


def test_records_are_summarized_in_the_background(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    response = client.post("/process/", json=SALES)

    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.json() == {"message": "Data is being processed", "job_id": job_id}
    call = bgtasks.assert_scheduled_once(process_data, job_id, SALES)
    assert call.status == "succeeded"
    assert call.result == SUMMARY
    # What the user sees: the job's result, read back through the API.
    job = client.get(f"/jobs/{job_id}").json()
    assert job == {
        "job_id": job_id,
        "status": "done",
        "records": 4,
        "summary": SUMMARY,
        "error": None,
    }
    assert not settings.error_log_path.exists()


@pytest.mark.parametrize(
    ("records", "error"),
    [
        pytest.param(
            [{"region": "north", "quantity": 1}],
            "missing column(s): unit_price",
            id="missing-column",
        ),
        pytest.param(
            [SALES[0], {"region": "south", "quantity": "three", "unit_price": 2}],
            "record(s) 1: need a region, a quantity >= 0 and a unit_price, as numbers",
            id="not-a-number",
        ),
        pytest.param([], "no records to process", id="empty"),
    ],
)
def test_bad_data_is_logged_and_stored_not_crashed(
    client: TestClient,
    bgtasks: BackgroundTaskRecorder,
    settings: Settings,
    records: list[dict[str, Any]],
    error: str,
) -> None:
    job_id = client.post("/process/", json=records).json()["job_id"]

    # The task handled the bad data: it ended normally (nothing for strict mode to report) ...
    call = bgtasks.assert_scheduled_once(process_data, job_id, records)
    assert call.status == "succeeded"
    assert call.result is None
    # ... and said why, in the job and in the error log.
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"] == error
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith(f"Error in background task process_data: job {job_id}: {error}")


def test_too_many_records_are_refused_before_any_task(
    client: TestClient, bgtasks: BackgroundTaskRecorder, configure: Callable[..., Settings]
) -> None:
    configure(max_records=3)

    response = client.post("/process/", json=SALES)

    assert response.status_code == 413
    assert response.json() == {"detail": "at most 3 records per request, got 4"}
    bgtasks.assert_not_scheduled()


def test_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/jobs/nope").status_code == 404
