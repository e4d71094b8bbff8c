"""Every call of a campaign as CSV, streamed in keyset batches so a million rows never sit in memory.

Django buffers a synchronous iterator whole when it serves it over ASGI (and an asynchronous one
under WSGI), so the view picks the flavour that matches the server it runs under.
"""

import csv
import io
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from campaigns import queries

COLUMNS = [
    "id", "phone", "contact_name", "attempt", "state", "disposition", "created_at", "dialed_at", "answered_at",
    "ended_at", "duration", "disconnected_by", "detailed_status", "exotel_sid", "recording_url", "error",
]
_FIELDS = [("contact__name" if c == "contact_name" else c) for c in COLUMNS]
BATCH = 5000


def _csv(rows) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _batch(calls: QuerySet, after: tuple | None) -> list[tuple]:
    """The next BATCH rows after `after` (a row's id and created_at), along the page index."""
    if after is not None:
        pk, stamp = after
        calls = queries.after_row(calls, stamp, pk)
    return list(calls.order_by("-created_at", "-pk").values_list(*_FIELDS)[:BATCH])


def _last(batch: list[tuple]) -> tuple:
    return batch[-1][0], batch[-1][COLUMNS.index("created_at")]


def rows(calls: QuerySet) -> Iterator[str]:
    """The header, then the calls newest first, BATCH rows per chunk of CSV text."""
    yield _csv([COLUMNS])
    after = None
    while batch := _batch(calls, after):
        yield _csv(batch)
        after = _last(batch)


async def arows(calls: QuerySet) -> AsyncIterator[str]:
    yield _csv([COLUMNS])
    after = None
    while batch := await sync_to_async(_batch)(calls, after):
        yield _csv(batch)
        after = _last(batch)


def filename(campaign) -> str:
    return f"calls-{campaign.pk}-{campaign.name[:40]}.csv".replace(" ", "-")

