"""The workspace's do-not-call list: numbers the dialer must never ring, added by hand, file or opt-out."""

import csv
from dataclasses import dataclass, field

from django.db import transaction

from campaigns import csvfile, imports
from campaigns.models import DoNotCall
from tenancy.models import Workspace


class NotAPhoneNumber(ValueError):
    pass


def add_number(workspace: Workspace, raw: str, *, region: str, reason: str = "",
               source: str = DoNotCall.Source.MANUAL) -> tuple[DoNotCall, bool]:
    """Put a number on the list (idempotent); returns (entry, created)."""
    phone = csvfile.normalise(raw.strip(), region)
    if phone is None:
        raise NotAPhoneNumber(f"{raw!r} is not a valid phone number.")
    return DoNotCall.objects.get_or_create(
        workspace=workspace, phone=phone, defaults={"reason": reason, "source": source}
    )


@dataclass
class ListReport:
    added: int = 0
    already: int = 0
    errors: list[csvfile.RowError] = field(default_factory=list)


@transaction.atomic
def import_numbers(workspace: Workspace, file, *, region: str, reason: str = "") -> ListReport:
    """Add every valid number of a CSV file (a phone column, other columns ignored) to the list."""
    report = ListReport()
    reader = csv.reader(csvfile.Lines(file))
    header = csvfile.read_header(reader)
    checks = csvfile.FileChecks()
    for window in csvfile.windows(csvfile.read_rows(reader, header, region)):
        phones = [row.phone for row in checks.keep(window, report.errors)]
        existing = imports.phones_among(DoNotCall.objects.filter(workspace=workspace), phones)
        # A concurrent add of the same number is the same wish, not an error.
        DoNotCall.objects.bulk_create([
            DoNotCall(workspace=workspace, phone=p, reason=reason, source=DoNotCall.Source.UPLOAD)
            for p in phones if p not in existing
        ], ignore_conflicts=True)
        report.added += len(phones) - len(existing)
        report.already += len(existing)
    return report
