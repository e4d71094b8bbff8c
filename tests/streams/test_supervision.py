"""Supervising a live call: who may, and what listening, whispering and taking over do to the call."""

import json
import struct

import pytest
import websockets
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.utils import timezone

from campaigns.models import Call
from config.asgi import application
from exotel import protocol
from streams import supervision
from streams.models import Intervention, StreamSession
from tenancy.models import Role
from tests.conftest import make_call, make_campaign, make_user, signed_in
from tests.exotel.conftest import until
from tests.streams.exotel_side import Exotel, tone
from tests.streams.test_relay import ExternalBot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def call(transactional_db, campaign):
    return make_call(campaign, state=Call.State.IN_PROGRESS)  # a supervisor sees only live calls


@pytest.fixture(autouse=True)
def no_listeners(call):
    cache.delete(supervision.listeners_key(call.pk))  # one key, never the whole cache: Redis may be shared


@pytest.fixture
def olga(acme):
    return make_user("olga@example.org", acme, Role.OPERATOR)


@pytest.fixture
def vic(acme):
    return make_user("vic@example.org", acme, Role.VIEWER)


@pytest.fixture
def sessions(alice, olga, vic, charlie) -> dict:
    """Each user's session cookie, made before the test's loop runs (logging in is synchronous)."""
    return {user.email: signed_in(user).cookies["sessionid"].value for user in (alice, olga, vic, charlie)}


@pytest.fixture
def supervisor(sessions):
    def connect_as(user, call_id: int) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
        if user is not None:
            headers.append((b"cookie", f"sessionid={sessions[user.email]}".encode()))
        return WebsocketCommunicator(application, f"/live/calls/{call_id}", headers=headers)
    return connect_as


async def started(call: Call) -> Exotel:
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await until(StreamSession.objects.filter(call=call).aexists, what="the session")
    return exotel


async def message(ws: WebsocketCommunicator, predicate, timeout: float = 10):
    """The next message that `predicate` accepts: parsed JSON, or (track, plays_in_ms, pcm) for audio."""
    while True:
        output = await ws.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            track, _, plays_in = struct.unpack("<BBH", output["bytes"][:4])
            received = (track, plays_in, output["bytes"][4:])
        else:
            received = json.loads(output["text"])
        if predicate(received):
            return received


def is_state(m) -> bool:
    return isinstance(m, dict) and m.get("type") == "state"


async def kinds(call: Call) -> list[str]:
    return [i.kind async for i in Intervention.objects.filter(call=call).order_by("at", "pk")]


async def test_an_operator_hears_the_caller_and_the_bot(call, alice, supervisor):
    exotel = await started(call)
    ann = supervisor(alice, call.pk)
    assert (await ann.connect(timeout=10))[0]
    state = await message(ann, is_state)
    assert state["rate"] == 8000 and state["bot"] == "echo" and state["holder"] == ""
    spoken = tone(200)
    await exotel.media(spoken)
    caller = await message(ann, lambda m: isinstance(m, tuple) and m[0] == supervision.CALLER)
    assert caller[2] == spoken
    line = await message(ann, lambda m: isinstance(m, tuple) and m[0] == supervision.LINE)
    assert line[2] == spoken[:len(line[2])]  # the echo bot's answer, as the caller gets it
    await ann.disconnect(timeout=10)
    await exotel.hang_up()
    assert await kinds(call) == ["listen"]
    listen = await Intervention.objects.aget(call=call)
    assert listen.by == alice.email and listen.user_id == alice.pk and listen.recording_ms is not None


async def test_a_supervisor_who_comes_before_the_stream_hears_it_once_it_starts(call, alice, supervisor):
    ann = supervisor(alice, call.pk)
    assert (await ann.connect(timeout=10))[0]  # the call is live, its stream not started: the join reaches no one
    exotel = await started(call)
    assert (await message(ann, is_state))["rate"] == 8000
    spoken = tone(200)
    await exotel.media(spoken)
    assert (await message(ann, lambda m: isinstance(m, tuple) and m[0] == supervision.CALLER))[2] == spoken
    await ann.disconnect(timeout=10)
    await exotel.hang_up()
    assert await kinds(call) == ["listen"]


