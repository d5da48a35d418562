"""How the app runs its background tasks: through one bounded pool, failures logged.

Endpoints that schedule work return a ``BackgroundJSONResponse``. It sends the body first, as
every Starlette response does, so the client never waits; then it runs the response's tasks
one by one, each after taking a slot of the app's ``anyio.CapacityLimiter`` (at most
``settings.max_concurrent_tasks`` tasks run at once, app-wide); and a task that raises is
written to the error log before the exception goes on to the server, which logs it as well.

Why here and not inside each task? A limiter taken inside a task still lets every task start
and wait, so "tasks running" would count the waiting ones too; and an error handler inside a
task cannot see a failure the task never got to handle (an injected one, a bug in the handler).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.types import Receive, Scope, Send

from example_app.settings import Settings
from example_app.tasks import log_error


def task_limiter(app: Any, total: int) -> anyio.CapacityLimiter:
    """The app's one limiter for background tasks, sized to the current settings."""
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "task_limiter", None)
    if limiter is None:
        limiter = app.state.task_limiter = anyio.CapacityLimiter(total)
    elif limiter.total_tokens != total:
        limiter.total_tokens = total
    return limiter


class BackgroundJSONResponse(JSONResponse):
    """A JSON response whose background tasks run bounded and have their failures logged."""

    def __init__(self, content: Any, settings: Settings, status_code: int = 200) -> None:
        super().__init__(content, status_code=status_code)
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        background, self.background = self.background, None
        await super().__call__(scope, receive, send)  # the body goes out, no tasks yet
        if background is None:
            return
        # One by one, as BackgroundTasks.__call__ does (FastAPI >= 0.142 adds a tracing span per
        # task there; call ``await background()`` instead if you rely on it).
        tasks = background.tasks if isinstance(background, BackgroundTasks) else [background]
        limiter = task_limiter(scope["app"], self.settings.max_concurrent_tasks)
        for task in tasks:
            async with limiter:
                await self._run(task)

    async def _run(self, task: BackgroundTask) -> None:
        try:
            await task()
        except Exception as error:
            name = getattr(task.func, "__name__", repr(task.func))
            log_error(self.settings.error_log_path, f"{name}: {type(error).__name__}: {error}")
            raise  # as Starlette does: the rest of this response's tasks are skipped
