"""Start, pause, resume, cancel and complete: validated, recorded with who, queued calls withdrawn."""

import datetime

import pytest
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import Call, Campaign, CampaignEvent, Contact, InvalidTransition
from tests.conftest import make_call, make_contact


def running(campaign, alice, contacts=1):
    for _ in range(contacts):
        make_contact(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=contacts)
    campaign.refresh_from_db()
    return lifecycle.start_campaign(campaign, by=alice)


def test_starting_records_who_started_it(campaign, alice):
    running(campaign, alice)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.RUNNING
    event = CampaignEvent.objects.get(campaign=campaign)
    assert (event.action, event.by, event.workspace_id) == ("started", alice, campaign.workspace_id)


def test_it_refuses_to_start_a_campaign_without_contacts(campaign, alice):
    with pytest.raises(InvalidTransition, match="needs contacts"):
        lifecycle.start_campaign(campaign, by=alice)
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT
    assert not CampaignEvent.objects.exists()


def test_it_refuses_an_impossible_change_and_records_nothing(campaign, alice):
    with pytest.raises(InvalidTransition):
        lifecycle.resume_campaign(campaign, by=alice)
    assert not CampaignEvent.objects.exists()


def test_pausing_withdraws_queued_calls_and_gives_the_attempt_back(campaign, alice):
    running(campaign, alice, contacts=2)
    queued_contact, live_contact = Contact.objects.order_by("pk")
    Contact.objects.update(state=Contact.State.CALLING, attempts=1)
    make_call(campaign, contact=queued_contact, attempt=1)
    make_call(campaign, contact=live_contact, attempt=1, state=Call.State.RINGING)
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=2, calls_live=2)

    lifecycle.pause_campaign(campaign, by=alice)

    campaign.refresh_from_db()
    assert (campaign.state, campaign.calls_total, campaign.calls_live) == ("paused", 1, 1)
    assert list(Call.objects.values_list("state", flat=True)) == ["ringing"]  # the live call finishes
    queued_contact.refresh_from_db()
    assert (queued_contact.state, queued_contact.attempts) == ("pending", 0)


def test_resuming_clears_the_error_and_starts_with_an_empty_bucket(campaign, alice):
    running(campaign, alice)
    lifecycle.pause_for_error(campaign, "Exotel refused the account's credentials")
    campaign.refresh_from_db()
    assert campaign.last_error.startswith("Exotel refused")
    assert CampaignEvent.objects.filter(action="paused", by=None).exists()
    Campaign.objects.filter(pk=campaign.pk).update(pace_credit=50)

    lifecycle.resume_campaign(campaign, by=alice)

    campaign.refresh_from_db()
    assert (campaign.state, campaign.last_error, campaign.pace_credit) == ("running", "", 0)


def test_an_error_on_a_campaign_that_is_not_running_is_shown_without_a_state_change(campaign):
    assert lifecycle.pause_for_error(campaign, "no balance") is False
    campaign.refresh_from_db()
    assert (campaign.state, campaign.last_error) == ("draft", "no balance")


def test_cancelling_closes_pending_contacts_and_counts_them_done(campaign, alice):
    running(campaign, alice, contacts=3)
    first = Contact.objects.order_by("pk").first()
    Contact.objects.filter(pk=first.pk).update(state=Contact.State.CALLING, attempts=1)
    make_call(campaign, contact=first, attempt=1, state=Call.State.IN_PROGRESS)

    lifecycle.cancel_campaign(campaign, by=alice)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    assert campaign.contacts_done == 2
    assert sorted(Contact.objects.values_list("state", flat=True)) == ["calling", "cancelled", "cancelled"]


def test_a_campaign_completes_once_every_contact_is_final_and_no_call_is_live(campaign, alice):
    running(campaign, alice, contacts=2)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_done=2, calls_live=1)
    assert lifecycle.complete_if_done(campaign) is False
    Campaign.objects.filter(pk=campaign.pk).update(calls_live=0)
    assert lifecycle.complete_if_done(campaign) is True
    assert lifecycle.complete_if_done(campaign) is False  # once
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.COMPLETED
    assert CampaignEvent.objects.filter(action="completed", by=None).count() == 1


def test_a_campaign_starting_later_is_scheduled_and_begins_on_time(campaign, alice):
    start = timezone.now() + datetime.timedelta(hours=2)
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=start)
    campaign.refresh_from_db()
    make_contact(campaign)
    lifecycle.start_campaign(campaign, by=alice)
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.SCHEDULED

    assert lifecycle.begin_due_campaigns(now=start - datetime.timedelta(seconds=1)) == 0
    assert lifecycle.begin_due_campaigns(now=start) == 1
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.RUNNING
    actions = list(CampaignEvent.objects.order_by("at").values_list("action", "by"))
    assert actions == [("scheduled", alice.pk), ("began", None)]


def test_a_paused_scheduled_campaign_does_not_begin(campaign, alice):
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=timezone.now() + datetime.timedelta(hours=2))
    campaign.refresh_from_db()
    make_contact(campaign)
    lifecycle.start_campaign(campaign, by=alice)
    lifecycle.pause_campaign(campaign, by=alice)
    assert lifecycle.begin_due_campaigns(now=timezone.now() + datetime.timedelta(days=1)) == 0
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.PAUSED
