"""taskiq jobs under the fixture: recorded, run through taskiq's receiver, held, faulted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("taskiq")

from fastapi.testclient import TestClient
from taskiq.exceptions import SendTaskError

from pytest_bgtasks import BackgroundTaskRecorder
from pytest_bgtasks._jobs import SENT
from tests import taskiq_app
from tests.taskiq_app import Profile, app, broker, build_report, send_welcome


@pytest.fixture(autouse=True)
def clean_sent() -> Iterator[None]:
    taskiq_app.sent.clear()
    broker.result_backend.results.clear()
    yield
    taskiq_app.sent.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # taskiq runs on asyncio only


def test_kiq_and_the_kicker_are_recorded_with_their_labels(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        signup = client.post("/signup/3")
        report = client.post("/reports/4")

    welcome = bgtasks.assert_scheduled_once(send_welcome, 3, Profile(name="Ada"))
    assert (welcome.kind, welcome.name, welcome.queue) == (
        "taskiq",
        "tests.taskiq_app:send_welcome",
        None,
    )
    assert welcome.func is send_welcome.original_func
    assert str(welcome.request) == "POST /signup/3"
    assert welcome.options == {}
    assert welcome.arguments == {"user_id": 3, "profile": Profile(name="Ada")}  # no dependency
    built = bgtasks.assert_scheduled_once(build_report, 4, fmt="csv")
    assert built.name == "reports.build"
    assert built.arguments == {"report_id": 4, "fmt": "csv"}
    assert built.options == {"retry_on_error": False, "priority": 5, "task_id": "report-4"}
    # kiq() returned taskiq's handle: the app read its id.
    assert report.json() == {"task_id": "report-4"}
    assert len(signup.json()["task_id"]) == 32


@pytest.mark.parametrize(
    "target",
    [
        send_welcome,
        send_welcome.original_func,
        "send_welcome",
        "tests.taskiq_app:send_welcome",
        "tests.taskiq_app.send_welcome",
    ],
    ids=["task", "function", "short name", "task name", "module path"],
)
def test_the_task_the_function_and_the_names_are_targets(
    bgtasks: BackgroundTaskRecorder, target: object
) -> None:
    with TestClient(app) as client:
        client.post("/signup/5")
        client.post("/reports/6")

    call = bgtasks.assert_scheduled_once(target, user_id=5)  # type: ignore[arg-type]
    assert call.name == "tests.taskiq_app:send_welcome"
    assert bgtasks.calls_to(target) == [call]  # type: ignore[arg-type]
    assert [c.name for c in bgtasks.calls_to("reports.build")] == ["reports.build"]


def test_eager_runs_the_message_through_taskiqs_receiver(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post("/signup/8", params={"name": "Grace"})
        report = client.post("/reports/9", params={"wait": True})

    # The model went over the wire as JSON and the receiver cast it back; the dependency was
    # resolved from the message's context, as on a worker.
    ((_, user_id, profile, mailer), built) = taskiq_app.sent
    assert (user_id, profile, mailer) == (
        8,
        Profile(name="Grace"),
        "mailer for " + send_welcome.task_name,
    )
    assert type(profile) is Profile
    assert built == ("report", 9, "csv")
    # The result reached the broker's in-memory result backend: the app's wait_result() saw it.
    assert report.json() == {"task_id": "report-9", "file": "report-9.csv"}
    assert [c.status for c in bgtasks.calls] == ["succeeded", "succeeded"]
    assert bgtasks.calls[1].result == "report-9.csv"


@pytest.mark.anyio
async def test_an_argument_the_serializer_refuses_fails_kiq_and_nothing_is_recorded(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(SendTaskError):
        await build_report.kiq(object())  # type: ignore[arg-type]
    bgtasks.assert_not_scheduled()


def test_a_job_sent_by_name_the_broker_does_not_know_fails_saying_why(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        assert client.post("/by-name/billing.charge").status_code == 200

    call = bgtasks.assert_failed("billing.charge", LookupError, match="no task of that name")
    assert (call.func, call.arguments) == (None, {"0": 7})


@pytest.mark.bgtasks(mode="deferred")
def test_deferred_holds_jobs_until_run_all(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        client.post("/signup/10")
        client.post("/reports/11")
        assert [c.name for c in bgtasks.held] == [send_welcome.task_name, "reports.build"]
        assert taskiq_app.sent == []

        ran = bgtasks.run_all()

    assert [c.status for c in ran] == ["succeeded", "succeeded"]
    assert [entry[1] for entry in taskiq_app.sent] == [10, 11]
    assert "report-11" in broker.result_backend.results


def test_a_fault_fails_the_job_and_the_test_expects_it(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.fail(send_welcome, ConnectionError("smtp down"))
    with TestClient(app) as client:
        assert client.post("/signup/12").status_code == 200
        client.post("/reports/13")

    call = bgtasks.assert_failed(send_welcome, ConnectionError, match="smtp down")
    assert call.fault is not None
    assert [entry[0] for entry in taskiq_app.sent] == ["report"]


@pytest.mark.bgtasks(queues="passthrough")
def test_passthrough_sends_to_the_real_broker_and_only_records(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        # InMemoryBroker runs the job itself; the app waits for its result.
        report = client.post("/reports/14", params={"wait": True})

    assert report.json() == {"task_id": "report-14", "file": "report-14.csv"}
    call = bgtasks.assert_scheduled_once(build_report, 14, fmt="csv")
    assert (call.status, call.reason) == ("scheduled", SENT)


TEST_FILE = """
from fastapi.testclient import TestClient
from taskiq_app import app, send_welcome

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
        taskiq_app=Path(taskiq_app.__file__).read_text(encoding="utf-8"), test_jobs=TEST_FILE
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unexpected*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 taskiq_app:send_welcome(user_id=-1, profile=Profile(*)) (taskiq task)  failed in *s  POST /signup/-1 (/signup/{user_id})",
            "*ValueError: no user -1",
        ]
    )
