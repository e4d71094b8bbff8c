"""Members and roles: admins manage them; owners alone make owners; no one locks a workspace out."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tenancy.models import Invitation, Membership, Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(acme):
    return make_user("dave@example.org", acme, Role.ADMIN)


def invite(client, email, role="operator"):
    return client.post(reverse("tenancy:members"), {"email": email, "role": role}, follow=True)


def link_in(message) -> str:
    return re.search(r"https?://\S+(/workspaces/invitations/\S+/)", message.body).group(1)


def test_the_answer_is_the_same_whether_the_address_has_an_account_or_not(alice_client, charlie, acme):
    answers = []
    for email in ("charlie@example.org", "nobody@example.org"):
        response = invite(alice_client, email)
        answers.append((response.redirect_chain, [str(m).replace(email, "ADDRESS") for m in response.context["messages"]]))
        assert link_in(mail.outbox[-1]) not in response.content.decode()  # only the mailbox gets the link
    assert answers[0] == answers[1]
    assert answers[0][1] == ["Invitation mailed to ADDRESS. Its link works for 7 days, for that address only."]
    assert not Membership.objects.filter(user=charlie, workspace=acme).exists()  # no one is attached unasked
    assert [m.to for m in mail.outbox] == [["charlie@example.org"], ["nobody@example.org"]]


def test_an_existing_user_accepts_signed_in_and_gets_the_invited_role(alice_client, charlie, charlie_client, acme):
    invite(alice_client, "Charlie@Example.org", role="operator")
    link = link_in(mail.outbox[0])
    assert "Join Acme" in charlie_client.get(link).content.decode()
    assert charlie_client.post(link).status_code == 302
    assert Membership.objects.get(user=charlie, workspace=acme).role == "operator"
    assert not Invitation.objects.exists()
    assert charlie_client.get(link).status_code == 404  # used up


def test_a_new_address_creates_its_account_through_the_link(client, alice_client, acme):
    invite(alice_client, "erin@example.org", role="viewer")
    link = link_in(mail.outbox[0])
    refused = client.post(link, {"password1": "a long first password", "password2": "another one"})
    assert "The two passwords differ" in refused.content.decode()
    response = client.post(link, {"password1": "a long first password", "password2": "a long first password"})
    assert response.status_code == 302
    erin = get_user_model().objects.get(username="erin@example.org")
    assert erin.check_password("a long first password") and client.session["_auth_user_id"] == str(erin.pk)
    assert Membership.objects.get(user=erin, workspace=acme).role == "viewer"


def test_no_one_else_can_accept(alice_client, bob_client, client, charlie, acme):
    invite(alice_client, "charlie@example.org")
    link = link_in(mail.outbox[0])
    # Signed in as someone else: refused.
    assert "sign in with that address" in bob_client.post(link, follow=True).content.decode()
    # Not signed in: the existing account's password is needed, a new account cannot take the address.
    response = client.post(link, {"password1": "a long first password", "password2": "a long first password"})
    assert "exists: sign in to accept" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not Membership.objects.filter(workspace=acme, user=charlie).exists()
    assert Invitation.objects.exists()


def test_an_expired_forged_or_withdrawn_link_is_refused(alice_client, charlie_client, charlie, acme):
    invite(alice_client, "charlie@example.org")
    link = link_in(mail.outbox[0])
    Invitation.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert charlie_client.get(link).status_code == 404
    assert charlie_client.post(link).status_code == 404
    assert charlie_client.get(link.replace(":", ":x", 1)).status_code == 404
    invite(alice_client, "charlie@example.org")  # inviting again renews the link
    link = link_in(mail.outbox[1])
    assert charlie_client.get(link).status_code == 200
    invitation = Invitation.objects.get()
    assert charlie_client.post(reverse("tenancy:invitation_withdraw", args=[invitation.pk])).status_code == 404
    alice_client.post(reverse("tenancy:invitation_withdraw", args=[invitation.pk]))
    assert charlie_client.post(link).status_code == 404
    assert not Membership.objects.filter(workspace=acme, user=charlie).exists()


def test_only_an_owner_invites_an_owner_and_members_are_not_invited_again(dave, bob):
    from tests.conftest import signed_in

    client = signed_in(dave)
    assert "Only an owner" in invite(client, "erin@example.org", role="owner").content.decode()
    assert "already a member" in invite(client, "bob@example.org").content.decode()
    assert not mail.outbox


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
