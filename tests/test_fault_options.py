"""Every kind of fault honours ``times=`` and ``when=``, on sync and async tasks, and says what it did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from pytest_bgtasks import BackgroundTaskRecorder, TaskCall
from tests import apps
from tests.apps import async_task, jobs_app, sync_task

LABELS = ("a", "b", "c")


def replaced(label: str) -> str:
    return "replaced"


FAULTS: dict[str, Callable[..., Any]] = {
    "fail": lambda bgtasks, target, **options: bgtasks.fail(
        target, ConnectionError("down"), **options
    ),
    "fail_after": lambda bgtasks, target, **options: bgtasks.fail_after(
        target, TimeoutError, **options
    ),
    "delay": lambda bgtasks, target, **options: bgtasks.delay(target, 0, **options),
    "replace": lambda bgtasks, target, **options: bgtasks.replace(target, replaced, **options),
    "hang": lambda bgtasks, target, **options: bgtasks.hang(target, **options),
}


def affected(kind: str, call: TaskCall, flavour: str) -> bool:
    """Whether the run shows the fault's effect (the opposite being a plain success)."""
    ran = any(label == call.arguments["label"] for label, _ in apps.journal)
    if call.status == "succeeded" and call.result == f"{flavour}:{call.arguments['label']}":
        assert ran, "a plain success ran the function"
        return kind == "delay" and call.fault is not None  # latency is its only effect
    return {
        "fail": call.status == "failed" and not ran,
        "fail_after": call.status == "failed" and ran,
        "replace": call.status == "succeeded" and call.result == "replaced" and not ran,
        "hang": call.status == "cancelled" and not ran,
    }.get(kind, False)


async def run_job(client: httpx.AsyncClient, flavour: str, label: str) -> None:
    """POST one job; a run still blocked once everything else is blocked hangs: cancel it."""
    async with anyio.create_task_group() as group:
        group.start_soon(client.post, f"/jobs/{flavour}/{label}")
        await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()


async def run_jobs(flavour: str) -> None:
    transport = httpx.ASGITransport(app=jobs_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for label in LABELS:
            if flavour == "sync":  # a worker thread is "blocked" too: just wait for the post
                await client.post(f"/jobs/{flavour}/{label}")
            else:
                await run_job(client, flavour, label)


OPTIONS = {
    "times=2": ({"times": 2}, [True, True, False]),
    "when": ({"when": lambda call: call.arguments["label"] == "b"}, [False, True, False]),
    "times=1 and when": (
        {"times": 1, "when": lambda call: call.arguments["label"] != "a"},
        [False, True, False],
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize(
    ("kind", "flavour"),
    # A hanging sync task ends only with its test: test_faults.py covers it.
    [
        (kind, flavour)
        for kind in FAULTS
        for flavour in ("sync", "async")
        if (kind, flavour) != ("hang", "sync")
    ],
)
async def test_each_fault_affects_only_the_runs_its_options_select(
    bgtasks: BackgroundTaskRecorder, anyio_backend: str, kind: str, option: str, flavour: str
) -> None:
    options, expected = OPTIONS[option]
    fault = FAULTS[kind](bgtasks, sync_task if flavour == "sync" else async_task, **options)

    await run_jobs(flavour)

    assert [call.arguments["label"] for call in bgtasks.calls] == list(LABELS)
    assert [affected(kind, call, flavour) for call in bgtasks.calls] == expected
    assert [call.fault is not None for call in bgtasks.calls] == expected
    assert fault.applied == expected.count(True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "target", "description"),
    [
        ("fail", async_task, "fail(async_task, ConnectionError('down'))"),
        ("fail_after", "async_task", "fail_after('async_task', <class 'TimeoutError'>)"),
        ("delay", async_task, "delay(async_task, 0.0)"),
        ("replace", "tests.apps.async_task", "replace('tests.apps.async_task', replaced)"),
        ("hang", async_task, "hang(async_task)"),
    ],
)
async def test_the_fault_applied_is_described_on_the_call(
    bgtasks: BackgroundTaskRecorder,
    anyio_backend: str,
    kind: str,
    target: object,
    description: str,
) -> None:
    fault = FAULTS[kind](bgtasks, target, times=1)

    await run_jobs("async")

    assert str(fault) == description
    assert [call.fault for call in bgtasks.calls] == [description, None, None]


def test_the_report_line_shows_the_fault(pytester: pytest.Pytester, apps_source: str) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        from starlette.testclient import TestClient
        from apps import jobs_app, sync_task

        def test_it(bgtasks):
            bgtasks.fail("sync_task", ConnectionError("down"), when=lambda call: call.index == 2)
            bgtasks.delay(sync_task, 0.01)
            client = TestClient(jobs_app)
            client.post("/jobs/sync/a")
            client.post("/jobs/sync/b")
            assert False, "show the report"
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- background tasks -*",
            # "(route)" shows where Starlette puts the route in the scope (not on the oldest).
            "#1 sync_task(label='a')  succeeded in *s  POST /jobs/sync/a*  fault delay(sync_task, 0.01)",
            "#2 sync_task(label='b')  failed in *s  POST /jobs/sync/b*"
            "  fault fail('sync_task', ConnectionError('down'))",
        ]
    )
