"""The time deferred mode saves on a slow task: a notification endpoint whose task sleeps."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from harness import Row, Section, median
from sides import deferred

#: Deferred rounds; their median is the plugin side.
DEFERRED_ROUNDS = 5


@dataclass(frozen=True)
class Sizes:
    requests: int
    delay: float  # seconds each task sleeps


def notification_app(log_path: Path, delay: float) -> FastAPI:
    """An endpoint whose task sleeps ``delay`` seconds, then appends a line to ``log_path``."""
    app = FastAPI()

    def write_log(message: str) -> None:
        time.sleep(delay)  # the time-consuming task
        with open(log_path, "a") as f:
            f.write(message + "\n")

    @app.post("/send-notification/{email}")
    async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(write_log, f"Notification sent to {email}")
        return {"message": "Notification sent in the background"}

    return app


def measure(sizes: Sizes) -> list[Row]:
    n, delay = sizes.requests, sizes.delay
    with tempfile.TemporaryDirectory(prefix="bgtasks-bench-saved-") as tmp:
        log = Path(tmp) / "log.txt"

        def send_all(client: TestClient) -> float:
            start = time.perf_counter()
            for i in range(n):
                assert client.post(f"/send-notification/user{i}@example.com").status_code == 200
            return time.perf_counter() - start

        with TestClient(notification_app(log, delay)) as client:
            client.post("/send-notification/warm-up@example.com")
            plain = send_all(client)
            ran = len(log.read_text().splitlines())
            deferred_times = []
            for _ in range(DEFERRED_ROUNDS):
                with deferred() as recorder:
                    deferred_times.append(send_all(client))
                    held = len(recorder.discard())
                assert held == n, held
            assert len(log.read_text().splitlines()) == ran  # nothing ran while deferred
    deferred_median = median(deferred_times)
    return [
        Row(
            metric=f"time saved: {n} x write_log ({delay:g} s a task)",
            unit="s",
            plugin=deferred_median,
            baseline=plain,
            figure=f"{plain - deferred_median:.2f} s saved (x{plain / deferred_median:.0f} faster)",
            target="-",
            verdict="INFO",
            samples={"plugin": deferred_times, "baseline": [plain]},
            notes="plain TestClient (each post() waits for its task) vs deferred mode"
            " (responses at once; held tasks then discarded)",
        )
    ]


SECTION = Section(
    name="saved",
    measure=measure,
    full=Sizes(requests=20, delay=2.0),
    quick=Sizes(requests=20, delay=0.05),
)
