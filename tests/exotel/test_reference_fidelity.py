"""The simulator against the reference (shared/reference/exotel-agentstream.md), table by table.

Each test names the table or section it walks. Requests use the reference's own spelling (the
lower-case Connect path and field names, the Legs examples verbatim) and bots read raw JSON, so a
shape that our own parser would forgive still fails here.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from exotel import audio
from exotel.simulator.config import SimConfig, parse_config

from .conftest import (
    CONFIG,
    KEY,
    NUMBERS,
    SID,
    TOKEN,
    RunningSimulator,
    free_port,
    launch_simulator,
    serve_receiver,
    stop_simulator,
    until,
    wait_for_end,
)

EXAMPLE_NUMBER, EXOPHONE = "+919876543210", "08047491899"   # the reference's own examples
TALKER = "+919800000010"    # speaks for 3 s, presses 5 at 0.3 s, hangs up at 1.2 s
# The same, but hangs up at 3 s: a Legs stream starts only after the answer's event and a request,
# which on a loaded machine may take most of TALKER's call.
LEG_TALKER = "+919800000011"
EVENT_PORT = free_port()
SESSION_LIMIT = 2.0
REFERENCE_CONFIG = CONFIG | {
    "numbers": CONFIG["numbers"] | {
        EXAMPLE_NUMBER: {"hangup_after": 3, "script": [{"at": 0.0, "speech": 3}]},
        TALKER: {"hangup_after": 1.2, "script": [{"at": 0.0, "speech": 3}, {"at": 0.3, "dtmf": "5"}]},
        LEG_TALKER: {"hangup_after": 3, "script": [{"at": 0.0, "speech": 3}, {"at": 0.3, "dtmf": "5"}]},
    },
    "stream": {"max_session_seconds": SESSION_LIMIT},
    "grpc_event_target": f"http://127.0.0.1:{EVENT_PORT}/leg-events",
}


@pytest.fixture(scope="module")
def ref_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    sim = launch_simulator(tmp_path_factory.mktemp("reference"), REFERENCE_CONFIG)
    yield sim
    stop_simulator(sim)


async def post(sim: RunningSimulator, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, TOKEN)) as client:
        return await client.post(path, **kwargs)


class RawBot:
    """A bot that keeps every frame as raw JSON, runs `act` once `start` has arrived, and awaits
    `on_media(ws, start, frame)` for each media frame."""

    def __init__(self, act=None, on_media=None) -> None:
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.act, self.on_media = act, on_media

    def of(self, event: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["event"] == event]

    async def __call__(self, ws: websockets.ServerConnection) -> None:
        tasks = []
        try:
            async for message in ws:
                frame = json.loads(message)
                self.frames.append(frame)
                if frame["event"] == "start" and self.act:
                    tasks.append(asyncio.create_task(self.act(ws, frame)))
                if frame["event"] == "media" and self.on_media:
                    await self.on_media(ws, self.of("start")[0], frame)
        except websockets.ConnectionClosed:
            pass
        self.close_code = ws.close_code


def bot_media(stream_sid: str, pcm: bytes) -> str:
    return json.dumps({"event": "media", "stream_sid": stream_sid, "media": {"payload": base64.b64encode(pcm).decode()}})


# --- Connect Voice AI (direct): the parameter table and the response ---------------------------

CONNECT = {"from": NUMBERS["busy"], "callerid": EXOPHONE, "streamurl": "wss://bot.example.com/stream",
           "streamtype": "bidirectional", "record": "true", "recordingchannels": "dual", "timelimit": "14400",
           "customfield": "c" * 128, "statuscallback": "https://app.example.com/status",
           "statuscallbackevents[]": ["answered", "terminal", "ringing"], "streamname": "s" * 32}


async def test_connect_voice_ai_takes_every_row_of_the_table_and_answers_the_documented_shape(ref_sim):
    response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data=CONNECT)
    assert response.status_code == 200, response.text
    call = response.json()["call"]
    assert set(call) == {"sid", "status", "from", "phonenumbersid", "direction", "datecreated", "recordingurl"}
    assert call["status"] in ("queued", "in-progress", "completed", "failed", "busy", "no-answer")
    assert (call["from"], call["direction"], call["recordingurl"]) == (NUMBERS["busy"], "outbound-api", None)


@pytest.mark.parametrize(("field", "value"), [
    ("from", "12345"),                                                   # E.164
    ("streamurl", "https://bot.example.com/stream"),                     # wss:// or ws://
    ("streamurl", "wss://bot.example.com/" + "u" * (600 - 22 + 1)),      # max 600 chars
    ("streamtype", "sideways"),
    ("recordingchannels", "triple"),                                     # single or dual
    ("timelimit", "14401"),                                              # max 14400
    ("customfield", "c" * 129),                                          # max 128 chars
    ("statuscallbackevents[]", "hungup"),                                # answered, terminal, ringing
    ("streamname", "s" * 33),                                            # max 32 chars
    ("callerid", ""),                                                    # required
])
async def test_connect_voice_ai_refuses_what_the_table_forbids(ref_sim, field, value):
    response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data=CONNECT | {field: value})
    assert response.status_code == 400
    message = response.json()["RestException"]["Message"].lower()
    assert field.removesuffix("[]") in message.replace("_", ""), message


# --- Connect Voice API with a Flow --------------------------------------------------------------

FLOW = {"from": NUMBERS["busy"], "callerid": EXOPHONE, "url": f"https://my.exotel.com/{SID}/exoml/start_voice/42",
        "calltype": "trans", "timelimit": "60", "timeout": "30", "statuscallback": "https://app.example.com/s",
        "statuscallbackevents": "both", "customfield": "passed-to-passthru"}


async def test_connect_with_a_flow_takes_its_table_and_refuses_a_stream_url(ref_sim):
    response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data=FLOW)
    assert response.status_code == 200 and response.json()["call"]["from"] == NUMBERS["busy"]
    refused = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data=FLOW | {"calltype": "promo"})
    assert refused.status_code == 400 and "CallType" in refused.json()["RestException"]["Message"]
    both = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data=FLOW | {"streamurl": "wss://bot/x"})
    assert both.status_code == 400  # "Do not pass streamurl/streamtype here"


# --- Programmable Voice (Legs API, v2): the reference's examples, verbatim ----------------------

async def test_the_legs_examples_run_as_written_with_a_mulaw_stream(ref_sim, bot_server):
    pending = bytearray()

    async def echo(ws, start, frame):  # μ-law back in 200 ms chunks (1600 bytes, 3200 as PCM16)
        pending.extend(base64.b64decode(frame["media"]["payload"]))
        if len(pending) >= 1600:
            await ws.send(bot_media(start["stream_sid"], bytes(pending[:1600])))
            del pending[:1600]

    bot = RawBot(on_media=echo)
    bot_url = await bot_server(bot)
    legs = f"/v2/accounts/{SID}/legs"
    async with serve_receiver(EVENT_PORT) as events:
        created = await post(ref_sim, legs, json={"contact_uri": EXAMPLE_NUMBER, "exophone": EXOPHONE,
                                                  "leg_event_endpoint": "grpc://your-event-server.example.com",
                                                  "timeout": 30})
        assert created.status_code == 202, created.text
        assert set(created.json()) == {"request_id", "http_code", "response"}
        leg_sid = created.json()["response"]["data"]["leg_sid"]

        def named(name: str) -> list[dict[str, Any]]:
            return [r["body"] for r in events.at("/leg-events") if r["body"]["event_name"] == name]

        await until(lambda: named("leg_answered"), what="leg_answered at the grpc event target")
        actions = f"{legs}/{leg_sid}/actions"
        stream, say = await asyncio.gather(  # "fire both requests at once on leg_answered"
            post(ref_sim, f"{actions}/start_stream", json={"direction": "bidirectional", "url": bot_url,
                                                           "content_type": "audio/x-mulaw;rate=8000"}),
            post(ref_sim, f"{actions}/start_say", json={"text": "Please hold.", "loop": 0}))
        assert (stream.status_code, say.status_code) == (202, 202)
        await until(lambda: named("stream_started"), what="stream_started")
        stopped = await post(ref_sim, f"{actions}/stop_say")  # no body, as in the reference
        assert stopped.status_code == 202, stopped.text
        await until(lambda: named("leg_terminated"), timeout=10, what="leg_terminated")
    assert [name for name in ("leg_connecting", "leg_ringing", "leg_answered") if named(name)] == [
        "leg_connecting", "leg_ringing", "leg_answered"]
    (start,) = bot.of("start")
    assert start["start"]["media_format"] == {"encoding": "audio/x-mulaw", "sample_rate": "8000", "bit_rate": "8"}
    heard = b"".join(base64.b64decode(f["media"]["payload"]) for f in bot.of("media"))
    assert {len(base64.b64decode(f["media"]["payload"])) for f in bot.of("media")} == {800}  # 100 ms of μ-law
    assert abs(audio.rms_dbfs(audio.mulaw_to_pcm(heard)) - -20) < 3  # the caller's -20 dBFS speech, decoded
    call = ref_sim.call(leg_sid)
    assert (call["violations"], call["chunk_warnings"]) == (0, 0)  # 1600 μ-law bytes are a legal 3200
    assert ref_sim.records("frame", call_sid=leg_sid, dir="received", event="media")
    assert [r["action"] for r in ref_sim.records("say", leg_sid=leg_sid)][0] == "start"


# --- WebSocket protocol: every event and field, numbers as strings ------------------------------

async def test_every_event_carries_the_reference_fields(ref_sim, bot_server):
    async def act(ws, start):
        await ws.send(bot_media(start["stream_sid"], bytes(3200)))
        await ws.send(json.dumps({"event": "mark", "stream_sid": start["stream_sid"], "mark": {"name": "my-label"}}))

    bot = RawBot(act)
    url = await bot_server(bot)
    response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data={
        "from": TALKER, "callerid": EXOPHONE, "streamurl": url + "?key1=value1", "streamtype": "bidirectional"})
    await wait_for_end(ref_sim, response.json()["call"]["sid"])
    connected, start = bot.frames[:2]
    assert connected == {"event": "connected"}
    assert set(start) == {"event", "sequence_number", "stream_sid", "start"}
    assert set(start["start"]) == {"stream_sid", "call_sid", "account_sid", "from", "to", "custom_parameters",
                                   "media_format"}
    body = start["start"]
    assert (body["from"], body["to"], body["account_sid"]) == (TALKER, "+918047491899", SID)  # E.164 both
    assert body["custom_parameters"] == {"key1": "value1"}
    assert body["media_format"] == {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}
    media = bot.of("media")
    assert all(set(f) == {"event", "sequence_number", "stream_sid", "media"} and
               set(f["media"]) == {"chunk", "timestamp", "payload"} for f in media)
    (dtmf,) = bot.of("dtmf")
    assert dtmf["dtmf"] == {"digit": "5", "duration": "100"}
    (mark,) = bot.of("mark")
    assert mark["mark"] == {"name": "my-label"}
    (stop,) = bot.of("stop")
    assert stop["stop"] == {"call_sid": body["call_sid"], "account_sid": SID, "reason": "callended"}
    numbers = [f["sequence_number"] for f in bot.frames[1:]] + [v for f in media for v in
                                                                (f["media"]["chunk"], f["media"]["timestamp"])]
    assert all(isinstance(n, str) and n.isdigit() for n in numbers)  # "Numbers inside events arrive as strings"
    assert {f["stream_sid"] for f in bot.frames[1:]} == {body["stream_sid"]}
    assert bot.close_code == 1000  # close codes table: normal closure after `stop`


# --- Audio format: rates, chunk sizes, the 60-minute session ------------------------------------

@pytest.mark.parametrize("rate", [None, 8000, 16000, 24000])
async def test_caller_audio_is_base64_pcm16_at_each_supported_rate(ref_sim, bot_server, rate):
    bot = RawBot()
    url = await bot_server(bot) + (f"?sample-rate={rate}" if rate else "")
    response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data={
        "from": NUMBERS["answer"], "callerid": EXOPHONE, "streamurl": url, "streamtype": "bidirectional"})
    await wait_for_end(ref_sim, response.json()["call"]["sid"])
    expected = rate or 8000  # "Default sample rate 8000 Hz"
    assert bot.of("start")[0]["start"]["media_format"]["sample_rate"] == str(expected)
    sizes = {len(base64.b64decode(f["media"]["payload"])) for f in bot.of("media")}
    assert sizes == {expected * 2 // 10}  # 16-bit mono, about every 100 ms


def quiet_bot(*chunks: bytes, linger: float = 0.3) -> RawBot:
    async def act(ws, start):
        for chunk in chunks:
            await ws.send(bot_media(start["stream_sid"], chunk))
        await asyncio.sleep(linger)
        await ws.close()

    return RawBot(act)


async def dial_silent(sim: RunningSimulator, url: str, **fields: str) -> str:
    response = await post(sim, f"/v1/accounts/{SID}/calls/connect", data={
        "from": NUMBERS["silent"], "callerid": EXOPHONE, "streamurl": url, "streamtype": "bidirectional", **fields})
    assert response.status_code == 200, response.text
    return response.json()["call"]["sid"]


@pytest.mark.parametrize(("size", "warning"), [
    # 3200-100000, a multiple of 320: so the largest legal chunk is 99840 (100000 is not a multiple).
    (3200, ""), (3520, ""), (99840, ""), (100000, "not a multiple of 320"),
    (1600, "under 3200"), (3330, "not a multiple of 320"), (100320, "over 100000"),
])
async def test_chunk_sizes_outside_the_table_are_chunk_warnings(ref_sim, bot_server, size, warning):
    sid = await dial_silent(ref_sim, await bot_server(quiet_bot(bytes(size))))
    call = await wait_for_end(ref_sim, sid)
    assert [w["reason"] for w in ref_sim.records("chunk_warning", call_sid=sid)] == (
        [f"chunk of {size} bytes is {warning}"] if warning else [])
    assert (call["violations"], call["ended_by"]) == (0, "bot")  # degraded audio, not a closed socket


def runs(samples: np.ndarray) -> list[tuple[bool, int]]:
    """(is sound, length) for each run of sound or silence in a track."""
    edges = np.flatnonzero(np.diff(samples != 0)) + 1
    return [(bool(part[0] != 0), len(part)) for part in np.split(samples, edges)]


async def test_bad_chunks_degrade_what_the_caller_hears_as_the_notes_describe(ref_sim, bot_server):
    odd = np.full(1665, 1000, dtype="<i2").tobytes()        # 3330 bytes: not a multiple of 320
    too_big = np.full(50160, 1000, dtype="<i2").tobytes()   # 100320 bytes: over 100 KB
    sid = await dial_silent(ref_sim, await bot_server(quiet_bot(too_big, odd, odd, linger=0.6)),
                            record="true", recordingchannels="dual")
    await wait_for_end(ref_sim, sid)
    recording = httpx.get(f"{ref_sim.base_url}/_sim/recordings/{sid}.wav").content
    with wave.open(io.BytesIO(recording)) as wav:
        bot_track = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)[:, 1]
    # The oversized chunk timed out unheard; each odd chunk is followed by a 20 ms gap (160 samples,
    # give or take one for rounding a time to a sample).
    (first, gap, second) = runs(np.trim_zeros(bot_track))
    assert (first, second) == ((True, 1665), (True, 1665)) and not gap[0] and abs(gap[1] - 160) <= 1
    effects = [w["effects"] for w in ref_sim.records("chunk_warning", call_sid=sid)]
    assert effects == [["timed out, not played"], ["20 ms gap after it"], ["20 ms gap after it"]]


async def test_a_stream_ends_at_the_session_limit(ref_sim, bot_server):
    assert SimConfig().max_session_seconds == parse_config({}).max_session_seconds == 60 * 60  # "Max session"
    bot = RawBot()
    sid = await dial_silent(ref_sim, await bot_server(bot))  # this caller never hangs up
    call = await wait_for_end(ref_sim, sid)
    assert bot.of("stop")[0]["stop"]["reason"] == "stopped" and call["ended_by"] == "system"
    (limit,) = ref_sim.records("limit", call_sid=sid)
    assert limit["seconds"] == SESSION_LIMIT


# --- Applets: VoiceBot parameters, and the Stream applet's one-way audio -----------------------

async def test_voicebot_custom_parameters_are_limited_to_three_pairs_and_256_characters(ref_sim, bot_server):
    bot = RawBot()
    base = await bot_server(bot) + "?sample-rate=16000&"
    three = base + "a=1&b=2&c=" + "x" * (256 - len("a=1&b=2&c="))   # 256 characters, sample-rate not counted
    sid = await dial_silent(ref_sim, three, timelimit="1")
    await wait_for_end(ref_sim, sid)
    assert bot.of("start")[0]["start"]["custom_parameters"] == {"a": "1", "b": "2", "c": "x" * 246}
    for url in (base + "a=1&b=2&c=3&d=4", three + "x"):
        response = await post(ref_sim, f"/v1/accounts/{SID}/calls/connect", data={
            "from": NUMBERS["silent"], "callerid": EXOPHONE, "streamurl": url, "streamtype": "bidirectional"})
        assert response.status_code == 400 and "custom_parameters" in response.json()["RestException"]["Message"]


async def dial_one_way(sim: RunningSimulator, applet: str, url: str) -> str:
    """A call whose stream is unidirectional: by StreamType, a Stream applet, or Legs `direction`."""
    if applet == "legs":
        async with serve_receiver(EVENT_PORT) as events:
            created = await post(sim, f"/v2/accounts/{SID}/legs", json={
                "contact_uri": LEG_TALKER, "exophone": EXOPHONE, "leg_event_endpoint": "grpc://events.example.com"})
            leg_sid = created.json()["response"]["data"]["leg_sid"]
            await until(lambda: any(r["body"]["event_name"] == "leg_answered" for r in events.requests))
            await post(sim, f"/v2/accounts/{SID}/legs/{leg_sid}/actions/start_stream",
                       json={"direction": "unidirectional", "url": url, "content_type": "audio/x-l16;rate=8000"})
            await wait_for_end(sim, leg_sid)
        return leg_sid
    fields = {"from": TALKER, "callerid": EXOPHONE}
    if applet == "flow":
        httpx.put(f"{sim.base_url}/_sim/flows/listen", json={"voicebot_url": url, "applet": "stream"})
        fields["url"] = f"https://my.exotel.com/{SID}/exoml/start_voice/listen"
    else:
        fields |= {"streamurl": url, "streamtype": "unidirectional"}
    sid = (await post(sim, f"/v1/accounts/{SID}/calls/connect", data=fields)).json()["call"]["sid"]
    await wait_for_end(sim, sid)
    return sid


@pytest.mark.parametrize("applet", ["streamtype", "flow", "legs"])
async def test_a_unidirectional_stream_is_receive_only(ref_sim, bot_server, applet):
    async def act(ws, start):
        sid = start["stream_sid"]
        await ws.send(bot_media(sid, bytes(3200)))
        await ws.send(json.dumps({"event": "mark", "stream_sid": sid, "mark": {"name": "never"}}))
        await ws.send(json.dumps({"event": "clear", "stream_sid": sid}))

    bot = RawBot(act)
    sid = await dial_one_way(ref_sim, applet, await bot_server(bot))
    assert bot.of("media") and not bot.of("mark") and not bot.of("dtmf")  # dtmf and mark: VoiceBot only
    reasons = [v["reason"] for v in ref_sim.records("violation", call_sid=sid)]
    assert reasons == [f"{event} on a unidirectional stream, which is receive-only"
                       for event in ("media", "mark", "clear")]
    assert {v["code"] for v in ref_sim.records("violation", call_sid=sid)} == {1008}


# --- WebSocket close codes: what the simulator sends, row by row (strict mode) ------------------

async def test_strict_closes_use_the_codes_of_the_table(strict_simulator, bot_server):
    async def close_code(frame: str) -> int:
        async def act(ws, start):
            await ws.send(frame.replace("SID", start["stream_sid"]))

        bot = RawBot(act)
        await wait_for_end(strict_simulator, await dial_silent(strict_simulator, await bot_server(bot)))
        return await until(lambda: bot.close_code, what="close")

    table = {  # reference code: a frame that earns it
        1002: '{"no": "event"}',                                              # protocol error
        1003: "not json",                                                     # data error
        1007: bot_media("SID", bytes(1600)),                                  # chunk out of bounds
        1008: bot_media("MZ-another-stream", bytes(3200)),                    # policy
        1009: bot_media("SID", bytes(100320)),                                # size
    }
    assert {code: await close_code(frame) for code, frame in table.items()} == {code: code for code in table}


# --- Active streams ------------------------------------------------------------------------------

async def test_active_streams_answers_the_documented_shape(ref_sim):
    async with httpx.AsyncClient(auth=(KEY, TOKEN)) as client:
        answer = (await client.get(f"{ref_sim.base_url}/v1/accounts/{SID}/activestreams")).json()
    assert set(answer) == {"status", "active_streams", "max_allowed_streams", "account_sid"}
    assert (answer["status"], answer["max_allowed_streams"], answer["account_sid"]) == ("success", 100, SID)
