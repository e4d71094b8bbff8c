"""Cloning a campaign's settings, and re-calling its contacts by outcome as a new draft campaign."""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.forms import CampaignForm, VariantForm
from campaigns.models import Campaign, CampaignEvent, Contact, DoNotCall, Variant
from tenancy.models import Exophone, Role
from tests.conftest import make_call, make_campaign, make_contact, make_user, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(acme):
    """A campaign with settings unlike the defaults, a pool of two numbers, contacts, calls and counters."""
    campaign = make_campaign(acme, name="Spring", connect_mode="legs", greeting_text="Hello", calls_per_minute=7,
                             max_concurrent=3, max_attempts=5, retry_on=["busy"], bot_kind="script",
                             bot_settings={"steps": [{"say": "hello"}, {"hangup": True}]}, sample_rate=16000,
                             window_start=datetime.time(10), window_end=datetime.time(18), weekdays=[1, 3],
                             time_zone="Asia/Dubai", starts_at=timezone.now() - datetime.timedelta(days=3),
                             ends_at=timezone.now() + datetime.timedelta(days=30), state=Campaign.State.RUNNING,
                             contacts_total=1, calls_total=1, calls_answered=1, pace_credit=3.5,
                             budget=Decimal("1250.50"))
    campaign.exophones.add(Exophone.objects.create(workspace=acme, account=campaign.account, number="+918047491800"))
    make_call(campaign, state="completed")
    for name, weight, greeting in [("control", 3, "Hello"), ("warmer", 1, "Namaste, a good day to you")]:
        Variant.objects.create(workspace=acme, campaign=campaign, name=name, weight=weight, greeting_text=greeting,
                               bot_kind="script", bot_settings={"steps": [{"say": name}]})
    return campaign


def recall_form(**overrides):
    day = yesterday()
    return {"name": "Spring again", "outcomes": ["no-answer"], "since": day, "until": day, **overrides}


def yesterday() -> datetime.date:
    return timezone.localdate(timezone=zoneinfo.ZoneInfo("Asia/Kolkata")) - datetime.timedelta(days=1)


def local(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zoneinfo.ZoneInfo("Asia/Kolkata"))


def test_a_clone_has_every_setting_of_the_form_and_nothing_of_the_run(alice_client, alice, configured):
    response = alice_client.post(reverse("campaigns:clone", args=[configured.pk]), {"name": "Spring copy"})
    copy = Campaign.objects.get(name="Spring copy")
    assert response.status_code == 302 and response.url == reverse("campaigns:edit", args=[copy.pk])
    # Whatever fields the form gains, the clone takes them (but a start already past).
    for name in CampaignForm.Meta.fields:
        if name not in ("name", "exophones", "starts_at"):
            assert getattr(copy, name) == getattr(configured, name), name
    assert set(copy.exophones.all()) == set(configured.exophones.all()) and copy.exophones.count() == 2
    fields = VariantForm.Meta.fields
    assert list(copy.variants.values(*fields)) == list(configured.variants.values(*fields))
    assert copy.variants.count() == 2 and not copy.variants.filter(pk__in=configured.variants.all()).exists()
    assert copy.starts_at is None and copy.ends_at == configured.ends_at
    assert (copy.state, copy.contacts_total, copy.calls_total, copy.calls_answered, copy.pace_credit) == (
        "draft", 0, 0, 0, 0)
    assert not copy.contacts.exists() and not copy.calls.exists() and copy.created_by == alice
    assert CampaignEvent.objects.get(campaign=copy).note == f"Cloned from Spring (#{configured.pk})."


