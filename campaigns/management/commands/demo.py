"""`python manage.py demo`: the whole product on one machine, against the Exotel simulator.

Starts the simulator, daphne, the webhook applier, a Celery worker and beat as child processes,
seeds a demo workspace whose Exotel account points at the simulator with a small running campaign,
prints where to sign in once the web server answers, and stops every child on Ctrl-C or SIGTERM. A child that exits is
logged and started again (sooner or later: one that keeps failing waits longer each time); the
others keep running. Run again, it reuses what it seeded.
"""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from campaigns import imports, lifecycle, rules
from campaigns.models import Campaign
from config.celery import app as celery_app
from tenancy import services as tenancy
from tenancy.models import Exophone, ExotelAccount, Workspace

log = logging.getLogger(__name__)
EMAIL, PASSWORD = "demo@example.org", "demo-password"
STABLE_SECONDS = 60  # a child that ran this long before exiting is restarted at once
MAX_RESTART_DELAY = 30
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
        parser.add_argument("--stop-after", type=float, metavar="SECONDS",
                            help="Stop by itself after this long (a soak); fail if any process had to be restarted.")

    def handle(self, *args, port, simulator_port, stop_after, **options):
        call_command("migrate", verbosity=0)
        campaign = seed(simulator_url=f"http://127.0.0.1:{simulator_port}")
        celery_app.control.purge()  # messages an earlier run left behind
        # A short drain: on Ctrl-C the simulator's calls end anyway, and nobody waits minutes for a demo.
        env = {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "STREAM_DRAIN_SECONDS": "5", **os.environ,
               "PYTHONUNBUFFERED": "1"}
        children = [Child(name, argv, env) for name, argv in commands(port=port, simulator_port=simulator_port)]
        for child in children:
            child.start()

        def announce():
            self.stdout.write(self.style.SUCCESS(
                f"\nDashboard: http://127.0.0.1:{port}/  (sign in as {EMAIL} / {PASSWORD})\n"
                f"Demo campaign: http://127.0.0.1:{port}{campaign.get_absolute_url()}\n"
                "Ctrl-C stops everything.\n"
            ))

        supervise(children, ready=lambda: answers(f"http://127.0.0.1:{port}/login/"), announce=announce,
                  stop_after=stop_after)
        restarts = {child.name: child.restarts for child in children if child.restarts}
        if stop_after and restarts:
            raise CommandError(f"processes had to be restarted: {restarts}")


def seed(*, simulator_url: str) -> Campaign:
    """The demo workspace, its simulator-backed account and a running campaign (reused when present)."""
    workspace, _ = tenancy.bootstrap_workspace(slug="demo", name="Demo", email=EMAIL, password=PASSWORD)
    # Its numbers are the simulator's, so the calling rules' window is the whole day: the demo runs
    # whenever it is started (a real workspace keeps 09:00–21:00 recipient time, or its own).
    Workspace.objects.filter(pk=workspace.pk).update(**rules.WHOLE_DAY)
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
            workspace=workspace, name="Demo renewals", account=account,
            bot_kind=Campaign.BotKind.ECHO, recording=Campaign.Recording.SINGLE,
            # Any hour, any day, so the demo runs whenever it is started.
            window_start="00:00", window_end="23:59", weekdays=[1, 2, 3, 4, 5, 6, 7],
            calls_per_minute=20, max_concurrent=3, max_attempts=2, retry_after_minutes=1,
        )
        campaign.exophones.add(exophone)
        csv = "phone,name\n" + "".join(f"{phone},{name}\n" for phone, name, _ in CONTACTS)
        imports.import_now(campaign, io.BytesIO(csv.encode()), region="IN")
        lifecycle.start_campaign(campaign, by=None)
    return campaign


def simulator_config() -> Path:
    path = Path(settings.VAR_DIR) / "demo-simulator.json"
    path.write_text(json.dumps({"numbers": {phone: fate for phone, _, fate in CONTACTS}}, indent=2))
    return path


def commands(*, port: int, simulator_port: int) -> list[tuple[str, list[str]]]:
    python = sys.executable
    return [
        ("simulator", [python, "-m", "exotel.simulator", "--port", str(simulator_port),
                       "--config", str(simulator_config()), "--account", f"{ACCOUNT_SID}:{API_KEY}:{API_TOKEN}",
                       "--log", str(Path(settings.VAR_DIR) / "simulator.jsonl")]),
        ("web", [python, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]),
        ("applier", [python, str(Path(settings.BASE_DIR) / "manage.py"), "apply_callbacks"]),
        # One worker: gossip and mingle would only add broker traffic.
        ("worker", [python, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
                    "--without-gossip", "--without-mingle"]),
        ("beat", [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                  "-s", str(Path(settings.VAR_DIR) / "celerybeat-schedule")]),
    ]


@dataclass
class Child:
    """One process of the demo, started again whenever it exits."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row, each within STABLE_SECONDS of its start
    restarts: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        # Its own process group, so Ctrl-C reaches it only through us, in order.
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True)
        self.started_at, self.restart_at = time.monotonic(), None
        log.info("demo: %s started (pid %d)", self.name, self.process.pid)

    def keep_running(self) -> None:
        """Start the child again if it exited: at once the first time, then ever more slowly."""
        now = time.monotonic()
        if self.restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            self.failures = self.failures + 1 if now - self.started_at < STABLE_SECONDS else 1
            delay = min(2 ** (self.failures - 1) - 1, MAX_RESTART_DELAY)
            log.error("demo: %s exited with code %s; starting it again in %d s", self.name, code, delay)
            self.restart_at = now + delay
        if now >= self.restart_at:
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def supervise(children: list[Child], *, ready, announce, stop_after: float | None = None) -> None:
    """Keep every child running until Ctrl-C, SIGTERM or `stop_after` seconds; `announce` once `ready()`."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up as Ctrl-C does
    announced = False
    deadline = time.monotonic() + stop_after if stop_after else None
    try:
        while deadline is None or time.monotonic() < deadline:
            for child in children:
                child.keep_running()
            if not announced and ready():
                announce()
                announced = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            child.stop()
        for child in children:
            child.wait()
