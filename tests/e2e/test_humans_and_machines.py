"""Issue 14 end to end in one campaign: machines, people, and people who ask for a person.

The simulator, the stream server, the applier, a Celery worker and beat run as real processes. One Legs
campaign (Exotel's AMD without holding the answer, a message left on machines, a script bot whose
caller keys 0 for a person, one agent group of two) dials, one call at a time so that its agents' fates
come in a known order:

- a person who keys 1 and is done;
- a machine: it greets, beeps, and gets the message (`voicemail_left`); the script's own hang-up, due
  while the machine still greets, must not cut the message short;
- a caller whose transfer the first agent answers;
- a caller whose transfer the first agent lets ring past the group's ring time, the second answers;
- a caller whose transfer nobody takes (the first rings out, the second is busy): the fallback, the
  hour keyed (18), and the call-back as the contact's next attempt.

Hanging up on a machine is the other choice of the same setting, so a second Legs campaign, beside the
first, holds the answer for Exotel's verdict and hangs up: its number is a machine on the first dial,
counted as a no-answer and dialled again, and a person on the second.

A Flow campaign's script asks for a person in a test of its own: its stream closes and the flow's
Transfer applet (the simulator's) rings the agents; the Passthru names who answered.
"""

import datetime
import json
import zoneinfo

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import Call, Campaign, Contact
from streams.models import StreamSession
from tests import processes
from tests.conftest import ANY_TIME, make_account, make_campaign, make_contact, signed_in
from tests.e2e.test_campaign_run import ACCOUNT, wire_log
from tests.e2e.test_machines import message_prompt
from transfers import queries as transfer_queries
from transfers import services
from transfers.models import Agent, AgentGroup, Transfer

pytestmark = pytest.mark.e2e

SCRIPT = {"steps": [
    # Short, as scripts are: a machine still greets when it runs out and the script hangs up.
    {"id": "menu", "gather": {"timeout": 3, "branches": {"0": "person", "1": "yes"}, "no_input": "bye"}},
    {"id": "yes", "disposition": "interested"},
    {"id": "bye", "hangup": True},
    {"id": "person", "transfer": {"whisper": "Asked for a person by keying 0."}},
]}
PERSON, MACHINE, FIRST, SECOND, NOBODY = (f"+91970000000{i}" for i in range(1, 6))
MACHINE_THEN_PERSON = "+919700000006"  # the hang-up campaign's
FLOWED = "+919700000008"  # the flow campaign's
RAVI, MEENA, ARUN, SUNIL = "+919811100001", "+919811100002", "+919811100003", "+919811100004"
FLOW_ID = "4321"
HELLO = {"at": 0.2, "speech": 0.6}  # a person's "Hello?"
AGENT_TALKS = 12  # seconds from the agent's answer: the whisper (about 4 s), then the caller


def caller(*keys: tuple[float, str], hangup_after: float = 20) -> dict:
    return {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": hangup_after,
            "script": [HELLO, *({"at": at, "dtmf": digit} for at, digit in keys)]}


def simulator_config(path) -> None:
    numbers = {
        PERSON: caller((1.5, "1")),
        MACHINE: {"ring_seconds": 0.2, "hangup_after": 20,
                  "machine": {"greeting_seconds": 4.0, "amd_result": "machine", "amd_delay": 1.0}},
        FIRST: caller((1.0, "0"), hangup_after=60),
        SECOND: caller((1.0, "0"), hangup_after=60),
        # The hour, keyed well after the fallback (about 7 s in: the first agent's 5 s, the second's busy).
        NOBODY: caller((1.0, "0"), (25.0, "1"), (25.5, "8"), hangup_after=60),
        MACHINE_THEN_PERSON: {"ring_seconds": 0.2, "hangup_after": 20,
                              "machine": {"greeting_seconds": 4.0, "amd_result": "machine", "amd_delay": 1.0},
                              "then": [{"machine": None, **caller((1.5, "1"))}]},
        # The first agent answers FIRST's transfer, then rings past the group's 5 s; the second answers, then is busy.
        RAVI: {"outcome": "answer", "ring_seconds": 0.5, "hangup_after": AGENT_TALKS, "script": [],
               "then": [{"outcome": "answer", "ring_seconds": 30}]},
        MEENA: {"outcome": "answer", "ring_seconds": 0.5, "hangup_after": AGENT_TALKS, "script": [],
                "then": [{"outcome": "busy", "ring_seconds": 0.3}]},
        ARUN: {"outcome": "answer", "ring_seconds": 0.5, "hangup_after": AGENT_TALKS, "script": []},
        FLOWED: caller((1.0, "0"), hangup_after=60),
        SUNIL: {"outcome": "busy", "ring_seconds": 0.3},
    }
    path.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 5},
                                "numbers": numbers, "callback_retry_delay": 0.3}))


