from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join

from campaigns import lifecycle, pools, rules
from campaigns.models import (
    Call,
    Campaign,
    CampaignEvent,
    Contact,
    DoNotCall,
    DoNotCallImport,
    Hold,
    InvalidTransition,
    Recipient,
)
from tenancy import weburls
from tenancy.admin import RecordAdmin, SameWorkspaceForm, WorkspaceScopedAdmin


def lifecycle_action(action: str):
    """An admin action that calls lifecycle.<action>_campaign for each selected campaign."""

    @admin.action(description=f"{action.capitalize()} selected campaigns", permissions=["change"])
    def act(model_admin, request, campaigns):
        for campaign in campaigns:
            try:
                getattr(lifecycle, f"{action}_campaign")(campaign, by=request.user)
            except InvalidTransition as exc:
                model_admin.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            else:
                model_admin.message_user(request, f"{campaign}: {campaign.state}.", messages.SUCCESS)

    act.__name__ = action
    return act


class CampaignAdminForm(SameWorkspaceForm):
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("account"):
            try:
                pools.check_pool(cleaned["account"], cleaned.get("exophones", ()))
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    form = CampaignAdminForm
    list_display = ["name", "workspace", "state", "connect_mode", "bot_kind", "contacts_total", "contacts_done"]
    list_filter = ["state", "connect_mode", "bot_kind", "workspace"]
    search_fields = ["name"]
    exclude = ["relay_token"]  # a secret: set on the campaign's form, never shown back
    # State changes only through the lifecycle (the actions); counters and pacing are the engine's.
    readonly_fields = [
        "state", "last_error", "created_by", "contacts_total", "contacts_done", "calls_total", "calls_live",
        "calls_answered", "calls_busy", "calls_no_answer", "calls_failed", "calls_machine", "talk_seconds",
        "pace_credit", "paced_at", "pace_factor", "backoff_until",
    ]
    actions = [lifecycle_action(action) for action in lifecycle.ACTIONS]

    def save_model(self, request, campaign, form, change):
        if not change:
            campaign.created_by = request.user
        super().save_model(request, campaign, form, change)


@admin.register(CampaignEvent)
class CampaignEventAdmin(RecordAdmin):
    list_display = ["campaign", "action", "by", "at", "note"]
    list_filter = ["action", "workspace"]
    list_select_related = ["campaign", "by"]


@admin.register(Contact)
class ContactAdmin(WorkspaceScopedAdmin):
    list_display = ["phone", "name", "campaign", "state", "attempts", "next_attempt_at", "outcome"]
    list_filter = ["state", "outcome", "workspace"]
    search_fields = ["phone", "name"]
    list_select_related = ["campaign"]
    # The dialer moves a contact along; its campaign's counters count it.
    readonly_fields = ["workspace", "campaign", "state", "attempts", "next_attempt_at", "outcome"]

    def has_add_permission(self, request):
        return False  # contacts arrive by import, which checks them and keeps the campaign's counters


@admin.register(DoNotCall)
class DoNotCallAdmin(WorkspaceScopedAdmin):
    list_display = ["phone", "workspace", "source", "reason", "created_at"]
    list_filter = ["source", "workspace"]
    search_fields = ["phone"]


@admin.register(DoNotCallImport)
class DoNotCallImportAdmin(RecordAdmin):
    list_display = ["__str__", "workspace", "source", "file_date", "state", "progress", "added", "rejected", "created_at"]
    list_filter = ["source", "state", "workspace"]


@admin.register(Hold)
class HoldAdmin(RecordAdmin):
    """Why the dispatcher held each contact back; the pre-launch panel and held.csv read the same rows."""

    list_display = ["phone", "campaign", "reason", "detail", "at", "until"]
    list_filter = ["reason", "workspace"]
    search_fields = ["phone"]
    list_select_related = ["campaign"]
    date_hierarchy = "at"


@admin.register(Recipient)
class RecipientAdmin(RecordAdmin):
    """The per-number ledger the attempt caps are checked on."""

    list_display = ["phone", "workspace", "attempts_24h", "attempts_7d"]
    list_filter = ["workspace"]
    search_fields = ["phone"]

    @admin.display(description="Attempts (24 h)")
    def attempts_24h(self, recipient):
        return rules.counts(recipient.attempts, timezone.now())[0]

    @admin.display(description="Attempts (7 d)")
    def attempts_7d(self, recipient):
        return rules.counts(recipient.attempts, timezone.now())[1]


@admin.register(Call)
class CallAdmin(RecordAdmin):
    list_display = ["phone", "campaign", "attempt", "state", "disposition", "duration", "price", "created_at"]
    list_filter = ["state", "disposition", "disconnected_by", "workspace"]
    search_fields = ["phone", "exotel_sid", "leg_sid"]
    list_select_related = ["campaign"]
    readonly_fields = ["recordings"]
    date_hierarchy = "created_at"

    @admin.display(description="Recordings")
    def recordings(self, call):
        """Exotel's recording and each stream's tracks, playable here (tracks served by the streams admin)."""
        # Exotel's URL came from outside: only a web address may reach src.
        players = [("Exotel", call.recording_url)] if weburls.has_scheme(call.recording_url) else []
        for stream in call.streams.all() if call.pk else []:
            for track in ("caller", "bot"):
                if getattr(stream, f"{track}_recording"):
                    url = reverse("admin:streams_streamsession_recording", args=[stream.pk, track])
                    players.append((f"{stream.stream_sid or stream.pk} {track}", url))
        if not players:
            return "—"
        return format_html_join("", '<p>{}<br><audio controls preload="none" src="{}"></audio></p>', players)
