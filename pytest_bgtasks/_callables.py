"""What a scheduled callable is: its name, the objects and names it answers to, its signature.

Apps schedule more than module-level functions: bound methods of per-request objects,
classmethods, callable instances, ``functools.partial`` objects and decorated functions. This
module looks through each of them once, so that matching a recorded call stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Hashable
from typing import Any

#: How many layers (partials, methods, ``__wrapped__``) are followed at most: a guard for cycles.
_MAX_LAYERS = 64


def unwrap_partial(func: Any) -> Any:
    """The function a ``functools.partial`` (however nested) finally calls."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def flatten_partial(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The callable a ``functools.partial`` finally calls, with its baked-in arguments added."""
    while isinstance(func, functools.partial):
        args = (*func.args, *args)
        kwargs = {**func.keywords, **kwargs}
        func = func.func
    return func, args, kwargs


def _is_callable_instance(func: Any) -> bool:
    """True for an object called through its class's ``__call__`` (it has no name of its own)."""
    return not isinstance(func, type) and not isinstance(getattr(func, "__qualname__", None), str)


def callable_name(func: Any) -> str:
    """The qualified name of a task function, looking through ``functools.partial``.

    Functions defined inside another function are named from there (``ingest``, not
    ``test_it.<locals>.ingest``); a callable instance is named by its class.
    """
    return short_name(_qualname(unwrap_partial(func)))


def full_name(func: Any) -> str:
    """``module.qualname`` in full (``app.tasks.outer.<locals>.inner``), through partials."""
    func = unwrap_partial(func)
    owner = type(func) if _is_callable_instance(func) else func
    module = getattr(owner, "__module__", None)
    qualname = _qualname(func)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def short_name(qualname: str) -> str:
    return qualname.rpartition("<locals>.")[2]


def _qualname(func: Any) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__qualname__


class Aliases:
    """The objects and names a recorded callable answers to, worked out once per call.

    ``also`` adds more: a queue's task object and its names for the task.

    ``keys`` hold object identities: the callable, what its partials call, the function of a
    bound method (and the pair function/instance), the class of a callable instance and its
    ``__call__``, and every function a ``functools.wraps`` decorator wrapped. ``names`` hold, for
    each of those, the short name, the full ``__qualname__`` and both with the module in front.
    """

    __slots__ = ("keys", "names", "_pinned")

    def __init__(self, func: Any, also: tuple[Any, ...] = ()) -> None:
        keys: set[Hashable] = set()
        names: set[str] = {alias for alias in also if isinstance(alias, str)}
        pinned: list[Any] = []  # the objects whose ids are keys stay alive while the keys do
        pending = [
            layer for layer in (func, *also) if layer is not None and not isinstance(layer, str)
        ]
        while pending and len(pinned) < _MAX_LAYERS:
            layer = pending.pop()
            if id(layer) in keys:
                continue
            keys.add(id(layer))
            pinned.append(layer)
            if isinstance(layer, functools.partial):
                pending.append(layer.func)
            elif isinstance(layer, types.MethodType):
                keys.add((id(layer.__func__), id(layer.__self__)))
                pending.append(layer.__func__)
            elif _is_callable_instance(layer):
                cls = type(layer)
                keys.add(id(cls))
                pinned.append(cls)
                names.update(_names_of(cls))
                pending.append(cls.__call__)
            else:
                names.update(_names_of(layer))
                wrapped = getattr(layer, "__wrapped__", None)
                if wrapped is not None:
                    pending.append(wrapped)
        self.keys = frozenset(keys)
        self.names = frozenset(names)
        self._pinned = tuple(pinned)


def _names_of(obj: Any) -> tuple[str, ...]:
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str):
        return ()
    short = short_name(qualname)
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return (short, qualname)
    return (
        short,
        qualname,
        f"{module}.{short}",
        f"{module}.{qualname}",
        f"{module}:{short}",
        f"{module}:{qualname}",
    )


def resolve_proxy(target: Any) -> Any:
    """The object a lazy proxy stands for, or ``target`` itself.

    Celery's ``@app.task`` returns a proxy until the app is finalized; the enqueue sees the task
    behind it, so a test naming the proxy must find that task.
    """
    get_current_object = getattr(type(target), "_get_current_object", None)
    return target if get_current_object is None else get_current_object(target)


def target_key(target: Any) -> Hashable:
    """The key of :class:`Aliases` that a callable named in a test must find.

    A method named through its class (``EventBusService._publish_event``) is a plain function:
    it finds every bound method of it. A method of one object (``service.publish``) finds that
    object's calls only; a classmethod (``Report.build``) finds its calls through any class.
    """
    target = unwrap_partial(resolve_proxy(target))
    if isinstance(target, types.MethodType):
        if isinstance(target.__self__, type):
            return id(target.__func__)
        return (id(target.__func__), id(target.__self__))
    return id(target)


class Binding:
    """The signature a recorded callable binds its arguments to, and a key shared by calls of it.

    Calls of one function share the key (bound methods of different objects too), so expected
    arguments are bound once per function, not once per recorded call.
    """

    __slots__ = ("key", "signature")

    def __init__(self, func: Any, signature: inspect.Signature | None = None) -> None:
        if isinstance(func, types.MethodType):
            self.key: Hashable = ("method", id(func.__func__))
        elif _is_callable_instance(func):
            self.key = ("instance", id(type(func)))
        else:
            self.key = id(func)
        self.signature = signature_of(func) if signature is None else signature


def signature_of(func: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # builtins without one
        return None


def target_signatures(target: Any) -> list[inspect.Signature]:
    """The signatures a task named ``target`` can bind expected arguments to, likeliest first.

    A function whose first parameter is ``self`` or ``cls`` (a method named through its class)
    binds them without it; a class binds them to its ``__call__`` (its instances are the tasks).
    """
    target = unwrap_partial(resolve_proxy(target))
    if isinstance(target, type) and _defines_call(target):
        return _without_first(signature_of(target.__call__))
    signature = signature_of(target)
    if signature is None:
        return []
    if isinstance(target, types.FunctionType):
        first = next(iter(signature.parameters), None)
        alternatives = _without_first(signature)
        if first in ("self", "cls"):
            return [*alternatives, signature]
        return [signature, *alternatives]
    return [signature]


def _defines_call(cls: type) -> bool:
    return any("__call__" in vars(klass) for klass in cls.__mro__[:-1])


def _without_first(signature: inspect.Signature | None) -> list[inspect.Signature]:
    if signature is None or not signature.parameters:
        return []
    first, *rest = signature.parameters.values()
    if first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        return []
    return [signature.replace(parameters=rest)]


def bind(
    signature: inspect.Signature | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    partial: bool,
) -> dict[str, Any]:
    """Map arguments to the signature's parameter names; raise TypeError when they don't fit.

    With ``partial=False`` defaults are applied and a misfit falls back to index-named
    positionals (``"0"``, ``"1"``) beside the keyword arguments, as does a missing signature.
    """
    if signature is None:
        return unbound(args, kwargs)
    try:
        bound = (
            signature.bind_partial(*args, **kwargs) if partial else signature.bind(*args, **kwargs)
        )
    except TypeError:
        if partial:
            raise
        return unbound(args, kwargs)
    if not partial:
        bound.apply_defaults()
    arguments: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        else:
            arguments[name] = value
    return arguments


def unbound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional arguments named by index beside the keyword arguments."""
    return {**{str(i): value for i, value in enumerate(args)}, **kwargs}
