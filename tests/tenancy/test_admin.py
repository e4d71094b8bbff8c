import pytest
from django.contrib.auth.models import Permission

from tenancy.models import Membership, Role
from tests.conftest import make_campaign, signed_in


@pytest.fixture
def staff_client(acme, django_user_model):
    dora = django_user_model.objects.create_user("dora@example.org", password="x", is_staff=True)
    dora.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=dora, workspace=acme, role=Role.ADMIN)
    return signed_in(dora)


def test_staff_see_only_their_workspaces_rows(staff_client, acme, globex):
    make_campaign(acme, name="Acme renewals")
    make_campaign(globex, name="Globex winback")
    page = staff_client.get("/admin/campaigns/campaign/").content.decode()
    assert "Acme renewals" in page
    assert "Globex winback" not in page


def test_staff_cannot_open_another_workspaces_row(staff_client, globex):
    other = make_campaign(globex, name="Globex winback")
    response = staff_client.get(f"/admin/campaigns/campaign/{other.pk}/change/", follow=True)
    assert "Globex winback" not in response.content.decode()
    assert "doesn’t exist" in response.content.decode()


def test_staff_see_only_their_workspaces(staff_client, acme, globex):
    page = staff_client.get("/admin/tenancy/workspace/").content.decode()
    assert "Acme" in page and "Globex" not in page


def test_the_admin_never_shows_credentials(staff_client, campaign):
    account = campaign.account
    page = staff_client.get(f"/admin/tenancy/exotelaccount/{account.pk}/change/").content.decode()
    listing = staff_client.get("/admin/tenancy/exotelaccount/").content.decode()
    assert account.api_token not in page + listing
    assert account.api_key not in page + listing


def test_a_superuser_sees_every_workspace(admin_client, acme, globex):
    make_campaign(acme, name="Acme renewals")
    make_campaign(globex, name="Globex winback")
    page = admin_client.get("/admin/campaigns/campaign/").content.decode()
    assert "Acme renewals" in page and "Globex winback" in page
