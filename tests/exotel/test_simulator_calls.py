"""The simulator's calls against a plain echo bot: outcomes, status callbacks, flows, legs, recordings."""

from __future__ import annotations

import json

import httpx
import pytest

from exotel import audio, protocol
from exotel.client import AsyncExotelClient, BotCall, FlowCall, NewLeg

from .conftest import NUMBERS, SID, BotLog, echo_handler, until, wait_for_end

EXOPHONE = "08047491899"


async def dial(sim, stream_url, number=NUMBERS["answer"], **fields):
    async with AsyncExotelClient(sim.account()) as client:
        return await client.connect_to_bot(BotCall(number=number, caller_id=EXOPHONE, stream_url=stream_url,
                                                   **fields))


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", ""])
async def test_an_answered_call_streams_and_reports_its_status(sim, bot_server, receiver, content_type):
    log = BotLog()
    url = await bot_server(echo_handler(log))
    info = await dial(sim, url + "?sample-rate=16000&token=abc", custom_field="tok-9",
                      status_callback=receiver.url + "/status", status_callback_events=("answered", "terminal"),
                      status_callback_content_type=content_type)
    call = await wait_for_end(sim, info.sid)
    assert (call["status"], call["ended_by"]) == ("completed", "caller")
    start = log.of(protocol.Start)[0]
    assert (start.call_sid, start.account_sid, start.from_, start.to) == (info.sid, SID, NUMBERS["answer"],
                                                                          "+918047491899")  # E.164, as the reference shows
    assert (start.sample_rate, dict(start.custom_parameters)) == (16000, {"token": "abc"})
    assert {len(m.payload) for m in log.of(protocol.Media)} == {3200}  # 100 ms at 16 kHz
    stop = await until(lambda: log.of(protocol.Stop), what="the bot to read the stop")  # it may lag the end
    assert stop[0].reason == "callended"
    callbacks = await until(lambda: len(receiver.at("/status")) == 2 and receiver.at("/status"), what="callbacks")
    answered, terminal = (r["body"] for r in callbacks)
    assert callbacks[0]["content_type"] == (content_type or "application/x-www-form-urlencoded")
    assert (answered["EventType"], answered["Status"], answered["CallSid"]) == ("answered", "in-progress", info.sid)
    assert (terminal["EventType"], terminal["Status"], terminal["CustomField"]) == ("terminal", "completed", "tok-9")
    assert "CustomField" not in answered
    legs_status = terminal["Legs"][0]["Status"] if content_type == "application/json" else terminal["Legs[0][Status]"]
    assert legs_status == "completed"


@pytest.mark.parametrize("outcome", ["busy", "no_answer", "failed"])
async def test_unanswered_calls_end_with_their_outcome_and_no_stream(sim, receiver, outcome):
    info = await dial(sim, "ws://127.0.0.1:9/never", number=NUMBERS[outcome],
                      status_callback=receiver.url + "/status")
    call = await wait_for_end(sim, info.sid)
    assert call["status"] == outcome.replace("_", "-") and not call["stream_sid"]
    (terminal,) = await until(lambda: receiver.at("/status"), what="terminal callback")
    assert terminal["body"]["Status"] == outcome.replace("_", "-") and terminal["body"]["EventType"] == "terminal"


async def test_a_ring_timeout_shorter_than_the_ringing_is_no_answer(sim):
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_flow(FlowCall(number=NUMBERS["slow_ring"], caller_id=EXOPHONE, timeout=1,
                                                     flow_url=f"https://my.exotel.com/{SID}/exoml/start_voice/9"))
    assert (await wait_for_end(sim, info.sid))["status"] == "no-answer"


async def test_a_number_takes_its_later_plans_on_later_dials_and_keeps_the_last(sim, bot_server):
    url = await bot_server(echo_handler(BotLog()))
    ends = []
    for _ in range(4):
        info = await dial(sim, url, number=NUMBERS["then_busy"])
        ends.append((await wait_for_end(sim, info.sid))["status"])
    assert ends == ["completed", "busy", "no-answer", "no-answer"]


async def test_the_bot_hangs_up_by_closing_the_socket(sim, bot_server, receiver):
    url = await bot_server(echo_handler(BotLog(), close_after=0.3))
    info = await dial(sim, url, number=NUMBERS["silent"], status_callback=receiver.url + "/status")
    call = await wait_for_end(sim, info.sid)
    assert (call["status"], call["ended_by"]) == ("completed", "bot")
    (terminal,) = await until(lambda: receiver.at("/status"), what="terminal callback")
    assert terminal["body"]["Status"] == "completed"


async def test_the_time_limit_stops_the_stream(sim, bot_server):
    log = BotLog()
    info = await dial(sim, await bot_server(echo_handler(log)), number=NUMBERS["silent"], time_limit=1)
    call = await wait_for_end(sim, info.sid)
    assert call["ended_by"] == "system" and log.of(protocol.Stop)[0].reason == "stopped"


