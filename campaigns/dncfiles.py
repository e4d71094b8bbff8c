"""Files of numbers imported into the do-not-call list: an operator's CSV, or the national registry's
scrub file (millions of numbers, its publication date recorded).

`receive` keeps the file and records a `DoNotCallImport` in state importing, which closes the
workspace's do-not-call gate (campaigns.donotcall): nothing is dialled there until the import ends,
so no number of the file can be rung while it is half read. `import_file` (a Celery task) streams
the file line by line within campaigns.csvfile's bounds and upserts it a window of a thousand rows
at a time (one lookup, one INSERT … ON CONFLICT DO NOTHING each), so memory stays bounded whatever
the file's size; duplicates in the file are simply found listed. Progress is the share of bytes read.

Registry files may be bare lists of numbers: a first line that is itself a number is read as data.

An import whose task shows no sign of life for STALLED_AFTER (its message lost with a broker restart,
its worker killed) is sent again by the beat (`stalled`), so the gate it holds never waits for ever;
importing again is safe, and a task claims the import first, so two never work on it at once.
"""

import csv
import datetime
import itertools
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import csvfile, imports
from campaigns.models import DoNotCall, DoNotCallImport
from tenancy.models import Workspace

State = DoNotCallImport.State
REGISTRY_MAX_ROWS = 50_000_000  # the national registry's files hold millions; the upload limit bounds them first
ERRORS_KEPT = 500
STALLED_AFTER = datetime.timedelta(minutes=10)  # a window of a thousand rows takes well under a second


def path(job: DoNotCallImport) -> str:
    return f"dnc-imports/{job.workspace_id}/{job.pk}.csv"


def receive(workspace: Workspace, file, *, source: str, region: str, user, reason: str = "",
            file_date: datetime.date | None = None) -> DoNotCallImport:
    """Keep the file for `import_file` once its first line names a phone column (or is a number)."""
    read_header(csvfile.Lines(file), region)
    file.seek(0)
    with transaction.atomic():
        job = DoNotCallImport.objects.create(workspace=workspace, source=source, region=region, reason=reason,
                                             file_date=file_date, created_by=user)
        default_storage.save(path(job), file)
    return job


def read_header(lines: Iterable[str], region: str):
    """A csv reader over `lines` and the file's header: its own first line when that names a phone
    column, else a phone column of its own when the first line is a number."""
    lines = iter(lines)
    first = list(itertools.islice(lines, 1))
    reader = csv.reader(itertools.chain(first, lines))
    cells = next(csv.reader(first), [])
    if cells and csvfile.pick(cells, csvfile.PHONE_HEADERS) is None and csvfile.normalise(cells[0].strip(), region):
        return reader, csvfile.Header(["phone"], 0, None, None, [])
    return reader, csvfile.read_header(reader)


def import_file(job_id: int) -> None:
    """Add every valid number of the file to the list, a window at a time; the gate opens at the end."""
    if not _claim(job_id):
        return  # finished already, or another task is at work on it (the task delivered twice)
    job = DoNotCallImport.objects.get(pk=job_id)
    size = default_storage.size(path(job))
    max_rows = REGISTRY_MAX_ROWS if job.source == DoNotCall.Source.REGISTRY else None
    counts = {"added": 0, "already": 0, "rejected": 0}
    errors: list[dict] = []
    try:
        with default_storage.open(path(job), "rb") as source:
            lines = csvfile.Lines(source)
            reader, header = read_header(lines, job.region)
            for window in csvfile.windows(csvfile.read_rows(reader, header, job.region, max_rows=max_rows)):
                phones = _valid_phones(window, counts, errors)
                added = _upsert(job, phones)
                counts["added"] += added
                counts["already"] += len(phones) - added
                imports.record_progress(job, lines.bytes_read, size)
                DoNotCallImport.objects.filter(pk=job.pk).update(worked_at=timezone.now())
    except csvfile.ImportRefused as exc:
        # What came before the refusal stays listed: each of those numbers was asked for.
        _finish(job, State.REFUSED, counts, errors, message=str(exc))
    except Exception as exc:
        # Reported, and the gate opens again: a bug must not hold the workspace's dialling for ever.
        # Importing the file again is safe (what is listed stays listed).
        _finish(job, State.REFUSED, counts, errors, message=f"The import failed ({type(exc).__name__}); "
                                                            "import the file again.")
        raise
    else:
        _finish(job, State.IMPORTED, counts, errors)


def stalled(*, now: datetime.datetime | None = None) -> list[int]:
    """Imports still holding their workspace's gate whose task has shown no sign of life for a while."""
    since = (now or timezone.now()) - STALLED_AFTER
    return list(DoNotCallImport.objects.filter(state=State.IMPORTING).filter(
        Q(worked_at__lt=since) | Q(worked_at__isnull=True, created_at__lt=since)).values_list("pk", flat=True))


def _claim(job_id: int) -> bool:
    """Take the import for this task: unfinished, and nobody at work on it (or the one who was is gone)."""
    now = timezone.now()
    return bool(DoNotCallImport.objects.filter(pk=job_id, state=State.IMPORTING).filter(
        Q(worked_at__isnull=True) | Q(worked_at__lt=now - STALLED_AFTER)).update(worked_at=now))


def _valid_phones(rows: list[csvfile.Row], counts: dict, errors: list[dict]) -> list[str]:
    """The window's numbers in E.164; the rows without one are counted, the first ERRORS_KEPT kept."""
    phones = []
    for row in rows:
        if row.phone and not row.problem:
            phones.append(row.phone)
            continue
        counts["rejected"] += 1
        if len(errors) < ERRORS_KEPT:
            reason = row.problem or ("invalid phone number" if row.raw_phone else "no phone number")
            errors.append({"line": row.line, "phone": row.raw_phone[: csvfile.PHONE_SHOWN], "reason": reason})
    return phones


def _upsert(job: DoNotCallImport, phones: list[str]) -> int:
    """Insert the window's numbers not listed yet; returns how many distinct ones were new."""
    new = set(phones) - imports.phones_among(DoNotCall.objects.filter(workspace_id=job.workspace_id), phones)
    # A number added meanwhile (an opt-out) keeps its entry: the conflict is ignored, not an error.
    DoNotCall.objects.bulk_create([
        DoNotCall(workspace_id=job.workspace_id, phone=phone, source=job.source, reason=job.reason)
        for phone in new
    ], ignore_conflicts=True)
    return len(new)


def _finish(job: DoNotCallImport, state: str, counts: dict, errors: list[dict], *, message: str = "") -> None:
    DoNotCallImport.objects.filter(pk=job.pk).update(state=state, progress=100, errors=errors, message=message[:500],
                                                     finished_at=timezone.now(), **counts)
    default_storage.delete(path(job))

