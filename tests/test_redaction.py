"""Secrets are never printed: by name, by what a value is, and wherever a found secret recurs.

The app is ``tests/secret_apps.py``; each of its ``SECRETS`` is checked against everything the
plugin writes: assertion messages, teardown errors, report sections, ``--bgtasks-report`` at every
verbosity, the JSON file, junit XML, warnings and timeout messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder
from tests import secret_apps
from tests.secret_apps import SECRETS, app, audit, fetch

SSN = "ssn-123-45"  # secret only once ``bgtasks_redact = ssn`` says so

FETCH = (
    "fetch(url='https://ann:***@files.example.com/report', auth=('ann', ***), headers={'Accept':"
    " 'application/json', 'Authorization': ***, 'Cookie': ***, 'X-API-Key': ***})"
)


def leaked(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    return [secret for secret in secrets if secret in text]


# -- assertion messages, in process --------------------------------------------------------


@pytest.mark.bgtasks(strict=False)
@pytest.mark.parametrize(
    ("path", "shown"),
    [
        pytest.param(
            "/login",
            [
                "#1 send_email(to='ann@example.com', password=***)  failed in ",
                "SMTPAuthenticationError: (535, '5.7.8 login for ann@example.com with *** rejected')",
            ],
            id="password-echoed-by-the-exception",
        ),
        pytest.param(
            "/reset/reset-tok-9f8e7d",
            [
                "send_reset(email='ann@example.com', token=***)  failed in ",
                "POST /reset/*** (/reset/{token})",
                "RuntimeError: could not send reset link *** to ann@example.com",
            ],
            id="token-in-the-path-and-the-traceback",
        ),
        pytest.param(
            "/confirm/confirm-tok-8e7d",
            ["#1 audit(label='confirmed')  succeeded in ", "POST /confirm/*** (/confirm/{token})"],
            id="token-only-in-the-route-path",
        ),
        pytest.param(
            "/backup",
            [
                "#1 backup(dsn='postgresql://app:***@db/app')  failed in ",
                "ConnectionError: could not connect to postgresql://app:***@db/app",
            ],
            id="dsn",
        ),
        pytest.param("/fetch", [f"#1 {FETCH}  succeeded in "], id="url-auth-pair-headers"),
        pytest.param(
            "/welcome",
            [
                "#1 welcome(user=NewUser(email='ann@example.com', password=***),"
                " extra=[{'profile': {'X-SSN': 'ssn-123-45'}}])"
            ],
            id="pydantic-model",
        ),
        pytest.param(
            "/connect",
            [
                "#1 connect(settings={'db': {'replicas': [{...}]}}, key=SecretStr('**********'))",
                "ConnectionError: login with *** and *** refused",
            ],
            id="deeper-than-shown-and-secretstr",
        ),
    ],
)
def test_assertion_messages_hide_secrets_by_what_they_are(
    bgtasks: BackgroundTaskRecorder, path: str, shown: list[str]
) -> None:
    TestClient(app).post(path)

    with pytest.raises(AssertionError) as info:
        bgtasks.assert_not_scheduled()

    message = str(info.value)
    assert [line for line in shown if line not in message] == [], message
    assert leaked(message) == [], message


def unlock(password: bytes, secret: int, api_key: list[str], token: dict[str, str]) -> None:
    raise PermissionError(
        f"vault refused {password.decode()}, {secret}, {' and '.join(api_key)}, {token['value']}"
    )


@pytest.mark.bgtasks(strict=False)
def test_secrets_of_every_type_are_found_and_hidden_wherever_they_recur(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    """Bytes, numbers, the items of a list and the values of a dict under a secret name: each is
    hidden where the exception's message repeats it as plain text."""
    secrets = ("bytes-pass-77", "48213579", "key-alpha-1", "key-beta-2", "tok-zeta-3")
    vault = FastAPI()

    @vault.post("/unlock")
    def post(background_tasks: BackgroundTasks) -> None:
        background_tasks.add_task(
            unlock,
            b"bytes-pass-77",
            48213579,
            ["key-alpha-1", "key-beta-2"],
            {"value": "tok-zeta-3"},
        )

    TestClient(vault).post("/unlock")
    with pytest.raises(AssertionError) as info:
        bgtasks.assert_not_scheduled()

    message = str(info.value)
    assert "PermissionError: vault refused ***, ***, *** and ***, ***" in message, message
    assert leaked(message, secrets) == [], message


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("Authorization", True),
        ("X-API-Key", True),
        ("api_key", True),
        ("apiKey", True),
        ("Set-Cookie", True),
        ("X-Auth-Token", True),
        ("client_secret", True),
        ("Proxy-Authorization", True),
        ("author", False),
        ("Accept", False),
    ],
)
def test_secret_key_names_ignore_case_dashes_and_underscores(
    bgtasks: BackgroundTaskRecorder, name: str, secret: bool
) -> None:
    TestClient(app).post("/forward", json={"name": name, "value": "header-value-1"})

    with pytest.raises(AssertionError) as info:
        bgtasks.assert_not_scheduled(secret_apps.forward)

    shown = "***" if secret else "'header-value-1'"
    assert f"#1 forward(headers={{'{name}': {shown}}})" in str(info.value)


