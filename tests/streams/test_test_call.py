"""A campaign's test call: its bot on a stream bound to no call, from an operator's browser (which
plays Exotel's part) or from Exotel at a signed URL. Nothing is counted in the campaign."""

import time

import pytest
from django.core import signing

from campaigns.models import Call, Campaign
from streams import services
from streams.models import StreamSession
from tenancy.models import Role
from tests.conftest import make_campaign, make_user, signed_in
from tests.streams.exotel_side import Exotel, tone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def olga(acme):
    return make_user("olga@example.org", acme, Role.OPERATOR)


@pytest.fixture
def cookies(olga, bob, charlie) -> dict:
    """Each user's session cookie, made before the test's loop runs (logging in is synchronous)."""
    return {user.email: signed_in(user).cookies["sessionid"].value for user in (olga, bob, charlie)}


def browser(cookie: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    return headers + ([(b"cookie", f"sessionid={cookie}".encode())] if cookie else [])


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def echoed_and_recorded(exotel: Exotel, **params) -> StreamSession:
    assert await exotel.connect()
    await exotel.start(**params)
    await exotel.media(tone(200))
    assert (await exotel.frame()).payload == tone(200)
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    return await StreamSession.objects.aget()


async def test_an_operators_browser_runs_the_campaigns_bot_and_nothing_is_counted(campaign, olga, cookies):
    exotel = Exotel(f"/live/campaigns/{campaign.pk}/test-call", headers=browser(cookies[olga.email]))
    session = await echoed_and_recorded(exotel, test_call="browser")
    assert session.call_id is None and session.bot_kind == "echo" and session.frames_in == session.frames_out == 1
    assert session.custom_parameters == {"test_call": "browser"} and session.stop_reason == "callended"
    assert not await Call.objects.aexists()
    campaign = await Campaign.objects.aget(pk=campaign.pk)
    assert campaign.calls_total == campaign.calls_live == campaign.contacts_done == 0


async def test_a_viewer_another_workspace_and_strangers_are_refused(campaign, bob, charlie, cookies):
    for cookie in (cookies[bob.email], cookies[charlie.email], None):
        assert not await Exotel(f"/live/campaigns/{campaign.pk}/test-call", headers=browser(cookie)).connect()
    assert not await StreamSession.objects.aexists()


async def test_a_browser_from_another_origin_is_refused(campaign, olga, cookies):
    headers = [(b"origin", b"http://evil.example"), (b"host", b"127.0.0.1"),
               (b"cookie", f"sessionid={cookies[olga.email]}".encode())]
    assert not await Exotel(f"/live/campaigns/{campaign.pk}/test-call", headers=headers).connect()


async def test_exotel_streams_a_test_call_to_its_signed_url(campaign):
    url = services.test_call_url(campaign)
    assert url.startswith("ws://127.0.0.1:8000/streams/test-call/")
    session = await echoed_and_recorded(Exotel(path_of(url), account_sid=campaign.account.account_sid), test_call="1")
    assert session.call_id is None and session.bot_kind == "echo"
    assert not await Call.objects.aexists()


def test_a_stale_forged_or_revoked_test_call_url_is_refused(acme, globex, campaign, monkeypatch):
    theirs = make_campaign(globex, name="Globex winback")
    signed_at = time.time() - services.TEST_CALL_MAX_AGE.total_seconds() - 60
    with monkeypatch.context() as past:
        past.setattr(signing.time, "time", lambda: signed_at)
        stale = services.test_call_url(campaign).rsplit("/", 1)[1]
    forged = f"{campaign.pk}:{services.test_call_url(theirs).rsplit('/', 1)[1].partition(':')[2]}"
    fresh = services.test_call_url(campaign).rsplit("/", 1)[1]
    assert services.bind_test_call(fresh, authorization=None).bot_kind == "echo"
    assert services.bind_test_call(stale, authorization=None) is None
    assert services.bind_test_call(forged, authorization=None) is None
    assert services.bind_test_call("99999999999999999999:x:y", authorization=None) is None
    acme.rotate_webhook_token()
    assert services.bind_test_call(fresh, authorization=None) is None
