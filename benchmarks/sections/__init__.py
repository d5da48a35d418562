"""The sections of the report, in the order they run and print.

Each module measures one thing and defines ``SECTION``, a `harness.Section`: its ``--only``
name, its sizes for the full and the quick mode, and the function that returns its rows.
A new row that belongs to no section below gets a module of its own, listed here.
"""

from __future__ import annotations

from typing import Any

from harness import Section
from sections import blocking, capture, jobs, memory, overhead, saved, startup, user

SECTIONS: tuple[Section[Any], ...] = (
    overhead.SECTION,
    user.SECTION,
    capture.SECTION,
    blocking.SECTION,
    jobs.SECTION,
    memory.SECTION,
    startup.SECTION,
    saved.SECTION,
)
