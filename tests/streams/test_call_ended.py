"""The CRM's call.ended carries the call's transcript whichever comes first: the final status or the
close of the stream that saves the transcript; a stream that never closes holds it back only so long."""

import asyncio
import datetime

import httpx
import pytest
import websockets
from django.utils import timezone

from campaigns import calls
from campaigns.models import Call
from exotel import protocol
from integrations import delivery, outbox
from integrations.models import Delivery, OutboxEvent, WebhookEndpoint
from streams.models import StreamSession
from tests.conftest import make_call
from tests.exotel.conftest import until
from tests.integrations.test_webhooks import resolves_publicly
from tests.streams.exotel_side import Exotel, tone
from tests.streams.test_relay import ExternalBot, relay_campaign  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)
LINE = {"event": "transcript", "transcript": {"speaker": "caller", "text": "Renew it for March"}}


def make_endpoint(workspace) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(workspace=workspace, url="https://crm.example.com/hooks",
                                          secret=delivery.new_secret(), events=[WebhookEndpoint.Event.CALL_ENDED])


def end(call: Call) -> None:
    """Exotel's status callbacks of a call that rang: answered, then completed."""
    Call.objects.filter(pk=call.pk).update(state=Call.State.RINGING)
    call.refresh_from_db()
    assert calls.advance(call, Call.State.IN_PROGRESS)
    assert calls.advance(call, Call.State.COMPLETED, duration=12)


def the_event() -> tuple[OutboxEvent, Delivery]:
    (event,) = OutboxEvent.objects.filter(kind=WebhookEndpoint.Event.CALL_ENDED)
    return event, event.deliveries.get()


async def open_stream_that_heard_a_line(bot: ExternalBot, call: Call) -> Exotel:
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await until(lambda: bot.of(protocol.Start), what="the relay to connect")
    await until(StreamSession.objects.filter(call=call, ended_at__isnull=True).aexists, what="the session row")
    await exotel.dtmf("1")  # the external bot answers a key with its transcript line
    await until(lambda: bot.of(protocol.Dtmf), what="the key to reach the bot")
    await exotel.media(tone(200))
    assert isinstance(await exotel.frame(), protocol.BotMedia)  # the line, sent before this, has arrived
    return exotel


async def close(exotel: Exotel) -> None:
    await exotel.stop()
    await exotel.frames_until(lambda frame: isinstance(frame, tuple))
    await exotel.hang_up()


async def test_a_final_status_before_the_stream_closes_waits_for_its_transcript(relay_campaign, acme):  # noqa: F811
    bot = ExternalBot(opt_out=LINE)
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        await asyncio.to_thread(make_endpoint, acme)
        exotel = await open_stream_that_heard_a_line(bot, call)
        await asyncio.to_thread(end, call)
        event, held = await asyncio.to_thread(the_event)
        assert event.held_until is not None and held.next_attempt_at == event.held_until
        assert event.payload["data"]["call"]["transcript"] == []  # not sent as it is: held
        await close(exotel)
    event, sent = await asyncio.to_thread(the_event)
    assert event.held_until is None and sent.next_attempt_at <= timezone.now()
    assert event.payload["data"]["call"]["transcript"] == [["caller", "Renew it for March"]]
    assert event.payload["data"]["call"]["state"] == "completed"


async def test_a_stream_closed_before_the_final_status_is_in_its_event_at_once(relay_campaign, acme):  # noqa: F811
    bot = ExternalBot(opt_out=LINE)
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        await asyncio.to_thread(make_endpoint, acme)
        await close(await open_stream_that_heard_a_line(bot, call))
        await asyncio.to_thread(end, call)
    event, due = await asyncio.to_thread(the_event)
    assert event.held_until is None and due.next_attempt_at == event.created_at
    assert event.payload["data"]["call"]["transcript"] == [["caller", "Renew it for March"]]


def test_a_stream_that_never_closes_holds_the_event_back_only_so_long(campaign, acme, settings, monkeypatch):
    resolves_publicly(monkeypatch)
    settings.CALL_ENDED_WAIT_SECONDS = 30
    make_endpoint(acme)
    call = make_call(campaign)
    StreamSession.objects.create(workspace=acme, call=call, stream_sid="MZlost", started_at=timezone.now())
    end(call)  # its stream server died: the session stays open for ever
    event, held = the_event()
    assert delivery.deliver(held.pk) is None  # not due while held
    later = event.held_until + datetime.timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS + 1)
    assert delivery.sweep(now=later) == [held.pk]  # beat's sweep sends it if its own task was lost

    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())  # the hold has run out
    OutboxEvent.objects.filter(pk=event.pk).update(held_until=timezone.now())
    received = []
    transport = httpx.MockTransport(lambda request: received.append(request) or httpx.Response(200))
    assert delivery.deliver(held.pk, transport=transport).state == Delivery.State.DELIVERED
    StreamSession.objects.filter(call=call).update(ended_at=timezone.now())
    outbox.stream_closed(call.pk)  # too late: sent already, and never sent twice
    assert len(received) == 1 and Delivery.objects.get(pk=held.pk).state == Delivery.State.DELIVERED
    assert OutboxEvent.objects.get(pk=event.pk).payload == event.payload


def test_a_call_with_no_stream_open_is_told_at_once(campaign, acme):
    make_endpoint(acme)
    call = make_call(campaign)
    StreamSession.objects.create(workspace=acme, call=call, stream_sid="MZdone", started_at=timezone.now(),
                                 ended_at=timezone.now())
    end(call)
    event, due = the_event()
    assert event.held_until is None and due.next_attempt_at == event.created_at
