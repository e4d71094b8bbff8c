"""A bot hands its caller to a person (the script's `transfer` step, the relay's `transfer` message).

`transfer(bot, whisper=…, keys=…)` asks the engine (`transfers.engine.request_transfer`), then:
- Flow mode: closes the stream, so that the flow's next applet (its Transfer) takes the call;
- Legs mode: holds the caller (the bot says nothing more) while agents are rung. Once an agent is
  bridged, Exotel stops the stream. If nobody answers, the engine has the fallback and the call-back
  offer said on the caller's leg; here the caller's keys are read (two digits: the hour, 00-23, in
  the campaign's time zone) and the call-back is scheduled, then the call ends. The hold has a
  deadline of its own (`Plan.patience`), so a lost event never holds a caller for ever;
- no transfer possible (no group, Voice AI mode): returns False and the bot goes on.

The whisper the agent hears starts with the call's summary: the contact's name and variables, what
the caller keyed, then the bot's own words (what the caller said, in the relay bot's case).
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

from exotel.protocol import CloseCode
from transfers import engine
from transfers.models import Transfer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
CALLBACK_KEYS_SECONDS = 60.0  # from the fallback: the offer is said (about 11 s), then the caller keys the hour
WHISPER_MAX = 600
State = Transfer.State


def in_a_thread(work):
    return database_sync_to_async(work, thread_sensitive=False)


def summarise(variables: dict, keyed: str, whisper: str) -> str:
    """What the agent hears before the caller: who, what we know, what they chose, the bot's note."""
    known = {k: v for k, v in variables.items() if k not in ("name", "phone") and v not in ("", None)}
    parts = [f"Caller {variables.get('name') or 'unnamed'}, {variables.get('phone', '')}."]
    if known:
        parts.append("Details: " + ", ".join(f"{k} {v}" for k, v in sorted(known.items())) + ".")
    if keyed:
        parts.append(f"Keyed {' '.join(keyed)}.")
    if whisper:
        parts.append(whisper)
    return " ".join(parts)[:WHISPER_MAX]


async def transfer(bot, *, whisper: str, keys: asyncio.Queue) -> bool:
    """Hand the caller over; True when the bot's part of the call is over, False when it should go on."""
    stream = bot.stream
    if stream.binding.call_id is None:
        return False
    summary = summarise({**stream.binding.variables, **bot.variables}, stream.dtmf, whisper)
    plan = await in_a_thread(engine.request_transfer)(stream.binding.call_id, whisper=summary)
    await stream.feed.event("transfer", plan.mode if plan.mode != "none" else f"refused: {plan.reason}")
    if plan.mode == "none":
        log.info("stream %s: no transfer: %s", stream.sid, plan.reason)
        return False
    bot.disposition = ""  # from here the engine keeps the call's disposition (transfers.engine)
    leave = getattr(bot, "leave_for_person", None)
    if leave:
        await leave()
    if plan.mode == "flow":
        await stream.end("transferred", CloseCode.NORMAL)
        return True
    if await _wait_for_agent(plan) == State.FALLBACK:
        await _offer_callback(stream, plan.transfer_id, keys)
    return True


async def _wait_for_agent(plan: engine.Plan) -> str:
    """The transfer's state once it is decided: bridged (Exotel stops the stream) or fallback."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + plan.patience
    while loop.time() < deadline:
        state = await in_a_thread(engine.outcome)(plan.transfer_id)
        if state in (State.BRIDGED, State.ENDED, State.FALLBACK):
            return state
        await asyncio.sleep(POLL_SECONDS)
    log.warning("transfer %s: no agent after %.0f s; falling back", plan.transfer_id, plan.patience)
    return await in_a_thread(engine.give_up)(plan.transfer_id)


async def _offer_callback(stream, transfer_id: int, keys: asyncio.Queue) -> None:
    while not keys.empty():  # keys pressed while on hold are not an answer to the offer
        keys.get_nowait()
    digits = ""
    try:
        while len(digits) < 2:
            digits += await asyncio.wait_for(keys.get(), CALLBACK_KEYS_SECONDS)
    except TimeoutError:
        pass
    if len(digits) == 2 and digits.isdigit():
        at = await in_a_thread(engine.schedule_callback)(transfer_id, int(digits))
        await stream.feed.event("callback", at.isoformat() if at else f"refused hour {digits}")
    await stream.hang_up()
