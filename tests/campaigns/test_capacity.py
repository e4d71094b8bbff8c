"""Stream capacity read per account outside the tick, stream servers' heartbeat, and the pages' warnings."""

import asyncio
import datetime
import json
import socket

import httpx
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from campaigns import accounts, dialer, lifecycle
from campaigns.models import Call, Campaign
from streams import heartbeat
from streams.models import StreamServer
from tenancy.models import ExotelAccount
from tests.conftest import make_account, make_call, make_campaign, make_contact

SIMULATOR_CONFIG = {"max_allowed_streams": {"acme1": 7}}



def stream_reads(sim) -> int:
    lines = sim.extra["wire_log"].read_text().splitlines()
    return sum(1 for r in map(json.loads, lines) if r["kind"] == "request" and r["path"].endswith("ActiveStreams"))


def running(workspace, account, alice):
    campaign = make_campaign(workspace, account=account)
    make_contact(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=1)
    lifecycle.start_campaign(campaign, by=alice)
    return campaign


def test_a_reading_is_stored_and_compared_with_our_live_calls(acme, alice, sim):
    account = make_account(acme, api_base_url=sim.url)
    campaign = running(acme, account, alice)
    make_call(campaign, state=Call.State.IN_PROGRESS)  # Exotel knows of no stream: they disagree
    now = timezone.now()

    accounts.read_stream_capacity(account.pk, now=now)
    account.refresh_from_db()
    assert (account.max_allowed_streams, account.active_streams, account.streams_error) == (7, 0, "")
    assert account.streams_read_at == account.streams_checked_at == account.streams_mismatch_since == now

    accounts.read_stream_capacity(account.pk, now=now + datetime.timedelta(seconds=90))
    account.refresh_from_db()
    assert account.streams_mismatch_since == now  # since the first disagreeing reading
    assert accounts.stream_mismatch(account, now=now + datetime.timedelta(seconds=90))

    Call.objects.update(state=Call.State.COMPLETED)
    accounts.read_stream_capacity(account.pk, now=now + datetime.timedelta(seconds=100))
    account.refresh_from_db()
    assert account.streams_mismatch_since is None


def test_a_failed_reading_is_one_attempt_kept_on_the_row_and_not_repeated_at_once(acme, alice, sim):
    account = make_account(acme, api_base_url=sim.url)
    running(acme, account, alice)
    httpx.put(f"{sim.url}/_sim/faults", json=[{"endpoint": "active_streams", "kind": "status", "status": 503}])
    before, now = stream_reads(sim), timezone.now()

    accounts.read_stream_capacity(account.pk, now=now)

    account.refresh_from_db()
    assert stream_reads(sim) - before == 1
    assert account.streams_error.startswith("Exotel could not be reached") and account.streams_checked_at == now
    assert accounts.accounts_to_read(now=now + accounts.STREAMS_FRESH_FOR * 2) == []
    assert accounts.accounts_to_read(now=now + accounts.FAILED_READING_WAIT * 2) == [account.pk]


def test_refused_credentials_pause_the_accounts_campaigns(acme, alice, sim):
    account = make_account(acme, api_base_url=sim.url, api_token="wrong-token-000")
    campaign = running(acme, account, alice)
    accounts.read_stream_capacity(account.pk)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED and "credentials" in campaign.last_error


def test_accounts_are_read_only_when_they_have_running_campaigns_and_a_stale_reading(acme, alice):
    now = timezone.now()
    idle = make_account(acme, account_sid="idle1", label="Idle")
    make_campaign(acme, account=idle)
    fresh = make_account(acme, account_sid="fresh1", label="Fresh", streams_checked_at=now)
    stale = make_account(acme, account_sid="stale1", label="Stale",
                         streams_checked_at=now - accounts.STREAMS_FRESH_FOR * 2)
    for account in (fresh, stale):
        running(acme, account, alice)
    assert accounts.accounts_to_read(now=now) == [stale.pk]


@pytest.fixture
def tarpit():
    """A tenant's "Exotel" that takes connections (the kernel completes them) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.setblocking(False)
        yield server


def connections_to(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


def test_the_tick_never_calls_exotel_so_a_tenant_that_hangs_stalls_no_one(acme, globex, alice, charlie, tarpit,
                                                                          monkeypatch):
    sent = []
    monkeypatch.setattr(dialer, "send_place_calls", sent.append)
    url = f"http://127.0.0.1:{tarpit.getsockname()[1]}"
    hanging = make_account(acme, api_base_url=url, max_allowed_streams=10, active_streams=0)
    healthy = make_account(globex, max_allowed_streams=10, active_streams=0)
    running(acme, hanging, alice)
    running(globex, healthy, charlie)
    heartbeat.publish("stream-server")

    assert dialer.dispatch() == 2  # both workspaces dial, from the readings on the rows
    assert connections_to(tarpit) == 0


def test_dialling_is_held_while_no_stream_server_is_up_and_the_page_says_so(acme, alice, alice_client, monkeypatch):
    monkeypatch.setattr(dialer, "send_place_calls", lambda ids: None)
    campaign = running(acme, make_account(acme), alice)
    now = timezone.now()
    heartbeat.publish("gone", now=now - datetime.timedelta(minutes=1))

    assert dialer.dispatch(now=now) == 0
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.RUNNING  # dialling paused, not the campaign
    assert "Dialling is held" in alice_client.get(campaign.get_absolute_url()).content.decode()
    assert "Dialling is held" in alice_client.get("/").content.decode()

    heartbeat.publish("back")
    assert dialer.dispatch() == 1
    assert "Dialling is held" not in alice_client.get(campaign.get_absolute_url()).content.decode()


def test_the_pages_show_calls_pending_reconciliation_and_a_lasting_mismatch(acme, alice, alice_client):
    long_ago = timezone.now() - datetime.timedelta(hours=3)
    account = make_account(acme, active_streams=4, max_allowed_streams=10, streams_mismatch_since=long_ago)
    campaign = running(acme, account, alice)
    make_call(campaign, state=Call.State.RINGING, exotel_sid="s1", dialed_at=long_ago)
    heartbeat.publish("stream-server")

    detail = alice_client.get(campaign.get_absolute_url()).content.decode()
    assert "1 call past its expected end" in detail
    overview = alice_client.get("/").content.decode()
    assert "active streams and our live calls have disagreed" in overview

    ExotelAccount.objects.filter(pk=account.pk).update(streams_mismatch_since=timezone.now())
    assert "have disagreed" not in alice_client.get("/").content.decode()  # not yet a minute


def test_another_workspaces_mismatch_is_not_shown(acme, globex, alice_client):
    make_account(globex, streams_mismatch_since=timezone.now() - datetime.timedelta(hours=1))
    assert "have disagreed" not in alice_client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_a_server_publishes_its_heartbeat_from_its_first_connection(settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    wrapped = heartbeat.Heartbeat(app)
    await wrapped({"type": "websocket"}, None, None)  # a test communicator's scope: no server
    assert wrapped.task is None
    await wrapped({"type": "http", "server": ("127.0.0.1", 8000)}, None, None)
    try:
        for _ in range(100):
            if await database_sync_to_async(heartbeat.healthy)():
                break
            await asyncio.sleep(0.05)
        assert await database_sync_to_async(StreamServer.objects.filter(name=wrapped.name).exists)()
    finally:
        wrapped.task.cancel()
    assert seen == ["websocket", "http"]
