"""Configuration from environment variables: paths, delays, the SMTP server, limits.

Endpoints take ``settings: Settings = Depends(get_settings)``, so a test replaces them with
``app.dependency_overrides[get_settings] = lambda: Settings(...)``; a deployment sets the
``EXAMPLE_*`` variables below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "EXAMPLE_"


@dataclass(frozen=True)
class Settings:
    #: Where ``write_log`` appends "Notification sent to ..." lines.
    log_path: Path = Path("log.txt")
    #: Where failed background tasks are reported, one timestamped line each.
    error_log_path: Path = Path("error_log.txt")
    #: The sqlite3 database that holds the ``/process/`` jobs and their results.
    database_path: Path = Path("example.sqlite3")
    #: Seconds sqlite3 waits for a locked database before it gives up.
    database_timeout: float = 5.0
    #: Seconds ``write_log`` sleeps before it writes: it stands for a time-consuming task.
    notify_delay: float = 2.0
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_sender: str = "noreply@example.com"
    smtp_starttls: bool = False
    #: Log in to the SMTP server when a user name is set.
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_timeout: float = 10.0
    #: At most this many background tasks run at once (the others wait for a slot).
    max_concurrent_tasks: int = 4
    #: ``POST /process/`` refuses a larger list of records with 413.
    max_records: int = 10_000
    #: Seconds ``process_data`` waits before it starts (fetching a large upload, say): while it
    #: waits, a crash of the process that runs it loses a background task.
    process_delay: float = 0.0
    #: Where ``POST /process-durable/`` sends its job (see ``celery_app.py``): a sqlite file
    #: through kombu's SQLAlchemy transport by default (no server), or ``redis://host:port/0``.
    broker_url: str = "sqla+sqlite:///celery-broker.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``EXAMPLE_<FIELD NAME>`` variables, defaults for the ones not set.

        A value that does not parse raises ValueError naming the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, default in _defaults().items():
            variable = PREFIX + name.upper()
            raw = environ.get(variable)
            if raw is None:
                continue
            try:
                values[name] = _parse(raw, default)
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not {_kind(default)}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError for values no deployment wants."""
        if self.max_concurrent_tasks < 1:
            raise ValueError(
                f"max_concurrent_tasks must be 1 or more, got {self.max_concurrent_tasks}"
            )
        if self.max_records < 1:
            raise ValueError(f"max_records must be 1 or more, got {self.max_records}")
        for name in ("notify_delay", "smtp_timeout", "database_timeout", "process_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")

    def environ(self) -> dict[str, str]:
        """These settings as the ``EXAMPLE_*`` variables that ``from_env`` reads back: what a
        server or a worker started in another process needs."""
        return {PREFIX + name.upper(): _format(getattr(self, name)) for name in _defaults()}


def _defaults() -> dict[str, object]:
    defaults = Settings()
    return {name: getattr(defaults, name) for name in Settings.__dataclass_fields__}


def _parse(raw: str, default: object) -> object:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def _format(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _kind(default: object) -> str:
    if isinstance(default, bool):
        return "a boolean (true/false, 1/0, yes/no, on/off)"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    return "valid"


def get_settings() -> Settings:
    """The FastAPI dependency: the settings of the environment, read at each request."""
    return Settings.from_env()
