from django.core.management.base import BaseCommand
from django.db import transaction

from tenancy.models import ExotelAccount, Workspace

# Every encrypted column, by model.
ENCRYPTED = {ExotelAccount: ["api_key", "api_token"], Workspace: ["stream_password"]}


class Command(BaseCommand):
    help = "Re-encrypt stored secrets under the first of FIELD_ENCRYPTION_KEYS (run after adding a new key)."

    @transaction.atomic
    def handle(self, *args, **options):
        for model, fields in ENCRYPTED.items():
            rows = model.objects.only("pk", *fields)
            for row in rows.iterator():
                row.save(update_fields=fields)  # read with whichever key fits, written under the first
            self.stdout.write(f"{model._meta.verbose_name_plural}: {rows.count()} re-encrypted.")
