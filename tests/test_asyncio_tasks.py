"""Fire-and-forget asyncio tasks: recorded, run as in production, judged at teardown."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import asyncio_app
from tests.asyncio_app import EventBus, app, explode, heartbeat, notify, notify_later
from tests.servers import serving

APP_FILE = asyncio_app.__file__


@pytest.fixture(autouse=True)
def clean_sent() -> Iterator[list[str]]:
    asyncio_app.sent.clear()
    yield asyncio_app.sent
    asyncio_app.sent.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # trio nurseries cannot leak tasks: nothing to record there


@pytest.fixture
def asyncio_app_source() -> str:
    return Path(APP_FILE).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "how",
    [
        "create_task",
        "loop",
        "ensure_future",
        pytest.param(
            "task_group",
            marks=pytest.mark.skipif(
                sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11"
            ),
        ),
        "anyio",
        "awaited",
    ],
)
def test_every_way_an_app_starts_a_task_is_recorded(
    bgtasks: BackgroundTaskRecorder, how: str
) -> None:
    with TestClient(app) as client:
        client.post("/notify/5", params={"how": how})
        bgtasks.wait()

    call = bgtasks.assert_scheduled_once(notify, user_id=5)
    assert call.kind == "asyncio"
    assert call.status == "succeeded"
    assert call.request is not None and str(call.request) == "POST /notify/5"
    assert call.request.route == "/notify/{user_id}"
    assert call.origin is not None and call.origin.startswith(f"{APP_FILE}:")
    # The lifespan's heartbeat is recorded too; Starlette's and anyio's plumbing is not.
    assert [c.name for c in bgtasks.calls] == ["heartbeat", "notify"]
    (beat,) = bgtasks.calls_to(heartbeat)
    assert beat.request is None
    assert beat.status == "cancelled"  # by the lifespan's own shut-down: not a problem


@pytest.mark.anyio
async def test_through_asgi_transport_and_not_the_tests_own_tasks(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post("/notify/6")
    await bgtasks.wait_async()
    await asyncio.create_task(notify(99))  # the test's own task

    call = bgtasks.assert_scheduled_once(notify, 6)
    assert (call.kind, call.status, str(call.request)) == ("asyncio", "succeeded", "POST /notify/6")
    assert asyncio_app.sent == ["email:6", "email:99"]
    assert len(bgtasks.calls) == 1


@pytest.fixture
def server_url() -> Iterator[str]:
    """``app`` served by a real uvicorn in a thread of this process, lifespan on."""
    with serving(app, lifespan="on") as url:
        yield url


def test_through_a_real_server(bgtasks: BackgroundTaskRecorder, server_url: str) -> None:
    httpx.post(f"{server_url}/notify/7", params={"how": "loop"})
    bgtasks.wait(timeout=10)

    call = bgtasks.assert_scheduled_once(notify, 7, channel="sms")
    assert (call.kind, call.status, str(call.request)) == ("asyncio", "succeeded", "POST /notify/7")
    assert asyncio_app.sent == ["sms:7"]


@pytest.mark.bgtasks(mode="deferred")
def test_deferred_mode_holds_background_tasks_but_not_asyncio_tasks(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/notify/1")
        client.post("/from-background-task/2")
        bgtasks.wait()
        assert asyncio_app.sent == ["email:1"]  # ran as in production
        assert [call.name for call in bgtasks.held] == ["notify_later"]

        bgtasks.run_all()

    assert asyncio_app.sent == ["email:1", "later:2"]
    later = bgtasks.assert_scheduled(notify, 2, channel="later")
    assert later.kind == "asyncio"
    assert later.request is not None and later.request.path == "/from-background-task/2"
    assert bgtasks.assert_scheduled(notify_later, 2).kind == "background"


def test_tasks_created_by_a_background_task_are_attributed_to_its_request(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/from-background-task/3")

    call = bgtasks.assert_scheduled_once(notify, 3, channel="later")
    assert call.request is not None and str(call.request) == "POST /from-background-task/3"


def substitute(user_id: int, channel: str) -> None:
    asyncio_app.sent.append(f"substitute:{user_id}")


@pytest.mark.parametrize(
    ("inject", "status", "sent"),
    [
        (lambda b: b.fail(notify, RuntimeError("smtp down")), "failed", []),
        (lambda b: b.fail_after(notify, RuntimeError("smtp down")), "failed", ["email:8"]),
        (lambda b: b.delay(notify, 0.01), "succeeded", ["email:8"]),
        (lambda b: b.replace("notify", substitute), "succeeded", ["substitute:8"]),
    ],
    ids=["fail", "fail_after", "delay", "replace"],
)
def test_faults_apply_to_asyncio_tasks(
    bgtasks: BackgroundTaskRecorder, inject: object, status: str, sent: list[str]
) -> None:
    fault = inject(bgtasks)  # type: ignore[operator]
    with TestClient(app) as client:
        client.post("/notify/8")
        bgtasks.wait()

    (call,) = bgtasks.calls_to(notify)
    assert call.status == status
    assert call.fault == str(fault)
    assert asyncio_app.sent == sent
    if status == "failed":
        bgtasks.assert_failed(notify, RuntimeError, match="smtp down")


def test_hang_holds_an_asyncio_task_until_the_test_ends(bgtasks: BackgroundTaskRecorder) -> None:
    bgtasks.hang(notify)
    with TestClient(app) as client:
        client.post("/notify/9")
        with pytest.raises(TimeoutError, match=r"notify\(user_id=9, channel='email'\)"):
            bgtasks.wait(timeout=0.2)
    (call,) = bgtasks.calls_to(notify)
    assert call.status == "cancelled"
    assert asyncio_app.sent == []


def test_an_exception_the_app_retrieved_is_not_a_problem(bgtasks: BackgroundTaskRecorder) -> None:
    with TestClient(app) as client:
        response = client.post("/explode-handled")

    assert response.json() == {"handled": "explode: handled"}
    (call,) = bgtasks.calls_to(explode)
    assert call.status == "failed"
    assert isinstance(call.exception, ValueError)


def _run_inner(pytester: pytest.Pytester, source: str, test: str) -> pytest.RunResult:
    pytester.makepyfile(asyncio_app=source)
    pytester.makeini("[pytest]\nbgtasks_teardown_timeout = 0.5\nanyio_mode = strict\n")
    pytester.makepyfile(test)
    return pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)


def test_an_exception_nobody_retrieved_fails_the_test(
    pytester: pytest.Pytester, asyncio_app_source: str
) -> None:
    result = _run_inner(
        pytester,
        asyncio_app_source,
        """
        from fastapi.testclient import TestClient
        from asyncio_app import app, explode

        def test_unwatched(bgtasks):
            with TestClient(app) as client:
                assert client.post("/explode").json() == {"ok": True}
                bgtasks.wait()

        def test_expected(bgtasks):
            with TestClient(app) as client:
                client.post("/explode")
                bgtasks.wait()
            bgtasks.assert_failed(explode, ValueError, match="unwatched")
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unwatched*",
            "pytest-bgtasks: 1 background task problem(s):",
            "  #2 explode(reason='unwatched') (asyncio task)  failed in *s  POST /explode"
            "  created at *asyncio_app.py:*  raised an exception nobody retrieved (it was not"
            " awaited, and neither .exception() nor .result() was called)",
            "*ValueError: explode: unwatched",
        ]
    )


