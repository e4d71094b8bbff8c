"""What the systems around a workspace use: API keys."""

from django.conf import settings
from django.db import models

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
