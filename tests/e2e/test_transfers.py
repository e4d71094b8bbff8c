"""Transfers to a person end to end: the simulator, the stream server (config.server), the applier, a Celery
worker and beat as real processes on loopback.

Three Legs campaigns run at once, each with a script bot whose caller keys 0 for a person. Their groups:
the first agent answers; the first is busy and the second answers; nobody answers (one rings past the
ring time, one is busy), so the caller hears the fallback and keys 18 for a call-back at 18:00.

Two more run the relay bot, the customer's own bot (a websockets server in this test) asking for the
transfer with the protocol's `transfer` message: the first agent answers; the first rings past the
ring time and the second answers.
"""

import datetime
import json
import zoneinfo

import pytest
from django.core.files.base import ContentFile

from campaigns import lifecycle
from campaigns.models import Call, Campaign, Contact
from exotel import protocol
from streams import prompts
from streams.models import StreamSession
from tests import processes
from tests.conftest import ANY_TIME, make_account, make_campaign, make_contact, signed_in
from tests.e2e.external_bot import ExternalBot
from tests.e2e.test_campaign_run import ACCOUNT, wire_log
from tests.e2e.test_humans_and_machines import in_order, timeline
from tests.streams.exotel_side import tone, wav
from transfers import services
from transfers.models import Agent, AgentGroup, Transfer

pytestmark = pytest.mark.e2e

SCRIPT = {"steps": [
    {"id": "menu", "gather": {"timeout": 8, "branches": {"0": "person"}, "no_input": "bye"}},
    {"id": "bye", "hangup": True},
    {"id": "person", "transfer": {"whisper": "Asked for a person by keying 0."}},
]}
CALLERS = {"first": "+919700000001", "second": "+919700000002", "nobody": "+919700000003"}
AGENTS = {  # number: (simulator plan, name)
    "+919811100001": ({"outcome": "answer", "ring_seconds": 0.5, "hangup_after": 40, "script": []}, "Ravi"),
    "+919811100002": ({"outcome": "busy", "ring_seconds": 0.3}, "Meena"),
    "+919811100003": ({"outcome": "answer", "ring_seconds": 0.5, "hangup_after": 40, "script": []}, "Arun"),
    "+919811100004": ({"outcome": "answer", "ring_seconds": 30}, "Sunil"),  # rings past the group's 5 s
}
GROUPS = {"first": ["+919811100001"], "second": ["+919811100002", "+919811100003"],
          "nobody": ["+919811100004", "+919811100002"],
          "relay first": ["+919811100001"], "relay second": ["+919811100004", "+919811100003"]}
# The relay bot's callers: they say what they want (the external bot hears it) and wait.
RELAY_CALLERS = {"relay first": "+919700000011", "relay second": "+919700000012"}
RELAY_CALLER = {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 90, "script": [{"at": 0.3, "speech": 1.0}]}


def caller_plan(keys_hour: bool) -> dict:
    script = [{"at": 0.5, "dtmf": "0"}]
    # Agents talk 40 s and the hour is keyed late: on a loaded machine leg events reach us seconds late.
    if keys_hour:  # after the ringing (5 s and a busy) and the fallback offer being said
        script += [{"at": 50.0, "dtmf": "1"}, {"at": 50.5, "dtmf": "8"}]
    return {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 90, "script": script}


def running_campaign(acme, alice, number, sim, **fields) -> Campaign:
    account = acme.exotel_accounts.first() or make_account(
        acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2], api_base_url=sim.url)
    campaign = make_campaign(acme, account=account, calls_per_minute=600, **ANY_TIME, **fields)
    make_contact(campaign, phone=number)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=1)
    campaign.refresh_from_db()
    return lifecycle.start_campaign(campaign, by=alice)


def start(tmp_path):
    config = tmp_path / "sim.json"
    numbers = {number: plan for number, (plan, _) in AGENTS.items()}
    numbers |= {number: caller_plan(name == "nobody") for name, number in CALLERS.items()}
    numbers |= {number: RELAY_CALLER for number in RELAY_CALLERS.values()}
    config.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 5},
                                  "numbers": numbers, "callback_retry_delay": 0.3}))
    return processes.start_product(tmp_path, ":".join(ACCOUNT), config=config)


