"""Members and roles: admins manage them; owners alone make owners; no one locks a workspace out."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tenancy.models import Membership, Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(acme):
    return make_user("dave@example.org", acme, Role.ADMIN)


def test_an_owner_adds_a_new_user_with_a_first_password(alice_client, acme):
    response = alice_client.post(reverse("tenancy:members"),
                                 {"email": "Erin@Example.org", "role": "operator", "password": "a long first password"})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="erin@example.org")
    assert membership.workspace == acme and membership.role == "operator"
    assert get_user_model().objects.get(email="erin@example.org").check_password("a long first password")


def test_an_existing_user_is_added_without_a_password(alice_client, charlie, acme):
    alice_client.post(reverse("tenancy:members"), {"email": charlie.email, "role": "viewer"})
    assert Membership.objects.filter(user=charlie, workspace=acme, role="viewer").exists()


def test_a_new_user_needs_a_password(alice_client):
    response = alice_client.post(reverse("tenancy:members"), {"email": "nobody@example.org", "role": "viewer"})
    assert "give a first password" in response.content.decode()


def test_an_admin_cannot_make_an_owner(dave, bob):
    from tests.conftest import signed_in

    client = signed_in(dave)
    bob_membership = Membership.objects.get(user=bob)
    response = client.post(reverse("tenancy:member_role", args=[bob_membership.pk]), {"role": "owner"}, follow=True)
    assert "Only an owner" in response.content.decode()
    assert Membership.objects.get(pk=bob_membership.pk).role == "viewer"
    client.post(reverse("tenancy:member_role", args=[bob_membership.pk]), {"role": "operator"})
    assert Membership.objects.get(pk=bob_membership.pk).role == "operator"


def test_the_last_owner_cannot_be_demoted_or_removed(alice, dave):
    from tests.conftest import signed_in

    client = signed_in(dave)
    alice_membership = Membership.objects.get(user=alice)
    client.post(reverse("tenancy:member_role", args=[alice_membership.pk]), {"role": "viewer"})
    client.post(reverse("tenancy:member_remove", args=[alice_membership.pk]))
    assert Membership.objects.get(pk=alice_membership.pk).role == "owner"


def test_no_one_changes_their_own_membership(dave):
    from tests.conftest import signed_in

    client, mine = signed_in(dave), Membership.objects.get(user=dave)
    refused = client.post(reverse("tenancy:member_role", args=[mine.pk]), {"role": "viewer"}, follow=True)
    assert "change your own membership" in refused.content.decode()
    client.post(reverse("tenancy:member_remove", args=[mine.pk]))
    assert Membership.objects.get(pk=mine.pk).role == "admin"


def test_an_owner_removes_a_member(alice_client, bob):
    alice_client.post(reverse("tenancy:member_remove", args=[Membership.objects.get(user=bob).pk]))
    assert not Membership.objects.filter(user=bob).exists()


def test_viewers_cannot_see_or_change_members(bob_client, alice):
    assert bob_client.get(reverse("tenancy:members")).status_code == 403
    target = Membership.objects.get(user=alice).pk
    assert bob_client.post(reverse("tenancy:member_remove", args=[target])).status_code == 403


def test_charlie_cannot_change_acmes_members(charlie_client, bob):
    membership = Membership.objects.get(user=bob)
    assert charlie_client.post(reverse("tenancy:member_role", args=[membership.pk]), {"role": "owner"}).status_code == 404
    assert charlie_client.post(reverse("tenancy:member_remove", args=[membership.pk])).status_code == 404
    assert Membership.objects.get(pk=membership.pk).role == "viewer"
    assert "bob@example.org" not in charlie_client.get(reverse("tenancy:members")).content.decode()
