"""Sign-in rate limit (django-axes): per account and per address, on the sign-in page and the admin's."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOCKED = "Too many failed sign-ins"
LIMIT = 5


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def sign_in(client, username, password, address="203.0.113.7", url="/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_an_account_is_locked_after_five_failures_even_from_new_addresses(client, alice):
    for n in range(LIMIT - 1):
        assert sign_in(client, "alice@example.org", "wrong", address=f"198.51.100.{n}").status_code == 200
    assert sign_in(client, "alice@example.org", "wrong", address="198.51.100.9").status_code == 429
    response = sign_in(client, "alice@example.org", PASSWORD, address="192.0.2.1")
    assert response.status_code == 429
    assert LOCKED in response.content.decode() and "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_after_five_failures_across_accounts(client, alice, bob):
    for n in range(LIMIT):
        sign_in(client, f"guess{n}@example.org", "wrong")
    assert sign_in(client, "bob@example.org", PASSWORD).status_code == 429
    assert sign_in(client, "bob@example.org", PASSWORD, address="192.0.2.1").status_code == 302


def test_a_correct_password_clears_the_count(client, alice):
    for _ in range(2):
        for _ in range(LIMIT - 1):
            assert sign_in(client, "alice@example.org", "wrong").status_code == 200
        assert sign_in(client, "alice@example.org", PASSWORD).status_code == 302
        client.logout()


def test_the_admin_sign_in_is_limited_too(client, alice):
    url = reverse("admin:login")
    for _ in range(LIMIT):
        sign_in(client, "alice@example.org", "wrong", url=url)
    assert sign_in(client, "alice@example.org", PASSWORD, url=url).status_code == 429
    assert sign_in(client, "alice@example.org", PASSWORD, address="192.0.2.1").status_code == 429
