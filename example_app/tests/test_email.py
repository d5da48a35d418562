"""Scenario 3: ``POST /email/{to_email}`` sends a real e-mail with smtplib.

The ``smtp_server`` fixture (conftest.py) runs aiosmtpd on 127.0.0.1 and points the app's
settings at it, so these tests check the message a real SMTP server received.
"""

from __future__ import annotations

import smtplib

from fastapi.testclient import TestClient

from example_app.settings import Settings
from example_app.tasks import send_email
from example_app.tests.conftest import Mailbox
from pytest_bgtasks import BackgroundTaskRecorder


def test_email_is_delivered(
    client: TestClient, bgtasks: BackgroundTaskRecorder, smtp_server: Mailbox
) -> None:
    response = client.post("/email/ann@example.com")

    assert response.json() == {"message": "Email sent in the background"}
    bgtasks.assert_scheduled_once(send_email, "ann@example.com", subject="Test Email")
    bgtasks.assert_all_succeeded()
    assert smtp_server.envelopes == [("noreply@example.com", ["ann@example.com"])]
    [message] = smtp_server.messages
    assert message["To"] == "ann@example.com"
    assert message["From"] == "noreply@example.com"
    assert message["Subject"] == "Test Email"
    assert message.get_content() == "This is a test email sent from FastAPI.\n"


def test_refused_recipient_is_logged(
    client: TestClient, bgtasks: BackgroundTaskRecorder, smtp_server: Mailbox, settings: Settings
) -> None:
    smtp_server.refused.add("nobody@example.com")  # the server answers RCPT with 550

    response = client.post("/email/nobody@example.com")

    # The client got its normal response: the failure happened after it was sent.
    assert response.json() == {"message": "Email sent in the background"}
    bgtasks.assert_failed(send_email, smtplib.SMTPRecipientsRefused, match="nobody@example.com")
    assert smtp_server.messages == []
    [line] = settings.error_log_path.read_text().splitlines()
    assert "Error in background task send_email: SMTPRecipientsRefused:" in line
    assert "No such mailbox here" in line


def test_smtp_outage_is_injected_and_logged(
    client: TestClient, bgtasks: BackgroundTaskRecorder, smtp_server: Mailbox, settings: Settings
) -> None:
    bgtasks.fail(send_email, smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))

    response = client.post("/email/ann@example.com")

    assert response.status_code == 200
    [call] = bgtasks.failed  # an injected failure is expected: strict mode lets it pass
    assert call.fault is not None and call.fault.startswith("fail(send_email")
    assert smtp_server.messages == []  # the real send_email never ran
    [line] = settings.error_log_path.read_text().splitlines()
    assert line.endswith(
        "Error in background task send_email: SMTPServerDisconnected:"
        " Connection unexpectedly closed"
    )


def test_unreachable_smtp_server_is_logged(
    client: TestClient, bgtasks: BackgroundTaskRecorder, settings: Settings
) -> None:
    # No smtp_server fixture: the settings fixture points at a port nothing listens on.
    response = client.post("/email/ann@example.com")

    assert response.status_code == 200
    bgtasks.assert_failed(send_email, ConnectionRefusedError)
    assert "send_email: ConnectionRefusedError" in settings.error_log_path.read_text()
