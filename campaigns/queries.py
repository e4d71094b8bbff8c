"""Dashboard reads, each bounded whatever the number of calls.

Campaign totals come from the counter columns the engine keeps, its charts from the rollups it keeps
(campaigns/rollups.py); lists page by keyset on the (…, -created_at, -id) indexes, never by OFFSET
or COUNT(*); the one aggregate over calls that remains scans one day of a workspace.
"""

import base64
import datetime
import zoneinfo
from dataclasses import dataclass

from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.utils import timezone

from campaigns import estimate
from campaigns.models import Call, Campaign, Contact
from campaigns.rollups import ANSWERED, ENDED
from config.redaction import REDACTED
from tenancy.models import ExotelAccount, Workspace

PAGE_SIZE = 50
CHART_HOURS = 24
HOUR = datetime.timedelta(hours=1)


@dataclass
class Page:
    rows: list
    next_cursor: str | None


def encode_cursor(call: Call) -> str:
    return base64.urlsafe_b64encode(f"{call.created_at.isoformat()}|{call.pk}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime.datetime, int] | None:
    """The (created_at, id) a page starts after; None for a cursor that is not ours (first page)."""
    try:
        stamp, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.datetime.fromisoformat(stamp), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def after_row(calls: QuerySet, stamp: datetime.datetime, pk: int) -> QuerySet:
    """Rows after (stamp, pk) in (-created_at, -id) order.

    The plain `created_at <= stamp` is redundant, but it is what lets PostgreSQL start the index
    scan at the cursor: with the OR alone it walks the index from the newest row on every page.
    """
    return calls.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, pk__lt=pk), created_at__lte=stamp)


def call_page(calls: QuerySet, cursor: str = "", *, size: int = PAGE_SIZE) -> Page:
    """One page of calls, newest first, after `cursor`: one indexed query whatever the table size."""
    after = decode_cursor(cursor) if cursor else None
    if after:
        stamp, pk = after
        calls = after_row(calls, stamp, pk)
    rows = list(calls.select_related("campaign").order_by("-created_at", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, encode_cursor(rows[-1]) if more else None)


def day_bounds(day: datetime.date, tz: str) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zoneinfo.ZoneInfo(tz))
    return start, start + datetime.timedelta(days=1)


def filter_calls(calls: QuerySet, filters: dict, *, tz: str) -> QuerySet:
    """Apply the calls page's filters (a cleaned CallFilterForm); dates are days in `tz`."""
    if filters.get("campaign"):
        calls = calls.filter(campaign=filters["campaign"])
    if filters.get("state"):
        calls = calls.filter(state=filters["state"])
    if filters.get("disposition"):
        calls = calls.filter(disposition=filters["disposition"])
    if filters.get("since"):
        calls = calls.filter(created_at__gte=day_bounds(filters["since"], tz)[0])
    if filters.get("until"):
        calls = calls.filter(created_at__lt=day_bounds(filters["until"], tz)[1])
    if filters.get("phone"):
        calls = calls.filter(phone__contains=filters["phone"])
    return calls


def overview(workspace: Workspace) -> dict:
    """The overview page's figures: live calls against capacity, today's calls and outcomes."""
    campaigns = Campaign.objects.filter(workspace=workspace)
    accounts = ExotelAccount.objects.filter(workspace=workspace).annotate(
        live=Sum("campaigns__calls_live", default=0)
    )
    start, end = day_bounds(timezone.localdate(timezone=zoneinfo.ZoneInfo(workspace.time_zone)), workspace.time_zone)
    # The answer rate is answered calls over ended calls: a call on the line is in neither.
    today = Call.objects.filter(workspace=workspace, created_at__gte=start, created_at__lt=end).aggregate(
        total=Count("pk"),
        ended=Count("pk", filter=ENDED),
        answered=Count("pk", filter=ANSWERED),
        talk=Avg("duration", filter=ANSWERED),
    )
    return {
        "accounts": list(accounts),
        "live": sum(a.live for a in accounts),
        "capacity": sum(a.max_allowed_streams or 0 for a in accounts),
        "today": today,
        "answer_rate": rate(today["answered"], today["ended"]),
        "running": list(campaigns.filter(state=Campaign.State.RUNNING)),
    }


