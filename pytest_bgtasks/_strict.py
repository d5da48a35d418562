"""The strict check at teardown: every task that failed, was dropped, never ran or blocked the
event loop, listed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pytest_bgtasks._blocking import describe
from pytest_bgtasks._core import Core
from pytest_bgtasks._options import MARKER
from pytest_bgtasks._record import TaskCall
from pytest_bgtasks._rendering import Renderer

README_STRICT = "https://github.com/pytest-bgtasks/pytest-bgtasks#nothing-fails-silently"


class Problem(NamedTuple):
    """One thing the check reports, as printed."""

    text: str
    #: True for a task outcome a test can declare expected; False for a fault never applied.
    expectable: bool = True


def problems(core: Core, render: Renderer, still_running: Sequence[TaskCall]) -> list[Problem]:
    """What the check reports: arguments that end before their task runs (or do not survive
    the round trip), unexpected failures and drops, tasks never run, unused faults, async
    tasks that held the event loop past the limit."""
    found: list[Problem] = []
    if core.check is not None:
        found += [Problem(block) for block in core.check.blocks(render)]
    for call in core.calls:
        if call.expected:
            continue
        if call.status in ("failed", "dropped", "cancelled"):
            found.append(Problem(render.block([call])))
        elif call.status == "scheduled" and call.request is None:
            found.append(Problem(render.line(call) + "  (never handed to a response, never ran)"))
    limit = core.blocking.limit
    if limit is not None:
        found += [
            Problem(render.line(call) + "  " + describe(call, limit))
            for call in core.calls
            if call.blocked_for is not None and call.blocked_for > limit
        ]
    names = ", ".join(sorted({call.name for call in core.calls})) or "none"
    found += [
        Problem(
            render.scrub(  # the fault's exception may quote a secret of the recorded calls
                f"fault {fault} was never applied: no matching task ran (a typo? tasks recorded:"
                f" {names})",
                core.calls,
            ),
            expectable=False,
        )
        for fault in core.faults.never_applied()
    ]
    found += [
        Problem(render.line(call) + "  (still running after teardown waited)")
        for call in still_running
        if not call.expected
    ]
    return found


def report(found: Sequence[Problem]) -> str:
    """The teardown error: every problem, then how to say a problem was expected, if one can be."""
    listing = "\n".join("  " + line for problem in found for line in problem.text.splitlines())
    text = f"pytest-bgtasks: {len(found)} background task problem(s):\n{listing}"
    if not any(problem.expectable for problem in found):
        return text  # a fault that never applied is a mistake to fix, not an outcome to expect
    return (
        f"{text}\n"
        "Expected? Say so in the test with bgtasks.assert_failed(func) or"
        " bgtasks.assert_dropped(func), or turn the check off with"
        f" @pytest.mark.{MARKER}(strict=False) or the ini option bgtasks_strict = false"
        f" (see {README_STRICT})."
    )