def test_expected_values_are_redacted_too(bgtasks: BackgroundTaskRecorder) -> None:
    TestClient(app).post("/fetch")

    with pytest.raises(AssertionError) as info:
        bgtasks.assert_scheduled(
            fetch,
            "https://ann:urlpass-55@elsewhere.example.com/report",
            auth=("ann", "pairpass-66"),
            headers={"Authorization": "Bearer bearer-tok-31"},
        )
    with pytest.raises(AssertionError) as echoed:
        bgtasks.assert_scheduled(audit, "bearer-tok-31")  # a secret of a recorded call

    assert str(info.value).splitlines()[0] == (
        "Expected a background task fetch(url='https://ann:***@elsewhere.example.com/report',"
        " auth=('ann', ***), headers={'Authorization': ***}) to be scheduled."
    )
    assert str(echoed.value).splitlines()[0] == (
        "Expected a background task audit(label='***') to be scheduled."
    )
    assert leaked(str(info.value) + str(echoed.value)) == []


@pytest.mark.bgtasks(strict=False)
@pytest.mark.parametrize(
    ("path", "shown"),
    [
        pytest.param(
            "/reset/7",
            [
                "#1 send_reset(email='ann@example.com', token=***)  failed in ",
                "POST /reset/*** (/reset/{token})",
                # "7" is not searched for in other text: it would erase every 7 there
                "RuntimeError: could not send reset link 7 to ann@example.com",
            ],
            id="path-parameter",
        ),
        pytest.param(
            "/backup?dsn=postgresql://app:pw@db/app",
            [
                "#1 backup(dsn='postgresql://app:***@db/app')  failed in ",
                "ConnectionError: could not connect to postgresql://app:***@db/app",
            ],
            id="dsn-password",
        ),
        pytest.param(
            "/backup?dsn=https://gh1@example.com/repo.git",
            [
                "#1 backup(dsn='https://***@example.com/repo.git')  failed in ",
                "ConnectionError: could not connect to https://***@example.com/repo.git",
            ],
            id="url-user-alone",
        ),
        pytest.param(
            "/backup?dsn=host=db password=pw user=app",
            ["#1 backup(dsn='host=db password=*** user=app')  failed in "],
            id="keyword-dsn",
        ),
        pytest.param(
            "/backup?dsn=https://api.example.com/v1?api_key=k1%26page=2",
            ["ConnectionError: could not connect to https://api.example.com/v1?api_key=***&page=2"],
            id="query-string",
        ),
    ],
)
def test_a_short_secret_is_hidden_where_it_stands(
    bgtasks: BackgroundTaskRecorder, path: str, shown: list[str]
) -> None:
    TestClient(app).post(path)

    with pytest.raises(AssertionError) as info:
        bgtasks.assert_not_scheduled()

    message = str(info.value)
    assert [line for line in shown if line not in message] == [], message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "ValueError: {'password': 'pw', 'user': 'ann'}",
            "ValueError: {'password': ***, 'user': 'ann'}",
        ),
        ('body {"api_key": "k1"} refused', 'body {"api_key": ***} refused'),
        ('{"pin": 1, "token": 12345}', '{"pin": 1, "token": ***}'),
        ("argument 'password': comparing raised", "argument 'password': comparing raised"),
        ("401 for Authorization: Bearer ab.cd", "401 for Authorization: Bearer ***"),
        ("SECRET_KEY=xy and secret=", "SECRET_KEY=*** and secret="),
        ("author=ann keyboard=us", "author=ann keyboard=us"),
    ],
)
def test_messages_hide_secret_looking_text(text: str, shown: str) -> None:
    from pytest_bgtasks._rendering import Renderer

    assert Renderer().scrub(text) == shown


