"""The production shape on loopback: nginx (configured from docker-compose.yml's template) in front of
web processes (gunicorn) and stream servers (daphne). Pages and webhooks reach the web processes,
streams the stream servers; the servers see the client's address, never one a client claims; a
stream server that stops gets no new stream while its live call goes on."""

import asyncio
import re
import signal

import httpx
import pytest

from streams.models import StreamSession
from tests import processes
from tests.conftest import make_call, make_campaign
from tests.e2e.test_shutdown import Caller

pytestmark = pytest.mark.e2e
ACCESS = re.compile(r'"(?P<method>\S+) (?P<path>\S+)" (?P<status>\d{3}) .* upstream=(?P<upstream>.+)$')


@pytest.fixture
def started(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    services = []
    yield services
    for service in reversed(services):
        service.stop()


def access_log(proxy) -> list[dict]:
    return [found.groupdict() for found in map(ACCESS.search, proxy.output().splitlines()) if found]


def served(proxy, path_prefix: str) -> list[str]:
    """The server that answered each request under `path_prefix`: the last one nginx tried."""
    return [line["upstream"].split(", ")[-1] for line in access_log(proxy) if line["path"].startswith(path_prefix)]


def address(service) -> str:
    return service.url.removeprefix("http://")


def test_the_proxy_routes_pages_and_webhooks_to_web_and_streams_to_stream_servers(started, tmp_path, acme):
    web = processes.start_web(tmp_path, public_base_url="http://127.0.0.1", workers=1, BEHIND_PROXY="true")
    streams = processes.start_daphne(tmp_path, name="streams", BEHIND_PROXY="true")
    proxy = processes.start_proxy(tmp_path, web=[web], streams=[streams])
    started += [web, streams, proxy]
    call = make_call(make_campaign(acme, bot_kind="echo"))

    page = httpx.get(f"{proxy.url}/login/")
    style = httpx.get(f"{proxy.url}/static/css/app.css")  # served by the web process before Django (config.wsgi)
    # From another loopback address than the proxy's own, claiming yet another.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3")) as client:
        spoofed = client.post(f"{proxy.url}/hooks/no-such-token/status", headers={"X-Forwarded-For": "203.0.113.9"})

    async def one_call():
        caller = await Caller.dial(f"ws{proxy.url.removeprefix('http')}/streams/{call.token}", "S1")
        await asyncio.wait_for(caller.hears_echoes(), 30)
        return await caller.hang_up()

    assert asyncio.run(one_call()) == 1000
    assert (page.status_code, spoofed.status_code) == (200, 404)
    assert (style.status_code, style.headers["content-type"]) == (200, 'text/css; charset="utf-8"')
    assert style.text == (processes.ROOT / "static" / "css" / "app.css").read_text()
    processes.wait_until(lambda: StreamSession.objects.filter(call=call, ended_at__isnull=False).exists(), timeout=30,
                         what="the call's session to be saved")
    assert set(served(proxy, "/login/")) == set(served(proxy, "/hooks/")) == {address(web)}
    assert served(proxy, "/streams/") == [address(streams)]
    assert "/streams/[redacted]" in proxy.output() and call.token not in proxy.output()
    # The web process believed the proxy, which passed the client's own address, not the claimed one.
    assert "unknown token from 127.0.0.3" in web.output() and "203.0.113.9" not in web.output()


def test_a_stopping_stream_server_gets_no_new_stream_and_finishes_its_call(started, tmp_path, acme):
    draining, staying = (processes.start_daphne(tmp_path, name=name, STREAM_DRAIN_SECONDS="60")
                         for name in ("streams-1", "streams-2"))
    web = processes.start_web(tmp_path, public_base_url="http://127.0.0.1", workers=1)
    proxy = processes.start_proxy(tmp_path, web=[web], streams=[draining, staying])
    started += [draining, staying, web, proxy]
    campaign = make_campaign(acme, bot_kind="echo")
    calls = [make_call(campaign) for _ in range(6)]
    through_proxy = f"ws{proxy.url.removeprefix('http')}/streams/"

    async def restart() -> list[int]:
        live = await Caller.dial(f"ws{draining.url.removeprefix('http')}/streams/{calls[0].token}", "S0")
        await asyncio.wait_for(live.hears_echoes(), 30)
        draining.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(processes.wait_until, lambda: "draining" in draining.output(), timeout=30,
                                what="the stream server to start draining")
        codes = []
        for n, call in enumerate(calls[1:], start=1):  # round robin would send every other one to it
            caller = await Caller.dial(through_proxy + call.token, f"S{n}")
            await asyncio.wait_for(caller.hears_echoes(), 30)
            codes.append(await caller.hang_up())
        await asyncio.wait_for(live.hears_echoes(more_than=live.echoes), 30)  # still a working call
        codes.append(await live.hang_up())
        return codes

    assert asyncio.run(restart()) == [1000] * len(calls)
    assert draining.process.wait(60) == 0
    assert served(proxy, "/streams/") == [address(staying)] * (len(calls) - 1)
    sessions = StreamSession.objects.filter(call__in=calls)
    processes.wait_until(lambda: sessions.filter(ended_at__isnull=False).count() == len(calls), timeout=30,
                         what="every session to be saved")
    assert sorted(s.stop_reason for s in sessions) == ["callended"] * len(calls)
