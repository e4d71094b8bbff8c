"""Contact import from CSV: validate every row, report each rejected one by line, keep every valid one.

A file is checked twice: once for the preview (nothing written) and again when the operator
confirms, inside a transaction that locks the campaign row, so the report the operator acted on
cannot drift from what is written (another import, a new do-not-call entry). Checks against the
database take a few queries per thousand rows, never one per row.
"""

import csv
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

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
class Report:
    """What a file holds: the rows to import and every rejected row with its line number."""

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
            counts[error.reason] = counts.get(error.reason, 0) + 1
        return counts


@dataclass(frozen=True)
class _Row:
    line: int
    raw_phone: str
    name: str
    variables: dict


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


def read_rows(text: str) -> tuple[list[str], list[str], Iterator[_Row]]:
    """The header, the variable columns and the data rows, each with the line it starts on."""
    reader = csv.reader(io.StringIO(text))
    try:
        headers = next(reader)
    except StopIteration:
        raise ImportRefused("The file is empty.") from None
    headers = [h.strip() for h in headers]
    phone_at = _pick(headers, PHONE_HEADERS)
    if phone_at is None:
        raise ImportRefused(f"No phone column: the first line must name one, e.g. {', '.join(PHONE_HEADERS)}.")
    name_at = _pick(headers, NAME_HEADERS)
    extra = [(i, h) for i, h in enumerate(headers) if i not in (phone_at, name_at) and h]

    def rows() -> Iterator[_Row]:
        line = reader.line_num + 1
        for values in reader:
            start, line = line, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue  # blank lines are layout, not rows
            cells = [v.strip() for v in values] + [""] * (len(headers) - len(values))
            name = cells[name_at] if name_at is not None else ""
            yield _Row(start, cells[phone_at], name, {h: cells[i] for i, h in extra if cells[i]})

    return headers, [h for _, h in extra], rows()


def normalise(raw: str, region: str) -> str | None:
    """The number in E.164, or None if it is not a valid phone number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def chunks(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_phones(queryset, phones: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(phones):
        found.update(queryset.filter(phone__in=chunk).values_list("phone", flat=True))
    return found


def check(campaign: Campaign, text: str, *, region: str) -> Report:
    """Validate every row of a CSV for `campaign` without writing anything."""
    columns, variables, rows = read_rows(text)
    report = Report(columns=columns, variables=variables)
    parsed: list[tuple[_Row, str]] = []
    first_line: dict[str, int] = {}
    for row in rows:
        phone = normalise(row.raw_phone, region) if row.raw_phone else None
        if not row.raw_phone:
            report.errors.append(RowError(row.line, "", "no phone number"))
        elif phone is None:
            report.errors.append(RowError(row.line, row.raw_phone, "invalid phone number"))
        elif phone in first_line:
            report.errors.append(RowError(row.line, phone, f"duplicate of line {first_line[phone]}"))
        elif len(row.name) > NAME_MAX:
            report.errors.append(RowError(row.line, phone, f"name longer than {NAME_MAX} characters"))
        else:
            first_line[phone] = row.line
            parsed.append((row, phone))

    phones = [phone for _, phone in parsed]
    in_campaign = existing_phones(Contact.objects.filter(campaign=campaign), phones)
    on_dnc = existing_phones(DoNotCall.objects.filter(workspace_id=campaign.workspace_id), phones)
    for row, phone in parsed:
        if phone in in_campaign:
            report.errors.append(RowError(row.line, phone, "already in this campaign"))
        elif phone in on_dnc:
            report.errors.append(RowError(row.line, phone, "on the do-not-call list"))
        else:
            report.valid.append(
                Contact(
                    workspace_id=campaign.workspace_id,
                    campaign=campaign,
                    phone=phone,
                    name=row.name,
                    variables=row.variables,
                )
            )
    report.errors.sort(key=lambda e: e.line)
    return report


def refuse_finished(campaign: Campaign) -> None:
    if campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED):
        raise ImportRefused(f"The campaign is {campaign.state}: it takes no more contacts.")


def import_contacts(campaign: Campaign, text: str, *, region: str) -> Report:
    """Write every valid row of the CSV as a contact of `campaign`; returns the report of what happened."""
    with transaction.atomic():
        # The lock serialises imports into one campaign, so the check below stays true until commit.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        refuse_finished(campaign)
        report = check(campaign, text, region=region)
        for chunk in chunks(report.valid):
            Contact.objects.bulk_create(chunk)
        report.imported = len(report.valid)
        Campaign.objects.filter(pk=campaign.pk).update(contacts_total=F("contacts_total") + report.imported)
    return report


# Between preview and confirm the upload waits in storage under an unguessable name in its
# workspace's folder, so a key from another workspace finds nothing.
_KEY = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _stash_path(campaign: Campaign, key: str) -> str:
    if not _KEY.match(key):
        raise ImportRefused("That upload is unknown or has expired: upload the file again.")
    return f"imports/{campaign.workspace_id}/{campaign.pk}/{key}.csv"


def stash(campaign: Campaign, data: bytes) -> str:
    key = secrets.token_urlsafe(24)
    default_storage.save(_stash_path(campaign, key), ContentFile(data))
    return key


def unstash(campaign: Campaign, key: str) -> bytes:
    path = _stash_path(campaign, key)
    if not default_storage.exists(path):
        raise ImportRefused("That upload is unknown or has expired: upload the file again.")
    with default_storage.open(path, "rb") as stored:
        return stored.read()


def discard(campaign: Campaign, key: str) -> None:
    default_storage.delete(_stash_path(campaign, key))
