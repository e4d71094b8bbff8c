"""Contact import from CSV: validate every row, report each rejected one by line, keep every valid one.

Three steps. `parse` reads the file once, when it is uploaded: CSV, and every phone to E.164 with
`phonenumbers` (the slow part: about 50 µs a row). The parsed rows wait in storage under an
unguessable key (`stash`). `check` then judges them against the campaign (repeats in the file,
already a contact, on the do-not-call list) for the preview, writing nothing; `import_contacts`
checks again inside a transaction that locks the campaign row, so what is written cannot drift from
a report (another import, a new do-not-call entry), and writes every valid row in batches. Checks
against the database take one query per thousand rows, never one per row.
"""

import csv
import io
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import phonenumbers
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from campaigns.models import Campaign, Contact, DoNotCall

PHONE_HEADERS = ("phone", "phone_number", "number", "mobile", "msisdn")
NAME_HEADERS = ("name", "full_name")
NAME_MAX = Contact._meta.get_field("name").max_length
BATCH = 1000  # rows per INSERT and per IN (…) lookup: under SQLite's parameter limit
PREVIEW_ROWS = 10
ERRORS_SHOWN = 500


class ImportRefused(Exception):
    """The file as a whole cannot be imported (no phone column, not UTF-8, finished campaign)."""


@dataclass(frozen=True)
class RowError:
    line: int
    phone: str
    reason: str


@dataclass
class Row:
    """One data row as read: its first line, the phone as typed and in E.164 ("" if invalid)."""

    line: int
    raw_phone: str
    phone: str
    name: str
    variables: dict


@dataclass
class Parsed:
    columns: list[str]
    variables: list[str]
    rows: list[Row]


@dataclass
class Report:
    """What a file holds for a campaign: the rows to import and every rejected row with its line."""

    columns: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    valid: list[Contact] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    imported: int = 0

    @property
    def rows(self) -> int:
        return len(self.valid) + len(self.errors)

    def error_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for error in self.errors:
            reason = "duplicate in the file" if error.reason.startswith("duplicate") else error.reason
            counts[reason] = counts.get(reason, 0) + 1
        return counts


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            f"The file is not UTF-8 text (byte {exc.start}). Save it as 'CSV UTF-8' and upload it again."
        ) from exc


def _pick(headers: list[str], candidates: tuple[str, ...]) -> int | None:
    normal = [h.strip().lower().replace(" ", "_") for h in headers]
    return next((normal.index(c) for c in candidates if c in normal), None)


