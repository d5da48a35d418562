"""No run hangs for ever: hangs nothing could end are refused, runs stop at their bounds.

Each case runs in a pytest subprocess with a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import pytest

from pytest_bgtasks import BackgroundTaskRecorder

TIMEOUT = 60

#: A task that schedules its successor at once: a replay never reaches a checkpoint.
CHAIN = """
import time
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.background import BackgroundTask
from starlette.testclient import TestClient

app = FastAPI()

async def step(n: int, last: float = float("inf")) -> None:
    if n < last:
        await BackgroundTask(step, n + 1, last)()

@app.post("/chain")
def chain(background_tasks: BackgroundTasks, last: float = float("inf")) -> dict[str, bool]:
    background_tasks.add_task(step, 0, last)
    return {"ok": True}

pytestmark = pytest.mark.bgtasks(mode="deferred")
"""


@pytest.mark.parametrize("client", ["TestClient", "ASGITransport"])
def test_hang_inside_a_client_that_waits_is_refused(
    pytester: pytest.Pytester, apps_source: str, client: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from starlette.testclient import TestClient
        from apps import app, sync_task

        def test_TestClient(bgtasks):
            bgtasks.hang(sync_task)
            TestClient(app).post("/items/1")

        @pytest.mark.anyio
        async def test_ASGITransport(bgtasks):
            bgtasks.hang(sync_task)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await client.post("/items/1")

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-k", client, timeout=TIMEOUT)

    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E   *RuntimeError: bgtasks.hang(sync_task) would block the test for ever: #1 sync_task"
            " runs inside a request from an in-process client (TestClient,"
            " httpx.ASGITransport), which waits for the request's background tasks*",
            "*Use deferred mode (@pytest.mark.bgtasks(mode='deferred')) and"
            " bgtasks.run_all(timeout=...), which raises TimeoutError, or a real server*",
        ]
    )
    result.stdout.fnmatch_lines(["*#2 async_task(label='async item 1')  skipped*"])


def test_hang_under_a_real_server_lasts_until_the_test_ends(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import threading
        import time
        import httpx
        import pytest
        import uvicorn
        from apps import app, sync_task

        seen = []

        @pytest.fixture
        def server_url():
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.01)
            yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            server.should_exit = True
            thread.join(10)

        def test_hang(server_url, bgtasks):  # the server stops after the recorder ended
            bgtasks.hang(sync_task)
            assert httpx.post(f"{server_url}/items/1").json() == {"id": 1}
            while bgtasks.calls[0].status != "running":
                time.sleep(0.01)
            seen.append(bgtasks)

        def test_after():
            (recorder,) = seen
            hung = recorder.calls[0]
            assert (hung.status, hung.reason) == ("cancelled", "hung by fault until the test ended")
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly", timeout=TIMEOUT).assert_outcomes(passed=2)


def test_hang_in_a_run_without_timeout_is_refused_and_with_one_times_out(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        import pytest
        from starlette.testclient import TestClient
        from apps import app, sync_task

        pytestmark = pytest.mark.bgtasks(mode="deferred")
        REFUSED = r"would block the test for ever: #1 sync_task runs in bgtasks.{}\\(\\)"

        @pytest.fixture
        def hung(bgtasks):
            bgtasks.hang(sync_task, times=1)
            TestClient(app).post("/items/1")
            return bgtasks

        def test_run_all(hung):
            with pytest.raises(RuntimeError, match=REFUSED.format("run_all")):
                hung.run_all()

        def test_run_next(hung):
            with pytest.raises(RuntimeError, match=REFUSED.format("run_next")):
                hung.run_next()

        def test_run(hung):
            with pytest.raises(RuntimeError, match=REFUSED.format("run")):
                hung.run(hung.held[0])

        @pytest.mark.anyio
        async def test_run_all_async(hung):
            with pytest.raises(RuntimeError, match=REFUSED.format("run_all_async")):
                await hung.run_all_async()

        def test_with_a_timeout(hung):
            with pytest.raises(TimeoutError, match="timed out after 0.2s while running #1"):
                hung.run_all(timeout=0.2)

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=TIMEOUT)

    result.assert_outcomes(passed=5, errors=4)  # the refused hangs are reported at teardown too
    result.stdout.fnmatch_lines(["*#1 sync_task(label='item 1')  failed*fault hang(sync_task)"])


#: (how the inner test is defined, how it runs the held tasks): sync and async.
RUNS = [
    ("def", "bgtasks.run_all"),
    ("@pytest.mark.anyio\nasync def", "await bgtasks.run_all_async"),
]


@pytest.mark.parametrize(("define", "run"), RUNS)
def test_a_timeout_holds_even_when_each_task_schedules_the_next_at_once(
    pytester: pytest.Pytester, define: str, run: str
) -> None:
    pytester.makepyfile(
        CHAIN
        + f"""
{define} test_endless_chain(bgtasks):
    TestClient(app).post("/chain")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 1s; still held, not started:"
                       r"\\n#\\d+ step\\(n=\\d+, last=inf\\)  held"):
        {run}(timeout=1, max_chained=10**9)
    assert time.monotonic() - started < 2
    assert len(bgtasks.held) == 1

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""
    )
    pytester.runpytest_subprocess("-p", "no:randomly", timeout=TIMEOUT).assert_outcomes(passed=1)


@pytest.mark.parametrize(("define", "run"), RUNS)
def test_an_endless_chain_of_tasks_stops_with_an_error_naming_the_function(
    pytester: pytest.Pytester, define: str, run: str
) -> None:
    pytester.makepyfile(
        CHAIN
        + f"""
{define} test_endless_chain(bgtasks):
    TestClient(app).post("/chain")
    {run}()

{define} test_a_long_chain_goes_on_where_it_stopped(bgtasks):
    TestClient(app).post("/chain", params={{"last": 5}})
    with pytest.raises(RuntimeError, match="scheduled 3 more"):
        {run}(max_chained=3)
    assert [call.arguments["n"] for call in bgtasks.held] == [4]
    ran = {run}(max_chained=3)
    assert [call.arguments["n"] for call in ran] == [4, 5]

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=TIMEOUT)

    result.assert_outcomes(passed=1, failed=1)
    method = run.rpartition(".")[2]
    result.stdout.fnmatch_lines(
        [
            f"E   *RuntimeError: {method}() stopped: the tasks it ran scheduled 1000 more"
            " (step x1000), an endless chain of tasks scheduling tasks? The next is still held:"
            " #1002 step(n=1001, last=inf)  held*. Run them step by step with"
            f" bgtasks.run_next(), or allow a longer chain with bgtasks.{method}(max_chained=...)",
        ]
    )


def test_max_chained_takes_a_whole_number(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(ValueError, match=r"bgtasks.run_all\(max_chained=...\) takes a whole"):
        bgtasks.run_all(max_chained=0)


def test_an_endless_delay_is_refused_in_favour_of_hang(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(ValueError, match=r"use bgtasks.hang\(\) for a task that never finishes"):
        bgtasks.delay("sync_task", float("inf"))
