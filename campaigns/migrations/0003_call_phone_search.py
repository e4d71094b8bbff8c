"""A trigram index for the calls page's "phone contains" search (PostgreSQL only).

Without it the search reads every call of the workspace (about 200 ms at a million calls); with it,
a few ms. Phones never change after insert, so the index costs only at insert. SQLite has no such
index and needs none at its scale. Kept out of the model's Meta because Django cannot express a
PostgreSQL-only index that SQLite skips.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS call_phone_trgm ON campaigns_call USING gin (phone gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS call_phone_trgm")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_dispatch_state")]

    operations = [migrations.RunPython(create, drop)]
