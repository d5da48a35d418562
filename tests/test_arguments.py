"""``call.arguments`` and how tasks are shown: odd signatures, mounted apps, held tasks, frames."""

from __future__ import annotations

from typing import Any

import numpy
import pandas
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder


def notify(user: str, channel: str = "email", **extra: Any) -> None: ...


def one_argument(value: int) -> None: ...


def app_scheduling(func: Any, *args: Any, **kwargs: Any) -> FastAPI:
    """An app whose ``POST /`` schedules ``func(*args, **kwargs)``."""
    scheduling = FastAPI()

    @scheduling.post("/")
    async def endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(func, *args, **kwargs)

    return scheduling


def test_keyword_arguments_collected_by_double_star_are_merged_in_by_name(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app_scheduling(notify, "ann", urgent=True, retries=2)).post("/")

    call = bgtasks.assert_scheduled(notify, "ann", urgent=True)
    assert call.arguments == {"user": "ann", "channel": "email", "urgent": True, "retries": 2}


def test_arguments_that_do_not_fit_the_signature_are_named_by_index(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app_scheduling(one_argument, 1, 2, colour="red")).post("/")

    (call,) = bgtasks.failed  # the function itself refuses them when it runs
    assert call.arguments == {"0": 1, "1": 2, "colour": "red"}
    with pytest.raises(AssertionError, match=r"#1 one_argument\(1, 2, colour='red'\)  failed"):
        bgtasks.assert_all_succeeded()
    bgtasks.assert_failed(one_argument, TypeError)


def test_positional_arguments_of_a_callable_without_a_signature_are_named_by_index(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(app_scheduling(max, 3, 7)).post("/")  # a builtin: inspect finds no signature

    call = bgtasks.assert_scheduled_once(max)
    assert (call.arguments, call.result) == ({"0": 3, "1": 7}, 7)


def test_a_task_scheduled_in_a_mounted_app_belongs_to_the_outer_request(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    outer = FastAPI()
    outer.mount("/sub", app_scheduling(notify, "ann"))

    assert TestClient(outer).post("/sub/").status_code == 200

    call = bgtasks.assert_scheduled_once(notify)
    assert call.status == "succeeded"
    assert call.request is not None
    assert (str(call.request), call.request.status_code) == ("POST /sub/", 200)
    assert call.request.calls == [call]


@pytest.mark.bgtasks(mode="deferred")
def test_held_tasks_show_as_held(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app_scheduling(notify, "ann")).post("/")
    (call,) = bgtasks.calls
    assert call.held

    with pytest.raises(
        AssertionError, match=r"#1 notify\(user='ann', channel='email'\)  held  POST"
    ):
        bgtasks.assert_all_succeeded()

    bgtasks.run_all()
    assert not call.held
    assert call.status == "succeeded"


def test_a_failing_test_lists_its_held_tasks_as_held(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from starlette.background import BackgroundTask
        from starlette.testclient import TestClient
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        def sync_task(label):
            pass

        app = Starlette(routes=[Route(
            "/", lambda request: PlainTextResponse("", background=BackgroundTask(sync_task, "x"))
        )])

        @pytest.mark.bgtasks(mode="deferred")
        def test_held(bgtasks):
            TestClient(app).get("/")
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- background tasks -*", "#1 sync_task(label='x')  held  GET /"])


@pytest.mark.parametrize(
    "value",
    [numpy.arange(3), pandas.DataFrame({"a": [1, 2]})],
    ids=["numpy-array", "pandas-frame"],
)
def test_arguments_that_compare_element_wise_match_by_their_elements(
    bgtasks: BackgroundTaskRecorder, value: Any
) -> None:
    def ingest(rows: Any) -> None: ...

    TestClient(app_scheduling(ingest, value)).post("/")

    assert bgtasks.assert_scheduled(ingest, value).arguments["rows"] is value
    bgtasks.assert_scheduled(ingest, value.copy())
    with pytest.raises(AssertionError, match="Expected a background task ingest"):
        bgtasks.assert_scheduled(ingest, value * 2 + 1)
