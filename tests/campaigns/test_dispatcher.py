"""The dispatcher with frozen time: windows, pacing, the three caps, do-not-call, retries, lifecycle."""

import datetime

import pytest

from campaigns import calls, dialer, lifecycle
from campaigns.models import Call, Campaign, Contact, DoNotCall
from streams import heartbeat
from tests.conftest import make_contact

NOON_FRIDAY = datetime.datetime(2026, 11, 27, 6, 30, tzinfo=datetime.UTC)  # 12:00 in Kolkata
SUNDAY = NOON_FRIDAY + datetime.timedelta(days=2)


def seconds(n):
    return NOON_FRIDAY + datetime.timedelta(seconds=n)


def start(campaign, alice, contacts=5, **fields):
    for _ in range(contacts):
        make_contact(campaign)
    # Capacity read a moment ago: the dispatcher uses it without asking Exotel.
    account = campaign.account
    account.max_allowed_streams, account.active_streams, account.streams_read_at = 100, 0, NOON_FRIDAY
    account.save()
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=contacts)
    lifecycle.start_campaign(campaign, by=alice)
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    return campaign


def tick(now, django_capture_on_commit_callbacks):
    heartbeat.publish("stream-server", now=now)  # a stream server is up unless a test says otherwise
    with django_capture_on_commit_callbacks(execute=True):
        return dialer.dispatch(now=now)


def test_a_new_campaign_dials_one_call_then_keeps_its_rate(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=50, calls_per_minute=60, max_concurrent=50)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 1
    assert tick(seconds(3), django_capture_on_commit_callbacks) == 3
    assert tick(seconds(3), django_capture_on_commit_callbacks) == 0  # no credit left this instant
    assert tick(seconds(60), django_capture_on_commit_callbacks) == 5  # a long gap: a few seconds' worth, no burst
    campaign.refresh_from_db()
    assert (campaign.calls_total, campaign.calls_live) == (9, 9)
    assert [len(batch) for batch in sent] == [1, 3, 5]
    assert Call.objects.filter(state=Call.State.QUEUED).count() == 9
    assert Contact.objects.filter(state=Contact.State.CALLING, attempts=1).count() == 9


def test_it_never_dials_outside_the_window(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, window_start=datetime.time(9), window_end=datetime.time(21), weekdays=[1, 2, 3, 4, 5, 6])
    assert tick(SUNDAY, django_capture_on_commit_callbacks) == 0
    assert tick(NOON_FRIDAY.replace(hour=16), django_capture_on_commit_callbacks) == 0  # 21:30 in Kolkata
    assert not Call.objects.exists()


def test_the_concurrency_cap_counts_unfinished_calls(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=10, calls_per_minute=600, max_concurrent=3)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    tick(seconds(10), django_capture_on_commit_callbacks)
    tick(seconds(20), django_capture_on_commit_callbacks)
    assert Call.objects.count() == 3


def test_the_accounts_free_streams_are_shared_by_its_campaigns(campaign, alice, acme, sent,
                                                               django_capture_on_commit_callbacks):
    from tests.conftest import make_campaign

    start(campaign, alice, contacts=10, calls_per_minute=600, max_concurrent=10, pace_credit=10,
          paced_at=NOON_FRIDAY)
    other = start(make_campaign(acme, account=campaign.account), alice, contacts=10, calls_per_minute=600,
                  max_concurrent=10, pace_credit=10, paced_at=NOON_FRIDAY)
    type(campaign.account).objects.filter(pk=campaign.account_id).update(max_allowed_streams=6, active_streams=2)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert Call.objects.count() == 4
    assert Call.objects.filter(campaign=campaign).count() == 4 and not Call.objects.filter(campaign=other).exists()


def test_numbers_on_the_do_not_call_list_are_skipped_and_reported(campaign, alice, sent,
                                                                  django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=2, calls_per_minute=600, pace_credit=5, paced_at=NOON_FRIDAY)
    blocked = Contact.objects.order_by("pk").first()
    DoNotCall.objects.create(workspace=campaign.workspace, phone=blocked.phone, reason="asked us not to")
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    blocked.refresh_from_db()
    assert (blocked.state, blocked.outcome) == ("skipped", "do-not-call")
    assert not Call.objects.filter(contact=blocked).exists()
    campaign.refresh_from_db()
    assert (campaign.contacts_done, campaign.calls_total) == (1, 1)


def test_a_campaign_whose_contacts_are_all_blocked_completes(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=1)
    DoNotCall.objects.create(workspace=campaign.workspace, phone=Contact.objects.get().phone)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.COMPLETED


def test_a_busy_contact_is_retried_after_the_configured_minutes(campaign, alice, sent,
                                                                django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=1, max_attempts=2, retry_after_minutes=30, calls_per_minute=600)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    first = Call.objects.get()
    Call.objects.filter(pk=first.pk).update(state=Call.State.RINGING)
    assert calls.advance(first, Call.State.BUSY, at=NOON_FRIDAY)

    contact = Contact.objects.get()
    assert (contact.state, contact.next_attempt_at) == ("pending", seconds(1800))
    assert tick(seconds(1799), django_capture_on_commit_callbacks) == 0
    assert tick(seconds(1800), django_capture_on_commit_callbacks) == 1
    second = Call.objects.get(attempt=2)
    Call.objects.filter(pk=second.pk).update(state=Call.State.RINGING)
    calls.advance(second, Call.State.NO_ANSWER, at=seconds(1830))

    contact.refresh_from_db()
    assert (contact.state, contact.outcome, contact.attempts) == ("done", "no-answer", 2)
    campaign.refresh_from_db()
    assert (campaign.calls_busy, campaign.calls_no_answer, campaign.calls_live, campaign.state) == (
        1, 1, 0, "completed")