async def test_dtmf_reaches_the_bot_in_order(sim, bot_server):
    log = BotLog()
    info = await dial(sim, await bot_server(echo_handler(log)), number=NUMBERS["dtmf"])
    await wait_for_end(sim, info.sid)
    assert [d.digit for d in log.of(protocol.Dtmf)] == ["5", "7"]


async def test_a_failed_handshake_is_retried_once_then_the_call_fails(sim):
    position = sim.log_position()
    info = await dial(sim, "ws://127.0.0.1:9/nobody")
    assert (await wait_for_end(sim, info.sid))["status"] == "failed"
    assert len(sim.records("ws", since=position, action="connect_failed", call_sid=info.sid)) == 2


async def test_a_recording_holds_what_the_caller_said_and_what_the_bot_played(sim, bot_server, receiver):
    info = await dial(sim, await bot_server(echo_handler(BotLog())), number=NUMBERS["dtmf"], record=True,
                      status_callback=receiver.url + "/status")  # this caller speaks from 0.1 s to 0.6 s
    await wait_for_end(sim, info.sid)
    (terminal,) = await until(lambda: receiver.at("/status"), what="terminal callback")
    recording_url = terminal["body"]["RecordingUrl"]
    assert recording_url == f"{sim.base_url}/_sim/recordings/{info.sid}.wav"
    pcm, rate = audio.wav_to_pcm(httpx.get(recording_url).content)
    assert rate == 8000 and 1.0 < len(pcm) / 16000 < 2.0
    assert audio.rms_dbfs(pcm) > -40  # the caller's bursts (and their echo) are in it


@pytest.mark.parametrize("style", ["flat", "nested", "json"])
async def test_a_flow_streams_to_its_voicebot_and_calls_passthru(sim, bot_server, receiver, style):
    log = BotLog()
    bot_url = await bot_server(echo_handler(log))
    flow_id = f"flow-{style}"
    httpx.put(f"{sim.base_url}/_sim/flows/{flow_id}", json={
        "voicebot_url": bot_url, "passthru_url": receiver.url + "/passthru", "passthru_style": style,
    }).raise_for_status()
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_flow(FlowCall(
            number=NUMBERS["answer"], caller_id=EXOPHONE, custom_field="tok-flow",
            flow_url=f"https://my.exotel.com/{SID}/exoml/start_voice/{flow_id}"))
    await wait_for_end(sim, info.sid)
    (passthru,) = await until(lambda: receiver.at("/passthru"), what="passthru")
    query = passthru["query"]
    assert passthru["method"] == "GET" and log.of(protocol.Start)[0].call_sid == info.sid
    if style == "flat":
        assert (query["callsid"], query["status"], query["disconnectedby"], query["customfield"]) == (
            info.sid, "completed", "caller", "tok-flow")
        assert query["streamurl"] == bot_url and query["streamsid"].startswith("MZ")
    else:
        stream = (json.loads(query["Stream"]) if style == "json"
                  else {k[7:-1]: v for k, v in query.items() if k.startswith("Stream[")})
        assert (query["CallSid"], query["flow_id"], query["CustomField"]) == (info.sid, flow_id, "tok-flow")
        assert (stream["Status"], stream["DisconnectedBy"], stream["StreamUrl"]) == ("completed", "user", bot_url)


async def test_a_flows_transfer_applet_rings_its_numbers_after_the_bot_and_passthru_names_who_answered(
        sim, bot_server, receiver):
    bot_url = await bot_server(echo_handler(BotLog(), close_after=0.3))  # the bot ends its part: the flow goes on
    httpx.put(f"{sim.base_url}/_sim/flows/xfer", json={
        "voicebot_url": bot_url, "passthru_url": receiver.url + "/passthru", "passthru_style": "nested",
        "transfer_to": [NUMBERS["busy"], NUMBERS["slow_ring"], NUMBERS["answer"]], "transfer_ring_seconds": 1,
    }).raise_for_status()
    since = sim.log_position()
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_flow(FlowCall(number=NUMBERS["silent"], caller_id=EXOPHONE, custom_field="t",
                                                     flow_url=f"https://my.exotel.com/{SID}/exoml/start_voice/xfer"))
    assert (await wait_for_end(sim, info.sid))["status"] == "completed"  # the agent hung up after 0.7 s
    (passthru,) = await until(lambda: receiver.at("/passthru"), what="passthru")
    assert passthru["query"]["DialWhomNumber"] == NUMBERS["answer"]
    assert [(r["number"], r["outcome"]) for r in sim.records("transfer", since=since)] == [
        (NUMBERS["busy"], "busy"), (NUMBERS["slow_ring"], "no-answer"), (NUMBERS["answer"], "answer")]


