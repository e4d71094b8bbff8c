import pytest
from django.utils import timezone

from campaigns.models import Call, Campaign, Contact
from tests.conftest import make_call, make_contact


def dialled(campaign, **overrides) -> Call:
    """A call that place_call has sent: its contact calling, the campaign counting it live."""
    contact = make_contact(campaign, state=Contact.State.CALLING, attempts=1)
    fields = {"attempt": 1, "state": Call.State.DIALING, "dialed_at": timezone.now(), "exotel_sid": "CAa1b2c3d4e5f6"}
    call = make_call(campaign, contact=contact, **{**fields, **overrides})
    Campaign.objects.filter(pk=campaign.pk).update(
        state=Campaign.State.RUNNING, contacts_total=1, calls_total=1, calls_live=1, max_attempts=2
    )
    return call


@pytest.fixture
def call(campaign):
    return dialled(campaign)


@pytest.fixture
def leg_call(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(connect_mode=Campaign.ConnectMode.LEGS, greeting_text="Hello")
    return dialled(campaign, exotel_sid="", leg_sid="a1b2c3d4e5f6a7b8c9d0")
