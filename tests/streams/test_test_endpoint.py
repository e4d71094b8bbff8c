"""A workspace's echo test endpoint and the command that prints its URL."""

import io

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command

from streams import services
from streams.models import StreamSession
from tests.streams.exotel_side import Exotel, tone

pytestmark = pytest.mark.django_db(transaction=True)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_command_prints_the_workspaces_test_url(acme):
    out = io.StringIO()
    call_command("stream_url", "--workspace", "acme", "--bot", "echo", stdout=out)
    url = out.getvalue().strip()
    assert url == services.test_stream_url(acme) and url.startswith("ws://127.0.0.1:8000/streams/test/")
    with pytest.raises(CommandError, match="No workspace"):
        call_command("stream_url", "--workspace", "nope")


async def test_the_test_url_echoes_at_once_and_records_a_session(acme):
    exotel = Exotel(path_of(services.test_stream_url(acme)), account_sid="any-account")
    assert await exotel.connect()
    await exotel.start()
    await exotel.media(tone(200))
    assert (await exotel.frame()).payload == tone(200)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(workspace=acme)
    assert session.call_id is None and session.bot_kind == "echo" and session.frames_out == 1
    assert not session.caller_recording


async def test_a_forged_or_revoked_test_token_is_refused(acme, globex):
    acme_path = path_of(services.test_stream_url(acme))
    forged = acme_path.replace(f"/test/{acme.pk}:", f"/test/{globex.pk}:")
    assert not await Exotel(forged).connect()
    assert not await Exotel("/streams/test/garbage").connect()
    assert await Exotel(acme_path).connect()
    await sync_to_async(acme.rotate_webhook_token)()
    assert not await Exotel(acme_path).connect()
