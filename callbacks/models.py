from django.db import models
from django.utils import timezone

from campaigns.models import Call
from tenancy.models import Workspace


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

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["workspace", "-received_at"], name="webhook_workspace_recent"),
            # The applier's queue: small however many deliveries are kept.
            models.Index(fields=["id"], condition=models.Q(outcome="pending"), name="webhook_pending"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.received_at:%Y-%m-%d %H:%M:%S}"
