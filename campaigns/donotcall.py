"""The workspace's do-not-call list: numbers the dialer must never ring, added by hand, file or opt-out."""

from dataclasses import dataclass, field

from django.db import transaction

from campaigns import imports
from campaigns.models import DoNotCall
from tenancy.models import Workspace


class NotAPhoneNumber(ValueError):
    pass


def add_number(workspace: Workspace, raw: str, *, region: str, reason: str = "",
               source: str = DoNotCall.Source.MANUAL) -> tuple[DoNotCall, bool]:
    """Put a number on the list (idempotent); returns (entry, created)."""
    phone = imports.normalise(raw.strip(), region)
    if phone is None:
        raise NotAPhoneNumber(f"{raw!r} is not a valid phone number.")
    return DoNotCall.objects.get_or_create(
        workspace=workspace, phone=phone, defaults={"reason": reason, "source": source}
    )


@dataclass
class ListReport:
    added: int = 0
    already: int = 0
    errors: list[imports.RowError] = field(default_factory=list)


@transaction.atomic
def import_numbers(workspace: Workspace, text: str, *, region: str, reason: str = "") -> ListReport:
    """Add every valid number of a CSV (a phone column, other columns ignored) to the list."""
    report = ListReport()
    rows = imports.first_occurrences(imports.parse(text, region=region).rows, report.errors)
    phones = [row.phone for row in rows]
    existing = imports.existing_phones(DoNotCall.objects.filter(workspace=workspace), phones)
    fresh = [
        DoNotCall(workspace=workspace, phone=p, reason=reason, source=DoNotCall.Source.UPLOAD)
        for p in phones
        if p not in existing
    ]
    for chunk in imports.chunks(fresh):
        # A concurrent add of the same number is the same wish, not an error.
        DoNotCall.objects.bulk_create(chunk, ignore_conflicts=True)
    report.added, report.already = len(fresh), len(existing)
    return report