def start(tmp_path) -> list[processes.Service]:
    config = tmp_path / "sim.json"
    simulator_config(config)
    return processes.start_product(tmp_path, ":".join(ACCOUNT), config=config)


def running_campaign(workspace, user, numbers: list[str], **fields) -> Campaign:
    """A campaign (Legs, of the script bot, unless told) dialling `numbers` in that order."""
    fields = {"connect_mode": Campaign.ConnectMode.LEGS, "bot_kind": Campaign.BotKind.SCRIPT, "bot_settings": SCRIPT,
              "greeting_text": "Hello", "calls_per_minute": 600, "retry_on": ["no-answer"], "retry_after_minutes": 0,
              **ANY_TIME, **fields}
    campaign = make_campaign(workspace, **fields)
    now = timezone.now()
    for i, number in enumerate(numbers):  # due one after another: the dialler takes the longest due first
        make_contact(campaign, phone=number, next_attempt_at=now - datetime.timedelta(minutes=len(numbers) - i))
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(numbers))
    campaign.refresh_from_db()
    return lifecycle.start_campaign(campaign, by=user)


def timeline(client, call: Call) -> list[str]:
    """The call page's timeline, each moment as "what · detail", oldest first."""
    response = client.get(reverse("campaigns:call", args=[call.pk]))
    assert response.status_code == 200
    return [f"{m.what} · {m.detail}" for m in response.context["timeline"]]


def in_order(lines: list[str], *steps: str) -> bool:
    """Each of `steps` is part of a line of `lines`, each after the line of the step before."""
    position = 0
    for step in steps:
        position = next((i for i in range(position, len(lines)) if step in lines[i]), None)
        if position is None:
            return False
        position += 1
    return True


