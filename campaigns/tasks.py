"""Celery tasks: thin interfaces that take ids and call one service each.

Idempotency lives in the rows (conditional updates), not in the broker, so every task here is safe
to run twice; with acks_late a task whose worker died is delivered again. Queues (config/settings.py):
`dispatch` runs on `tick`, `place_calls` and `place_call` on `dial`, the rest on `default`. Tasks that talk to Exotel
carry time limits a little above their own timeouts; the rest keep the settings' defaults.
"""

from celery import shared_task

from campaigns import accounts, costs, dialer, dncfiles, imports, legs, reconcile


@shared_task(soft_time_limit=20, time_limit=30)
def dispatch() -> None:
    """Beat, every few seconds: start the calls each running campaign may start now (no network)."""
    dialer.dispatch()


@shared_task
def reap_calls() -> None:
    """Beat: resend calls whose task was lost, settle calls whose worker died mid-dial."""
    dialer.reap()


PLACE_CALL_SOFT_LIMIT, PLACE_CALL_LIMIT = 60, 75


@shared_task(soft_time_limit=PLACE_CALL_SOFT_LIMIT, time_limit=PLACE_CALL_LIMIT)
def place_call(call_id: int) -> None:
    """One call: a retry after a 429 or a 5xx (and messages sent before `place_calls` existed)."""
    dialer.place_call(call_id)


@shared_task
def place_calls(call_ids: list[int]) -> None:
    """The dispatcher's calls, a few a message; its time limits come with it (place_calls_limits)."""
    dialer.place_calls(call_ids)


def place_calls_limits(calls: int) -> dict:
    """A message of `calls` calls gets `place_call`'s time limits for each."""
    return {"soft_time_limit": PLACE_CALL_SOFT_LIMIT * calls, "time_limit": PLACE_CALL_SOFT_LIMIT * calls + 15}


@shared_task
def stream_started(call_id: int) -> None:
    """Enqueued by the stream server (delay_on_commit) when a call's stream starts."""
    legs.stream_started(call_id)


# A large contact file is read and written for minutes: these two get an hour, not the default.
@shared_task(soft_time_limit=3600, time_limit=3660)
def check_upload(upload_id: int) -> None:
    """Enqueued by the upload page: read and judge every row of a contact file for its preview."""
    imports.check_upload(upload_id)


@shared_task(soft_time_limit=3600, time_limit=3660)
def import_upload(upload_id: int) -> None:
    """Enqueued when the operator confirms a previewed upload."""
    imports.import_upload(upload_id)


@shared_task(soft_time_limit=3600, time_limit=3660)
def import_dnc_file(import_id: int) -> None:
    """Enqueued when a do-not-call file (an operator's, the national registry's) is received."""
    dncfiles.import_file(import_id)


@shared_task
def resume_stalled_dnc_imports() -> None:
    """Beat: send again the do-not-call imports whose task was lost (they hold their workspace's dialling)."""
    for import_id in dncfiles.stalled():
        import_dnc_file.delay(import_id)


@shared_task
def forget_stale_uploads() -> None:
    """Beat, hourly: delete uploads nobody confirmed within a day."""
    imports.forget_stale_uploads()


@shared_task
def read_capacities() -> None:
    """Beat: one capacity reading task per account that needs one."""
    for account_id in accounts.accounts_to_read():
        read_stream_capacity.delay(account_id)


@shared_task(soft_time_limit=10, time_limit=15)
def read_stream_capacity(account_id: int) -> None:
    accounts.read_stream_capacity(account_id)


@shared_task
def reconcile_calls() -> None:
    """Beat: one task per account with calls overdue for reconciliation."""
    reconcile.sweep()


@shared_task(soft_time_limit=300, time_limit=330)  # reconcile.BATCH calls, each answered within 5 s
def reconcile_account(account_id: int) -> None:
    reconcile.reconcile_account(account_id)


@shared_task
def recount_live_calls() -> None:
    """Beat: correct drifted `calls_live` counters from the rows."""
    reconcile.recount_live_calls()


@shared_task
def price_calls() -> None:
    """Beat: one task per account with calls due for a price or a running campaign with a budget."""
    costs.sweep()


@shared_task(soft_time_limit=300, time_limit=330)  # costs.BATCH calls, each answered within 5 s
def price_account(account_id: int) -> None:
    costs.price_account(account_id)
