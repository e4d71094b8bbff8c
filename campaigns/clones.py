"""A campaign cloned: its settings into a new draft, never its calls; or its contacts re-called by outcome
(every "no answer" of yesterday) as a new draft campaign.

The settings are what the campaign form edits (CampaignForm.Meta.fields, the caller-ID pool with them)
and its A/B variants as their form edits them (VariantForm): what an operator chose, whatever is added
to those forms later. Counters, state and the dispatcher's
pacing start afresh, and schedule bounds already past are left out (a draft cannot start in the past).

A re-call takes the contacts whose last call was placed within the days chosen (the workspace's zone)
and ended with one of the chosen outcomes or the bot's dispositions: a contact called again since,
and answered, is not re-called for an old no-answer. Their names, variables and zones come along;
numbers on the do-not-call list now are left out, and counted.
"""

import datetime
from dataclasses import dataclass
from itertools import islice

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns import donotcall, queries
from campaigns.forms import CampaignForm, VariantForm
from campaigns.models import Call, Campaign, CampaignEvent, Contact, Variant
from campaigns.rollups import ANSWERED

MACHINE = Q(answered_by="machine")
OUTCOMES = {  # what a re-call may choose by, as the calls page names call states
    "no-answer": ("No answer", Q(state=Call.State.NO_ANSWER)),
    "busy": ("Busy", Q(state=Call.State.BUSY)),
    "failed": ("Failed", Q(state=Call.State.FAILED)),
    "machine": ("Answered by a machine", MACHINE),
    "answered": ("Answered by a person", ANSWERED & ~MACHINE),
}
OUTCOME_CHOICES = [(key, label) for key, (label, _) in OUTCOMES.items()]
BATCH = 2000


class NothingToRecall(Exception):
    """No contact matches the re-call's choice: no campaign is made."""


@dataclass
class Recall:
    campaign: Campaign
    contacts: int
    on_do_not_call: int  # matched, but left out: on the list now


@transaction.atomic
def clone_campaign(campaign: Campaign, *, name: str, by, now: datetime.datetime | None = None,
                   note: str = "") -> Campaign:
    """A new draft with `campaign`'s settings and caller-ID pool, and no contact."""
    now = now or timezone.now()
    fields = [Campaign._meta.get_field(name) for name in CampaignForm.Meta.fields]
    copy = Campaign(workspace_id=campaign.workspace_id, created_by=by,
                    **{f.attname: getattr(campaign, f.attname) for f in fields if not f.many_to_many})
    for bound in ("starts_at", "ends_at"):
        if getattr(copy, bound) and getattr(copy, bound) <= now:
            setattr(copy, bound, None)
    copy.name = name
    copy.save()
    for field in fields:
        if field.many_to_many:
            getattr(copy, field.name).set(getattr(campaign, field.name).all())
    # Its A/B test's arms too, each as its form edits it, in the same order (the first is the control).
    Variant.objects.bulk_create(
        Variant(workspace_id=copy.workspace_id, campaign=copy, **values)
        for values in campaign.variants.order_by("pk").values(*VariantForm.Meta.fields))
    CampaignEvent.objects.create(workspace_id=copy.workspace_id, campaign=copy, action="created", by=by,
                                 note=(note or f"Cloned from {campaign.name} (#{campaign.pk}).")[:500])
    return copy


def recalled(campaign: Campaign, *, outcomes: list[str], dispositions: list[str], since: datetime.date,
             until: datetime.date, tz: str):
    """The contacts whose last call was placed from `since` to `until` (days in `tz`) and matched."""
    start, end = queries.day_bounds(since, tz)[0], queries.day_bounds(until, tz)[1]
    matched = Q(pk__in=[])
    for outcome in outcomes:
        matched |= OUTCOMES[outcome][1]
    if dispositions:
        matched |= Q(disposition__in=dispositions)
    later = Call.objects.filter(contact_id=OuterRef("contact_id"), attempt__gt=OuterRef("attempt"))
    last_calls = (Call.objects.filter(campaign=campaign, created_at__gte=start, created_at__lt=end)
                  .filter(matched).exclude(Exists(later)))
    return Contact.objects.filter(campaign=campaign, pk__in=last_calls.values("contact_id"))


def recall_campaign(campaign: Campaign, *, name: str, by, outcomes: list[str], dispositions: list[str],
                    since: datetime.date, until: datetime.date) -> Recall:
    """A new draft campaign with `campaign`'s settings calling its contacts `recalled` chose, less the
    do-not-call list; NothingToRecall (and nothing made) when none is left."""
    tz = campaign.workspace.time_zone
    chosen = recalled(campaign, outcomes=outcomes, dispositions=dispositions, since=since, until=until, tz=tz)
    what = ", ".join([OUTCOMES[o][0].lower() for o in outcomes] + [f"“{d}”" for d in dispositions])
    days = f"{since:%Y-%m-%d}" if since == until else f"{since:%Y-%m-%d} to {until:%Y-%m-%d}"
    with transaction.atomic():
        rows = chosen.annotate(listed=donotcall.on_the_list()).order_by("pk").values_list(
            "phone", "name", "variables", "time_zone", "recipient_id", "listed")
        copy, added, listed = None, 0, 0
        rows = rows.iterator(chunk_size=BATCH)
        while batch := list(islice(rows, BATCH)):
            kept = [row for row in batch if not row[-1]]
            listed += len(batch) - len(kept)
            if kept and copy is None:
                copy = clone_campaign(campaign, name=name, by=by,
                                      note=f"Re-calls the contacts of {campaign.name} (#{campaign.pk}) whose last "
                                           f"call on {days} was {what}.")
            Contact.objects.bulk_create(
                Contact(workspace_id=campaign.workspace_id, campaign=copy, phone=phone, name=contact_name,
                        variables=variables, time_zone=zones, recipient_id=recipient)
                for phone, contact_name, variables, zones, recipient, _ in kept)
            added += len(kept)
        if copy is None:
            left_out = f" ({listed} matched, all on the do-not-call list)" if listed else ""
            raise NothingToRecall(f"No contact of {campaign.name} had a last call on {days} that was {what}{left_out}.")
        Campaign.objects.filter(pk=copy.pk).update(contacts_total=added)
        copy.contacts_total = added
    return Recall(copy, added, listed)
