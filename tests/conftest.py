from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import apps

pytest_plugins = ["pytester"]


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
