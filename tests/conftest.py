from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from tests import apps

pytest_plugins = ["pytester"]

STARLETTE = Version(metadata.version("starlette"))


def starlette_before(release: str, why: str) -> pytest.MarkDecorator:
    """Skip where Starlette older than ``release`` behaves differently, saying how."""
    return pytest.mark.skipif(Version(release) > STARLETTE, reason=f"Starlette < {release}: {why}")


@pytest.fixture(autouse=True)
def clean_journal() -> Iterator[list[tuple[str, str]]]:
    apps.journal.clear()
    yield apps.journal
    apps.journal.clear()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def apps_source() -> str:
    """The source of tests/apps.py, for pytester projects that need the same apps."""
    return Path(apps.__file__).read_text(encoding="utf-8")
