"""The relay bot against a small external bot (a real websockets server on loopback)."""

import asyncio
import contextlib
import json
from http import HTTPStatus

import pytest
import websockets
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from campaigns.models import Call, Campaign, DoNotCall
from exotel import protocol
from streams import prompts
from streams.bots.relay import validate_relay
from streams.models import StreamSession
from tests.conftest import make_call, make_campaign, make_contact
from tests.exotel.conftest import until
from tests.processes import free_port
from tests.streams.exotel_side import Exotel, tone, wav


class ExternalBot:
    """The customer's bot: echoes media, answers marks, remembers what it was told."""

    def __init__(self, *, drop_after_start: bool = False, opt_out: dict | None = None,
                 last_words: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/agent"
        self.events: list = []
        self.drop_after_start = drop_after_start
        self.last_words = last_words  # what it sends at the start before it drops, if it does
        self.opt_out = opt_out  # the message it sends when the caller presses a key

    async def handle(self, ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                event = protocol.parse_frame(text)
                self.events.append(event)
                if isinstance(event, protocol.Start) and self.drop_after_start:
                    if self.last_words:
                        await ws.send(json.dumps({"stream_sid": event.stream_sid, **self.last_words}))
                    await ws.close()
                elif isinstance(event, protocol.Media):
                    await ws.send(protocol.media_frame(event.stream_sid, event.payload))
                    await ws.send(protocol.mark_frame(event.stream_sid, f"echo-{event.chunk}"))
                elif isinstance(event, protocol.Dtmf) and self.opt_out is not None:
                    await ws.send(json.dumps({"stream_sid": event.stream_sid, **self.opt_out}))

    def of(self, kind) -> list:
        return [event for event in self.events if isinstance(event, kind)]


@pytest.fixture
async def external_bot():
    bot = ExternalBot()
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        yield bot


@pytest.fixture
def relay_campaign(transactional_db, acme):
    prompts.save_prompt(acme, "sorry", ContentFile(wav(400, 8000), name="sorry.wav"))

    def make(url: str):
        campaign = make_campaign(acme, bot_kind="relay", bot_settings={"url": url, "fallback_prompt": "sorry"})
        return make_call(campaign, contact=make_contact(campaign, variables={"plan": "gold"}))

    return make


def test_validate_relay_wants_a_websocket_url():
    validate_relay({"url": "wss://bot.example.com/agent", "fallback_prompt": "sorry"})
    for bad in [{}, {"url": "https://bot.example.com"}, {"url": "wss://"}, {"url": "ws://x", "extra": 1}]:
        with pytest.raises(ValidationError):
            validate_relay(bad)


async def test_it_relays_both_ways_with_the_calls_variables(external_bot, relay_campaign):
    call = await asyncio.to_thread(relay_campaign, external_bot.url)
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start(lang="hi")
    await until(lambda: external_bot.of(protocol.Start), what="the relay to connect")
    await exotel.media(tone(200))
    echoed = await exotel.frame()
    assert isinstance(echoed, protocol.BotMedia) and echoed.payload == tone(200)
    mark = await exotel.frame()
    assert isinstance(mark, protocol.BotMark) and mark.name == "echo-1"
    await exotel.mark("echo-1")
    await exotel.dtmf("7")
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    await until(lambda: external_bot.of(protocol.Stop), what="the bot to be told the call stopped")
    (start,) = external_bot.of(protocol.Start)
    assert start.stream_sid == "MZ1" and start.custom_parameters["plan"] == "gold"
    assert start.custom_parameters["lang"] == "hi" and start.custom_parameters["phone"] == call.phone
    assert [m.name for m in external_bot.of(protocol.Mark)] == ["echo-1"]
    assert [d.digit for d in external_bot.of(protocol.Dtmf)] == ["7"]
    assert len(external_bot.of(protocol.Stop)) == 1
    session = await StreamSession.objects.aget(call=call)
    assert session.caller_recording and session.bot_recording and session.disposition == ""


async def test_the_campaigns_token_opens_a_bot_that_wants_one(relay_campaign):
    bot, tokens = ExternalBot(), []

    def authorize(connection, request):
        tokens.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != "Bearer s3cret-relay":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "token please\n")
        return None

    async with websockets.serve(bot.handle, "127.0.0.1", bot.port, process_request=authorize):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        await Campaign.objects.filter(pk=call.campaign_id).aupdate(relay_token="s3cret-relay")
        exotel = Exotel(f"/streams/{call.token}")
        assert await exotel.connect()
        await exotel.start()
        await until(lambda: bot.of(protocol.Start), what="the relay to connect with its token")
        await exotel.stop()
        assert await exotel.frame() == ("close", 1000)
        await exotel.hang_up()
    assert tokens == ["Bearer s3cret-relay"]


async def fallback_heard(exotel: Exotel) -> int:
    frames = await exotel.frames_until(lambda f: isinstance(f, protocol.BotMark))
    assert frames[-1].name == "relay-fallback"
    await exotel.mark("relay-fallback")
    assert await exotel.frame() == ("close", 1000)
    return sum(len(f.payload) for f in frames[:-1])


async def failed_over(call) -> tuple[int, str]:
    """Exotel's side of a call whose relay fails: bytes of fallback heard, and the call's disposition."""
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    heard = await fallback_heard(exotel)
    await exotel.hang_up()
    return heard, (await Call.objects.aget(pk=call.pk)).disposition


async def test_an_unreachable_bot_gets_the_fallback_prompt(relay_campaign):
    call = await asyncio.to_thread(relay_campaign, f"ws://127.0.0.1:{free_port()}/gone")
    heard, disposition = await failed_over(call)
    assert heard >= 6400 and disposition == "relay_unreachable"  # 400 ms at 8 kHz


async def test_a_bot_that_drops_fails_over(relay_campaign):
    bot = ExternalBot(drop_after_start=True)
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        assert (await failed_over(call))[1] == "relay_dropped"


async def test_a_bot_that_asks_for_a_person_nobody_can_be_and_leaves_fails_over(relay_campaign):
    # The campaign has no agent group: the transfer is refused, and the bot that left it is gone too.
    bot = ExternalBot(drop_after_start=True, last_words={"event": "transfer", "transfer": {"whisper": "a person"}})
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        assert (await failed_over(call))[1] == "relay_dropped"


async def test_a_relay_to_a_loopback_address_is_refused_unless_allowed(external_bot, relay_campaign, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False  # production: our own network is out of a tenant's reach
    call = await asyncio.to_thread(relay_campaign, external_bot.url)
    assert (await failed_over(call))[1] == "relay_unreachable"
    assert external_bot.events == []


async def listed(call) -> DoNotCall:
    """The call's number on the list, waited for as long as a loaded machine needs."""
    for _ in range(200):
        if entry := await DoNotCall.objects.filter(workspace_id=call.workspace_id, phone=call.phone).afirst():
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError("the number never reached the do-not-call list")


@pytest.mark.parametrize("message, reason", [
    ({"event": "opt_out", "opt_out": {"reason": "said stop calling"}}, "said stop calling"),
    ({"event": "opt_out"}, "your bot's opt_out"),
])
async def test_the_bots_opt_out_message_lists_the_number_while_the_call_goes_on(relay_campaign, message, reason):
    bot = ExternalBot(opt_out=message)
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        exotel = Exotel(f"/streams/{call.token}")
        assert await exotel.connect()
        await exotel.start()
        await until(lambda: bot.of(protocol.Start), what="the relay to connect")
        await exotel.dtmf("9")
        entry = await listed(call)  # before the call ends
        assert (entry.source, entry.reason) == ("relay", f"{reason} (call {call.pk}, campaign {call.campaign_id})")
        await exotel.dtmf("9")  # the message again changes nothing
        await exotel.media(tone(200))
        assert isinstance(await exotel.frame(), protocol.BotMedia)  # still relaying
        await exotel.stop()
        assert (await exotel.frames_until(lambda frame: isinstance(frame, tuple)))[-1] == ("close", 1000)
        await exotel.hang_up()
    assert await DoNotCall.objects.acount() == 1
    assert (await Call.objects.aget(pk=call.pk)).disposition == "opted_out"


async def test_the_bots_transcript_and_summary_are_stored_on_the_call(relay_campaign):
    lines = [{"event": "transcript", "transcript": {"speaker": "caller", "text": "I want to renew"}},
             {"event": "transcript", "transcript": {"speaker": "bot", "text": "Renewed <b>for March</b>"}},
             {"event": "transcript", "transcript": "not a line"},
             {"event": "summary", "summary": {"text": "Renewal agreed."}}]
    bot = ExternalBot(opt_out=lines[0])
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        call = await asyncio.to_thread(relay_campaign, bot.url)
        exotel = Exotel(f"/streams/{call.token}")
        assert await exotel.connect()
        await exotel.start()
        await until(lambda: bot.of(protocol.Start), what="the relay to connect")
        for sent, line in enumerate(lines, start=1):
            bot.opt_out = line  # what it sends at the next key
            await exotel.dtmf("1")
            await until(lambda sent=sent: len(bot.of(protocol.Dtmf)) >= sent, what="the key to reach the bot")
        await exotel.media(tone(200))
        assert isinstance(await exotel.frame(), protocol.BotMedia)  # every message before the stop has arrived
        await exotel.stop()
        await exotel.frames_until(lambda frame: isinstance(frame, tuple))
        await exotel.hang_up()
    stored = await Call.objects.aget(pk=call.pk)
    assert stored.transcript == [["caller", "I want to renew"], ["bot", "Renewed <b>for March</b>"]]
    assert stored.summary == "Renewal agreed."
