"""The script bot: its format's validation, and calls run through it end to end in-process."""

import asyncio
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from campaigns.models import Call, Campaign, DoNotCall
from exotel import protocol
from exotel.audio import bytes_per_ms
from streams import playback, prompts
from streams.bots import script
from streams.bots.script import validate_script
from streams.models import StreamSession
from tests.conftest import make_call, make_campaign, make_contact
from tests.streams.exotel_side import Exotel, silence, tone, wav
from tests.streams.test_relay import listed

MENU = {"steps": [
    {"say": "greeting-{language}"},
    {"id": "menu", "gather": {"timeout": 2, "branches": {"1": "yes", "9": "stop"}, "no_input": "bye"}},
    {"id": "yes", "disposition": "interested"}, {"set": {"plan": "gold"}}, {"say": "thanks"}, {"hangup": True},
    {"id": "stop", "opt_out": True}, {"hangup": True},
    {"id": "bye", "disposition": "no_input"},
]}


@pytest.mark.parametrize("spec, message", [
    ({}, "steps"),
    ({"steps": []}, "1 to 200 steps"),
    ({"steps": [{"say": "a", "pause": 1}]}, "Step 1 needs exactly one action"),
    ({"steps": [{"shout": "a"}]}, "does not know shout"),
    ({"steps": [{"say": ""}]}, "Step 1: say takes a prompt name"),
    ({"steps": [{"hangup": True}, {"id": "menu", "say": ""}]}, r'Step 2 \("menu"\): say takes a prompt name'),
    ({"steps": [{"say": "hi-{lang"}]}, "not a valid template"),
    ({"steps": [{"pause": 0}]}, "pause must be a number from 0.1 to 60"),
    ({"steps": [{"gather": {"max_digits": 0}}]}, "max_digits"),
    ({"steps": [{"gather": {"terminator": "x"}}]}, "terminator"),
    ({"steps": [{"gather": {"branches": {"1": "nowhere"}}}]}, "'nowhere', which no step has as id"),
    ({"steps": [{"gather": {"branches": {"a": "x"}}}, {"id": "x", "hangup": True}]}, "not a sequence of keys"),
    ({"steps": [{"goto": "x"}]}, "goto 'x'"),
    ({"steps": [{"id": "a", "hangup": True}, {"id": "a", "hangup": True}]}, "Step 2: id must be a unique"),
    ({"steps": [{"set": {"a": [1]}}]}, "set takes an object"),
    ({"steps": [{"opt_out": "yes"}]}, "opt_out takes true"),
    ({"steps": [{"pause": 1, "barge_in": True}]}, "barge_in"),
    ({"steps": [{"hangup": True}], "barge_in": {"threshold_dbfs": 5}}, "threshold_dbfs"),
])
def test_validate_script_names_what_is_wrong(spec, message):
    with pytest.raises(ValidationError, match=message):
        validate_script(spec)


def test_validate_script_accepts_the_documented_example():
    example = script.__doc__.split("Example:")[1]
    validate_script(json.loads(example))
    validate_script(MENU)


def test_a_prompt_must_be_audio_and_is_kept_at_no_more_than_a_streams_rate(acme):
    with pytest.raises(ValidationError, match="not a WAV or MP3 file that can be decoded"):
        prompts.save_prompt(acme, "bad", ContentFile(b"RIFF nonsense", name="bad.wav"))
    prompt = prompts.save_prompt(acme, "ok", ContentFile(wav(500, 44100), name="ok.wav"))
    assert (prompt.sample_rate, prompt.duration_ms) == (24000, 500)


@pytest.fixture
def script_call(transactional_db, acme):
    prompts.save_prompt(acme, "greeting-hi", ContentFile(wav(600, 16000), name="g.wav"))
    prompts.save_prompt(acme, "thanks", ContentFile(wav(300, 24000), name="t.wav"))
    campaign = make_campaign(acme, bot_kind="script", bot_settings=MENU)
    return make_call(campaign, contact=make_contact(campaign, variables={"language": "hi"}))


async def hear_prompt(exotel: Exotel) -> tuple[bytes, str]:
    """The prompt's audio and the name of the mark that follows it."""
    audio = b""
    while True:
        frame = await exotel.frame()
        if isinstance(frame, protocol.BotMark):
            return audio, frame.name
        audio += frame.payload


