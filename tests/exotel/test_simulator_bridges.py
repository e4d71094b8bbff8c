"""The simulator's bridges: an agent's leg joined to a streaming caller's leg, their events, their end."""

from __future__ import annotations

import pytest

from exotel.client import AsyncExotelClient, NewLeg
from exotel.errors import ExotelError

from .conftest import NUMBERS, BotLog, echo_handler, until, wait_for_end

EXOPHONE = "08047491899"


def names(receiver, path="/events"):
    return [r["body"]["event_name"] for r in receiver.at(path)]


async def answered_leg(client, receiver, number, param):
    leg = await client.create_leg(NewLeg(number=number, exophone=EXOPHONE, custom_param=param,
                                         leg_event_endpoint=receiver.url + "/events"))
    await until(lambda: any(r["body"]["event_name"] == "leg_answered" and r["body"]["data"]["custom_param"] == param
                            for r in receiver.at("/events")), what=f"{param} answered")
    return leg


async def test_a_bridge_stops_the_callers_stream_and_ends_both_legs_when_one_hangs_up(sim, bot_server, receiver):
    bot_url = await bot_server(echo_handler(BotLog()))
    async with AsyncExotelClient(sim.account()) as client:
        caller = await answered_leg(client, receiver, NUMBERS["silent"], "caller")
        await client.start_stream(caller.leg_sid, url=bot_url)
        await until(lambda: "stream_started" in names(receiver), what="stream_started")
        agent = await answered_leg(client, receiver, NUMBERS["talk"], "agent")  # talks 3 s, then hangs up
        bridge = await client.create_bridge([caller.leg_sid, agent.leg_sid],
                                            bridge_event_endpoint=receiver.url + "/bridges")
    assert bridge.bridge_sid.startswith("br")
    caller_call = await wait_for_end(sim, caller.leg_sid)
    agent_call = await wait_for_end(sim, agent.leg_sid)
    assert caller_call["status"] == agent_call["status"] == "completed"
    assert caller_call["ended_by"] == "system"  # its stream was stopped as it joined the bridge
    await until(lambda: "bridge_terminal" in names(receiver, "/bridges"), what="bridge_terminal")
    bridge_events = [r["body"] for r in receiver.at("/bridges")]
    assert [e["event_name"] for e in bridge_events] == ["bridge_created", "bridge_terminal"]
    assert bridge_events[0]["data"]["bridge_sid"] == bridge.bridge_sid
    assert bridge_events[0]["data"]["leg_sids"] == [caller.leg_sid, agent.leg_sid]
    await until(lambda: names(receiver).count("leg_terminated") == 2, what="both legs ended")
    for param in ("caller", "agent"):
        mine = [r["body"]["event_name"] for r in receiver.at("/events") if r["body"]["data"]["custom_param"] == param]
        assert mine.index("leg_joined_bridge") < mine.index("leg_left_bridge") < mine.index("leg_terminated")


async def test_an_api_hang_up_of_a_bridged_leg_ends_the_bridge(sim, receiver):
    async with AsyncExotelClient(sim.account()) as client:
        caller = await answered_leg(client, receiver, NUMBERS["silent"], "c2")
        agent = await answered_leg(client, receiver, NUMBERS["silent"], "a2")
        await client.create_bridge([caller.leg_sid, agent.leg_sid], bridge_event_endpoint=receiver.url + "/bridges")
        await until(lambda: "bridge_created" in names(receiver, "/bridges"), what="bridge_created")
        await client.hangup_leg(agent.leg_sid)
    assert (await wait_for_end(sim, caller.leg_sid))["status"] == "completed"
    await until(lambda: "bridge_terminal" in names(receiver, "/bridges"), what="bridge_terminal")


async def test_unanswered_or_unknown_legs_cannot_be_bridged(sim, receiver):
    async with AsyncExotelClient(sim.account()) as client:
        caller = await answered_leg(client, receiver, NUMBERS["silent"], "c3")
        ringing = await client.create_leg(NewLeg(number=NUMBERS["slow_ring"], exophone=EXOPHONE,
                                                 leg_event_endpoint=receiver.url + "/events"))
        with pytest.raises(ExotelError) as refused:
            await client.create_bridge([caller.leg_sid, ringing.leg_sid], bridge_event_endpoint=receiver.url + "/b")
        assert refused.value.status == 409
        with pytest.raises(ExotelError) as unknown:
            await client.create_bridge([caller.leg_sid, "nosuchleg"], bridge_event_endpoint=receiver.url + "/b")
        assert unknown.value.status == 409
        with pytest.raises(ExotelError):  # refused before it is sent: one leg is no bridge
            await client.create_bridge([caller.leg_sid], bridge_event_endpoint=receiver.url + "/b")
        await client.hangup_leg(caller.leg_sid)


@pytest.mark.parametrize(("number", "outcome"), [("busy", "busy"), ("no_answer", "no-answer")])
async def test_agent_legs_have_their_numbers_fates(sim, receiver, number, outcome):
    async with AsyncExotelClient(sim.account()) as client:
        leg = await client.create_leg(NewLeg(number=NUMBERS[number], exophone=EXOPHONE, custom_param="agent.x",
                                             leg_event_endpoint=receiver.url + "/events", ring_timeout=5))
    assert (await wait_for_end(sim, leg.leg_sid))["status"] == outcome
    terminated = await until(lambda: [r["body"] for r in receiver.at("/events")
                                      if r["body"]["event_name"] == "leg_terminated"], what="leg_terminated")
    assert terminated[0]["event_data"] == {"status": outcome}
