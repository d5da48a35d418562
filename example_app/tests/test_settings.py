"""Configuration: every setting comes from an ``EXAMPLE_*`` environment variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from example_app.main import app
from example_app.settings import Settings, get_settings


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.from_env({})

    assert settings.log_path == Path("log.txt")
    assert settings.error_log_path == Path("error_log.txt")
    assert settings.notify_delay == 2.0


def test_environment_variables_override_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXAMPLE_LOG_PATH", str(tmp_path / "notifications.log"))
    monkeypatch.setenv("EXAMPLE_NOTIFY_DELAY", "0.25")
    monkeypatch.setenv("EXAMPLE_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("EXAMPLE_SMTP_PORT", "2525")
    monkeypatch.setenv("EXAMPLE_SMTP_STARTTLS", "yes")
    monkeypatch.setenv("EXAMPLE_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("EXAMPLE_MAX_CONCURRENT_TASKS", "8")

    settings = get_settings()

    assert settings.log_path == tmp_path / "notifications.log"
    assert settings.notify_delay == 0.25
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mail.internal",
        2525,
        True,
    )
    assert settings.max_concurrent_tasks == 8
    assert "s3cret" not in repr(settings)  # tasks get the settings; reports show their repr


def test_the_app_reads_the_environment_without_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No dependency_overrides here: the real get_settings reads the environment per request.
    monkeypatch.setenv("EXAMPLE_LOG_PATH", str(tmp_path / "notifications.log"))
    monkeypatch.setenv("EXAMPLE_NOTIFY_DELAY", "0")

    TestClient(app).post("/send-notification/ann@example.com")

    assert (tmp_path / "notifications.log").read_text() == "Notification sent to ann@example.com\n"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EXAMPLE_SMTP_PORT", "smtp", "EXAMPLE_SMTP_PORT='smtp' is not a whole number"),
        ("EXAMPLE_SMTP_STARTTLS", "maybe", "EXAMPLE_SMTP_STARTTLS='maybe' is not a boolean"),
        ("EXAMPLE_MAX_CONCURRENT_TASKS", "0", "max_concurrent_tasks must be 1 or more"),
    ],
    ids=["port", "starttls", "limit"],
)
def test_bad_values_are_refused_by_name(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env({variable: value})
