"""The stream endpoint against the real ASGI application: binding, every event, every bad input."""

import base64
import datetime

import pytest
from celery.signals import before_task_publish
from django.utils import timezone

from campaigns.models import Call
from streams import runtime
from streams.models import StreamSession
from tests.exotel.conftest import until
from tests.streams.exotel_side import Exotel, silence, tone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published():
    """Celery messages really sent to the broker while the test runs: (task name, args)."""
    sent = []

    def record(sender=None, body=None, **kwargs):
        sent.append((sender, list(body[0])))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


async def test_it_refuses_an_unknown_token(call):
    assert not await Exotel("/streams/not-a-token").connect()


@pytest.mark.parametrize("state", [Call.State.COMPLETED, Call.State.FAILED, Call.State.CANCELED])
async def test_it_refuses_a_finished_call(call, state):
    await Call.objects.filter(pk=call.pk).aupdate(state=state)
    assert not await Exotel(f"/streams/{call.token}").connect()


async def test_it_refuses_an_expired_token(call):
    await Call.objects.filter(pk=call.pk).aupdate(created_at=timezone.now() - datetime.timedelta(days=2))
    assert not await Exotel(f"/streams/{call.token}").connect()


async def test_it_asks_for_the_workspaces_basic_credentials(call, acme):
    acme.stream_username, acme.stream_password = "exotel", "s3cret"
    await acme.asave()
    assert not await Exotel(f"/streams/{call.token}").connect()
    wrong = [(b"authorization", b"Basic " + base64.b64encode(b"exotel:nope"))]
    assert not await Exotel(f"/streams/{call.token}", headers=wrong).connect()
    right = [(b"authorization", b"Basic " + base64.b64encode(b"exotel:s3cret"))]
    exotel = Exotel(f"/streams/{call.token}", headers=right)
    assert await exotel.connect()
    await exotel.hang_up()


async def test_it_echoes_and_records_the_session(call, published):
    exotel = Exotel(f"/streams/{call.token}?sample-rate=8000&lang=hi")
    assert await exotel.connect()
    await exotel.start(lang="hi")
    audio = tone(200)  # 3200 bytes: one legal chunk
    await exotel.media(audio)
    echoed = await exotel.frame()
    assert echoed.payload == audio and echoed.stream_sid == "MZ1"
    await exotel.media(audio[:1600])  # half a chunk waits for the other half
    assert await exotel.ws.receive_nothing(0.1)
    await exotel.media(audio[1600:])
    assert (await exotel.frame()).payload == audio
    await exotel.dtmf("5")
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()

    session = await StreamSession.objects.aget(call=call)
    assert (session.stream_sid, session.sample_rate, session.bot_kind) == ("MZ1", 8000, "echo")
    assert session.custom_parameters == {"lang": "hi"}
    assert (session.frames_in, session.bytes_in, session.frames_out, session.bytes_out) == (3, 6400, 2, 6400)
    assert (session.dtmf_digits, session.stop_reason, session.close_code) == ("5", "callended", 1000)
    assert session.ended_at is not None and session.bad_frames == 0
    await until(lambda: ("campaigns.tasks.stream_started", [call.pk]) in published, what="stream_started")


async def test_it_closes_a_stream_started_by_another_workspaces_account(call, globex_account):
    exotel = Exotel(f"/streams/{call.token}", account_sid=globex_account.account_sid)
    assert await exotel.connect()
    await exotel.start()
    assert await exotel.frame() == ("close", 4008)
    await exotel.hang_up(4008)
    assert not await StreamSession.objects.filter(call=call).aexists()


async def test_a_broken_start_closes_with_a_protocol_error(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.send('{"event": "start", "start": {"stream_sid": "MZ1"}}')  # no call_sid
    assert await exotel.frame() == ("close", 4002)
    await exotel.hang_up(4002)
    assert not await StreamSession.objects.filter(call=call).aexists()  # no session began


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", '{"no": "event"}', '{"event": "media", "media": {"payload": "@@"}}'])
async def test_a_bad_frame_is_counted_and_the_stream_goes_on(call, frame):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.send(frame)
    await exotel.media(tone(200))
    assert (await exotel.frame()).payload == tone(200)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=call)
    assert session.bad_frames == 1 and session.frames_in == 1


async def test_unknown_events_are_counted_not_fatal(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.send('{"event": "hold", "stream_sid": "MZ1"}')
    await exotel.media(tone(200))
    assert (await exotel.frame()).payload == tone(200)
    await exotel.hang_up()
    assert (await StreamSession.objects.aget(call=call)).bad_frames == 1


async def test_media_before_start_and_for_another_stream_never_reach_the_bot(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.media(tone(200))
    await exotel.start()
    await exotel.media(tone(200), sid="MZ-other-call")
    assert await exotel.ws.receive_nothing(0.1)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=call)
    assert (session.bad_frames, session.frames_in) == (2, 0)


async def test_too_many_bad_frames_close_the_stream(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    for _ in range(runtime.MAX_BAD_FRAMES + 1):
        await exotel.send("garbage")
    assert await exotel.frame() == ("close", 4003)
    await exotel.hang_up(4003)
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code) == ("bad_frames", 4003)


async def test_a_dropped_socket_is_recorded_as_dropped(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(silence(100))
    await exotel.hang_up(1006)
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code, session.ended_at is not None) == ("dropped", 1006, True)


async def test_the_session_ends_at_the_time_limit(call, settings):
    settings.STREAM_MAX_SECONDS = 0.2
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    assert await exotel.frame(timeout=2) == ("close", 1000)
    await exotel.hang_up()
    assert (await StreamSession.objects.aget(call=call)).stop_reason == "time_limit"


async def test_marks_report_what_the_caller_heard(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.frame()
    await exotel.mark("not-ours")  # ignored, not an error
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=call)
    assert session.marks == [] and session.bad_frames == 0


async def test_the_listen_endpoint_records_and_never_sends(call):
    exotel = Exotel(f"/streams/{call.token}/listen")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.dtmf("1")
    assert await exotel.ws.receive_nothing(0.2)
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=call)
    assert session.direction == StreamSession.Direction.RECEIVE_ONLY and session.frames_out == 0
    assert session.caller_recording and not session.bot_recording
