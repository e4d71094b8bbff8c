"""API keys: made with a random secret shown once, kept as a SHA-256 hash, found by their public prefix.

A key reads `as_<prefix>_<secret>`. The secret has 256 bits of entropy, so a plain SHA-256 is as strong
as a slow password hash would be, and checking it costs microseconds on every request.
"""

import datetime
import hashlib
import hmac
import secrets

from django.utils import timezone

from integrations.models import ApiKey

KEY_PREFIX = "as_"
# last_used_at is written at most this often per key: one UPDATE per request would be one too many.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(workspace, *, name: str, scopes: list[str], by) -> tuple[ApiKey, str]:
    """A new key and its plain text, which is never stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(workspace=workspace, name=name, prefix=prefix, hashed=_hash(plain),
                                scopes=sorted(set(scopes)), created_by=by)
    return key, plain


def authenticate(plain: str, *, now: datetime.datetime | None = None) -> ApiKey | None:
    """The active key `plain` is, or None; notes when it was used."""
    body = plain.removeprefix(KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    if not plain.startswith(KEY_PREFIX) or not secret:
        return None
    key = ApiKey.objects.select_related("workspace").filter(prefix=prefix, revoked_at=None).first()
    if key is None or not hmac.compare_digest(key.hashed, _hash(plain)):
        return None
    now = now or timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def revoke_key(key: ApiKey) -> bool:
    """Revoke a key at once; False if it was revoked already."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now()))
