"""Dramatiq messages under the fixture: recorded, run as a worker runs them, held, faulted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dramatiq")

from dramatiq import Message, Worker
from fastapi.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from pytest_bgtasks._jobs import SENT
from tests import dramatiq_app
from tests.dramatiq_app import app, broker, build_report, send_welcome


@pytest.fixture(autouse=True)
def clean_sent() -> Iterator[None]:
    dramatiq_app.sent.clear()
    broker.flush_all()
    yield
    dramatiq_app.sent.clear()
    broker.flush_all()


def test_send_and_send_with_options_are_recorded_with_queue_and_options(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        signup = client.post("/signup/3")
        report = client.post("/reports/4")

    welcome = bgtasks.assert_scheduled_once(send_welcome, 3, greeting="welcome")
    assert (welcome.kind, welcome.name, welcome.queue, welcome.options) == (
        "dramatiq",
        "send_welcome",
        "emails",
        {},
    )
    assert welcome.arguments == {"user_id": 3, "greeting": "welcome", "tags": ("new", "trial")}
    assert str(welcome.request) == "POST /signup/3"
    built = bgtasks.assert_scheduled_once(build_report, 4, fmt="csv")
    assert (built.name, built.queue) == ("reports.build", "default")
    assert built.options == {"delay": 60_000, "max_retries": 2}
    # send() returned the Message, as a broker's enqueue does; nothing was enqueued.
    assert signup.json()["queue"] == "emails"
    assert len(report.json()["message_id"]) == 36
    assert broker.queues["emails"].qsize() == 0


@pytest.mark.parametrize(
    "target",
    [send_welcome, send_welcome.fn, "send_welcome", "tests.dramatiq_app.send_welcome"],
    ids=["actor", "function", "actor name", "module path"],
)
def test_the_actor_the_function_and_the_names_are_targets(
    bgtasks: BackgroundTaskRecorder, target: object
) -> None:
    with TestClient(app) as client:
        client.post("/signup/5")
        client.post("/reports/6")

    call = bgtasks.assert_scheduled_once(target, user_id=5)  # type: ignore[arg-type]
    assert bgtasks.calls_to(target) == [call]  # type: ignore[arg-type]
    assert [c.name for c in bgtasks.calls_to("reports.build")] == ["reports.build"]


def test_eager_runs_the_encoded_message_as_a_worker_would(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        signup = client.post("/signup/8")
        client.post("/reports/9")  # an async actor, with no worker's event loop thread

    welcome, report = dramatiq_app.sent
    # The tuple went through the JSON encoder: the actor got a list, as on a worker; the
    # CurrentMessage middleware gave it the message send() returned.
    assert welcome == ("welcome", 8, "welcome", ["new", "trial"], signup.json()["message_id"])
    assert report == ("report", 9, "csv")
    assert [c.status for c in bgtasks.calls] == ["succeeded", "succeeded"]


def test_an_argument_the_encoder_refuses_fails_send_and_nothing_is_recorded(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        send_welcome.send(1, tags=object())
    bgtasks.assert_not_scheduled()


def test_send_outside_a_request_returns_the_message(bgtasks: BackgroundTaskRecorder) -> None:
    message = send_welcome.send_with_options(args=(11,), max_retries=0)
    assert isinstance(message, Message)
    assert (message.actor_name, message.args, message.options) == (
        "send_welcome",
        (11,),
        {"max_retries": 0},
    )
    call = bgtasks.assert_scheduled_once("send_welcome", 11)
    assert (call.request, call.status, call.options) == (None, "succeeded", {"max_retries": 0})


@pytest.mark.bgtasks(mode="deferred")
def test_deferred_holds_messages_until_run_all(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post("/signup/10")
        client.post("/reports/11")
        assert [c.name for c in bgtasks.held] == ["send_welcome", "reports.build"]
        assert dramatiq_app.sent == []

        ran = bgtasks.run_all()

    assert [c.status for c in ran] == ["succeeded", "succeeded"]
    assert [entry[1] for entry in dramatiq_app.sent] == [10, 11]


def test_a_fault_fails_the_job_and_the_test_expects_it(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.fail("send_welcome", ConnectionError("smtp down"))
    with TestClient(app) as client:
        assert client.post("/signup/12").status_code == 200
        client.post("/reports/13")

    call = bgtasks.assert_failed(send_welcome, ConnectionError, match="smtp down")
    assert call.fault is not None
    assert [entry[0] for entry in dramatiq_app.sent] == ["report"]


@pytest.mark.bgtasks(queues="passthrough")
def test_passthrough_enqueues_on_the_real_broker_for_a_real_worker(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        signup = client.post("/signup/14")
    assert broker.queues["emails"].qsize() == 1
    assert dramatiq_app.sent == []

    worker = Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("emails")
        worker.join()
    finally:
        worker.stop()

    assert dramatiq_app.sent == [
        ("welcome", 14, "welcome", ["new", "trial"], signup.json()["message_id"])
    ]
    call = bgtasks.assert_scheduled_once(send_welcome, 14)
    assert (call.status, call.reason) == ("scheduled", SENT)


TEST_FILE = """
from fastapi.testclient import TestClient
from dramatiq_app import app, send_welcome

def test_unexpected(bgtasks):
    assert TestClient(app).post("/signup/-1").status_code == 200

def test_expected(bgtasks):
    TestClient(app).post("/signup/-2")
    bgtasks.assert_failed(send_welcome, ValueError, match="no user -2")
"""


def test_a_failed_job_errors_the_test_at_teardown_unless_expected(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        dramatiq_app=Path(dramatiq_app.__file__).read_text(encoding="utf-8"),
        test_jobs=TEST_FILE,
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unexpected*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 send_welcome(user_id=-1, greeting='welcome', tags=('new', 'trial'))"
            " (dramatiq task)  failed in *s  POST /signup/-1 (/signup/{user_id})",
            "*ValueError: no user -1",
        ]
    )
