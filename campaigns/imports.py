"""Contact import from CSV: every row imported or reported by its line, in bounded time and memory.

An upload (`ContactUpload`) takes three steps; the two heavy ones run as Celery tasks (campaigns.tasks):
- `receive`, in the request: refuses a finished campaign and a file whose first line names no phone
  column, then keeps the file as it came, in storage.
- `check_upload` reads the file line by line within campaigns.csvfile's bounds, brings every phone to E.164
  with `phonenumbers` (the slow part: about 50 µs a row), keeps the parsed rows (rows.jsonl) and judges
  them against the campaign (repeats in the file, already a contact, on the do-not-call list) for the
  preview, writing no contact.
- `import_upload`, once the operator confirms, judges the parsed rows again and writes them in windows
  of a thousand, each in its own short transaction under the campaign's row lock: the check stays true
  until its insert, and nothing (a status callback's counter update) waits longer than one window.
Each window costs one query for the campaign's contacts and one for the do-not-call list, never one
per row. Rejected rows go to rejected.csv, which the pages offer for download.
"""

import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import phonenumbers
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import compliance, export, pools, rules
from campaigns.csvfile import FileChecks, ImportRefused, Lines, Row, RowError, read_header, read_rows, windows
from campaigns.models import Campaign, Contact, ContactUpload, DoNotCall

State = ContactUpload.State

NAME_MAX = Contact._meta.get_field("name").max_length
PREVIEW_ROWS = 10
ERRORS_SHOWN = 500
KEEP_UNCONFIRMED = timedelta(days=1)
SOURCE, PARSED, REJECTED = "upload.csv", "rows.jsonl", "rejected.csv"


@dataclass
class Report:
    """What an upload holds, or what its import did: counts, and the first rows of each kind."""

    columns: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    guessed: dict[str, str] = field(default_factory=dict)  # role -> the column read for it, when not by its name
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    imported: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    # Valid numbers no Exophone of the pool may call, by calling code: the dialler will skip them.
    uncallable: dict[str, int] = field(default_factory=dict)

    def add(self, valid: list[Row], errors: list[RowError]) -> None:
        self.rows += len(valid) + len(errors)
        self.valid += len(valid)
        self.rejected += len(errors)
        for error in errors:
            reason = "duplicate in the file" if error.reason.startswith("duplicate") else error.reason
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.errors += [asdict(e) for e in errors[: ERRORS_SHOWN - len(self.errors)]]
        self.sample += [{"phone": r.phone, "name": r.name, "variables": r.variables}
                        for r in valid[: PREVIEW_ROWS - len(self.sample)]]

    def flag_uncallable(self, valid: list[Row], calling_codes: frozenset[int]) -> None:
        for row in valid:
            if calling_codes and not pools.in_countries(row.phone, calling_codes):
                code = f"+{phonenumbers.parse(row.phone).country_code}"
                self.uncallable[code] = self.uncallable.get(code, 0) + 1


class Judge:
    """Rows judged for one campaign a window at a time, in file order (each window's errors by line)."""

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self.file_checks = FileChecks()

    def window(self, rows: list[Row]) -> tuple[list[Row], list[RowError]]:
        """The rows to import and the rejected ones."""
        errors: list[RowError] = []
        kept = []
        for row in self.file_checks.keep(rows, errors):
            if len(row.name) > NAME_MAX:
                errors.append(RowError(row.line, row.phone, f"name longer than {NAME_MAX} characters"))
            elif problem := rules.unreachable(row.phone):
                errors.append(RowError(row.line, row.phone, f"{problem}: no call can reach it"))
            elif row.time_zone and row.time_zone not in rules.known_zones():
                errors.append(RowError(row.line, row.phone, f"unknown time zone {row.time_zone[:40]!r}"))
            else:
                kept.append(row)
        phones = [row.phone for row in kept]
        in_campaign = phones_among(Contact.objects.filter(campaign=self.campaign), phones)
        on_dnc = phones_among(DoNotCall.objects.filter(workspace_id=self.campaign.workspace_id), phones)
        valid = []
        for row in kept:
            if row.phone in in_campaign:
                errors.append(RowError(row.line, row.phone, "already in this campaign"))
            elif row.phone in on_dnc:
                errors.append(RowError(row.line, row.phone, "on the do-not-call list"))
            else:
                valid.append(row)
        errors.sort(key=lambda e: e.line)
        return valid, errors


