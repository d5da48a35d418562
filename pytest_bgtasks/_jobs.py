"""What becomes of a job a queue source intercepted: run now, held, or sent on to the broker.

Queue sources (Celery, arq, taskiq, Dramatiq, RQ) build the job's record with
``Core.schedule(..., job=JobInfo(...))`` and hand it here, from sync or async code.
"""

from __future__ import annotations

from pytest_bgtasks._bounds import INLINE_JOB
from pytest_bgtasks._core import Core
from pytest_bgtasks._execution import execute, execute_sync
from pytest_bgtasks._record import TaskCall

SENT = "sent to the broker (queues='passthrough'): a worker runs it, not the test"


def passes_through(core: Core, call: TaskCall) -> bool:
    """True when jobs go to the real broker; the record then says so and is never judged."""
    if core.queues != "passthrough":
        return False
    call.reason = SENT
    call.expected = True
    return True


def dispatch_sync(core: Core, call: TaskCall) -> None:
    """Run the job now in this thread (eager) or hold it (deferred); its failure is recorded."""
    if core.mode == "deferred":
        core.hold(call)
    else:
        execute_sync(core, call)


async def dispatch_async(core: Core, call: TaskCall) -> None:
    """Run the job now on this loop (eager) or hold it (deferred); its failure is recorded."""
    if core.mode == "deferred":
        core.hold(call)
    else:
        await execute(core, call, reraise=False, hang_refusal=INLINE_JOB)
