"""``assert_scheduled_times``: exactly ``n`` matching calls, with the near misses listed."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests.apps import app, async_task, send_email, sync_task


def test_exactly_n_matching_calls_pass_and_are_returned(bgtasks: BackgroundTaskRecorder) -> None:
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/1")
    client.post("/items/2")

    matches = bgtasks.assert_scheduled_times(sync_task, 2, "item 1")

    assert [call.index for call in matches] == [1, 3]
    assert len(bgtasks.assert_scheduled_times(sync_task, 3)) == 3
    assert len(bgtasks.assert_scheduled_times("async_task", 1, label="async item 2")) == 1
    assert bgtasks.assert_scheduled_times(send_email, 0) == []
    assert bgtasks.assert_scheduled_times(sync_task, 0, label="item 3") == []
    assert len(bgtasks.assert_scheduled_times(async_task, 3, ANY)) == 3


def test_a_wrong_count_lists_the_matches_and_the_near_misses(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    client = TestClient(app)
    client.post("/items/1")
    client.post("/items/2")
    client.post("/email/ann@example.com")

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_times(sync_task, 2, "item 1")

    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "Expected a background task sync_task(label='item 1') to be scheduled 2 times,"
        " it was scheduled once."
    )
    assert lines[1] == "Matching tasks (1):"
    assert lines[2].startswith("#1 sync_task(label='item 1')  succeeded in ")
    assert lines[3] == "Near misses, sync_task with other arguments (1):"
    assert lines[4].startswith("#3 sync_task(label='item 2')  succeeded in ")
    assert len(lines) == 5  # neither async_task nor send_email is a near miss


def test_zero_expected_lists_the_unwanted_matches(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/email/ann@example.com")

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_times(send_email, 0, to="ann@example.com")

    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "Expected a background task send_email(to='ann@example.com') to be scheduled 0 times,"
        " it was scheduled once."
    )
    assert lines[1:3] == ["Matching tasks (1):", lines[2]]
    assert "password=***" in lines[2] and "s3cret" not in str(raised.value)
    assert lines[3:] == ["Near misses, send_email with other arguments (0):", "(none)"]


def test_a_name_target_is_named_in_the_message(bgtasks: BackgroundTaskRecorder) -> None:
    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_times("sync_task", 1, "x")

    assert str(raised.value).splitlines() == [
        "Expected a background task sync_task('x') to be scheduled once, it was scheduled 0 times.",
        "Matching tasks (0):",
        "(none)",
        "Near misses, sync_task with other arguments (0):",
        "(none)",
    ]


@pytest.mark.parametrize(
    ("n", "error"),
    [
        (-1, ValueError),
        (1.0, TypeError),
        (True, TypeError),
        ("2", TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_count_is_refused_naming_the_method(
    bgtasks: BackgroundTaskRecorder, n: object, error: type[Exception]
) -> None:
    with pytest.raises(
        error,
        match=r"^bgtasks\.assert_scheduled_times\(func, n\) takes a whole number >= 0, got ",
    ):
        bgtasks.assert_scheduled_times(sync_task, n)  # type: ignore[arg-type]


def test_the_user_sees_matches_and_near_misses_in_the_report(
    pytester: pytest.Pytester, apps_source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        """
        from starlette.testclient import TestClient
        from apps import app, sync_task

        def test_counts(bgtasks):
            client = TestClient(app)
            client.post("/items/1")
            client.post("/items/2")
            client.post("/items/1")
            with bgtasks.capture() as block:
                client.post("/items/3")
            bgtasks.assert_scheduled_times(sync_task, 3, "item 1")

        def test_block_counts(bgtasks):
            client = TestClient(app)
            client.post("/items/1")
            with bgtasks.capture() as block:
                client.post("/items/2")
            block.assert_scheduled_times(sync_task, 1, "item 1")
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*Expected a background task sync_task(label='item 1') to be scheduled 3 times,"
            " it was scheduled 2 times.",
            "E*Matching tasks (2):",
            "E*#1 sync_task(label='item 1')  succeeded in *",
            "E*#5 sync_task(label='item 1')  succeeded in *",
            "E*Near misses, sync_task with other arguments (2):",
            "E*#3 sync_task(label='item 2')  succeeded in *",
            "E*#7 sync_task(label='item 3')  succeeded in *",
            "*test_block_counts*",
            "*Expected a background task sync_task(label='item 1') to be scheduled once,"
            " it was scheduled 0 times.",
            "E*Matching tasks (0):",
            "E*(none)",
            "E*Near misses, sync_task with other arguments (1):",
            "E*#3 sync_task(label='item 2')  succeeded in *",
        ]
    )
