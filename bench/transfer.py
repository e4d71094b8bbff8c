"""Transfer to a person against the Exotel simulator: from the bot's request to the agent hearing the caller.

    python bench/transfer.py [--calls 10] [--whisper ""] [--database-url postgres://…/bench_transfer]

Seeds its own database with a running Legs campaign of `--calls` contacts whose script bot asks for a
person at once, and one agent group of one agent who answers after 0.2 s of ringing. Starts the
simulator, the stream server (config.server), the applier, a Celery worker and beat as the product
runs them, and lets the campaign run. For each call it reads the transfer's row: the request (the
stream's, on our clock), the agent's answer (`leg_answered` received), and the bridge
(`bridge_created` received: the agent hears the caller from then). The whisper is said between the
answer and the bridge; the simulator speaks it at 60 ms a character, so `--whisper ""` measures the
machinery alone. Prints the median and the spread, with the load average.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_transfer"
AGENT = "+919811199999"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--whisper", default="", help="the script's whisper, said to the agent before the bridge")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    return parser.parse_args()


def seed(calls: int, whisper: str, sim_url: str):
    import datetime

    from bench.dispatch import clear
    from campaigns import compliance, lifecycle, rules
    from campaigns.models import Campaign, Contact
    from tenancy.models import Exophone, ExotelAccount, Workspace
    from transfers import services
    from transfers.models import Agent, AgentGroup

    clear()
    workspace = Workspace.objects.create(name="Bench", slug="bench-transfer", **rules.WHOLE_DAY)
    account = ExotelAccount.objects.create(workspace=workspace, label="Bench", account_sid="bench", api_key="k",
                                           api_token="t", api_base_url=sim_url)
    exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")
    agent = Agent.objects.create(workspace=workspace, name="Ravi", phone=AGENT, active_from=datetime.time.min,
                                 active_until=datetime.time.max)
    group = services.save_group(AgentGroup(workspace=workspace, name="Desk", ring_seconds=10), [agent])
    campaign = Campaign.objects.create(
        workspace=workspace, name="Bench", account=account, connect_mode=Campaign.ConnectMode.LEGS,
        bot_kind=Campaign.BotKind.SCRIPT, bot_settings={"steps": [{"transfer": {"whisper": whisper}}]},
        transfer_group=group, max_attempts=1, calls_per_minute=120, max_concurrent=5, contacts_total=calls,
        window_start=datetime.time.min, window_end=datetime.time.max, weekdays=[1, 2, 3, 4, 5, 6, 7])
    campaign.exophones.add(exophone)
    phones = [f"+9190{n:08d}" for n in range(calls)]
    recipients = compliance.ensure_recipients(workspace.pk, phones)
    Contact.objects.bulk_create(Contact(workspace=workspace, campaign=campaign, phone=phone,
                                        recipient_id=recipients[phone]) for phone in phones)
    return lifecycle.start_campaign(campaign, by=None)


def main() -> None:
    args = parse_args()
    from bench.dispatch import setup_django
    from tests import processes

    setup_django(args.database_url, os.environ.get("REDIS_URL", ""))
    from transfers.models import Transfer

    with tempfile.TemporaryDirectory() as log_dir:
        log_dir = Path(log_dir)
        config = log_dir / "sim.json"
        config.write_text(json.dumps({
            "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 30, "script": []},
            "numbers": {AGENT: {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 10, "script": []}},
        }))
        started = [processes.start_simulator(log_dir, "bench:k:t", config=config)]
        try:
            web = processes.start_daphne(log_dir)
            started.append(web)
            seed(args.calls, args.whisper, started[0].url)
            for start in (processes.start_applier, processes.start_worker, processes.start_beat):
                started.append(start(log_dir, public_base_url=web.url, DISPATCH_SECONDS="1"))
            processes.wait_until(lambda: Transfer.objects.exclude(bridged_at=None).count() >= args.calls,
                                 timeout=60 + 10 * args.calls, what="every call's transfer to be bridged")
        finally:
            for service in reversed(started):
                service.stop()
    rows = Transfer.objects.exclude(bridged_at=None)
    answered = [(t.answered_at - t.requested_at).total_seconds() * 1000 for t in rows]
    bridged = [(t.bridged_at - t.requested_at).total_seconds() * 1000 for t in rows]
    load = os.getloadavg()
    print(f"{len(bridged)} transfers, whisper of {len(args.whisper)} characters; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for name, values in (("request -> agent answered", answered), ("request -> agent hears the caller", bridged)):
        values.sort()
        print(f"  {name}: median {statistics.median(values):.0f} ms, min {values[0]:.0f}, max {values[-1]:.0f}")


if __name__ == "__main__":
    started_at = time.time()
    main()
    print(f"({time.time() - started_at:.0f} s in all)")
