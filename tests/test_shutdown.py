"""``bgtasks.shutdown()``: what a server does to the work still there when it stops.

The tasks here wait on events the test sets: whether a task is still running when the grace
ends is decided by the test, never by the clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests.servers import serving

#: Seconds a test waits for an event before it fails, instead of hanging.
PATIENCE = 30


class Gates:
    """Events the tasks of this module's app set and wait on."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.cleaned_up = threading.Event()
        self.ran: list[str] = []
        self._started_as: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def started_as(self, label: str) -> threading.Event:
        """Set once the task given ``label`` started."""
        with self._lock:
            return self._started_as.setdefault(label, threading.Event())


gates = Gates()


@pytest.fixture(autouse=True)
def fresh_gates() -> Iterator[Gates]:
    global gates
    gates = Gates()
    yield gates
    gates.release.set()  # a thread still blocked on it ends


async def waits_forever(label: str) -> None:
    gates.started.set()
    gates.started_as(label).set()
    try:
        await anyio.sleep_forever()
    finally:
        gates.cleaned_up.set()


def waits_in_a_thread(label: str) -> str:
    gates.started.set()
    if not gates.release.wait(PATIENCE):
        raise TimeoutError("the test never released the task")
    return label


def later(label: str) -> None:
    gates.ran.append(label)


async def announce(label: str) -> None:
    gates.started.set()
    try:
        await asyncio.Event().wait()
    finally:
        gates.cleaned_up.set()


app = FastAPI()
#: The app's fire-and-forget tasks, kept until done (asyncio keeps only weak references).
announcing: set[asyncio.Task[None]] = set()


