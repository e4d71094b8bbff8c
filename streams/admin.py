from django.contrib import admin

from streams.models import StreamSession
from tenancy.admin import WorkspaceScopedAdmin


@admin.register(StreamSession)
class StreamSessionAdmin(WorkspaceScopedAdmin):
    list_display = ["stream_sid", "call", "direction", "sample_rate", "started_at", "stop_reason", "close_code"]
    list_filter = ["direction", "stop_reason", "sample_rate", "workspace"]
    search_fields = ["stream_sid", "call__phone"]
    list_select_related = ["call"]
    raw_id_fields = ["call"]
