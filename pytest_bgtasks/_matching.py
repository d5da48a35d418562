"""Which recorded calls a function, a name or expected arguments refer to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

from pytest_bgtasks._record import TaskCall, bind_arguments, callable_name, unwrap_partial

#: A task function, or its name (``"write_log"``, ``"Mailer.send"``, ``"app.tasks.write_log"``).
Target = Union[Callable[..., Any], str]  # noqa: UP007 - a runtime alias on Python 3.10


def check_target(target: object, what: str) -> None:
    """Raise a TypeError unless ``target`` is a callable or a name."""
    if not (callable(target) or isinstance(target, str)):
        raise TypeError(f"{what}() takes the task function or its name as a string, got {target!r}")


def describe_target(target: Target) -> str:
    return target if isinstance(target, str) else callable_name(target)


def refers_to(call: TaskCall, target: Target) -> bool:
    """True when ``call`` runs ``target`` (identity, looking through partials) or is so named."""
    if isinstance(target, str):
        name = call.name
        module = getattr(unwrap_partial(call.func), "__module__", None)
        return target in (name, f"{module}.{name}", f"{module}:{name}")
    if call.func is target or call.func == target:
        return True
    return unwrap_partial(call.func) is unwrap_partial(target)


def expected_arguments(
    target: Target, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind the arguments a test expects to ``target``'s parameter names.

    Raises TypeError naming the function when they cannot be its arguments.
    """
    if isinstance(target, str):
        if args:
            raise TypeError(
                f"expected positional arguments need the function itself, not its name"
                f" {target!r}: pass the function or name the arguments as keywords"
            )
        return dict(kwargs)
    try:
        return bind_arguments(target, args, kwargs, partial=True)
    except TypeError as error:
        raise TypeError(
            f"the expected arguments don't fit {callable_name(target)}(): {error}"
        ) from None


def arguments_match(call: TaskCall, expected: dict[str, Any]) -> bool:
    """True when every expected argument equals the call's (``unittest.mock.ANY`` works)."""
    actual = call.arguments
    return all(name in actual and _equal(value, actual[name]) for name, value in expected.items())


def _equal(expected: Any, actual: Any) -> bool:
    try:
        return bool(expected == actual)
    except (TypeError, ValueError):  # arrays and frames compare element-wise
        return expected is actual
