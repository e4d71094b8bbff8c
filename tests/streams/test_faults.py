"""Faults around a live stream: the caller hanging up as we send, a failing bot, a cancelled consumer,
Redis and the broker unreachable. The call goes on where it can, and its session is always recorded.
Mocks here only inject the fault, at the boundary where it happens."""

import asyncio
import contextlib
from types import SimpleNamespace

import pytest
from autobahn.exception import Disconnected
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage
from kombu.exceptions import OperationalError
from kombu.messaging import Producer

from config.asgi import application
from streams import consumers, live
from streams.bots import BOTS
from streams.bots.echo import EchoBot
from streams.models import StreamSession
from tests import processes
from tests.exotel.conftest import until
from tests.streams.exotel_side import Exotel, tone

pytestmark = pytest.mark.django_db(transaction=True)


def peer_gone_on_send(app):
    """daphne once the caller's close has arrived: every send raises autobahn's Disconnected."""
    async def wrapped(scope, receive, send):
        async def send_or_fail(message):
            if message["type"] == "websocket.send":
                raise Disconnected("Attempt to send on a closed protocol")
            await send(message)

        await app(scope, receive, send_or_fail)

    return wrapped


async def test_sending_as_the_caller_hangs_up_ends_the_stream_normally(call):
    exotel = Exotel(f"/streams/{call.token}", app=peer_gone_on_send(application))
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))  # the echo is sent into the closed socket
    assert await exotel.ws.receive_nothing(0.1)  # no close of ours: it is no server error
    await exotel.hang_up(1000)
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code, session.frames_in) == ("closed", 1000, 1)


class FailsAtStop(EchoBot):
    async def on_stop(self) -> None:
        raise RuntimeError("the bot's own bug")


async def test_a_bot_failing_at_stop_leaves_a_complete_record(call, monkeypatch):
    monkeypatch.setitem(BOTS, "echo", FailsAtStop)
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.frame()
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.frames_in, session.frames_out) == ("callended", 1, 1)
    assert session.ended_at is not None and session.caller_recording and session.bot_recording


async def test_a_cancelled_consumer_still_records_its_session(call):
    # What daphne does to an application at shutdown, or one slow to finish after a disconnect.
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.frame()
    exotel.ws.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await exotel.ws.future
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code, session.frames_in) == ("dropped", 1006, 1)
    assert session.ended_at is not None and session.caller_recording


def dead_redis() -> str:
    return f"redis://127.0.0.1:{processes.free_port()}/1"  # a free port: connections are refused


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead_redis()}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "config.layers.ReliableRedisChannelLayer",
                                           "CONFIG": {"hosts": [dead_redis()]}}}
    live._watched.clear()


@pytest.fixture
def watched_but_channel_layer_down(settings, campaign):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "config.layers.ReliableRedisChannelLayer",
                                           "CONFIG": {"hosts": [dead_redis()]}}}
    cache.set(live.watchers_key(campaign.pk), 1)
    live._watched.clear()


async def a_whole_call_goes_on(exotel: Exotel) -> None:
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    assert (await exotel.frame()).payload == tone(200)
    await exotel.dtmf("1")
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()


@pytest.mark.parametrize("fault", ["redis_down", "watched_but_channel_layer_down"])
async def test_live_calls_go_on_without_redis(call, fault, request):
    request.getfixturevalue(fault)
    await a_whole_call_goes_on(Exotel(f"/streams/{call.token}"))
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code, session.dtmf_digits) == ("callended", 1000, "1")


@pytest.fixture
def broker(monkeypatch):
    """Celery's publishes: the first `refusals` fail as with an unreachable broker; `sent` lists the rest."""
    state = SimpleNamespace(refusals=0, sent=[])
    original = Producer.publish

    def publish(self, body, *args, **kwargs):
        if state.refusals:
            state.refusals -= 1
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        result = original(self, body, *args, **kwargs)
        state.sent.append((kwargs["headers"]["task"], list(body[0])))
        return result

    monkeypatch.setattr(Producer, "publish", publish)
    monkeypatch.setattr(consumers, "ANNOUNCE_RETRY_DELAYS", (0.05, 0.05, 0.05))
    return state


async def test_a_broker_outage_delays_the_start_news_and_never_the_call(call, broker):
    broker.refusals = 2
    await a_whole_call_goes_on(Exotel(f"/streams/{call.token}"))
    await until(lambda: ("campaigns.tasks.stream_started", [call.pk]) in broker.sent, what="the retried news")


async def test_the_start_news_is_given_up_after_its_retries(call, broker, caplog):
    broker.refusals = 100
    await a_whole_call_goes_on(Exotel(f"/streams/{call.token}"))
    await until(lambda: "giving up" in caplog.text, what="the news to be given up")
    assert broker.sent == [] and broker.refusals == 100 - 4  # one attempt and three retries


async def test_a_session_is_recorded_when_its_recordings_cannot_be_stored(call, monkeypatch):
    def disk_full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    await a_whole_call_goes_on(Exotel(f"/streams/{call.token}"))
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.frames_in, session.dtmf_digits) == ("callended", 1, "1")
    assert session.ended_at is not None and not session.caller_recording and not session.bot_recording