def test_a_task_destroyed_while_pending_fails_the_test(
    pytester: pytest.Pytester, asyncio_app_source: str
) -> None:
    result = _run_inner(
        pytester,
        asyncio_app_source,
        """
        from fastapi.testclient import TestClient
        from asyncio_app import app

        def test_forgotten(bgtasks):
            with TestClient(app) as client:
                client.post("/forgotten")
                client.post("/collect")
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #2 wait_forever(future=<Future, garbage-collected>) (asyncio task)  dropped in *s"
            "  POST /forgotten  created at *asyncio_app.py:*  destroyed while pending:"
            " garbage-collected because nothing kept a reference to it; keep one (a set of"
            " tasks, discarded in a done callback) until it is done",
        ]
    )


def test_a_task_pending_when_its_loop_shuts_down_fails_the_test(
    pytester: pytest.Pytester, asyncio_app_source: str
) -> None:
    result = _run_inner(
        pytester,
        asyncio_app_source,
        """
        from fastapi.testclient import TestClient
        from asyncio_app import app

        def test_no_with(bgtasks):
            TestClient(app).post("/pending")
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #1 wait_forever(*) (asyncio task)  cancelled in *s  POST /pending  created at"
            " *asyncio_app.py:*  cancelled unfinished when its event loop shut down: the test's"
            " client or event loop closed while it was pending (a TestClient used without"
            " `with` closes its loop after each request); wait for it first, with"
            " bgtasks.wait() or await bgtasks.wait_async()",
        ]
    )


