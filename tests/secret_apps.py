"""A FastAPI app whose background tasks carry secrets in every shape the plugin must hide."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

from fastapi import BackgroundTasks, Depends, FastAPI
from pydantic import BaseModel, SecretStr

#: Every secret below: none may appear in anything the plugin prints or writes.
SECRETS = (
    "smtp-pw-4242",
    "reset-tok-9f8e7d",
    "confirm-tok-8e7d",
    "dbpass-77",
    "urlpass-55",
    "pairpass-66",
    "bearer-tok-31",
    "x-api-key-32",
    "cookie-val-33",
    "model-pw-34",
    "deep-pw-36",
    "secret-str-37",
)

#: Paths and values the tests use, by name: pytest itself prints a failing test's source.
RESET_PATH = "/reset/reset-tok-9f8e7d"
CONFIRM_PATH = "/confirm/confirm-tok-8e7d"
ELSEWHERE_URL = "https://ann:urlpass-55@elsewhere.example.com/report"
LOGIN_ERROR = b"bad login smtp-pw-4242"
NEVER_RAISED = "no login with smtp-pw-4242"


class NewUser(BaseModel):
    email: str
    password: str


def send_email(to: str, password: str) -> None:
    """Logs in to SMTP; the server's error echoes the password, as real ones can."""
    raise smtplib.SMTPAuthenticationError(535, f"5.7.8 login for {to} with {password} rejected")


def send_reset(email: str, token: str) -> None:
    raise RuntimeError(f"could not send reset link {token} to {email}")


def backup(dsn: str) -> None:
    raise ConnectionError(f"could not connect to {dsn}")


def fetch(url: str, auth: tuple[str, str], headers: dict[str, str]) -> None:
    pass


def welcome(user: NewUser, extra: list[object]) -> None:
    pass


def forward(headers: dict[str, str]) -> None:
    pass


def connect(settings: dict[str, object], key: SecretStr) -> None:
    replica = settings["db"]["replicas"][0]  # type: ignore[index]
    password = replica["options"]["password"]
    raise ConnectionError(f"login with {password} and {key.get_secret_value()} refused")


def audit(label: str) -> None:
    pass


def session() -> Iterator[str]:
    yield "db"


app = FastAPI()


@app.post("/login")
async def login(background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(send_email, "ann@example.com", password="smtp-pw-4242")
    return {"ok": True}


@app.post("/reset/{token}")
async def reset(
    token: str, background_tasks: BackgroundTasks, db: str = Depends(session)
) -> dict[str, bool]:
    """The secret is in the path and an argument; the task fails, echoing it."""
    background_tasks.add_task(send_reset, "ann@example.com", token)
    return {"ok": True}


@app.post("/confirm/{token}")
async def confirm(token: str, background_tasks: BackgroundTasks) -> dict[str, bool]:
    """The secret is only in the path: the route's parameter name says it is one."""
    background_tasks.add_task(audit, "confirmed")
    return {"ok": True}


@app.post("/backup")
async def start_backup(
    background_tasks: BackgroundTasks, dsn: str = "postgresql://app:dbpass-77@db/app"
) -> dict[str, bool]:
    background_tasks.add_task(backup, dsn)
    return {"ok": True}


@app.post("/fetch")
async def start_fetch(background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(
        fetch,
        "https://ann:urlpass-55@files.example.com/report",
        auth=("ann", "pairpass-66"),
        headers={
            "Authorization": "Bearer bearer-tok-31",
            "X-API-Key": "x-api-key-32",
            "Cookie": "session=cookie-val-33",
            "Accept": "application/json",
        },
    )
    return {"ok": True}


@app.post("/welcome")
async def start_welcome(background_tasks: BackgroundTasks) -> dict[str, bool]:
    user = NewUser(email="ann@example.com", password="model-pw-34")
    background_tasks.add_task(welcome, user, [{"profile": {"X-SSN": "ssn-123-45"}}])
    return {"ok": True}


@app.post("/forward")
async def start_forward(
    header: dict[str, str], background_tasks: BackgroundTasks
) -> dict[str, bool]:
    """Forwards one header, named and valued by the request body."""
    background_tasks.add_task(forward, {header["name"]: header["value"]})
    return {"ok": True}


@app.post("/connect")
async def start_connect(background_tasks: BackgroundTasks) -> dict[str, bool]:
    """A password deeper than the report shows, and a pydantic SecretStr."""
    settings = {"db": {"replicas": [{"options": {"password": "deep-pw-36"}}]}}
    background_tasks.add_task(connect, settings, SecretStr("secret-str-37"))
    return {"ok": True}
