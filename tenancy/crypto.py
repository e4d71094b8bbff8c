"""Encryption at rest for secrets such as Exotel API keys and tokens.

FIELD_ENCRYPTION_KEYS is a list of secrets: the first encrypts, every one decrypts, so a key is
rotated by putting the new one first and running `manage.py rotate_encryption_keys`. Each secret
may be any string; it is stretched to a Fernet key with SHA-256 so operators need no special tool.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def _fernet_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


@cache
def _cipher(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets])


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    return cipher().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt a stored secret: is its key still in FIELD_ENCRYPTION_KEYS?") from exc


class EncryptedTextField(models.TextField):
    """Holds a secret as text in Python and as a Fernet token in the database."""

    def from_db_value(self, value, expression, connection):
        return value if value in (None, "") else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value if value in (None, "") else encrypt(value)


def masked(secret: str) -> str:
    """Enough of a secret to recognise it, never enough to use it."""
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"
