"""Transfers to a person end to end: the simulator, the stream server (config.server), the applier, a Celery
worker and beat as real processes on loopback.

Three Legs campaigns run at once, each with a script bot whose caller keys 0 for a person. Their groups:
the first agent answers; the first is busy and the second answers; nobody answers (one rings past the
ring time, one is busy), so the caller hears the fallback and keys 18 for a call-back at 18:00.
"""

import datetime
import json
import zoneinfo

import pytest

from campaigns import lifecycle
from campaigns.models import Call, Campaign, Contact
from tests import processes
from tests.conftest import ANY_TIME, make_account, make_campaign, make_contact
from tests.e2e.test_campaign_run import ACCOUNT, wire_log
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
          "nobody": ["+919811100004", "+919811100002"]}


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
    config.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 5},
                                  "numbers": numbers, "callback_retry_delay": 0.3}))
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    web = processes.start_daphne(tmp_path)
    rest = [start_process(tmp_path, public_base_url=web.url, DISPATCH_SECONDS="1")
            for start_process in (processes.start_applier, processes.start_worker, processes.start_beat)]
    return [sim, web, *rest]


def test_transfers_answered_by_the_first_or_second_agent_or_falling_back_to_a_call_back(
        transactional_db, tmp_path, acme, alice):
    started = start(tmp_path)
    sim = started[0]
    try:
        agents = {number: Agent.objects.create(workspace=acme, name=name, phone=number, active_from=datetime.time.min,
                                               active_until=datetime.time.max)
                  for number, (_, name) in AGENTS.items()}
        campaigns = {}
        for name, number in CALLERS.items():
            group = services.save_group(AgentGroup(workspace=acme, name=name, ring_seconds=5),
                                        [agents[n] for n in GROUPS[name]])
            campaigns[name] = running_campaign(
                acme, alice, number, sim, name=name, connect_mode=Campaign.ConnectMode.LEGS,
                bot_kind=Campaign.BotKind.SCRIPT, bot_settings=SCRIPT, transfer_group=group, max_attempts=1)

        def settled():
            calls = Call.objects.filter(state__in=Call.FINAL_STATES, campaign__in=campaigns.values())
            return calls.count() == 3 and Transfer.objects.filter(state__in=["ended", "callback"]).count() == 3
        try:
            processes.wait_until(settled, timeout=300, what="three transferred calls to end")
        except TimeoutError:
            logs = "\n".join(f"--- {s.name}\n{s.output()[-4000:]}" for s in started)
            rows = list(Transfer.objects.values())
            raise AssertionError(f"transfers: {rows}\n{logs}") from None

        first, second, nobody = (Transfer.objects.select_related("call", "agent").get(call__campaign=campaigns[n])
                                 for n in ("first", "second", "nobody"))
        assert (first.agent.name, [t["outcome"] for t in first.tried]) == ("Ravi", ["answered"])
        assert (second.agent.name, [t["outcome"] for t in second.tried]) == ("Arun", ["busy", "answered"])
        assert [t["outcome"] for t in nobody.tried] == ["no-answer", "busy"]
        for transfer in (first, second):
            assert transfer.call.state == Call.State.COMPLETED and transfer.call.disposition == "transferred"
            assert transfer.requested_at < transfer.answered_at < transfer.bridged_at < transfer.ended_at
            assert transfer.bridge_sid and 0 < transfer.talk_seconds < 60
            assert transfer.whisper.startswith("Caller Asha") and "Keyed 0." in transfer.whisper
            contact = Contact.objects.get(pk=transfer.call.contact_id)
            assert (contact.state, contact.attempts, contact.outcome) == ("done", 1, "completed")
            campaigns_done = Campaign.objects.get(pk=transfer.call.campaign_id)
            assert campaigns_done.state == Campaign.State.COMPLETED

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
