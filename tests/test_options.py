"""The marker and ini options: documented, validated, and merged from module to function."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("bgtasks(mode='lazy')", "*bgtasks mode must be one of 'eager', 'deferred', got 'lazy'*"),
        (
            "bgtasks(strcit=False)",
            "*unknown keyword(s) strcit; valid ones are mode, strict, queues, lifetimes,"
            " roundtrip, blocking_limit, contain*",
        ),
        (
            "bgtasks('deferred')",
            "*takes keyword arguments only (mode=..., strict=..., queues=..., lifetimes=...,"
            " roundtrip=..., blocking_limit=..., contain=...)*",
        ),
        ("bgtasks(strict='no')", "*bgtasks strict must be True or False, got 'no'*"),
        ("bgtasks(lifetimes=0)", "*bgtasks lifetimes must be True or False, got 0*"),
        ("bgtasks(contain='no')", "*bgtasks contain must be True or False, got 'no'*"),
        (
            "bgtasks(roundtrip='yaml')",
            "*bgtasks roundtrip must be one of 'json', 'pickle' or None, got 'yaml'*",
        ),
        (
            "bgtasks(blocking_limit='1s')",
            "*bgtasks blocking_limit takes a finite number of seconds > 0, or None for no limit,"
            " got '1s'*",
        ),
        ("bgtasks(blocking_limit=True)", "*bgtasks blocking_limit takes *, got True*"),
        ("bgtasks(blocking_limit=0)", "*bgtasks blocking_limit takes *seconds > 0*, got 0*"),
    ],
)
def test_a_bad_marker_is_a_clear_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_it(bgtasks):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_ini_mode_deferred_is_the_default_and_markers_override_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nbgtasks_mode = deferred\n")
    pytester.makepyfile(
        """
        import pytest

        def test_default(bgtasks):
            assert bgtasks.mode == "deferred"

        @pytest.mark.bgtasks(mode="eager")
        class TestEager:
            def test_class(self, bgtasks):
                assert bgtasks.mode == "eager"

            @pytest.mark.bgtasks(mode="deferred")
            def test_nearest(self, bgtasks):
                assert bgtasks.mode == "deferred"
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=3)


def test_marker_is_registered_and_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.bgtasks(*, mode='eager', strict=True, queues='intercept',"
            " lifetimes=True, roundtrip=None, blocking_limit=0.1, contain=True): configure*"
        ]
    )


def test_help_lists_the_options_and_ini_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "background tasks (pytest-bgtasks):",
            "  --bgtasks-report*",
            "  --bgtasks-json=PATH*",
        ]
    )
    for key in (
        "bgtasks_mode",
        "bgtasks_strict",
        "bgtasks_roundtrip",
        "bgtasks_redact",
        "bgtasks_teardown_timeout",
        "bgtasks_blocking_limit",
    ):
        result.stdout.fnmatch_lines([f"  {key} (*"])


def test_fixture_docstring_shows_in_pytest_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(): pass")
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(
        [
            "bgtasks -- *pytest_bgtasks/plugin.py:*",
            "    Record the background tasks that Starlette/FastAPI apps schedule*",
        ]
    )


@pytest.mark.parametrize(
    "source",
    [
        "@pytest.mark.bgtasks(mode='deferred')\ndef test_it():\n    post()",
        "@pytest.mark.bgtasks(mode='deferred')\nclass TestIt:\n    def test_it(self):\n        post()",
        "pytestmark = pytest.mark.bgtasks(mode='deferred')\ndef test_it():\n    post()",
    ],
    ids=["function", "class", "module"],
)
def test_the_marker_uses_the_fixture_without_it_being_requested(
    pytester: pytest.Pytester, apps_source: str, source: str
) -> None:
    pytester.makepyfile(apps=apps_source)
    pytester.makepyfile(
        "import pytest\n"
        "from starlette.testclient import TestClient\n"
        "from apps import app, journal\n\n"
        "def post():\n"
        "    TestClient(app).post('/items/1')\n"
        "    assert journal == [], 'deferred mode holds the tasks'\n\n" + source
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
