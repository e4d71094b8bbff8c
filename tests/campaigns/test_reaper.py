"""The reaper: a lost task is sent again once, the oldest first, and no batch hides the calls behind it."""

import datetime

from campaigns import calls, dialer, lifecycle
from campaigns.models import Call, Campaign, Contact
from tests.conftest import make_call, make_campaign, make_contact

NOW = datetime.datetime(2026, 11, 27, 6, 30, tzinfo=datetime.UTC)


def ago(seconds):
    return NOW - datetime.timedelta(seconds=seconds)


def calling(campaign, state, **fields):
    """A call of a contact being called, in `state`."""
    contact = make_contact(campaign)
    Contact.objects.filter(pk=contact.pk).update(state=Contact.State.CALLING, attempts=1)
    return make_call(campaign, contact=contact, attempt=1, state=state, **fields)


def running(campaign):
    make_contact(campaign)  # a campaign needs a contact to start
    return lifecycle.start_campaign(campaign, by=None)


def test_a_lost_call_is_sent_again_once_per_loss(campaign, settings):
    settings.CALL_QUEUED_STALE_SECONDS = 120
    running(campaign)
    lost = calling(campaign, "queued", enqueued_at=ago(121))
    waiting = calling(campaign, "queued", enqueued_at=ago(60))  # its task may still be on its way

    assert calls.claim_lost_calls(now=NOW) == [lost.pk]
    assert calls.claim_lost_calls(now=NOW + datetime.timedelta(seconds=30)) == []  # sent again: not lost yet
    assert calls.claim_lost_calls(now=NOW + datetime.timedelta(seconds=121)) == [waiting.pk, lost.pk]


def test_a_call_put_back_for_later_is_not_taken_for_lost(campaign, settings, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    settings.CALL_QUEUED_STALE_SECONDS = 120
    monkeypatch.setattr(dialer.tasks.place_call, "apply_async", lambda *args, **kwargs: None)  # no broker here
    running(campaign)
    call = calling(campaign, "dialing", enqueued_at=ago(300), dialed_at=NOW)

    with django_capture_on_commit_callbacks(execute=True):
        dialer.requeue(call, countdown=600, now=NOW)  # a Retry-After of ten minutes

    assert calls.claim_lost_calls(now=NOW + datetime.timedelta(seconds=600)) == []
    assert calls.claim_lost_calls(now=NOW + datetime.timedelta(seconds=721)) == [call.pk]


def test_lost_calls_past_a_batch_are_reached_oldest_first(campaign, settings, monkeypatch):
    settings.CALL_QUEUED_STALE_SECONDS = 120
    monkeypatch.setattr(calls, "REAP_BATCH", 2)
    running(campaign)
    idle = make_campaign(campaign.workspace, name="Not started", account=campaign.account)
    calling(idle, "queued", enqueued_at=ago(900))  # waits until its campaign runs
    oldest_first = [calling(campaign, "queued", enqueued_at=ago(age)).pk for age in (800, 700, 600)]

    assert calls.claim_lost_calls(now=NOW) == oldest_first[:2]
    assert calls.claim_lost_calls(now=NOW) == oldest_first[2:]


def test_unknown_calls_behind_a_batch_of_long_ones_still_time_out(campaign, settings, monkeypatch):
    settings.CALL_UNKNOWN_GRACE_SECONDS = 300
    monkeypatch.setattr(calls, "REAP_BATCH", 2)
    running(campaign)
    long_calls = make_campaign(campaign.workspace, name="Long", account=campaign.account, time_limit=14400)
    for _ in range(3):  # older, but their hour-long limit has not passed
        calling(long_calls, "unknown", dialed_at=ago(3600))
    Campaign.objects.filter(pk=campaign.pk).update(time_limit=60)
    short = calling(campaign, "unknown", dialed_at=ago(361))
    not_yet = calling(campaign, "unknown", dialed_at=ago(359))

    assert calls.reap_stale_calls(now=NOW) == ([], 0, 1)

    assert Call.objects.get(pk=short.pk).state == Call.State.FAILED
    assert Call.objects.get(pk=not_yet.pk).state == Call.State.UNKNOWN
    assert Call.objects.filter(campaign=long_calls, state=Call.State.UNKNOWN).count() == 3


def test_a_decision_taken_on_an_old_reading_changes_nothing(campaign):
    call = calling(campaign, "unknown", dialed_at=ago(900))
    read_before = Call.objects.get(pk=call.pk)
    calls.advance(call, Call.State.IN_PROGRESS, at=NOW)  # its answer lands meanwhile

    assert not calls.advance(read_before, Call.State.FAILED, at=NOW, if_still=Call.State.UNKNOWN)
    assert Call.objects.get(pk=call.pk).state == Call.State.IN_PROGRESS
