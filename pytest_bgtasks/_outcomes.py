"""Why a task never ran: skipped after an earlier task of its response failed, or dropped."""

from __future__ import annotations

from pytest_bgtasks._record import NOT_STARTED, RequestInfo, TaskCall


def skip_rest_of_batch(failed: TaskCall) -> None:
    """Mark the tasks after ``failed`` in its response as skipped, as Starlette skips them."""
    batch = failed.batch or []
    if failed not in batch:
        return
    for call in batch[batch.index(failed) + 1 :]:
        if call.status in NOT_STARTED:
            call.status = "skipped"
            call.reason = f"skipped: #{failed.index} {failed.name} failed before it"


def drop_unrun(request: RequestInfo) -> None:
    """Mark the tasks ``request`` scheduled and neither ran nor held as dropped, saying why.

    A queue's job is not the response's to run: one sent on to the broker stays as it is.
    """
    for call in request.calls:
        if call.status == "scheduled" and call.job is None:
            call.status = "dropped"
            call.reason = _drop_reason(request, call)


def _drop_reason(request: RequestInfo, call: TaskCall) -> str:
    if request.is_websocket:
        return "dropped: WebSocket endpoints never run background tasks"
    if request.cancelled:
        return (
            "dropped: the request was cancelled first (a streamed response left unread,"
            " or the client went away)"
        )
    if request.status_code is not None and request.status_code >= 400:
        return (
            f"dropped: the app answered {request.status_code}, and an error response does not"
            " run the injected tasks"
        )
    if request.dispatched_at is not None and call.scheduled_at > request.dispatched_at:
        return (
            "dropped: scheduled after the response's background had started (in a"
            " dependency's exit code, or a task)"
        )
    if request.dispatched_at is not None:
        return (
            "dropped: the response brought its own background (Response(background=...)),"
            " which replaces the injected tasks"
        )
    return "dropped: the response was sent without running it"
