"""The sessions that prove the supported range and keep the gates (`nox -l` lists them).

    nox                      # every session below
    nox -s oldest wheel      # what .ci/run adds after its own install, lint and test steps
    nox -s tests -- -k deferred -x   # arguments after -- go to pytest

Sessions:

- tests           the newest FastAPI, Starlette, pytest (TestClient on httpx2), the whole suite
- oldest          the floor, pinned in ci/constraints-oldest.txt, the whole suite
- httpx           the newest Starlette with httpx2 uninstalled: TestClient on httpx
- fastapi_0115    FastAPI 0.115, where yield dependencies and uploads close before the tasks
- asyncio_strict  pytest-asyncio installed next to anyio's plugin, asyncio_mode=strict
- asyncio_auto    the same with asyncio_mode=auto (see the session for what auto mode does)
- xdist           the whole suite under pytest-xdist, `-n 2`
- celery_oldest   the Celery tests on the oldest Celery claimed (ci/constraints-celery-oldest.txt)
- celery_newest   the Celery tests on the newest Celery, the Redis broker variant included
- lint            ruff check, ruff format --check, mypy --strict pytest_bgtasks
- wheel           python -m build; the wheel in a clean venv runs ci/wheel_smoke/ from a temp dir
- arq_rq_newest   the newest arq and RQ: their sources' tests (passthrough on a redis-server if any)
- arq_rq_oldest   their floors, ci/constraints-arq-rq-oldest.txt: the same tests
- taskiq_dramatiq_newest  the newest taskiq and Dramatiq: their sources' tests
- taskiq_dramatiq_oldest  their floors, ci/constraints-taskiq-dramatiq-oldest.txt: the same

Not run by default (nor by .ci/run):

- mutation        mutmut on pytest_bgtasks/: the score and every undetected mutant in
                  mutation-report.md; fails under 90 % or on a survivor not in
                  ci/mutation-equivalents.toml. Hours on two cores (5,324 mutants, about
                  6 a minute); `nox -s mutation -- "pytest_bgtasks._faults*"` runs one
                  module's mutants

Every session runs on Python 3.11 (`PYTHON` below) and fails when that interpreter is missing.
The package supports Python >= 3.10: to prove another, run e.g.
`nox --force-python 3.13 -s tests`, as .ci/run does for 3.10 and 3.13 where the machine has them.

Virtualenvs come from uv when it is installed (faster), from the standard library's venv
otherwise; .ci/run installs nox alone, so CI uses venv and pip, and pip's own configuration.
No session can pass on "no tests ran": pytest's exit code 5 fails the session like any other.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"  # the "uv|venv" backend fallback
nox.options.default_venv_backend = "uv|venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "tests",
    "oldest",
    "httpx",
    "fastapi_0115",
    "asyncio_strict",
    "asyncio_auto",
    "xdist",
    "celery_oldest",
    "celery_newest",
    "lint",
    "wheel",
    "arq_rq_newest",
    "arq_rq_oldest",
    "taskiq_dramatiq_newest",
    "taskiq_dramatiq_oldest",
]

PYTHON = "3.11"
ROOT = Path(__file__).parent
CI = ROOT / "ci"
OLDEST = CI / "constraints-oldest.txt"
ARQ_RQ_OLDEST = CI / "constraints-arq-rq-oldest.txt"
ARQ_RQ_TESTS = ("tests/test_arq.py", "tests/test_rq.py")
TASKIQ_DRAMATIQ_OLDEST = CI / "constraints-taskiq-dramatiq-oldest.txt"
TASKIQ_DRAMATIQ_TESTS = ("tests/test_taskiq.py", "tests/test_dramatiq.py")
CELERY_OLDEST = CI / "constraints-celery-oldest.txt"
#: The Celery source's tests and the example app's durable job (uvicorn, a worker, brokers).
CELERY_TESTS = ("tests/test_celery.py", "example_app/tests/test_durable_queue.py")
HTTPX_DEPRECATED = "ignore:Using `httpx` with `starlette.testclient` is deprecated"

# What a session ran on, printed before its tests so a log shows the versions it proved.
_SHOW_VERSIONS = """
import importlib.metadata as md, sys
names = ["pytest", "fastapi", "starlette", "anyio", "httpx", "httpx2", "pydantic", "uvicorn",
         "trio", "pytest-xdist", "pytest-asyncio", "pandas", "numpy", "celery", "kombu",
         "sqlalchemy", "arq", "rq", "redis", "taskiq", "dramatiq", "dirty-equals"]
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"
print("python " + sys.version.split()[0] + "; " + ", ".join(f"{n} {version(n)}" for n in names))
"""


def _show_versions(session: nox.Session) -> None:
    session.run("python", "-c", _SHOW_VERSIONS, silent=False)


def _pytest(session: nox.Session, *default: str, extra: tuple[str, ...] = ()) -> None:
    """pytest with the session's arguments, or ``default``; exit code 5 (no tests) fails.

    With no paths pytest runs its testpaths, tests/ and example_app/tests/, as the README does.
    """
    args = session.posargs or list(default)
    session.run("python", "-m", "pytest", *extra, *args)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The newest releases of everything: the README's `pytest`, both suites."""
    session.install("-e", ".[test]")
    _show_versions(session)
    _pytest(session)


