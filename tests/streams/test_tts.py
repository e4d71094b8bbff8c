"""Text prompts said by the workspace's own TTS service: a fake one on loopback answers as a real one
would (a WAV made for the text), or fails in each way a service can."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse

from exotel.audio import pcm_to_wav
from streams import tts
from streams.models import Prompt, Voice
from tenancy.models import Role
from tests.conftest import make_user, signed_in
from tests.streams.exotel_side import tone

pytestmark = pytest.mark.django_db

SECRET_BODY = "internal-tts-stack-trace"


class FakeTts(ThreadingHTTPServer):
    """Says any text as a tone, 100 ms a word at 16 kHz, to the holder of its token; `mode` makes it fail."""

    mode = "speak"  # or "error", "html", "slow"
    token = "tts-s3cret"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            server = self.server
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append((self.path, self.headers.get("Authorization"), body))
            if self.headers.get("Authorization") != f"Bearer {server.token}":
                return self.answer(401, b"who are you", "text/plain")
            if server.mode == "error":
                return self.answer(500, SECRET_BODY.encode(), "text/plain")
            if server.mode == "html":
                return self.answer(200, b"<html>quota exceeded</html>", "text/html")
            if server.mode == "slow":
                time.sleep(2)
            self.answer(200, pcm_to_wav(tone(100 * len(body["text"].split()), 16000), 16000), "audio/wav")

        def answer(self, status: int, content: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass


@pytest.fixture
def fake_tts():
    server = FakeTts(("127.0.0.1", 0), FakeTts.Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1/say"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def voice(acme, fake_tts):
    return Voice.objects.create(workspace=acme, name="Hindi", url=fake_tts.url, voice_id="hi-IN-1", token=fake_tts.token)


def speak(client, name: str, voice: Voice, text: str):
    return client.post(reverse("streams:prompt_speak"), {"name": name, "voice": voice.pk, "text": text}, follow=True)


def test_an_admin_adds_a_voice_and_an_operator_makes_a_prompt_from_text(alice_client, acme, fake_tts):
    response = alice_client.post(reverse("streams:voice_add"), {
        "name": "Hindi", "url": fake_tts.url, "voice_id": "hi-IN-1", "token": fake_tts.token}, follow=True)
    assert "Voice Hindi added." in response.content.decode() and fake_tts.token not in response.content.decode()
    voice = Voice.objects.get(workspace=acme)
    stored = Voice.objects.filter(pk=voice.pk).values_list(Cast("token", TextField()), flat=True).get()
    assert voice.token == fake_tts.token and fake_tts.token not in stored  # encrypted at rest

    operator = signed_in(make_user("olga@example.org", acme, Role.OPERATOR))
    response = speak(operator, "renewal-due", voice, "Your renewal is due this week")
    assert "Prompt renewal-due saved (0.6 s) from Hindi." in response.content.decode()
    assert fake_tts.requests == [("/v1/say", f"Bearer {fake_tts.token}",
                                  {"text": "Your renewal is due this week", "voice": "hi-IN-1", "sample_rate": 24000})]
    prompt = Prompt.objects.get(workspace=acme, name="renewal-due")
    assert (prompt.sample_rate, prompt.duration_ms, prompt.text, prompt.voice) == (
        16000, 600, "Your renewal is due this week", voice)
    assert "“Your renewal is due this week” · Hindi" in response.content.decode()


@pytest.mark.parametrize(("mode", "error"), [
    ("error", "The voice&#x27;s service answered HTTP 500."),
    ("html", "The voice&#x27;s service sent no usable audio: The file is not a WAV or MP3 file that can be decoded"),
])
def test_a_service_that_fails_is_told_without_its_answer(alice_client, voice, fake_tts, mode, error):
    fake_tts.mode = mode
    page = speak(alice_client, "hello", voice, "Hello").content.decode()
    assert error in page and SECRET_BODY not in page and "quota exceeded" not in page
    assert not Prompt.objects.exists()


def test_a_wrong_token_is_an_http_401(alice_client, voice):
    voice.token = "stale"
    voice.save()
    assert "The voice&#x27;s service answered HTTP 401." in speak(alice_client, "hello", voice, "Hello").content.decode()


def test_a_slow_service_times_out(alice_client, voice, fake_tts, monkeypatch):
    monkeypatch.setattr(tts, "TIMEOUT", httpx.Timeout(0.5))
    fake_tts.mode = "slow"
    page = speak(alice_client, "hello", voice, "Hello").content.decode()
    assert "The voice&#x27;s service did not answer within 0.5 s." in page and not Prompt.objects.exists()


def test_the_outbound_rules_keep_private_addresses_out(alice_client, voice, fake_tts, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    page = speak(alice_client, "hello", voice, "Hello").content.decode()
    assert "The voice&#x27;s address is refused:" in page and fake_tts.requests == []


@pytest.mark.parametrize(("url", "error"), [
    ("http://tts.example.com/say", "Only https:// addresses are allowed."),
    ("https://10.0.0.5/say", "is a private, loopback or link-local address"),
    ("ftp://tts.example.com/", "Only https:// and http:// addresses are allowed."),
])
def test_a_voice_needs_a_public_https_address(alice_client, url, error):
    response = alice_client.post(reverse("streams:voice_add"), {"name": "Bad", "url": url})
    assert error in str(response.context["voice_form"].errors["url"]) and not Voice.objects.exists()


def test_voices_are_the_admins_and_text_prompts_the_operators(bob_client, acme, voice):
    operator = signed_in(make_user("olga@example.org", acme, Role.OPERATOR))
    assert operator.post(reverse("streams:voice_add"), {"name": "X", "url": "https://tts.example.com"}).status_code \
        == 403
    assert operator.post(reverse("streams:voice_delete", args=[voice.pk])).status_code == 403
    assert bob_client.post(reverse("streams:prompt_speak"), {"name": "x", "voice": voice.pk, "text": "Hi"}
                           ).status_code == 403
    assert Voice.objects.count() == 1 and not Prompt.objects.exists()


def test_another_workspaces_voice_cannot_be_used_or_removed(charlie_client, voice, fake_tts):
    response = charlie_client.post(reverse("streams:prompt_speak"), {"name": "x", "voice": voice.pk, "text": "Hi"})
    assert "Select a valid choice" in str(response.context["text_form"].errors["voice"])
    assert charlie_client.post(reverse("streams:voice_delete", args=[voice.pk])).status_code == 404
    assert fake_tts.requests == [] and Voice.objects.filter(pk=voice.pk).exists()
    page = charlie_client.get(reverse("streams:prompts")).content.decode()
    assert voice.url not in page and f'value="{voice.pk}"' not in page


def test_removing_a_voice_keeps_its_prompts(alice_client, voice):
    speak(alice_client, "hello", voice, "Hello there")
    response = alice_client.post(reverse("streams:voice_delete", args=[voice.pk]), follow=True)
    assert "Voice Hindi removed; the prompts it made keep their audio." in response.content.decode()
    prompt = Prompt.objects.get(name="hello")
    assert prompt.voice is None and prompt.text == "Hello there" and prompt.duration_ms == 200
