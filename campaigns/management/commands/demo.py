"""`python manage.py demo`: the whole product on one machine, against the Exotel simulator.

Starts the simulator, daphne, a Celery worker and beat as child processes, seeds a demo workspace
whose Exotel account points at the simulator with a small running campaign, prints where to sign
in, and stops every child on Ctrl-C. Run again, it reuses what it seeded.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from campaigns import imports, lifecycle
from campaigns.models import Campaign
from tenancy import services as tenancy
from tenancy.models import Exophone, ExotelAccount

EMAIL, PASSWORD = "demo@example.org", "demo-password"
ACCOUNT_SID, API_KEY, API_TOKEN = "DEMO0001", "demo-key", "demo-token"

# Each demo contact's fate at the simulator: most answer and talk, a few do not.
CONTACTS = [
    ("+919800000001", "Asha", {"outcome": "answer", "ring_seconds": 2, "hangup_after": 12}),
    ("+919800000002", "Bala", {"outcome": "answer", "ring_seconds": 1, "hangup_after": 8}),
    ("+919800000003", "Chitra", {"outcome": "busy", "ring_seconds": 3}),
    ("+919800000004", "Dev", {"outcome": "answer", "ring_seconds": 4, "hangup_after": 15}),
    ("+919800000005", "Esha", {"outcome": "no-answer", "ring_seconds": 6}),
    ("+919800000006", "Farhan", {"outcome": "answer", "ring_seconds": 1, "hangup_after": 6}),
    ("+919800000007", "Gita", {"outcome": "failed", "ring_seconds": 1}),
    ("+919800000008", "Hari", {"outcome": "answer", "ring_seconds": 2, "hangup_after": 10}),
    ("+919800000009", "Indu", {"outcome": "answer", "ring_seconds": 3, "hangup_after": 9}),
    ("+919800000010", "Jay", {"outcome": "answer", "ring_seconds": 1, "hangup_after": 20}),
]


class Command(BaseCommand):
    help = "Run the product on this machine against the Exotel simulator, with a demo campaign."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="The dashboard's port.")
        parser.add_argument("--simulator-port", type=int, default=8765)

    def handle(self, *args, port, simulator_port, **options):
        call_command("migrate", verbosity=0)
        campaign = seed(simulator_url=f"http://127.0.0.1:{simulator_port}")
        children = start_children(port=port, simulator_port=simulator_port)
        self.stdout.write(self.style.SUCCESS(
            f"\nDashboard: http://127.0.0.1:{port}/  (sign in as {EMAIL} / {PASSWORD})\n"
            f"Demo campaign: http://127.0.0.1:{port}{campaign.get_absolute_url()}\n"
            "Ctrl-C stops everything.\n"
        ))
        supervise(children)


def seed(*, simulator_url: str) -> Campaign:
    """The demo workspace, its simulator-backed account and a running campaign (reused when present)."""
    workspace, _ = tenancy.bootstrap_workspace(slug="demo", name="Demo", email=EMAIL, password=PASSWORD)
    account, _ = ExotelAccount.objects.update_or_create(
        workspace=workspace, account_sid=ACCOUNT_SID,
        defaults={"label": "Simulator", "api_key": API_KEY, "api_token": API_TOKEN, "api_base_url": simulator_url},
    )
    exophone, _ = Exophone.objects.get_or_create(
        workspace=workspace, account=account, number="+918047491899", defaults={"label": "Demo line"}
    )
    campaign = Campaign.objects.filter(workspace=workspace, name="Demo renewals").first()
    if campaign is None:
        campaign = Campaign.objects.create(
            workspace=workspace, name="Demo renewals", account=account, exophone=exophone,
            bot_kind=Campaign.BotKind.ECHO, recording=Campaign.Recording.SINGLE,
            # Any hour, any day, so the demo runs whenever it is started.
            window_start="00:00", window_end="23:59", weekdays=[1, 2, 3, 4, 5, 6, 7],
            calls_per_minute=20, max_concurrent=3, max_attempts=2, retry_after_minutes=1,
        )
        csv = "phone,name\n" + "".join(f"{phone},{name}\n" for phone, name, _ in CONTACTS)
        imports.import_contacts(campaign, imports.parse(csv, region="IN"))
        lifecycle.start_campaign(campaign, by=None)
    return campaign


def simulator_config() -> Path:
    path = Path(settings.VAR_DIR) / "demo-simulator.json"
    path.write_text(json.dumps({"numbers": {phone: fate for phone, _, fate in CONTACTS}}, indent=2))
    return path


def start_children(*, port: int, simulator_port: int) -> list[subprocess.Popen]:
    python = sys.executable
    commands = [
        [python, "-m", "exotel.simulator", "--port", str(simulator_port), "--config", str(simulator_config()),
         "--account", f"{ACCOUNT_SID}:{API_KEY}:{API_TOKEN}", "--log", str(Path(settings.VAR_DIR) / "simulator.jsonl")],
        [python, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        [python, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2", "--purge"],
        [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
         "-s", str(Path(settings.VAR_DIR) / "celerybeat-schedule")],
    ]
    env = {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **os.environ, "PYTHONUNBUFFERED": "1"}
    # Each child in its own process group, so Ctrl-C reaches them only through us, in order.
    return [subprocess.Popen(argv, env=env, start_new_session=True) for argv in commands]


def supervise(children: list[subprocess.Popen]) -> None:
    """Wait until Ctrl-C, SIGTERM or a child's death, then stop them all."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up as Ctrl-C does
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        sys.stderr.write("A process of the demo exited; stopping the others.\n")
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
