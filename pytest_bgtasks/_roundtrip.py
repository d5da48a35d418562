"""The round trip a job queue puts a task's arguments through (Celery, arq, RQ): survive it or not.

Messages name types and errors, never values: an argument may be a secret.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from pytest_bgtasks._options import Roundtrip

_CONTAINERS = (list, tuple, set, frozenset)


def roundtrip_failure(value: Any, serializer: Roundtrip) -> str | None:
    """Why ``value`` does not come back from ``serializer`` as it went in; None when it does.

    json: ``json.loads(json.dumps(value)) == value``. pickle: ``pickle.loads(pickle.dumps(value))``
    works, and is equal to the original where the value can be compared (a type without its own
    ``__eq__`` compares by identity, so a copy never equals it: only the round trip is checked).
    """
    try:
        if serializer == "json":
            restored = json.loads(json.dumps(value))
        else:
            restored = pickle.loads(pickle.dumps(value))
    except Exception as error:  # every serializer error is the answer, not a crash
        return f"{type(error).__name__}: {error}"
    equal = _equal(restored, value)
    if equal is not False or (serializer == "pickle" and not _comparable(value, set())):
        return None
    kind = type(restored).__qualname__
    return f"it comes back as {_article(kind)} {kind} that is not equal to the original"


def _equal(restored: Any, value: Any) -> bool | None:
    """``restored == value``, or None when that cannot tell (numpy arrays, pandas frames)."""
    try:
        return bool(restored == value)
    except Exception:
        return None


def _comparable(value: Any, seen: set[int]) -> bool:
    """True when ``value`` and everything it contains compare by value, not by identity."""
    if id(value) in seen:
        return True
    if isinstance(value, dict):
        seen.add(id(value))
        return all(_comparable(k, seen) and _comparable(v, seen) for k, v in value.items())
    if isinstance(value, _CONTAINERS):
        seen.add(id(value))
        return all(_comparable(item, seen) for item in value)
    return type(value).__eq__ is not object.__eq__  # type: ignore[comparison-overlap]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
