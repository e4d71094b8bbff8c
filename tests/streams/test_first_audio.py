"""Time to first audio: measured where the stream sends its first audio frame, stored on the session
(from the stream's start) and on the call (from its answer)."""

import datetime

import pytest
from django.utils import timezone

from campaigns import calls
from campaigns.models import Call
from streams.models import StreamSession
from tests.streams.exotel_side import Exotel, tone

pytestmark = pytest.mark.django_db(transaction=True)


async def echoed_once(call: Call) -> None:
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    await exotel.frame()  # the echo: our first audio
    await exotel.stop()
    await exotel.hang_up()


async def test_it_counts_from_the_answer_when_the_call_was_answered_before_its_stream(call):
    await Call.objects.filter(pk=call.pk).aupdate(state=Call.State.IN_PROGRESS,
                                                  answered_at=timezone.now() - datetime.timedelta(seconds=2))
    await echoed_once(call)
    session = await StreamSession.objects.aget(call=call)
    stored = await Call.objects.aget(pk=call.pk)
    assert session.first_audio_ms is not None
    # The two seconds between the answer and the stream's start count for the caller.
    assert stored.first_audio_ms >= 2000 + session.first_audio_ms - 1


async def test_it_counts_from_the_streams_start_when_no_answer_was_known_yet(call):
    await echoed_once(call)
    session = await StreamSession.objects.aget(call=call)
    assert session.first_audio_ms is not None
    assert (await Call.objects.aget(pk=call.pk)).first_audio_ms == session.first_audio_ms


async def test_a_stream_that_sent_nothing_has_no_time_to_first_audio(call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await exotel.stop()
    await exotel.hang_up()
    assert (await StreamSession.objects.aget(call=call)).first_audio_ms is None
    assert (await Call.objects.aget(pk=call.pk)).first_audio_ms is None


def test_the_calls_first_stream_to_send_audio_sets_it(call):
    calls.set_first_audio(call.pk, 640)
    calls.set_first_audio(call.pk, 90)  # a later stream of the call (after a transfer) changes nothing
    assert Call.objects.get(pk=call.pk).first_audio_ms == 640
