import io

import pytest
from django.core.management import call_command
from django.db import connection

from tenancy.crypto import masked
from tenancy.models import ExotelAccount
from tests.conftest import make_account


def raw_column(account, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM tenancy_exotelaccount WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


def test_credentials_round_trip(acme):
    account = make_account(acme, api_token="s3cret-token-value")
    assert ExotelAccount.objects.get(pk=account.pk).api_token == "s3cret-token-value"


def test_the_raw_column_never_holds_the_plain_token(acme):
    account = make_account(acme, api_key="plain-key-value", api_token="plain-token-value")
    assert "plain-token-value" not in raw_column(account, "api_token")
    assert "plain-key-value" not in raw_column(account, "api_key")


def test_an_old_key_still_decrypts_after_a_new_one_is_added(acme, settings):
    settings.FIELD_ENCRYPTION_KEYS = ["old-key"]
    account = make_account(acme, api_token="token-under-old-key")
    settings.FIELD_ENCRYPTION_KEYS = ["new-key", "old-key"]
    assert ExotelAccount.objects.get(pk=account.pk).api_token == "token-under-old-key"


def test_rotation_reencrypts_under_the_new_key(acme, settings):
    settings.FIELD_ENCRYPTION_KEYS = ["old-key"]
    account = make_account(acme, api_token="token-to-rotate")
    before = raw_column(account, "api_token")
    settings.FIELD_ENCRYPTION_KEYS = ["new-key", "old-key"]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert raw_column(account, "api_token") != before
    settings.FIELD_ENCRYPTION_KEYS = ["new-key"]  # the old key can now be dropped
    assert ExotelAccount.objects.get(pk=account.pk).api_token == "token-to-rotate"


def test_a_secret_under_a_lost_key_fails_clearly(acme, settings):
    settings.FIELD_ENCRYPTION_KEYS = ["lost-key"]
    account = make_account(acme)
    settings.FIELD_ENCRYPTION_KEYS = ["other-key"]
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEYS"):
        ExotelAccount.objects.get(pk=account.pk)


def test_masking_shows_only_the_last_characters():
    assert masked("abcdefghijkl") == "…ijkl"
    assert masked("short") == "…"