@nox.session(python=PYTHON)
def oldest(session: nox.Session) -> None:
    """The floor of the supported range (ci/constraints-oldest.txt): both suites, as `pytest`."""
    session.install("-c", str(OLDEST), "-e", ".[test]")
    _show_versions(session)
    _pytest(session)


@nox.session(python=PYTHON)
def httpx(session: nox.Session) -> None:
    """The newest Starlette with only httpx: its TestClient falls back from httpx2 to httpx."""
    session.install("-e", ".[test]")
    if session.venv_backend == "uv":  # uv's venvs have no pip
        session.run("uv", "pip", "uninstall", "httpx2", "httpcore2", external=True)
    else:
        session.run("python", "-m", "pip", "uninstall", "--yes", "httpx2", "httpcore2")
    session.run(
        "python",
        "-W",
        HTTPX_DEPRECATED,
        "-c",
        "import starlette.testclient as t; assert t.httpx.__name__ == 'httpx', t.httpx;"
        " print('TestClient runs on', t.httpx.__name__, t.httpx.__version__)",
    )
    _show_versions(session)
    _pytest(session)


@nox.session(python=PYTHON)
def fastapi_0115(session: nox.Session) -> None:
    """FastAPI 0.115 (0.106-0.117 alike): every dependency with yield exits, and every upload
    closes, before the tasks run, so the lifetime check flags what the newest FastAPI does
    not. The lifetime tests only: the rest of the suite proves the newest and the floor."""
    session.install("-e", ".[test]", "fastapi==0.115.*")
    _show_versions(session)
    _pytest(session, "tests/test_lifetimes.py")


def _asyncio(session: nox.Session, mode: str, *deselect: str) -> None:
    session.install("-e", ".[test]", "pytest-asyncio")
    _show_versions(session)
    _pytest(
        session,
        *deselect,
        extra=(
            f"--asyncio-mode={mode}",
            # pytest-asyncio warns when this is unset; set it as projects do. (The suite's
            # pytester projects have their own ini and still show that warning, as a warning.)
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ),
    )


@nox.session(python=PYTHON)
def asyncio_strict(session: nox.Session) -> None:
    """pytest-asyncio in strict mode next to anyio's plugin: each runs the tests marked for it."""
    _asyncio(session, "strict")


@nox.session(python=PYTHON)
def asyncio_auto(session: nox.Session) -> None:
    """pytest-asyncio in auto mode next to anyio's plugin.

    Auto mode makes every `async def` test a pytest-asyncio test, `@pytest.mark.anyio` ones
    included: a `[trio]` parametrization still passes but runs on asyncio (checked with
    sniffio). Those are deselected here so the log claims no trio run it did not make; every
    other async test runs under pytest-asyncio's loop, and trio is proved by the other sessions.
    """
    _asyncio(session, "auto", "-k", "not trio")


@nox.session(python=PYTHON)
def xdist(session: nox.Session) -> None:
    """Both suites under pytest-xdist with two workers: no test may rely on a single process."""
    session.install("-e", ".[test]")
    _show_versions(session)
    _pytest(session, extra=("-n", "2"))


@nox.session(python=PYTHON)
def celery_oldest(session: nox.Session) -> None:
    """The Celery tests on the floor of the Celery range (ci/constraints-celery-oldest.txt).

    The Redis variants of the example app's tests run where `redis-server` is on PATH.
    """
    session.install("-c", str(CELERY_OLDEST), "-e", ".[test]", "redis")
    _show_versions(session)
    _pytest(session, *CELERY_TESTS)


@nox.session(python=PYTHON)
def celery_newest(session: nox.Session) -> None:
    """The Celery tests on the newest Celery and redis client.

    The `tests` session runs them too, but beside the queues extra, whose redis < 6 (arq's
    bound) the newest kombu's Redis transport refuses: the Redis broker variant runs here.
    """
    session.install("-e", ".[test]", "redis")
    _show_versions(session)
    _pytest(session, *CELERY_TESTS)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """The gates: ruff check, ruff format --check, mypy --strict."""
    session.install("-e", ".[queues]", "ruff", "mypy")  # the queue sources import them
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "pytest_bgtasks")


