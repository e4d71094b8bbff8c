"""Every close of a stream, on the wire: the real server (`config.server`, daphne) and a real WebSocket
client. The close code must reach the client, with the socket ended, within a second; the session
row records the code that went on the wire; and the next call on the same server works."""

import asyncio
import contextlib
import socket
import time

import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from campaigns.models import Campaign
from exotel import protocol
from streams import services
from streams.models import StreamSession
from tests import processes
from tests.conftest import make_account, make_call, make_campaign
from tests.streams.exotel_side import tone

pytestmark = pytest.mark.e2e

CLOSE_WITHIN = 1.0  # seconds from the frame that causes a close to the socket's end (issue 10)


def stream_url(daphne, path: str) -> str:
    return "ws" + daphne.url.removeprefix("http") + path


def start_frames(account_sid: str = "acme1") -> list[str]:
    return [protocol.exotel_connected_frame(), protocol.exotel_start_frame(
        1, stream_sid="MZ1", call_sid="CA1", account_sid=account_sid, from_="+919876500000",
        to="+918047491899", custom_parameters={}, sample_rate=8000)]


def media_frame(seq: int) -> str:
    return protocol.exotel_media_frame(seq, "MZ1", seq, seq * 100, tone(200))


async def close_code(ws) -> int:
    """The code of the close the server sent; it and the end of the socket must come in time."""
    async with asyncio.timeout(CLOSE_WITHIN):
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await ws.recv()  # echoes sent before the close
    return ws.close_code


def closed_after(url: str, *frames: str, limit: float = 0) -> int:
    """Send `frames`; the server's close code, which must come within a second (after `limit` s)."""
    async def scenario() -> int:
        async with websockets.connect(url, max_size=None) as ws:
            for frame in frames:
                await ws.send(frame)
            await asyncio.sleep(limit)
            return await close_code(ws)

    return asyncio.run(scenario())


def session_of(call) -> StreamSession:
    return processes.wait_until(lambda: StreamSession.objects.filter(call=call, ended_at__isnull=False).first(),
                                timeout=10, what="the stream session to end")


