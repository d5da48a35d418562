"""Matching the callables real apps schedule: bound methods, classmethods, callable instances,
partials, nested and decorated functions, by object and by name; and values that refuse to
compare."""

from __future__ import annotations

import functools
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY

import anyio
import numpy
import pandas as pd
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.background import BackgroundTask
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder

#: What the tasks did, in order.
done: list[tuple[str, ...]] = []


@pytest.fixture(autouse=True)
def clean_done() -> None:
    done.clear()


def audited(func: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator made with functools.wraps, sync or async as the function it wraps."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            done.append(("audited",))
            return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        done.append(("audited",))
        return func(*args, **kwargs)

    return wrapper


# -- the sync tasks ---------------------------------------------------------------------------


class EventBusService:
    """A per-request object, as Mealie's: the app schedules ``self._publish_event``."""

    def __init__(self, user: str) -> None:
        self.user = user

    def _publish_event(self, event: str, payload: str = "") -> None:
        done.append(("publish", self.user, event, payload))

    def _forget(self, event: str) -> None:
        done.append(("forget", event))


class SearchIndex:
    @classmethod
    def rebuild(cls, index: str) -> None:
        done.append(("rebuild", cls.__name__, index))


class WelcomeMailer:
    """A callable instance, built per request."""

    def __init__(self, sender: str) -> None:
        self.sender = sender

    def __call__(self, to: str, subject: str) -> None:
        done.append(("mail", self.sender, to, subject))


def write_log(prefix: str, message: str) -> None:
    done.append(("log", prefix, message))


def sync_outer() -> Callable[[str], None]:
    def inner(user: str) -> None:
        done.append(("inner", user))

    return inner


@audited
def record_signup(user: str, plan: str = "free") -> None:
    done.append(("signup", user, plan))


# -- the same, async --------------------------------------------------------------------------


class AsyncEventBusService:
    def __init__(self, user: str) -> None:
        self.user = user

    async def _publish_event(self, event: str, payload: str = "") -> None:
        done.append(("publish", self.user, event, payload))

    async def _forget(self, event: str) -> None:
        done.append(("forget", event))


class AsyncSearchIndex:
    @classmethod
    async def rebuild(cls, index: str) -> None:
        done.append(("rebuild", cls.__name__, index))


class AsyncWelcomeMailer:
    def __init__(self, sender: str) -> None:
        self.sender = sender

    async def __call__(self, to: str, subject: str) -> None:
        done.append(("mail", self.sender, to, subject))


async def async_write_log(prefix: str, message: str) -> None:
    done.append(("log", prefix, message))


def async_outer() -> Callable[[str], Any]:
    async def inner(user: str) -> None:
        done.append(("inner", user))

    return inner


@audited
async def async_record_signup(user: str, plan: str = "free") -> None:
    done.append(("signup", user, plan))


@dataclass(frozen=True)
class Kit:
    """The task callables of one flavour (sync or async)."""

    service: type[EventBusService] | type[AsyncEventBusService]
    index: type[SearchIndex] | type[AsyncSearchIndex]
    mailer: type[WelcomeMailer] | type[AsyncWelcomeMailer]
    write_log: Callable[..., Any]
    outer: Callable[[], Callable[[str], Any]]
    record_signup: Callable[..., Any]


KITS = {
    "sync": Kit(EventBusService, SearchIndex, WelcomeMailer, write_log, sync_outer, record_signup),
    "async": Kit(
        AsyncEventBusService,
        AsyncSearchIndex,
        AsyncWelcomeMailer,
        async_write_log,
        async_outer,
        async_record_signup,
    ),
}

app = FastAPI()


@app.post("/signup/{flavour}")
async def signup(flavour: str, user: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    kit = KITS[flavour]
    service = kit.service(user)
    background_tasks.add_task(service._publish_event, "user.created", payload=user)
    background_tasks.add_task(kit.index.rebuild, "users")
    background_tasks.add_task(kit.mailer("noreply@example.com"), f"{user}@example.com", "Welcome")
    background_tasks.add_task(functools.partial(kit.write_log, "signup"), f"{user} joined")
    background_tasks.add_task(kit.outer(), user)
    background_tasks.add_task(kit.record_signup, user, plan="pro")
    return {"user": user}


@pytest.fixture(params=["sync", "async"])
def kit(request: pytest.FixtureRequest, bgtasks: BackgroundTaskRecorder) -> Kit:
    """The tasks of one flavour, after ann signed up (all six scheduled, and run)."""
    TestClient(app).post(f"/signup/{request.param}", params={"user": "ann"})
    return KITS[str(request.param)]


def test_every_kind_of_callable_ran(bgtasks: BackgroundTaskRecorder, kit: Kit) -> None:
    assert len(bgtasks.succeeded) == 6
    assert [call.name for call in bgtasks.calls] == [
        f"{kit.service.__name__}._publish_event",
        f"{kit.index.__name__}.rebuild",
        kit.mailer.__name__,
        kit.write_log.__name__,
        "inner",
        kit.record_signup.__name__,
    ]


def test_a_bound_method_is_named_through_its_class(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    method = kit.service._publish_event

    call = bgtasks.assert_scheduled(method, "user.created", payload="ann")
    assert call.arguments == {"event": "user.created", "payload": "ann"}  # no self
    assert bgtasks.assert_scheduled_once(method, "user.created") is call
    assert bgtasks.calls_to(method) == [call]
    assert bgtasks.calls_to(f"{kit.service.__name__}._publish_event") == [call]
    assert bgtasks.calls_to(f"tests.test_matching.{kit.service.__name__}._publish_event") == [call]
    bgtasks.assert_not_scheduled(kit.service._forget)
    with pytest.raises(
        AssertionError, match=r"Expected no call to \w*EventBusService._publish_event"
    ):
        bgtasks.assert_not_scheduled(method)


def test_a_method_of_one_object_matches_that_objects_calls_only(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    ann, bob = EventBusService("ann"), EventBusService("bob")
    anyio.run(BackgroundTask(ann._publish_event, "user.created"))

    assert bgtasks.calls_to(ann._publish_event) == bgtasks.calls
    assert bgtasks.calls_to(bob._publish_event) == []
    assert bgtasks.calls_to(EventBusService._publish_event) == bgtasks.calls


def test_a_classmethod_is_named_through_its_class(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    call = bgtasks.assert_scheduled_once(kit.index.rebuild, "users")
    assert call.arguments == {"index": "users"}
    assert bgtasks.calls_to(f"{kit.index.__name__}.rebuild") == [call]
    assert done.count(("rebuild", kit.index.__name__, "users")) == 1


def test_a_callable_instance_is_named_by_its_class(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    call = bgtasks.assert_scheduled(kit.mailer, "ann@example.com", subject="Welcome")
    assert call.arguments == {"to": "ann@example.com", "subject": "Welcome"}
    assert bgtasks.assert_scheduled_once(kit.mailer.__call__, "ann@example.com") is call
    assert bgtasks.calls_to(kit.mailer.__name__) == [call]
    with pytest.raises(AssertionError, match=r"Mailer\(to='bob@example.com'\) to be scheduled"):
        bgtasks.assert_scheduled(kit.mailer, "bob@example.com")


def test_a_partials_baked_in_arguments_are_arguments(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    call = bgtasks.assert_scheduled(kit.write_log, "signup")
    assert call.arguments == {"prefix": "signup", "message": "ann joined"}
    bgtasks.assert_scheduled_once(kit.write_log, "signup", "ann joined")
    bgtasks.assert_scheduled(kit.write_log, message="ann joined")
    bgtasks.assert_scheduled(functools.partial(kit.write_log, "other"), "signup")
    assert call.name == kit.write_log.__name__


def test_a_nested_function_answers_to_its_short_and_full_names(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    qualname = f"{kit.outer.__name__}.<locals>.inner"
    (call,) = bgtasks.calls_to("inner")

    assert bgtasks.calls_to(qualname) == [call]
    assert bgtasks.calls_to(f"tests.test_matching.{qualname}") == [call]
    assert bgtasks.calls_to(f"tests.test_matching:{qualname}") == [call]
    assert bgtasks.calls_to("other_outer.<locals>.inner") == []
    assert call.name == "inner"
    assert call.full_name == f"tests.test_matching.{qualname}"
    bgtasks.assert_scheduled_once(qualname, "ann")
    bgtasks.assert_scheduled("inner", user="ann")


def test_a_decorated_function_matches_by_wrapper_and_by_wrapped(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    call = bgtasks.assert_scheduled_once(kit.record_signup, "ann", plan="pro")
    assert bgtasks.assert_scheduled_once(kit.record_signup.__wrapped__, "ann", "pro") is call
    assert bgtasks.calls_to(kit.record_signup.__name__) == [call]
    assert call.arguments == {"user": "ann", "plan": "pro"}
    assert ("signup", "ann", "pro") in done


def test_a_name_binds_positional_arguments_to_the_recorded_function(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    bgtasks.assert_scheduled(f"{kit.service.__name__}._publish_event", "user.created", "ann")
    bgtasks.assert_scheduled(kit.write_log.__name__, "signup", "ann joined")
    bgtasks.assert_scheduled(kit.mailer.__name__, ANY, "Welcome")

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled(kit.write_log.__name__, "signup", "bob joined")
    assert str(raised.value).splitlines()[0] == (
        f"Expected a background task {kit.write_log.__name__}(prefix='signup',"
        " message='bob joined') to be scheduled."
    )


def test_a_name_whose_function_cannot_take_the_arguments_says_so(
    bgtasks: BackgroundTaskRecorder, kit: Kit
) -> None:
    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled("inner", "ann", "extra")

    assert str(raised.value).splitlines()[-1] == (
        "#5 inner did not match: the expected arguments don't fit inner(): too many positional"
        " arguments"
    )


def test_expected_arguments_that_fit_no_call_of_the_function_are_a_type_error(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    with pytest.raises(
        TypeError,
        match=r"assert_scheduled_once\(\): the expected arguments don't fit"
        r" WelcomeMailer\(\): too many positional arguments",
    ):
        bgtasks.assert_scheduled_once(WelcomeMailer, "a", "b", "c")


FAULT_TARGETS: dict[str, Callable[[Kit], Any]] = {
    "bound method": lambda kit: kit.service._publish_event,
    "classmethod": lambda kit: kit.index.rebuild,
    "callable instance": lambda kit: kit.mailer,
    "partial": lambda kit: kit.write_log,
    "nested function": lambda kit: "inner",
    "wrapped function": lambda kit: kit.record_signup.__wrapped__,
}


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("kind", FAULT_TARGETS)
def test_a_fault_applies_to_every_kind_of_callable(
    bgtasks: BackgroundTaskRecorder, flavour: str, kind: str
) -> None:
    target = FAULT_TARGETS[kind](KITS[flavour])
    fault = bgtasks.fail(target, ConnectionError("bus down"))

    TestClient(app).post(f"/signup/{flavour}", params={"user": "ann"})

    call = bgtasks.assert_failed(target, ConnectionError, match="bus down")
    assert fault.applied == 1
    assert [other.status for other in bgtasks.calls[call.index :]] == ["skipped"] * (6 - call.index)


# -- values that refuse to compare -------------------------------------------------------------


class Grumpy:
    """A value whose == raises, as some ORM and numeric types do."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("cannot compare")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "Grumpy()"


def store(value: Any) -> None:
    done.append(("store",))


def schedule(*values: Any) -> None:
    """Schedule ``store(value)`` for each value through a real request."""
    local = FastAPI()

    @local.post("/store")
    def endpoint(background_tasks: BackgroundTasks) -> None:
        for value in values:
            background_tasks.add_task(store, value)

    TestClient(local).post("/store")


def test_an_argument_whose_eq_raises_does_not_match_and_says_why(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    grumpy = Grumpy()
    schedule(grumpy)

    assert bgtasks.assert_scheduled(store, grumpy).arguments == {"value": grumpy}  # itself
    bgtasks.assert_scheduled(store, ANY)
    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled(store, "plain")
    assert str(raised.value).splitlines()[-1] == (
        "#1 store did not match: argument 'value': comparing raised ValueError('cannot compare')"
    )


def test_a_structure_that_contains_itself_does_not_match_and_says_why(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    recorded: list[Any] = [1]
    recorded.append(recorded)
    schedule(recorded)
    expected: list[Any] = [1]
    expected.append(expected)

    bgtasks.assert_scheduled(store, recorded)
    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_once(store, expected)
    assert str(raised.value).splitlines()[-1] == (
        "#1 store did not match: argument 'value': comparing recursed without end (does the"
        " value contain itself?)"
    )


def test_a_secret_arguments_comparison_error_hides_its_message(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    def connect(password: Any) -> None:
        pass

    anyio.run(BackgroundTask(connect, Grumpy()))

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled(connect, "hunter2")
    assert str(raised.value).splitlines()[-1] == (
        "#1 connect did not match: argument 'password': comparing raised ValueError"
    )


def test_dataframes_match_element_wise(bgtasks: BackgroundTaskRecorder) -> None:
    frame = pd.DataFrame({"user": ["ann", "bob"], "visits": [3, 5]})
    schedule(frame)

    bgtasks.assert_scheduled_once(store, frame.copy())
    bgtasks.assert_scheduled(store, ANY)
    with pytest.raises(AssertionError) as different:
        bgtasks.assert_scheduled(store, frame.assign(visits=[3, 6]))
    assert "did not match" not in str(different.value)
    with pytest.raises(AssertionError, match="store did not match: argument 'value': comparing"):
        bgtasks.assert_scheduled(store, frame.rename(columns={"user": "name"}))
    with pytest.raises(AssertionError):
        bgtasks.assert_scheduled(store, frame.head(1))


def test_arrays_of_another_shape_never_match_even_where_they_broadcast(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    schedule(numpy.arange(3))

    bgtasks.assert_scheduled_once(store, numpy.arange(3))
    with pytest.raises(AssertionError):  # == broadcasts to an all-True (1, 3) array
        bgtasks.assert_scheduled(store, numpy.arange(3).reshape(1, 3))


class _Undecided:
    """What an ``==`` of a library's own type may return: no truth value, nothing to reduce."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value is ambiguous")


class Measure:
    def __eq__(self, other: object) -> Any:
        return _Undecided()

    __hash__ = object.__hash__


def test_a_comparison_without_a_truth_value_is_not_a_match(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    schedule(Measure())

    with pytest.raises(AssertionError):
        bgtasks.assert_scheduled(store, Measure())


# -- what users see ----------------------------------------------------------------------------

USER_TEST = """
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient


class EventBusService:
    def __init__(self, user):
        self.user = user

    {prefix}def _publish_event(self, event, payload=""):
        pass


class Grumpy:
    def __eq__(self, other):
        raise ValueError("cannot compare")

    __hash__ = object.__hash__

    def __repr__(self):
        return "Grumpy()"


{prefix}def store(value):
    pass


app = FastAPI()


@app.post("/users/{{user}}")
def create(user: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(EventBusService(user)._publish_event, "user.created", payload=user)
    background_tasks.add_task(store, Grumpy())


def test_wrong_event(bgtasks):
    TestClient(app).post("/users/ann")
    bgtasks.assert_scheduled(EventBusService._publish_event, "user.deleted")


def test_grumpy_value(bgtasks):
    TestClient(app).post("/users/ann")
    bgtasks.assert_scheduled("store", "plain")


def test_faulted_method(bgtasks):
    bgtasks.fail(EventBusService._publish_event, ConnectionError("bus down"))
    TestClient(app).post("/users/ann")
    bgtasks.assert_failed(EventBusService._publish_event, ConnectionError)
"""


@pytest.mark.parametrize("prefix", ["", "async "], ids=["sync", "async"])
def test_failure_messages_users_see(pytester: pytest.Pytester, prefix: str) -> None:
    pytester.makepyfile(test_app=textwrap.dedent(USER_TEST).format(prefix=prefix))

    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_wrong_event _*",
            "E *AssertionError: Expected a background task EventBusService._publish_event("
            "event='user.deleted') to be scheduled.",
            "E *Scheduled tasks (2):",
            "E *#1 EventBusService._publish_event(event='user.created', payload='ann')"
            "  succeeded in *  POST /users/ann (/users/{user})",
            "E *#2 store(value=Grumpy())  succeeded in *",
            "*_ test_grumpy_value _*",
            "E *AssertionError: Expected a background task store(value='plain') to be scheduled.",
            "E *#2 store did not match: argument 'value': comparing raised"
            " ValueError('cannot compare')",
        ]
    )