def normalise(raw: str, region: str) -> str | None:
    """The number in E.164, or None if it is not a valid phone number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse(text: str, *, region: str) -> Parsed:
    """Every data row of a CSV with the line it starts on and its phone in E.164 ("" when invalid)."""
    reader = csv.reader(io.StringIO(text))
    try:
        headers = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportRefused("The file is empty.") from None
    phone_at = _pick(headers, PHONE_HEADERS)
    if phone_at is None:
        raise ImportRefused(f"No phone column: the first line must name one, e.g. {', '.join(PHONE_HEADERS)}.")
    name_at = _pick(headers, NAME_HEADERS)
    extra = [(i, h) for i, h in enumerate(headers) if i not in (phone_at, name_at) and h]
    rows = []
    line = reader.line_num + 1
    for values in reader:
        # csv counts physical lines, so a quoted value spanning lines still gets its true line number.
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue  # blank lines are layout, not rows
        cells = [v.strip() for v in values] + [""] * (len(headers) - len(values))
        raw = cells[phone_at]
        rows.append(Row(
            line=start, raw_phone=raw, phone=(normalise(raw, region) or "") if raw else "",
            name=cells[name_at] if name_at is not None else "",
            variables={h: cells[i] for i, h in extra if cells[i]},
        ))
    return Parsed(headers, [h for _, h in extra], rows)


def chunks(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_phones(queryset, phones: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(phones):
        found.update(queryset.filter(phone__in=chunk).values_list("phone", flat=True))
    return found


def first_occurrences(rows: list[Row], errors: list[RowError]) -> list[Row]:
    """The rows whose phone is valid and first in the file; the others go to `errors`."""
    first_line: dict[str, int] = {}
    kept = []
    for row in rows:
        if not row.raw_phone:
            errors.append(RowError(row.line, "", "no phone number"))
        elif not row.phone:
            errors.append(RowError(row.line, row.raw_phone, "invalid phone number"))
        elif row.phone in first_line:
            errors.append(RowError(row.line, row.phone, f"duplicate of line {first_line[row.phone]}"))
        else:
            first_line[row.phone] = row.line
            kept.append(row)
    return kept


def check(campaign: Campaign, parsed: Parsed) -> Report:
    """Judge parsed rows for `campaign` without writing anything."""
    report = Report(columns=parsed.columns, variables=parsed.variables)
    rows = []
    for row in first_occurrences(parsed.rows, report.errors):
        if len(row.name) > NAME_MAX:
            report.errors.append(RowError(row.line, row.phone, f"name longer than {NAME_MAX} characters"))
        else:
            rows.append(row)
    phones = [row.phone for row in rows]
    in_campaign = existing_phones(Contact.objects.filter(campaign=campaign), phones)
    on_dnc = existing_phones(DoNotCall.objects.filter(workspace_id=campaign.workspace_id), phones)
    for row in rows:
        if row.phone in in_campaign:
            report.errors.append(RowError(row.line, row.phone, "already in this campaign"))
        elif row.phone in on_dnc:
            report.errors.append(RowError(row.line, row.phone, "on the do-not-call list"))
        else:
            report.valid.append(Contact(workspace_id=campaign.workspace_id, campaign=campaign, phone=row.phone,
                                        name=row.name, variables=row.variables))
    report.errors.sort(key=lambda e: e.line)
    return report


def refuse_finished(campaign: Campaign) -> None:
    if campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED):
        raise ImportRefused(f"The campaign is {campaign.state}: it takes no more contacts.")


def import_contacts(campaign: Campaign, parsed: Parsed) -> Report:
    """Write every valid row as a contact of `campaign`; returns the report of what happened."""
    with transaction.atomic():
        # The lock serialises imports into one campaign, so the check below stays true until commit.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        refuse_finished(campaign)
        report = check(campaign, parsed)
        for chunk in chunks(report.valid):
            Contact.objects.bulk_create(chunk)
        report.imported = len(report.valid)
        Campaign.objects.filter(pk=campaign.pk).update(contacts_total=F("contacts_total") + report.imported)
    return report


# Between upload and import the parsed rows wait in storage under an unguessable name in their
# campaign's folder, so a key used with another workspace's campaign finds nothing.
_KEY = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
EXPIRED = "That upload is unknown or has expired: upload the file again."


def _stash_path(campaign: Campaign, key: str) -> str:
    if not _KEY.match(key):
        raise ImportRefused(EXPIRED)
    return f"imports/{campaign.workspace_id}/{campaign.pk}/{key}.json"


def receive(campaign: Campaign, data: bytes, *, region: str) -> str:
    """An uploaded file, read and parsed once and kept for its preview; returns the preview's key."""
    refuse_finished(campaign)
    return stash(campaign, parse(decode(data), region=region))


def stash(campaign: Campaign, parsed: Parsed) -> str:
    key = secrets.token_urlsafe(24)
    default_storage.save(_stash_path(campaign, key), ContentFile(json.dumps(asdict(parsed)).encode()))
    return key


def unstash(campaign: Campaign, key: str) -> Parsed:
    path = _stash_path(campaign, key)
    if not default_storage.exists(path):
        raise ImportRefused(EXPIRED)
    with default_storage.open(path, "rb") as stored:
        data = json.load(stored)
    return Parsed(data["columns"], data["variables"], [Row(**row) for row in data["rows"]])


def discard(campaign: Campaign, key: str) -> None:
    default_storage.delete(_stash_path(campaign, key))
