"""Webhooks through the production shape into PostgreSQL: acknowledged against a one-INSERT baseline,
then applied by the applier.

    python bench/webhooks.py [--calls 1000] [--concurrency 16] [--web gunicorn|daphne] [--processes 2]
        [--legs 40] [--database-url postgres://postgres@127.0.0.1:5432/bench_webhooks]

Seeds its own database with one running campaign of `--calls` dialled calls, starts the web tier
on loopback as docker-compose.yml runs it (tests/processes.py: `--processes` gunicorn workers, or
as many daphne processes, with bench/settings.py: the product's URLs plus the baseline view)
behind the reverse proxy (nginx, from the compose file's template), a stream server and the
webhook applier, and replays through the proxy, for every call, Exotel's three status
callbacks in order (ringing as a form, answered as JSON, terminal as a form with CustomField),
`--concurrency` calls at a time from an asyncio client in this process:

1. to the baseline view (`store_raw`): the raw body stored in one INSERT, nothing else, as the
   issue measured it; its rows are stored as already decided, so the applier leaves them alone;
2. half the calls to the product's status callback URL (workspace found by token, delivery parsed
   and stored, 200) with no applier running: the request path alone; then the applier starts and
   applies them (call state, counters, contact, completion): the applier alone;
3. the other half while the applier runs, applying each right after: both on the same cores;
4. to the baseline again, so that a change of the machine's load during the run shows.

Afterwards `--legs` Legs calls are dialled, 5 a second, through the product's dialer to the Exotel
simulator (answered at once, greeting, two seconds of echo through the stream server). For each,
the time from our receipt of `leg_answered` to the simulator's receipt of `start_stream`, and the
applier's part of it (receipt to applied).

Then it reports the applier's lag (received to applied, from the rows) and how long it took to
apply the rest after the last answer (and, in step 2, its rate from its first to its last, which
leaves out the start of the process), checks that every call completed and every counter adds up,
and measures the stream-URL request (answered synchronously from its call) on its own.
"""

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_webhooks"


@csrf_exempt
def store_raw(request, workspace_id: int):
    """The baseline: one INSERT of the raw body, no lookup, no parsing, no NOTIFY (not pending)."""
    from callbacks.models import WebhookEvent

    WebhookEvent.objects.create(workspace_id=workspace_id, kind=WebhookEvent.Kind.STATUS, method=request.method,
                                body=request.body.decode("utf-8", "replace"), outcome=WebhookEvent.Outcome.ORPHANED)
    return JsonResponse({"ok": True})


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web", choices=["gunicorn", "daphne"], default="gunicorn",
                        help="the web tier: gunicorn workers (production's) or daphne processes")
    parser.add_argument("--processes", type=int, default=2, help="gunicorn workers, or daphne processes")
    parser.add_argument("--threads", type=int, default=1, help="threads of each gunicorn worker (gthread past 1)")
    parser.add_argument("--clients", type=int, default=1,
                        help="load-generator processes sharing --concurrency (one asyncio client tops out first)")
    parser.add_argument("--acknowledge-only", action="store_true",
                        help="the production-shape figure alone: baseline, callbacks acknowledged, baseline; "
                             "no applier, no Legs, no stream-URL requests")
    parser.add_argument("--legs", type=int, default=40, help="Legs calls dialled after the callbacks, 5 a second")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    return parser.parse_args()


def seed(calls: int):
    from django.db import connection
    from django.utils import timezone

    from campaigns import compliance, rules
    from campaigns.models import Call, Campaign, Contact
    from tenancy.models import Exophone, ExotelAccount, Workspace

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tenancy_workspace CASCADE")
    # The Legs calls are dialled now, whatever the hour: the policy window is the whole day.
    workspace = Workspace.objects.create(name="Bench", slug="bench-webhooks", **rules.WHOLE_DAY)
    account = ExotelAccount.objects.create(workspace=workspace, label="Bench", account_sid="bench", api_key="k",
                                           api_token="t")
    exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")
    campaign = Campaign.objects.create(
        workspace=workspace, name="Bench", account=account, state=Campaign.State.RUNNING,
        contacts_total=calls, calls_total=calls, calls_live=calls, max_attempts=1,
    )
    campaign.exophones.add(exophone)
    phones = [f"+9190{n:08d}" for n in range(calls)]
    recipients = compliance.ensure_recipients(workspace.pk, phones)
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, campaign=campaign, phone=phone, recipient_id=recipients[phone],
                state=Contact.State.CALLING, attempts=1)
        for phone in phones
    )
    now = timezone.now()
    Call.objects.bulk_create(
        Call(workspace=workspace, campaign=campaign, contact=contact, attempt=1, phone=contact.phone,
             state=Call.State.DIALING, dialed_at=now, exotel_sid=f"CA{n:030d}")
        for n, contact in enumerate(contacts)
    )
    return workspace, campaign


