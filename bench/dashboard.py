"""Server time of the dashboard's pages with a million calls in PostgreSQL.

    python bench/dashboard.py [--calls 1000000] [--runs 15] [--reseed]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_dashboard]

Seeds its own database once (generate_series INSERT … SELECT: one workspace, five campaigns, one
campaign holding 60% of the calls, calls spread over the last 7 days, two attempts per contact),
then times each page in-process through Django's test client (middleware, view, queries, template:
what the server spends, without the network), and prints the median and p95 in ms and the queries
per request. The export is timed whole, with its rows per second and the memory it added.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_dashboard"
SHARES = [("Big renewals", 60), ("Collections", 10), ("Survey", 10), ("Reminders", 10), ("Win-back", 10)]
DAYS = 7


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEV_KEYS", "true")  # a benchmark's data is throwaway: a laptop's keys
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return "'" + text.replace("'", "''") + "'"


def filler(model, given: dict[str, str]) -> tuple[str, str]:
    """Column list and SELECT expressions: `given` where named, else NULL, the field's default, or ''.

    Built from the model, so a column another issue adds later does not break the seed."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(f'"{field.column}"')
        if field.column in given:
            values.append(given[field.column])
        elif field.null:
            values.append("NULL")
        else:
            values.append(sql_literal(field.get_default()) if field.has_default() else "''")
    return ", ".join(columns), ", ".join(values)


def seed(calls: int):
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from campaigns import rollups
    from campaigns.models import Call, Campaign, Contact, Recipient
    from tenancy.models import Exophone, ExotelAccount, Membership, Role, Workspace

    call_command("flush", interactive=False, verbosity=0)  # the bench database holds only this
    with transaction.atomic():
        workspace = Workspace.objects.create(name="Bench", slug="bench")
        User = get_user_model()
        user = User.objects.filter(username="bench@example.org").first() or User.objects.create_user(
            "bench@example.org", "bench@example.org", "bench-password-1"
        )
        Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
        account = ExotelAccount.objects.create(workspace=workspace, label="Main", account_sid="bench1",
                                               api_key="k" * 12, api_token="t" * 12, max_allowed_streams=100)
        exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")
        campaigns = [Campaign.objects.create(workspace=workspace, name=name, account=account,
                                             state=Campaign.State.RUNNING) for name, _ in SHARES]
        for campaign in campaigns:
            campaign.exophones.add(exophone)
    # Contact g belongs to the campaign whose share its g % 100 falls in.
    bounds, case = 0, []
    for campaign, (_, share) in zip(campaigns, SHARES, strict=True):
        case.append(f"WHEN g % 100 < {bounds + share} THEN {campaign.pk}")
        bounds += share
    campaign_of = f"CASE {' '.join(case)} END"
    contacts = calls // 2
    phone = "'+9198' || lpad(g::text, 8, '0')"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Each contact's number has its ledger row (campaigns.compliance.ensure_recipients), as an import makes.
        cols, vals = filler(Recipient, {"workspace_id": str(workspace.pk), "phone": phone})
        cursor.execute(f"INSERT INTO campaigns_recipient ({cols}) SELECT {vals} FROM generate_series(1, {contacts}) g")
        cols, vals = filler(Contact, {
            "workspace_id": str(workspace.pk), "campaign_id": campaign_of, "recipient_id": "r.id",
            "phone": phone, "name": "'Contact ' || g", "state": "'done'",
            "attempts": "2", "outcome": "'completed'", "created_at": "now()",
        })
        cursor.execute(f"INSERT INTO campaigns_contact ({cols}) SELECT {vals} FROM generate_series(1, {contacts}) g "
                       f"JOIN campaigns_recipient r ON r.workspace_id = {workspace.pk} AND r.phone = {phone}")
        # Calls: two attempts per contact, spread over the last DAYS days, outcomes in fixed proportions.
        state = ("(ARRAY['completed','completed','completed','busy','no-answer','failed','completed',"
                 "'no-answer','completed','busy'])[1 + mod(c.id * 7 + a, 10)]")
        created = f"now() - mod(c.id * 2 + a, {DAYS} * 86400) * interval '1 second'"
        cols, vals = filler(Call, {
            "workspace_id": "c.workspace_id", "campaign_id": "c.campaign_id", "contact_id": "c.id",
            "attempt": "a", "phone": "c.phone", "token": "'bench-' || c.id || '-' || a", "state": state,
            "created_at": created, "dialed_at": created, "ended_at": created + " + interval '40 seconds'",
            "answered_at": f"CASE WHEN {state} = 'completed' THEN {created} + interval '5 seconds' END",
            "duration": f"CASE WHEN {state} = 'completed' THEN 30 + mod(c.id, 90) END",
            "disposition": f"CASE WHEN {state} = 'completed' THEN (ARRAY['interested','not_interested',"
                           "'callback','opted_out'])[1 + mod(c.id, 4)] ELSE '' END",
        })
        cursor.execute(f"INSERT INTO campaigns_call ({cols}) SELECT {vals} FROM campaigns_contact c "
                       f"CROSS JOIN generate_series(1, 2) a WHERE c.workspace_id = %s", [workspace.pk])
        # The engine keeps these counters as calls change; the seed sets them once.
        cursor.execute("""
            UPDATE campaigns_campaign k SET calls_total = s.total, calls_answered = s.answered,
                calls_busy = s.busy, calls_no_answer = s.no_answer, calls_failed = s.failed,
                contacts_total = s.total / 2, contacts_done = s.total / 2, talk_seconds = s.talk
            FROM (SELECT campaign_id, count(*) total, count(*) FILTER (WHERE state = 'completed') answered,
                         count(*) FILTER (WHERE state = 'busy') busy,
                         count(*) FILTER (WHERE state = 'no-answer') no_answer,
                         count(*) FILTER (WHERE state = 'failed') failed, coalesce(sum(duration), 0) talk
                  FROM campaigns_call WHERE workspace_id = %s GROUP BY campaign_id) s
            WHERE k.id = s.campaign_id""", [workspace.pk])
        cursor.execute("ANALYZE campaigns_contact")
        cursor.execute("ANALYZE campaigns_call")
    rollups.backfill(apps)  # the charts' rollups, as the migration fills them for existing calls
    print(f"seeded {calls} calls and {contacts} contacts in {time.perf_counter() - started:.1f} s")
    return workspace


