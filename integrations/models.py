"""What the systems around a workspace use: API keys, and the webhooks sent to the customer's CRM."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from campaigns.models import Call
from tenancy.crypto import EncryptedTextField
from tenancy.models import Workspace


class ApiKey(models.Model):
    """A workspace's key to /api/v1/ (integrations/keys.py): only its hash is kept; the key is shown once."""

    class Scope(models.TextChoices):
        READ = "read", "Read campaigns, uploads and calls"
        WRITE = "write", "Create campaigns, add contacts, start, pause and cancel"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="The key's first, public part: finds its row.")
    hashed = models.CharField(max_length=64, help_text="SHA-256 of the whole key.")
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

class WebhookEndpoint(models.Model):
    """A URL of the customer's that is told about calls and campaigns ending, signed with its secret."""

    class Event(models.TextChoices):
        CALL_ENDED = "call.ended", "A call ended"
        CAMPAIGN_ENDED = "campaign.ended", "A campaign completed or was cancelled"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = EncryptedTextField(help_text="Signs every delivery (HMAC-SHA256); shown to admins.")
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]

    def __str__(self):
        return self.url


class OutboxEvent(models.Model):
    """Something a CRM hears about, written in the same transaction as the change it tells of.

    `uuid` is its idempotency id (the Webhook-Id header): every attempt and replay to every endpoint
    carries the same one, so a receiver that keeps the ids it has seen applies each event once.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=30, choices=WebhookEndpoint.Event.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # A call.ended whose call still had a stream open waits for the stream to close (its transcript
    # and the bot's disposition are saved then), until `held_until` at most (integrations.outbox).
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    held_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["call"], condition=models.Q(held_until__isnull=False), name="outbox_held")]

    def __str__(self):
        return f"{self.kind} {self.uuid}"


class Delivery(models.Model):
    """One event on its way to one endpoint: retried with backoff until the endpoint answers 2xx."""

    class State(models.TextChoices):
        PENDING = "pending"  # due at next_attempt_at
        SENDING = "sending"  # claimed by a worker (claimed_at); reclaimed if that worker died
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after WEBHOOK_MAX_ATTEMPTS; a replay sends it again

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_endpoint")]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_history"),
        ]

    def __str__(self):
        return f"{self.event} to {self.endpoint} ({self.state})"


class DeliveryAttempt(models.Model):
    """One request of a delivery and what came back: the endpoint's history."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    milliseconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.delivery_id} at {self.at:%H:%M:%S}: {self.status_code or self.error}"
