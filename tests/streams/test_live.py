"""The live feed: members of the campaign's workspace watch its streams; nobody else can."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from config.asgi import application
from streams import live
from tests.conftest import signed_in
from tests.streams.exotel_side import Exotel, tone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_watch_state(campaign):
    cache.delete(live.watchers_key(campaign.pk))  # one key, never the whole cache: Redis may be shared
    live._watched.clear()


def watcher(user, campaign_id: int, *, origin: bytes = b"http://127.0.0.1") -> WebsocketCommunicator:
    client = signed_in(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"cookie", cookie), (b"origin", origin), (b"host", b"127.0.0.1")]
    return WebsocketCommunicator(application, f"/live/campaigns/{campaign_id}", headers=headers)


@pytest.fixture
def alice_watching(alice, campaign):
    return watcher(alice, campaign.pk)


async def messages_until(ws: WebsocketCommunicator, predicate, timeout: float = 10) -> list[dict]:
    seen = []
    while True:
        seen.append(json.loads(await ws.receive_from(timeout)))
        if predicate(seen[-1]):
            return seen


async def test_a_member_watches_state_levels_and_events(alice_watching, call):
    connected, _ = await alice_watching.connect(timeout=10)
    assert connected
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.dtmf("4")
    await exotel.hang_up()
    seen = await messages_until(alice_watching, lambda m: m.get("state") == "stopped")
    kinds = [(m["type"], m.get("state") or m.get("event")) for m in seen]
    assert ("state", "started") in kinds and ("event", "dtmf") in kinds and ("level", None) in kinds
    level = next(m for m in seen if m["type"] == "level")
    assert -10 < level["dbfs"] < 0 and level["call"] == call.pk
    started = next(m for m in seen if m.get("state") == "started")
    assert started["stream"] > 0 and started["phone"] == call.phone and started["bot"] == "echo"
    assert seen[-1]["reason"] == "closed"
    await alice_watching.disconnect()


async def test_a_viewer_of_the_workspace_may_watch(bob, campaign):
    ws = await asyncio.to_thread(watcher, bob, campaign.pk)
    assert (await ws.connect(timeout=10))[0]
    await ws.disconnect()


async def test_charlie_cannot_watch_acmes_campaign(charlie, campaign):
    ws = await asyncio.to_thread(watcher, charlie, campaign.pk)
    assert not (await ws.connect(timeout=10))[0]
    assert await cache.aget(live.watchers_key(campaign.pk)) is None


async def test_anonymous_and_foreign_origins_are_refused(alice, campaign):
    anonymous = WebsocketCommunicator(application, f"/live/campaigns/{campaign.pk}",
                                      headers=[(b"origin", b"http://127.0.0.1")])
    assert not (await anonymous.connect(timeout=10))[0]
    foreign = await asyncio.to_thread(watcher, alice, campaign.pk, origin=b"http://evil.example")
    assert not (await foreign.connect(timeout=10))[0]


async def test_nothing_is_published_when_nobody_watches(call):
    # A raw listener on the group that is not counted as a watcher (as no browser would be).
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(live.group_name(call.campaign_id), listener)
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.hang_up()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(listener), 0.3)


async def test_watchers_are_counted_and_uncounted(alice_watching, campaign):
    await alice_watching.connect(timeout=10)
    assert await cache.aget(live.watchers_key(campaign.pk)) == 1
    await alice_watching.disconnect()
    assert await cache.aget(live.watchers_key(campaign.pk)) == 0


async def test_a_feed_cancelled_by_a_stopping_server_is_uncounted(alice_watching, campaign):
    await alice_watching.connect(timeout=10)
    alice_watching.future.cancel()  # what daphne does to every application left when it stops
    with pytest.raises(asyncio.CancelledError):
        await alice_watching.future
    assert await cache.aget(live.watchers_key(campaign.pk)) == 0
