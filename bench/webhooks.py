"""Status callbacks per second through the production shape into PostgreSQL, with latency percentiles.

    python bench/webhooks.py [--calls 1000] [--concurrency 16] [--web gunicorn|daphne] [--processes 2]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_webhooks]

Seeds its own database with one running campaign of `--calls` dialled calls, starts the web tier
on loopback as docker-compose.yml runs it (tests/processes.py: `--processes` gunicorn workers, or
as many daphne processes) behind the reverse proxy (nginx, from the compose file's template), and
replays through the proxy, for every call, Exotel's three status
callbacks in order (ringing as a form, answered as JSON, terminal as a form with CustomField),
`--concurrency` calls at a time from an asyncio client in this process. Every request stores its
raw delivery, then applies it: the call's state, the campaign's counters and, at the end, the
contact's outcome and the campaign's completion. Afterwards it checks that every call completed and
every counter adds up.

The same run first sends as many requests with a wrong workspace token (a 404 after one indexed
lookup, nothing stored): the ceiling of this web tier on this machine, for a ratio that the noise of
a shared 2-core machine affects less than absolute figures.
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_webhooks"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web", choices=["gunicorn", "daphne"], default="gunicorn",
                        help="the web tier: gunicorn workers (production's) or daphne processes")
    parser.add_argument("--processes", type=int, default=2, help="gunicorn workers, or daphne processes")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    return parser.parse_args()


def seed(calls: int):
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Call, Campaign, Contact
    from tenancy.models import Exophone, ExotelAccount, Workspace

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tenancy_workspace CASCADE")
    workspace = Workspace.objects.create(name="Bench", slug="bench-webhooks")
    account = ExotelAccount.objects.create(workspace=workspace, label="Bench", account_sid="bench", api_key="k",
                                           api_token="t")
    exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")
    campaign = Campaign.objects.create(
        workspace=workspace, name="Bench", account=account, exophone=exophone, state=Campaign.State.RUNNING,
        contacts_total=calls, calls_total=calls, calls_live=calls, max_attempts=1,
    )
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, campaign=campaign, phone=f"+9190{n:08d}", state=Contact.State.CALLING, attempts=1)
        for n in range(calls)
    )
    now = timezone.now()
    Call.objects.bulk_create(
        Call(workspace=workspace, campaign=campaign, contact=contact, attempt=1, phone=contact.phone,
             state=Call.State.DIALING, dialed_at=now, exotel_sid=f"CA{n:030d}")
        for n, contact in enumerate(contacts)
    )
    return workspace, campaign


def deliveries(call) -> list[dict]:
    """Exotel's three status callbacks for one call, in the shapes the reference documents."""
    common = {"CallSid": call.exotel_sid, "DateUpdated": "2026-11-27 10:00:00", "To": "08047491899",
              "From": call.phone, "Direction": "outbound-api"}
    return [
        {"data": {**common, "Status": "ringing", "EventType": "ringing", "RecordingUrl": ""}},
        {"json": {**common, "Status": "in-progress", "EventType": "answered", "RecordingUrl": None}},
        {"data": {**common, "Status": "completed", "EventType": "terminal", "ConversationDuration": "42",
                  "RecordingUrl": f"https://recordings.example.com/{call.exotel_sid}.mp3", "CustomField": call.token}},
    ]


async def drive(url: str, sequences: list[list[dict]], concurrency: int) -> tuple[float, list[float], int]:
    """Send each sequence in order, `concurrency` sequences at a time; (seconds, latencies, non-2xx)."""
    import httpx

    latencies, failures, queue = [], 0, asyncio.Queue()
    for sequence in sequences:
        queue.put_nowait(sequence)

    async def worker(client):
        nonlocal failures
        while not queue.empty():
            for request in queue.get_nowait():
                started = time.perf_counter()
                response = await client.post(url, **request)
                latencies.append(time.perf_counter() - started)
                failures += not response.is_success
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


def report(name: str, elapsed: float, latencies: list[float], failures: int) -> float:
    ordered = sorted(latencies)
    rate = len(ordered) / elapsed

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    print(f"{name}: {len(ordered)} requests in {elapsed:.2f} s = {rate:,.0f}/s; latency median "
          f"{statistics.median(ordered) * 1000:.1f} ms, p95 {pct(95):.1f} ms, p99 {pct(99):.1f} ms; "
          f"non-2xx {failures}")
    return rate


def main() -> None:
    args = parse_args()
    from bench.dispatch import setup_django

    setup_django(args.database_url, os.environ.get("REDIS_URL", ""))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would cost the client's CPU
    from callbacks.models import WebhookEvent
    from campaigns.models import Call, Campaign
    from tests import processes

    workspace, campaign = seed(args.calls)
    calls = list(Call.objects.filter(campaign=campaign).order_by("pk"))
    with tempfile.TemporaryDirectory() as log_dir:
        log_dir = Path(log_dir)
        if args.web == "gunicorn":
            web = [processes.start_web(log_dir, public_base_url="http://127.0.0.1", workers=args.processes)]
        else:
            web = [processes.start_daphne(log_dir, name=f"daphne-{n}") for n in range(args.processes)]
        proxy = processes.start_proxy(log_dir, web=web, streams=web)  # streams are not part of this
        try:
            base = f"{proxy.url}/hooks"
            wrong = [[{"data": {"CallSid": "CA0", "Status": "ringing"}}] * 3 for _ in calls]
            elapsed, latencies, _ = asyncio.run(drive(f"{base}/wrong-token/status", wrong, args.concurrency))
            ceiling = report("wrong token (404, nothing stored)", elapsed, latencies, 0)
            sequences = [deliveries(call) for call in calls]
            elapsed, latencies, failures = asyncio.run(
                drive(f"{base}/{workspace.webhook_token}/status", sequences, args.concurrency))
            rate = report("status callbacks (stored, applied)", elapsed, latencies, failures)
            print(f"ratio to the 404 ceiling of the same web tier: {rate / ceiling:.0%}")
        finally:
            for service in [proxy, *web]:
                service.stop()
    campaign = Campaign.objects.get(pk=campaign.pk)
    completed = Call.objects.filter(campaign=campaign, state=Call.State.COMPLETED).count()
    applied = WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.APPLIED).count()
    print(f"check: {completed}/{len(calls)} calls completed, {applied}/{3 * len(calls)} deliveries applied, "
          f"calls_live {campaign.calls_live}, contacts_done {campaign.contacts_done}, "
          f"talk_seconds {campaign.talk_seconds}, state {campaign.state}")


if __name__ == "__main__":
    main()
