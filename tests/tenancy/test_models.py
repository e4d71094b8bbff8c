import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from campaigns.models import Call, Campaign, Contact, InvalidTransition, sources_of
from tenancy.models import ExotelAccount, Membership, Role, validate_e164
from tests.conftest import make_call, make_contact


@pytest.mark.parametrize("number", ["+919876543210", "+6591234567", "+14155550123"])
def test_it_accepts_valid_e164_numbers(number):
    validate_e164(number)


@pytest.mark.parametrize("number", ["9876543210", "+91 98765 43210", "+91987654", "09876543210", "+9198765432100", "call me"])
def test_it_refuses_numbers_not_in_e164(number):
    with pytest.raises(ValidationError):
        validate_e164(number)


@pytest.mark.parametrize(("api_base_url", "simulator"), [
    ("", False), ("https://api.in.exotel.com", False), ("https://10.0.0.5:8443", False),
    ("http://127.0.0.1:8765", True), ("http://localhost:8765", True), ("http://[::1]:8765", True),
])
def test_only_an_api_on_this_machine_is_the_simulators(api_base_url, simulator):
    assert ExotelAccount(api_base_url=api_base_url).is_simulator is simulator


def test_a_contact_is_unique_per_campaign(campaign):
    make_contact(campaign, phone="+919876543210")
    with pytest.raises(IntegrityError):
        make_contact(campaign, phone="+919876543210")


def test_the_same_phone_may_be_in_two_campaigns(campaign, acme):
    from tests.conftest import make_campaign

    other = make_campaign(acme, account=campaign.account, exophones=list(campaign.exophones.all()))
    make_contact(campaign, phone="+919876543210")
    make_contact(other, phone="+919876543210")


def test_a_contact_validates_its_phone(campaign):
    contact = Contact(workspace=campaign.workspace, campaign=campaign, phone="98765")
    with pytest.raises(ValidationError) as error:
        contact.full_clean()
    assert "phone" in error.value.message_dict


def test_a_call_is_unique_per_attempt(campaign):
    call = make_call(campaign)
    with pytest.raises(IntegrityError):
        make_call(campaign, contact=call.contact, attempt=call.attempt)


def test_a_call_stamps_the_time_of_each_transition(campaign):
    call = make_call(campaign)
    assert call.transition(Call.State.DIALING) == ["state", "dialed_at"]
    assert call.transition(Call.State.RINGING) == ["state", "ringing_at"]
    assert call.transition(Call.State.IN_PROGRESS) == ["state", "answered_at"]
    assert call.transition(Call.State.COMPLETED) == ["state", "ended_at"]
    assert call.dialed_at <= call.ringing_at <= call.answered_at <= call.ended_at


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Call.State.COMPLETED, Call.State.IN_PROGRESS),  # a late callback must not reopen a call
        (Call.State.BUSY, Call.State.COMPLETED),
        (Call.State.QUEUED, Call.State.COMPLETED),
        (Call.State.IN_PROGRESS, Call.State.RINGING),
    ],
)
def test_a_call_refuses_impossible_transitions(campaign, current, new):
    call = make_call(campaign, state=current)
    with pytest.raises(InvalidTransition):
        call.transition(new)
    assert call.state == current


def test_sources_of_lists_the_states_a_transition_may_start_from():
    assert set(sources_of(Call.TRANSITIONS, Call.State.IN_PROGRESS)) == {
        Call.State.DIALING, Call.State.UNKNOWN, Call.State.RINGING
    }
    assert sources_of(Call.TRANSITIONS, Call.State.QUEUED) == [Call.State.DIALING]


def test_a_campaign_moves_through_its_lifecycle(campaign):
    for state in [Campaign.State.RUNNING, Campaign.State.PAUSED, Campaign.State.RUNNING, Campaign.State.COMPLETED]:
        campaign.transition(state)
    with pytest.raises(InvalidTransition):
        campaign.transition(Campaign.State.RUNNING)


def test_a_contact_refuses_to_be_called_after_it_is_done(campaign):
    contact = make_contact(campaign, state=Contact.State.DONE)
    with pytest.raises(InvalidTransition):
        contact.transition(Contact.State.CALLING)


def test_a_campaign_validates_its_settings(campaign):
    campaign.connect_mode = Campaign.ConnectMode.FLOW
    campaign.time_limit = 20000
    campaign.retry_on = ["busy", "sometimes"]
    campaign.weekdays = [0, 8]
    with pytest.raises(ValidationError) as error:
        campaign.full_clean()
    assert {"flow_url", "time_limit", "retry_on", "weekdays"} <= set(error.value.message_dict)


def test_the_database_refuses_a_time_limit_over_four_hours(campaign):
    with pytest.raises(IntegrityError):
        Campaign.objects.filter(pk=campaign.pk).update(time_limit=14401)


def test_a_user_has_one_membership_per_workspace(alice, acme):
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=alice, workspace=acme, role=Role.VIEWER)


def test_roles_are_ordered(alice, bob):
    owner, viewer = alice.memberships.get(), bob.memberships.get()
    assert owner.can(Role.ADMIN) and owner.can(Role.VIEWER)
    assert viewer.can(Role.VIEWER) and not viewer.can(Role.OPERATOR)


def test_rotating_the_webhook_token_changes_it(acme):
    old = acme.webhook_token
    acme.rotate_webhook_token()
    acme.refresh_from_db()
    assert acme.webhook_token != old and len(acme.webhook_token) >= 32