async def test_a_dynamic_voicebot_url_is_asked_for_the_websocket_url(sim, bot_server, receiver):
    bot_url = await bot_server(echo_handler(BotLog()))
    receiver.replies["/voicebot"] = {"url": bot_url}
    httpx.put(f"{sim.base_url}/_sim/flows/dyn", json={"voicebot_url": receiver.url + "/voicebot"}).raise_for_status()
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_flow(FlowCall(number=NUMBERS["answer"], caller_id=EXOPHONE, custom_field="t",
                                                     flow_url=f"https://my.exotel.com/{SID}/exoml/start_voice/dyn"))
    call = await wait_for_end(sim, info.sid)
    assert call["status"] == "completed" and call["stream_url"] == bot_url
    query = receiver.at("/voicebot")[0]["query"]
    assert query == {"CallSid": info.sid, "CallFrom": NUMBERS["answer"], "CallTo": EXOPHONE,
                     "Direction": "outbound-api", "CustomField": "t"}


async def test_leg_events_carry_headers_and_are_retried(sim, bot_server, receiver):
    receiver.statuses = [500, 429]  # the first event needs three attempts
    bot_url = await bot_server(echo_handler(BotLog()))
    async with AsyncExotelClient(sim.account()) as client:
        leg = await client.create_leg(NewLeg(number=NUMBERS["silent"], exophone=EXOPHONE, custom_param="tok-leg",
                                             leg_event_endpoint=receiver.url + "/events"))
        await until(lambda: any(r["body"]["event_name"] == "leg_answered" for r in receiver.at("/events")),
                    what="leg_answered")
        await client.start_say(leg.leg_sid, "Please hold while we connect you.")
        await client.start_stream(leg.leg_sid, url=bot_url)
        await until(lambda: any(r["body"]["event_name"] == "stream_started" for r in receiver.at("/events")),
                    what="stream_started")
        await client.stop_say(leg.leg_sid)
        await client.hangup_leg(leg.leg_sid)
    await until(lambda: any(r["body"]["event_name"] == "leg_terminated" for r in receiver.at("/events")),
                what="leg_terminated")
    events = receiver.at("/events")
    first = [e for e in events if e["body"]["event_name"] == "leg_connecting"]
    sid = first[0]["headers"]["X-Exotel-Event-Sid"]
    assert [e["headers"]["X-Exotel-Request-Id"] for e in first] == [f"{sid}-1", f"{sid}-2", f"{sid}-3"]
    names = [e["body"]["event_name"] for e in events[2:]]
    assert names == ["leg_connecting", "leg_ringing", "leg_answered", "stream_started", "leg_terminated"]
    answered = next(e["body"] for e in events if e["body"]["event_name"] == "leg_answered")
    assert answered["event_type"] == "leg_lifecycle_event"
    assert answered["data"] | {"state": "answered"} == {
        "leg_sid": leg.leg_sid, "account_sid": SID, "contact_uri": NUMBERS["silent"], "exophone": EXOPHONE,
        "state": "answered", "custom_param": "tok-leg"}
    assert next(e["body"] for e in events if e["body"]["event_name"] == "stream_started")["event_type"] == (
        "leg_action_event")
    assert [r["action"] for r in sim.records("say", leg_sid=leg.leg_sid)] in (["start", "stop"], ["start", "interrupted"])


@pytest.mark.parametrize("amd_async", [False, True])
async def test_a_leg_with_amd_hears_exotels_verdict_before_or_after_its_answer(sim, receiver, amd_async):
    async with AsyncExotelClient(sim.account()) as client:
        leg = await client.create_leg(NewLeg(number=NUMBERS["machine"], exophone=EXOPHONE, amd=True,
                                             amd_async=amd_async, leg_event_endpoint=receiver.url + "/amd"))
    await until(lambda: any(r["body"]["event_name"] == "leg_terminated" for r in receiver.at("/amd")),
                what="leg_terminated")
    events = [r["body"] for r in receiver.at("/amd") if r["body"]["data"]["leg_sid"] == leg.leg_sid]
    names = [e["event_name"] for e in events]
    verdict = next(e for e in events if e["event_name"] == "amd_result_success")
    assert verdict["event_data"] == {"answered_by": "machine"}
    # Held (amd_enable alone), the answer waits for the verdict; with async_amd it comes first.
    assert (names.index("amd_result_success") > names.index("leg_answered")) == amd_async


async def test_a_say_with_loops_completes_by_itself(sim, receiver):
    async with AsyncExotelClient(sim.account()) as client:
        leg = await client.create_leg(NewLeg(number=NUMBERS["silent"], exophone=EXOPHONE,
                                             leg_event_endpoint=receiver.url + "/events", time_limit=3))
        await until(lambda: any(r["body"]["event_name"] == "leg_answered" for r in receiver.at("/events")))
        accepted = await client.start_say(leg.leg_sid, "Hi", loop=2)
    completed = await until(lambda: [r["body"] for r in receiver.at("/events")
                                     if r["body"]["event_name"] == "say_completed"], what="say_completed")
    assert completed[0]["action_sid"] == accepted.request_id


async def test_the_calls_endpoint_lists_calls_with_state(sim):
    info = await dial(sim, "ws://127.0.0.1:9/x", number=NUMBERS["busy"])
    await wait_for_end(sim, info.sid)
    listed = sim.call(info.sid)
    assert listed["mode"] == "bot" and listed["status"] == "busy" and listed["account_sid"] == SID