def test_a_campaign_of_machines_people_and_transfers_ends_right_for_every_contact(transactional_db, tmp_path,
                                                                                  acme, alice):
    started = start(tmp_path)
    sim = started[0]
    try:
        make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2], api_base_url=sim.url)
        agents = [Agent.objects.create(workspace=acme, name=name, phone=phone, active_from=datetime.time.min,
                                       active_until=datetime.time.max) for name, phone in [("Ravi", RAVI),
                                                                                           ("Meena", MEENA)]]
        group = services.save_group(AgentGroup(workspace=acme, name="Desk", ring_seconds=5), agents)
        mixed = running_campaign(acme, alice, [PERSON, MACHINE, FIRST, SECOND, NOBODY], name="Mixed",
                                 max_concurrent=1, max_attempts=2, transfer_group=group, machine_detection="async",
                                 on_machine="leave_message", voicemail_prompt=message_prompt(acme))
        hang_up = running_campaign(acme, alice, [MACHINE_THEN_PERSON], name="Hang up", max_attempts=2,
                                   machine_detection="on", on_machine="hang_up")

        def settled():
            ended = Call.objects.filter(state__in=Call.FINAL_STATES)
            return (ended.filter(campaign=mixed).count() == 5 and ended.filter(campaign=hang_up).count() == 2
                    and Transfer.objects.filter(state__in=["ended", "callback"]).count() == 3)
        try:
            processes.wait_until(settled, timeout=300, what="every call to end")
        except TimeoutError:
            logs = "\n".join(f"--- {s.name}\n{s.output()[-4000:]}" for s in started)
            calls = list(Call.objects.values("phone", "attempt", "state", "disposition", "answered_by"))
            raise AssertionError(f"calls: {calls}\ntransfers: {list(Transfer.objects.values())}\n{logs}") from None

        call = {(c.phone, c.attempt): c for c in Call.objects.select_related("transfer")}
        contacts = {c.phone: c for c in Contact.objects.all()}

        # Every contact's end, and its attempts: each call an attempt, no attempt lost or repeated.
        assert {phone: (c.state, c.outcome, c.attempts, c.calls.count()) for phone, c in contacts.items()} == {
            PERSON: ("done", "completed", 1, 1),
            MACHINE: ("done", "voicemail_left", 1, 1),
            FIRST: ("done", "completed", 1, 1),
            SECOND: ("done", "completed", 1, 1),
            NOBODY: ("pending", "", 1, 1),  # its call-back is the next attempt
            MACHINE_THEN_PERSON: ("done", "completed", 2, 2),
        }
        assert {key: (c.state, c.disposition, c.answered_by) for key, c in call.items()} == {
            (PERSON, 1): ("completed", "interested", "human"),
            (MACHINE, 1): ("completed", "voicemail_left", "machine"),
            (FIRST, 1): ("completed", "transferred", "human"),
            (SECOND, 1): ("completed", "transferred", "human"),
            (NOBODY, 1): ("completed", "callback_scheduled", "human"),
            (MACHINE_THEN_PERSON, 1): ("completed", "machine", "machine"),
            (MACHINE_THEN_PERSON, 2): ("completed", "interested", "human"),
        }
        # The message played to its end (its mark came back) before the bot hung up on the machine.
        voicemail = StreamSession.objects.get(call=call[MACHINE, 1])
        assert voicemail.stop_reason == "voicemail_left" and "voicemail" in [m["name"] for m in voicemail.marks]
        # Held for Exotel's verdict, the machine got neither a stream nor a greeting.
        held = call[MACHINE_THEN_PERSON, 1]
        assert held.answered_by_source == "exotel" and not StreamSession.objects.filter(call=held).exists()
        zone = zoneinfo.ZoneInfo(mixed.time_zone)
        callback_at = call[NOBODY, 1].transfer.callback_at
        assert callback_at.astimezone(zone).time() == datetime.time(18, 0)
        assert contacts[NOBODY].next_attempt_at == callback_at
        hang_up.refresh_from_db()
        assert hang_up.state == Campaign.State.COMPLETED

        first, second, nobody = (call[number, 1].transfer for number in (FIRST, SECOND, NOBODY))
        assert [(t["name"], t["outcome"]) for t in first.tried] == [("Ravi", "answered")]
        assert [(t["name"], t["outcome"]) for t in second.tried] == [("Ravi", "no-answer"), ("Meena", "answered")]
        assert [(t["name"], t["outcome"]) for t in nobody.tried] == [("Ravi", "no-answer"), ("Meena", "busy")]
        for transfer in (first, second):
            assert transfer.requested_at < transfer.answered_at < transfer.bridged_at < transfer.ended_at
            assert transfer.whisper.startswith("Caller Asha") and "Keyed 0." in transfer.whisper

        # The wire: agents rung in the group's order for each transfer, from the campaign's Exophone.
        records = wire_log(sim)
        dials = [r["body"] for r in records if r["kind"] == "request" and r["path"].endswith("/legs")]
        assert [d["contact_uri"] for d in dials if d["contact_uri"] in (RAVI, MEENA)] == [RAVI, RAVI, MEENA, RAVI,
                                                                                          MEENA]

        # Each call's timeline shows each step, in order (which of Exotel and the ear decides first is a race).
        client = signed_in(alice)
        answered, ended = ["Answered", "Decided: human"], ["Answered", "Ended: Completed"]
        streamed = ["Answered", "Stream started", "Stream ended"]
        steps = {
            (PERSON, 1): [answered, streamed, ended],
            (MACHINE, 1): [["Answered", "Decided: machine"], ["Stream started", "Stream ended · voicemail_left"], ended],
            (FIRST, 1): [answered, ["Stream started", "Transfer requested", "Ringing agent Ravi · +919811100001: answered",
                                    "Ravi answered", "Caller connected to Ravi", "Conversation with Ravi ended"]],
            (SECOND, 1): [answered, ["Stream started", "Transfer requested",
                                     "Ringing agent Ravi · +919811100001: no-answer",
                                     "Ringing agent Meena · +919811100002: answered", "Meena answered",
                                     "Caller connected to Meena", "Conversation with Meena ended"]],
            (NOBODY, 1): [answered, ["Stream started", "Transfer requested",
                                     "Ringing agent Ravi · +919811100001: no-answer",
                                     "Ringing agent Meena · +919811100002: busy",
                                     "Nobody answered: fallback and call-back offer", "Call-back scheduled"]],
            (MACHINE_THEN_PERSON, 1): [["Answered", "Decided: machine (Exotel)", "Ended: Completed"]],
            (MACHINE_THEN_PERSON, 2): [answered, streamed, ended],
        }
        for key, chains in steps.items():
            lines = timeline(client, call[key])
            for chain in chains:
                assert in_order(lines, *chain), (key, chain, lines)

        # The counters: machines are not answered calls; the transfer rate is over the people who answered.
        mixed.refresh_from_db()
        assert (mixed.calls_total, mixed.calls_live, mixed.calls_answered, mixed.calls_machine) == (5, 0, 4, 1)
        assert transfer_queries.figures(mixed)["transfer_rate"] == "75%"  # 3 of the 4 people
        assert (hang_up.calls_total, hang_up.calls_answered, hang_up.calls_machine) == (2, 1, 1)
    finally:
        for service in reversed(started):
            service.stop()


