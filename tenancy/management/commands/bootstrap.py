from django.core.management.base import BaseCommand

from tenancy import services


class Command(BaseCommand):
    help = "Create a workspace and its owner non-interactively; run again, it leaves both as they are."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--name", default="", help="Display name (default: from the slug).")
        parser.add_argument("--email", required=True, help="The owner's e-mail, also the login.")
        parser.add_argument("--password", required=True)

    def handle(self, *args, **options):
        workspace, created = services.bootstrap_workspace(
            slug=options["workspace"], name=options["name"], email=options["email"], password=options["password"]
        )
        verb = "Created" if created else "Kept"
        self.stdout.write(f"{verb} workspace {workspace.slug!r} with owner {options['email']}.")
