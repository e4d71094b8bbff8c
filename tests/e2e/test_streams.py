"""End to end: the simulator (as Exotel) dials and streams answered calls to daphne serving our bots."""

import io
import json
import wave

import pytest
from django.core.files.base import ContentFile

from campaigns.models import Call
from exotel import protocol
from exotel.client import Account, BotCall, ExotelClient
from streams import prompts
from streams.models import StreamSession
from tests import processes
from tests.conftest import make_call, make_campaign, make_contact
from tests.e2e.external_bot import ExternalBot
from tests.streams.exotel_side import wav

pytestmark = pytest.mark.e2e

SCRIPT = {"steps": [
    {"say": "greeting"},
    {"gather": {"timeout": 4, "branches": {"1": "yes"}, "no_input": "bye"}},
    {"id": "yes", "disposition": "interested"}, {"say": "thanks"}, {"hangup": True},
    {"id": "bye", "disposition": "no_input"},
]}
PRESSES_ONE = "+919800000002"  # hears the 1 s greeting, presses 1 at 1.6 s
BARGES_IN = "+919800000003"  # speaks at 0.4 s, over the greeting, then presses 1
LISTENS = "+919800000004"  # says nothing until the bot hangs up
SIM_CONFIG = {
    "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": None},
    "numbers": {
        PRESSES_ONE: {"script": [{"at": 1.6, "dtmf": "1", "duration_ms": 100}]},
        BARGES_IN: {"script": [{"at": 0.4, "speech": 0.5, "sound": "tone"}, {"at": 1.2, "dtmf": "1"}]},
        LISTENS: {"hangup_after": 6},
    },
}


@pytest.fixture
def world(transactional_db, tmp_path, settings, acme):
    """Daphne and the simulator, with acme's account (acme1) on the simulator."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    config = tmp_path / "sim.json"
    config.write_text(json.dumps(SIM_CONFIG))
    simulator = processes.start_simulator(tmp_path, "acme1:key:token", config=config, strict=True)
    daphne = processes.start_daphne(tmp_path)
    prompts.save_prompt(acme, "greeting", ContentFile(wav(1000, 16000), name="greeting.wav"))
    prompts.save_prompt(acme, "thanks", ContentFile(wav(400, 8000), name="thanks.wav"))
    prompts.save_prompt(acme, "sorry", ContentFile(wav(400, 8000), name="sorry.wav"))
    yield simulator, daphne
    daphne.stop()
    simulator.stop()


def dial(world, campaign, phone: str) -> Call:
    simulator, daphne = world
    call = make_call(campaign, contact=make_contact(campaign, phone=phone))
    client = ExotelClient(Account("acme1", "key", "token", base_url_override=simulator.url))
    stream_url = "ws" + daphne.url.removeprefix("http") + f"/streams/{call.token}?sample-rate=8000"
    with client:
        client.connect_to_bot(BotCall(number=phone, caller_id="+918047491899", stream_url=stream_url))
    return call


def finished(world, call: Call) -> StreamSession:
    try:
        return processes.wait_until(
            lambda: StreamSession.objects.filter(call=call, ended_at__isnull=False).first(), timeout=20,
            what="the stream session to end")
    except TimeoutError as exc:
        simulator, daphne = world
        raise AssertionError(f"{exc}\n--- daphne:\n{daphne.output()}\n--- simulator:\n{simulator.output()}") from None


def bot_frames(simulator, event: str) -> list[dict]:
    records = [json.loads(line) for line in simulator.extra["wire_log"].read_text().splitlines()]
    return [r for r in records if r["kind"] == "frame" and r["dir"] == "received" and r["event"] == event]


def violations(simulator) -> list[dict]:
    return [json.loads(line) for line in simulator.extra["wire_log"].read_text().splitlines()
            if '"kind":"violation"' in line]


def duration_ms(field) -> int:
    with field.open("rb") as f, wave.open(io.BytesIO(f.read())) as audio:
        return round(audio.getnframes() / audio.getframerate() * 1000)


def test_a_caller_hears_the_prompt_presses_one_and_is_dispositioned(world, acme):
    simulator, _ = world
    call = dial(world, make_campaign(acme, bot_kind="script", bot_settings=SCRIPT), PRESSES_ONE)
    session = finished(world, call)
    assert (session.disposition, session.stop_reason, session.dtmf_digits) == ("interested", "hung_up", "1")
    call.refresh_from_db()
    assert call.disposition == "interested"
    assert [m["name"] for m in session.marks] == ["say-1", "say-2"]  # both prompts were heard to the end
    assert sum(f["bytes"] for f in bot_frames(simulator, "media")) >= 16000 + 6400  # 1 s + 0.4 s at 8 kHz
    assert violations(simulator) == []
    # The caller's track lasts as long as the audio Exotel sent (less a frame or two in flight when
    # the bot hung up); the bot's is aligned with it.
    sent = sum(1 for line in simulator.extra["wire_log"].read_text().splitlines()
               if '"dir":"sent"' in line and '"event":"media"' in line)
    assert duration_ms(session.caller_recording) == session.frames_in * 100
    assert sent * 100 - 300 <= duration_ms(session.caller_recording) <= sent * 100
    assert duration_ms(session.bot_recording) >= duration_ms(session.caller_recording)


def test_speech_over_the_prompt_barges_in_with_clear(world, acme):
    simulator, _ = world
    call = dial(world, make_campaign(acme, bot_kind="script", bot_settings=SCRIPT), BARGES_IN)
    session = finished(world, call)
    assert len(bot_frames(simulator, "clear")) == 1
    assert len(session.barge_in_ms) == 1 and 0 <= session.barge_in_ms[0] < 1000
    assert session.disposition == "interested" and violations(simulator) == []


def test_relay_carries_the_call_to_an_external_bot(world, acme):
    simulator, _ = world
    with ExternalBot() as bot:
        campaign = make_campaign(acme, bot_kind="relay", bot_settings={"url": bot.url, "fallback_prompt": "sorry"})
        call = dial(world, campaign, LISTENS)
        session = finished(world, call)
    assert session.stop_reason == "callended" and session.disposition == ""
    starts = bot.of(protocol.Start)
    assert starts and starts[0].custom_parameters["phone"] == LISTENS
    assert sum(f["bytes"] for f in bot_frames(simulator, "media")) >= 16000  # a second of echo came back
    assert violations(simulator) == []


def test_relay_fails_over_to_the_fallback_prompt(world, acme):
    simulator, _ = world
    url = f"ws://127.0.0.1:{processes.free_port()}/gone"
    campaign = make_campaign(acme, bot_kind="relay", bot_settings={"url": url, "fallback_prompt": "sorry"})
    call = dial(world, campaign, LISTENS)
    session = finished(world, call)
    assert (session.disposition, session.stop_reason) == ("relay_unreachable", "hung_up")
    assert [f["name"] for f in bot_frames(simulator, "mark")] == ["relay-fallback"]
    call.refresh_from_db()
    assert call.disposition == "relay_unreachable"
