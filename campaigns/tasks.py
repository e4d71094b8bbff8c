"""Celery tasks: thin interfaces that take ids and call one service each.

Idempotency lives in the rows (conditional updates), not in the broker, so every task here is safe
to run twice; with acks_late a task whose worker died is delivered again.
"""

from celery import shared_task

from campaigns import dialer, imports, legs


@shared_task
def dispatch() -> None:
    """Beat, every few seconds: start the calls each running campaign may start now."""
    dialer.dispatch()


@shared_task
def reap_calls() -> None:
    """Beat: resend calls whose task was lost, settle calls whose worker died mid-dial."""
    dialer.reap()


@shared_task
def place_call(call_id: int) -> None:
    dialer.place_call(call_id)


@shared_task
def stream_started(call_id: int) -> None:
    """Enqueued by the stream server (delay_on_commit) when a call's stream starts."""
    legs.stream_started(call_id)


@shared_task
def check_upload(upload_id: int) -> None:
    """Enqueued by the upload page: read and judge every row of a contact file for its preview."""
    imports.check_upload(upload_id)


@shared_task
def import_upload(upload_id: int) -> None:
    """Enqueued when the operator confirms a previewed upload."""
    imports.import_upload(upload_id)


@shared_task
def forget_stale_uploads() -> None:
    """Beat, hourly: delete uploads nobody confirmed within a day."""
    imports.forget_stale_uploads()
