"""What pages show of transfers: a call's steps on its timeline, a campaign's transfer rate and wait."""

import datetime

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F

from campaigns.models import Call, Campaign
from campaigns.queries import Moment
from transfers.models import Transfer


def moments(call: Call) -> list[Moment]:
    """The transfer's steps for the call's timeline: who was rung and how it went, the wait, the talk."""
    transfer = Transfer.objects.filter(call=call).select_related("group", "agent").first()
    if transfer is None:
        return []
    group = transfer.group.name if transfer.group else "a removed group"
    found = [Moment(transfer.requested_at, "Transfer requested", f"to {group}", transfer.whisper)]
    who = transfer.agent.name if transfer.agent else transfer.agent_phone or "an agent"
    if call.campaign.connect_mode == Campaign.ConnectMode.FLOW:
        # The flow's applet rang; its Passthru, at the call's end, named who answered: no wait or talk is known.
        found.append(Moment(transfer.requested_at, "Handed to the flow's Transfer applet", "the stream closed"))
        if transfer.bridged_at:
            found.append(Moment(transfer.bridged_at, f"{who} took the call", "named by the flow's Passthru"))
        return found
    for attempt in transfer.tried:
        found.append(Moment(_parse(attempt["at"]), f"Ringing agent {attempt['name']}",
                            f"{attempt['phone']}: {attempt['outcome']}"))
    if transfer.answered_at:
        found.append(Moment(transfer.answered_at, f"{who} answered", "hears the whisper"))
    if transfer.bridged_at:
        found.append(Moment(transfer.bridged_at, f"Caller connected to {who}",
                            f"waited {transfer.wait_seconds:.1f} s"))
    if transfer.state == Transfer.State.ENDED:
        found.append(Moment(transfer.ended_at, f"Conversation with {who} ended", f"talked {transfer.talk_seconds:.0f} s"))
    if transfer.state in (Transfer.State.FALLBACK, Transfer.State.CALLBACK):
        found.append(Moment(transfer.ended_at, "Nobody answered: fallback and call-back offer",
                            f"waited {transfer.wait_seconds:.1f} s"))
    if transfer.callback_at:
        found.append(Moment(transfer.ended_at, "Call-back scheduled", f"for {transfer.callback_at:%Y-%m-%d %H:%M %Z}"))
    return found


def figures(campaign: Campaign) -> dict:
    """Transfer rate (transfers over answered calls) and the average wait for an agent."""
    return by_campaign([campaign])[campaign.pk]


def by_campaign(campaigns: list[Campaign]) -> dict[int, dict]:
    """`figures` of each campaign, in one query whatever their number."""
    waited = ExpressionWrapper(F("bridged_at") - F("requested_at"), output_field=DurationField())
    rows = (Transfer.objects.filter(call__campaign__in=[c.pk for c in campaigns])
            .values("call__campaign_id").annotate(count=Count("pk"), bridged=Count("bridged_at"), wait=Avg(waited))
            .order_by())
    totals = {row["call__campaign_id"]: row for row in rows} if campaigns else {}
    return {c.pk: _figures(c, totals.get(c.pk, {"count": 0, "bridged": 0, "wait": None})) for c in campaigns}


def _figures(campaign: Campaign, totals: dict) -> dict:
    count, wait = totals["count"], totals["wait"]
    if campaign.connect_mode == Campaign.ConnectMode.FLOW:
        wait = None  # the flow's Transfer applet rings; its Passthru comes at the end: the wait is not known
    return {
        "transfers": count,
        "transferred": totals["bridged"],
        "transfer_rate": f"{round(100 * count / campaign.calls_answered)}%" if campaign.calls_answered else "—",
        "average_wait": f"{wait.total_seconds():.1f} s" if wait is not None else "—",
    }


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)
