"""``run_all(concurrent=True)``: different responses' tasks at once, each response's in sequence.

Concurrency is proven with rendezvous: each response's task waits for the other's to have
started, which only ends when they run at the same time. Never with timing.
"""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps

pytestmark = pytest.mark.bgtasks(mode="deferred")

#: Long enough never to end a passing test's wait; a wait that ends this way fails the test.
WAIT = 10


class Rendezvous:
    """Two or more parties that each arrive, then wait until every other has arrived."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Event] = {}
        self.loops: dict[str, anyio.Event] = {}

    def meet(self, me: str, others: list[str]) -> None:
        """From a worker thread (a sync task)."""
        self.threads.setdefault(me, threading.Event()).set()
        for other in others:
            if not self.threads.setdefault(other, threading.Event()).wait(WAIT):
                raise TimeoutError(f"{me} never met {other}: not run at the same time")
        apps.record(f"{me} met {', '.join(others)}")

    async def meet_async(self, me: str, others: list[str]) -> None:
        """On an event loop (an async task): anyio's events work only on the loop they are on."""
        self.loops.setdefault(me, anyio.Event()).set()
        with anyio.fail_after(WAIT):
            for other in others:
                await self.loops.setdefault(other, anyio.Event()).wait()
        apps.record(f"{me} met {', '.join(others)}")


@pytest.fixture
def rendezvous() -> Rendezvous:
    return Rendezvous()


