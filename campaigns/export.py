"""Every call of a campaign, and the compliance record of every number, as CSV streamed in keyset batches.

Django buffers a synchronous iterator whole when it serves it over ASGI (and an asynchronous one
under WSGI), so the view picks the flavour that matches the server it runs under. Every CSV we
write goes through `write_rows`, which keeps spreadsheets from running what tenants and webhooks typed.
"""

import csv
import io
import re
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from campaigns import queries, rules
from campaigns.models import Call, Campaign, ContactUpload, Hold, Recipient

COLUMNS = [
    "id", "phone", "contact_name", "attempt", "state", "disposition", "created_at", "dialed_at", "answered_at",
    "ended_at", "duration", "disconnected_by", "detailed_status", "exotel_sid", "recording_url", "error",
    "price", "price_currency",
]
_FIELDS = [("contact__name" if c == "contact_name" else c) for c in COLUMNS] + ["contact__variables"]
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


@dataclass(frozen=True)
class Layout:
    """How a campaign's calls read in the file: times in its workspace's zone, its variables as columns."""

    zone: zoneinfo.ZoneInfo
    variables: list[str]

    @classmethod
    def of(cls, campaign: Campaign) -> "Layout":
        # The contacts' variables are the columns their imported files named (campaigns.imports), in order.
        names = {}
        for report in campaign.uploads.filter(state=ContactUpload.State.IMPORTED).order_by("created_at").values_list(
                "report", flat=True):
            names.update(dict.fromkeys(report.get("variables", ())))
        return cls(zoneinfo.ZoneInfo(campaign.workspace.time_zone), list(names))

    def header(self) -> list[str]:
        return COLUMNS + [f"variable:{name}" if name in COLUMNS else name for name in self.variables]

    def cells(self, row: tuple) -> list:
        *fields, variables = row
        return [self._cell(value) for value in fields] + [variables.get(name, "") for name in self.variables]

    def _cell(self, value):
        # The workspace's clock, to the second, its offset written: 2026-12-02T17:38:05+05:30.
        return value.astimezone(self.zone).isoformat(timespec="seconds") if isinstance(value, datetime) else value


def _batch(calls: QuerySet, after: tuple | None) -> list[tuple]:
    """The next BATCH rows after `after` (a row's id and created_at), along the page index."""
    if after is not None:
        pk, stamp = after
        calls = queries.after_row(calls, stamp, pk)
    return list(calls.order_by("-created_at", "-pk").values_list(*_FIELDS)[:BATCH])


def _last(batch: list[tuple]) -> tuple:
    return batch[-1][0], batch[-1][COLUMNS.index("created_at")]


def rows(layout: Layout, calls: QuerySet) -> Iterator[str]:
    """The header, then the calls newest first, BATCH rows per chunk of CSV text."""
    yield _csv([layout.header()])
    after = None
    while batch := _batch(calls, after):
        yield _csv(map(layout.cells, batch))
        after = _last(batch)


async def arows(layout: Layout, calls: QuerySet) -> AsyncIterator[str]:
    yield _csv([layout.header()])
    after = None
    while batch := await sync_to_async(_batch)(calls, after):
        yield _csv(map(layout.cells, batch))
        after = _last(batch)


def filename(campaign) -> str:
    return f"calls-{campaign.pk}-{campaign.name[:40]}.csv".replace(" ", "-")



# The compliance export: per number, every attempt with its local time and the rule that allowed
# it, and every hold and skip with its reason; numbers in order, each number's events in time order.

COMPLIANCE_COLUMNS = ["phone", "at_utc", "local_time", "time_zones", "campaign", "event", "outcome", "rule"]
NUMBERS_PER_BATCH = 500


def _local(at, zones: tuple[str, ...]) -> str:
    return f"{at.astimezone(zoneinfo.ZoneInfo(zones[0])):%Y-%m-%d %H:%M %a} {zones[0]}"


def _compliance_batch(workspace_id: int, after: str) -> tuple[str, str | None]:
    """The CSV of the next NUMBERS_PER_BATCH numbers after `after`, and the last one (None: no more)."""
    numbers = list(Recipient.objects.filter(workspace_id=workspace_id, phone__gt=after).order_by("phone")
                   .values_list("pk", "phone")[:NUMBERS_PER_BATCH])
    if not numbers:
        return "", None
    ids = [pk for pk, _ in numbers]
    rows = []
    for phone, at, campaign, zone, key, attempt, state, rule in Call.objects.filter(
        contact__recipient_id__in=ids
    ).values_list("phone", "created_at", "campaign__name", "campaign__time_zone", "contact__time_zone", "attempt",
                  "state", "allowed_by"):
        zones = rules.recipient_zones(key, phone, fallback=zone)
        rows.append((phone, at, _local(at, zones), " ".join(zones), campaign, f"attempt {attempt}", state, rule))
    for phone, at, campaign, zone, key, reason, detail, until in Hold.objects.filter(
        contact__recipient_id__in=ids
    ).values_list("phone", "at", "campaign__name", "campaign__time_zone", "contact__time_zone", "reason", "detail",
                  "until"):
        zones = rules.recipient_zones(key, phone, fallback=zone)
        held = f"held until {until.isoformat(timespec='seconds')}" if until else "skipped"
        rows.append((phone, at, _local(at, zones), " ".join(zones), campaign, held, reason, detail))
    rows.sort(key=lambda row: (row[0], row[1]))
    return _csv([(row[0], row[1].isoformat(timespec="seconds"), *row[2:]) for row in rows]), numbers[-1][1]


def compliance_rows(workspace_id: int) -> Iterator[str]:
    yield _csv([COMPLIANCE_COLUMNS])
    after = ""
    while after is not None:
        text, after = _compliance_batch(workspace_id, after)
        yield text


async def acompliance_rows(workspace_id: int) -> AsyncIterator[str]:
    yield _csv([COMPLIANCE_COLUMNS])
    after = ""
    while after is not None:
        text, after = await sync_to_async(_compliance_batch)(workspace_id, after)
        yield text
