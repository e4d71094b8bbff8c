"""Transferring a call to a person: ring a group's agents in turn, whisper, bridge; or fall back.

Legs mode, driven by Exotel's events (the applier calls `on_agent_leg_event` and `on_bridge_event`):

    request_transfer          the bot asked; the first agent on duty is dialled from the call's Exophone,
                              with the group's ring time as `ring_timeout`
    agent leg_terminated      unanswered (no-answer, busy, failed): the next agent is dialled
    agent leg_answered        the whisper (the call's summary) is said to the agent
    agent say_completed       the caller's and the agent's legs are bridged (the stream stops as the
                              caller's leg joins the bridge)
    bridge_created            the agent hears the caller: the call's disposition is `transferred`
    bridge_terminal           the conversation ended

When no agent is left, the caller hears the group's fallback text and may key an hour for a call-back
(`schedule_callback`), which becomes the contact's next attempt. Flow mode needs none of this: the
stream closes and the flow's Transfer applet rings the agents; its Passthru or status callback tells
who answered (`note_flow_agent`).

Every step is a conditional change of the transfer's state under its row lock, so a repeated or late
event (Exotel retries) changes nothing. Calls to Exotel are made after the lock is released.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import accounts, calls, links
from campaigns.models import Call, Campaign
from exotel import wire
from exotel.errors import ExotelError
from transfers.models import Agent, Transfer

log = logging.getLogger(__name__)

# An agent leg's custom_param: the transfer's token behind this prefix, so the applier can tell it from a call's.
AGENT_LEG_PREFIX = "agent."
DEFAULT_FALLBACK = "Sorry, nobody is free to take your call right now."
CALLBACK_OFFER = (" To be called back, key the hour you would like, from 0 9 to 2 1, in twenty-four hour time."
                  " To end the call, hang up.")
WHISPER_SAY_LOOP = 1
State = Transfer.State


@dataclass(frozen=True)
class Plan:
    """What the stream does after asking: `legs` (hold: we ring), `flow` (close: the flow's applet rings),
    or `none` (no transfer possible; the bot goes on), with the reason."""

    mode: str
    transfer_id: int | None = None
    patience: float = 0.0  # seconds after which the stream stops waiting for an agent on its own
    reason: str = ""


def transfer_refusal(campaign: Campaign) -> str:
    """Why none of the campaign's calls can be transferred ("" when they can): also the script editor's preview."""
    if campaign.transfer_group is None:
        return "the campaign names no agent group"
    if campaign.connect_mode == Campaign.ConnectMode.VOICE_AI:
        return "Voice AI (direct) calls have no transfer"
    return ""


def request_transfer(call_id: int, *, whisper: str) -> Plan:
    """The bot asked for a person. Records the transfer and, in Legs mode, rings the first agent."""
    call = Call.objects.select_related("campaign__transfer_group", "campaign__account").get(pk=call_id)
    campaign, group = call.campaign, call.campaign.transfer_group
    if refusal := transfer_refusal(campaign):
        return Plan("none", reason=refusal)
    if campaign.connect_mode == Campaign.ConnectMode.LEGS and not call.leg_sid:
        return Plan("none", reason="the call's leg is not known yet")
    flow = campaign.connect_mode == Campaign.ConnectMode.FLOW
    transfer, created = Transfer.objects.get_or_create(call=call, defaults={
        "workspace_id": call.workspace_id, "group": group, "token": secrets.token_urlsafe(18), "whisper": whisper,
        "requested_at": timezone.now(), "state": State.HANDED_OVER if flow else State.RINGING})
    if not created:
        return Plan("none", transfer.pk, reason="this call was transferred already")
    calls.set_disposition(call.pk, "transferred" if flow else "transfer_requested")
    if flow:
        return Plan("flow", transfer.pk)
    members = group.members.count()
    ring_next(transfer.pk)
    # Each agent rings, hears the whisper, and is bridged; past that the stream gives up by itself.
    patience = members * (group.ring_seconds + 5) + len(whisper) * 0.1 + 30
    return Plan("legs", transfer.pk, patience=patience)


def ring_next(transfer_id: int, *, after_leg: str = "", outcome: str = "") -> None:
    """Dial the next agent on duty not tried yet; none left: fall back. `after_leg` (the leg that just ended,
    with its `outcome`) makes a repeated event a no-op."""
    while True:
        with transaction.atomic():
            transfer = Transfer.objects.select_for_update(of=("self",)).select_related("group").get(pk=transfer_id)
            if transfer.state != State.RINGING or (after_leg and transfer.agent_leg_sid != after_leg):
                return
            if transfer.tried and transfer.tried[-1]["outcome"] == "ringing":
                if not after_leg:
                    return  # a leg is ringing: only its end moves on
                transfer.tried[-1]["outcome"] = outcome or "no-answer"
            agent = _next_agent(transfer)
            if agent is None:
                _fall_back(transfer)
                return
            transfer.tried.append({"agent": agent.pk, "name": agent.name, "phone": agent.phone,
                                   "at": timezone.now().isoformat(), "outcome": "ringing"})
            transfer.agent, transfer.agent_phone, transfer.agent_leg_sid = agent, agent.phone, ""
            transfer.save(update_fields=["tried", "agent", "agent_phone", "agent_leg_sid"])
        try:
            leg_sid = _dial_agent(transfer, agent)
        except ExotelError as error:
            log.warning("transfer %s: dialling agent %s failed: %s", transfer.pk, agent.pk, error)
            after_leg, outcome = "", f"failed: {error}"[:200]
            _close_attempt(transfer.pk, outcome)
            continue
        Transfer.objects.filter(pk=transfer.pk, state=State.RINGING, agent=agent, agent_leg_sid="").update(
            agent_leg_sid=leg_sid)
        return


def _close_attempt(transfer_id: int, outcome: str) -> None:
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update().get(pk=transfer_id)
        if transfer.tried and transfer.tried[-1]["outcome"] == "ringing":
            transfer.tried[-1]["outcome"] = outcome
            transfer.save(update_fields=["tried"])


def _next_agent(transfer: Transfer) -> Agent | None:
    tried = {attempt["agent"] for attempt in transfer.tried}
    now = timezone.now()
    return next((agent for agent in transfer.group.ordered_agents() if agent.pk not in tried and agent.on_duty(now)),
                None) if transfer.group else None


def _dial_agent(transfer: Transfer, agent: Agent) -> str:
    call = Call.objects.select_related("campaign__account", "exophone", "workspace").get(pk=transfer.call_id)
    account = call.campaign.account
    with accounts.client_for(account) as client:
        leg = client.create_leg(wire.NewLeg(
            number=agent.phone,
            exophone=wire.dialled_number(call.exophone.number, account.number_form, field_name="exophone"),
            custom_param=AGENT_LEG_PREFIX + transfer.token, ring_timeout=transfer.group.ring_seconds,
            leg_event_endpoint=links.webhook_url(call.workspace, "leg_event"), time_limit=call.campaign.time_limit))
    return leg.leg_sid


def _fall_back(transfer: Transfer) -> None:
    """Nobody answered (or nobody is on duty): the caller hears the fallback and the call-back offer."""
    transfer.state, transfer.ended_at = State.FALLBACK, timezone.now()
    transfer.save(update_fields=["state", "ended_at", "tried"])
    calls.set_disposition(transfer.call_id, "transfer_unanswered")
    text = ((transfer.group.fallback_text if transfer.group else "") or DEFAULT_FALLBACK) + CALLBACK_OFFER
    transaction.on_commit(lambda: _say_to_caller(transfer.call_id, text))


def _say_to_caller(call_id: int, text: str) -> None:
    call = Call.objects.select_related("campaign__account").get(pk=call_id)
    try:
        with accounts.client_for(call.campaign.account) as client:
            client.start_say(call.leg_sid, text, WHISPER_SAY_LOOP)
    except ExotelError as error:
        log.warning("call %s: the fallback could not be said: %s", call_id, error)


# --- Exotel's events ----------------------------------------------------------------------------

def transfer_of_leg(workspace_id: int, token: str, leg_sid: str) -> Transfer | None:
    if token.startswith(AGENT_LEG_PREFIX):
        return Transfer.objects.filter(workspace_id=workspace_id, token=token[len(AGENT_LEG_PREFIX):]).first()
    return Transfer.objects.filter(workspace_id=workspace_id, agent_leg_sid=leg_sid).first() if leg_sid else None


def on_agent_leg_event(transfer: Transfer, name: str, leg_sid: str, end_state: str, at) -> tuple[bool, object]:
    """An agent leg's event, applied under the transfer's lock. Returns (changed, follow-up or None): the
    follow-up calls Exotel and runs after the commit, beside the applier."""
    transfer = Transfer.objects.select_for_update().get(pk=transfer.pk)
    if leg_sid and not transfer.agent_leg_sid and transfer.state == State.RINGING:
        transfer.agent_leg_sid = leg_sid  # the event came before create_leg's answer was saved
        transfer.save(update_fields=["agent_leg_sid"])
    if leg_sid != transfer.agent_leg_sid:
        return False, None  # an earlier agent's leg, already settled
    if name == "leg_answered" and transfer.state == State.RINGING:
        transfer.state, transfer.answered_at = State.WHISPERING, at
        transfer.tried[-1]["outcome"] = "answered"
        transfer.save(update_fields=["state", "answered_at", "tried"])
        return True, whisper_to_agent
    if name == "say_completed" and transfer.state == State.WHISPERING:
        return True, bridge
    if name in ("leg_terminated", "leg_failed_to_create"):
        if transfer.state in (State.RINGING, State.WHISPERING):
            # Unanswered, or the agent hung up during the whisper: the next agent.
            outcome = end_state if transfer.state == State.RINGING else "hung up during the whisper"
            if transfer.state == State.WHISPERING:
                transfer.state = State.RINGING
                transfer.tried[-1]["outcome"] = "ringing"
                transfer.save(update_fields=["state", "tried"])
            return True, lambda pk: ring_next(pk, after_leg=leg_sid, outcome=outcome)
        if transfer.state == State.BRIDGED:
            return _end_conversation(transfer, at), None
    return False, None


def on_bridge_event(workspace_id: int, name: str, bridge_sid: str, at, leg_sids: Sequence[str] = ()) -> bool:
    with transaction.atomic():
        transfer = _bridge_transfer(workspace_id, bridge_sid, leg_sids)
        if transfer is None:
            return False
        if name == "bridge_created" and transfer.state == State.WHISPERING:
            transfer.state, transfer.bridged_at = State.BRIDGED, at
            transfer.save(update_fields=["state", "bridged_at"])
            calls.set_disposition(transfer.call_id, "transferred")
            return True
        if name == "bridge_terminal" and transfer.state == State.BRIDGED:
            return _end_conversation(transfer, at)
        if name == "bridge_failed_to_create" and transfer.state == State.WHISPERING:
            transfer.state, transfer.bridge_sid = State.RINGING, ""
            transfer.tried[-1]["outcome"] = "ringing"
            transfer.save(update_fields=["state", "bridge_sid", "tried"])
            leg = transfer.agent_leg_sid
            transaction.on_commit(lambda: ring_next(transfer.pk, after_leg=leg, outcome="bridge failed"))
            return True
    return False


def _bridge_transfer(workspace_id: int, bridge_sid: str, leg_sids: Sequence[str]) -> Transfer | None:
    """The transfer of this bridge, locked: the one with its sid, or, when the event came before create_bridge's
    answer was saved (`bridge`), the one whispering to an agent whose leg the event names, which gets the sid.

    One query for both: `bridge` saves the sid as the event is applied (Exotel sends both at once). Looked up
    one way then the other, the sid could be saved in between, and the event matched neither and was dropped.
    In one statement the lock waits for that save and reads the row again as it committed."""
    named = Q(bridge_sid=bridge_sid)
    if leg_sids:
        named |= Q(state=State.WHISPERING, bridge_sid="", agent_leg_sid__in=leg_sids)
    transfer = Transfer.objects.select_for_update().filter(named, workspace_id=workspace_id).first()
    if transfer is not None and not transfer.bridge_sid:
        transfer.bridge_sid = bridge_sid
        transfer.save(update_fields=["bridge_sid"])
    return transfer


def _end_conversation(transfer: Transfer, at) -> bool:
    transfer.state, transfer.ended_at = State.ENDED, at
    transfer.save(update_fields=["state", "ended_at"])
    return True


def whisper_to_agent(transfer_id: int) -> None:
    """The agent picked up: say the summary to them (the bridge follows `say_completed`), or bridge at once."""
    transfer = Transfer.objects.select_related("call__campaign__account").get(pk=transfer_id)
    if not transfer.whisper:
        return bridge(transfer_id)
    try:
        with accounts.client_for(transfer.call.campaign.account) as client:
            client.start_say(transfer.agent_leg_sid, transfer.whisper, WHISPER_SAY_LOOP)
    except ExotelError as error:
        log.warning("transfer %s: the whisper was refused (%s); bridging without it", transfer_id, error)
        bridge(transfer_id)


def bridge(transfer_id: int) -> None:
    """Join the caller's leg and the agent's; `bridge_created` confirms. Refused: the agent is let go and
    the next one rung."""
    transfer = Transfer.objects.select_related("call__campaign__account", "call__workspace").get(pk=transfer_id)
    if transfer.bridge_sid or transfer.state != State.WHISPERING:
        return
    call = transfer.call
    try:
        with accounts.client_for(call.campaign.account) as client:
            info = client.create_bridge([call.leg_sid, transfer.agent_leg_sid],
                                        bridge_event_endpoint=links.webhook_url(call.workspace, "leg_event"))
    except ExotelError as error:
        log.warning("transfer %s: the bridge was refused: %s", transfer_id, error)
        with accounts.client_for(call.campaign.account) as client:
            _quietly_hang_up(client, transfer.agent_leg_sid)
        return
    Transfer.objects.filter(pk=transfer_id, bridge_sid="").update(bridge_sid=info.bridge_sid)


def _let_agent_go(call_id: int, leg_sid: str) -> None:
    """An agent still ringing (or hearing the whisper) when the caller was given up on is hung up."""
    if not leg_sid:
        return
    account = Call.objects.select_related("campaign__account").get(pk=call_id).campaign.account
    with accounts.client_for(account) as client:
        _quietly_hang_up(client, leg_sid)


def _quietly_hang_up(client, leg_sid: str) -> None:
    try:
        client.hangup_leg(leg_sid)  # its leg_terminated moves on to the next agent
    except ExotelError as error:
        log.warning("leg %s: hangup failed: %s", leg_sid, error)


# --- after the ringing --------------------------------------------------------------------------

def outcome(transfer_id: int) -> str:
    """The transfer's state, for the stream that holds the caller."""
    return Transfer.objects.filter(pk=transfer_id).values_list("state", flat=True).get()


def give_up(transfer_id: int) -> str:
    """The stream waited long enough (an event was lost, or Exotel is slow): fall back unless decided."""
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("group").get(pk=transfer_id)
        if transfer.state in (State.RINGING, State.WHISPERING):
            if transfer.tried and transfer.tried[-1]["outcome"] in ("ringing", "answered"):
                transfer.tried[-1]["outcome"] = "timed out"
                leg = transfer.agent_leg_sid
                transaction.on_commit(lambda: _let_agent_go(transfer.call_id, leg))
            _fall_back(transfer)
        return transfer.state


def schedule_callback(transfer_id: int, hour: int, *, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """The caller keyed `hour`: the contact is called again at the next such hour in the campaign's zone.

    Refused (None) outside 0-23 or when the transfer was answered after all."""
    if not 0 <= hour <= 23:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("call__campaign").get(pk=transfer_id)
        if transfer.state not in (State.FALLBACK, State.CALLBACK):
            return None
        zone = zoneinfo.ZoneInfo(transfer.call.campaign.time_zone)
        local = now.astimezone(zone)
        at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if at <= local + datetime.timedelta(minutes=5):
            at += datetime.timedelta(days=1)
        transfer.state, transfer.callback_at = State.CALLBACK, at
        transfer.save(update_fields=["state", "callback_at"])
        calls.set_disposition(transfer.call_id, "callback_scheduled")
    return at


def callback_for(call: Call) -> datetime.datetime | None:
    """The call-back its caller picked, if any: the contact's next attempt (campaigns.calls)."""
    return Transfer.objects.filter(call_id=call.pk, state=State.CALLBACK).values_list("callback_at", flat=True).first()


def note_flow_agent(call: Call, number: str, at) -> bool:
    """Flow mode: the Transfer applet's Passthru or status data named the number that answered."""
    transfer = Transfer.objects.filter(call_id=call.pk, state=State.HANDED_OVER).select_related("group").first()
    if transfer is None or not number:
        return False
    phone = number if number.startswith("+") else None
    agents = Agent.objects.filter(workspace_id=call.workspace_id)
    agent = agents.filter(phone=phone).first() if phone else next(
        (a for a in agents if a.phone.endswith(number.lstrip("0")[-10:])), None)
    return bool(Transfer.objects.filter(pk=transfer.pk, state=State.HANDED_OVER).update(
        state=State.BRIDGED, agent=agent, agent_phone=agent.phone if agent else number[:20], bridged_at=at,
        answered_at=at))