@app.post("/async/{label}")
async def start_async(label: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(waits_forever, label)
    background_tasks.add_task(later, label)
    return {"label": label}


@app.post("/sync/{label}")
async def start_sync(label: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(waits_in_a_thread, label)
    return {"label": label}


@app.post("/sync-then-more/{label}")
async def start_sync_then_more(label: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(waits_in_a_thread, label)
    background_tasks.add_task(later, label)
    return {"label": label}


@app.post("/quick/{label}")
async def quick(label: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(later, label)
    return {"label": label}


@app.post("/announce/{label}")
async def start_announcement(label: str) -> dict[str, str]:
    task = asyncio.create_task(announce(label))
    announcing.add(task)
    task.add_done_callback(announcing.discard)
    return {"label": label}


def started() -> None:
    assert gates.started.wait(PATIENCE), "the task never started"


def test_an_async_task_past_the_grace_is_cancelled_on_the_servers_loop(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with serving(app) as url:
        assert httpx.post(f"{url}/async/a").status_code == 200
        started()

        cut = bgtasks.shutdown(grace=0)

        [call, skipped] = cut
        assert call.status == "cancelled" and call.expected  # the strict check lets it pass
        assert call.reason == (
            "cancelled by bgtasks.shutdown(grace=0): still running when the grace ended"
        )
        assert gates.cleaned_up.is_set(), "its finally block ran before shutdown() returned"
        assert (skipped.name, skipped.status) == ("later", "skipped")
        assert skipped.reason == (
            "skipped: bgtasks.shutdown() stopped its response before it started"
        )
        assert gates.ran == []


def test_a_task_that_ends_within_the_grace_is_not_cut(
    bgtasks: BackgroundTaskRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = bgtasks._core.ledger
    wait_idle = ledger.wait_idle

    def release_then_wait(timeout: float | None) -> bool:
        gates.release.set()  # the task can end only once shutdown() waits for it
        return wait_idle(timeout)

    monkeypatch.setattr(ledger, "wait_idle", release_then_wait)
    with serving(app) as url:
        httpx.post(f"{url}/sync/a")
        started()

        assert bgtasks.shutdown(grace=PATIENCE) == []

    assert bgtasks.calls[0].status == "succeeded"


def test_a_sync_task_cannot_be_stopped_and_is_judged_when_it_ends(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with serving(app) as url:
        httpx.post(f"{url}/sync/a")
        started()

        [call] = bgtasks.shutdown(grace=0)

        assert call.status == "running"
        assert call.reason is not None and call.reason.startswith(
            "not stopped by bgtasks.shutdown(grace=0): a sync task runs in a worker thread,"
            " and a thread cannot be cancelled"
        )
        gates.release.set()
        bgtasks.wait(timeout=PATIENCE)

    assert (call.status, call.result) == ("succeeded", "a")


def test_the_tasks_after_an_unstoppable_one_never_start(bgtasks: BackgroundTaskRecorder) -> None:
    with serving(app) as url:
        httpx.post(f"{url}/sync-then-more/a")
        started()

        [running, skipped] = bgtasks.shutdown(grace=0)

        gates.release.set()
        bgtasks.wait(timeout=PATIENCE)
    assert running.status == "succeeded"
    assert (skipped.name, skipped.status) == ("later", "skipped")
    assert skipped.reason == "skipped: bgtasks.shutdown() stopped its response before it started"
    assert gates.ran == []  # as uvicorn's cancel of the response skips it


def test_held_tasks_are_discarded(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    with bgtasks.deferred():
        client.post("/quick/a")
        client.post("/quick/b")

    cut = bgtasks.shutdown()

    assert [call.args for call in cut] == [("a",), ("b",)]
    assert {call.status for call in cut} == {"discarded"}
    assert cut[0].reason == "discarded by bgtasks.shutdown(): the server stopped before it ran"
    assert bgtasks.held == [] and gates.ran == []


def test_nothing_running_nothing_held_cuts_nothing(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/quick/a")

    assert bgtasks.shutdown(grace=0) == []
    assert gates.ran == ["a"]


def test_the_apps_fire_and_forget_asyncio_task_is_cancelled(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with serving(app) as url:
        httpx.post(f"{url}/announce/a")
        started()

        [call] = bgtasks.shutdown(grace=0)

    assert (call.kind, call.status, call.expected) == ("asyncio", "cancelled", True)
    assert call.reason is not None and call.reason.startswith("cancelled by bgtasks.shutdown(")
    assert gates.cleaned_up.is_set()


def test_a_task_on_a_testclient_portal_is_cancelled_while_the_request_waits(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    responses: list[int] = []
    with TestClient(app) as client:
        requester = threading.Thread(
            target=lambda: responses.append(client.post("/async/a").status_code)
        )
        requester.start()
        started()

        [call, _] = bgtasks.shutdown(grace=0)

        requester.join(PATIENCE)
    assert responses == [200]  # the client got its response; the task was cut after it
    assert call.status == "cancelled" and gates.cleaned_up.is_set()


def test_an_asyncio_task_on_a_testclient_portal_is_cancelled(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with TestClient(app) as client:
        client.post("/announce/a")
        started()

        [call] = bgtasks.shutdown(grace=0)

        assert call.status == "cancelled" and gates.cleaned_up.is_set()


@pytest.mark.bgtasks(mode="deferred")
def test_a_concurrent_run_all_in_another_thread_is_cut_short_without_a_timeout_error(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    outcome: list[object] = []
    with TestClient(app) as client:
        client.post("/async/a")  # waits_forever("a"), then later("a")
        client.post("/async/b")  # the same, run at the same time

        def run_all() -> None:
            try:
                outcome.append(bgtasks.run_all(concurrent=True))
            except BaseException as error:  # handed to the test's thread
                outcome.append(error)

        runner = threading.Thread(target=run_all)
        runner.start()
        assert gates.started_as("a").wait(PATIENCE) and gates.started_as("b").wait(PATIENCE)

        cut = bgtasks.shutdown(grace=0)

        runner.join(PATIENCE)
    [ran] = outcome
    assert isinstance(ran, list) and sorted(call.args for call in ran) == [("a",), ("b",)]
    assert [(call.name, call.args, call.status) for call in cut] == [
        ("waits_forever", ("a",), "cancelled"),
        ("later", ("a",), "discarded"),
        ("waits_forever", ("b",), "cancelled"),
        ("later", ("b",), "discarded"),
    ]
    assert gates.ran == []


@pytest.mark.anyio
async def test_shutdown_async_cancels_a_task_on_the_tests_own_loop(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(client.post, "/async/a")  # returns once its tasks ended
        while not gates.started.is_set():
            await anyio.sleep(0)  # the request runs on this loop: let it

        cut = await bgtasks.shutdown_async(grace=0)

    assert [call.status for call in cut] == ["cancelled", "skipped"]
    assert gates.cleaned_up.is_set() and gates.ran == []


@pytest.mark.bgtasks(mode="deferred")
def test_a_run_all_in_another_thread_is_cut_short_without_a_timeout_error(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    outcome: list[object] = []
    with TestClient(app) as client:
        client.post("/async/a")
        client.post("/quick/b")

        def run_all() -> None:
            try:
                outcome.append(bgtasks.run_all())
            except BaseException as error:  # handed to the test's thread
                outcome.append(error)

        runner = threading.Thread(target=run_all)
        runner.start()
        started()

        cut = bgtasks.shutdown(grace=0)

        runner.join(PATIENCE)
    [ran] = outcome
    assert isinstance(ran, list) and [call.name for call in ran] == ["waits_forever"]
    assert [(call.name, call.status) for call in cut] == [
        ("waits_forever", "cancelled"),
        ("later", "discarded"),
        ("later", "discarded"),
    ]


async def poll_forever() -> None:
    await asyncio.Event().wait()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    poller = asyncio.create_task(poll_forever())
    yield
    poller.cancel()
    with suppress(asyncio.CancelledError):
        await poller


def test_the_apps_lifespan_tasks_are_left_to_its_shut_down(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with_lifespan = FastAPI(lifespan=lifespan)
    with_lifespan.mount("/", app)
    with TestClient(with_lifespan) as client:
        [poller] = bgtasks.calls
        requester = threading.Thread(target=client.post, args=("/async/a",))
        requester.start()
        started()

        cut = bgtasks.shutdown(grace=0)

        requester.join(PATIENCE)
        assert [call.name for call in cut] == ["waits_forever", "later"]
        assert poller.status == "running"
    assert (poller.status, poller.reason) == ("cancelled", "cancelled by the app")


INNER_APP = """
import threading

from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

started, release = threading.Event(), threading.Event()
app = FastAPI()


def export(label):
    started.set()
    release.wait(30)
    raise ConnectionError("the export server went away")


@app.post("/export/{label}")
async def start(label: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(export, label)


def request_in_a_thread(client):
    requester = threading.Thread(target=client.post, args=("/export/a",))
    requester.start()
    assert started.wait(30)
    return requester
"""


def test_a_sync_task_that_fails_after_shutdown_fails_the_test_saying_why(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        inner_app=INNER_APP,
        test_export="""
        from inner_app import TestClient, app, release, request_in_a_thread

        def test_export(bgtasks):
            with TestClient(app) as client:
                requester = request_in_a_thread(client)
                [call] = bgtasks.shutdown(grace=0)
                assert call.status == "running"
                release.set()
                requester.join(30)
        """,
    )

    result = pytester.runpytest_subprocess(timeout=60)

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 background task problem(s):",
            "*#1 export(label='a')  failed in *  POST /export/a (/export/{label})  not stopped by"
            " bgtasks.shutdown(grace=0): a sync task runs in a worker thread, and a thread"
            " cannot be cancelled;*",
            "*ConnectionError: the export server went away",
        ]
    )


def test_tasks_cut_short_by_shutdown_do_not_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cut="""
        import anyio
        import threading
        from fastapi import BackgroundTasks, FastAPI
        from starlette.testclient import TestClient

        started = threading.Event()
        app = FastAPI()

        async def sync_report():
            started.set()
            await anyio.sleep_forever()

        def notify():
            pass

        @app.post("/report")
        async def report(background_tasks: BackgroundTasks):
            background_tasks.add_task(sync_report)
            background_tasks.add_task(notify)

        def test_cut(bgtasks):
            with TestClient(app) as client:
                with bgtasks.deferred():
                    client.post("/report")
                runner = threading.Thread(target=bgtasks.run_all)
                runner.start()
                assert started.wait(30)
                cut = bgtasks.shutdown(grace=0)
                runner.join(30)
            assert [call.status for call in cut] == ["cancelled", "discarded"]
            assert False, "show the tasks"
        """,
    )

    result = pytester.runpytest_subprocess(timeout=60)

    result.assert_outcomes(failed=1)  # by its own assert: no teardown error
    result.stdout.fnmatch_lines(
        [
            "*- background tasks -*",
            "#1 sync_report()  cancelled in *  POST /report  cancelled by"
            " bgtasks.shutdown(grace=0): still running when the grace ended",
            "#2 notify()  discarded  POST /report  discarded by bgtasks.shutdown(): the server"
            " stopped before it ran",
        ]
    )
