"""``run_all(order=..., seed=...)``: responses reordered, each response's tasks kept in order."""

from __future__ import annotations

import random
import re

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import apps
from tests.apps import app, boom, starlette_app, sync_task

pytestmark = pytest.mark.bgtasks(mode="deferred")


def labels() -> list[str]:
    return [label for label, _ in apps.journal]


def post_items(*items: int) -> None:
    client = TestClient(app)
    for item in items:
        client.post(f"/items/{item}")


def item_labels(*items: int) -> list[str]:
    return [label for item in items for label in (f"item {item}", f"async item {item}")]


def test_reversed_takes_the_responses_last_first(bgtasks: BackgroundTaskRecorder) -> None:
    post_items(1, 2, 3)

    ran = bgtasks.run_all(order="reversed")

    assert [call.index for call in ran] == [5, 6, 3, 4, 1, 2]
    assert labels() == item_labels(3, 2, 1)


def test_scheduled_is_the_default_order(bgtasks: BackgroundTaskRecorder) -> None:
    post_items(1, 2)

    assert [call.index for call in bgtasks.run_all(order="scheduled")] == [1, 2, 3, 4]


@pytest.mark.parametrize("seed", [0, 1, 7, 2024])
def test_random_shuffles_whole_responses_by_the_seed(
    bgtasks: BackgroundTaskRecorder, seed: int
) -> None:
    post_items(1, 2, 3, 4, 5)
    responses = [1, 2, 3, 4, 5]
    random.Random(seed).shuffle(responses)  # what the documented seed means

    bgtasks.run_all(order="random", seed=seed)

    assert labels() == item_labels(*responses)


def test_the_same_seed_replays_the_same_order(bgtasks: BackgroundTaskRecorder) -> None:
    orders = []
    for _ in range(2):
        apps.journal.clear()
        post_items(1, 2, 3, 4, 5, 6)
        bgtasks.run_all(order="random", seed=99)
        orders.append(labels())

    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(item_labels(1, 2, 3, 4, 5, 6))


