"""One clock and readable numbers: every page and the admin in the workspace's zone, named; numbers grouped."""

import datetime

import pytest
from django.urls import reverse

from campaigns.models import Call
from tenancy.models import Role, Workspace
from tenancy.templatetags.phones import grouped, phone
from tests.conftest import make_call, signed_in
from tests.tenancy.test_admin import make_staff

MIDDAY_UTC = datetime.datetime(2026, 12, 2, 6, 30, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("number", "shown"), [
    ("+919812345601", "+91 98123 45601"),
    ("+918047491899", "+91 80 4749 1899"),
    ("+6281234567890", "+62 812-3456-7890"),
    ("+91123", "+91123"),  # not a possible number: as typed
    ("not a number", "not a number"),
])
def test_numbers_are_grouped_as_people_read_them(number, shown):
    assert grouped(number) == shown


def test_the_grouped_number_keeps_its_e164_value_and_escapes_what_it_is_given():
    assert phone("+919812345601") == '<data value="+919812345601">+91 98123 45601</data>'
    assert "<b>" not in phone("<b>+91</b>")


@pytest.fixture
def in_jakarta(acme, campaign):
    Workspace.objects.filter(pk=acme.pk).update(time_zone="Asia/Jakarta")
    call = make_call(campaign)
    Call.objects.filter(pk=call.pk).update(created_at=MIDDAY_UTC)
    campaign.account.streams_read_at = MIDDAY_UTC
    campaign.account.save()
    return call


@pytest.mark.django_db
def test_pages_show_the_workspaces_clock_and_name_it(alice_client, in_jakarta):
    overview = alice_client.get(reverse("campaigns:overview")).content.decode()
    assert "times in Asia/Jakarta" in overview
    assert "2026-12-02 13:30 WIB" in overview  # the stream reading: 06:30 UTC is 13:30 in Jakarta
    calls = alice_client.get(reverse("campaigns:calls")).content.decode()
    assert "2026-12-02 13:30:00" in calls
    assert f'<data value="{in_jakarta.phone}">' in calls


@pytest.mark.django_db
def test_the_admin_keeps_the_staff_members_workspace_clock(acme, in_jakarta, django_user_model):
    staff = signed_in(make_staff(django_user_model, acme, Role.ADMIN))
    listing = staff.get("/admin/campaigns/call/").content.decode()
    assert "2026-12-02 13:30 WIB" in listing
