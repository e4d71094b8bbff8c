"""The admin for staff who are not superusers: scoped like the pages, rights by workspace role.

dora is staff with every model permission; what she reaches is decided by her workspace roles alone.
"""

import pytest
from django.contrib.auth.models import Permission
from django.db.models import F
from django.db.models.signals import pre_save

from campaigns.models import Campaign, CampaignEvent
from tenancy.models import Exophone, Membership, Role
from tests.conftest import make_account, make_call, make_campaign, make_contact, signed_in


def make_staff(django_user_model, workspace, role: Role, email="dora@example.org"):
    user = django_user_model.objects.create_user(email, email=email, password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=user, workspace=workspace, role=role)
    return user


@pytest.fixture
def dora(acme, django_user_model):
    return make_staff(django_user_model, acme, Role.ADMIN)


@pytest.fixture
def staff_client(dora):
    return signed_in(dora)


@pytest.fixture
def globex_call(globex, charlie):
    account = make_account(globex, label="Globex line")
    exophone = Exophone.objects.create(workspace=globex, account=account, number="+918047400001")
    campaign = make_campaign(globex, name="Globex winback", account=account, exophones=[exophone])
    return make_call(campaign, contact=make_contact(campaign, name="Gloria Secret", phone="+919811122233"))


def page(client, url) -> str:
    return client.get(url).content.decode()


def act(client, model_url, action, *rows):
    return client.post(model_url, {"action": action, "_selected_action": [row.pk for row in rows]}, follow=True)


def test_staff_see_only_their_workspaces_rows(staff_client, acme, globex):
    make_campaign(acme, name="Acme renewals")
    make_campaign(globex, name="Globex winback")
    listing = page(staff_client, "/admin/campaigns/campaign/")
    assert "Acme renewals" in listing
    assert "Globex winback" not in listing


def test_staff_cannot_open_another_workspaces_row(staff_client, globex):
    other = make_campaign(globex, name="Globex winback")
    response = staff_client.get(f"/admin/campaigns/campaign/{other.pk}/change/", follow=True)
    assert "Globex winback" not in response.content.decode()
    assert "doesn’t exist" in response.content.decode()


def test_staff_see_only_their_workspaces(staff_client, acme, globex):
    listing = page(staff_client, "/admin/tenancy/workspace/")
    assert "Acme" in listing and "Globex" not in listing


@pytest.mark.parametrize("url", [
    "/admin/campaigns/call/add/?contact={contact}&campaign={campaign}",
    "/admin/campaigns/contact/add/?campaign={campaign}",
    "/admin/streams/streamsession/add/?call={call}",
    "/admin/callbacks/webhookevent/add/?call={call}",
    "/admin/campaigns/campaign/add/?account={account}&exophones={exophone}&created_by={charlie}",
    "/admin/tenancy/exophone/add/?account={account}",
])
def test_add_pages_label_no_other_workspaces_row(staff_client, globex_call, charlie, url):
    campaign = globex_call.campaign
    shown = page(staff_client, url.format(
        contact=globex_call.contact_id, campaign=campaign.pk, call=globex_call.pk, account=campaign.account_id,
        exophone=campaign.exophones.get().pk, charlie=charlie.pk,
    ))
    for secret in ("Gloria Secret", "+919811122233", "Globex", campaign.exophones.get().number, charlie.email):
        assert secret not in shown


def test_filters_and_choices_come_from_the_staff_members_workspaces(staff_client, campaign, globex_call, charlie):
    assert "Globex" not in page(staff_client, "/admin/campaigns/campaign/")
    assert "Globex" not in page(staff_client, "/admin/tenancy/membership/")
    assert charlie.email not in page(staff_client, "/admin/campaigns/campaign/add/")
    assert charlie.email not in page(staff_client, "/admin/auth/user/")


def test_user_lookups_find_no_one_outside_the_staff_members_workspaces(staff_client, charlie):
    found = page(staff_client, "/admin/autocomplete/?app_label=tenancy&model_name=membership&field_name=user&term=char")
    assert charlie.email not in found