def make_groups(workspace, names) -> dict[str, AgentGroup]:
    """The groups of GROUPS named, ringing each agent 5 s; the agents of AGENTS on duty at every hour."""
    agents = {number: Agent.objects.create(workspace=workspace, name=name, phone=number, active_from=datetime.time.min,
                                           active_until=datetime.time.max) for number, (_, name) in AGENTS.items()}
    return {name: services.save_group(AgentGroup(workspace=workspace, name=name, ring_seconds=5),
                                      [agents[number] for number in GROUPS[name]]) for name in names}


def settle(started, campaigns: list[Campaign]) -> None:
    """Wait for each campaign's one call to end and its transfer to settle; fail with what the processes said."""
    def settled():
        ended = Call.objects.filter(state__in=Call.FINAL_STATES, campaign__in=campaigns)
        done = Transfer.objects.filter(state__in=["ended", "callback"], call__campaign__in=campaigns)
        return ended.count() == done.count() == len(campaigns)
    try:
        processes.wait_until(settled, timeout=300, what=f"{len(campaigns)} transferred calls to end")
    except TimeoutError:
        logs = "\n".join(f"--- {s.name}\n{s.output()[-4000:]}" for s in started)
        raise AssertionError(f"transfers: {list(Transfer.objects.values())}\n{logs}") from None


def assert_taken(transfer: Transfer) -> None:
    """An agent took the call: rung, answered, bridged, talked, ended; the call, contact and campaign are done."""
    assert transfer.call.state == Call.State.COMPLETED and transfer.call.disposition == "transferred"
    assert transfer.requested_at < transfer.answered_at < transfer.bridged_at < transfer.ended_at
    assert transfer.bridge_sid and 0 < transfer.talk_seconds < 60
    contact = Contact.objects.get(pk=transfer.call.contact_id)
    assert (contact.state, contact.attempts, contact.outcome) == ("done", 1, "completed")
    assert Campaign.objects.get(pk=transfer.call.campaign_id).state == Campaign.State.COMPLETED


def test_transfers_answered_by_the_first_or_second_agent_or_falling_back_to_a_call_back(
        transactional_db, tmp_path, acme, alice):
    started = start(tmp_path)
    sim = started[0]
    try:
        groups = make_groups(acme, CALLERS)
        campaigns = {name: running_campaign(
            acme, alice, number, sim, name=name, connect_mode=Campaign.ConnectMode.LEGS,
            bot_kind=Campaign.BotKind.SCRIPT, bot_settings=SCRIPT, transfer_group=groups[name], max_attempts=1)
            for name, number in CALLERS.items()}
        settle(started, list(campaigns.values()))

        first, second, nobody = (Transfer.objects.select_related("call", "agent").get(call__campaign=campaigns[n])
                                 for n in ("first", "second", "nobody"))
        assert (first.agent.name, [t["outcome"] for t in first.tried]) == ("Ravi", ["answered"])
        assert (second.agent.name, [t["outcome"] for t in second.tried]) == ("Arun", ["busy", "answered"])
        assert [t["outcome"] for t in nobody.tried] == ["no-answer", "busy"]
        for transfer in (first, second):
            assert_taken(transfer)
            assert transfer.whisper.startswith("Caller Asha") and "Keyed 0." in transfer.whisper

        # Nobody answered: the call-back the caller keyed is the contact's next attempt, its only one so far.
        assert nobody.call.disposition == "callback_scheduled" and nobody.bridged_at is None
        zone = zoneinfo.ZoneInfo(campaigns["nobody"].time_zone)
        assert nobody.callback_at.astimezone(zone).time() == datetime.time(18, 0)
        contact = Contact.objects.get(pk=nobody.call.contact_id)
        assert (contact.state, contact.attempts, contact.next_attempt_at) == ("pending", 1, nobody.callback_at)

        # The wire: each agent was dialled from the call's Exophone, with the group's ring time; the whisper
        # was said to the answering agent before the bridge; the fallback to the caller who got none.
        records = wire_log(sim)
        legs = [r for r in records if r["kind"] == "request" and r["path"].endswith("/legs")]
        agent_dials = [r["body"] for r in legs if r["body"]["contact_uri"] in AGENTS]
        assert sorted(d["contact_uri"] for d in agent_dials) == sorted(
            ["+919811100001", "+919811100002", "+919811100003", "+919811100004", "+919811100002"])
        assert {(d["exophone"], d["ring_timeout"]) for d in agent_dials} == {("+918047491899", 5)}
        says = [r for r in records if r["kind"] == "say" and r["action"] == "start"]
        assert sum("Asked for a person" in r["text"] for r in says) == 2
        assert any(r["leg_sid"] == nobody.call.leg_sid and "key the hour" in r["text"] for r in says)
    finally:
        for service in reversed(started):
            service.stop()


