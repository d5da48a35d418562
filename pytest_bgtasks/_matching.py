"""Which recorded calls a function, a name or expected arguments refer to."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Union

from pytest_bgtasks._callables import bind, callable_name, target_key, target_signatures, unbound
from pytest_bgtasks._record import TaskCall

#: A task function, or its name (``"write_log"``, ``"Mailer.send"``, ``"app.tasks.write_log"``).
Target = Union[Callable[..., Any], str]  # noqa: UP007 - a runtime alias on Python 3.10

#: The reason :func:`compare` gives for two values that are simply not equal.
DIFFERENT = "different"
#: How many times an element-wise comparison is reduced with ``.all()`` (a frame's: twice).
_MAX_REDUCTIONS = 8


def check_target(target: object, what: str) -> None:
    """Raise a TypeError unless ``target`` is a callable or a name."""
    __tracebackhide__ = True
    if not (callable(target) or isinstance(target, str)):
        raise TypeError(f"{what}() takes the task function or its name as a string, got {target!r}")


def describe_target(target: Target) -> str:
    return target if isinstance(target, str) else callable_name(target)


def refers_to(call: TaskCall, target: Target) -> bool:
    """True when ``call`` runs ``target``, or a task so named.

    A callable matches through partials, ``functools.wraps`` decorators and bound methods: the
    function of a method (``EventBusService._publish_event``) matches its calls on any object,
    a class matches calls of its instances. A name matches a task's short name (``inner``), its
    ``__qualname__`` (``outer.<locals>.inner``), and either with the module (``app.tasks.``).
    """
    return _refers(call, target, None if isinstance(target, str) else target_key(target))


def _refers(call: TaskCall, target: Target, key: Hashable) -> bool:
    if isinstance(target, str):
        return target in call.aliases.names
    return key in call.aliases.keys or _equal_callables(call.func, target)


def _equal_callables(func: Any, target: Any) -> bool:
    """Equality, for callables identity misses: a builtin's bound method (``items.append``)."""
    try:
        return bool(func == target)
    except Exception:  # a callable whose __eq__ raises is simply another callable
        return False


class Expectation:
    """The task a test expects: a target and the arguments it was called with.

    The expected arguments are bound to the recorded function's own signature: without
    ``self`` for a bound method, after a partial's baked-in arguments, and for a name, to the
    function of that name. The binding is done once per function, not once per recorded call.
    """

    def __init__(
        self,
        target: Target,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        method: str,
        is_secret: Callable[[str], bool],
        render: Callable[[dict[str, Any]], str],
    ) -> None:
        __tracebackhide__ = True
        check_target(target, method)
        self.target = target
        self._args = args
        self._kwargs = kwargs
        self._is_secret = is_secret
        self._key = None if isinstance(target, str) else target_key(target)
        self._bound: dict[Hashable, dict[str, Any] | str] = {}
        self._render = render
        #: The expected arguments by parameter name, as failure messages show them.
        self.shown = self._bind_to_target(method)
        #: ``shown`` rendered before any comparison: a matcher's repr may change once it has
        #: compared (dirty-equals shows the value it last matched).
        self.described = render(self.shown)
        self._named = not (isinstance(target, str) and args)
        #: The recorded calls that matched, once :meth:`select` ran.
        self.matches: list[TaskCall] = []
        #: The calls of the target whose arguments did not match (near misses).
        self.misses: list[TaskCall] = []
        #: Why calls of the target did not match, when it was more than a different value.
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        """The target as messages name it."""
        return describe_target(self.target)

    def _bind_to_target(self, method: str) -> dict[str, Any]:
        __tracebackhide__ = True
        if isinstance(self.target, str):
            return unbound(self._args, self._kwargs)  # named once a recorded function binds them
        errors: list[TypeError] = []
        signatures = target_signatures(self.target)
        for signature in signatures:
            try:
                return bind(signature, self._args, self._kwargs, partial=True)
            except TypeError as error:
                errors.append(error)
        if errors:
            raise TypeError(
                f"{method}(): the expected arguments don't fit"
                f" {describe_target(self.target)}(): {errors[0]}"
            ) from None
        return unbound(self._args, self._kwargs)

    def select(self, calls: Iterable[TaskCall]) -> list[TaskCall]:
        """The calls that match, in order; notes say why the others of the target did not."""
        for call in calls:
            if not _refers(call, self.target, self._key):
                continue
            why = self._mismatch(call)
            if why is None:
                self.matches.append(call)
                continue
            self.misses.append(call)
            if why:
                self.notes.append(f"#{call.index} {call.name} did not match: {why}")
        return self.matches

    def _mismatch(self, call: TaskCall) -> str | None:
        """None when ``call`` has the expected arguments; "" when a value differs; else why not."""
        expected = self._expected_for(call)
        if isinstance(expected, str):
            return expected
        actual = call.arguments
        for name, value in expected.items():
            if name not in actual:
                return ""
            why = compare(value, actual[name])
            if why == DIFFERENT:
                return ""
            if why is not None:
                shown = why.partition("(")[0].rstrip() if self._is_secret(name) else why
                return f"argument {name!r}: {shown}"
        return None

    def _expected_for(self, call: TaskCall) -> dict[str, Any] | str:
        """The expected arguments bound to ``call``'s function, or why they don't fit it."""
        binding = call.binding
        expected = self._bound.get(binding.key)
        if expected is None:
            try:
                expected = bind(binding.signature, self._args, self._kwargs, partial=True)
            except TypeError as error:
                expected = f"the expected arguments don't fit {call.name}(): {error}"
            else:
                if not self._named:  # a name's positionals, named after the first function
                    self.shown, self._named = expected, True
                    self.described = self._render(expected)
            self._bound[binding.key] = expected
        return expected


def compare(expected: Any, actual: Any) -> str | None:
    """None when ``expected == actual``; otherwise :data:`DIFFERENT`, or why it could not tell.

    ``expected`` is on the left, so its ``__eq__`` decides (``unittest.mock.ANY``). Element-wise
    results (numpy arrays, pandas frames) are equal when the shapes agree and every element is.
    A comparison that raises, or recurses without end (a list that contains itself), is no
    match, and the reason says so.
    """
    if expected is actual:
        return None
    try:
        result = expected == actual
        if result is True or result is False:  # the common case, without bool()'s detour
            return None if result else DIFFERENT
        return None if _truth(result, expected, actual) else DIFFERENT
    except RecursionError:
        return "comparing recursed without end (does the value contain itself?)"
    except Exception as error:
        return f"comparing raised {error!r}"


def _truth(result: Any, expected: Any, actual: Any) -> bool:
    try:
        return bool(result)
    except (TypeError, ValueError):  # "the truth value of an array is ambiguous"
        pass
    if getattr(expected, "shape", None) != getattr(actual, "shape", None):
        return False
    for _ in range(_MAX_REDUCTIONS):
        if not hasattr(result, "all"):
            return False
        result = result.all()
        try:
            return bool(result)
        except (TypeError, ValueError):
            continue
    return False