def simulator_config(folder: Path) -> Path:
    """Every leg answered at once and hung up after two seconds of echo."""
    path = folder / "simulator.json"
    path.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 2}}))
    return path


def legs_campaign(workspace, simulator_url: str, calls: int):
    """A running Legs campaign with a greeting, on an account that points at the simulator, and its
    queued calls."""
    from django.utils import timezone

    from campaigns import compliance
    from campaigns.models import Call, Campaign, Contact

    account = workspace.exotel_accounts.get()
    account.api_base_url = simulator_url
    account.save()
    campaign = Campaign.objects.create(
        workspace=workspace, name="Bench legs", account=account,
        state=Campaign.State.RUNNING, connect_mode=Campaign.ConnectMode.LEGS, greeting_text="Namaste.",
        contacts_total=calls, calls_total=calls, calls_live=calls, max_attempts=1,
    )
    exophone = account.exophones.get()
    campaign.exophones.add(exophone)
    phones = [f"+9191{n:08d}" for n in range(calls)]
    recipients = compliance.ensure_recipients(workspace.pk, phones)
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, campaign=campaign, phone=phone, recipient_id=recipients[phone],
                state=Contact.State.CALLING, attempts=1)
        for phone in phones
    )
    return list(Call.objects.bulk_create(
        Call(workspace=workspace, campaign=campaign, contact=contact, attempt=1, phone=contact.phone,
             exophone=exophone, state=Call.State.QUEUED, enqueued_at=timezone.now())
        for contact in contacts
    ))


def place_calls(calls, per_second: float) -> None:
    """Dial `calls` through the product's dialer at a steady pace."""
    from django.db import connection

    from campaigns import dialer

    started = time.monotonic()
    for n, call in enumerate(calls):
        time.sleep(max(0.0, started + n / per_second - time.monotonic()))
        dialer.place_call(call.pk)
    connection.close()


def start_stream_latencies(calls, wire_log: Path) -> tuple[list[float], list[float]]:
    """From our receipt of each leg's `leg_answered` (its `answered_at`) to the simulator's receipt of
    its `start_stream`, and the part of it the applier took (receipt to applied): one clock, this
    machine's."""
    from callbacks.models import WebhookEvent
    from campaigns.models import Call

    sent = {}
    for line in wire_log.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "request" and record["path"].endswith("/actions/start_stream"):
            sent.setdefault(record["path"].split("/legs/")[1].split("/")[0], record["ts"])
    answered = Call.objects.filter(pk__in=[call.pk for call in calls], answered_at__isnull=False)
    applied = dict(WebhookEvent.objects.filter(call__in=answered, outcome="applied", fields__event_name="leg_answered")
                   .values_list("call__leg_sid", "applied_at"))
    total, applier = [], []
    for leg, at in answered.values_list("leg_sid", "answered_at"):
        if leg in sent:
            total.append(sent[leg] - at.timestamp())
            applier.append((applied[leg] - at).total_seconds())
    return total, applier


def applier_rate(calls) -> float:
    """Deliveries the applier applied per second, from the first to the last of `calls`' (its start excluded)."""
    from django.db.models import Count, Max, Min

    from callbacks.models import WebhookEvent

    applied = WebhookEvent.objects.filter(call__in=calls).aggregate(n=Count("pk"), first=Min("applied_at"),
                                                                    last=Max("applied_at"))
    return (applied["n"] - 1) / max((applied["last"] - applied["first"]).total_seconds(), 1e-3)


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


def drive_share(url: str, sequences: list[list[dict]], concurrency: int) -> tuple[float, list[float], int]:
    return asyncio.run(drive(url, sequences, concurrency))


