"""The wallboard: a workspace's campaigns on the go at a glance, refreshed live, and those that finished.

A fixed number of queries whatever the number of campaigns or calls (tests/campaigns/test_wallboard.py
holds it to that): totals from the counters the engine keeps on each campaign's row, the last hour
from its quarter-hour rollups, dispositions from theirs (campaigns/rollups.py), transfers grouped by
campaign, the estimated finish from campaigns.estimate, the finished campaigns from their lifecycle
events. No call row is read.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from campaigns import estimate, rules
from campaigns.models import Campaign, CampaignEvent, DispositionRollup
from campaigns.queries import rate
from streams import heartbeat
from tenancy.models import Workspace
from transfers import queries as transfer_queries

ON_BOARD = [Campaign.State.RUNNING, Campaign.State.PAUSED, Campaign.State.SCHEDULED]
FINISHED_SHOWN = 10
DISPOSITIONS_SHOWN = 3
# Calls that reached nobody, by cause: the engine's counters (a machine's answer is not an answered call).
FAILURES = [("busy", "calls_busy"), ("no answer", "calls_no_answer"), ("failed", "calls_failed"),
            ("machine", "calls_machine")]


@dataclass
class Row:
    campaign: Campaign
    answer_rate: int | None  # answered over ended calls, since it began
    hour: dict  # the last hour: placed, ended, answered, answer_rate
    failures: list[tuple[str, int]]  # the causes with a count
    dispositions: list[tuple[str, int]]
    transfers: dict
    finish: estimate.Estimate


def board(workspace: Workspace, *, now: datetime.datetime) -> dict:
    campaigns = sorted(Campaign.objects.filter(workspace=workspace, state__in=ON_BOARD),
                       key=lambda c: (ON_BOARD.index(c.state), c.name.lower(), c.pk))
    running = any(c.state == Campaign.State.RUNNING for c in campaigns)
    held = running and not heartbeat.healthy(now=now)
    hour = estimate.last_hour([c.pk for c in campaigns], now=now)
    finishes = estimate.for_campaigns(campaigns, policy=rules.Policy.of(workspace), held=held, hour=hour, now=now)
    transfers = transfer_queries.by_campaign(campaigns)
    dispositions = defaultdict(list)
    for row in (DispositionRollup.objects.filter(campaign__in=campaigns, calls__gt=0)
                .order_by("campaign_id", "-calls", "disposition").values_list("campaign_id", "disposition", "calls")):
        dispositions[row[0]].append(row[1:])
    rows = [
        Row(campaign=c, answer_rate=rate(c.calls_answered, c.calls_total - c.calls_live),
            hour=last_hour_figures(hour.get(c.pk)), failures=[(label, getattr(c, n)) for label, n in FAILURES if getattr(c, n)],
            dispositions=dispositions[c.pk][:DISPOSITIONS_SHOWN], transfers=transfers[c.pk], finish=finishes[c.pk])
        for c in campaigns
    ]
    return {
        "rows": rows,
        "totals": totals(rows),
        "dialling_held": held,
        "finished": finished(workspace),
        "at": now,
    }


def last_hour_figures(summed: dict | None) -> dict:
    summed = summed or {"placed": 0, "ended": 0, "answered": 0}
    return {**summed, "answer_rate": rate(summed["answered"], summed["ended"])}


def totals(rows: list[Row]) -> dict:
    """The board's sums: live calls, the last hour, failures by cause, transfers."""
    hour = {key: sum(r.hour[key] for r in rows) for key in ("placed", "ended", "answered")}
    return {
        "live": sum(max(0, r.campaign.calls_live) for r in rows),
        "hour": {**hour, "answer_rate": rate(hour["answered"], hour["ended"])},
        "answer_rate": rate(sum(r.campaign.calls_answered for r in rows),
                            sum(r.campaign.calls_total - r.campaign.calls_live for r in rows)),
        "failures": (failures := [(label, sum(getattr(r.campaign, n) for r in rows)) for label, n in FAILURES]),
        "not_reached": sum(n for _, n in failures),
        "transfers": sum(r.transfers["transfers"] for r in rows),
    }


def finished(workspace: Workspace) -> list[CampaignEvent]:
    """The campaigns that finished last, newest first: each one's completion or cancellation."""
    return list(CampaignEvent.objects.filter(workspace=workspace, action__in=["completed", "cancelled"])
                .select_related("campaign").order_by("-at")[:FINISHED_SHOWN])
