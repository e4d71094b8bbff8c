"""Simulated bridges (Exotel's Legs & Bridges API): two answered legs joined so they hear each other.

`POST /v2/accounts/{sid}/bridges` with `{"leg_sids": [...], "bridge_event_endpoint": url}` answers 202
with the bridge's sid (v2 envelope). Every leg must be this account's, answered and not ended, and in
no other bridge (else 409). A leg that streams stops its stream as it joins (`stop`, reason
`stopped`): one leg cannot both hear a bot and a person. Events, in order, to the bridge's endpoint
(the HTTPS JSON form of leg events): `bridge_created`, then `leg_joined_bridge` per leg to its own
leg event endpoint; when any leg's party hangs up (its number's `hangup_after`, counted from that
leg's answer, an API hang-up, or its time limit), `leg_left_bridge` per leg, `bridge_terminal`, and
the legs end (`leg_terminated`, status completed). Choices where Exotel's page is silent: a leg
whose party had already passed its `hangup_after` before the bridge leaves it at once; the bridge
itself has no time limit.

Agent legs are plain legs: an agent's number takes a plan like any number (answer, busy,
no-answer, ring time, hangup_after = how long they talk), so each agent has its own fate.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exotel.simulator.callbacks import now, timestamp

if TYPE_CHECKING:
    from exotel.simulator.calls import SimCall, Simulator


class BridgeRefused(Exception):
    """The legs cannot be bridged; the message says why (answered 409)."""


@dataclass
class SimBridge:
    sid: str
    account_sid: str
    legs: list[SimCall]
    endpoint: str
    created: datetime = field(default_factory=now)
    ended: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    hangup: asyncio.Event = field(default_factory=asyncio.Event)  # an API hang-up of one of its legs

    def summary(self) -> dict[str, Any]:
        return {"sid": self.sid, "legs": [leg.sid for leg in self.legs], "created": timestamp(self.created),
                "ended": timestamp(self.ended)}


def create_bridge(sim: Simulator, account_sid: str, leg_sids: list[str], endpoint: str) -> SimBridge:
    legs = [sim.calls.get(sid) for sid in leg_sids]
    for sid, leg in zip(leg_sids, legs, strict=True):
        if leg is None or leg.mode != "leg" or leg.account_sid != account_sid:
            raise BridgeRefused(f"Leg {sid} not found")
        if leg.leg_state != "answered" or leg.bridge is not None:
            raise BridgeRefused(f"Leg {sid} is not an answered leg outside any bridge (it is {leg.leg_state})")
    bridge = SimBridge("br" + secrets.token_hex(15), account_sid, legs, endpoint)
    sim.bridges[bridge.sid] = bridge
    sim.log.write("bridge", bridge_sid=bridge.sid, action="created", legs=leg_sids)
    for leg in legs:
        leg.bridge = bridge
        if leg.session:
            leg.session.request_stop("stopped", "system")
        elif leg.stream_request and not leg.stream_request.done():
            leg.stream_request.set_result(("", ""))
    sim.spawn(_run(sim, bridge))
    return bridge


async def _run(sim: Simulator, bridge: SimBridge) -> None:
    assert sim.deliveries
    await sim.deliveries.bridge_event(bridge, "bridge_created", state="active")
    for leg in bridge.legs:
        sim.leg_event(leg, "leg_joined_bridge", event_data={"bridge_sid": bridge.sid})
    loop = asyncio.get_running_loop()
    deadlines = [leg.hangup_at for leg in bridge.legs if leg.hangup_at is not None]
    wait = max(0.0, min(deadlines) - loop.time()) if deadlines else None
    hangup = asyncio.ensure_future(bridge.hangup.wait())
    await asyncio.wait([hangup], timeout=wait)
    hangup.cancel()
    bridge.ended = now()
    sim.log.write("bridge", bridge_sid=bridge.sid, action="terminal")
    for leg in bridge.legs:
        sim.leg_event(leg, "leg_left_bridge", event_data={"bridge_sid": bridge.sid})
    await sim.deliveries.bridge_event(bridge, "bridge_terminal", state="terminal")
    bridge.done.set()