def phones_among(queryset, phones: list[str]) -> set[str]:
    """Which of (at most BATCH) `phones` the queryset's rows hold."""
    return set(queryset.filter(phone__in=phones).values_list("phone", flat=True))


def refuse_finished(campaign: Campaign) -> None:
    if campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED):
        raise ImportRefused(f"The campaign is {campaign.state}: it takes no more contacts.")


# Files of an upload, in storage under its campaign's folder.

def path(upload: ContactUpload, name: str) -> str:
    return f"imports/{upload.workspace_id}/{upload.campaign_id}/{upload.pk}/{name}"


def _keep(upload: ContactUpload, name: str, file) -> None:
    file.seek(0)
    default_storage.delete(path(upload, name))  # a task run twice writes its file again
    default_storage.save(path(upload, name), File(file))


def _forget(upload: ContactUpload, *names: str) -> None:
    for name in names:
        default_storage.delete(path(upload, name))


@contextmanager
def rejected_csv(upload: ContactUpload) -> Iterator[Callable[[list[RowError]], None]]:
    """A writer of the upload's rejected.csv, kept in storage when the block ends without an error."""
    with tempfile.TemporaryFile() as file:
        text = io.TextIOWrapper(file, encoding="utf-8", newline="")
        export.write_rows(text, [("line", "phone", "problem")])  # cells a spreadsheet would run are defused
        yield lambda errors: export.write_rows(text, ((e.line, e.phone, e.reason) for e in errors))
        text.flush()
        _keep(upload, REJECTED, text.detach())


