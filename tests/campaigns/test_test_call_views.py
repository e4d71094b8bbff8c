"""The campaign's "Test call" page: the bot in the browser with the simulator's account, the operator's
own phone through Exotel otherwise (placed here through the simulator, which streams it to daphne)."""

import json

import httpx
import pytest
from django.urls import reverse

from campaigns.models import Call, Campaign, Variant
from streams.models import StreamSession
from tenancy.models import Exophone
from tests import processes
from tests.conftest import NOWHERE, make_account, make_campaign

SIMULATOR_CONFIG = {"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 2}}


def test_with_the_simulator_the_page_runs_the_bot_in_the_browser(alice_client, campaign):
    assert campaign.account.api_base_url == NOWHERE  # a loopback API: the simulator
    page = alice_client.get(reverse("campaigns:test_call", args=[campaign.pk])).content.decode()
    assert f'data-path="/live/campaigns/{campaign.pk}/test-call"' in page and "js/testcall.js" in page
    detail = alice_client.get(campaign.get_absolute_url()).content.decode()
    assert reverse("campaigns:test_call", args=[campaign.pk]) in detail


def test_a_campaign_with_variants_says_its_variants_are_not_what_is_played(alice_client, campaign):
    url = reverse("campaigns:test_call", args=[campaign.pk])
    assert 'id="variants-untested"' not in alice_client.get(url).content.decode()
    Variant.objects.create(workspace=campaign.workspace, campaign=campaign, name="B", bot_kind=Campaign.BotKind.ECHO)
    assert 'id="variants-untested"' in alice_client.get(url).content.decode()


@pytest.fixture
def real_campaign(acme):
    """A campaign on Exotel itself (the region's API): these tests must be refused before any request."""
    account = make_account(acme, api_base_url="")
    return make_campaign(acme, account=account, exophones=[
        Exophone.objects.create(workspace=acme, account=account, number="+918047400123")])


def test_a_real_account_asks_for_the_operators_phone_and_checks_it(alice_client, real_campaign):
    url = reverse("campaigns:test_call", args=[real_campaign.pk])
    page = alice_client.get(url).content.decode()
    assert 'name="phone"' in page and "js/testcall.js" not in page
    refused = alice_client.post(url, {"phone": "12345", "region": "IN"}).content.decode()
    assert "&#x27;12345&#x27; is not a valid phone number." in refused
    abroad = alice_client.post(url, {"phone": "+44 20 7946 0958", "region": "IN"}).content.decode()
    assert "None of the campaign&#x27;s caller IDs may call +44 numbers." in abroad


def test_viewers_may_not_and_another_workspace_sees_nothing(bob_client, charlie_client, campaign):
    url = reverse("campaigns:test_call", args=[campaign.pk])
    assert bob_client.get(url).status_code == 403
    assert bob_client.post(url, {"phone": "+919876500001", "region": "IN"}).status_code == 403
    assert charlie_client.get(url).status_code == 404
    assert charlie_client.post(url, {"phone": "+919876500001", "region": "IN"}).status_code == 404


@pytest.mark.e2e
def test_the_operators_phone_is_dialled_and_hears_the_campaigns_bot(alice_client, acme, sim, tmp_path, settings,
                                                                     transactional_db):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    daphne = processes.start_daphne(tmp_path)
    try:
        settings.PUBLIC_BASE_URL = daphne.url  # where the stream URL sends the simulator
        campaign = make_campaign(acme, account=make_account(acme, api_base_url=sim.url), sample_rate=16000)
        response = alice_client.post(reverse("campaigns:test_call", args=[campaign.pk]),
                                     {"phone": "098765 00042", "region": "IN"}, follow=True)
        [message] = [str(m) for m in response.context["messages"]]
        assert message.startswith("Calling +91 98765 00042: answer it to hear the campaign's bot (Exotel call ")
        session = processes.wait_until(lambda: StreamSession.objects.filter(ended_at__isnull=False).first(),
                                       timeout=30, what="the test call's stream to end")
    finally:
        daphne.stop()
    [dialled] = [c for c in httpx.get(f"{sim.url}/_sim/calls").json() if c["number"] == "+919876500042"]
    assert message.endswith(f"(Exotel call {dialled['sid']}).")
    assert dialled["stream_url"].startswith(f"{daphne.url.replace('http', 'ws')}/streams/test-call/")
    assert "sample-rate=16000" in dialled["stream_url"] and dialled["ended_by"] == "caller"
    # The simulated phone spoke and the campaign's echo bot answered it, on a stream bound to no call.
    assert session.call_id is None and session.bot_kind == "echo" and session.frames_in and session.frames_out
    assert session.custom_parameters == {"campaign": str(campaign.pk), "test_call": "1"}
    assert not Call.objects.exists()
    campaign.refresh_from_db()
    assert (campaign.calls_total, campaign.calls_live, campaign.state) == (0, 0, Campaign.State.DRAFT)
    log = [json.loads(line) for line in sim.extra["wire_log"].read_text().splitlines()]
    assert any(r["kind"] == "frame" and r["dir"] == "received" and r["event"] == "media"
               and r["call_sid"] == dialled["sid"] for r in log)
