"""Arguments that end before their task runs, and the opt-in round trip, as pytest users see them.

Through TestClient, httpx's ASGITransport and a real uvicorn server in a thread.

Each inner test also records what the task really found (``seen``), so the version rules the
plugin applies are checked against the installed FastAPI on every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_bgtasks._sources.fastapi import rule
from tests import lifetimes_app, servers
from tests.lifetimes_app import CLOSES_FIRST, HAS_SCOPE

SOURCE = Path(lifetimes_app.__file__).read_text(encoding="utf-8")
SERVERS = Path(servers.__file__).read_text(encoding="utf-8")
HINT = "*(arguments that end before their task: see *#arguments-that-must-outlive-the-request;*"
UPLOAD = 'files={"file": ("a.txt", b"hello")}'

every_yield_closes_first = pytest.mark.skipif(
    CLOSES_FIRST != "every", reason="FastAPI outside 0.106-0.117 exits yield dependencies later"
)
function_scope = pytest.mark.skipif(not HAS_SCOPE, reason='FastAPI < 0.121: no scope="function"')


def inner_test(client: str, request: str, *, check: str = "", marker: str = "") -> str:
    """A test file that sends ``request`` (``POST path[, keywords]``) through ``client``."""
    path, _, keywords = request.partition(", ")
    call = f"post({path!r}{', ' + keywords if keywords else ''})"
    if client == "testclient":
        send = f"    TestClient(app).{call}"
        head = "def test_it(bgtasks):"
    elif client == "uvicorn":  # a real server: the tasks run after the response, so wait
        send = (
            "    with serving(app) as url:\n"
            f"        httpx.post(url + {path!r}{', ' + keywords if keywords else ''}, timeout=30)\n"
            "        bgtasks.wait(30)"
        )
        head = "from servers import serving\n\ndef test_it(bgtasks):"
    else:
        send = (
            "    transport = httpx.ASGITransport(app=app)\n"
            '    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:\n'
            f"        await client.{call}"
        )
        head = (
            "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n\n"
            "@pytest.mark.anyio\nasync def test_it(bgtasks):"
        )
    return (
        "import httpx\nimport pytest\nfrom fastapi.testclient import TestClient\n"
        "from lifetimes_app import app, seen\n\n"
        f"{marker}\n{head}\n{send}\n{check}\n"
    )


@pytest.fixture(params=["testclient", "asgi", "uvicorn"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(pytester: pytest.Pytester, test: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(lifetimes_app=SOURCE, servers=SERVERS, test_it=test)
    return pytester.runpytest("-p", "no:randomly", *args)


def test_the_request_itself_is_an_error(pytester: pytest.Pytester, client: str) -> None:
    check = "    assert seen == ['audit /audit']  # it works here, not in production"
    result = run(pytester, inner_test(client, "/audit", check=check))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #1 audit(request=<starlette.requests.Request object at *>)  succeeded in *"
            "  POST /audit",
            "      argument 'request' (starlette.requests.Request) is the Request itself, which"
            " ends with its response, before the task runs: pass what the task needs (an id,"
            " the body, a header) instead",
            HINT,
        ]
    )


@function_scope
def test_a_function_scope_dependency_value_is_an_error(
    pytester: pytest.Pytester, client: str
) -> None:
    check = "    assert seen == ['resource closed=True']"
    result = run(pytester, inner_test(client, "/function-scope", check=check))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #1 use(resource=<lifetimes_app.Resource object at *>)  succeeded in *"
            "  POST /function-scope",
            "      argument 'resource' (lifetimes_app.Resource) was yielded by the dependency"
            ' get_resource, declared with Depends(..., scope="function"), whose exit code'
            " FastAPI * runs before the tasks: pass the id or the data the task needs (for a"
            " database session: open a new session in the task)",
        ]
    )


@pytest.mark.skipif(CLOSES_FIRST is None, reason="this FastAPI exits every yield dependency later")
def test_a_sqlalchemy_session_and_its_objects_are_errors(
    pytester: pytest.Pytester, client: str
) -> None:
    route = "rename" if CLOSES_FIRST == "every" else "rename-function-scope"
    request = f"/users/1/{route}, params={{'name': 'bob'}}"
    result = run(pytester, inner_test(client, request))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"  #1 rename(db=<sqlalchemy.orm.session.Session object at *>, user=<lifetimes_app"
            f".User object at *>, name='bob')  succeeded in *  POST /users/1/{route}"
            f" (/users/{{user_id}}/{route})",
            "      argument 'db' (sqlalchemy.orm.session.Session) was yielded by the dependency"
            " get_db*, whose exit code FastAPI * runs before the tasks*",
            "      argument 'user' (lifetimes_app.User) is an ORM object of the session yielded"
            " by the dependency get_db*: pass its id and load it in a new session opened in the"
            " task",
            HINT,
        ]
    )


@every_yield_closes_first
def test_every_yield_dependency_value_is_an_error_on_fastapi_0_106_to_0_117(
    pytester: pytest.Pytester, client: str
) -> None:
    check = "    assert seen == ['resource closed=True', 'resource closed=True', 'renamed to ann']"
    result = run(pytester, inner_test(client, "/resource", check=check))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 2 background task problem(s):",
            "      argument 'resource' (lifetimes_app.Resource) was yielded by the dependency"
            " get_resource, whose exit code FastAPI 0.1* runs before the tasks (as it does for"
            " every dependency with yield on FastAPI 0.106 to 0.117)*",
            "      argument 'resource' (lifetimes_app.Resource) was yielded by the dependency"
            " get_resource_async, *",
        ]
    )
    result.stdout.no_fnmatch_line("  #3 rename_by_id*")  # a plain int from get_user_id is fine


@pytest.mark.skipif(CLOSES_FIRST == "every", reason="FastAPI 0.106-0.117 exits them first")
def test_default_scope_yield_dependencies_are_fine_where_they_exit_after_the_tasks(
    pytester: pytest.Pytester, client: str
) -> None:
    check = (
        "    assert seen == ['resource closed=False', 'resource closed=False', 'renamed to ann']"
    )
    run(pytester, inner_test(client, "/resource", check=check)).assert_outcomes(passed=1)


@every_yield_closes_first
def test_an_upload_is_an_error_where_fastapi_closes_it_first(
    pytester: pytest.Pytester, client: str
) -> None:
    result = run(pytester, inner_test(client, f"/upload, {UPLOAD}"))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  #1 store(file=*)  failed in *  POST /upload",
            "      argument 'file' (*UploadFile) is an upload that FastAPI 0.1* closes before the"
            " tasks run: read it in the endpoint (await file.read()) and pass the bytes, or save"
            " it and pass the path",
            "*ValueError: I/O operation on closed file.",  # what the task met
        ]
    )


@pytest.mark.skipif(CLOSES_FIRST == "every", reason="FastAPI 0.106-0.117 closes uploads first")
def test_an_upload_is_fine_where_fastapi_keeps_it_open(
    pytester: pytest.Pytester, client: str
) -> None:
    check = "    assert seen == [\"stored a.txt: b'hello'\"]"
    run(pytester, inner_test(client, f"/upload, {UPLOAD}", check=check)).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("request_line", "seen"),
    [
        (f"/upload-bytes, {UPLOAD}", "stored a.txt: b'hello'"),
        ("/users/1/rename-by-id, params={'name': 'bob'}", "renamed to bob"),
        ("/audit-awaited", "audit /audit-awaited"),  # an asyncio task is not judged
    ],
    ids=["bytes-read-in-the-endpoint", "id-and-a-new-session", "awaited-asyncio-task"],
)
def test_what_outlives_the_request_passes(
    pytester: pytest.Pytester, client: str, request_line: str, seen: str
) -> None:
    check = f"    assert seen == [{seen!r}]"
    run(pytester, inner_test(client, request_line, check=check)).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "marker",
    [
        "@pytest.mark.bgtasks(lifetimes=False)",
        "pytestmark = pytest.mark.bgtasks(lifetimes=False)",
        "@pytest.mark.bgtasks(strict=False)",
    ],
)
def test_the_check_can_be_turned_off(pytester: pytest.Pytester, marker: str) -> None:
    result = run(pytester, inner_test("testclient", "/audit", marker=marker))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("configure", ["marker", "ini"])
def test_the_json_round_trip_names_each_argument_that_fails_it(
    pytester: pytest.Pytester, configure: str
) -> None:
    marker = '@pytest.mark.bgtasks(roundtrip="json")' if configure == "marker" else ""
    if configure == "ini":
        pytester.makeini("[pytest]\nbgtasks_roundtrip = json\n")
    check = "    TestClient(app).post('/greet')\n    TestClient(app).post('/remind')"
    result = run(pytester, inner_test("testclient", "/deliver", check=check, marker=marker))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 2 background task problem(s):",
            "  #1 deliver(*)  succeeded in *  POST /deliver",
            "      argument 'sent_at' (datetime.datetime) does not survive a json round trip"
            " (TypeError: Object of type datetime is not JSON serializable), so a job queue"
            " could not carry it: pass plain data (ids, strings, numbers, lists, dicts)",
            "      argument 'tags' (builtins.tuple) does not survive a json round trip (it comes"
            " back as a list that is not equal to the original)*",
            "  #3 remind(*)  succeeded in *  POST /remind",
            "      argument 'then' (builtins.function) does not survive a json round trip*",
        ]
    )
    result.stdout.no_fnmatch_line("  #2 greet*")  # strings, numbers, lists, dicts: they pass


def test_the_pickle_round_trip_passes_what_pickle_carries(pytester: pytest.Pytester) -> None:
    marker = '@pytest.mark.bgtasks(roundtrip="pickle")'
    check = "    TestClient(app).post('/greet')\n    TestClient(app).post('/remind')"
    result = run(pytester, inner_test("testclient", "/deliver", check=check, marker=marker))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "  #3 remind(*)  succeeded in *  POST /remind",
            "      argument 'then' (builtins.function) does not survive a pickle round trip"
            " (*local object*remind_later.<locals>.confirm*), so a job queue could"
            " not carry it*",
        ]
    )
    result.stdout.no_fnmatch_line("  #1 deliver*")  # datetimes and tuples survive pickle


PICKLED = """
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient


