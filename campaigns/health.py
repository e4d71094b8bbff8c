"""What the pages warn about: dialling held for want of a stream server, calls waiting to be
reconciled with Exotel, and accounts whose active streams have disagreed with our live calls."""

import datetime

from django.utils import timezone

from campaigns import accounts, reconcile
from campaigns.models import Campaign
from streams import heartbeat
from tenancy.models import ExotelAccount


def warnings(campaigns: list[Campaign], account_list: list[ExotelAccount] = (), *,
             now: datetime.datetime | None = None) -> dict:
    """Sets `pending_reconciliation` on each campaign; returns the page's warnings."""
    now = now or timezone.now()
    pending = reconcile.pending_by_campaign([c.pk for c in campaigns], now=now)
    for campaign in campaigns:
        campaign.pending_reconciliation = pending.get(campaign.pk, 0)
    running = any(c.state == Campaign.State.RUNNING for c in campaigns)
    return {
        "dialling_held": running and not heartbeat.healthy(now=now),
        "mismatched_accounts": [a for a in account_list if accounts.stream_mismatch(a, now=now)],
    }
