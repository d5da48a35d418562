"""RQ jobs: recorded before any Redis command, run as RQ runs them in process, held, faulted,
passed through to a real Redis."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytest.importorskip("rq", reason="the queues extra is not installed: pip install -e .[test,queues]")
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue, Retry, SimpleWorker

from pytest_bgtasks import BackgroundTaskRecorder
from pytest_bgtasks._jobs import SENT
from tests import rq_app
from tests.redis_server import free_port, redis_port  # noqa: F401 - a fixture
from tests.rq_app import app, charge, get_queue, send_digest, send_welcome


@pytest.fixture(autouse=True)
def clean_sent() -> Iterator[list[str]]:
    rq_app.sent.clear()
    yield rq_app.sent
    rq_app.sent.clear()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app as it is, its Redis on a port nothing listens on: any command would fail."""
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(app) as client:
        yield client


def test_an_enqueued_job_is_recorded_and_performed_as_rq_would(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    job_id = client.post("/signup/7").json()["job_id"]

    call = bgtasks.assert_scheduled_once(send_welcome, 7, template="hello")
    assert bgtasks.assert_scheduled("send_welcome", user_id=7) is call
    assert bgtasks.assert_scheduled("tests.rq_app.send_welcome") is call
    assert (call.kind, call.name, call.func, call.queue) == (
        "rq", "tests.rq_app.send_welcome", send_welcome, "emails",
    )  # fmt: skip
    assert call.options == {"timeout": 30}
    assert call.arguments == {"user_id": 7, "template": "hello"}
    assert str(call.request) == "POST /signup/7"
    assert (call.status, call.result) == ("succeeded", "sent 7")
    assert rq_app.sent == [f"hello:7:{job_id}"]  # get_current_job() answers in the job


def test_an_async_job_named_by_string_from_an_async_endpoint(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    assert client.post("/digest/3").json() == {"job_id": "digest-3"}

    call = bgtasks.assert_scheduled_once(send_digest, user_id=3)
    assert call.options == {"job_id": "digest-3"}
    assert (call.status, call.result) == ("succeeded", "digest sent")
    assert rq_app.sent == ["digest:3"]


def test_scheduled_jobs_record_when_they_were_due(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/remind/4")

    at, later = bgtasks.calls_to(send_welcome)
    assert at.options == {"at": datetime(2030, 1, 1, tzinfo=timezone.utc)}
    assert at.arguments == {"user_id": 4, "template": "reminder"}
    assert set(later.options) == {"at"} and later.arguments["template"] == "nudge"
    assert [call.status for call in (at, later)] == ["succeeded", "succeeded"]


def test_a_failed_job_is_recorded_with_its_options(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/charge/5")

    call = bgtasks.assert_failed(charge, RuntimeError, match="card declined for 5")
    assert isinstance(call.options["retry"], Retry)


@pytest.mark.bgtasks(mode="deferred")
def test_deferred_mode_holds_jobs_until_run_all(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/signup/8")
    client.post("/digest/8")
    assert [call.name for call in bgtasks.held] == [
        "tests.rq_app.send_welcome",
        "tests.rq_app.send_digest",
    ]
    assert rq_app.sent == []

    assert [call.status for call in bgtasks.run_all()] == ["succeeded", "succeeded"]
    assert rq_app.sent[1:] == ["digest:8"]


def test_a_fault_applies_by_name(bgtasks: BackgroundTaskRecorder, client: TestClient) -> None:
    bgtasks.fail("send_welcome", ConnectionError("smtp down"))
    client.post("/signup/1")

    call = bgtasks.assert_failed(send_welcome, ConnectionError)
    assert call.fault is not None
    assert rq_app.sent == []


def test_what_rq_cannot_serialize_fails_in_the_app(bgtasks: BackgroundTaskRecorder) -> None:
    queue = Queue(connection=Redis(port=free_port()))
    with pytest.raises(TypeError, match="pickle"):
        queue.enqueue(send_welcome, threading.Lock())
    assert bgtasks.calls == []


@pytest.mark.bgtasks(queues="passthrough")
def test_passthrough_sends_the_job_to_redis_for_a_real_worker(
    bgtasks: BackgroundTaskRecorder,
    redis_port: int,  # noqa: F811
) -> None:
    redis = Redis(port=redis_port)
    redis.flushdb()
    queue = Queue("emails", connection=redis)
    # FastAPI caches overrides for the process: let the one left there hold no Redis client,
    # which redis-py would close during interpreter shut-down, too late to do it cleanly.
    overriding = [queue]
    app.dependency_overrides[get_queue] = lambda: overriding[0]
    try:
        with TestClient(app) as client:
            job_id = client.post("/signup/9").json()["job_id"]
    finally:
        app.dependency_overrides.clear()
        overriding.clear()

    call = bgtasks.assert_scheduled_once(send_welcome, 9, template="hello")
    assert (call.status, call.reason) == ("scheduled", SENT)
    assert queue.job_ids == [job_id]

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([queue], connection=redis).work(burst=True)
    finally:  # the worker leaves its own handlers behind, which keep it (and Redis) alive
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert rq_app.sent == [f"hello:9:{job_id}"]
    redis.close()


def test_an_unexpected_job_failure_errors_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(rq_app=Path(rq_app.__file__).read_text(encoding="utf-8"))
    pytester.makepyfile(
        """
        from fastapi.testclient import TestClient
        from rq_app import app, charge

        def test_unexpected(bgtasks):
            TestClient(app).post("/charge/3")

        def test_expected(bgtasks):
            TestClient(app).post("/charge/4")
            bgtasks.assert_failed(charge, RuntimeError)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unexpected*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 rq_app.charge(amount=3) (rq task)  failed in *  POST /charge/3 (/charge/{amount})",
            "*RuntimeError: card declined for 3",
        ]
    )
