"""Every source of background work puts its hooks on and takes them off the same way.

Each hook replaces a library's own method while a test records; afterwards the library's own
method is back, and a second recorder in the same process is refused instead of recording
every task twice.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from pytest_bgtasks._core import Core
from pytest_bgtasks._sources import SOURCES

#: (library, the module of a class a source patches, the class, the method it replaces,
#: what the refusal names).
HOOKS = [
    ("starlette", "starlette.background", "BackgroundTask", "__call__", "background tasks"),
    ("asyncio", "asyncio", "BaseEventLoop", "create_task", "asyncio tasks"),
    ("arq", "arq.connections", "ArqRedis", "enqueue_job", "arq jobs"),
    ("rq", "rq", "Queue", "enqueue_job", "RQ jobs"),
    ("taskiq", "taskiq.kicker", "AsyncKicker", "kiq", "taskiq jobs"),
    ("dramatiq", "dramatiq", "Actor", "send_with_options", "Dramatiq messages"),
    ("celery", "celery", "Celery", "send_task", "Celery jobs"),
]


def test_every_source_with_a_hook_is_listed_here() -> None:
    hooked = {library for library, *_ in HOOKS}
    assert {library for _, library in SOURCES} - hooked == {"fastapi"}  # facts, no work


@pytest.mark.parametrize(("library", "module", "owner", "name", "work"), HOOKS)
def test_a_hook_is_on_while_recording_and_off_after_and_refuses_a_second_recorder(
    library: str, module: str, owner: str, name: str, work: str
) -> None:
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    source = importlib.import_module(dict((lib, mod) for mod, lib in SOURCES)[library])
    cls = getattr(importlib.import_module(module), owner)
    own = cls.__dict__[name]
    with source.install(Core("eager")):
        assert cls.__dict__[name] is not own
        with (
            pytest.raises(RuntimeError, match=f"^{work} are already being recorded: only one"),
            source.install(Core("eager")),
        ):
            pass  # pragma: no cover - refused on entry
        assert cls.__dict__[name] is not own  # the refusal left the first recorder's hooks
    assert cls.__dict__[name] is own