def test_a_flow_calls_transfer_is_the_flows_and_passthru_names_the_agent_who_answered(transactional_db, tmp_path,
                                                                                       acme, alice):
    started = start(tmp_path)
    sim, web = started[:2]
    try:
        make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2], api_base_url=sim.url)
        desk = [Agent.objects.create(workspace=acme, name=name, phone=phone, active_from=datetime.time.min,
                                     active_until=datetime.time.max) for name, phone in [("Sunil", SUNIL),
                                                                                         ("Arun", ARUN)]]
        group = services.save_group(AgentGroup(workspace=acme, name="Flow desk", ring_seconds=5), desk)
        # The customer's flow in Exotel: Voicebot (our stream-URL endpoint), then Transfer to the desk's
        # numbers, then Passthru to us.
        hooks = {kind: web.url + reverse(f"callbacks:{kind}", args=[acme.webhook_token])
                 for kind in ("stream_url", "passthru")}
        httpx.put(f"{sim.url}/_sim/flows/{FLOW_ID}", json={
            "voicebot_url": hooks["stream_url"], "passthru_url": hooks["passthru"], "passthru_style": "flat",
            "transfer_to": [SUNIL, ARUN], "transfer_ring_seconds": 5}).raise_for_status()
        campaign = running_campaign(acme, alice, [FLOWED], name="Flow", max_attempts=1, transfer_group=group,
                                    connect_mode=Campaign.ConnectMode.FLOW,
                                    flow_url=f"https://my.exotel.com/{ACCOUNT[0]}/exoml/start_voice/{FLOW_ID}")
        try:
            processes.wait_until(lambda: Transfer.objects.filter(state="bridged").exists()
                                 and Call.objects.filter(state__in=Call.FINAL_STATES).exists(),
                                 timeout=120, what="the flow to name the agent who answered")
        except TimeoutError:
            logs = "\n".join(f"--- {s.name}\n{s.output()[-4000:]}" for s in started)
            raise AssertionError(f"transfers: {list(Transfer.objects.values())}\n{logs}") from None

        call = Call.objects.select_related("transfer__agent").get(campaign=campaign)
        assert (call.state, call.disposition, call.transfer.agent.name) == ("completed", "transferred", "Arun")
        assert StreamSession.objects.get(call=call).stop_reason == "transferred"
        contact = Contact.objects.get(campaign=campaign)
        assert (contact.state, contact.outcome, contact.attempts) == ("done", "completed", 1)
        rung = [(r["number"], r["outcome"]) for r in wire_log(sim) if r["kind"] == "transfer"]
        assert rung == [(SUNIL, "busy"), (ARUN, "answer")]  # the flow rang, not us
        lines = timeline(signed_in(alice), call)
        assert in_order(lines, "Stream started", "Transfer requested", "Handed to the flow's Transfer applet",
                        "Stream ended · transferred", "Arun took the call"), lines
    finally:
        for service in reversed(started):
            service.stop()
