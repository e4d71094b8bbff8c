"""The admin, scoped like the pages: staff who are not superusers reach only the workspaces where
their role is admin or owner, in every list, form, widget, filter and lookup.

Superusers see every workspace. For everyone, what the engine keeps (states, counters) is read-only:
it moves them concurrently with F() updates, and lifecycle and role changes go through the same
services as the dashboard, as admin actions.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Q, QuerySet

from tenancy import members
from tenancy.crypto import masked
from tenancy.models import Exophone, ExotelAccount, Membership, Role, Workspace

ADMIN_ROLES = [role for role in Role if role.rank >= Role.ADMIN.rank]


def administered(request):
    """The workspaces a staff member administers: the admin's rights follow their workspace role."""
    return Workspace.objects.filter(memberships__user=request.user, memberships__role__in=ADMIN_ROLES)


def staff_filter(request, model) -> Q:
    """The rows of `model` the admin may show or offer the request's user, as a filter inside the query."""
    if request.user.is_superuser:
        return Q()
    workspaces = administered(request)
    if model is Workspace:
        return Q(pk__in=workspaces)
    if model is get_user_model():
        return Q(pk__in=Membership.objects.filter(workspace__in=workspaces).values("user"))
    if any(field.name == "workspace" for field in model._meta.fields):
        return Q(workspace__in=workspaces)
    return Q(pk__in=[])  # a table this rule does not know how to scope shows nothing


class SameWorkspaceForm(forms.ModelForm):
    """Every row a form links to belongs to the row's own workspace, even for staff of several."""

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned["workspace"].pk if cleaned.get("workspace") else self.instance.workspace_id
        for name, value in list(cleaned.items()):
            chosen = value if isinstance(value, QuerySet) else [value]  # many-to-many: each one
            if any(getattr(row, "workspace_id", workspace) != workspace for row in chosen):
                self.add_error(name, "Choose one of the same workspace's.")
        return cleaned


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Rows, foreign-key choices and relation filters, all limited by `staff_filter`."""

    form = SameWorkspaceForm

    def get_queryset(self, request):
        return super().get_queryset(request).filter(staff_filter(request, self.model))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        kwargs["queryset"] = related._default_manager.filter(staff_filter(request, related))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        kwargs["queryset"] = related._default_manager.filter(staff_filter(request, related))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # Django's relation filter lists the whole related table (every workspace's name); this one
        # lists only what the scoped rows refer to.
        def scoped(entry):
            if isinstance(entry, str) and self.model._meta.get_field(entry).is_relation:
                return entry, RelatedOnlyFieldListFilter
            return entry

        return [scoped(entry) for entry in super().get_list_filter(request)]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Never the whole row: the columns shown read-only are the engine's, moved concurrently.
        readonly = set(self.get_readonly_fields(request, obj))
        obj.save(update_fields=[f.name for f in obj._meta.concrete_fields if not f.primary_key and f.name not in readonly])


class RecordAdmin(WorkspaceScopedAdmin):
    """What the engine and Exotel recorded: shown, never written by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SuperusersAddAndDelete:
    """Adding and deleting these rows is for superusers; staff change only what they administer."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ScopedUserAdmin(SuperusersAddAndDelete, UserAdmin):
    """Staff see the members of the workspaces they administer, read-only: accounts and rights are a
    superuser's, and members join through the members page."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(staff_filter(request, self.model))

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = readonly_fields = ["user", "role", "created_at"]
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Workspace)
class WorkspaceAdmin(SuperusersAddAndDelete, admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "created_at"]
    search_fields = ["name", "slug"]
    exclude = ["stream_password"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(staff_filter(request, self.model))


def acting_membership(request, workspace_id: int) -> Membership:
    """Who changes a role, for the members service; a superuser acts with an owner's rights."""
    if request.user.is_superuser:
        return Membership(user=request.user, workspace_id=workspace_id, role=Role.OWNER)
    return Membership.objects.get(user=request.user, workspace_id=workspace_id)


def change_members(model_admin, request, rows, change, done: str) -> None:
    for membership in rows.select_related("user", "workspace"):
        try:
            change(membership, actor=acting_membership(request, membership.workspace_id))
        except members.MembershipRefused as exc:
            model_admin.message_user(request, f"{membership}: {exc}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{membership.user} {done}.", messages.SUCCESS)


def role_action(role: Role):
    @admin.action(description=f"Make {role.label.lower()}", permissions=["change"])
    def make(model_admin, request, rows):
        change_members(model_admin, request, rows, partial(members.change_role, role=role), f"is now {role}")

    make.__name__ = f"make_{role}"
    return make


@admin.action(description="Remove from the workspace", permissions=["change"])
def remove(model_admin, request, rows):
    change_members(model_admin, request, rows, members.remove_member, "removed")


@admin.register(Membership)
class MembershipAdmin(SuperusersAddAndDelete, WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    autocomplete_fields = ["user"]
    # Roles change only through the members service (owners make owners, a workspace keeps one).
    actions = [*(role_action(role) for role in Role), remove]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "workspace", "role", "created_at"] if obj else []


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
    list_display = ["number", "label", "account", "workspace", "breaker"]
    list_filter = ["breaker", "workspace"]
    search_fields = ["number", "label"]
    # The breaker is the engine's (campaigns/breaker.py): a hand edit would resume a number Exotel refuses.
    readonly_fields = ["breaker", "breaker_reason", "breaker_until", "breaker_changed_at"]
