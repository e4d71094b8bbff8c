"""Text prompts: the workspace's own text-to-speech service, asked once when a prompt is made.

There is no speech engine in this stack: a workspace configures voices (`Voice`), each the https
address of its TTS service (or of a small adapter in front of one), an optional bearer token and
the service's name for the voice. Making a text prompt sends

    POST <url>
    Authorization: Bearer <token>            (when the voice has one)
    Content-Type: application/json
    {"text": "Your renewal is due.", "voice": "<voice ID>", "sample_rate": 24000}

and takes a 200 answer's body, a WAV or MP3 file of at most 20 MB, as the prompt's audio: decoded
and converted like an upload (streams.prompts). The address is checked as webhooks' are (https to
public addresses only; plain http to loopback only where OUTBOUND_ALLOW_LOOPBACK allows) and the
checked address is the one connected to. What the service answered besides its status is never shown.
"""

import httpx
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from integrations.delivery import check_url
from streams import prompts
from streams.bots.relay import authorization
from streams.models import Prompt, Voice
from tenancy import weburls

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
TEXT_MAX = 2000


class SynthesisFailed(Exception):
    """The voice could not make the audio; the message says why and is safe to show its tenant."""


def synthesize(voice: Voice, text: str) -> bytes:
    """The audio file the voice's service made of `text`, or SynthesisFailed."""
    try:
        address, port = check_url(voice.url)
    except weburls.Refused as exc:
        raise SynthesisFailed(f"The voice's address is refused: {exc}") from None
    url = httpx.URL(voice.url)
    body = {"text": text, "voice": voice.voice_id, "sample_rate": prompts.STORED_RATE_MAX}
    headers = {"Host": url.netloc.decode(), "User-Agent": "AgentStream-Prompts/1", **authorization(voice.token)}
    audio = bytearray()
    try:
        # Connect to the address that was checked, not the name again (no DNS rebinding); TLS still checks the name.
        with (httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client,
              client.stream("POST", url.copy_with(host=address, port=port), json=body, headers=headers,
                            extensions={"sni_hostname": url.host}) as response):
            if response.status_code != 200:
                raise SynthesisFailed(f"The voice's service answered HTTP {response.status_code}.")
            for chunk in response.iter_bytes():
                audio += chunk
                if len(audio) > prompts.MAX_PROMPT_BYTES:
                    raise SynthesisFailed(f"The voice's service sent more than "
                                          f"{prompts.MAX_PROMPT_BYTES // 1024 // 1024} MB of audio.")
    except httpx.TimeoutException:
        raise SynthesisFailed(f"The voice's service did not answer within {TIMEOUT.read:g} s.") from None
    except httpx.HTTPError as exc:
        raise SynthesisFailed(f"The voice's service could not be reached ({type(exc).__name__}).") from None
    return bytes(audio)


def save_text_prompt(workspace, name: str, voice: Voice, text: str) -> Prompt:
    """Add or replace the prompt `name` with the voice saying `text`; SynthesisFailed or ValidationError."""
    audio = synthesize(voice, text)
    try:
        return prompts.save_prompt(workspace, name, ContentFile(audio, name=f"{name}.audio"), text=text, voice=voice)
    except ValidationError as exc:
        raise SynthesisFailed(f"The voice's service sent no usable audio: {' '.join(exc.messages)}") from None
