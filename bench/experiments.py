"""Server time of a campaign's A/B figures (`campaigns.experiments.figures`) as its calls grow, in PostgreSQL.

    python bench/experiments.py [--calls 200000] [--runs 7]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_experiments]

Seeds one campaign with two variants once (generate_series: two thirds answered, a few dispositions,
a time to first audio on the answered ones), then prints the median and worst time of the figures.
The figures read every call of the campaign in one grouped scan: this says how far that goes.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dashboard import ensure_database, setup_django  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_experiments"


def seed(calls: int):
    from django.db import connection

    from campaigns import compliance, rules
    from campaigns.models import Call, Campaign, Contact, Variant
    from tenancy.models import Exophone, ExotelAccount, Workspace

    workspace, _ = Workspace.objects.get_or_create(slug="bench-ab", defaults={"name": "Bench A/B", **rules.WHOLE_DAY})
    campaign = Campaign.objects.filter(workspace=workspace).first()
    if campaign and Call.objects.filter(campaign=campaign).count() == calls:
        return campaign
    Campaign.objects.filter(workspace=workspace).delete()
    account = ExotelAccount.objects.filter(workspace=workspace).first() or ExotelAccount.objects.create(
        workspace=workspace, label="Bench", account_sid="benchab1", api_key="k", api_token="t")
    Exophone.objects.get_or_create(workspace=workspace, account=account, number="+918047400001")
    campaign = Campaign.objects.create(workspace=workspace, name="Bench A/B", account=account)
    a, b = (Variant.objects.create(workspace=workspace, campaign=campaign, name=name) for name in "AB")
    phone = "+919800000001"
    contact = Contact.objects.create(workspace=workspace, campaign=campaign, phone=phone,
                                     recipient_id=compliance.ensure_recipients(workspace.pk, [phone])[phone])
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO campaigns_call (workspace_id, campaign_id, contact_id, attempt, phone, token, exotel_sid,
              leg_sid, state, created_at, enqueued_at, answered_at, recording_url, disposition, disconnected_by,
              detailed_status, error, allowed_by, transcript, summary, answered_by, answered_by_source,
              amd_verdicts, variant_id, first_audio_ms)
            SELECT %s, %s, %s, g, %s, md5(g::text), '', '', CASE WHEN g %% 3 = 0 THEN 'no-answer' ELSE 'completed' END,
              now(), now(), CASE WHEN g %% 3 = 0 THEN NULL ELSE now() END,
              '', CASE WHEN g %% 3 = 0 THEN '' WHEN g %% 5 = 0 THEN 'interested' WHEN g %% 7 = 0 THEN 'callback' ELSE '' END,
              '', '', '', '', '[]', '', '', '', '{}', CASE WHEN g %% 2 = 0 THEN %s ELSE %s END,
              CASE WHEN g %% 3 = 0 THEN NULL ELSE 200 + (g * 37) %% 1500 END
            FROM generate_series(1, %s) g""", [workspace.pk, campaign.pk, contact.pk, phone, a.pk, b.pk, calls])
        cursor.execute("ANALYZE campaigns_call")
    return campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from campaigns import experiments

    campaign = seed(args.calls)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        figures = experiments.figures(campaign)
        times.append((time.perf_counter() - started) * 1000)
    print(f"{args.calls} calls, 2 variants: figures() median {statistics.median(times):.0f} ms, "
          f"worst {max(times):.0f} ms over {args.runs} runs; answer rates "
          + ", ".join(f"{arm.variant.name} {arm.answer.label}" for arm in figures.arms))


if __name__ == "__main__":
    main()
