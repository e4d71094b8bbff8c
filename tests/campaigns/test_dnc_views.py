"""The do-not-call list page: view, add, remove (files: test_dnc_files.py)."""

import pytest
from django.urls import reverse

from campaigns.models import DoNotCall

pytestmark = pytest.mark.django_db


def test_an_operator_adds_a_number_in_national_form(alice_client, acme):
    response = alice_client.post(reverse("campaigns:dnc_add"), {"phone": "098765 43210", "reason": "asked", "region": "IN"},
                                 follow=True)
    entry = DoNotCall.objects.get(workspace=acme)
    assert entry.phone == "+919876543210" and entry.source == "manual"
    assert "+919876543210 added" in response.content.decode()


def test_adding_a_listed_number_again_says_so(alice_client, acme):
    DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    response = alice_client.post(reverse("campaigns:dnc_add"), {"phone": "+919876543210", "region": "IN"}, follow=True)
    assert "already on the list" in response.content.decode()
    assert DoNotCall.objects.count() == 1


def test_an_invalid_number_is_refused(alice_client):
    response = alice_client.post(reverse("campaigns:dnc_add"), {"phone": "123", "region": "IN"}, follow=True)
    assert "not a valid phone number" in response.content.decode()
    assert not DoNotCall.objects.exists()


def test_the_list_shows_and_searches_this_workspaces_numbers(bob_client, acme, globex):
    DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    DoNotCall.objects.create(workspace=acme, phone="+919811111111")
    DoNotCall.objects.create(workspace=globex, phone="+919822222222")
    page = bob_client.get(reverse("campaigns:dnc")).content.decode()
    assert "+919876543210" in page and "+919822222222" not in page
    page = bob_client.get(reverse("campaigns:dnc"), {"q": "9811"}).content.decode()
    assert "+919811111111" in page and "+919876543210" not in page


def test_an_operator_removes_a_number(alice_client, acme):
    entry = DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    alice_client.post(reverse("campaigns:dnc_remove", args=[entry.pk]))
    assert not DoNotCall.objects.exists()


def test_a_viewer_reads_but_cannot_change_the_list(bob_client, acme):
    entry = DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    assert bob_client.get(reverse("campaigns:dnc")).status_code == 200
    assert bob_client.post(reverse("campaigns:dnc_add"), {"phone": "+919876543211", "region": "IN"}).status_code == 403
    assert bob_client.post(reverse("campaigns:dnc_remove", args=[entry.pk])).status_code == 403
    assert DoNotCall.objects.count() == 1


def test_charlie_cannot_remove_acmes_number(charlie_client, acme):
    entry = DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    assert charlie_client.post(reverse("campaigns:dnc_remove", args=[entry.pk])).status_code == 404
    assert DoNotCall.objects.filter(pk=entry.pk).exists()


def test_the_list_shows_where_each_number_came_from_and_filters_by_it(bob_client, acme):
    DoNotCall.objects.create(workspace=acme, phone="+919876543210", source=DoNotCall.Source.RELAY,
                             reason="said stop (call 7, campaign 3)")
    DoNotCall.objects.create(workspace=acme, phone="+919811111111", source=DoNotCall.Source.REGISTRY)
    page = bob_client.get(reverse("campaigns:dnc")).content.decode()
    assert "Your bot (relay message)" in page and "National registry scrub" in page and "said stop" in page
    page = bob_client.get(reverse("campaigns:dnc"), {"source": "relay"}).content.decode()
    assert "+919876543210" in page and "+919811111111" not in page
    page = bob_client.get(reverse("campaigns:dnc"), {"source": "dtmf"}).content.decode()
    assert "+919876543210" not in page and "No numbers match" in page
