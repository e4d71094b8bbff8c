import signal
import threading

from django.core.management.base import BaseCommand

from callbacks import applier


class Command(BaseCommand):
    help = "Apply stored webhook deliveries to their calls as they arrive (run one, beside the web servers)."

    def handle(self, *args, **options):
        stop = threading.Event()
        # SIGTERM (docker stop) ends the loop between two deliveries, never inside one.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        applier.run(stop=stop)
