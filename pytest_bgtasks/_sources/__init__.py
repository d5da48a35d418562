"""The registry of sources of background work: each installs its hooks and feeds the core.

A source is a module with ``install(core)``, a context manager that hooks into a library while
a test records and removes every hook when it ends. Adding a source is adding its module here;
a source whose library is not installed is skipped at no cost. A source may feed facts about
the work rather than work: the FastAPI one says which request values end before the tasks.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from pytest_bgtasks._core import Core

#: (module of the source, the top-level module of the library it hooks into).
SOURCES: tuple[tuple[str, str], ...] = (
    ("pytest_bgtasks._sources.starlette", "starlette"),
    ("pytest_bgtasks._sources.asyncio_tasks", "asyncio"),
    ("pytest_bgtasks._sources.fastapi", "fastapi"),
    ("pytest_bgtasks._sources.arq", "arq"),
    ("pytest_bgtasks._sources.rq", "rq"),
    ("pytest_bgtasks._sources.taskiq", "taskiq"),
    ("pytest_bgtasks._sources.dramatiq", "dramatiq"),
    ("pytest_bgtasks._sources.celery", "celery"),
)


@contextmanager
def installed(core: Core) -> Iterator[Core]:
    """Feed ``core`` the work of every available source until the block ends."""
    with ExitStack() as hooks:
        hooks.callback(core.blocking.stop)
        for module, library in SOURCES:
            if importlib.util.find_spec(library) is not None:
                hooks.enter_context(importlib.import_module(module).install(core))
        yield core
