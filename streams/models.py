from django.conf import settings
from django.db import models

from campaigns.models import Call
from tenancy.crypto import EncryptedTextField
from tenancy.models import Workspace


def recording_path(session: "StreamSession", filename: str) -> str:
    return f"recordings/{session.workspace_id}/{session.started_at:%Y/%m/%d}/{filename}"


class StreamSession(models.Model):
    """One WebSocket stream from Exotel: what arrived, what we sent, how it ended."""

    class Direction(models.TextChoices):
        BIDIRECTIONAL = "bidirectional"  # VoiceBot applet
        RECEIVE_ONLY = "receive_only", "Receive only"  # Stream applet

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, null=True, blank=True, related_name="streams")
    stream_sid = models.CharField(max_length=64, blank=True, db_index=True)
    direction = models.CharField(max_length=15, choices=Direction.choices, default=Direction.BIDIRECTIONAL)
    bot_kind = models.CharField(max_length=10, blank=True)
    sample_rate = models.PositiveIntegerField(default=8000)
    custom_parameters = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=30, blank=True)  # Exotel's stop.reason, or ours
    close_code = models.PositiveIntegerField(null=True, blank=True)
    frames_in = models.PositiveIntegerField(default=0)
    frames_out = models.PositiveIntegerField(default=0)
    bytes_in = models.PositiveBigIntegerField(default=0)
    bytes_out = models.PositiveBigIntegerField(default=0)
    bad_frames = models.PositiveIntegerField(default=0)
    dtmf_digits = models.CharField(max_length=200, blank=True)
    marks = models.JSONField(default=list, blank=True)
    barge_in_ms = models.JSONField(default=list, blank=True, help_text="Caller's first loud frame to clear, each.")
    first_audio_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From `start` to our first audio.")
    caller_recording = models.FileField(upload_to=recording_path, blank=True)
    bot_recording = models.FileField(upload_to=recording_path, blank=True)
    # What the bot concluded (script: `disposition` and `set` steps; relay: its failure, if any).
    disposition = models.CharField(max_length=100, blank=True)
    variables = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return self.stream_sid or f"stream {self.pk}"


class Voice(models.Model):
    """A text-to-speech voice of the workspace: its own TTS service, asked once per text prompt (streams/tts.py)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="voices")
    name = models.CharField(max_length=100, help_text="What operators pick, e.g. Hindi, female.")
    url = models.URLField(max_length=500, verbose_name="URL", help_text="Your TTS service's https:// address.")
    voice_id = models.CharField(max_length=200, blank=True, verbose_name="Voice ID",
                                help_text="Sent as \"voice\": the service's name for this voice.")
    token = EncryptedTextField(blank=True, help_text="Sent as Authorization: Bearer <token>.")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="one_voice_name_per_workspace")]

    def __str__(self):
        return self.name


def prompt_path(prompt: "Prompt", filename: str) -> str:
    return f"prompts/{prompt.workspace_id}/{filename}"


class Prompt(models.Model):
    """A recorded message a script bot plays: a mono 16-bit PCM WAV of any rate, named per workspace; made
    from an upload, or from `text` by one of the workspace's voices."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="prompts")
    name = models.SlugField(max_length=50, help_text="What scripts call it, e.g. greeting-hi.")
    audio = models.FileField(upload_to=prompt_path, help_text="WAV, mono, 16-bit PCM, any sample rate.")
    sample_rate = models.PositiveIntegerField(default=0, editable=False)
    duration_ms = models.PositiveIntegerField(default=0, editable=False)
    text = models.TextField(blank=True, editable=False, help_text="What the voice was asked to say, if a voice made it.")
    voice = models.ForeignKey(Voice, on_delete=models.SET_NULL, null=True, blank=True, editable=False,
                              related_name="prompts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="one_prompt_name_per_workspace")]

    def __str__(self):
        return self.name

    @property
    def seconds(self) -> float:
        return self.duration_ms / 1000


class StreamServer(models.Model):
    """A stream server's heartbeat (streams/heartbeat.py): the dispatcher dials only while one is fresh."""

    name = models.CharField(max_length=200, unique=True)  # host:pid
    seen_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} (seen {self.seen_at:%H:%M:%S})"


class Intervention(models.Model):
    """A supervisor stepping into a live call (streams.supervision): on the call's timeline for good."""

    class Kind(models.TextChoices):
        LISTEN = "listen", "Supervisor listened"
        WHISPER = "whisper", "Supervisor whispered to the bot"
        TAKE_OVER = "take_over", "Supervisor took over"
        HAND_BACK = "hand_back", "Supervisor handed back to the bot"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="interventions")
    session = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="interventions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    by = models.CharField(max_length=254, help_text="The supervisor's e-mail, kept if the user goes.")
    text = models.CharField(max_length=500, blank=True, help_text="A whisper's hint.")
    step = models.CharField(max_length=100, blank=True, help_text="The script step a whisper jumped to.")
    at = models.DateTimeField()
    recording_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Where it falls in the recording.")

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.by})"