def test_a_task_still_pending_when_the_test_ends_is_a_leak(
    pytester: pytest.Pytester, asyncio_app_source: str
) -> None:
    result = _run_inner(
        pytester,
        asyncio_app_source,
        """
        import pytest
        from fastapi.testclient import TestClient
        from asyncio_app import app

        @pytest.fixture(scope="module")
        def client():
            with TestClient(app) as client:  # its loop outlives each test
                yield client

        def test_leaks(client, bgtasks):
            client.post("/pending")
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #1 wait_forever(*) (asyncio task)  running  POST /pending  created at"
            " *asyncio_app.py:*  still pending when the test ended: a leak (await it, cancel"
            " it, or wait for it with bgtasks.wait())  (still running after teardown waited)",
        ]
    )
    # The client's loop cancels the task after the test was judged: nothing to book, no error.
    result.stdout.no_fnmatch_line("*Exception in callback*")
    result.stdout.no_fnmatch_line("*KeyError*")


def test_a_lifespan_task_that_outlives_the_app_fails_the_test(pytester: pytest.Pytester) -> None:
    result = _run_inner(
        pytester,
        "",
        """
        import asyncio
        from contextlib import asynccontextmanager
        from fastapi import FastAPI
        from fastapi.testclient import TestClient

        async def refresh_cache():
            while True:
                await asyncio.sleep(0.01)

        @asynccontextmanager
        async def lifespan(app):
            app.state.refresher = asyncio.create_task(refresh_cache())
            yield  # and never cancels it

        def test_refresher(bgtasks):
            with TestClient(FastAPI(lifespan=lifespan)):
                pass
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  #1 refresh_cache() (asyncio task)  cancelled in *s  created at *test_*.py:*"]
    )


def test_a_nested_async_function_is_matched_by_the_function_itself(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/greet/ann")

    call = bgtasks.assert_scheduled_once(asyncio_app.greet, "ann")
    assert call.func == asyncio_app.greet and call.func != asyncio_app.notify
    assert (call.name, call.status) == ("greet", "succeeded")
    assert call.full_name == "tests.asyncio_app.make_greeter.<locals>.greet"
    bgtasks.assert_not_scheduled(asyncio_app.notify)
    assert asyncio_app.sent[-1] == "hello:ann"


def test_methods_and_nested_functions_match_as_background_tasks_do(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/events")
        bgtasks.wait()

    publish = bgtasks.assert_scheduled_once(EventBus.publish, "user.created", payload=3)
    assert publish.arguments == {"event": "user.created", "payload": 3}  # bound: no self
    assert publish.name == "EventBus.publish"
    bgtasks.assert_scheduled("EventBus.publish", event="user.created")
    bgtasks.assert_scheduled_once(EventBus.announce, "hello")
    audit = bgtasks.assert_scheduled_once("audit", "signup")
    assert audit.arguments == {"entry": "signup", "extra": ()}
    bgtasks.assert_scheduled_once("events.<locals>.audit", entry="signup")
    assert sorted(asyncio_app.sent) == ["announced:hello", "audit:signup", "published:user.created"]
