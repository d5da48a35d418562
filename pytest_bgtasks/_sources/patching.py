"""How a source puts its hooks on a library's classes, and takes them off again.

Each patch carries the original it replaces, so a second recorder in the same process (a
fixture entered twice, a plugin loaded twice) is refused instead of recording everything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: The attribute of a patch that holds the original it replaces.
ORIGINAL = "_bgtasks_original"


def unpatched(work: str, *targets: tuple[Any, str]) -> list[Any]:
    """The library's own ``owner.name`` of each target, refused where a recorder's patch is.

    ``work`` names what the patches record, for the message ("arq jobs").
    """
    found = [owner.__dict__[name] for owner, name in targets]
    if any(hasattr(original, ORIGINAL) for original in found):
        raise RuntimeError(
            f"{work} are already being recorded: only one bgtasks recorder can be active at a time"
        )
    return found


@contextmanager
def patched(*patches: tuple[Any, str, Callable[..., Any]]) -> Iterator[None]:
    """Put each ``(owner, name, patch)`` in place until the block ends, then the originals."""
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    for (owner, name, patch), (_, _, original) in zip(patches, originals, strict=True):
        setattr(patch, ORIGINAL, original)
        setattr(owner, name, patch)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