def drive_from(clients: int, url: str, sequences: list[list[dict]], concurrency: int) -> tuple[float, list[float], int]:
    """`drive` from `clients` processes at once, each with its share of the sequences and the concurrency."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(clients) as pool:
        results = list(pool.map(drive_share, [url] * clients, [sequences[n::clients] for n in range(clients)],
                                [max(1, concurrency // clients)] * clients))
    return (max(elapsed for elapsed, _, _ in results), [lat for _, lats, _ in results for lat in lats],
            sum(failures for _, _, failures in results))


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (gunicorn's workers, nginx's)."""
    from bench.streams import cpu_seconds

    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    tree, grown = {pid}, True
    while grown:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree, grown = tree | found, bool(found)
    return sum(cpu_seconds(p) for p in tree if p in parents or p == pid)


def database_cpu() -> float:
    """CPU seconds of the PostgreSQL backends serving this database now (the web processes' pools)."""
    from django.db import connection

    from bench.streams import cpu_seconds

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        pids = [pid for (pid,) in cursor.fetchall()]
    return sum(cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists())


def report(name: str, elapsed: float, latencies: list[float], failures: int) -> float:
    rate = len(latencies) / elapsed
    print(f"{name}: {len(latencies)} requests in {elapsed:.2f} s = {rate:,.0f}/s; latency "
          f"{percentiles(latencies)}; non-2xx {failures}")
    return rate


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {pct(95):.1f} ms, p99 {pct(99):.1f} ms"


def acknowledge_only(args, raw: str, status: str, sequences: list[list[dict]], web, proxy) -> None:
    """Callbacks stored and acknowledged through the proxy, between two baseline runs, from `--clients`
    processes; with the CPU each part spent per request (load-independent, unlike the rates)."""
    import resource

    print(f"web: {args.processes} {args.web} processes, {args.threads} thread(s) each; {args.clients} client "
          f"process(es), {args.concurrency} connections")
    parts = {"web": lambda: sum(tree_cpu(w.process.pid) for w in web), "proxy": lambda: tree_cpu(proxy.process.pid),
             "PostgreSQL": database_cpu, "client": lambda: sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])}
    for name, url in (("baseline (one INSERT)", raw), ("status callbacks stored and acknowledged", status),
                      ("baseline again", raw)):
        before = {part: read() for part, read in parts.items()}
        elapsed, latencies, failures = drive_from(args.clients, url, sequences, args.concurrency)
        report(name, elapsed, latencies, failures)
        spent = {part: (read() - before[part]) / len(latencies) * 1000 for part, read in parts.items()}
        print("  CPU per request: " + ", ".join(f"{part} {ms:.2f} ms" for part, ms in spent.items())
              + f"; all {sum(spent.values()):.2f} ms = at most {2000 / sum(spent.values()):,.0f}/s on 2 cores")
    refused = sum(service.output().count("too many clients") for service in [*web, proxy])
    print(f'"too many clients" in the web and proxy logs: {refused}')


