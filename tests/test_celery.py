"""Celery jobs: every enqueue form recorded, run through Celery's own path, held, faulted, passed on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery")

from celery.local import PromiseProxy
from celery.result import AsyncResult, EagerResult
from fastapi.testclient import TestClient
from kombu.exceptions import EncodeError

from pytest_bgtasks import BackgroundTaskRecorder
from pytest_bgtasks._sources import celery as celery_source
from tests import celery_app
from tests.celery_app import app, celery, charge, done, render_invoice, send_welcome

FORMS = ["delay", "apply_async", "signature", "signature_apply_async", "send_task"]


@pytest.fixture(autouse=True)
def clean_done() -> Iterator[list[str]]:
    done.clear()
    yield done
    done.clear()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def celery_app_source() -> str:
    return Path(celery_app.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize("how", FORMS)
def test_every_enqueue_form_is_recorded_and_run_as_a_worker_would(
    bgtasks: BackgroundTaskRecorder, client: TestClient, how: str
) -> None:
    response = client.post("/welcome/3", params={"how": how})

    call = bgtasks.assert_scheduled_once(send_welcome, 3, template="welcome")
    assert (call.kind, call.name, call.status) == ("celery", send_welcome.name, "succeeded")
    assert call.func is send_welcome.run  # the plain function
    assert call.arguments == {"user_id": 3, "template": "welcome"}
    assert (call.queue, call.options) == ("celery", {})
    assert call.request is not None and str(call.request) == "POST /welcome/3"
    assert call.result == "sent welcome to 3"
    assert done == ["welcome 3 welcome"]
    # The app got what Celery's eager run returns: the job's id and its outcome.
    assert response.json() == {"task_id": response.json()["task_id"], "state": "SUCCESS"}


def test_the_task_its_function_and_its_names_are_all_targets(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/welcome/4")

    assert isinstance(send_welcome, PromiseProxy)  # what @celery.task gives a module
    for target in (
        send_welcome,
        send_welcome.run,
        "send_welcome",
        "tests.celery_app.send_welcome",
    ):
        bgtasks.assert_scheduled_once(target, user_id=4)
    assert bgtasks.calls_to(charge) == []


def test_options_queue_and_the_apps_own_job_id(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    response = client.post("/invoices/7")

    call = bgtasks.assert_scheduled_once(render_invoice, 7)
    assert response.json() == {"task_id": "invoice-7"}
    assert call.options == {"task_id": "invoice-7", "countdown": 30, "priority": 5}
    assert call.queue == "billing"  # from the app's task_routes, as Celery routes it
    assert call.name == "shop.invoices.render"
    bgtasks.assert_scheduled("shop.invoices.render", 7)
    # The arguments are recorded as the app gave them, and reach the task as a worker gets them:
    # through the JSON message, where a tuple becomes a list.
    assert call.arguments["lines"] == ("widget", "gadget")
    assert done == ["invoice 7 list"]


def test_an_argument_the_serializer_refuses_fails_the_enqueue_as_celery_does(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(EncodeError, match="not JSON serializable"):
        send_welcome.delay(object())
    with pytest.raises(TypeError, match="argument"):  # Celery's own check of the arguments
        send_welcome.delay(1, 2, 3)
    bgtasks.assert_not_scheduled()


def test_the_serializer_an_enqueue_names_is_the_one_used(bgtasks: BackgroundTaskRecorder) -> None:
    sentinel = object()  # json refuses it, pickle carries it (and the worker gets a copy)

    result = send_welcome.apply_async((5,), {"template": sentinel}, serializer="pickle")

    assert result.state == "SUCCESS"
    (call,) = bgtasks.calls_to(send_welcome)
    assert call.status == "succeeded" and call.kwargs == {"template": sentinel}
    assert len(done) == 1 and done[0].startswith("welcome 5 <object object at ")


def test_bind_and_retries_run_through_celery(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    response = client.post("/charge/9", params={"fail_times": 2})

    call = bgtasks.assert_scheduled_once(charge, 9, fail_times=2)
    assert call.arguments == {"order_id": 9, "fail_times": 2}  # no `self`
    assert (call.queue, call.options) == ("payments", {"queue": "payments"})
    assert done == ["charge 9 try 0", "charge 9 try 1", "charge 9 try 2"]
    assert call.status == "succeeded" and call.result == "charged 9 on try 2"
    assert response.json()["state"] == "SUCCESS"


def test_a_job_that_fails_after_its_retries_is_recorded_failed(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    response = client.post("/charge/9", params={"fail_times": 10})

    assert response.json()["state"] == "FAILURE"  # the enqueue itself never raises
    assert len(done) == 4  # the first try and max_retries=3
    bgtasks.assert_failed(charge, ConnectionError, match="gateway timed out")


def test_deferred_holds_the_job_and_returns_a_pending_result(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    with bgtasks.deferred():
        response = client.post("/welcome/5", params={"how": "apply_async"})
        result = send_welcome.delay(6)

    assert response.json()["state"] == "PENDING"
    assert isinstance(result, AsyncResult) and not isinstance(result, EagerResult)
    assert [call.arguments["user_id"] for call in bgtasks.held] == [5, 6]
    assert done == []

    ran = bgtasks.run_all(timeout=5)

    assert [call.status for call in ran] == ["succeeded", "succeeded"]
    assert done == ["welcome 5 welcome", "welcome 6 welcome"]


def test_discarded_jobs_never_run(bgtasks: BackgroundTaskRecorder) -> None:
    with bgtasks.deferred():
        send_welcome.delay(5)
    [lost] = bgtasks.discard()
    assert lost.status == "discarded" and done == []


def test_faults_apply_to_jobs(bgtasks: BackgroundTaskRecorder, client: TestClient) -> None:
    bgtasks.fail("send_welcome", ConnectionError("broker gone"), times=1)
    bgtasks.replace(render_invoice, lambda order_id, lines: f"stand-in {order_id}")

    first = client.post("/welcome/1").json()
    second = client.post("/welcome/2").json()
    client.post("/invoices/3")

    assert (first["state"], second["state"]) == ("FAILURE", "SUCCESS")
    failed = bgtasks.assert_failed(send_welcome, ConnectionError)
    assert failed.fault == "fail('send_welcome', ConnectionError('broker gone'))"
    assert bgtasks.assert_scheduled(render_invoice, 3).result == "stand-in 3"
    assert done == ["welcome 2 welcome"]


def test_a_failure_the_test_injected_into_a_job_is_expected(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    bgtasks.fail(send_welcome, ConnectionError("smtp down"))

    assert client.post("/welcome/1").json()["state"] == "FAILURE"

    (call,) = bgtasks.calls_to(send_welcome)
    assert (call.status, call.expected) == ("failed", True), "no assert_failed needed"


def test_a_hang_on_a_job_its_enqueue_waits_for_is_refused(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.hang(send_welcome)

    with pytest.raises(
        RuntimeError, match=r"is a queue's job run in eager mode inside the app's enqueue call"
    ):
        send_welcome.delay(1)

    bgtasks.assert_failed(send_welcome, RuntimeError)  # the refusal, on the record too
    assert done == []


def test_a_job_for_a_task_this_process_lacks(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    client.post("/remote/weekly")

    call = bgtasks.assert_scheduled_once("reports.build", "weekly")
    assert (call.func, call.queue, call.full_name) == (None, "reports", "reports.build")
    failed = bgtasks.assert_failed("reports.build", celery_source.UnregisteredTask)
    assert "bgtasks.replace('reports.build', substitute)" in str(failed.exception)


def test_a_stand_in_runs_a_job_for_a_task_this_process_lacks(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    bgtasks.replace("reports.build", lambda report: f"built {report}")

    response = client.post("/remote/weekly")

    call = bgtasks.assert_scheduled_once("reports.build", "weekly")
    assert call.status == "succeeded" and call.result == "built weekly"
    assert response.json()["task_id"]


def test_a_job_enqueued_by_a_job_is_recorded_too(bgtasks: BackgroundTaskRecorder) -> None:
    result = send_welcome.apply_async((8,), link=render_invoice.s(["line"]))

    assert result.get() == "sent welcome to 8"
    # Celery runs the link with the parent's result first: render_invoice(result, ["line"]).
    follow_up = bgtasks.assert_scheduled_once(render_invoice, "sent welcome to 8", ["line"])
    assert follow_up.status == "succeeded"
    assert done == ["welcome 8 welcome", "invoice sent welcome to 8 list"]


@pytest.mark.bgtasks(queues="passthrough")
def test_passthrough_sends_to_the_real_broker(
    bgtasks: BackgroundTaskRecorder, client: TestClient
) -> None:
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue("celery")
        try:
            queue.clear()
            client.post("/welcome/11")
            message = queue.get(timeout=5)
            message.ack()
        finally:
            queue.close()

    assert message.headers["task"] == send_welcome.name
    call = bgtasks.assert_scheduled_once(send_welcome, 11)
    assert call.status == "scheduled"  # a worker runs it, not the test: never judged
    assert call.reason is not None and "passthrough" in call.reason
    assert done == []


def test_a_failed_job_fails_the_test_with_its_kind_shown(
    pytester: pytest.Pytester, celery_app_source: str
) -> None:
    pytester.makepyfile(celery_app=celery_app_source)
    pytester.makepyfile(
        """
        from fastapi.testclient import TestClient
        from celery_app import app, explode

        def test_unexpected(bgtasks):
            TestClient(app).post("/explode")

        def test_expected(bgtasks):
            TestClient(app).post("/explode")
            bgtasks.assert_failed(explode, RuntimeError, match="disk full")

        def test_scheduled(bgtasks):
            TestClient(app).post("/welcome/1")
            bgtasks.assert_scheduled("nothing_like_it")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)

    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-bgtasks: 1 background task problem(s):",
            "  #1 celery_app.explode(reason='disk full') (celery task)  failed in *s"
            "  POST /explode*",
            "      Traceback (most recent call last):",  # Celery's own frames trimmed
            '        File "*celery_app.py", line *, in explode',
            "          raise RuntimeError(reason)",
            "      RuntimeError: disk full",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected a background task nothing_like_it() to be scheduled.",
            "E       Scheduled tasks (1):",
            "E       #1 celery_app.send_welcome(user_id=1, template='welcome') (celery task)"
            "  succeeded in *s  POST /welcome/1*",
        ]
    )


@pytest.mark.bgtasks(mode="deferred")
def test_a_hanging_job_is_bounded_by_run_all(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.hang(send_welcome)
    send_welcome.delay(1)

    with pytest.raises(TimeoutError, match="send_welcome"):
        bgtasks.run_all(timeout=0.5)
    assert done == []
