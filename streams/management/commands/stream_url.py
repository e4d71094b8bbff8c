from django.core.management.base import BaseCommand, CommandError

from streams import services
from tenancy.models import Workspace


class Command(BaseCommand):
    help = "Print a workspace's test stream URL: an AgentStream client connecting to it hears itself (echo bot)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="the workspace's slug")
        parser.add_argument("--bot", default="echo", choices=["echo"], help="the test endpoint runs the echo bot")

    def handle(self, *args, workspace: str, bot: str, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with the slug {workspace!r}.")
        self.stdout.write(services.test_stream_url(found))
        if found.stream_username:
            self.stderr.write("This workspace requires HTTP Basic credentials on its streams (its stream username "
                              "and password): configure them in the applet's Authentication option.")
