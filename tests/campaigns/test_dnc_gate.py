"""The do-not-call gate fails closed: a workspace whose list cannot be read dials nothing, and a number
put on the list reaches every campaign of the workspace before its next dial."""

import pytest
from django.db import OperationalError

from campaigns import dialer, donotcall
from campaigns.models import Call, Campaign, Contact, DoNotCall, DoNotCallImport
from tests.campaigns.test_dispatcher import NOON_FRIDAY, seconds, start, tick
from tests.conftest import make_account, make_campaign, make_contact

FAST = {"calls_per_minute": 600, "max_concurrent": 50, "pace_credit": 10, "paced_at": NOON_FRIDAY}


def fail_for(model, workspace, monkeypatch):
    """Fault injection: the model's queries for `workspace` raise as a broken database would."""
    real = model.objects.filter

    def filter(*args, **kwargs):
        if kwargs.get("workspace_id") == workspace.pk:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(model.objects, "filter", filter)


@pytest.fixture
def globex_campaign(globex, alice):
    campaign = make_campaign(globex, account=make_account(globex, account_sid="globex1"))
    return start(campaign, alice, contacts=3, **FAST)


def test_an_import_in_progress_holds_the_workspace_and_says_why(campaign, alice, globex_campaign, sent,
                                                                  django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=3, **FAST)
    running = DoNotCallImport.objects.create(workspace=campaign.workspace, source="registry",
                                             file_date=NOON_FRIDAY.date(), region="IN")
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert not Call.objects.filter(campaign=campaign).exists()
    assert Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).count() == 3
    campaign.refresh_from_db()
    assert campaign.last_error.startswith("Dialling held: a do-not-call file is being imported")
    assert Call.objects.filter(campaign=globex_campaign).count() == 3  # another workspace dials on

    DoNotCallImport.objects.filter(pk=running.pk).update(state=DoNotCallImport.State.IMPORTED)
    tick(seconds(10), django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert Call.objects.filter(campaign=campaign).count() == 3 and campaign.last_error == ""


def test_an_error_reading_the_list_dials_nothing_for_that_workspace(campaign, alice, globex_campaign, sent,
                                                                    monkeypatch, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=3, **FAST)
    fail_for(DoNotCall, campaign.workspace, monkeypatch)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    # The contacts were claimed before the list was read: the claim was rolled back with the error.
    assert not Call.objects.filter(campaign=campaign).exists()
    assert list(Contact.objects.filter(campaign=campaign).values_list("state", "attempts").distinct()) == [
        ("pending", 0)]
    campaign.refresh_from_db()
    assert campaign.last_error == "Dialling held: the do-not-call list could not be read (OperationalError)."
    assert (campaign.calls_total, campaign.calls_live, campaign.contacts_done) == (0, 0, 0)
    assert Call.objects.filter(campaign=globex_campaign).count() == 3
    assert [len(batch) for batch in sent] == [3]  # globex's only


def test_an_error_reading_the_imports_closes_the_gate_too(campaign, alice, sent, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=2, **FAST)
    fail_for(DoNotCallImport, campaign.workspace, monkeypatch)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert not Call.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).last_error.startswith("Dialling held:")


def test_an_opt_out_reaches_the_workspaces_other_campaigns_at_once(campaign, alice, acme, sent,
                                                                   django_capture_on_commit_callbacks):
    other = make_campaign(acme, account=campaign.account)
    make_contact(campaign, phone="+919812345678")
    make_contact(other, phone="+919812345678")
    start(campaign, alice, contacts=0, **FAST)
    start(other, alice, contacts=1, **FAST)
    assert donotcall.count_blocked(other) == 0

    donotcall.add_number(acme, "+919812345678", region="IN", source=DoNotCall.Source.DTMF)
    assert donotcall.count_blocked(other) == 1 and donotcall.count_blocked(campaign) == 1
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    blocked = Contact.objects.filter(phone="+919812345678")
    assert set(blocked.values_list("state", "outcome")) == {("skipped", "do-not-call")}
    assert not Call.objects.filter(phone="+919812345678").exists()
    assert Call.objects.filter(campaign=other).count() == 1  # its other contact


def test_a_queued_call_whose_number_was_listed_meanwhile_is_withdrawn_not_dialled(
        campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=1, **FAST)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    call = Call.objects.get()
    DoNotCall.objects.create(workspace=campaign.workspace, phone=call.phone, source=DoNotCall.Source.RELAY)

    dialer.place_call(call.pk, now=seconds(1))  # returns before any Exotel client is made
    assert not Call.objects.exists()
    contact = Contact.objects.get()
    assert (contact.state, contact.outcome, contact.attempts) == ("skipped", "do-not-call", 0)
    campaign.refresh_from_db()
    assert (campaign.calls_total, campaign.calls_live, campaign.contacts_done) == (0, 0, 1)
    assert campaign.state == Campaign.State.COMPLETED


def test_a_dial_time_error_reading_the_list_leaves_the_call_queued(campaign, alice, sent, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=1, **FAST)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    call = Call.objects.get()
    monkeypatch.setattr(donotcall, "on_the_list", lambda: (_ for _ in ()).throw(OperationalError("gone")))
    with pytest.raises(OperationalError):
        dialer.place_call(call.pk, now=seconds(1))
    assert Call.objects.get().state == Call.State.QUEUED  # the reaper sends it again later