@pytest.mark.parametrize("who", ["viewer", "other workspace", "anonymous"])
async def test_only_operators_of_the_calls_workspace_may_supervise(call, who, vic, charlie, supervisor):
    exotel = await started(call)
    ws = supervisor({"viewer": vic, "other workspace": charlie, "anonymous": None}[who], call.pk)
    connected, _ = await ws.connect(timeout=10)
    assert not connected
    await exotel.media(tone(200))
    await exotel.hang_up()
    assert await kinds(call) == []


async def test_an_operator_may_supervise_but_not_a_call_that_ended(call, olga, supervisor):
    exotel = await started(call)
    ws = supervisor(olga, call.pk)
    assert (await ws.connect(timeout=10))[0]
    await ws.disconnect(timeout=10)
    await exotel.hang_up()
    await Call.objects.filter(pk=call.pk).aupdate(state=Call.State.COMPLETED)
    assert not (await supervisor(olga, call.pk).connect(timeout=10))[0]


async def test_taking_over_clears_and_mutes_the_bot_and_the_supervisor_is_heard(call, alice, supervisor):
    exotel = await started(call)
    ann = supervisor(alice, call.pk)
    assert (await ann.connect(timeout=10))[0]
    await message(ann, is_state)
    await ann.send_json_to({"action": "take_over"})
    assert (await message(ann, is_state))["holder"] == alice.email
    frames = await exotel.frames_until(lambda f: isinstance(f, protocol.BotClear))
    assert isinstance(frames[-1], protocol.BotClear)

    await exotel.media(tone(200, hz=300))  # the echo bot is muted: this is not echoed
    voice = tone(200, hz=700)
    await ann.send_to(bytes_data=voice)
    heard = await exotel.frame()
    assert isinstance(heard, protocol.BotMedia) and heard.payload == voice

    await ann.send_json_to({"action": "hand_back"})
    assert (await message(ann, is_state))["holder"] == ""
    echoed = tone(200, hz=500)
    await exotel.media(echoed)
    assert (await exotel.frame()).payload == echoed  # the bot speaks again
    await ann.disconnect(timeout=10)
    await exotel.hang_up()
    assert await kinds(call) == ["listen", "take_over", "hand_back"]
    session = await StreamSession.objects.aget(call=call)
    assert session.bot_recording  # the supervisor's audio is on the line's track


async def test_one_supervisor_holds_the_line_and_leaving_hands_it_back(call, alice, olga, supervisor):
    exotel = await started(call)
    ann, olga = supervisor(alice, call.pk), supervisor(olga, call.pk)
    for ws in (ann, olga):
        assert (await ws.connect(timeout=10))[0]
        await message(ws, is_state)
    await ann.send_json_to({"action": "take_over"})
    await message(olga, lambda m: is_state(m) and m["holder"] == alice.email)
    await olga.send_json_to({"action": "take_over"})
    refused = await message(olga, lambda m: isinstance(m, dict) and m.get("type") == "refused")
    assert alice.email in refused["reason"]
    await olga.send_to(bytes_data=tone(200))  # not the holder: dropped
    await ann.disconnect(timeout=10)
    assert (await message(olga, is_state))["holder"] == ""
    echoed = tone(200, hz=500)
    await exotel.media(echoed)
    frames = await exotel.frames_until(lambda f: isinstance(f, protocol.BotMedia))
    assert frames[-1].payload == echoed and not any(isinstance(f, protocol.BotMedia) for f in frames[:-1])
    await olga.disconnect(timeout=10)
    await exotel.hang_up()
    assert await kinds(call) == ["listen", "listen", "take_over", "hand_back"]


JUMPY = {"steps": [{"pause": 30}, {"id": "offer", "disposition": "offered"}, {"hangup": True}]}


