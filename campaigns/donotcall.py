"""The workspace's do-not-call list: numbers the dialer must never ring, added by hand, file or opt-out.

The gate fails closed: while the list cannot be read, because a file is being imported into it or
the database answers with an error, `check_gate` and `blocked_phones` raise GateClosed and the
dispatcher dials nothing for that workspace (it says why on each of its running campaigns). Every
entry is workspace-wide, so a number added during one campaign's call is skipped by all of them from
the next claim on, and `place_call` checks the list once more before it dials.
"""

import contextlib
import datetime
import re
import zoneinfo

from django.db import DatabaseError
from django.db.models import Exists, OuterRef, QuerySet

from campaigns import csvfile
from campaigns.models import Call, Campaign, Contact, DoNotCall, DoNotCallImport
from tenancy.models import Workspace

GATE_HELD = "Dialling held: "  # how the gate's reasons start on a campaign's last_error
# Passthru dispositions (set by a flow's bot) that mean the caller opted out, compared without case,
# spaces, hyphens or underscores: "Opted-Out", "opted_out" and "DND" all do.
OPT_OUT_DISPOSITIONS = frozenset({"optedout", "optout", "donotcall", "dnd", "unsubscribe", "unsubscribed"})


class NotAPhoneNumber(ValueError):
    pass


class GateClosed(Exception):
    """The list cannot be read now: nothing may be dialled for the workspace until it can."""


@contextlib.contextmanager
def _reading_the_list():
    try:
        yield
    except DatabaseError as exc:
        raise GateClosed(f"{GATE_HELD}the do-not-call list could not be read ({type(exc).__name__}).") from exc


def check_gate(workspace_id: int) -> None:
    """Raise GateClosed while the workspace's list is being imported or cannot be read."""
    with _reading_the_list():
        since = (DoNotCallImport.objects.filter(workspace_id=workspace_id, state=DoNotCallImport.State.IMPORTING)
                 .values_list("created_at", flat=True).first())
    if since is not None:
        raise GateClosed(f"{GATE_HELD}a do-not-call file is being imported (since {since:%Y-%m-%d %H:%M} UTC).")


def blocked_phones(workspace_id: int, phones: list[str]) -> set[str]:
    """Which of `phones` are on the workspace's list; GateClosed if the list cannot be read."""
    if not phones:
        return set()
    with _reading_the_list():
        return set(DoNotCall.objects.filter(workspace_id=workspace_id, phone__in=phones)
                   .values_list("phone", flat=True))


def on_the_list() -> Exists:
    """A filter for rows with `workspace_id` and `phone` (contacts, calls): the number is on the list."""
    return Exists(DoNotCall.objects.filter(workspace_id=OuterRef("workspace_id"), phone=OuterRef("phone")))


def blocked_contacts(campaign: Campaign) -> QuerySet:
    """The campaign's pending contacts whose number is on the list now: they will be skipped."""
    return Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).filter(on_the_list())


def count_blocked(campaign: Campaign) -> int:
    """For the pre-launch counts: pending contacts the do-not-call list will skip (one indexed query)."""
    return blocked_contacts(campaign).count()


def add_number(workspace: Workspace, raw: str, *, region: str, reason: str = "",
               source: str = DoNotCall.Source.MANUAL) -> tuple[DoNotCall, bool]:
    """Put a number on the list (idempotent); returns (entry, created)."""
    phone = csvfile.normalise(raw.strip(), region)
    if phone is None:
        raise NotAPhoneNumber(f"{raw!r} is not a valid phone number.")
    return DoNotCall.objects.get_or_create(
        workspace=workspace, phone=phone, defaults={"reason": reason, "source": source}
    )


def opt_out(call: Call, *, source: str, reason: str) -> bool:
    """The call's number asked never to be called again: on the list for every campaign of the workspace
    at once. False if it was listed already (that entry keeps its first source)."""
    _, created = DoNotCall.objects.get_or_create(
        workspace_id=call.workspace_id, phone=call.phone,
        defaults={"source": source, "reason": f"{reason} (call {call.pk}, campaign {call.campaign_id})"[:200]},
    )
    return created


def means_opt_out(disposition: str) -> bool:
    return re.sub(r"[\s_-]", "", disposition.lower()) in OPT_OUT_DISPOSITIONS


def latest_scrub_date(workspace_id: int) -> datetime.date | None:
    """The publication date of the newest national registry file imported into the workspace's list."""
    return (DoNotCallImport.objects
            .filter(workspace_id=workspace_id, source=DoNotCall.Source.REGISTRY, state=DoNotCallImport.State.IMPORTED)
            .order_by("-file_date").values_list("file_date", flat=True).first())


def scrub_problem(campaign: Campaign, *, now: datetime.datetime) -> str:
    """Why the campaign may not dial for want of a fresh registry scrub, or "" (fresh, or not required).

    "Newer than K days": the newest imported file is less than K days old on the campaign's calendar."""
    if not campaign.scrub_max_age_days:
        return ""
    wanted = f"The campaign requires a national registry scrub newer than {campaign.scrub_max_age_days} days"
    dated = latest_scrub_date(campaign.workspace_id)
    if dated is None:
        return f"{wanted}; none has been imported."
    age = (now.astimezone(zoneinfo.ZoneInfo(campaign.time_zone)).date() - dated).days
    if age >= campaign.scrub_max_age_days:
        return f"{wanted}; the newest imported is dated {dated:%Y-%m-%d} ({age} days old)."
    return ""