def test_the_recall_takes_the_contacts_whose_last_call_yesterday_had_the_outcome(alice_client, campaign):
    day = yesterday()
    wanted = make_contact(campaign, name="Late evening", variables={"plan": "gold"}, time_zone="Asia/Kolkata")
    make_call(campaign, contact=wanted, state="no-answer", created_at=local(day, 23, 50))
    answered_since = make_contact(campaign, name="Answered today")
    make_call(campaign, contact=answered_since, state="no-answer", created_at=local(day, 10))
    make_call(campaign, contact=answered_since, attempt=2, state="completed", created_at=local(day, 12))
    today = make_contact(campaign, name="After midnight")  # yesterday in UTC, today in Kolkata
    make_call(campaign, contact=today, state="no-answer", created_at=local(day + datetime.timedelta(days=1), 0, 30))
    busy = make_contact(campaign, name="Busy")
    make_call(campaign, contact=busy, state="busy", created_at=local(day, 11))
    listed = make_contact(campaign, name="Opted out")
    make_call(campaign, contact=listed, state="no-answer", created_at=local(day, 9))
    DoNotCall.objects.create(workspace=campaign.workspace, phone=listed.phone)

    response = alice_client.post(reverse("campaigns:recall", args=[campaign.pk]), recall_form(), follow=True)

    copy = Campaign.objects.get(name="Spring again")
    assert response.redirect_chain[-1][0] == copy.get_absolute_url()
    assert "with 1 contact; 1 on the do-not-call list left out" in response.content.decode()
    assert copy.state == "draft" and copy.contacts_total == 1
    (contact,) = Contact.objects.filter(campaign=copy)
    assert (contact.phone, contact.name, contact.variables, contact.time_zone, contact.state) == (
        wanted.phone, "Late evening", {"plan": "gold"}, "Asia/Kolkata", "pending")
    assert contact.workspace == campaign.workspace and contact.recipient_id == wanted.recipient_id


def test_the_recall_chooses_by_several_outcomes_and_dispositions_over_days(alice_client, campaign):
    day = yesterday()
    for name, state, disposition, days_ago in [("Busy", "busy", "", 0), ("Keen", "completed", "interested", 1),
                                               ("Bored", "completed", "not_interested", 1), ("Old", "busy", "", 3)]:
        contact = make_contact(campaign, name=name)
        make_call(campaign, contact=contact, state=state, disposition=disposition,
                  answered_at=timezone.now() if state == "completed" else None,
                  created_at=local(day - datetime.timedelta(days=days_ago), 12))
    form = recall_form(outcomes=["busy"], dispositions=["interested"], since=day - datetime.timedelta(days=2))
    alice_client.post(reverse("campaigns:recall", args=[campaign.pk]), form)
    names = Contact.objects.filter(campaign__name="Spring again").values_list("name", flat=True)
    assert sorted(names) == ["Busy", "Keen"]


def test_bad_recall_choices_are_refused_with_reasons_and_nothing_is_made(alice_client, campaign):
    url = reverse("campaigns:recall", args=[campaign.pk])
    errors = alice_client.post(url, recall_form(outcomes=[])).context["form"].errors
    assert "Choose at least one outcome or disposition" in str(errors)
    day = yesterday()
    errors = alice_client.post(url, recall_form(since=day, until=day - datetime.timedelta(days=1))).context["form"].errors
    assert "until" in errors
    errors = alice_client.post(url, recall_form(dispositions=["made-up"])).context["form"].errors
    assert "dispositions" in errors
    page = alice_client.post(url, recall_form()).content.decode()
    assert "No contact of Renewals had a last call on" in page
    assert Campaign.objects.count() == 1


def test_operators_and_above_only_and_never_another_workspaces_campaign(bob_client, charlie_client, acme, campaign):
    contact = make_contact(campaign)
    make_call(campaign, contact=contact, state="no-answer", created_at=local(yesterday(), 12))
    for name, data in [("campaigns:clone", {"name": "Mine now"}), ("campaigns:recall", recall_form(name="Mine now"))]:
        url = reverse(name, args=[campaign.pk])
        assert bob_client.post(url, data).status_code == 403  # a viewer
        assert charlie_client.get(url).status_code == 404
        assert charlie_client.post(url, data).status_code == 404
    assert not Campaign.objects.filter(name="Mine now").exists()
    operator = signed_in(make_user("olga@example.org", acme, Role.OPERATOR))
    assert operator.post(reverse("campaigns:recall", args=[campaign.pk]), recall_form(name="Olga's")).status_code == 302
    assert Campaign.objects.get(name="Olga's").contacts_total == 1
