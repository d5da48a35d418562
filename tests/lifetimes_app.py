"""A FastAPI app whose tasks get arguments that end with the request, for the lifetime tests.

Runs on every supported FastAPI: the route with ``Depends(..., scope="function")`` exists
only where FastAPI has the keyword (0.121 and later).
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import metadata

from fastapi import BackgroundTasks, Depends, FastAPI, File, Request, UploadFile
from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

FASTAPI = tuple(int(part) for part in metadata.version("fastapi").split(".")[:2])
#: What FastAPI closes before the tasks: every yield dependency and upload, scope="function"
#: dependencies only, or nothing (observed; see pytest_bgtasks/_sources/fastapi.py).
CLOSES_FIRST = (
    "every" if (0, 106) <= FASTAPI < (0, 118) else "function" if FASTAPI >= (0, 121) else None
)
HAS_SCOPE = "scope" in inspect.signature(Depends).parameters

#: What the tasks saw, in order.
seen: list[str] = []

engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


Base.metadata.create_all(engine)
with Session(engine) as setup:
    setup.add(User(id=1, name="ann"))
    setup.commit()


class Resource:
    """Something a dependency opens and closes."""

    def __init__(self) -> None:
        self.closed = False


def get_resource() -> Iterator[Resource]:
    resource = Resource()
    try:
        yield resource
    finally:
        resource.closed = True


async def get_resource_async() -> AsyncIterator[Resource]:
    resource = Resource()
    try:
        yield resource
    finally:
        resource.closed = True


def get_db() -> Iterator[Session]:
    with Session(engine) as db:
        yield db


def get_user_id() -> Iterator[int]:
    yield 1  # a yield dependency's plain value: it has no life to end


def audit(request: Request) -> None:
    seen.append(f"audit {request.url.path}")


async def audit_async(request: Request) -> None:
    seen.append(f"audit {request.url.path}")


def use(resource: Resource) -> None:
    seen.append(f"resource closed={resource.closed}")


def store(file: UploadFile) -> None:
    seen.append(f"stored {file.filename}: {file.file.read()!r}")


def store_bytes(name: str, content: bytes) -> None:
    seen.append(f"stored {name}: {content!r}")


def rename(db: Session, user: User, name: str) -> None:
    user.name = name
    db.commit()
    seen.append(f"renamed to {name}")


def rename_by_id(user_id: int, name: str) -> None:
    with Session(engine) as db:
        user = db.get(User, user_id)
        assert user is not None
        user.name = name
        db.commit()
    seen.append(f"renamed to {name}")


def deliver(to: str, sent_at: datetime.datetime, tags: tuple[str, ...]) -> None:
    seen.append(f"delivered to {to}")


def greet(to: str, times: int, tags: list[str], meta: dict[str, int]) -> None:
    seen.append(f"greeted {to}")


def remind(to: str, then: Callable[[], None]) -> None:
    then()


app = FastAPI()


@app.post("/audit")
async def audit_request(request: Request, background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(audit, request)
    return {"ok": True}


@app.post("/audit-awaited")
async def audit_awaited(request: Request) -> dict[str, bool]:
    await asyncio.create_task(audit_async(request))  # awaited: the request is alive
    return {"ok": True}


@app.post("/upload")
async def upload(file: UploadFile, background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(store, file)
    return {"ok": True}


@app.post("/upload-bytes")
async def upload_bytes(
    background_tasks: BackgroundTasks, file: UploadFile = File(...)
) -> dict[str, bool]:
    background_tasks.add_task(store_bytes, file.filename or "upload", await file.read())
    return {"ok": True}


@app.post("/resource")
def default_scope(
    background_tasks: BackgroundTasks,
    resource: Resource = Depends(get_resource),
    other: Resource = Depends(get_resource_async),
    user_id: int = Depends(get_user_id),
) -> dict[str, bool]:
    background_tasks.add_task(use, resource=resource)
    background_tasks.add_task(use, other)
    background_tasks.add_task(rename_by_id, user_id, "ann")
    return {"ok": True}


@app.post("/users/{user_id}/rename")
def rename_user(
    user_id: int, name: str, background_tasks: BackgroundTasks, db: Session = Depends(get_db)
) -> dict[str, bool]:
    user = db.get(User, user_id)
    background_tasks.add_task(rename, db, user, name)
    return {"ok": True}


@app.post("/users/{user_id}/rename-by-id")
def rename_user_by_id(
    user_id: int, name: str, background_tasks: BackgroundTasks
) -> dict[str, bool]:
    background_tasks.add_task(rename_by_id, user_id, name)
    return {"ok": True}


@app.post("/deliver")
def deliver_now(background_tasks: BackgroundTasks) -> dict[str, bool]:
    sent_at = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    background_tasks.add_task(deliver, "ann@example.com", sent_at, tags=("a", "b"))
    return {"ok": True}


@app.post("/greet")
def greet_now(background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(greet, "ann@example.com", 2, ["a"], {"b": 1})
    return {"ok": True}


@app.post("/remind")
def remind_later(background_tasks: BackgroundTasks) -> dict[str, bool]:
    def confirm() -> None:
        seen.append("reminded")

    background_tasks.add_task(remind, "ann@example.com", confirm)
    return {"ok": True}


if HAS_SCOPE:

    @app.post("/function-scope")
    def function_scope(
        background_tasks: BackgroundTasks,
        resource: Resource = Depends(get_resource, scope="function"),
    ) -> dict[str, bool]:
        background_tasks.add_task(use, resource)
        return {"ok": True}

    @app.post("/users/{user_id}/rename-function-scope")
    def rename_user_function_scope(
        user_id: int,
        name: str,
        background_tasks: BackgroundTasks,
        db: Session = Depends(get_db, scope="function"),
    ) -> dict[str, bool]:
        user = db.get(User, user_id)
        background_tasks.add_task(rename, db, user, name)
        return {"ok": True}
