"""An operator's bad day, smaller: a campaign under a killed worker (three times), a killed webhook
applier, a Redis restart and a web-server restart, all in its first part.

Callbacks sent while the web server is down are lost; calls whose worker died are lost or
unknown; tasks Redis held are gone. The engine must still end every contact, dial no attempt
twice, never exceed the concurrency cap, and leave no call live and `calls_live` at 0: lost
callbacks are made up for by reconciliation (Exotel's Call Details), lost tasks by the reaper, and
no call is dialled while no stream server is up. Redis is a private redis-server of this test's
own (when one is installed), so restarting it disturbs nobody.
"""

import shutil
import time
from collections import Counter

import httpx
import pytest

from campaigns.models import Call, Contact
from tests import processes
from tests.e2e.test_campaign_run import (
    ACCOUNT,
    most_live_at_once,
    running_campaign,
    simulator_config,
    wait_for_completion,
    wire_log,
)

pytestmark = pytest.mark.e2e
# Every recovery on a test's time scale: the reaper, reconciliation, the recount and the heartbeat.
FAST = {
    "DISPATCH_SECONDS": "1", "REAP_SECONDS": "1", "CALL_QUEUED_STALE_SECONDS": "4",
    "CALL_DIALING_STALE_SECONDS": "4", "CALL_UNKNOWN_GRACE_SECONDS": "3", "RECONCILE_SECONDS": "1",
    "CALL_RING_TIMEOUT_SECONDS": "2", "CALL_RECONCILE_GRACE_SECONDS": "2", "RECOUNT_SECONDS": "2",
    "STREAM_END_RECONCILE_SECONDS": "2", "STREAM_HEARTBEAT_SECONDS": "0.5", "STREAM_HEARTBEAT_EXPIRES_SECONDS": "2",
    # A tick's calls (up to CAP) in one message, so the kills land mid-message too.
    "DIAL_MESSAGES_SPREAD": "1",
}
CONTACTS, CAP = 36, 5


@pytest.fixture
def started(transactional_db):
    services = []
    yield services
    for service in reversed(services):
        service.stop()


def plan() -> list[tuple[str, str]]:
    fates = ["busy"] * 3 + ["no-answer"] * 3 + ["answer"] * (CONTACTS - 6)
    return [(f"+9194{i:08d}", fate) for i, fate in enumerate(fates, start=1)]


def test_every_contact_ends_once_through_worker_kills_and_redis_and_web_restarts(started, acme, alice, tmp_path):
    contacts = plan()
    config = tmp_path / "sim.json"
    simulator_config(config, contacts)
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    started.append(sim)
    redis = processes.start_redis(tmp_path) if shutil.which("redis-server") else None
    env = {**FAST, **({"REDIS_URL": redis.url} if redis else {})}
    started[:0] = [redis] if redis else []
    web = processes.start_daphne(tmp_path, **env)
    web_port = int(web.url.rsplit(":", 1)[1])
    applier = processes.start_applier(tmp_path, public_base_url=web.url, **env)
    worker = processes.start_worker(tmp_path, public_base_url=web.url, **env)
    beat = processes.start_beat(tmp_path, public_base_url=web.url, **env)
    started += [web, applier, worker, beat]
    campaign = running_campaign(acme, alice, contacts, sim, max_concurrent=CAP, max_attempts=2, time_limit=8)

    def after_calls(count):
        processes.wait_until(lambda: Call.objects.filter(campaign=campaign).count() >= count, timeout=60,
                             what=f"{count} calls to be placed")

    def restart_worker(name):
        nonlocal worker
        worker.kill()  # SIGKILL: the tasks it held are never acknowledged
        worker = processes.start_worker(tmp_path, public_base_url=web.url, name=name, **env)
        started.append(worker)

    after_calls(4)
    restart_worker("worker-2")
    applier.kill()  # between storing a callback and applying it: its successor applies what is pending
    started.append(processes.start_applier(tmp_path, public_base_url=web.url, **env))
    if redis:
        after_calls(8)
        redis.stop()  # what Redis held (queued tasks, the channel layer) is gone
        redis = processes.start_redis(tmp_path, port=int(redis.url.rsplit(":", 1)[1].split("/")[0]))
        started.insert(0, redis)  # stopped last
        if (revived := processes.revived_worker(worker, tmp_path, name="worker-revived", public_base_url=web.url,
                                                **env)) is not worker:
            worker = revived
            started.append(worker)
    after_calls(12)
    restart_worker("worker-3")
    after_calls(15)
    web.stop()  # callbacks sent now are lost, and stream handshakes refused
    time.sleep(5)  # past the heartbeat's expiry: the dispatcher must hold dialling
    web = processes.start_daphne(tmp_path, port=web_port, **env)
    started.append(web)
    after_calls(18)
    restart_worker("worker-4")

    services = [sim, web, worker, beat]
    campaign = wait_for_completion(campaign, services, timeout=240)

    final = Contact.objects.filter(campaign=campaign)
    assert {contact.state for contact in final} == {Contact.State.DONE}
    tokens = Counter(call["custom_field"] for call in httpx.get(f"{sim.url}/_sim/calls").json())
    assert set(tokens.values()) == {1}, "an attempt was dialled twice"
    assert not Call.objects.filter(campaign=campaign).exclude(state__in=Call.FINAL_STATES).exists()
    assert most_live_at_once(wire_log(sim)) <= CAP
    assert campaign.calls_live == 0
    assert campaign.contacts_done == CONTACTS
    held = "dialling held: no stream server" in "".join(s.output() for s in started if s.name.startswith("worker"))
    assert held, "the dispatcher never noticed the web server was down"
