"""Faults during a real run: a killed worker, a Redis restart, Exotel's 429 and 5xx, repeated and
reordered webhooks.

Nothing is lost (every contact ends as planned) and nothing is doubled (every number is dialled
once, the counters add up, replayed callbacks change nothing).
"""

import shutil

import httpx
import pytest

from callbacks.models import WebhookEvent
from campaigns.models import Call, Campaign, Contact
from tests import processes
from tests.e2e.test_campaign_run import (
    ACCOUNT,
    dials_per_number,
    running_campaign,
    simulator_config,
    wait_for_completion,
    wire_log,
)

pytestmark = pytest.mark.e2e
# Short enough that calls whose task died with the worker are recovered within the test.
FAST_REAPER = {"REAP_SECONDS": "1", "CALL_QUEUED_STALE_SECONDS": "4", "CALL_DIALING_STALE_SECONDS": "4",
               "CALL_UNKNOWN_GRACE_SECONDS": "3"}


@pytest.fixture
def services(transactional_db, tmp_path):
    started = []
    yield started, tmp_path
    for service in reversed(started):
        service.stop()


def test_a_killed_worker_and_exotel_errors_lose_nothing_and_double_nothing(services, acme, alice):
    started, tmp_path = services
    plan = [(f"+9196{i:08d}", "answer") for i in range(1, 21)]
    config = tmp_path / "sim.json"
    simulator_config(config, plan)
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    started.append(sim)
    httpx.put(f"{sim.url}/_sim/faults", json=[
        {"endpoint": "connect", "kind": "status", "status": 429, "retry_after": "1", "times": 2},
        {"endpoint": "connect", "kind": "status", "status": 503, "times": 2},
    ]).raise_for_status()
    web = processes.start_daphne(tmp_path)
    applier = processes.start_applier(tmp_path, public_base_url=web.url)
    worker = processes.start_worker(tmp_path, public_base_url=web.url, **FAST_REAPER)
    beat = processes.start_beat(tmp_path, public_base_url=web.url, DISPATCH_SECONDS="1", **FAST_REAPER)
    started += [web, applier, worker, beat]
    # Two attempts: a call the killed worker held before its request left is unknown until the
    # timeout (time limit + grace) fails it, and its contact is dialled again. Once either way.
    campaign = running_campaign(acme, alice, plan, sim, max_attempts=2, max_concurrent=4, time_limit=8)

    processes.wait_until(lambda: Call.objects.filter(campaign=campaign).count() >= 6, timeout=30,
                         what="the campaign to be under way")
    worker.kill()  # mid-campaign: tasks it held are never acknowledged
    again = processes.start_worker(tmp_path, public_base_url=web.url, name="worker-again", **FAST_REAPER)
    started.append(again)

    wait_for_completion(campaign, [sim, web, again])

    dials = dials_per_number(wire_log(sim))
    assert set(dials) == {number for number, _ in plan} and set(dials.values()) == {1}
    for contact in Contact.objects.filter(campaign=campaign):
        assert (contact.state, contact.outcome) == ("done", "completed"), contact.phone
    never_sent = Call.objects.filter(campaign=campaign, state=Call.State.FAILED, error__startswith="No callback")
    assert campaign.calls_total == 20 + never_sent.count()
    assert (campaign.calls_answered, campaign.calls_live) == (20, 0)


def test_repeated_and_reordered_status_callbacks_change_nothing(services, acme, alice):
    started, tmp_path = services
    plan = [(f"+9195{i:08d}", fate) for i, fate in enumerate(["answer"] * 4 + ["busy", "no-answer"], start=1)]
    config = tmp_path / "sim.json"
    simulator_config(config, plan)
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    web = processes.start_daphne(tmp_path)
    started += [sim, web]
    started += [processes.start_applier(tmp_path, public_base_url=web.url),
                processes.start_worker(tmp_path, public_base_url=web.url),
                processes.start_beat(tmp_path, public_base_url=web.url, DISPATCH_SECONDS="1")]
    campaign = running_campaign(acme, alice, plan, sim, max_attempts=1)
    wait_for_completion(campaign, [sim, web])
    before = (Campaign.objects.values().get(pk=campaign.pk), list(Contact.objects.values().order_by("pk")),
              list(Call.objects.values().order_by("pk")))

    delivered = [r for r in wire_log(sim) if r["kind"] == "callback" and r["type"] == "status" and r.get("status") == 200]
    with httpx.Client() as client:
        for record in reversed(delivered):  # every callback again, last first
            assert client.post(record["url"], json=record["body"]).status_code == 200
    processes.wait_until(lambda: not WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PENDING).exists(),
                         timeout=60, what="the applier to apply the repeats")

    after = (Campaign.objects.values().get(pk=campaign.pk), list(Contact.objects.values().order_by("pk")),
             list(Call.objects.values().order_by("pk")))
    before[0].pop("updated_at"), after[0].pop("updated_at")
    assert after == before
    replays = WebhookEvent.objects.order_by("-received_at")[: len(delivered)]
    assert {event.outcome for event in replays} == {WebhookEvent.Outcome.DUPLICATE}


@pytest.mark.skipif(not shutil.which("redis-server"), reason="restarting Redis needs redis-server here")
def test_a_redis_restart_loses_no_call_and_doubles_none(services, acme, alice):
    started, tmp_path = services
    port = processes.free_port()
    redis = processes.start_redis(tmp_path, port=port)
    env = {**FAST_REAPER, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    plan = [(f"+9194{i:08d}", "answer") for i in range(1, 13)]
    config = tmp_path / "sim.json"
    simulator_config(config, plan)
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    web = processes.start_daphne(tmp_path, **env)
    applier = processes.start_applier(tmp_path, public_base_url=web.url, **env)
    worker = processes.start_worker(tmp_path, public_base_url=web.url, **env)
    beat = processes.start_beat(tmp_path, public_base_url=web.url, DISPATCH_SECONDS="1", **env)
    started += [sim, web, applier, worker, beat]
    campaign = running_campaign(acme, alice, plan, sim, max_attempts=2, max_concurrent=3, time_limit=8)

    processes.wait_until(lambda: Call.objects.filter(campaign=campaign).count() >= 3, timeout=30,
                         what="the campaign to be under way")
    redis.stop()  # every message waiting in Redis is gone
    processes.wait_until(lambda: "Connection to broker lost" in worker.output(), timeout=10, what="the worker to notice")
    redis = processes.start_redis(tmp_path, port=port)
    started.insert(0, redis)  # stopped last
    if (revived := processes.revived_worker(worker, tmp_path, name="worker-again", public_base_url=web.url,
                                            **env)) is not worker:
        worker = revived
        started.append(worker)

    wait_for_completion(campaign, [sim, web, worker, beat], timeout=120)

    dials = dials_per_number(wire_log(sim))
    assert set(dials) == {number for number, _ in plan} and set(dials.values()) == {1}
    for contact in Contact.objects.filter(campaign=campaign):
        assert (contact.state, contact.outcome) == ("done", "completed"), contact.phone
    assert campaign.calls_live == 0
