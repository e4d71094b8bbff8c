"""Answering machines end to end: the simulator answers some numbers with a machine (a greeting, a
beep, Exotel's verdict late or never), and daphne's stream server, the applier, a Celery worker and
beat, all real processes, must end each contact right: people completed at the first attempt, machines
hung up on and dialled again up to the campaign's attempts, or left a message once."""

import json
import math
from collections import Counter

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Call, Campaign, Contact
from exotel.audio import pcm_to_wav
from streams import prompts
from streams.models import StreamSession
from tests import processes
from tests.e2e.test_campaign_run import ACCOUNT, running_campaign, wait_for_completion, wire_log

pytestmark = pytest.mark.e2e
PEOPLE = [f"+9196{i:08d}" for i in range(1, 5)]
MACHINES = [f"+9195{i:08d}" for i in range(1, 5)]


def simulator_config(path, machine: dict, special: dict) -> None:
    """People speak a few short bursts and hang up after 3 s; machines greet for 8 s, beep, and
    record for 20 s (the bot must end those calls); `special` overrides one machine's keys. The
    greeting is long so that the ear still hears some of it on a loaded machine, where a stream may
    open seconds after the answer."""
    path.write_text(json.dumps({
        "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 3.0},
        "numbers": {number: {"hangup_after": 20.0,
                             "machine": {"greeting_seconds": 8.0, **machine, **special.get(number, {})}}
                    for number in MACHINES},
    }))


@pytest.fixture
def engine(transactional_db, tmp_path):
    started = []

    def start(machine: dict, special: dict | None = None):
        config = tmp_path / "sim.json"
        simulator_config(config, machine, special or {})
        product = processes.start_product(tmp_path, ":".join(ACCOUNT), config=config)
        started.extend(product)
        return product[0], product[1]

    yield start
    for service in reversed(started):
        service.stop()


def message_prompt(workspace) -> str:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * math.pi * 440 * t) * 6000).astype("<i2").tobytes()
    prompts.save_prompt(workspace, "sorry-we-missed-you", SimpleUploadedFile("m.wav", pcm_to_wav(tone, 8000)))
    return "sorry-we-missed-you"


def outcomes(campaign) -> dict[str, tuple]:
    return {c.phone: (c.state, c.outcome, c.attempts, c.calls.count()) for c in Contact.objects.filter(campaign=campaign)}


def calls_of(campaign) -> str:
    """For a failure's message: each call's decision and how its stream ended."""
    return "\n".join(f"{c.phone} #{c.attempt} {c.state} {c.disposition!r} {c.answered_by!r} {c.amd_verdicts} "
                     f"{[s.stop_reason for s in c.streams.all()]}" for c in campaign.calls.order_by("phone"))


def test_machines_are_hung_up_on_and_retried_while_people_talk_connect_mode(engine, acme, alice):
    # Exotel's AnsweredBy comes after the calls have ended: only the stream server's ear can act.
    sim, web = engine({"answered_by": "machine", "amd_delay": 20.0})
    plan = [(n, "answer") for n in PEOPLE + MACHINES]
    campaign = running_campaign(acme, alice, plan, sim, machine_detection="on", on_machine="hang_up",
                                retry_on=["no-answer"], max_attempts=2)

    wait_for_completion(campaign, [sim, web], timeout=120)

    ended = outcomes(campaign)
    assert all(ended[n] == ("done", "completed", 1, 1) for n in PEOPLE), calls_of(campaign)
    assert all(ended[n] == ("done", "machine", 2, 2) for n in MACHINES), calls_of(campaign)
    machine_calls = Call.objects.filter(contact__phone__in=MACHINES)
    assert {(c.state, c.disposition, c.answered_by, c.answered_by_source) for c in machine_calls} == {
        ("completed", "machine", "machine", "audio")}
    assert all(c.answered_by_ms is not None and "exotel" not in c.amd_verdicts for c in machine_calls)
    people = Call.objects.filter(contact__phone__in=PEOPLE)
    assert {c.answered_by for c in people} == {"human"}
    campaign.refresh_from_db()
    assert (campaign.calls_machine, campaign.calls_total, campaign.contacts_done) == (8, 12, 8)
    # The simulator saw the bot, not the caller, end every machine's call.
    ends = Counter(r.get("ended_by") for r in wire_log(sim) if r["kind"] == "call" and "ended_by" in r
                   and r.get("status") == "completed")
    assert ends["bot"] == 8


def test_machines_get_a_message_after_the_beep_legs_mode(engine, acme, alice):
    # Exotel says "machine" 1 s after the answer, except for one machine it never has a verdict for.
    never = MACHINES[-1]
    sim, web = engine({"amd_result": "machine", "amd_delay": 1.0}, {never: {"amd_result": ""}})
    plan = [(n, "answer") for n in PEOPLE + MACHINES]
    campaign = running_campaign(acme, alice, plan, sim, connect_mode=Campaign.ConnectMode.LEGS,
                                greeting_text="Hello", machine_detection="async", on_machine="leave_message",
                                voicemail_prompt=message_prompt(acme), retry_on=["no-answer"], max_attempts=2)

    wait_for_completion(campaign, [sim, web], timeout=120)

    ended = outcomes(campaign)
    assert all(ended[n] == ("done", "completed", 1, 1) for n in PEOPLE), calls_of(campaign)
    assert all(ended[n] == ("done", "voicemail_left", 1, 1) for n in MACHINES), calls_of(campaign)
    left = {c.phone: c for c in Call.objects.filter(contact__phone__in=MACHINES)}
    assert {(c.disposition, c.answered_by) for c in left.values()} == {("voicemail_left", "machine")}
    # Which of the two decides first is a race (the ear may beat a verdict the applier is slow to apply).
    assert all(c.amd_verdicts.get("exotel", {"result": "machine"})["result"] == "machine" for c in left.values())
    assert left[never].answered_by_source == "audio" and "exotel" not in left[never].amd_verdicts
    # The message played to its end (its mark came back), then the bot hung up.
    for call in left.values():
        stream = StreamSession.objects.get(call=call)
        assert stream.stop_reason == "voicemail_left", call.phone
        assert "voicemail" in [mark["name"] for mark in stream.marks], call.phone
    people = Call.objects.filter(contact__phone__in=PEOPLE)
    assert {(c.answered_by, c.disposition) for c in people} == {("human", "")}
