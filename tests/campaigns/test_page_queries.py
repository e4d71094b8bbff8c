"""Every list page answers in a number of queries that does not grow with its rows (no N+1)."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, DoNotCall
from tenancy.models import Exophone, Role
from tests.conftest import make_account, make_call, make_campaign, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    # Members are made by the dozen here; their password hashes are not what is tested.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def grow(acme, n: int) -> None:
    """n more of every kind of row a list page shows."""
    start = DoNotCall.objects.count()
    for i in range(start, start + n):
        account = make_account(acme, label=f"A{i}", account_sid=f"sid{i}")
        Exophone.objects.create(workspace=acme, account=account, number=f"+9180474918{i:02d}")
        campaign = make_campaign(acme, name=f"C{i}", account=account, state=Campaign.State.RUNNING)
        make_call(campaign, state="completed")
        DoNotCall.objects.create(workspace=acme, phone=f"+9198111111{i:02d}")
        make_user(f"user{i}@example.org", acme, Role.VIEWER)


@pytest.mark.parametrize("name", [
    "campaigns:overview", "campaigns:wallboard", "campaigns:list", "campaigns:calls", "campaigns:dnc", "tenancy:accounts",
    "tenancy:members", "tenancy:endpoints",
])
def test_the_page_does_not_grow_queries_with_rows(alice_client, acme, name, django_assert_max_num_queries):
    grow(acme, 2)
    with django_assert_max_num_queries(20) as few:
        assert alice_client.get(reverse(name)).status_code == 200
    grow(acme, 8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        alice_client.get(reverse(name))
