"""Campaigns run by themselves: beat, worker, daphne and the simulator as real processes on loopback.

The simulator's wire log is the witness: how many calls were live at once, how often each number
was dialled, and when each Legs call got its greeting and its stream.
"""

import datetime
import json
from collections import Counter

import pytest

from callbacks.models import WebhookEvent
from campaigns import lifecycle
from campaigns.models import Call, Campaign, Contact
from tests import processes
from tests.conftest import make_account, make_campaign, make_contact

pytestmark = pytest.mark.e2e
ACCOUNT = ("acme1", "key-123456789", "token-987654321")
FATES = {"busy": 5, "no-answer": 5, "failed": 5}  # everyone else answers
OUTCOME_OF = {"answer": "completed", "busy": "busy", "no-answer": "no-answer", "failed": "failed"}


def numbers(count: int) -> list[tuple[str, str]]:
    """(E.164 number, simulator outcome) for `count` contacts, the fates first."""
    fates = [fate for fate, n in FATES.items() for _ in range(n)]
    fates += ["answer"] * (count - len(fates))
    return [(f"+9198{i:08d}", fate) for i, fate in enumerate(fates, start=1)]


def simulator_config(path, plan, hangup_after=1.0) -> None:
    path.write_text(json.dumps({
        "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": hangup_after},
        "numbers": {number: {"outcome": fate, "ring_seconds": 0.3} for number, fate in plan if fate != "answer"},
    }))


def wire_log(sim) -> list[dict]:
    return [json.loads(line) for line in sim.extra["wire_log"].read_text().splitlines()]


def most_live_at_once(records) -> int:
    """Calls the simulator held at once: from the dial's `queued` to its final status."""
    live = peak = 0
    for record in records:
        if record["kind"] != "call" or "status" not in record:
            continue
        if record["status"] == "queued":
            live += 1
        elif record["status"] in OUTCOME_OF.values() and "ended_by" in record:
            live -= 1
        peak = max(peak, live)
    return peak


def dials_per_number(records) -> Counter:
    return Counter(r["number"] for r in records if r["kind"] == "call" and r.get("status") == "queued")


@pytest.fixture
def engine(transactional_db, tmp_path):
    """Start everything for a plan of numbers; stops every process it started at teardown."""
    started = []

    def start(plan, hangup_after=1.0, **env):
        config = tmp_path / "sim.json"
        simulator_config(config, plan, hangup_after)
        product = processes.start_product(tmp_path, ":".join(ACCOUNT), config=config, **env)
        started.extend(product)
        return product[0], product[1]

    yield start
    for service in reversed(started):
        service.stop()


def running_campaign(acme, alice, plan, sim, **fields) -> Campaign:
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=sim.url)
    defaults = {"max_attempts": 2, "retry_after_minutes": 0, "calls_per_minute": 600, "max_concurrent": 8,
                "window_start": datetime.time(0, 0), "window_end": datetime.time(23, 59, 59),
                "weekdays": [1, 2, 3, 4, 5, 6, 7]}
    campaign = make_campaign(acme, account=account, **{**defaults, **fields})
    for number, _ in plan:
        make_contact(campaign, phone=number)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(plan))
    campaign.refresh_from_db()
    return lifecycle.start_campaign(campaign, by=alice)


def wait_for_completion(campaign, services, timeout=75) -> Campaign:
    def done():
        campaign.refresh_from_db()
        return campaign.state == Campaign.State.COMPLETED

    try:
        processes.wait_until(done, timeout=timeout, what="the campaign to complete")
    except TimeoutError:
        states = Counter(Contact.objects.filter(campaign=campaign).values_list("state", flat=True))
        logs = "\n".join(f"--- {s.name}\n{s.output()[-3000:]}" for s in services)
        raise AssertionError(f"contacts: {dict(states)}; campaign: {campaign.__dict__}\n{logs}") from None
    return campaign


def assert_every_contact_final_as_planned(campaign, plan, max_attempts=2):
    fate_of = dict(plan)
    for contact in Contact.objects.filter(campaign=campaign):
        expected = OUTCOME_OF[fate_of[contact.phone]]
        assert (contact.state, contact.outcome) == ("done", expected), contact.phone
        tries = 1 if expected == "completed" else max_attempts
        assert contact.attempts == tries == contact.calls.count(), contact.phone


def test_a_campaign_of_fifty_contacts_reaches_the_right_end_for_every_contact(engine, acme, alice):
    plan = numbers(50)
    sim, web = engine(plan)
    campaign = running_campaign(acme, alice, plan, sim)

    wait_for_completion(campaign, [sim, web])

    assert_every_contact_final_as_planned(campaign, plan)
    records = wire_log(sim)
    assert most_live_at_once(records) <= campaign.max_concurrent
    assert max(dials_per_number(records).values()) <= campaign.max_attempts
    assert sum(dials_per_number(records).values()) == 35 + 15 * 2
    assert (campaign.calls_live, campaign.contacts_done, campaign.calls_total) == (0, 50, 65)
    assert (campaign.calls_answered, campaign.calls_busy, campaign.calls_no_answer, campaign.calls_failed) == (
        35, 10, 10, 10)
    assert not Call.objects.filter(campaign=campaign).exclude(state__in=Call.FINAL_STATES).exists()
    outcomes = Counter(WebhookEvent.objects.values_list("outcome", flat=True))
    assert set(outcomes) <= {"applied", "duplicate"}, outcomes  # every callback found its call


def test_each_legs_call_gets_its_greeting_and_stream_in_parallel(engine, acme, alice):
    plan = [(f"+9197{i:08d}", "answer") for i in range(1, 9)]
    # Callees who wait for the greeting: on a loaded machine our leg events lag by seconds.
    sim, web = engine(plan, hangup_after=10.0)
    campaign = running_campaign(acme, alice, plan, sim, connect_mode=Campaign.ConnectMode.LEGS,
                                greeting_text="Namaste. Connecting you to our assistant.")

    wait_for_completion(campaign, [sim, web])

    assert_every_contact_final_as_planned(campaign, plan)
    actions: dict[str, dict[str, float]] = {}
    for record in wire_log(sim):
        if record["kind"] == "request" and "/actions/" in record["path"]:
            leg, action = record["path"].split("/legs/")[1].split("/actions/")
            actions.setdefault(leg, {}).setdefault(action, record["ts"])
    calls = Call.objects.filter(campaign=campaign)
    assert {call.leg_sid for call in calls} == set(actions)
    for leg, sent in actions.items():  # that they go together is shown in tests/campaigns/test_place_call.py
        assert {"start_stream", "start_say"} <= set(sent), leg
    for call in calls:
        assert call.dead_air_ms is not None and call.greeting_ended_at is not None
