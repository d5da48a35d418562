from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpcore  # noqa: F401 - loaded before any in-process pytester run: see below
import pytest
from packaging.version import Version

from tests import apps, mutation

pytest_plugins = ["pytester"]

# Why httpcore is imported above: an in-process `pytester.runpytest()` unloads, when it ends,
# every module first imported inside it. httpx imports httpcore on first use and keeps its
# exception classes; were httpcore first imported by an inner run (an inner test calling a real
# server), a later test would get a second httpcore whose errors httpx no longer maps, so
# `except httpx.TransportError` misses a refused connection (seen in a random-order run).

STARLETTE = Version(metadata.version("starlette"))
ANYIO = Version(metadata.version("anyio"))


def starlette_before(release: str, why: str) -> pytest.MarkDecorator:
    """Skip where Starlette older than ``release`` behaves differently, saying how."""
    return pytest.mark.skipif(Version(release) > STARLETTE, reason=f"Starlette < {release}: {why}")


def anyio_before(release: str, why: str) -> pytest.MarkDecorator:
    """Skip where anyio older than ``release`` behaves differently, saying how."""
    return pytest.mark.skipif(Version(release) > ANYIO, reason=f"anyio < {release}: {why}")


def skip_sync_client_in_trio_on_anyio_3(backend: str) -> None:
    """A sync TestClient inside a trio test never returns on anyio 3, with or without the plugin
    (seen on anyio 3.4.0 with a plain Starlette app): skip that combination there."""
    if backend == "trio" and Version("4") > ANYIO:
        pytest.skip("anyio < 4: a sync TestClient inside a trio run never returns")


@pytest.fixture(autouse=True)
def clean_journal() -> Iterator[list[tuple[str, str]]]:
    apps.journal.clear()
    yield apps.journal
    apps.journal.clear()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester whose inner runs keep their tests in file order, whatever plugins are installed.

    pytest-randomly loads itself in every run that can import it, inner ones included, and an
    inner run's output (the order of its lines, its report) is what these tests read. pytester
    clears PYTEST_ADDOPTS when it starts, so it is set here, after, for in-process and
    subprocess runs alike. ``-p no:NAME`` is harmless where the plugin is not installed. Under
    mutmut, subprocess runs also import the mutated package (tests/mutation.py).
    """
    options = ["-p no:randomly", mutation.route_subprocesses(monkeypatch)]
    monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(filter(None, options)))
    return pytester


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mutation.deselect_frame_sensitive(config, items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Under mutmut, credit the test with what its pytest subprocesses ran (tests/mutation.py)."""
    yield
    mutation.collect_subprocess_hits()


@pytest.fixture
def apps_source() -> str:
    """The source of tests/apps.py, for pytester projects that need the same apps."""
    return Path(apps.__file__).read_text(encoding="utf-8")


def report_body(result: pytest.RunResult) -> str:
    """An inner run's output above its short test summary, which pytest prints in full on CI
    (CI set) and cut to the terminal's width elsewhere: counts of a message stay the same."""
    return result.stdout.str().partition("short test summary info")[0]