def main() -> None:
    args = parse_args()
    from bench.dispatch import setup_django
    from tests import processes

    port = processes.free_port()  # the proxy's, known before settings are read: the dialer builds our URLs
    public = f"http://127.0.0.1:{port}"
    os.environ.update(PUBLIC_BASE_URL=public, OUTBOUND_ALLOW_LOOPBACK="true")
    setup_django(args.database_url, os.environ.get("REDIS_URL", ""))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would cost the client's CPU
    from callbacks.models import WebhookEvent
    from campaigns.models import Call, Campaign
    from tenancy.models import Workspace

    workspace, campaign = seed(args.calls)
    baseline = Workspace.objects.create(name="Baseline", slug="bench-baseline")
    calls = list(Call.objects.filter(campaign=campaign).order_by("pk"))
    # Two halves: the first acknowledged while no applier runs, the second while one does.
    alone, beside = [deliveries(call) for call in calls[::2]], [deliveries(call) for call in calls[1::2]]
    with tempfile.TemporaryDirectory() as log_dir:
        log_dir = Path(log_dir)
        simulator = processes.start_simulator(log_dir, "bench:k:t", config=simulator_config(log_dir))
        bench_urls = {"public_base_url": public, "DJANGO_SETTINGS_MODULE": "bench.settings"}
        if args.web == "gunicorn":
            web = [processes.start_web(log_dir, workers=args.processes, threads=args.threads, **bench_urls)]
            streams = [processes.start_daphne(log_dir, name="streams", public_base_url=public)]
        else:
            web = streams = [processes.start_daphne(log_dir, name=f"daphne-{n}", **bench_urls)
                             for n in range(args.processes)]
        proxy = processes.start_proxy(log_dir, web=web, streams=streams, port=port)
        applier = None
        legs = legs_campaign(workspace, simulator.url, args.legs)

        def applied_all(since: float, what: str) -> None:
            processes.wait_until(lambda: not WebhookEvent.objects.filter(outcome="pending").exists(), timeout=900,
                                 what="the applier to apply everything", interval=0.05)
            seconds = time.time() - since
            print(f"applier: {what} applied {seconds:.2f} s after the last answer")

        try:
            raw, hooks = f"{public}/bench/raw/{baseline.pk}", f"{public}/hooks/{workspace.webhook_token}"
            # A worker's first requests (lazy imports, the pool's connections) are no phase's figure: the
            # first baseline paid them alone and ran 10-40% slower than the same baseline at the end.
            asyncio.run(drive(raw, alone[:100], args.concurrency))
            if args.acknowledge_only:
                acknowledge_only(args, raw, f"{hooks}/status", alone + beside, web, proxy)
                return
            before = report("baseline (one INSERT)", *asyncio.run(drive(raw, alone, args.concurrency)))
            first = report("status callbacks stored and acknowledged, no applier running",
                           *asyncio.run(drive(f"{hooks}/status", alone, args.concurrency)))
            started = time.time()
            applier = processes.start_applier(log_dir, public_base_url=public)
            applied_all(started, f"those {3 * len(alone)}, the applier started then, all")
            print(f"  = {3 * len(alone) / (time.time() - started):.0f} deliveries/s, its start included; "
                  f"{applier_rate(calls[::2]):.0f} deliveries/s from its first to its last")
            elapsed, latencies, failures = asyncio.run(drive(f"{hooks}/status", beside, args.concurrency))
            answered = time.time()
            second = report("status callbacks stored and acknowledged, the applier applying them meanwhile",
                            elapsed, latencies, failures)
            applied_all(answered, "the rest of those")
            after = report("baseline again", *asyncio.run(drive(raw, alone, args.concurrency)))
            for name, rate in (("no applier running", first), ("applier running", second)):
                print(f"ratio to the baseline of the same web tier, {name}: {rate / before:.0%} (before), "
                      f"{rate / after:.0%} (after)")
            events = WebhookEvent.objects.filter(workspace=workspace, kind="status", call__in=calls[1::2])
            lags = [(applied - received).total_seconds() for received, applied in events.values_list(
                "received_at", "applied_at")]
            print(f"applier lag (received to applied) while it ran, {len(lags)} deliveries: {percentiles(lags)}")
            place_calls(legs, 5)
            processes.wait_until(lambda: not Call.objects.filter(pk__in=[c.pk for c in legs], answered_at=None).exists(),
                                 timeout=120, what="every leg to be answered", interval=0.5)
            time.sleep(2)  # for the last start_stream to reach the simulator's log
            found, applying = start_stream_latencies(legs, simulator.extra["wire_log"])
            print(f"leg_answered received to start_stream at the simulator, {len(found)} legs: {percentiles(found)}")
            print(f"  of which received to applied (the applier): {percentiles(applying)}")
            stream_url = [[{"data": {"CallSid": call.exotel_sid, "CustomField": call.token}}] for call in calls]
            report("stream-URL requests (stored, applied, answered)",
                   *asyncio.run(drive(f"{hooks}/stream-url", stream_url, args.concurrency)))
        finally:
            for service in [applier, proxy, *web, *(s for s in streams if s not in web), simulator]:
                if service:
                    service.stop()
    campaign = Campaign.objects.get(pk=campaign.pk)
    completed = Call.objects.filter(campaign=campaign, state=Call.State.COMPLETED).count()
    applied = WebhookEvent.objects.filter(workspace=workspace, kind="status", outcome="applied").count()
    print(f"check: {completed}/{len(calls)} calls completed, {applied}/{3 * len(calls)} deliveries applied, "
          f"calls_live {campaign.calls_live}, contacts_done {campaign.contacts_done}, "
          f"talk_seconds {campaign.talk_seconds}, state {campaign.state}")


if __name__ == "__main__":
    main()