async def test_a_caller_hears_the_prompt_presses_a_digit_and_is_dispositioned(script_call):
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    audio, mark = await hear_prompt(exotel)
    # The 16 kHz prompt resampled to the 8 kHz stream, padded to legal chunks only at its end.
    assert 9600 <= len(audio) < 9600 + 3200
    await exotel.mark(mark)
    await exotel.dtmf("1")  # right after the prompt ended: a key for the gather, not a barge-in
    thanks, mark = await hear_prompt(exotel)
    assert 4800 <= len(thanks) < 4800 + 3200
    await exotel.mark(mark)
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=script_call)
    assert session.disposition == "interested"
    assert session.variables == {"digits": "1", "plan": "gold"}
    assert session.stop_reason == "hung_up" and session.dtmf_digits == "1" and session.barge_in_ms == []
    # What the caller heard, from the returned marks: 600 ms of greeting, then 300 ms of thanks padded
    # to legal chunks (3200 + 3200 bytes at 8 kHz).
    assert [(m["name"], m["heard_ms"]) for m in session.marks] == [("say-1", 600), ("say-2", 1000)]
    assert (await Call.objects.aget(pk=script_call.pk)).disposition == "interested"


async def test_no_input_takes_the_no_input_branch(script_call):
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    _, mark = await hear_prompt(exotel)
    await exotel.mark(mark)
    assert await exotel.frame(timeout=4) == ("close", 1000)
    await exotel.hang_up()
    assert (await Call.objects.aget(pk=script_call.pk)).disposition == "no_input"


async def test_a_key_that_leads_to_opt_out_lists_the_number_as_a_key_press(script_call):
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    _, mark = await hear_prompt(exotel)
    await exotel.mark(mark)
    await exotel.dtmf("9")
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    entry = await DoNotCall.objects.aget(workspace=script_call.workspace, phone=script_call.phone)
    assert (entry.source, entry.reason) == (
        "dtmf", f"pressed 9 in the script (call {script_call.pk}, campaign {script_call.campaign_id})")
    assert (await Call.objects.aget(pk=script_call.pk)).disposition == "opted_out"


async def test_an_opt_out_step_reached_without_keys_lists_the_number_as_the_scripts(script_call):
    await Campaign.objects.filter(pk=script_call.campaign_id).aupdate(
        bot_settings={"steps": [{"opt_out": True}, {"pause": 30}]})
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    assert (await listed(script_call)).source == "script"  # recorded at once, while the call goes on
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    assert await DoNotCall.objects.acount() == 1


async def test_speech_during_a_prompt_barges_in_with_clear(script_call):
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    assert isinstance(await exotel.frame(), protocol.BotMedia)
    await exotel.media(silence(100))  # quiet: the prompt goes on
    await exotel.media(tone(100))  # loud: the caller speaks
    frames = await exotel.frames_until(lambda f: isinstance(f, protocol.BotClear))
    assert isinstance(frames[-1], protocol.BotClear)
    await exotel.dtmf("1")
    await hear_prompt(exotel)  # the script moved on to the gather and took the key: "thanks"
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=script_call)
    assert len(session.barge_in_ms) == 1 and session.barge_in_ms[0] >= 0
    assert session.disposition == "interested"


async def test_a_key_during_a_prompt_barges_in_and_counts_for_the_gather(script_call):
    exotel = Exotel(f"/streams/{script_call.token}")
    assert await exotel.connect()
    await exotel.start()
    assert isinstance(await exotel.frame(), protocol.BotMedia)
    await exotel.dtmf("1")
    await exotel.frames_until(lambda f: isinstance(f, protocol.BotClear))
    await hear_prompt(exotel)
    await exotel.hang_up()
    assert (await StreamSession.objects.aget(call=script_call)).variables["digits"] == "1"


@pytest.fixture
def long_prompt_call(transactional_db, acme):
    prompts.save_prompt(acme, "long", ContentFile(wav(5000, 8000), name="long.wav"))
    return make_call(make_campaign(acme, bot_kind="script", bot_settings={"steps": [{"say": "long"}]}))


async def test_a_long_prompt_is_paced_not_dumped(long_prompt_call):
    call = long_prompt_call
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    # 5 s of audio in 200 ms chunks is 25; only the lead (plus the chunk playing) may be ahead of
    # what has played since the first chunk arrived. Measured against the audio's own schedule: a
    # loaded machine only makes chunks later, never earlier. A dump would be seconds ahead.
    allowed_ms = playback.LEAD_MS + 2 * playback.CHUNK_BYTES / bytes_per_ms(8000)
    loop = asyncio.get_running_loop()
    received_ms, first_at = 0.0, None
    while received_ms < 2000:
        frame = await exotel.frame()
        assert isinstance(frame, protocol.BotMedia), frame
        first_at = first_at or loop.time()
        played_ms = (loop.time() - first_at) * 1000
        assert received_ms - played_ms <= allowed_ms, f"{received_ms:.0f} ms sent by {played_ms:.0f} ms"
        received_ms += len(frame.payload) / bytes_per_ms(8000)
    await exotel.hang_up()
