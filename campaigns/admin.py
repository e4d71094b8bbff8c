from django.contrib import admin

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
    readonly_fields = ["token"]
    date_hierarchy = "created_at"
