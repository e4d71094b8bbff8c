"""The dispatcher on PostgreSQL: calls planned and enqueued per second, queries per tick, pacing error.

    python bench/dispatch.py [--contacts 100000] [--hour-rates 37,450]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_dispatch]
        [--broker-url redis://127.0.0.1:6379/15]

Throughput: one running campaign of `--contacts` contacts whose pacing allows `--per-tick` calls a
tick, concurrency and stream caps out of the way; `dialer.dispatch` is called tick after tick (the
simulated clock advances one second a tick) until every contact has a queued call, its calls'
`place_calls` messages sent to a real Redis broker through one producer per tick. Reported: calls planned and enqueued per second of
wall time, and the queries of one tick. The broker's queue is purged at the end (its own Redis
database, so no worker of a test run sees these tasks).

Pacing: for each rate in `--hour-rates` (calls per minute) a fresh campaign is ticked over a
simulated hour at jittered 1.5–2.5 s intervals, as beat does; the error is planned calls against
rate × 60. Every campaign, contact and call is made and deleted by this script in its own database.
"""

import argparse
import datetime
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_dispatch"
DEFAULT_BROKER = "redis://127.0.0.1:6379/15"
START = datetime.datetime(2026, 11, 27, 5, 0, tzinfo=datetime.UTC)  # 10:30 in Kolkata, a Friday


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--per-tick", type=int, default=2000, help="calls the pacing allows a tick")
    parser.add_argument("--hour-rates", default="37,450", help="calls per minute, comma-separated")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER))
    return parser.parse_args()


def setup_django(database_url: str, broker_url: str) -> None:
    from bench.dashboard import ensure_database

    ensure_database(database_url)
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = database_url, broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEV_KEYS", "true")  # a benchmark's data is throwaway: a laptop's keys
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def clear() -> None:
    """Empty this script's own database: every table that hangs off a workspace, and the heartbeats."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tenancy_workspace, streams_streamserver CASCADE")


def fresh_campaign(contacts: int, **fields):
    """A running campaign with `contacts` contacts, an account whose capacity reading is fresh."""
    from campaigns import compliance, rules
    from campaigns.models import Campaign, Contact
    from streams import heartbeat
    from tenancy.models import Exophone, ExotelAccount, Workspace

    clear()
    heartbeat.publish("bench", now=START + datetime.timedelta(days=1))  # a stream server up all along
    workspace = Workspace.objects.create(name="Bench", slug="bench-dispatch")
    account = ExotelAccount.objects.create(
        workspace=workspace, label="Bench", account_sid="bench", api_key="k", api_token="t",
        api_base_url="http://127.0.0.1:9", max_allowed_streams=10_000_000, active_streams=0,
        streams_read_at=START + datetime.timedelta(days=1),  # never stale within the simulated hour
    )
    exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")
    campaign = Campaign.objects.create(
        workspace=workspace, name="Bench", account=account, state=Campaign.State.RUNNING,
        contacts_total=contacts, weekdays=[1, 2, 3, 4, 5, 6, 7], **fields,
    )
    campaign.exophones.add(exophone)
    batch = 10_000
    zones = rules.zone_key(rules.zones_of_number("+919000000000"))  # one number's: they are all in India
    for first in range(0, contacts, batch):
        phones = [f"+9190{n:08d}" for n in range(first, min(first + batch, contacts))]
        recipients = compliance.ensure_recipients(workspace.pk, phones)
        Contact.objects.bulk_create(
            Contact(workspace=workspace, campaign=campaign, phone=phone, recipient_id=recipients[phone], time_zone=zones)
            for phone in phones
        )
    return campaign


def timed(module, name: str) -> list[float]:
    """Wrap module.name to add its wall time to the returned one-element list."""
    total, original = [0.0], getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(module, name, wrapper)
    return total


def throughput(contacts: int, per_tick: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns import dialer
    from campaigns.models import Call

    sending = timed(dialer, "send_place_calls")
    # The pacing budget of one simulated second per tick is `per_tick` calls.
    fresh_campaign(contacts, calls_per_minute=per_tick * 60, max_concurrent=10_000_000)
    queries, ticks, queued, now = [], 0, 0, START
    started = time.perf_counter()
    while queued < contacts and ticks < 10_000:
        with CaptureQueriesContext(connection) as captured:
            queued += dialer.dispatch(now=now)
        queries.append(len(captured.captured_queries))
        ticks, now = ticks + 1, now + datetime.timedelta(seconds=1)
    elapsed = time.perf_counter() - started
    assert Call.objects.count() == queued == contacts
    per_tick = queued / ticks
    print(f"throughput: {queued} calls planned and enqueued in {elapsed:.2f} s over {ticks} ticks "
          f"= {queued / elapsed:,.0f} calls/s ({per_tick:,.0f} calls a tick, "
          f"{elapsed / ticks * 1000:.0f} ms a tick)")
    print(f"  of which sending the tasks: {sending[0]:.2f} s ({queued / sending[0]:,.0f} calls/s); "
          f"planning in the database: {elapsed - sending[0]:.2f} s ({queued / (elapsed - sending[0]):,.0f} calls/s)")
    print(f"queries per tick: min {min(queries)}, max {max(queries)}")


def pacing(rate: int) -> None:
    from campaigns import dialer
    from campaigns.models import Call

    expected = rate * 60
    fresh_campaign(expected + 1000, calls_per_minute=rate, max_concurrent=10_000_000)
    rng, now, end, ticks = random.Random(1), START, START + datetime.timedelta(hours=1), 0
    started = time.perf_counter()
    while now < end:
        dialer.dispatch(now=now)
        now += datetime.timedelta(seconds=rng.uniform(1.5, 2.5))
        ticks += 1
    planned = Call.objects.count()
    error = (planned - expected) / expected
    print(f"pacing at {rate}/min over a simulated hour ({ticks} ticks, {time.perf_counter() - started:.1f} s): "
          f"planned {planned}, configured {expected}, error {error:+.2%}")


def purge_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as connection:
        purged = app.control.purge(connection=connection)
    print(f"purged {purged} bench tasks from the broker")


def main() -> None:
    args = parse_args()
    setup_django(args.database_url, args.broker_url)
    try:
        throughput(args.contacts, args.per_tick)
        for rate in (int(r) for r in args.hour_rates.split(",")):
            pacing(rate)
    finally:
        purge_broker()
        clear()


if __name__ == "__main__":
    main()