# -- everything the plugin writes, through pytest --------------------------------------------

SUITE = """
import smtplib
import pytest
from starlette.testclient import TestClient
from secret_apps import app, backup, fetch, send_email, send_reset
from secret_apps import CONFIRM_PATH, ELSEWHERE_URL, LOGIN_ERROR, NEVER_RAISED, RESET_PATH

PATHS = ["/login", RESET_PATH, CONFIRM_PATH, "/backup", "/fetch", "/welcome"]

def test_teardown_error(bgtasks):
    client = TestClient(app)
    for path in PATHS:
        client.post(path)

def test_report_section(bgtasks):
    client = TestClient(app)
    for path in PATHS:
        client.post(path)
    for func in (send_email, send_reset, backup):
        bgtasks.assert_failed(func)
    assert False, "the test's own failure"

def test_expected_values(bgtasks):
    TestClient(app).post("/fetch")
    bgtasks.assert_scheduled(fetch, ELSEWHERE_URL)

def test_fault(bgtasks):
    bgtasks.fail(send_email, smtplib.SMTPAuthenticationError(535, LOGIN_ERROR))
    TestClient(app).post("/login")

def test_fault_never_applied(bgtasks):
    bgtasks.fail("send_emial", ValueError(NEVER_RAISED))
    TestClient(app).post("/login")
    bgtasks.assert_failed(send_email)

@pytest.mark.bgtasks(mode="deferred")
def test_warning_and_timeout(bgtasks):
    bgtasks.hang(send_reset)
    TestClient(app).post(RESET_PATH)
    bgtasks.run_all(timeout=0.1)
"""

OUTCOMES = {"passed": 3, "failed": 3, "errors": 2}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        secret_apps=Path(secret_apps.__file__).read_text(encoding="utf-8"), test_suite=SUITE
    )
    pytester.makeini(
        "[pytest]\nbgtasks_redact =\n    ssn\n"
        "filterwarnings =\n    default::pytest_bgtasks.BgTasksWarning\n"
    )
    return pytester


def run(project: pytest.Pytester, *flags: str) -> tuple[pytest.RunResult, str, str]:
    """Run the suite with a report, the JSON and junit; return the result and both files."""
    json_path, junit_path = project.path / "tasks.json", project.path / "junit.xml"
    result = project.runpytest(
        "-p",
        "no:randomly",
        "--bgtasks-report",
        f"--bgtasks-json={json_path}",
        f"--junitxml={junit_path}",
        *flags,
    )
    result.assert_outcomes(**OUTCOMES)
    return result, json_path.read_text(encoding="utf-8"), junit_path.read_text(encoding="utf-8")