class Handle:  # compares by identity: no copy ever equals it, so only the round trip counts
    pass


class Order:  # compares by value, but its pickled form drops the items
    def __init__(self, items):
        self.items = items

    def __eq__(self, other):
        return isinstance(other, Order) and other.items == self.items

    def __reduce__(self):
        return (Order, ([],))


def store(handle, handles, order):
    pass


app = FastAPI()


@app.post("/store")
def post(background_tasks: BackgroundTasks):
    background_tasks.add_task(store, Handle(), [Handle(), {"key": Handle()}], Order(["apple"]))


@pytest.mark.bgtasks(roundtrip="pickle")
def test_store():
    TestClient(app).post("/store")
"""


def test_the_pickle_round_trip_compares_only_values_that_compare_by_value(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_pickled=PICKLED)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-bgtasks: 1 background task problem(s):",
            "      argument 'order' (test_pickled.Order) does not survive a pickle round trip (it"
            " comes back as an Order that is not equal to the original)*",
        ]
    )
    result.stdout.no_fnmatch_line("*argument 'handle*")  # identity only: the round trip passed


def test_the_round_trip_judges_background_tasks_only(pytester: pytest.Pytester) -> None:
    marker = '@pytest.mark.bgtasks(roundtrip="pickle", lifetimes=False)'
    check = "    assert seen == ['audit /audit-awaited']"
    result = run(pytester, inner_test("testclient", "/audit-awaited", check=check, marker=marker))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((0, 100, 0), None),
        ((0, 105, 0), None),
        ((0, 106, 0), "every"),
        ((0, 115, 14), "every"),
        ((0, 117, 1), "every"),
        ((0, 118, 0), None),
        ((0, 120, 4), None),
        ((0, 121, 0), "function"),
        ((0, 165, 0), "function"),
    ],
)
def test_the_version_rules_are_the_observed_ones(
    version: tuple[int, ...], expected: str | None
) -> None:
    """Observed with a task reading what its endpoint got (see _sources/fastapi.py)."""
    assert rule(version) == expected
