"""Exotel accounts and Exophones: admins manage them, secrets never come back, test connection speaks."""

import datetime

import pytest
from django.urls import reverse

from tenancy.models import Exophone, ExotelAccount
from tests import processes
from tests.conftest import make_account, make_call

pytestmark = pytest.mark.django_db

NEW = {"label": "Main", "account_sid": "acme42", "api_key": "key-abcdef123456", "api_token": "tok-zyxwvu987654",
       "region": "mumbai", "api_base_url": "", "number_form": "e164", "currency": "INR", "rate_per_minute": ""}


def test_an_admin_adds_an_account_whose_secrets_are_encrypted(alice_client, acme):
    response = alice_client.post(reverse("tenancy:account_create"), NEW)
    assert response.status_code == 302
    account = ExotelAccount.objects.get(workspace=acme)
    assert account.api_key == "key-abcdef123456"
    raw = ExotelAccount.objects.filter(pk=account.pk).values_list("api_key", flat=True).query
    assert "key-abcdef123456" not in str(raw)


def test_secrets_are_never_shown_back(alice_client, acme):
    account = make_account(acme)
    for url in [reverse("tenancy:accounts"), reverse("tenancy:account_edit", args=[account.pk])]:
        page = alice_client.get(url).content.decode()
        assert "key-123456789" not in page and "token-987654321" not in page
    assert "…6789" in alice_client.get(reverse("tenancy:account_edit", args=[account.pk])).content.decode()


def test_blank_secrets_on_edit_keep_the_stored_ones(alice_client, acme):
    account = make_account(acme)
    data = {**NEW, "label": "Renamed", "account_sid": account.account_sid, "api_key": "", "api_token": ""}
    assert alice_client.post(reverse("tenancy:account_edit", args=[account.pk]), data).status_code == 302
    account.refresh_from_db()
    assert (account.label, account.api_key, account.api_token) == ("Renamed", "key-123456789", "token-987654321")
    data["api_token"] = "new-token-111111"
    alice_client.post(reverse("tenancy:account_edit", args=[account.pk]), data)
    account.refresh_from_db()
    assert account.api_token == "new-token-111111" and account.api_key == "key-123456789"


def test_a_new_account_needs_its_secrets_and_a_unique_sid(alice_client, acme):
    make_account(acme, account_sid="acme42")
    response = alice_client.post(reverse("tenancy:account_create"), {**NEW, "api_key": ""})
    assert {"api_key", "__all__"} <= set(response.context["form"].errors) or "api_key" in response.context["form"].errors
    response = alice_client.post(reverse("tenancy:account_create"), NEW)
    assert response.status_code == 200 and response.context["form"].errors
    assert ExotelAccount.objects.count() == 1


def test_test_connection_says_what_went_wrong(alice_client, acme):
    account = make_account(acme, api_base_url=f"http://127.0.0.1:{processes.free_port()}")
    response = alice_client.post(reverse("tenancy:account_test", args=[account.pk]), follow=True)
    page = response.content.decode()
    assert "Exotel could not be reached" in page and account.label in page


def test_test_connection_reads_stream_capacity_from_the_simulator(alice_client, acme, tmp_path):
    simulator = processes.start_simulator(tmp_path, "acme1:key-123456789:token-987654321")
    try:
        account = make_account(acme, api_base_url=simulator.url)
        response = alice_client.post(reverse("tenancy:account_test", args=[account.pk]), follow=True)
    finally:
        simulator.stop()
    account.refresh_from_db()
    assert account.max_allowed_streams is not None and account.streams_read_at is not None
    assert f"of {account.max_allowed_streams} streams in use" in response.content.decode()


def test_exophones_are_added_in_e164_and_edited(alice_client, acme):
    account = make_account(acme)
    response = alice_client.post(reverse("tenancy:exophone_create"),
                                 {"account": account.pk, "number": "080 4749 1899", "label": "Main", "region": "IN"})
    assert response.status_code == 302
    exophone = Exophone.objects.get()
    assert exophone.number == "+918047491899" and exophone.workspace == acme
    alice_client.post(reverse("tenancy:exophone_edit", args=[exophone.pk]),
                      {"account": account.pk, "number": "+918047491899", "label": "Support", "region": "IN"})
    exophone.refresh_from_db()
    assert exophone.label == "Support"
    response = alice_client.post(reverse("tenancy:exophone_create"), {"account": account.pk, "number": "12", "region": "IN"})
    assert "number" in response.context["form"].errors


