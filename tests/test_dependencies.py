"""Deferred mode and FastAPI's yield dependencies: warn where a held task runs after them, only
where production does otherwise, naming the dependency the app really uses, at the test's line."""

from __future__ import annotations

import pytest

from pytest_bgtasks._dependencies import fastapi_version, production_closes_first
from tests.conftest import report_body

#: FastAPI 0.106 to 0.117 close every yield dependency before the tasks: deferred mode is the same.
CLOSES_FIRST = production_closes_first(fastapi_version(), None)
warns_here = pytest.mark.skipif(
    CLOSES_FIRST, reason="this FastAPI closes yield dependencies before the tasks: no warning"
)

APP = """
from fastapi import BackgroundTasks, Depends, FastAPI

app = FastAPI()
state = {"open": False}

def get_db():
    state["open"] = True
    yield state
    state["open"] = False

def override_get_db():
    state["open"] = True
    yield state
    state["open"] = False

def plain_db():
    return {"open": True}

def uses_db(db):
    return db["open"]

@app.post("/save")
def save(background_tasks: BackgroundTasks, db=Depends(get_db)):
    background_tasks.add_task(uses_db, db)
"""

TEST = """
import pytest
from starlette.testclient import TestClient
from deps_app import app, get_db, override_get_db, plain_db

@pytest.fixture
def client():
    app.dependency_overrides.clear()
    yield TestClient(app)
    app.dependency_overrides.clear()

def test_run_all(bgtasks, client):
    client.post("/save")
    bgtasks.run_all()  # the line the warning points at

def test_run_next(bgtasks, client):
    client.post("/save")
    bgtasks.run_next()  # the line the warning points at

def test_run(bgtasks, client):
    client.post("/save")
    bgtasks.run(bgtasks.held[0])  # the line the warning points at

@pytest.mark.anyio
async def test_run_all_async(bgtasks, anyio_backend):
    import httpx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post("/save")
    await bgtasks.run_all_async()  # the line the warning points at

def test_overridden(bgtasks, client):
    app.dependency_overrides[get_db] = override_get_db
    client.post("/save")
    bgtasks.run_all()  # the line the warning points at

def test_overridden_without_yield(bgtasks, client):
    app.dependency_overrides[get_db] = plain_db
    client.post("/save")
    bgtasks.run_all()
"""

INI = "[pytest]\nbgtasks_mode = deferred\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(deps_app=APP, test_deps=TEST)
    pytester.makeini(INI)
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    return pytester


def line_of(pytester: pytest.Pytester, test: str) -> int:
    """The line number of the commented line in ``test``, in the written test file."""
    source = (pytester.path / "test_deps.py").read_text().splitlines()
    start = min(
        i
        for i, line in enumerate(source)
        if line.startswith((f"def {test}(", f"async def {test}("))
    )
    return next(i for i in range(start, len(source)) if "the line the warning" in source[i]) + 1


@warns_here
@pytest.mark.parametrize(
    "test", ["test_run_all", "test_run_next", "test_run", "test_run_all_async"]
)
def test_the_warning_points_at_the_tests_line(project: pytest.Pytester, test: str) -> None:
    result = project.runpytest("-p", "no:randomly", f"test_deps.py::{test}", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"*/test_deps.py:{line_of(project, test)}: BgTasksWarning: POST /save has dependencies"
            " with yield (get_db); they closed when the response ended*",
        ]
    )


@warns_here
def test_filterwarnings_error_fails_the_test_at_its_line_and_keeps_the_task_held(
    project: pytest.Pytester, pytestconfig: pytest.Config
) -> None:
    # This suite's own filterwarnings: "error", and the upstream warnings it has to ignore.
    filters = "".join(f"    {line}\n" for line in pytestconfig.getini("filterwarnings"))
    # pytest-asyncio (the asyncio nox sessions) warns at start-up when this ini key is unset;
    # the outer run sets it with -o, the inner project's ini has no such key.
    filters += '    ignore:The configuration option "asyncio_default_fixture_loop_scope" is unset\n'
    project.makeini(f"{INI}filterwarnings =\n{filters}")
    # In a fresh process, as users run it: an in-process run re-imports modules that warn
    # on a second import (trio < 0.22 through httpcore), which "error" would turn into errors.
    result = project.runpytest_subprocess(
        "-p", "no:randomly", "test_deps.py::test_run_all", timeout=60
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       bgtasks.run_all()  # the line the warning points at",
            "E       *.BgTasksWarning: POST /save has dependencies with yield (get_db)*",
            f"test_deps.py:{line_of(project, 'test_run_all')}: BgTasksWarning",
            "*- background tasks -*",
            "#1 uses_db(db={'open': False})  held  POST /save",
        ]
    )
    assert report_body(result).count("BgTasksWarning: POST /save") == 1, "one error, one place"


@warns_here
def test_the_warning_names_the_override_in_use(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:randomly", "-k", "overridden", "-W", "default")
    result.assert_outcomes(passed=2, deselected=4)
    result.stdout.fnmatch_lines(
        [
            f"*/test_deps.py:{line_of(project, 'test_overridden')}: BgTasksWarning: POST /save has"
            " dependencies with yield (override_get_db);*",
        ]
    )
    result.stdout.no_fnmatch_line("*(get_db)*")
    assert result.stdout.str().count("BgTasksWarning") == 1, "plain_db has no yield: no warning"


@pytest.mark.skipif(not CLOSES_FIRST, reason="FastAPI 0.106 to 0.117 only")
def test_no_warning_where_production_closes_them_first_too(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:randomly", "-W", "error::pytest_bgtasks.BgTasksWarning")
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize(
    ("version", "scope", "closes_first"),
    [
        ((0, 100), None, False),
        ((0, 105), None, False),
        ((0, 106), None, True),
        ((0, 117), None, True),
        ((0, 118), None, False),
        ((0, 121), "request", False),
        ((0, 121), "function", True),
    ],
)
def test_which_releases_close_yield_dependencies_before_the_tasks(
    version: tuple[int, int], scope: str | None, closes_first: bool
) -> None:
    assert production_closes_first(version, scope) is closes_first