def rate(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def outcomes(campaign: Campaign) -> list[tuple[str, str, int]]:
    """(label, counter column, value) of the campaign's outcome counters, as the engine keeps them."""
    columns = [("Answered", "calls_answered"), ("Busy", "calls_busy"), ("No answer", "calls_no_answer"),
               ("Failed", "calls_failed"), ("Live now", "calls_live")]
    if campaign.machine_detection != Campaign.MachineDetection.OFF or campaign.calls_machine:
        columns.insert(1, ("Answering machine", "calls_machine"))
    return [(label, column, getattr(campaign, column)) for label, column in columns]


def dispositions(campaign: Campaign) -> list[dict]:
    """Calls per disposition the bot or flow set, most frequent first."""
    return list(
        campaign.dispositions.filter(calls__gt=0).order_by("-calls", "disposition").values("disposition", n=F("calls"))[:20]
    )


def hourly(campaign: Campaign, *, hours: int = CHART_HOURS, now: datetime.datetime | None = None) -> list[dict]:
    """Calls placed and their answer rate per hour of the campaign's time zone over the last `hours`.

    Summed from the quarter-hour rollups: a local hour is four whole quarters of UTC in every zone.
    """
    tz = zoneinfo.ZoneInfo(campaign.time_zone)
    local = ((now or timezone.now()) - (hours - 1) * HOUR).astimezone(tz)
    # In UTC from here on: adding hours to a local time would cross a DST change by the wall clock.
    start = local.replace(minute=0, second=0, microsecond=0).astimezone(datetime.UTC)
    counted = [{"n": 0, "ended": 0, "answered": 0} for _ in range(hours)]
    for quarter in campaign.quarters.filter(starts_at__gte=start, starts_at__lt=start + hours * HOUR):
        row = counted[(quarter.starts_at - start) // HOUR]
        row["n"] += quarter.placed
        row["ended"] += quarter.ended
        row["answered"] += quarter.answered
    peak = max(row["n"] for row in counted) or 1
    return [
        {"hour": (start + i * HOUR).astimezone(tz), "n": row["n"], "answer_rate": rate(row["answered"], row["ended"]),
         "height": round(100 * row["n"] / peak)}
        for i, row in enumerate(counted)
    ]


def charts(campaign: Campaign) -> dict:
    """Calls per hour, answer rate and dispositions: a day's rollup rows and a campaign's dispositions."""
    rows = hourly(campaign)
    return {"hourly": rows, "peak": max(row["n"] for row in rows), "dispositions": dispositions(campaign)}


def duration_label(seconds: int) -> str:
    """42 s, 3 min 05 s, 2 h 07 min: a talk time as people read it."""
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def live_calls(campaign: Campaign, *, limit: int = 50) -> list[Call]:
    return list(Call.objects.filter(campaign=campaign, state__in=Call.LIVE_STATES).order_by("-created_at")[:limit])


def counters(campaign: Campaign) -> dict:
    """The small JSON the campaign page polls: columns of one row, no aggregate."""
    fields = [f.name for f in Campaign._meta.fields if f.name.startswith(("contacts_", "calls_"))]
    # Both count ended calls only (campaigns.calls): a call still on the line is in neither.
    answer_rate = rate(campaign.calls_answered, campaign.calls_total - campaign.calls_live)
    return {
        "state": campaign.state,
        "state_label": campaign.get_state_display(),
        "progress": campaign.progress,
        "talk_total": duration_label(campaign.talk_seconds),
        "talk_average": duration_label(campaign.talk_seconds // campaign.calls_answered) if campaign.calls_answered else "—",
        "answer_rate": answer_rate,
        "answer_rate_label": "—" if answer_rate is None else f"{answer_rate}%",
        **{name: getattr(campaign, name) for name in fields},
    }


def retries(campaign: Campaign, *, shown: int = 5) -> dict:
    """Contacts waiting for another attempt: how many, and the next few with when they are due."""
    waiting = Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING, attempts__gt=0)
    return {"count": waiting.count(), "next": list(waiting.order_by("next_attempt_at", "pk")[:shown])}


def moment_label(what: str, at: datetime.datetime) -> str:
    return f"{what} at {timezone.localtime(at):%H:%M:%S}"  # the request's zone: the workspace's


def live_view(campaign: Campaign, *, now: datetime.datetime) -> dict:
    """What the campaign page polls: its counters, which calls are live (one indexed query) and, while
    it runs, its estimated finish (campaigns.estimate: a few indexed queries)."""
    live = [{"id": c.pk, "phone": c.phone, "state": c.get_state_display(), "event": moment_label(*c.latest_moment)}
            for c in live_calls(campaign)]
    finish = estimate.of(campaign, now=now)
    return {**counters(campaign), "live": live, "finish": finish.label, "finish_basis": finish.basis}


@dataclass
class Moment:
    at: datetime.datetime
    what: str
    detail: str = ""
    payload: str = ""


def machine_moments(call: Call) -> list[Moment]:
    """Each source's answering-machine verdict, at its latency after the answer; the decision marked."""
    moments = []
    for source, verdict in sorted(call.amd_verdicts.items()):
        decided = source == call.answered_by_source
        what = f"{'Decided' if decided else 'Verdict'}: {verdict['result']} ({'Exotel' if source == 'exotel' else 'audio'})"
        detail = f"{verdict['ms']} ms after the answer" + (f"; {verdict['reason']}" if verdict.get("reason") else "")
        start = call.answered_at or call.created_at
        moments.append(Moment(start + datetime.timedelta(milliseconds=verdict["ms"]), what, detail))
    return moments


def timeline(call: Call, webhooks: list, streams: list, interventions: list = (),
             extra: list[Moment] = ()) -> list[Moment]:
    """Every status change, webhook delivery, stream event and supervisor's intervention of a call, and
    `extra` (a transfer's steps), oldest first."""
    moments = [
        Moment(stamp, label)
        for stamp, label in [
            (call.created_at, "Queued"),
            (call.dialed_at, "Dialled"),
            (call.ringing_at, "Ringing"),
            (call.answered_at, "Answered"),
            (call.ended_at, f"Ended: {call.get_state_display()}"),
        ]
        if stamp
    ]
    for event in webhooks:
        payload = event.body or "&".join(f"{k}={v}" for k, v in event.query.items())
        # The call's token (in the callback URL's query, Passthru's stream URL) would let a reader of
        # this page join the call's stream: every member sees the payload, none needs the token.
        payload = payload.replace(call.token, REDACTED)
        moments.append(Moment(event.received_at, event.get_kind_display(), event.get_outcome_display(), payload))
    moments += machine_moments(call)
    for stream in streams:
        moments.append(Moment(stream.started_at, "Stream started", stream.stream_sid))
        if stream.ended_at:
            detail = f"{stream.stop_reason or 'closed'}; {stream.frames_in} frames in, {stream.frames_out} out"
            moments.append(Moment(stream.ended_at, "Stream ended", detail))
    for step in interventions:
        detail = [step.by]
        if step.recording_ms is not None:
            seconds = step.recording_ms // 1000
            detail.append(f"{seconds // 60}:{seconds % 60:02d} into the recording")
        if step.step:
            detail.append(f"jump to step {step.step!r}")
        moments.append(Moment(step.at, step.get_kind_display(), " · ".join(detail), step.text))
    return sorted([*moments, *extra], key=lambda m: m.at)
