"""Supervision on the wire: the call's stream on one real stream server (config.server, daphne), the
supervisor on another, with real WebSocket clients; only Redis and PostgreSQL are shared."""

import asyncio
import json
import shutil

import pytest
import websockets

from campaigns.models import Call
from exotel import protocol
from streams.models import Intervention
from tests import processes
from tests.conftest import make_call, signed_in
from tests.streams.exotel_side import tone

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not shutil.which("redis-server"), reason="the processes share a redis-server")]


@pytest.fixture
def servers(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    redis = processes.start_redis(tmp_path)
    started = [redis]
    try:
        env = {"REDIS_URL": redis.url, "MEDIA_ROOT": settings.MEDIA_ROOT}
        started += processes.start_together(
            lambda: processes.start_daphne(tmp_path, name="streams-a", **env),
            lambda: processes.start_daphne(tmp_path, name="streams-b", **env))
        yield started[1], started[2]
    finally:
        for service in reversed(started):
            service.stop()


async def next_frame(ws, predicate, timeout: float = 15):
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            frame = (raw[0], raw[4:]) if isinstance(raw, bytes) else json.loads(raw)
            if predicate(frame):
                return frame


def test_a_supervisor_on_another_server_hears_the_call_and_takes_it_over(servers, campaign, alice):
    call = make_call(campaign, state=Call.State.IN_PROGRESS)
    cookie = signed_in(alice).cookies["sessionid"].value
    a, b = servers

    async def run():
        exotel = await websockets.connect(a.url.replace("http", "ws") + f"/streams/{call.token}")
        await exotel.send(protocol.exotel_connected_frame())
        await exotel.send(protocol.exotel_start_frame(1, stream_sid="MZ9", call_sid="CA9", account_sid="acme1",
                                                      from_="+919876500000", to="+918047491899",
                                                      custom_parameters={}, sample_rate=8000))
        supervisor = await websockets.connect(
            b.url.replace("http", "ws") + f"/live/calls/{call.pk}",
            additional_headers={"Cookie": f"sessionid={cookie}", "Origin": b.url})
        state = await next_frame(supervisor, lambda f: isinstance(f, dict) and f["type"] == "state")
        assert state["rate"] == 8000 and state["holder"] == ""

        spoken = tone(200)
        await exotel.send(protocol.exotel_media_frame(2, "MZ9", 1, 0, spoken))
        _, pcm = await next_frame(supervisor, lambda f: isinstance(f, tuple) and f[0] == 0)
        assert pcm == spoken  # the caller, heard on the other server

        await supervisor.send(json.dumps({"action": "take_over"}))
        await next_frame(supervisor, lambda f: isinstance(f, dict) and f.get("holder") == alice.email)
        cleared = False
        voice = tone(200, hz=700)
        await supervisor.send(voice)
        async with asyncio.timeout(15):
            while True:
                frame = protocol.parse_bot_frame(await exotel.recv())
                cleared = cleared or isinstance(frame, protocol.BotClear)
                if isinstance(frame, protocol.BotMedia) and frame.payload == voice:
                    break
        assert cleared  # the bot's pending audio went before the supervisor spoke

        await supervisor.send(json.dumps({"action": "hand_back"}))
        await next_frame(supervisor, lambda f: isinstance(f, dict) and f.get("type") == "state" and not f["holder"])
        await supervisor.close()
        await exotel.close()

    asyncio.run(run())
    processes.wait_until(lambda: Intervention.objects.filter(call=call, kind="hand_back").exists(),
                         timeout=15, what="the hand-back recorded")
    kinds = list(Intervention.objects.filter(call=call).order_by("at", "pk").values_list("kind", flat=True))
    assert kinds == ["listen", "take_over", "hand_back"]


def test_a_member_of_another_workspace_is_refused_on_the_wire(servers, campaign, charlie):
    call = make_call(campaign, state=Call.State.IN_PROGRESS)
    cookie = signed_in(charlie).cookies["sessionid"].value
    _, b = servers

    async def run():
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(b.url.replace("http", "ws") + f"/live/calls/{call.pk}",
                                     additional_headers={"Cookie": f"sessionid={cookie}", "Origin": b.url})
        assert refused.value.response.status_code == 403

    asyncio.run(run())