def test_staff_cannot_make_themselves_superuser(staff_client, dora):
    form = {"username": dora.username, "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "date_joined_0": "2026-12-01", "date_joined_1": "10:00:00"}
    staff_client.post(f"/admin/auth/user/{dora.pk}/change/", form)
    dora.refresh_from_db()
    assert not dora.is_superuser


def test_admin_rights_follow_the_workspace_role(django_user_model, acme, campaign):
    vera = make_staff(django_user_model, acme, Role.VIEWER, email="vera@example.org")
    client = signed_in(vera)
    assert campaign.name not in page(client, "/admin/campaigns/campaign/")
    assert "Acme" not in page(client, "/admin/tenancy/workspace/")


def test_a_staff_viewer_cannot_promote_themself(django_user_model, acme, alice):
    vera = make_staff(django_user_model, acme, Role.VIEWER, email="vera@example.org")
    client, mine = signed_in(vera), Membership.objects.get(user=vera)
    client.post(f"/admin/tenancy/membership/{mine.pk}/change/", {"user": vera.pk, "workspace": acme.pk, "role": "owner"})
    act(client, "/admin/tenancy/membership/", "make_owner", mine)
    assert Membership.objects.get(pk=mine.pk).role == Role.VIEWER


def test_roles_change_through_the_members_service(staff_client, dora, bob, alice):
    bobs, alices = Membership.objects.get(user=bob), Membership.objects.get(user=alice)
    assert "Only an owner" in act(staff_client, "/admin/tenancy/membership/", "make_owner", bobs).content.decode()
    act(staff_client, "/admin/tenancy/membership/", "make_operator", bobs)
    assert Membership.objects.get(pk=bobs.pk).role == Role.OPERATOR
    assert "own membership" in act(staff_client, "/admin/tenancy/membership/", "make_viewer",
                                   Membership.objects.get(user=dora)).content.decode()
    act(staff_client, "/admin/tenancy/membership/", "remove", alices)
    assert Membership.objects.get(pk=alices.pk).role == Role.OWNER
    staff_client.post(f"/admin/tenancy/membership/{bobs.pk}/change/", {"role": "admin"})
    assert Membership.objects.get(pk=bobs.pk).role == Role.OPERATOR


def test_even_a_superuser_keeps_the_last_owner(admin_client, alice):
    alices = Membership.objects.get(user=alice)
    refused = act(admin_client, "/admin/tenancy/membership/", "make_viewer", alices).content.decode()
    assert "needs an owner" in refused
    assert Membership.objects.get(pk=alices.pk).role == Role.OWNER


def campaign_form(campaign, **changes) -> dict:
    fields = {
        "workspace": campaign.workspace_id, "name": campaign.name, "account": campaign.account_id,
        "exophones": [campaign.exophones.get().pk], "connect_mode": campaign.connect_mode, "bot_kind": campaign.bot_kind,
        "bot_settings": "{}", "sample_rate": campaign.sample_rate, "recording": campaign.recording,
        "time_limit": campaign.time_limit, "window_start": "09:00", "window_end": "21:00", "weekdays": "[1, 2, 3]",
        "time_zone": campaign.time_zone, "calls_per_minute": 10, "max_concurrent": 5, "max_attempts": 3,
        "retry_after_minutes": 30, "retry_on": '["busy"]', "state": Campaign.State.RUNNING,
        "machine_detection": "off", "on_machine": "hang_up",
    }
    return {**fields, **changes}


def test_staff_of_two_workspaces_cannot_link_rows_across_them(django_user_model, acme, globex, campaign, globex_call):
    both = make_staff(django_user_model, acme, Role.ADMIN)
    Membership.objects.create(user=both, workspace=globex, role=Role.ADMIN)
    form = campaign_form(campaign, name="Crossed", account=globex_call.campaign.account_id)
    response = signed_in(both).post("/admin/campaigns/campaign/add/", form)
    assert "same workspace" in response.content.decode()
    assert not Campaign.objects.filter(name="Crossed").exists()


def test_an_admin_edit_keeps_what_the_engine_counts_meanwhile(staff_client, campaign):
    def engine_counts_a_call(sender, instance, **kwargs):
        # The dispatcher's F() update lands between the admin's read and its write.
        Campaign.objects.filter(pk=instance.pk).update(calls_total=F("calls_total") + 1, calls_live=F("calls_live") + 1)

    pre_save.connect(engine_counts_a_call, sender=Campaign)
    try:
        response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", campaign_form(campaign, name="New"))
    finally:
        pre_save.disconnect(engine_counts_a_call, sender=Campaign)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "New"
    assert (campaign.calls_total, campaign.calls_live) == (1, 1)
    assert campaign.state == Campaign.State.DRAFT


def test_lifecycle_changes_are_admin_actions(staff_client, dora, campaign):
    refused = act(staff_client, "/admin/campaigns/campaign/", "start", campaign).content.decode()
    assert "needs contacts" in refused
    make_contact(campaign)
    act(staff_client, "/admin/campaigns/campaign/", "start", campaign)
    act(staff_client, "/admin/campaigns/campaign/", "pause", campaign)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED
    assert list(CampaignEvent.objects.filter(campaign=campaign, by=dora).values_list("action", flat=True)) == [
        "paused", "started"
    ]


def test_the_breaker_is_the_engines_not_a_hand_edit(staff_client, campaign):
    exophone = campaign.exophones.get()
    exophone.breaker, exophone.breaker_reason = Exophone.Breaker.OPEN, "Exotel refused 4 with a 5xx"
    exophone.save()
    response = staff_client.post(f"/admin/tenancy/exophone/{exophone.pk}/change/", {
        "workspace": exophone.workspace_id, "account": exophone.account_id, "number": exophone.number,
        "label": "Renamed", "breaker": Exophone.Breaker.CLOSED, "breaker_reason": "",
    })
    assert response.status_code == 302
    exophone.refresh_from_db()
    assert exophone.label == "Renamed"
    assert (exophone.breaker, exophone.breaker_reason) == (Exophone.Breaker.OPEN, "Exotel refused 4 with a 5xx")


def test_the_admin_never_shows_credentials(staff_client, campaign):
    account = campaign.account
    shown = page(staff_client, f"/admin/tenancy/exotelaccount/{account.pk}/change/")
    listing = page(staff_client, "/admin/tenancy/exotelaccount/")
    assert account.api_token not in shown + listing
    assert account.api_key not in shown + listing


def test_a_superuser_sees_every_workspace(admin_client, acme, globex):
    make_campaign(acme, name="Acme renewals")
    make_campaign(globex, name="Globex winback")
    listing = page(admin_client, "/admin/campaigns/campaign/")
    assert "Acme renewals" in listing and "Globex winback" in listing
