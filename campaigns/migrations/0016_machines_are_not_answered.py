"""Calls a machine answered leave the answered calls, their talk time and the charts' answered counts
(campaigns.calls, campaigns.rollups): until now the engine counted them there too. Run while no engine
process changes calls, as the rollups' backfill."""

import datetime

from django.db import migrations
from django.db.models import F, Q, Sum
from django.db.models.functions import ExtractMinute, Greatest, TruncHour

FINAL = ["completed", "busy", "no-answer", "failed", "canceled"]


def move(apps, sign: int) -> None:
    Campaign, Call, Quarter = (apps.get_model("campaigns", name) for name in ("Campaign", "Call", "QuarterRollup"))
    # As Call.was_answered: what the engine counted as answered when each ended.
    machines = Call.objects.filter(Q(answered_at__isnull=False) | Q(state="completed"), answered_by="machine",
                                   state__in=FINAL)
    for campaign_id in machines.values_list("campaign_id", flat=True).order_by().distinct():
        of_campaign = machines.filter(campaign_id=campaign_id)
        talk = of_campaign.filter(state="completed").aggregate(s=Sum("duration", default=0))["s"]
        # Never below zero: a duration Exotel filled in after the end was never added to the talk time.
        Campaign.objects.filter(pk=campaign_id).update(
            calls_answered=Greatest(F("calls_answered") - sign * of_campaign.count(), 0),
            talk_seconds=Greatest(F("talk_seconds") - sign * talk, 0))
        quarters = (of_campaign.annotate(hour=TruncHour("created_at", tzinfo=datetime.UTC),
                                         minute=ExtractMinute("created_at", tzinfo=datetime.UTC))
                    .values_list("hour", "minute"))
        counted = {}
        for hour, minute in quarters:
            quarter = hour + datetime.timedelta(minutes=minute - minute % 15)
            counted[quarter] = counted.get(quarter, 0) + 1
        for quarter, n in counted.items():
            Quarter.objects.filter(campaign_id=campaign_id, starts_at=quarter).update(
                answered=Greatest(F("answered") - sign * n, 0))


def uncount(apps, schema_editor):
    move(apps, 1)


def count_again(apps, schema_editor):
    move(apps, -1)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0015_relay_token'),
    ]

    operations = [migrations.RunPython(uncount, count_again)]