def assert_a_following_call_works(daphne, campaign: Campaign) -> None:
    call = make_call(campaign)

    async def scenario() -> tuple[bytes, int]:
        async with websockets.connect(stream_url(daphne, f"/streams/{call.token}")) as ws:
            for frame in [*start_frames(), media_frame(2)]:
                await ws.send(frame)
            echoed = protocol.parse_bot_frame(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(protocol.exotel_stop_frame(3, "MZ1", call_sid="CA1", account_sid="acme1", reason="callended"))
            return echoed.payload, await close_code(ws)

    assert asyncio.run(scenario()) == (tone(200), 1000)
    session = session_of(call)
    assert (session.stop_reason, session.close_code, session.frames_in) == ("callended", 1000, 1)


def test_a_start_from_another_workspaces_account_is_closed(daphne, campaign, globex):
    make_account(globex)
    call = make_call(campaign)
    assert closed_after(stream_url(daphne, f"/streams/{call.token}"), *start_frames("globex1")) == 4008
    assert not StreamSession.objects.filter(call=call).exists()  # nothing of it is kept
    assert_a_following_call_works(daphne, campaign)


def test_the_test_endpoint_closes_a_start_from_another_workspaces_account(daphne, campaign, acme, globex):
    make_account(globex)
    url = stream_url(daphne, f"/streams/test/{services.test_stream_token(acme)}")
    assert closed_after(url, *start_frames("globex1")) == 4008
    assert not StreamSession.objects.filter(workspace=acme).exists()
    assert closed_after(url, *start_frames("acme1"), protocol.exotel_stop_frame(
        2, "MZ1", call_sid="CA1", account_sid="acme1", reason="callended")) == 1000
    assert_a_following_call_works(daphne, campaign)


def test_a_broken_start_is_closed_as_a_protocol_error(daphne, campaign):
    call = make_call(campaign)
    broken = '{"event": "start", "start": {"stream_sid": "MZ1"}}'  # no call_sid
    assert closed_after(stream_url(daphne, f"/streams/{call.token}"), broken) == 4002
    assert_a_following_call_works(daphne, campaign)


def test_too_many_bad_frames_close_the_stream(daphne, campaign):
    call = make_call(campaign)
    assert closed_after(stream_url(daphne, f"/streams/{call.token}"), *start_frames(), *["garbage"] * 21) == 4003
    session = session_of(call)
    assert (session.stop_reason, session.close_code, session.bad_frames) == ("bad_frames", 4003, 21)
    assert_a_following_call_works(daphne, campaign)


def test_a_frame_over_the_size_limit_is_closed_and_recorded_as_such(daphne, campaign):
    call = make_call(campaign)
    oversized = '{"event": "media", "stream_sid": "MZ1", "media": {"payload": "' + "A" * 300_000 + '"}}'
    assert closed_after(stream_url(daphne, f"/streams/{call.token}"), *start_frames(), media_frame(2),
                        oversized) == 4009
    session = session_of(call)
    assert (session.stop_reason, session.close_code, session.frames_in) == ("frame_too_big", 4009, 1)
    assert_a_following_call_works(daphne, campaign)


def test_a_text_frame_that_is_not_utf8_is_closed_as_an_invalid_payload(daphne, campaign):
    call = make_call(campaign)

    async def scenario() -> int:
        async with websockets.connect(stream_url(daphne, f"/streams/{call.token}")) as ws:
            for frame in start_frames():
                await ws.send(frame)
            await ws.send(b'{"event": "\xff"}', text=True)  # autobahn refuses it before we see it
            return await close_code(ws)

    assert asyncio.run(scenario()) == 4007
    assert session_of(call).close_code == 4007
    assert_a_following_call_works(daphne, campaign)


def test_frames_are_read_whole_however_the_bytes_arrive(daphne, campaign):
    """config.server reads whole, plain text frames itself and leaves the rest to autobahn: frames
    coalesced in one read, frames split across reads, a ping and a fragmented message between them."""
    call = make_call(campaign)
    client = ClientProtocol(parse_uri(stream_url(daphne, f"/streams/{call.token}")), max_size=None)
    client.send_request(client.connect())
    with socket.create_connection(("127.0.0.1", int(daphne.url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"".join(client.data_to_send()))
        client.receive_data(sock.recv(65536))
        assert isinstance(client.events_received()[0], Response)
        for frame in [*start_frames(), media_frame(2), media_frame(3)]:
            client.send_text(frame.encode())
        client.send_ping(b"are you there")
        fragmented = media_frame(4).encode()
        client.send_text(fragmented[:100], fin=False)
        client.send_continuation(fragmented[100:], fin=True)
        client.send_text(media_frame(5).encode())
        data = b"".join(client.data_to_send())
        half = len(data) // 2
        sock.sendall(data[:half])  # whole frames and the head of one
        for at in range(half, len(data), 777):  # the rest a piece at a time
            time.sleep(0.02)
            sock.sendall(data[at:at + 777])
        events = []
        while sum(event.opcode == Opcode.TEXT for event in events) < 4:
            client.receive_data(sock.recv(65536))
            events += client.events_received()
        assert [protocol.parse_bot_frame(event.data.decode()).payload for event in events
                if event.opcode == Opcode.TEXT] == [tone(200)] * 4
        assert [event.data for event in events if event.opcode == Opcode.PONG] == [b"are you there"]
        client.send_text(protocol.exotel_stop_frame(6, "MZ1", call_sid="CA1", account_sid="acme1",
                                                    reason="callended").encode())
        sock.sendall(b"".join(client.data_to_send()))
        close = None
        while close is None:
            client.receive_data(sock.recv(65536))
            close = next((event for event in client.events_received() if event.opcode == Opcode.CLOSE), None)
        assert Close.parse(close.data).code == 1000
    session = session_of(call)
    assert (session.stop_reason, session.close_code, session.frames_in) == ("callended", 1000, 4)


def test_a_bot_that_fails_ends_its_call_with_a_server_error(daphne, campaign, acme):
    # A script stored before validation existed (or edited past it): the bot raises on its first step.
    broken = make_campaign(acme, name="Broken", account=campaign.account, bot_kind="script",
                           bot_settings={"steps": [{"pause": "soon"}]})
    call = make_call(broken)
    assert closed_after(stream_url(daphne, f"/streams/{call.token}"), *start_frames()) == 4011
    session = session_of(call)
    assert (session.stop_reason, session.close_code) == ("server_error", 4011)
    assert_a_following_call_works(daphne, campaign)


def test_a_stream_is_closed_at_the_time_limit(transactional_db, tmp_path, settings, campaign):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    short = processes.start_daphne(tmp_path, STREAM_MAX_SECONDS="2")
    try:
        call = make_call(campaign)
        assert closed_after(stream_url(short, f"/streams/{call.token}"), *start_frames(), limit=2) == 1000
        session = session_of(call)
        assert (session.stop_reason, session.close_code) == ("time_limit", 1000)
        assert session.caller_recording  # the record of a call cut at the limit is complete
    finally:
        short.stop()


def test_a_peer_that_never_answers_our_close_is_cut_off(daphne, campaign, globex):
    make_account(globex)
    call = make_call(campaign)
    client = ClientProtocol(parse_uri(stream_url(daphne, f"/streams/{call.token}")))  # websockets, sans I/O
    client.send_request(client.connect())
    with socket.create_connection(("127.0.0.1", int(daphne.url.rsplit(":", 1)[1])), timeout=5) as sock:

        def exchange() -> list:
            sock.sendall(b"".join(client.data_to_send()))
            client.receive_data(sock.recv(65536))
            return client.events_received()

        assert isinstance(exchange()[0], Response)
        for frame in start_frames("globex1"):
            client.send_text(frame.encode())
        (close,) = exchange()
        assert close.opcode == Opcode.CLOSE and Close.parse(close.data).code == 4008
        # The client would answer the close now (client.data_to_send()); this one never does.
        sock.settimeout(CLOSE_WITHIN)
        try:
            rest = sock.recv(65536)
        except ConnectionResetError:  # autobahn aborts the connection: a reset, not a FIN
            rest = b""
        assert rest == b""  # the server ended the connection all the same (a timeout fails here)


def test_calls_go_on_and_end_normally_while_redis_is_down(transactional_db, tmp_path, settings, campaign):
    # Redis as cache, channel layer and broker, unreachable: only the live view and the start news wait.
    settings.MEDIA_ROOT = str(tmp_path / "media")
    no_redis = processes.start_daphne(tmp_path, REDIS_URL=f"redis://127.0.0.1:{processes.free_port()}/1")
    try:
        assert_a_following_call_works(no_redis, campaign)
        processes.wait_until(lambda: "could not announce its stream's start" in no_redis.output(), timeout=20,
                             what="the start news to be retried")
    finally:
        no_redis.stop()
