from django.db import connections, models
from django.utils import timezone

from campaigns.models import Call
from tenancy.models import Workspace


class WebhookEventQuerySet(models.QuerySet):
    def create_for_token(self, token: str, event: "WebhookEvent") -> bool:
        """Store the unsaved `event` for the workspace whose webhook token is `token`; False if none has it.

        One statement (INSERT … SELECT … WHERE webhook_token): the request path of every callback is
        this and nothing else, so the workspace's lookup does not cost a round trip of its own
        (bench/RESULTS.md, Webhooks).
        """
        connection = connections[self.db]
        name = connection.ops.quote_name
        fields = [field for field in self.model._meta.concrete_fields if field.name not in ("id", "workspace")]
        values = [field.get_db_prep_save(field.pre_save(event, add=True), connection) for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {name(self.model._meta.db_table)} (workspace_id, {', '.join(name(f.column) for f in fields)})"
                f" SELECT id, {', '.join(['%s'] * len(fields))} FROM {name(Workspace._meta.db_table)}"
                " WHERE webhook_token = %s RETURNING id, workspace_id",
                [*values, token],
            )
            row = cursor.fetchone()
        if row is None:
            return False
        event.pk, event.workspace_id = row
        event._state.adding, event._state.db = False, self.db
        return True


class WebhookEvent(models.Model):
    """One delivery from Exotel, kept raw for audit before anything is applied.

    The request stores it `pending` (or `malformed`, refused there and then); the applier
    (`callbacks.applier`) applies pending rows to their calls in arrival order. On PostgreSQL a
    trigger (migration 0002) wakes it with NOTIFY in the inserting transaction.
    """

    class Kind(models.TextChoices):
        STATUS = "status", "Status callback"
        PASSTHRU = "passthru"
        LEG_EVENT = "leg_event", "Leg event"
        STREAM_URL = "stream_url", "Stream-URL request"

    class Outcome(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        DUPLICATE = "duplicate"  # well-formed, changed nothing
        ORPHANED = "orphaned"  # well-formed, for a call we do not know
        MALFORMED = "malformed"
        FAILED = "failed"  # applying raised; the raw record is kept all the same

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    method = models.CharField(max_length=8)
    query = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhooks")
    # The query and body fields as parsed on arrival: what the applier reads (the raw body alone
    # cannot be parsed again: a multipart boundary is not kept). Empty when malformed.
    fields = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)  # when the applier decided the outcome

    objects = WebhookEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["workspace", "-received_at"], name="webhook_workspace_recent"),
            # The applier's queue: small however many deliveries are kept.
            models.Index(fields=["id"], condition=models.Q(outcome="pending"), name="webhook_pending"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.received_at:%Y-%m-%d %H:%M:%S}"