def test_a_failure_still_skips_the_rest_of_its_response(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/fail")
    client.post("/items/1")

    ran = bgtasks.run_all(order="reversed")

    assert [call.index for call in ran] == [4, 5, 1, 2]
    assert [call.status for call in bgtasks.calls] == [
        "succeeded",
        "failed",
        "skipped",
        "succeeded",
        "succeeded",
    ]
    bgtasks.assert_failed(boom, RuntimeError)


def test_a_task_that_is_its_own_response_is_a_group_of_its_own(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    TestClient(starlette_app).post("/plain")  # Response(background=BackgroundTask(...))
    post_items(1)
    TestClient(starlette_app).post("/plain")

    ran = bgtasks.run_all(order="reversed")

    assert [call.index for call in ran] == [4, 2, 3, 1]
    assert labels() == ["plain starlette", "item 1", "async item 1", "plain starlette"]


def test_tasks_scheduled_by_the_run_come_after_in_the_same_order(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    chained = FastAPI()

    def first(name: str) -> None:
        apps.record(f"first {name}")
        TestClient(chained).post(f"/second/{name}")

    def second(name: str) -> None:
        apps.record(f"second {name}")

    @chained.post("/first/{name}")
    def first_endpoint(name: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(first, name)

    @chained.post("/second/{name}")
    def second_endpoint(name: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(second, name)

    client = TestClient(chained)
    client.post("/first/a")
    client.post("/first/b")

    assert len(bgtasks.run_all(order="reversed")) == 4
    assert labels() == ["first b", "first a", "second a", "second b"]


def test_order_combines_with_only_and_limit(bgtasks: BackgroundTaskRecorder) -> None:
    post_items(1, 2, 3)

    assert [call.index for call in bgtasks.run_all(order="reversed", only=sync_task)] == [5, 3, 1]
    assert [call.index for call in bgtasks.run_all(order="reversed", limit=2)] == [6, 4]
    assert [call.index for call in bgtasks.held] == [2]


def test_a_test_that_passes_only_in_scheduling_order_fails_reversed(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    """The kind of bug orders find: a task that assumes another response's task ran first."""
    users: dict[str, str] = {}
    accounts = FastAPI()

    def create_user(name: str) -> None:
        users[name] = "created"

    def send_welcome(name: str) -> None:
        users[name] += ", welcomed"  # KeyError when the sign-up's task has not run yet

    @accounts.post("/signup/{name}")
    def signup(name: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(create_user, name)

    @accounts.post("/welcome/{name}")
    def welcome(name: str, background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(send_welcome, name)

    client = TestClient(accounts)
    client.post("/signup/ada")
    client.post("/welcome/ada")

    bgtasks.run_all(order="reversed")

    bgtasks.assert_failed(send_welcome, KeyError)
    assert users == {"ada": "created"}


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        (
            {"order": "backwards"},
            ValueError,
            r"run_all\(order=...\) takes one of \"scheduled\", \"reversed\", \"random\","
            r" got 'backwards'",
        ),
        ({"order": "random", "seed": "12"}, TypeError, r"run_all\(seed=...\) takes a whole number"),
        ({"order": "random", "seed": 1.5}, TypeError, r"run_all\(seed=...\) takes a whole number"),
        ({"order": "random", "seed": True}, TypeError, r"run_all\(seed=...\) takes a whole number"),
        (
            {"seed": 3},
            ValueError,
            r"run_all\(seed=...\) goes with order=\"random\" only, got order='scheduled';"
            r" pass bgtasks.run_all\(order=\"random\", seed=3\), or leave seed out",
        ),
        ({"order": "reversed", "seed": 3}, ValueError, r"run_all\(seed=...\) goes with order="),
        ({"concurrent": "yes"}, TypeError, r"run_all\(concurrent=...\) takes True or False"),
    ],
)
def test_bad_order_is_refused_before_anything_runs(
    bgtasks: BackgroundTaskRecorder,
    keywords: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    post_items(1)

    with pytest.raises(error, match=rf"^bgtasks\.{message}"):
        bgtasks.run_all(**keywords)  # type: ignore[arg-type]

    assert [call.status for call in bgtasks.held] == ["held", "held"] and apps.journal == []


@pytest.mark.anyio
async def test_run_all_async_takes_order_and_seed(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for item in (1, 2, 3):
            await client.post(f"/items/{item}")
    responses = [1, 2, 3]
    random.Random(5).shuffle(responses)

    await bgtasks.run_all_async(order="reversed", limit=2)
    await bgtasks.run_all_async(order="random", seed=5)

    assert labels()[:2] == item_labels(3)
    assert labels()[2:] == item_labels(*[item for item in responses if item != 3])
    with pytest.raises(ValueError, match=r"^bgtasks\.run_all_async\(seed=...\) goes with"):
        await bgtasks.run_all_async(seed=1)


ORDER_PROJECT = """
import os
import pytest
from starlette.testclient import TestClient
from apps import app, journal

SEED = os.environ.get("SEED")

@pytest.mark.bgtasks(mode="deferred")
def test_shuffled(bgtasks):
    client = TestClient(app)
    for item in range(1, 9):
        client.post(f"/items/{item}")
    bgtasks.run_all(order="random", seed=None if SEED is None else int(SEED))
    print("ORDER", [label for label, _ in journal])
    assert False, "the test's own failure"

@pytest.mark.bgtasks(mode="deferred")
def test_passes(bgtasks):
    TestClient(app).post("/items/1")
    bgtasks.run_all(order="reversed")
"""


def test_a_failing_report_prints_the_seed_and_the_seed_replays_the_order(
    pytester: pytest.Pytester, apps_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(apps=apps_source, test_order=ORDER_PROJECT)

    first = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)

    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        [
            "*- bgtasks replay order -*",
            'bgtasks: run_all replayed in random order, seed=*; run_all(order="random", seed=*)'
            " replays it",
        ]
    )
    output = first.stdout.str()
    (seed,) = set(re.findall(r"run_all\(order=\"random\", seed=(\d+)\) replays it", output))
    assert f"random order, seed={seed};" in output
    (order,) = re.findall(r"^ORDER .*$", output, re.MULTILINE)
    assert "reversed" not in output  # the passing test's run prints nothing

    monkeypatch.setenv("SEED", seed)
    again = pytester.runpytest_subprocess("-p", "no:randomly", "-k", "shuffled", timeout=60)

    again.assert_outcomes(failed=1)
    assert re.findall(r"^ORDER .*$", again.stdout.str(), re.MULTILINE) == [order]
    again.stdout.fnmatch_lines([f"bgtasks: run_all replayed in random order, seed={seed}; *"])


def test_the_report_names_a_reversed_and_concurrent_run(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(
        apps=apps_source,
        test_reversed="""
        import pytest
        from starlette.testclient import TestClient
        from apps import app

        @pytest.mark.bgtasks(mode="deferred")
        def test_reversed(bgtasks):
            TestClient(app).post("/items/1")
            bgtasks.run_all(order="reversed", concurrent=True)
            assert False
        """,
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- bgtasks replay order -*",
            "bgtasks: run_all replayed in reversed order, responses concurrently;"
            ' run_all(order="reversed", concurrent=True) replays it',
        ]
    )