@nox.session(python=PYTHON)
def wheel(session: nox.Session) -> None:
    """Build a wheel and an sdist; install the wheel alone in a clean venv; run the smoke suite.

    The smoke suite runs from a temporary directory outside the source tree, with no conftest.py,
    no ini file and no `-p`: the plugin must register itself from the wheel's entry point.
    """
    session.install("build")
    work = Path(tempfile.mkdtemp(prefix="bgtasks-wheel-"))
    try:
        dist = work / "dist"
        # Builds the sdist, then the wheel from the sdist: the sdist is proved complete too.
        session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
        (wheel_file,) = dist.glob("pytest_bgtasks-*.whl")
        (sdist_file,) = dist.glob("pytest_bgtasks-*.tar.gz")
        session.log(f"built {wheel_file.name} and {sdist_file.name}")

        venv = work / "venv"
        session.run("python", "-m", "venv", str(venv))
        python = str(venv / "bin" / "python")
        session.run(
            python, "-m", "pip", "install", "-q", str(wheel_file), "pytest", "fastapi", "httpx",
            external=True,
        )  # fmt: skip
        smoke = work / "smoke"
        shutil.copytree(CI / "wheel_smoke", smoke, ignore=shutil.ignore_patterns("__pycache__"))
        with session.chdir(smoke):
            session.run(
                python, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers",
                "-W", "error", "-W", HTTPX_DEPRECATED, "-v",
                *session.posargs,
                external=True,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _arq_rq(session: nox.Session, *constraints: str, extra: tuple[str, ...] = ()) -> None:
    session.install(*constraints, "-e", ".[test,queues]")
    _show_versions(session)
    _pytest(session, *ARQ_RQ_TESTS, extra=extra)


@nox.session(python=PYTHON)
def arq_rq_newest(session: nox.Session) -> None:
    """The newest arq and RQ: the arq and RQ sources' tests."""
    _arq_rq(session)


@nox.session(python=PYTHON)
def arq_rq_oldest(session: nox.Session) -> None:
    """The floors the queues extra claims for arq and RQ (ci/constraints-arq-rq-oldest.txt)."""
    _arq_rq(
        session,
        "-c",
        str(ARQ_RQ_OLDEST),
        # RQ < 3 runs an async job on asyncio.new_event_loop() and never closes it: its socket
        # pair is garbage-collected unclosed, in whichever later test. RQ's leak, with or
        # without the plugin (RQ 3 uses asyncio.run).
        extra=("-W", "ignore::pytest.PytestUnraisableExceptionWarning"),
    )


def _taskiq_dramatiq(session: nox.Session, *constraints: str) -> None:
    # Only what these two test modules import: the whole [test] extra (pandas...) would
    # take most of the session's time to install.
    session.install(
        *constraints, "-e", ".[queues]", "fastapi", "httpx", "packaging", "pytest-timeout"
    )
    _show_versions(session)
    # Installed, so their tests cannot skip themselves for want of the libraries.
    session.run("python", "-c", "import taskiq, dramatiq")
    _pytest(session, *TASKIQ_DRAMATIQ_TESTS)


@nox.session(python=PYTHON)
def taskiq_dramatiq_newest(session: nox.Session) -> None:
    """The newest taskiq and Dramatiq: the tests of their sources."""
    _taskiq_dramatiq(session)


@nox.session(python=PYTHON)
def taskiq_dramatiq_oldest(session: nox.Session) -> None:
    """The floors of taskiq and Dramatiq (the rest newest): the tests of their sources."""
    _taskiq_dramatiq(session, "-c", str(TASKIQ_DRAMATIQ_OLDEST))


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """mutmut on pytest_bgtasks/ ([tool.mutmut] in pyproject.toml), then ci/mutation_report.py.

    Arguments are mutant names or patterns for `mutmut run` (`"pytest_bgtasks._faults*"`); the
    report then scores only those. mutmut keeps its copy and its results in mutants/ and reuses
    them for unchanged functions: delete mutants/ for a fresh run. mutmut is pinned exactly:
    tests/mutation.py, which lets pytester's subprocess runs count, reads its internals.
    """
    # the queues extra too: without it the queue sources' tests skip, and their mutants have none
    session.install("-e", ".[test,queues]", "mutmut==3.8.1")
    _show_versions(session)
    # faulthandler: mutmut runs the suite in its own process, where a crash would say nothing.
    session.run("python", "-X", "faulthandler", "-m", "mutmut", "run", *session.posargs)
    session.run("python", "ci/mutation_report.py", *session.posargs)
