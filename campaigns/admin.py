from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join

from campaigns.models import Call, Campaign, CampaignEvent, Contact, DoNotCall
from tenancy.admin import WorkspaceScopedAdmin


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "state", "connect_mode", "bot_kind", "contacts_total", "contacts_done"]
    list_filter = ["state", "connect_mode", "bot_kind", "workspace"]
    search_fields = ["name"]
    readonly_fields = [f.name for f in Campaign._meta.fields if f.name.startswith(("contacts_", "calls_"))]


@admin.register(CampaignEvent)
class CampaignEventAdmin(WorkspaceScopedAdmin):
    list_display = ["campaign", "action", "by", "at", "note"]
    list_filter = ["action", "workspace"]
    list_select_related = ["campaign", "by"]


@admin.register(Contact)
class ContactAdmin(WorkspaceScopedAdmin):
    list_display = ["phone", "name", "campaign", "state", "attempts", "next_attempt_at", "outcome"]
    list_filter = ["state", "outcome", "workspace"]
    search_fields = ["phone", "name"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign"]


@admin.register(DoNotCall)
class DoNotCallAdmin(WorkspaceScopedAdmin):
    list_display = ["phone", "workspace", "source", "reason", "created_at"]
    list_filter = ["source", "workspace"]
    search_fields = ["phone"]


@admin.register(Call)
class CallAdmin(WorkspaceScopedAdmin):
    list_display = ["phone", "campaign", "attempt", "state", "disposition", "duration", "created_at"]
    list_filter = ["state", "disposition", "disconnected_by", "workspace"]
    search_fields = ["phone", "exotel_sid", "leg_sid"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "contact"]
    readonly_fields = ["token", "recordings"]
    date_hierarchy = "created_at"

    @admin.display(description="Recordings")
    def recordings(self, call):
        """Exotel's recording and each stream's tracks, playable here (tracks served by the streams admin)."""
        players = [("Exotel", call.recording_url)] if call.recording_url else []
        for stream in call.streams.all() if call.pk else []:
            for track in ("caller", "bot"):
                if getattr(stream, f"{track}_recording"):
                    url = reverse("admin:streams_streamsession_recording", args=[stream.pk, track])
                    players.append((f"{stream.stream_sid or stream.pk} {track}", url))
        if not players:
            return "—"
        return format_html_join("", '<p>{}<br><audio controls preload="none" src="{}"></audio></p>', players)
