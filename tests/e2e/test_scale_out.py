"""The production shape through a rolling restart: two web processes, two stream servers, the webhook
applier, two workers and one beat behind the proxy (nginx, from the compose file's template), sharing
a private Redis.

A campaign's calls stream through both stream servers and its callbacks reach both web processes;
mid-campaign one of each is restarted: the stream server drains (a new process takes its port at
once, as a new container takes its name), the web process stops gracefully, the worker warmly, the
applier (one of its kind) too.
Every contact must end as planned, no attempt be dialled twice, and no request through the proxy
fail: a stopping server refuses new connections, and the proxy sends them to its twin.
"""

import shutil
import signal
import socket
from collections import Counter
from functools import partial

import httpx
import pytest

from campaigns.models import Call
from tests import processes
from tests.e2e.test_campaign_run import (
    ACCOUNT,
    assert_every_contact_final_as_planned,
    running_campaign,
    simulator_config,
    wait_for_completion,
)
from tests.e2e.test_proxy import access_log, address, served

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not shutil.which("redis-server"), reason="the processes share a redis-server")]
FAST = {"DISPATCH_SECONDS": "1", "STREAM_HEARTBEAT_SECONDS": "0.5", "STREAM_HEARTBEAT_EXPIRES_SECONDS": "3"}
DRAIN_SECONDS = "60"  # longer than any call here: a drain ends no call


def port_of(service) -> int:
    return int(service.url.rsplit(":", 1)[1])


@pytest.fixture
def started(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    services = []
    yield services
    for service in reversed(services):
        service.stop()


def plan() -> list[tuple[str, str]]:
    fates = ["busy"] * 2 + ["no-answer"] * 2 + ["answer"] * 16
    return [(f"+9193{i:08d}", fate) for i, fate in enumerate(fates, start=1)]


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_a_campaign_behind_the_proxy_survives_restarting_one_of_each(started, acme, alice, tmp_path):
    contacts = plan()
    config = tmp_path / "sim.json"
    simulator_config(config, contacts, hangup_after=3.0)  # calls still live when their server is told to stop
    sim = processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)
    redis = processes.start_redis(tmp_path)
    started += [redis, sim]
    proxy_port = processes.free_port()
    public = f"http://127.0.0.1:{proxy_port}"
    env = {**FAST, "REDIS_URL": redis.url, "BEHIND_PROXY": "true"}

    def stream_server(name, port=None):
        return partial(processes.start_daphne, tmp_path, name=name, port=port, public_base_url=public,
                       STREAM_DRAIN_SECONDS=DRAIN_SECONDS, **env)

    def web_process(name, port=None):
        return partial(processes.start_web, tmp_path, name=name, port=port, public_base_url=public, workers=1, **env)

    def worker(name):
        return partial(processes.start_worker, tmp_path, name=name, public_base_url=public, **env)

    def applier(name):
        return partial(processes.start_applier, tmp_path, name=name, public_base_url=public, **env)

    *streams, web_1, web_2, applier_1, worker_1, worker_2, beat = processes.start_together(
        stream_server("streams-1"), stream_server("streams-2"), web_process("web-1"), web_process("web-2"),
        applier("applier"), worker("worker-1"), worker("worker-2"),
        partial(processes.start_beat, tmp_path, public_base_url=public, **env))
    web = [web_1, web_2]
    started += [*streams, *web, applier_1, worker_1, worker_2, beat]
    proxy = processes.start_proxy(tmp_path, web=web, streams=streams, port=proxy_port)
    started.append(proxy)
    campaign = running_campaign(acme, alice, contacts, sim, max_concurrent=6, max_attempts=2, calls_per_minute=60)

    processes.wait_until(lambda: Call.objects.filter(campaign=campaign, streams__isnull=False).distinct().count() >= 4,
                         timeout=90, what="calls to be streaming")
    # One of each at once. The stream server's socket is closed as soon as it drains, and its
    # successor takes the port while its calls go on; the others stop, then start again.
    old_streams = streams[0]
    old_streams.process.send_signal(signal.SIGTERM)
    for service in (web_1, applier_1, worker_1):
        service.stop()
    # Its listening socket closes a moment after it says it drains: the successor binds once it has.
    processes.wait_until(lambda: refuses(port_of(old_streams)), timeout=30, what="the stream server to stop listening")
    started += processes.start_together(stream_server("streams-1-again", port=port_of(old_streams)),
                                        web_process("web-1-again", port=port_of(web_1)), applier("applier-again"),
                                        worker("worker-1-again"))

    campaign = wait_for_completion(campaign, started, timeout=150)
    assert old_streams.process.wait(60) == 0  # drained: its calls ended by themselves

    assert_every_contact_final_as_planned(campaign, contacts)
    tokens = Counter(call["custom_field"] for call in httpx.get(f"{sim.url}/_sim/calls").json())
    assert set(tokens.values()) == {1}, "an attempt was dialled twice"
    assert campaign.calls_live == 0
    assert set(served(proxy, "/streams/")) == {address(s) for s in streams}
    assert set(served(proxy, "/hooks/")) == {address(w) for w in web}
    failed = [line for line in access_log(proxy) if line["status"] >= "500"]
    assert not failed, failed
