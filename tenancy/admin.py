from django.contrib import admin

from tenancy.crypto import masked
from tenancy.models import Exophone, ExotelAccount, Membership, Workspace


def staff_workspaces(request):
    return Workspace.objects.filter(memberships__user=request.user)


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see, and may pick, only their own workspaces' rows."""

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(workspace__in=staff_workspaces(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            related = db_field.related_model
            if related is Workspace:
                kwargs["queryset"] = staff_workspaces(request)
            elif any(f.name == "workspace" for f in related._meta.fields):
                kwargs["queryset"] = related._default_manager.filter(workspace__in=staff_workspaces(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "created_at"]
    search_fields = ["name", "slug"]
    exclude = ["stream_password"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows if request.user.is_superuser else rows.filter(memberships__user=request.user)


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    autocomplete_fields = ["user"]


@admin.register(ExotelAccount)
class ExotelAccountAdmin(WorkspaceScopedAdmin):
    list_display = ["label", "account_sid", "workspace", "region", "key_hint", "max_allowed_streams", "active_streams"]
    list_filter = ["region", "workspace"]
    search_fields = ["label", "account_sid"]
    # Credentials are set through the dashboard's form; the admin never shows them back.
    exclude = ["api_key", "api_token"]
    readonly_fields = ["max_allowed_streams", "active_streams", "streams_read_at"]

    @admin.display(description="API key")
    def key_hint(self, account):
        return masked(account.api_key)


@admin.register(Exophone)
class ExophoneAdmin(WorkspaceScopedAdmin):
    list_display = ["number", "label", "account", "workspace"]
    list_filter = ["workspace"]
    search_fields = ["number", "label"]
