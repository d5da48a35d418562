"""The background tasks: plain functions, with their settings as arguments."""

from __future__ import annotations

import asyncio
import io
import smtplib
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd

from example_app import db
from example_app.settings import Settings

#: The columns every ``/process/`` record needs.
REQUIRED_COLUMNS = ("region", "quantity", "unit_price")


class InvalidRecords(ValueError):
    """The records cannot be processed: bad data from the client, not a bug of the app."""


def log_error(error_log_path: Path, message: str) -> None:
    """Append one timestamped line to the error log (``Settings.error_log_path``)."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(error_log_path, "a", encoding="utf-8") as file:
        file.write(f"{stamp} Error in background task {message}\n")


# -- scenario 1: process a list of records with pandas ----------------------------------------


def summarize_sales(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Revenue (quantity x unit price) in total and per region, with pandas.

    Raises InvalidRecords naming the bad rows or the missing columns.
    """
    if not records:
        raise InvalidRecords("no records to process")
    frame = pd.DataFrame.from_records(records)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise InvalidRecords(f"missing column(s): {', '.join(missing)}")
    try:
        numbers = frame[["quantity", "unit_price"]].apply(pd.to_numeric, errors="coerce")
    except (TypeError, ValueError) as error:  # lists or objects where numbers belong
        raise InvalidRecords(f"quantity and unit_price must be numbers: {error}") from None
    bad = numbers.isna().any(axis=1) | (numbers["quantity"] < 0) | frame["region"].isna()
    if bad.any():
        rows = ", ".join(str(index) for index in frame.index[bad])
        raise InvalidRecords(
            f"record(s) {rows}: need a region, a quantity >= 0 and a unit_price, as numbers"
        )
    frame = frame.assign(quantity=numbers["quantity"], unit_price=numbers["unit_price"])
    frame["revenue"] = frame["quantity"] * frame["unit_price"]
    by_region = frame.groupby("region", sort=True).agg(
        orders=("revenue", "size"), quantity=("quantity", "sum"), revenue=("revenue", "sum")
    )
    return {
        "records": len(frame),
        "total_revenue": round(float(frame["revenue"].sum()), 2),
        "by_region": {
            str(region): {
                "orders": int(row.orders),
                "quantity": float(row.quantity),
                "revenue": round(float(row.revenue), 2),
            }
            for region, row in by_region.iterrows()
        },
    }


def process_data(
    job_id: str, records: list[dict[str, Any]], settings: Settings
) -> dict[str, Any] | None:
    """Summarize the records and store the result in the job's row; return the summary.

    It first waits ``settings.process_delay`` seconds (0 by default), standing for slow I/O
    before the work: the window in which a crash of the process loses the task.

    Bad data is expected, so it is handled here: written to the error log and stored as the
    job's error, and the task ends normally. Anything else (the database is locked, say)
    propagates: the response's safety net logs it too (see ``background.py``).
    """
    time.sleep(settings.process_delay)
    try:
        summary = summarize_sales(records)
    except InvalidRecords as error:
        log_error(settings.error_log_path, f"process_data: job {job_id}: {error}")
        db.finish_job(settings.database_path, settings.database_timeout, job_id, error=str(error))
        return None
    db.finish_job(settings.database_path, settings.database_timeout, job_id, summary=summary)
    return summary


# -- scenario 10: an uploaded CSV file, handed over as bytes ------------------------------------


def process_csv(job_id: str, content: bytes, settings: Settings) -> dict[str, Any] | None:
    """Read the bytes of an uploaded CSV file with pandas, then process them as ``process_data``.

    A file pandas cannot read is bad data, handled as ``process_data`` handles it.
    """
    try:
        records = pd.read_csv(io.BytesIO(content)).to_dict("records")
    except ValueError as error:  # pandas' parser, empty-file and decoding errors
        log_error(settings.error_log_path, f"process_csv: job {job_id}: {error}")
        db.finish_job(
            settings.database_path, settings.database_timeout, job_id, error=f"not CSV: {error}"
        )
        return None
    return process_data(job_id, [{str(k): v for k, v in r.items()} for r in records], settings)


# -- scenarios 2 and 3: a slow log line, an e-mail --------------------------------------------


def write_log(message: str, log_path: Path, delay: float) -> None:
    """Append ``message`` to the log after ``delay`` seconds (2 by default: a slow task)."""
    time.sleep(delay)
    with open(log_path, "a", encoding="utf-8") as file:
        file.write(message + "\n")


def send_email(to_email: str, subject: str, body: str, settings: Settings) -> None:
    """Send one message through the configured SMTP server; SMTP errors propagate."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_sender
    message["To"] = to_email
    message.set_content(body)
    # The ``with`` block sends QUIT and closes the socket, also when sending fails.
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


# -- scenario 9: a fire-and-forget asyncio task ------------------------------------------------


async def announce_signup(email: str, log_path: Path) -> None:
    """Append "Welcome announced for {email}" to the log, off the request's path."""
    await asyncio.sleep(0)  # hands the loop back, as the real I/O of an announcement would
    with open(log_path, "a", encoding="utf-8") as file:
        file.write(f"Welcome announced for {email}\n")
