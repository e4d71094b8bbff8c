"""The rollups the campaign charts read: calls per quarter hour and calls per disposition.

Counting a campaign's calls for its charts took 210–300 ms at 600k calls (bench/RESULTS.md), so the
engine keeps the counts as it changes the calls, in the same transaction, by the services that move
the campaign's counters: the dispatcher counts the calls it places, `calls.advance` counts a call
that ends (answered or not) in the quarter hour it was placed when that transition applies, which a
duplicate callback or a late reconciliation never does twice, and a disposition is moved from its
old value to its new one only when it changes. Withdrawn calls are taken back out.

Quarter hours of UTC, not hours: the charts show hours in the campaign's time zone, which may change,
and every zone's hours are made of whole quarter hours (Kolkata's start at :30 UTC, Kathmandu's at
:15). `recount_*` count the same figures from the calls themselves: the migration's backfill, and
what the tests hold the rollups to.
"""

import datetime
from collections import Counter
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, UniqueConstraint
from django.db.models.functions import ExtractMinute, Floor, TruncHour

from campaigns.models import Call, DispositionRollup, QuarterRollup

QUARTER = datetime.timedelta(minutes=15)
# A call counts as ended once final, and as answered if a person ever did (see Call.answered_by_a_person).
ENDED = Q(state__in=Call.FINAL_STATES)
ANSWERED = ENDED & (Q(answered_at__isnull=False) | Q(state=Call.State.COMPLETED)) & ~Q(answered_by="machine")


def quarter_of(moment: datetime.datetime) -> datetime.datetime:
    moment = moment.astimezone(datetime.UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def count_placed(workspace_id: int, campaign_id: int, placed: int, *, at: datetime.datetime) -> None:
    if placed:
        upsert_add(QuarterRollup, workspace_id, campaign_id, {"starts_at": quarter_of(at)}, placed=placed)


def count_ended(call: Call) -> None:
    """`call` has just become final: one more ended (and perhaps answered) call where it was placed."""
    upsert_add(QuarterRollup, call.workspace_id, call.campaign_id, {"starts_at": quarter_of(call.created_at)},
               ended=1, answered=int(call.answered_by_a_person))


def uncount_placed(campaign_id: int, placed_at: list[datetime.datetime]) -> None:
    """Calls withdrawn before they were dialled: never placed after all (nor ended: they were queued)."""
    for quarter, withdrawn in Counter(map(quarter_of, placed_at)).items():
        QuarterRollup.objects.filter(campaign_id=campaign_id, starts_at=quarter).update(placed=F("placed") - withdrawn)


def move_disposition(call: Call, old: str, new: str) -> None:
    if old == new:
        return
    if old:
        DispositionRollup.objects.filter(campaign_id=call.campaign_id, disposition=old).update(calls=F("calls") - 1)
    if new:
        upsert_add(DispositionRollup, call.workspace_id, call.campaign_id, {"disposition": new}, calls=1)


def upsert_add(model, workspace_id: int, campaign_id: int, key: dict, **increments: int | Decimal) -> None:
    """Add `increments` to the row of `key` in the campaign, creating it first if there is none.

    One `INSERT … ON CONFLICT DO UPDATE` (PostgreSQL, SQLite 3.24+): two first writers of a row
    cannot both insert, and nobody reads before writing. Django's own upsert can only overwrite.
    """
    opts, quote = model._meta, connection.ops.quote_name
    values = {"workspace_id": workspace_id, "campaign_id": campaign_id, **key, **increments}
    (unique,) = [c for c in opts.constraints if isinstance(c, UniqueConstraint)]
    table, columns = quote(opts.db_table), [quote(opts.get_field(name).column) for name in values]
    conflict = ", ".join(quote(opts.get_field(name).column) for name in unique.fields)
    adds = ", ".join(f"{column} = {table}.{column} + EXCLUDED.{column}" for column in columns[-len(increments):])
    params = [opts.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {adds}",
            params,
        )


# --- the same figures counted from the calls --------------------------------------------------------

def recount_quarters(calls: QuerySet) -> list[dict]:
    """Per campaign and quarter hour of `calls`: placed, ended and answered, as the rollup keeps them."""
    rows = (
        calls.annotate(hour=TruncHour("created_at", tzinfo=datetime.UTC),
                       quarter=Floor(ExtractMinute("created_at", tzinfo=datetime.UTC) / 15))
        .values("workspace_id", "campaign_id", "hour", "quarter")
        .annotate(placed=Count("pk"), ended=Count("pk", filter=ENDED), answered=Count("pk", filter=ANSWERED))
        .order_by()
    )
    return [
        {"workspace_id": row["workspace_id"], "campaign_id": row["campaign_id"],
         "starts_at": row["hour"] + int(row["quarter"]) * QUARTER,
         "placed": row["placed"], "ended": row["ended"], "answered": row["answered"]}
        for row in rows
    ]


def recount_dispositions(calls: QuerySet) -> list[dict]:
    """Per campaign and disposition of `calls`: how many calls have it."""
    return list(
        calls.exclude(disposition="").values("workspace_id", "campaign_id", "disposition")
        .annotate(calls=Count("pk")).order_by()
    )


def backfill(apps) -> None:
    """Fill the rollups from every call, a campaign at a time (the migration's historical models, or
    the app registry's): the engine keeps them from there on. Run while no engine process changes calls."""
    Campaign, Call, Quarter, Disposition = (apps.get_model("campaigns", name) for name in
                                            ("Campaign", "Call", "QuarterRollup", "DispositionRollup"))
    for campaign_id in Campaign.objects.values_list("pk", flat=True).order_by("pk").iterator():
        calls = Call.objects.filter(campaign_id=campaign_id)
        Quarter.objects.bulk_create(Quarter(**row) for row in recount_quarters(calls))
        Disposition.objects.bulk_create(Disposition(**row) for row in recount_dispositions(calls))