def timed(client, url: str, runs: int, before=None):
    from django.db import connection, reset_queries

    durations, queries = [], 0
    for i in range(runs + 2):
        if before:
            before()
        reset_queries()
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url, response.status_code)
        if i >= 2:  # two warm-up requests: connection pool and template caches
            durations.append(elapsed)
            queries = len(connection.queries)
    durations.sort()
    return statistics.median(durations), durations[max(0, round(0.95 * len(durations)) - 1)], queries


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from campaigns import queries
    from campaigns.models import Call, Campaign
    from tenancy.models import Workspace

    workspace = Workspace.objects.filter(slug="bench").first()
    have = Call.objects.filter(workspace=workspace).count() if workspace else 0
    if args.reseed or have != args.calls // 2 * 2:
        workspace = seed(args.calls)
    settings.DEBUG = True  # to count queries; templates are cached either way
    connection.force_debug_cursor = True
    client = Client(HTTP_HOST="localhost")
    client.force_login(workspace.memberships.get().user)
    big = Campaign.objects.get(workspace=workspace, name=SHARES[0][0])
    total = Call.objects.filter(workspace=workspace).count()
    deep = Call.objects.filter(workspace=workspace).order_by("-created_at", "-pk")[total // 2]
    calls_url = reverse("campaigns:calls")

    day = deep.created_at.date().isoformat()
    pages = [
        ("overview", reverse("campaigns:overview")),
        ("campaign detail (60% of calls)", big.get_absolute_url()),
        ("campaign counters JSON", reverse("campaigns:counters", args=[big.pk])),
        ("campaign charts (from the rollups)", reverse("campaigns:charts", args=[big.pk])),
        ("wallboard (five running campaigns)", reverse("campaigns:wallboard")),
        ("wallboard's board, polled every 3 s", reverse("campaigns:wallboard_board")),
        ("calls, first page", calls_url),
        ("calls, a page half a million deep", f"{calls_url}?after={queries.encode_cursor(deep)}"),
        ("calls of one campaign", f"{calls_url}?campaign={big.pk}"),
        ("calls, state = failed", f"{calls_url}?state=failed"),
        ("calls, disposition = opted_out", f"{calls_url}?disposition=opted_out"),
        ("calls, one day", f"{calls_url}?since={day}&until={day}"),
        ("calls, phone contains 4321", f"{calls_url}?phone=4321"),
        ("campaign list", reverse("campaigns:list")),
    ]
    print(f"{total} calls in the workspace; {big.calls_total} in the big campaign; {args.runs} runs each\n")
    print(f"{'page':40} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, url, *before in pages:
        median, p95, count = timed(client, url, args.runs, *before)
        print(f"{name:40} {median:10.1f} {p95:8.1f} {count:8d}")

    settings.DEBUG = False
    connection.force_debug_cursor = False
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(reverse("campaigns:export", args=[big.pk]))
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"\nexport of the big campaign: {rows - 1} rows, {size / 2**20:.0f} MB in {elapsed:.1f} s "
          f"({(rows - 1) / elapsed:,.0f} rows/s), peak memory grew {grown:.0f} MB")


if __name__ == "__main__":
    main()