CALLER_SAID = "Can I talk to a person about the gold plan?"
RELAY_WHISPER = "Wants the gold plan."
GREETING, HOLD = tone(600), wav(800, 8000)


class AsksForAPerson(ExternalBot):
    """The customer's bot: greets, and once the greeting was heard (its mark came back), hands the caller over;
    one that `leaves` closes its socket at once, before the stream server ends its part."""

    def __init__(self, *, leaves: bool = False) -> None:
        super().__init__()
        self.leaves = leaves

    def leaves_after(self, event) -> bool:
        return self.leaves and isinstance(event, protocol.Mark) and event.name == "greeted"

    def answer(self, event) -> list[str]:
        if isinstance(event, protocol.Start):
            return [protocol.media_frame(event.stream_sid, GREETING), protocol.mark_frame(event.stream_sid, "greeted")]
        if isinstance(event, protocol.Mark) and event.name == "greeted":
            said = {"speaker": "caller", "text": CALLER_SAID}
            return [json.dumps({"event": "transcript", "stream_sid": event.stream_sid, "transcript": said}),
                    json.dumps({"event": "transfer", "stream_sid": event.stream_sid,
                                "transfer": {"message": "hold", "whisper": RELAY_WHISPER}})]
        return []


def test_the_relay_bots_transfer_message_hands_the_caller_to_the_first_or_second_agent(
        transactional_db, tmp_path, settings, acme, alice):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # the hold prompt, read by the stream server
    prompts.save_prompt(acme, "hold", ContentFile(HOLD, name="hold.wav"))
    started = start(tmp_path)
    sim = started[0]
    try:
        with AsksForAPerson() as stays, AsksForAPerson(leaves=True) as leaves:
            groups = make_groups(acme, RELAY_CALLERS)
            bots = {"relay first": stays, "relay second": leaves}
            campaigns = {name: running_campaign(
                acme, alice, number, sim, name=name, connect_mode=Campaign.ConnectMode.LEGS,
                bot_kind=Campaign.BotKind.RELAY, bot_settings={"url": bots[name].url}, transfer_group=groups[name],
                max_attempts=1) for name, number in RELAY_CALLERS.items()}
            settle(started, list(campaigns.values()))

        first, second = (Transfer.objects.select_related("call", "agent").get(call__campaign=campaigns[name])
                         for name in RELAY_CALLERS)
        assert [(t["name"], t["outcome"]) for t in first.tried] == [("Ravi", "answered")]
        assert [(t["name"], t["outcome"]) for t in second.tried] == [("Sunil", "no-answer"), ("Arun", "answered")]
        client = signed_in(alice)
        records = wire_log(sim)
        for transfer in (first, second):
            assert_taken(transfer)
            call = transfer.call
            assert transfer.whisper.startswith("Caller Asha") and transfer.whisper.endswith(RELAY_WHISPER)
            assert call.transcript == [["caller", CALLER_SAID]]
            # The caller heard the bot's greeting and the hold prompt; Exotel stopped the stream at the bridge.
            heard = sum(r["bytes"] for r in records if r["kind"] == "frame" and r["dir"] == "received"
                        and r["event"] == "media" and r["call_sid"] == call.leg_sid)
            assert heard >= len(GREETING) + 12800  # and the hold's 0.8 s at 8 kHz
            assert StreamSession.objects.get(call=call).stop_reason == "stopped"
            # The timeline: who was rung and who took the call, the wait and the talk.
            who = transfer.agent.name
            assert in_order(timeline(client, call), "Stream started", "Transfer requested",
                            f"{who} answered · hears the whisper",
                            f"Caller connected to {who} · waited {transfer.wait_seconds:.1f} s",
                            f"Conversation with {who} ended · talked {transfer.talk_seconds:.0f} s")
        assert in_order(timeline(client, second.call), "Ringing agent Sunil · +919811100004: no-answer",
                        "Ringing agent Arun · +919811100003: answered")
        # The bot that stayed got a `stop` when the transfer took the call; the one that left had no part to end.
        assert len(stays.of(protocol.Start)) == len(stays.of(protocol.Stop)) == 1
        assert (len(leaves.of(protocol.Start)), len(leaves.of(protocol.Stop))) == (1, 0)
    finally:
        for service in reversed(started):
            service.stop()
