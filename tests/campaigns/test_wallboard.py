"""The wallboard: the workspace's campaigns on the go, from the counters and rollups, and those that finished."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import Call, Campaign
from streams import heartbeat
from tests.conftest import make_call, make_campaign, make_contact
from transfers.models import Transfer

pytestmark = pytest.mark.django_db

BOARDS = ["campaigns:wallboard", "campaigns:wallboard_board"]


def cell(page: str, campaign: Campaign, field: str) -> str:
    row = re.search(rf'<tr data-campaign="{campaign.pk}">(.*?)</tr>', page, re.S).group(1)
    return re.search(rf'data-field="{field}"[^>]*>(.*?)</td>', row, re.S).group(1).strip()


@pytest.fixture
def busy_campaign(acme):
    """Running, with calls of every outcome in the last hour, a transfer and dispositions."""
    campaign = make_campaign(acme, name="Renewals")
    now = timezone.now()
    for state, extra in [("completed", {"answered_at": now, "disposition": "interested"}),
                         ("completed", {"answered_at": now, "disposition": "interested"}),
                         ("completed", {"answered_at": now, "disposition": "callback"}),
                         ("busy", {}), ("no-answer", {}), ("no-answer", {}), ("failed", {}), ("ringing", {})]:
        call = make_call(campaign, state=state, **extra)
    answered = Call.objects.filter(campaign=campaign, state="completed").first()
    Transfer.objects.create(workspace=acme, call=answered, token="t1", requested_at=now,
                            bridged_at=now + datetime.timedelta(seconds=4))
    Campaign.objects.filter(pk=campaign.pk).update(
        state=Campaign.State.RUNNING, contacts_total=20, contacts_done=7, calls_total=8, calls_live=1,
        calls_answered=3, calls_busy=1, calls_no_answer=2, calls_failed=1)
    assert call.state == "ringing"
    return Campaign.objects.get(pk=campaign.pk)


@pytest.mark.parametrize("name", BOARDS)
def test_the_board_shows_each_campaign_on_the_go(alice_client, busy_campaign, name):
    heartbeat.publish("test-server")
    page = alice_client.get(reverse(name)).content.decode()
    assert cell(page, busy_campaign, "live") == "1"
    assert cell(page, busy_campaign, "hour") == "8 placed, 43% answered"  # 3 of the 7 that ended
    assert cell(page, busy_campaign, "answer_rate") == "43%"
    assert cell(page, busy_campaign, "transfers") == "1 (33%)"
    assert cell(page, busy_campaign, "failures") == "busy 1 · no answer 2 · failed 1"
    assert "interested 2 · callback 1" in page
    assert cell(page, busy_campaign, "finish").startswith("about ")  # 12 contacts left at the pacing


def test_paused_and_scheduled_campaigns_are_on_the_board_and_say_why_they_have_no_estimate(alice_client, acme):
    paused = make_campaign(acme, name="Paused one", state=Campaign.State.PAUSED)
    page = alice_client.get(reverse("campaigns:wallboard")).content.decode()
    assert cell(page, paused, "finish") == "unknown while paused"


def test_finished_campaigns_stay_reachable_from_the_board(alice_client, acme, alice):
    done = make_campaign(acme, name="Done yesterday")
    make_contact(done)
    lifecycle.start_campaign(done, by=alice)
    lifecycle.cancel_campaign(done, by=alice)
    page = alice_client.get(reverse("campaigns:wallboard")).content.decode()
    assert f'<tr data-campaign="{done.pk}">' not in page
    finished = re.search(r'<ul id="finished">(.*?)</ul>', page, re.S).group(1)
    assert f'href="{done.get_absolute_url()}"' in finished and "cancelled" in finished


def test_a_viewer_sees_the_board_and_another_workspace_shows_nothing_on_it(bob_client, busy_campaign, globex, charlie,
                                                                          charlie_client):
    theirs = make_campaign(globex, name="Globex winback", state=Campaign.State.RUNNING)
    lifecycle.complete_if_done(make_campaign(globex, name="Globex done", state=Campaign.State.RUNNING))
    lifecycle.complete_if_done(make_campaign(busy_campaign.workspace, name="Acme done", state=Campaign.State.RUNNING))
    for name in BOARDS:
        ours = bob_client.get(reverse(name)).content.decode()
        assert "Renewals" in ours and "Acme done" in ours and "Globex" not in ours
        page = charlie_client.get(reverse(name)).content.decode()
        assert "Renewals" not in page and "interested" not in page and "Acme done" not in page
        assert f'data-campaign="{theirs.pk}"' in page and "Globex done" in page


def test_the_board_costs_the_same_queries_for_many_campaigns_and_reads_no_call(alice_client, acme, busy_campaign,
                                                                                 django_assert_max_num_queries):
    def grow(n):
        for i in range(n):
            campaign = make_campaign(acme, name=f"Grown {Campaign.objects.count()}", state=Campaign.State.RUNNING)
            make_call(campaign, state="completed", disposition=f"d{i}")
            lifecycle.complete_if_done(make_campaign(acme, name=f"Done {i}", state=Campaign.State.RUNNING))

    grow(1)
    with django_assert_max_num_queries(20) as few:
        alice_client.get(reverse("campaigns:wallboard_board"))
    grow(6)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        alice_client.get(reverse("campaigns:wallboard_board"))
    # Calls are read only for the transfers they had (a join from the transfers table), never counted.
    call_reads = [q["sql"] for q in many.captured_queries if '"campaigns_call"' in q["sql"]]
    assert all('"transfers_transfer"' in sql for sql in call_reads), call_reads
