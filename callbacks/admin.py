from django.contrib import admin

from callbacks.models import WebhookEvent
from tenancy.admin import RecordAdmin


@admin.register(WebhookEvent)
class WebhookEventAdmin(RecordAdmin):
    list_display = ["kind", "method", "received_at", "call", "outcome", "applied_at"]
    list_filter = ["kind", "outcome", "workspace"]
    search_fields = ["body"]
    list_select_related = ["call"]
