"""Every call of a campaign as CSV, streamed in keyset batches so a million rows never sit in memory.

Django buffers a synchronous iterator whole when it serves it over ASGI (and an asynchronous one
under WSGI), so the view picks the flavour that matches the server it runs under. Every CSV we
write goes through `write_rows`, which keeps spreadsheets from running what tenants and webhooks typed.
"""

import csv
import io
import re
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


# OWASP's CSV-injection rule: a spreadsheet takes a cell starting with one of these for a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A signed plain number computes nothing, so it stays as it is: E.164 phone numbers (+919876543210)
# remain themselves for scripts and for re-import, and "-3" stays a number.
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def defused(value):
    """The cell as text a spreadsheet shows and never evaluates: OWASP's leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_rows(out, rows) -> None:
    csv.writer(out).writerows([defused(value) for value in row] for row in rows)


def _csv(rows) -> str:
    out = io.StringIO()
    write_rows(out, rows)
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