def test_the_exophones_page_shows_a_paused_number_with_why_and_until_when(alice_client, campaign):
    exophone = campaign.exophones.get()
    Exophone.objects.filter(pk=exophone.pk).update(
        breaker=Exophone.Breaker.OPEN, breaker_reason="8 of its last 10 calls failed",
        breaker_until=datetime.datetime(2026, 12, 2, 10, 30, 5, tzinfo=datetime.UTC))
    make_call(campaign, state="failed")
    page = alice_client.get(reverse("tenancy:accounts")).content.decode()
    assert "Paused</span>" in page and "until 16:00:05: 8 of its last 10 calls failed" in page  # in Kolkata
    assert "1 calls since" in page and "0% answered, 100% failed" in page and "calls +91" in page


def test_an_exophone_in_use_is_not_removed(alice_client, campaign):
    exophone = campaign.exophones.get()
    alice_client.post(reverse("tenancy:exophone_delete", args=[exophone.pk]))
    assert Exophone.objects.filter(pk=exophone.pk).exists()


def test_an_exophone_that_placed_calls_is_kept_with_them(alice_client, campaign):
    exophone = campaign.exophones.get()
    make_call(campaign)
    campaign.exophones.clear()
    alice_client.post(reverse("tenancy:exophone_delete", args=[exophone.pk]))
    assert Exophone.objects.filter(pk=exophone.pk).exists()


def test_a_viewer_reads_accounts_but_cannot_change_them(bob_client, acme):
    account = make_account(acme)
    assert bob_client.get(reverse("tenancy:accounts")).status_code == 200
    assert bob_client.get(reverse("tenancy:account_edit", args=[account.pk])).status_code == 403
    assert bob_client.post(reverse("tenancy:account_test", args=[account.pk])).status_code == 403
    assert bob_client.post(reverse("tenancy:account_create"), NEW).status_code == 403
    assert ExotelAccount.objects.count() == 1


def test_charlie_cannot_touch_acmes_account_or_exophone(charlie_client, campaign):
    account, exophone = campaign.account, campaign.exophones.get()
    assert charlie_client.get(reverse("tenancy:account_edit", args=[account.pk])).status_code == 404
    data = {**NEW, "account_sid": account.account_sid}
    assert charlie_client.post(reverse("tenancy:account_edit", args=[account.pk]), data).status_code == 404
    assert charlie_client.post(reverse("tenancy:account_test", args=[account.pk])).status_code == 404
    assert charlie_client.post(reverse("tenancy:exophone_edit", args=[exophone.pk]),
                               {"account": account.pk, "number": "+918047491800"}).status_code == 404
    assert charlie_client.post(reverse("tenancy:exophone_delete", args=[exophone.pk])).status_code == 404
    account.refresh_from_db()
    assert account.label == "Main" and account.streams_read_at is None
    assert Exophone.objects.get(pk=exophone.pk).number == "+918047491899"


def test_the_endpoints_page_shows_admins_the_echo_test_url_and_webhooks(alice_client, acme):
    page = alice_client.get(reverse("tenancy:endpoints")).content.decode()
    assert "/streams/test/" in page and acme.webhook_token in page


def test_a_viewer_gets_the_echo_test_url_but_never_the_webhook_token(bob_client, acme):
    page = bob_client.get(reverse("tenancy:endpoints")).content.decode()
    assert "/streams/test/" in page
    assert acme.webhook_token not in page and "/hooks/" not in page
    assert bob_client.post(reverse("tenancy:rotate_webhook_token")).status_code == 403


def test_an_admin_sets_stream_credentials_and_rotates_webhook_urls(alice_client, bob_client, acme):
    assert bob_client.post(reverse("tenancy:endpoints"), {"stream_username": "x", "stream_password": "y"}).status_code == 403
    alice_client.post(reverse("tenancy:endpoints"), {"stream_username": "exotel", "stream_password": "s3cret-pass"})
    acme.refresh_from_db()
    assert (acme.stream_username, acme.stream_password) == ("exotel", "s3cret-pass")
    assert "s3cret-pass" not in alice_client.get(reverse("tenancy:endpoints")).content.decode()
    old = acme.webhook_token
    alice_client.post(reverse("tenancy:rotate_webhook_token"))
    acme.refresh_from_db()
    assert acme.webhook_token != old