@pytest.fixture
def meeting_app(rendezvous: Rendezvous) -> FastAPI:
    """``POST /{flavour}/{me}?others=...`` schedules a task that meets the others; a second
    task of the same response records that it ran after the first."""
    meeting = FastAPI()

    def after(me: str) -> None:
        apps.record(f"{me} after")

    @meeting.post("/sync/{me}")
    def sync_meeting(me: str, others: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(rendezvous.meet, me, others.split(","))
        background_tasks.add_task(after, me)

    @meeting.post("/async/{me}")
    def async_meeting(me: str, others: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(rendezvous.meet_async, me, others.split(","))
        background_tasks.add_task(after, me)

    return meeting


def labels() -> list[str]:
    return [label for label, _ in apps.journal]


def in_response_order(me: str) -> list[str]:
    return [label for label in labels() if label.startswith(me)]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_responses_run_at_once_each_in_sequence(
    bgtasks: BackgroundTaskRecorder, meeting_app: FastAPI, flavour: str
) -> None:
    client = TestClient(meeting_app)
    client.post(f"/{flavour}/a", params={"others": "b"})
    client.post(f"/{flavour}/b", params={"others": "a"})

    ran = bgtasks.run_all(concurrent=True, timeout=WAIT * 2)

    assert sorted(call.index for call in ran) == [1, 2, 3, 4]
    assert all(call.status == "succeeded" for call in bgtasks.calls)
    assert in_response_order("a") == ["a met b", "a after"]
    assert in_response_order("b") == ["b met a", "b after"]
    assert bgtasks.max_concurrency == 2


def test_async_responses_meet_on_one_loop_and_sync_ones_in_threads(
    bgtasks: BackgroundTaskRecorder, meeting_app: FastAPI
) -> None:
    client = TestClient(meeting_app)
    client.post("/async/a", params={"others": "b"})
    client.post("/async/b", params={"others": "a"})
    client.post("/sync/c", params={"others": "d"})
    client.post("/sync/d", params={"others": "c"})

    bgtasks.run_all(concurrent=True, timeout=WAIT * 2, order="random", seed=4)

    assert sorted(label for label in labels() if "met" in label) == [
        "a met b",
        "b met a",
        "c met d",
        "d met c",
    ]


def test_a_failure_skips_the_rest_of_its_response_only(
    bgtasks: BackgroundTaskRecorder, meeting_app: FastAPI, rendezvous: Rendezvous
) -> None:
    client = TestClient(meeting_app)
    client.post("/sync/a", params={"others": "b"})
    client.post("/sync/b", params={"others": "a"})
    bgtasks.fail_after(
        rendezvous.meet, ValueError("after meeting"), when=lambda call: call.args[0] == "a"
    )

    ran = bgtasks.run_all(concurrent=True, timeout=WAIT * 2)

    assert sorted(call.status for call in ran) == ["failed", "succeeded", "succeeded"]
    assert [call.status for call in bgtasks.calls] == [
        "failed",
        "skipped",
        "succeeded",
        "succeeded",
    ]
    bgtasks.assert_failed(rendezvous.meet, ValueError)
    assert in_response_order("b") == ["b met a", "b after"]


def test_tasks_waiting_for_their_turn_stay_held_in_the_core(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    """What is held stays on the queue until its turn: discarding it (as a shutdown does)
    while the run goes on keeps it from running."""
    seen: list[list[int]] = []
    steps = FastAPI()

    def look_and_discard() -> None:
        seen.append([call.index for call in bgtasks.held])
        bgtasks.discard()

    @steps.post("/steps")
    def endpoint(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(look_and_discard)
        background_tasks.add_task(apps.record, "never")

    TestClient(steps).post("/steps")

    (ran,) = bgtasks.run_all(concurrent=True, timeout=WAIT)

    assert seen == [[2]]
    assert [call.status for call in bgtasks.calls] == ["succeeded", "discarded"]
    assert ran.index == 1 and apps.journal == []


def test_limit_and_only_bound_a_concurrent_run(
    bgtasks: BackgroundTaskRecorder, meeting_app: FastAPI
) -> None:
    client = TestClient(meeting_app)
    client.post("/sync/a", params={"others": "b"})
    client.post("/sync/b", params={"others": "a"})

    ran = bgtasks.run_all(concurrent=True, timeout=WAIT * 2, limit=2, only="Rendezvous.meet")

    assert sorted(call.index for call in ran) == [1, 3]
    assert [call.index for call in bgtasks.held] == [2, 4]


def test_the_timeout_cancels_a_hung_task_and_the_others_finish(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    apps_client = TestClient(apps.app)
    apps_client.post("/slow-async", params={"seconds": 0})
    apps_client.post("/items/1")
    bgtasks.hang(apps.slow_async_task)

    with pytest.raises(
        TimeoutError, match=r"^run_all\(\) timed out after 3s while running #1 slow_async_task"
    ):
        bgtasks.run_all(concurrent=True, timeout=3)  # the other response's tasks end first

    assert [call.status for call in bgtasks.calls] == ["cancelled", "succeeded", "succeeded"]
    assert bgtasks.calls[0].expected
    assert labels() == ["item 1", "async item 1"]


@pytest.mark.bgtasks(strict=False)  # the refused hang is the test's error, and reported so
def test_without_a_timeout_a_hang_is_refused(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(apps.app).post("/slow-async", params={"seconds": 0})
    bgtasks.hang(apps.slow_async_task)

    with pytest.raises(RuntimeError, match=r"runs in bgtasks.run_all\(\), which has no timeout"):
        bgtasks.run_all(concurrent=True)


def test_an_endless_chain_stops_at_max_chained(bgtasks: BackgroundTaskRecorder) -> None:
    looping = FastAPI()

    def again(number: int) -> None:
        TestClient(looping).post(f"/again/{number + 1}")

    @looping.post("/again/{number}")
    def endpoint(number: int, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(again, number)

    client = TestClient(looping)
    client.post("/again/0")
    client.post("/again/100")

    with pytest.raises(RuntimeError, match=r"^run_all\(\) stopped: the tasks it ran scheduled 3"):
        bgtasks.run_all(concurrent=True, max_chained=3)

    statuses = [call.status for call in bgtasks.calls]  # nothing lost: ran, or still held
    assert (statuses.count("succeeded"), statuses.count("held"), len(statuses)) == (5, 2, 7)


@pytest.mark.anyio
async def test_run_all_async_runs_responses_at_once(
    bgtasks: BackgroundTaskRecorder, meeting_app: FastAPI, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=meeting_app), base_url="http://test"
    ) as client:
        await client.post("/async/a", params={"others": "b"})
        await client.post("/async/b", params={"others": "a"})
        await client.post("/sync/c", params={"others": "d"})
        await client.post("/sync/d", params={"others": "c"})

    ran = await bgtasks.run_all_async(concurrent=True, timeout=WAIT * 2)

    assert len(ran) == 8
    assert in_response_order("a") == ["a met b", "a after"]
    assert in_response_order("b") == ["b met a", "b after"]
    assert in_response_order("c") == ["c met d", "c after"]


@pytest.mark.anyio
async def test_run_all_async_timeout_cancels_the_running_tasks(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps.app), base_url="http://test"
    ) as client:
        await client.post("/slow-async", params={"seconds": 0})
        await client.post("/slow-async", params={"seconds": 0})
    bgtasks.hang(apps.slow_async_task)

    with pytest.raises(TimeoutError, match=r"while running #\d slow_async_task.*; #\d slow_async"):
        await bgtasks.run_all_async(concurrent=True, timeout=0.2)

    assert [call.status for call in bgtasks.calls] == ["cancelled", "cancelled"]
    assert all(call.expected for call in bgtasks.calls)
