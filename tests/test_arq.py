"""arq jobs: recorded at ArqRedis.enqueue_job, run as arq's worker runs them, held, faulted,
passed through to a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip(
    "arq", reason="the queues extra is not installed: pip install -e .[test,queues]"
)
from arq.connections import ArqRedis
from arq.jobs import SerializationError
from arq.worker import Worker
from fastapi.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from pytest_bgtasks._jobs import SENT
from pytest_bgtasks._sources.arq import FunctionNotFound
from tests import arq_app
from tests.arq_app import WorkerSettings, app, charge, flaky, get_redis, send_welcome
from tests.redis_server import free_port, redis_port  # noqa: F401 - a fixture


@pytest.fixture(autouse=True)
def clean_sent() -> Iterator[list[str]]:
    arq_app.sent.clear()
    yield arq_app.sent
    arq_app.sent.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # arq runs on asyncio only


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The app with a pool on a port nothing listens on: any Redis command would fail."""
    port = free_port()
    app.dependency_overrides[get_redis] = lambda: ArqRedis(host="127.0.0.1", port=port)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


def test_an_enqueued_job_is_recorded_and_run_as_the_worker_would(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    job_id = client.post("/signup/7").json()["job_id"]

    call = bgtasks.assert_scheduled_once(send_welcome, 7, template="hello")
    assert bgtasks.assert_scheduled("send_welcome", user_id=7) is call
    assert (call.kind, call.name, call.func, call.queue) == (
        "arq",
        "send_welcome",
        send_welcome,
        "arq:queue",
    )
    assert call.options == {"_defer_by": 10}
    assert call.arguments == {"user_id": 7, "template": "hello"}  # without ctx
    assert str(call.request) == "POST /signup/7"
    assert (call.status, call.result) == ("succeeded", "sent 7")
    assert arq_app.sent == ["hello:7:try1"]
    assert isinstance(job_id, str) and len(job_id) == 32  # arq's Job, held by the app


def test_retry_runs_again_with_the_worker_settings_ctx(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    job_id = client.post("/flaky").json()["job_id"]

    call = bgtasks.assert_scheduled_once(flaky)
    assert (call.queue, call.options, call.status) == ("slow", {"_queue_name": "slow"}, "succeeded")
    assert arq_app.sent == [f"flaky:{job_id}:try3:hi"]


def test_a_failed_job_is_recorded_and_one_job_id_is_one_job(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    assert client.post("/charge/5").json() == {"job_id": "charge-5"}
    assert client.post("/charge/5").json() == {"job_id": None}  # arq refuses the same id

    call = bgtasks.assert_failed("charge_card", RuntimeError, match="card declined for 5")
    assert call.func is charge
    assert bgtasks.assert_scheduled_once(charge, amount=5) is call
    assert call.options == {"_job_id": "charge-5"}


def test_a_name_no_worker_settings_lists_is_recorded_without_a_function(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/report")

    call = bgtasks.assert_failed("build_report", FunctionNotFound, match="no WorkerSettings")
    assert call.func is None
    assert call.arguments == {"0": 2026}
    assert "bgtasks.replace('build_report', substitute)" in str(call.exception)


@pytest.mark.bgtasks(mode="deferred")
def test_deferred_mode_holds_jobs_until_run_all(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/signup/8")
    assert [call.name for call in bgtasks.held] == ["send_welcome"]
    assert arq_app.sent == []

    (call,) = bgtasks.run_all()
    assert call.status == "succeeded"
    assert arq_app.sent == ["hello:8:try1"]


def test_a_fault_applies_to_jobs_by_name_and_by_function(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    bgtasks.fail("send_welcome", ConnectionError("smtp down"), times=1)
    bgtasks.replace(send_welcome, lambda user_id, template: f"stub {user_id}")
    client.post("/signup/1")
    client.post("/signup/2")

    first, second = bgtasks.calls
    assert (first.status, type(first.exception), first.expected) == (
        "failed",
        ConnectionError,
        True,
    )
    assert (second.status, second.result) == ("succeeded", "stub 2")
    assert arq_app.sent == []


@pytest.mark.anyio
async def test_what_arq_cannot_serialize_fails_in_the_app(bgtasks: BackgroundTaskRecorder) -> None:
    redis = ArqRedis(host="127.0.0.1", port=free_port())
    with pytest.raises(SerializationError, match='unable to serialize job "send_welcome"'):
        await redis.enqueue_job("send_welcome", lambda: 1)
    assert bgtasks.calls == []


@pytest.mark.anyio
@pytest.mark.bgtasks(queues="passthrough")
async def test_passthrough_sends_the_job_to_redis_for_a_real_worker(
    bgtasks: BackgroundTaskRecorder,
    redis_port: int,  # noqa: F811
) -> None:
    pool = ArqRedis(host="127.0.0.1", port=redis_port)
    await pool.flushdb()

    async def real_pool() -> AsyncIterator[ArqRedis]:
        yield pool

    app.dependency_overrides[get_redis] = real_pool
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            job_id = (await http.post("/signup/9")).json()["job_id"]
    finally:
        app.dependency_overrides.clear()

    call = bgtasks.assert_scheduled_once(send_welcome, 9, template="hello")
    assert (call.status, call.reason) == ("scheduled", SENT)
    (queued,) = await pool.queued_jobs()
    assert (queued.function, queued.args) == ("send_welcome", (9,))
    assert await pool.exists(f"arq:job:{job_id}")

    worker = Worker(
        functions=WorkerSettings.functions, redis_pool=pool, burst=True, handle_signals=False,
        poll_delay=0,
    )  # fmt: skip
    await worker.main()
    assert arq_app.sent == ["hello:9:try1"]
    await pool.aclose()


def test_an_unexpected_job_failure_errors_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(arq_app=Path(arq_app.__file__).read_text(encoding="utf-8"))
    pytester.makepyfile(
        """
        import pytest
        from arq.connections import ArqRedis
        from fastapi.testclient import TestClient
        from arq_app import app, charge, get_redis

        @pytest.fixture
        def client():
            app.dependency_overrides[get_redis] = lambda: ArqRedis(port=1)
            with TestClient(app) as client:
                yield client
            app.dependency_overrides.clear()

        def test_unexpected(bgtasks, client):
            client.post("/charge/3")

        def test_expected(bgtasks, client):
            client.post("/charge/4")
            bgtasks.assert_failed(charge, RuntimeError)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unexpected*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 charge_card(amount=3) (arq task)  failed in *  POST /charge/3 (/charge/{amount})",
            "*RuntimeError: card declined for 3",
        ]
    )