def record_progress(task_row, done: int, total: int) -> None:
    """Store a task's progress on its row (an upload, a do-not-call import), which has `progress`."""
    percent = min(99, 100 * done // max(total, 1))
    if percent // 5 != task_row.progress // 5:  # each write is a commit: one per 5% is enough for a bar
        task_row.progress = percent
        type(task_row).objects.filter(pk=task_row.pk).update(progress=percent)


# The three steps.

def receive(campaign: Campaign, file, *, region: str, user) -> ContactUpload:
    """An uploaded file, kept for `check_upload` once its first line names a phone column."""
    refuse_finished(campaign)
    read_header(csv.reader(Lines(file)))
    with transaction.atomic():
        upload = ContactUpload.objects.create(workspace_id=campaign.workspace_id, campaign=campaign,
                                              created_by=user, region=region)
        _keep(upload, SOURCE, file)
    return upload


def check_upload(upload_id: int) -> None:
    """Read, parse and judge every row of an upload for its preview; keep the parsed rows for the import."""
    upload = ContactUpload.objects.select_related("campaign").filter(pk=upload_id, state=State.CHECKING).first()
    if upload is None:
        return  # forgotten, or checked already (the task delivered twice)
    size = default_storage.size(path(upload, SOURCE))
    try:
        with (default_storage.open(path(upload, SOURCE), "rb") as source, tempfile.TemporaryFile() as parsed,
              rejected_csv(upload) as reject):
            lines = Lines(source)
            reader = csv.reader(lines)
            header = read_header(reader)
            report, judge = Report(header.columns, header.variables, header.guessed), Judge(upload.campaign)
            calling_codes = pools.calling_codes(upload.campaign)
            for window in windows(read_rows(reader, header, upload.region)):
                parsed.writelines(json.dumps(list(vars(row).values())).encode() + b"\n" for row in window)
                valid, errors = judge.window(window)
                report.add(valid, errors)
                report.flag_uncallable(valid, calling_codes)
                reject(errors)
                record_progress(upload, lines.bytes_read, size)
            _keep(upload, PARSED, parsed)
    except ImportRefused as exc:
        ContactUpload.objects.filter(pk=upload.pk).update(state=State.REFUSED, message=str(exc))
        _forget(upload, SOURCE, PARSED)
        return
    ContactUpload.objects.filter(pk=upload.pk).update(state=State.READY, progress=100, report=asdict(report))


def confirm(upload: ContactUpload) -> bool:
    """Mark a checked upload for import; False if it is not waiting for a confirmation (any more)."""
    return bool(ContactUpload.objects.filter(pk=upload.pk, state=State.READY).update(state=State.IMPORTING, progress=0))


def import_upload(upload_id: int) -> None:
    """Write the confirmed upload's valid rows as contacts, a window at a time; reject the rest by line."""
    upload = ContactUpload.objects.select_related("campaign").filter(pk=upload_id, state=State.IMPORTING).first()
    if upload is None:
        return
    report = Report(upload.report["columns"], upload.report["variables"], upload.report.get("guessed", {}))
    judge, message = Judge(upload.campaign), ""
    calling_codes = pools.calling_codes(upload.campaign)
    with default_storage.open(path(upload, PARSED), "rb") as parsed, rejected_csv(upload) as reject:
        for window in windows(Row(*json.loads(line)) for line in parsed):
            try:
                with transaction.atomic():
                    valid, errors = _write(judge, window)
                    report.add(valid, errors)
                    report.flag_uncallable(valid, calling_codes)
                    record_progress(upload, report.rows, upload.report["rows"])
            except ImportRefused as exc:
                message = f"{exc} The import stopped at line {window[0].line}."
                break
            reject(errors)
    report.imported = report.valid
    _forget(upload, SOURCE, PARSED)
    ContactUpload.objects.filter(pk=upload.pk).update(state=State.IMPORTED, progress=100, message=message,
                                                      report=asdict(report))


def _write(judge: Judge, rows: list[Row]) -> tuple[list[Row], list[RowError]]:
    # Locked for one window only: imports into one campaign take turns, so the check holds until the insert.
    campaign = judge.campaign = Campaign.objects.select_for_update().get(pk=judge.campaign.pk)
    refuse_finished(campaign)
    valid, errors = judge.window(rows)
    recipients = compliance.ensure_recipients(campaign.workspace_id, [r.phone for r in valid])
    # A contact added meanwhile by other means (the admin) is skipped, not an error that loses the window.
    Contact.objects.bulk_create([
        Contact(workspace_id=campaign.workspace_id, campaign=campaign, phone=r.phone, name=r.name,
                variables=r.variables, recipient_id=recipients[r.phone],
                time_zone=r.time_zone or rules.zone_key(rules.zones_of_number(r.phone))) for r in valid
    ], ignore_conflicts=True)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=F("contacts_total") + len(valid))
    return valid, errors


def import_now(campaign: Campaign, file, *, region: str, user=None) -> ContactUpload:
    """The three steps one after the other, in this process (the demo's seed, the benchmark)."""
    upload = receive(campaign, file, region=region, user=user)
    check_upload(upload.pk)
    upload.refresh_from_db()
    if confirm(upload):
        import_upload(upload.pk)
        upload.refresh_from_db()
    return upload


def rejected_rows(upload: ContactUpload):
    """The upload's rejected.csv, open for reading, or None once it is gone."""
    name = path(upload, REJECTED)
    return default_storage.open(name, "rb") if default_storage.exists(name) else None


def forget_stale_uploads() -> int:
    """Delete uploads that were not confirmed within KEEP_UNCONFIRMED, with their files."""
    stale = ContactUpload.objects.filter(created_at__lt=timezone.now() - KEEP_UNCONFIRMED,
                                         state__in=[State.CHECKING, State.READY, State.REFUSED])
    forgotten = 0
    for upload in stale.iterator():
        _forget(upload, SOURCE, PARSED, REJECTED)
        forgotten += ContactUpload.objects.filter(pk=upload.pk, state=upload.state).delete()[0]
    return forgotten
