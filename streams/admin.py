from pathlib import Path

from django.contrib import admin
from django.core.files.base import ContentFile
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from streams import prompts
from streams.models import Prompt, StreamSession
from streams.views import prompt_response, recording_response
from tenancy.admin import RecordAdmin, SameWorkspaceForm, WorkspaceScopedAdmin


def audio_player(url: str):
    return format_html('<audio controls preload="none" src="{}"></audio>', url)


@admin.register(StreamSession)
class StreamSessionAdmin(RecordAdmin):
    list_display = ["stream_sid", "call", "direction", "bot_kind", "sample_rate", "started_at", "stop_reason",
                    "close_code", "disposition"]
    list_filter = ["direction", "bot_kind", "stop_reason", "sample_rate", "workspace"]
    search_fields = ["stream_sid", "call__phone"]
    list_select_related = ["call"]
    readonly_fields = ["caller_audio", "bot_audio"]

    def get_urls(self):
        # Served here, scoped by this admin's queryset (the staff user's workspaces), not from MEDIA_URL.
        listen = self.admin_site.admin_view(self.recording)
        return [path("<int:pk>/recording/<str:track>.wav", listen, name="streams_streamsession_recording"),
                *super().get_urls()]

    def recording(self, request, pk: int, track: str):
        return recording_response(get_object_or_404(self.get_queryset(request), pk=pk), track)

    def _player(self, session: StreamSession, track: str):
        if not session.pk or not getattr(session, f"{track}_recording"):
            return "—"
        return audio_player(reverse("admin:streams_streamsession_recording", args=[session.pk, track]))

    @admin.display(description="Caller audio")
    def caller_audio(self, session):
        return self._player(session, "caller")

    @admin.display(description="Bot audio")
    def bot_audio(self, session):
        return self._player(session, "bot")


class PromptForm(SameWorkspaceForm):
    class Meta:
        model = Prompt
        fields = ["workspace", "name", "audio"]

    def clean_audio(self):
        audio = self.cleaned_data["audio"]
        if "audio" not in self.changed_data:
            return audio  # the stored file, converted when it was uploaded
        converted = prompts.convert(audio)
        self.instance.sample_rate, self.instance.duration_ms = converted.sample_rate, converted.duration_ms
        return ContentFile(converted.wav, name=f"{Path(audio.name).stem}.wav")


@admin.register(Prompt)
class PromptAdmin(WorkspaceScopedAdmin):
    form = PromptForm
    list_display = ["name", "workspace", "sample_rate", "duration_ms", "updated_at", "player"]
    list_filter = ["workspace"]
    search_fields = ["name"]

    def get_urls(self):
        listen = self.admin_site.admin_view(self.audio)
        return [path("<int:pk>/audio.wav", listen, name="streams_prompt_audio"), *super().get_urls()]

    def audio(self, request, pk: int):
        return prompt_response(request, get_object_or_404(self.get_queryset(request), pk=pk))

    @admin.display(description="Listen")
    def player(self, prompt):
        return audio_player(reverse("admin:streams_prompt_audio", args=[prompt.pk]))