def test_teardown_errors_sections_warnings_and_timeouts_hide_secrets(
    project: pytest.Pytester,
) -> None:
    result, _, _ = run(project)

    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_teardown_error*",
            "pytest-bgtasks: 3 background task problem(s):",
            "  #1 send_email(to='ann@example.com', password=***)  failed in *s  POST /login",
            "      smtplib.SMTPAuthenticationError: (535, '5.7.8 login for ann@example.com"
            " with *** rejected')",
            "  #2 send_reset(email='ann@example.com', token=***)  failed in *s"
            "  POST /reset/*** (/reset/{token})",
            "      RuntimeError: could not send reset link *** to ann@example.com",
            "  #4 backup(dsn='postgresql://app:***@db/app')  failed in *s  POST /backup",
            "      ConnectionError: could not connect to postgresql://app:***@db/app",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_fault_never_applied*",
            "  fault fail('send_emial', ValueError('no login with ***')) was never applied*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_report_section _*",
            "*- background tasks -*",
            "#3 audit(label='confirmed')  succeeded in *s  POST /confirm/*** (/confirm/{token})",
            f"#5 {FETCH}  succeeded in *s  POST /fetch",
        ]
    )
    assert (  # a substring, not a pattern: fnmatch reads "[" as a character class
        "\n#6 welcome(user=NewUser(email='ann@example.com', password=***),"
        " extra=[{'profile': {'X-SSN': ***}}])  succeeded in " in result.stdout.str()
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected a background task"
            " fetch(url='https://ann:***@elsewhere.example.com/report') to be scheduled.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       TimeoutError: run_all() timed out after 0.1s while running"
            " #1 send_reset(email='ann@example.com', token=***)  *"
            "  POST /reset/*** (/reset/{token})*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*BgTasksWarning: POST /reset/*** has dependencies with yield (session)*"]
    )
    assert leaked(result.stdout.str() + result.stderr.str(), (*SECRETS, SSN)) == []


@pytest.mark.parametrize("verbosity", [["-q"], [], ["-v"]], ids=["quiet", "default", "verbose"])
def test_the_session_report_json_and_junit_hide_secrets(
    project: pytest.Pytester, verbosity: list[str]
) -> None:
    result, json_text, junit_text = run(project, *verbosity)

    assert leaked(result.stdout.str(), (*SECRETS, SSN)) == []
    assert leaked(json_text, (*SECRETS, SSN)) == []
    assert leaked(junit_text, (*SECRETS, SSN)) == []
    result.stdout.fnmatch_lines(["background tasks: * total, *"])
    if verbosity == ["-v"]:
        result.stdout.fnmatch_lines(
            ["  test_suite.py::test_teardown_error  #2 send_reset(email=*, token=***)  failed"]
        )
    assert "POST /reset/***" in junit_text


def test_json_fields_are_redacted_one_by_one(project: pytest.Pytester) -> None:
    _, json_text, _ = run(project)

    rows = {
        (row["test"].rpartition("::")[2], row["index"]): row
        for row in json.loads(json_text)["tasks"]
    }
    reset = rows["test_teardown_error", 2]
    fault = rows["test_fault", 1]
    assert reset["task"] == "send_reset(email='ann@example.com', token=***)"
    assert reset["request"] == "POST /reset/***"
    assert reset["error"] == "RuntimeError: could not send reset link *** to ann@example.com"
    assert rows["test_teardown_error", 3]["request"] == "POST /confirm/***"
    assert fault["fault"] == "fail(send_email, SMTPAuthenticationError(535, b'bad login ***'))"
    assert fault["error"] == "SMTPAuthenticationError: (535, b'bad login ***')"


def test_bgtasks_redact_adds_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        secret_apps=Path(secret_apps.__file__).read_text(encoding="utf-8"),
        test_welcome="""
            from starlette.testclient import TestClient
            from secret_apps import app

            def test_welcome(bgtasks):
                TestClient(app).post("/welcome")
                bgtasks.assert_not_scheduled()
        """,
    )
    without = pytester.runpytest("-p", "no:randomly")
    pytester.makeini("[pytest]\nbgtasks_redact =\n    ssn\n")
    with_ini = pytester.runpytest("-p", "no:randomly")

    without.stdout.fnmatch_lines(["E       #1 welcome(*'X-SSN': 'ssn-123-45'*"])
    with_ini.stdout.fnmatch_lines(["E       #1 welcome(*'X-SSN': [*][*][*]}*"])
    assert SSN not in with_ini.stdout.str()