@pytest.fixture
def script_call(acme):
    return make_call(make_campaign(acme, name="Jumpy", bot_kind="script", bot_settings=JUMPY),
                     state=Call.State.IN_PROGRESS)


async def test_a_whisper_makes_the_script_jump_to_a_step(script_call, alice, supervisor):
    call = script_call
    exotel = await started(call)
    ann = supervisor(alice, call.pk)
    assert (await ann.connect(timeout=10))[0]
    await message(ann, is_state)
    await ann.send_json_to({"action": "whisper", "step": "nowhere"})
    refused = await message(ann, lambda m: isinstance(m, dict) and m.get("type") == "refused")
    assert "nowhere" in refused["reason"]
    await ann.send_json_to({"action": "whisper", "text": "offer now", "step": "offer"})
    frames = await exotel.frames_until(lambda f: f[0] == "close" if isinstance(f, tuple) else False)
    assert frames[-1] == ("close", 1000)  # the 30 s pause was cut short: the script hung up
    await exotel.hang_up()
    assert (await Call.objects.aget(pk=call.pk)).disposition == "offered"
    whisper = await Intervention.objects.aget(call=call, kind="whisper")
    assert (whisper.text, whisper.step) == ("offer now", "offer")
    await ann.disconnect(timeout=10)


@pytest.fixture
def relay_call(acme, external_bot):
    return make_call(make_campaign(acme, name="Relayed", bot_kind="relay", bot_settings={"url": external_bot.url}),
                     state=Call.State.IN_PROGRESS)


async def test_the_relay_bot_is_told_of_whispers_and_take_overs(relay_call, alice, external_bot, supervisor):
    call = relay_call
    exotel = await started(call)
    await until(lambda: external_bot.of(protocol.Start))
    ann = supervisor(alice, call.pk)
    assert (await ann.connect(timeout=10))[0]
    await message(ann, is_state)
    await ann.send_json_to({"action": "whisper", "text": "offer the gold plan"})
    await message(ann, lambda m: isinstance(m, dict) and m.get("type") == "done")
    await ann.send_json_to({"action": "take_over"})
    await message(ann, lambda m: is_state(m) and m["holder"])
    await ann.send_json_to({"action": "hand_back"})
    await message(ann, lambda m: is_state(m) and not m["holder"])
    told = [e.raw["supervisor"] for e in external_bot.of(protocol.Unknown) if e.event == "supervisor"]
    assert told == [{"kind": "whisper", "text": "offer the gold plan", "step": ""}, {"kind": "take_over"},
                    {"kind": "hand_back"}]
    await ann.disconnect(timeout=10)
    await exotel.hang_up()


@pytest.fixture
async def external_bot():
    bot = ExternalBot()
    async with websockets.serve(bot.handle, "127.0.0.1", bot.port):
        yield bot


def test_the_supervise_page_is_for_operators_of_the_workspace(call, alice, vic, charlie):
    url = f"/calls/{call.pk}/supervise/"
    page = signed_in(alice).get(url)
    assert page.status_code == 200 and f'data-path="/live/calls/{call.pk}"'.encode() in page.content
    assert signed_in(vic).get(url).status_code == 403
    assert signed_in(charlie).get(url).status_code == 404


def test_interventions_are_on_the_calls_timeline(call, alice):
    session = StreamSession.objects.create(workspace=call.workspace, call=call, started_at=timezone.now())
    Intervention.objects.create(workspace=call.workspace, call=call, session=session, kind="take_over",
                                by=alice.email, at=timezone.now(), recording_ms=72_500)
    Intervention.objects.create(workspace=call.workspace, call=call, session=session, kind="whisper",
                                by=alice.email, text="offer gold", step="offer", at=timezone.now())
    page = signed_in(alice).get(f"/calls/{call.pk}/").content.decode()
    assert "Supervisor took over" in page and "1:12 into the recording" in page
    assert "Supervisor whispered to the bot" in page and "offer gold" in page and "jump to step" in page
