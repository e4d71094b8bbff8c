"""The applier: applies stored deliveries to their calls right after the request acknowledged them.

One process (`python manage.py apply_callbacks`) drains pending deliveries oldest first, so one
call's deliveries apply in the order they arrived. They are claimed in batches with `FOR UPDATE
SKIP LOCKED` and applied in that transaction, so a second applier (a restart overlapping the old
one) never applies a delivery twice; two side by side would not keep one call's order between
them, so run one. A crash loses nothing: what it had not committed is still pending, and an
applier drains everything pending when it starts.

It is woken at once: on PostgreSQL by the NOTIFY that a trigger sends as each pending delivery's
INSERT commits (migration callbacks 0002); it listens on a connection of its own. SQLite (the
laptop) has no notifications, so there it looks every POLL_SECONDS, which a laptop does not feel.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction

from callbacks.models import WebhookEvent
from callbacks.services import applying

log = logging.getLogger(__name__)
CHANNEL = "webhook_events"  # the trigger's pg_notify channel
POLL_SECONDS = 0.1  # SQLite only
# On PostgreSQL a notification wakes us at once; this only bounds how long a stop waits to be seen.
IDLE_SECONDS = 1
RETRY_SECONDS = 1  # after a lost connection or a deadlock, before trying again
BATCH = 100  # deliveries per transaction


def pending():
    return WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PENDING).exclude(kind=WebhookEvent.Kind.STREAM_URL)


def apply_batch(limit: int = BATCH) -> int:
    """Apply up to `limit` of the oldest pending deliveries nobody else holds, in one transaction.

    One commit for the batch rather than one per delivery: the commits' WAL flushes were most of
    the cost (`applying.apply_batch` says how the rest was cut). Should applying one of them raise,
    the batch is rolled back and applied again one delivery at a time, each in a savepoint, so the
    one that raises is marked failed and the others are applied.
    """
    try:
        with transaction.atomic():
            return applying.apply_batch(list(claim(limit)))
    except OperationalError:  # the database went away or a deadlock: the caller waits and tries again
        raise
    except Exception:
        log.warning("applier: a delivery of the batch raised; applying it one delivery at a time")
    applied = 0
    with transaction.atomic():
        for event in claim(limit):
            applying.apply(event)
            applied += 1
            if connection.run_on_commit:  # as in applying.apply_batch: start_stream waits on the commit
                break
    return applied


def claim(limit: int):
    return pending().select_for_update(skip_locked=True).order_by("pk")[:limit]


def apply_pending(limit: int | None = None) -> int:
    """Apply pending deliveries, oldest first, until none is left (or `limit`); how many were applied."""
    applied = 0
    while limit is None or applied < limit:
        batch = apply_batch(BATCH if limit is None else min(BATCH, limit - applied))
        if not batch:
            break
        applied += batch
    return applied


def run(*, stop: threading.Event) -> None:
    """Apply what is pending, then each delivery as it arrives, until `stop` is set."""
    with waiting() as wait:
        log.info("applier: started, draining what is pending")
        while not stop.is_set():
            try:
                applied = apply_pending()
            except OperationalError as error:  # the database went away or a deadlock: the rows stay pending
                log.warning("applier: %s; trying again in %s s", error, RETRY_SECONDS)
                connection.close()
                stop.wait(RETRY_SECONDS)
                continue
            if applied:
                log.debug("applier: applied %d deliveries", applied)
            wait()


@contextmanager
def waiting() -> Iterator[Callable[[], None]]:
    """A function that returns when deliveries may be pending: notified (PostgreSQL) or polled."""
    if connection.vendor != "postgresql":
        yield lambda: time.sleep(POLL_SECONDS)
        return
    import psycopg

    # Its own connection, outside Django's pool: it listens for as long as the applier runs.
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")

        def wait() -> None:
            # Those that arrived while we were applying wake us at once; one wake-up drains them all.
            for _ in listener.notifies(timeout=IDLE_SECONDS, stop_after=1):
                pass

        yield wait