def test_retries_that_are_due_go_before_first_attempts(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=3, calls_per_minute=1)
    retry = Contact.objects.order_by("pk").last()
    Contact.objects.filter(pk=retry.pk).update(attempts=1, next_attempt_at=seconds(-60))
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert Call.objects.get().contact_id == retry.pk


def test_paused_and_backed_off_campaigns_dial_nothing(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=2, backoff_until=seconds(30))
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 0
    lifecycle.pause_campaign(campaign, by=alice)
    assert tick(seconds(60), django_capture_on_commit_callbacks) == 0


def test_a_ticks_queries_do_not_grow_with_the_number_of_contacts(campaign, alice, sent, acme,
                                                                django_assert_max_num_queries):
    from tests.conftest import make_campaign

    start(campaign, alice, contacts=5, calls_per_minute=600, pace_credit=3, paced_at=NOON_FRIDAY)
    big = start(make_campaign(acme, account=campaign.account), alice, contacts=300, calls_per_minute=600,
                pace_credit=3, paced_at=NOON_FRIDAY)
    heartbeat.publish("stream-server", now=NOON_FRIDAY)
    # Two of them look for scheduled campaigns due to begin and for a stream server's heartbeat, three
    # review the caller IDs' breakers; per campaign, one asks the do-not-call gate whether a file is
    # being imported, one writes its dialled numbers' attempt ledgers, two lock its caller-ID pool
    # and rotate it, one counts its calls into the charts' rollup, and one reads its A/B variants.
    with django_assert_max_num_queries(37):
        dialer.dispatch(now=NOON_FRIDAY)
    assert Call.objects.filter(campaign=big).count() == 3


def test_the_reaper_resends_lost_calls_and_settles_calls_whose_worker_died(campaign, alice, sent, settings):
    start(campaign, alice, contacts=3, max_attempts=2, retry_after_minutes=0)
    lost, stuck, timed_out = (make_contact_call(campaign, state) for state in ("queued", "dialing", "unknown"))
    long_ago = NOON_FRIDAY - datetime.timedelta(seconds=campaign.time_limit + 600)
    Call.objects.update(created_at=long_ago, enqueued_at=long_ago, dialed_at=long_ago)
    Call.objects.filter(pk=lost.pk).update(dialed_at=None)
    Call.objects.filter(pk=stuck.pk).update(dialed_at=NOON_FRIDAY - datetime.timedelta(minutes=2))

    resend, made_unknown, failed = calls.reap_stale_calls(now=NOON_FRIDAY)

    assert (resend, made_unknown, failed) == ([lost.pk], 1, 1)
    assert Call.objects.get(pk=stuck.pk).state == Call.State.UNKNOWN  # a callback with its token decides
    timed_out.refresh_from_db()
    assert timed_out.state == Call.State.FAILED and "No callback" in timed_out.error
    assert Contact.objects.get(pk=timed_out.contact_id).state == Contact.State.PENDING  # the retry policy applies


def make_contact_call(campaign, state):
    from tests.conftest import make_call

    contact = Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).first()
    Contact.objects.filter(pk=contact.pk).update(state=Contact.State.CALLING, attempts=1)
    return make_call(campaign, contact=contact, attempt=1, state=state)


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_never_claim_the_same_contact(campaign, alice, sent):
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: SKIP LOCKED is PostgreSQL's")
    start(campaign, alice, contacts=10)
    held, release, claimed = threading.Event(), threading.Event(), {}

    def first():
        with transaction.atomic():
            claimed["first"] = {c.pk for c in dialer.claim_due_contacts(campaign, 4, now=NOON_FRIDAY)}
            held.set()
            release.wait(10)  # still holding its row locks while the second one claims
        connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    with transaction.atomic():
        claimed["second"] = {c.pk for c in dialer.claim_due_contacts(campaign, 4, now=NOON_FRIDAY)}
    release.set()
    thread.join()
    assert len(claimed["first"]) == len(claimed["second"]) == 4
    assert not claimed["first"] & claimed["second"]


def published(call_ids: list[int]) -> list:
    """The messages `send_place_calls` puts on the dial queue of the real broker, acknowledged."""
    from celery import current_app

    with current_app.connection_for_read() as connection, connection.SimpleQueue("dial") as dial:
        dial.clear()
        dialer.send_place_calls(call_ids)
        messages = [dial.get(timeout=10) for _ in range(len(dial))]
        for message in messages:
            message.ack()
    return messages


def test_a_few_calls_go_one_a_message(campaign):
    from tests.conftest import make_call

    queued = [make_call(campaign) for _ in range(3)]
    messages = published([call.pk for call in queued])
    assert {message.headers["task"] for message in messages} == {"campaigns.tasks.place_calls"}
    assert sorted(message.payload[0][0] for message in messages) == sorted([call.pk] for call in queued)
    assert {tuple(message.headers["timelimit"]) for message in messages} == {(75, 60)}  # place_call's own


@pytest.mark.parametrize(("calls", "per_message"), [(250, 2), (2000, 20), (5000, 20)])
def test_many_calls_share_messages_spread_for_the_dial_workers(campaign, calls, per_message):
    """At least DIAL_MESSAGES_SPREAD messages, at most DIAL_CALLS_PER_MESSAGE calls in each; every call once."""
    messages = published(list(range(1, calls + 1)))
    carried = [message.payload[0][0] for message in messages]
    assert sorted(call_id for ids in carried for call_id in ids) == list(range(1, calls + 1))
    assert max(map(len, carried)) == per_message
    assert len(messages) >= min(calls, 100)
    assert tuple(messages[0].headers["timelimit"]) == (60 * per_message + 15, 60 * per_message)
