"""Who may see what: the active workspace of a request, the scoping helper and role checks.

Views reach tenant data only through `scoped`, which filters inside the query, so another
workspace's id is indistinguishable from a missing one (404), never fetched and then compared.
"""

import contextlib
import zoneinfo
from functools import wraps

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from tenancy.models import Membership, Role

SESSION_KEY = "workspace_id"


def scoped(request, model):
    """Rows of `model` in the request's workspace: the only way views read tenant data."""
    if request.workspace is None:
        return model._default_manager.none()
    return model._default_manager.filter(workspace=request.workspace)


def active_membership(request) -> Membership | None:
    """The membership the session chose, else the user's first; None for anonymous users."""
    if not request.user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    chosen = request.session.get(SESSION_KEY)
    return (chosen and memberships.filter(workspace_id=chosen).first()) or memberships.order_by("pk").first()


def switch_workspace(request, workspace_id: int) -> Membership:
    membership = Membership.objects.filter(user=request.user, workspace_id=workspace_id).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    return membership


class WorkspaceMiddleware:
    """Sets request.membership and request.workspace, as healthchecks sets request.profile.

    Sync and async capable: under ASGI the whole stack stays async, so no request thread ever sits
    in an AsyncToSync waiting for the event loop (such threads hung daphne's exit on SIGTERM)."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        activate(request)
        with _workspace_time_zone(request):
            return self.get_response(request)

    async def __acall__(self, request):
        await sync_to_async(activate)(request)
        with _workspace_time_zone(request):
            return await self.get_response(request)


def activate(request) -> None:
    request.membership = active_membership(request)
    request.workspace = request.membership.workspace if request.membership else None


def _workspace_time_zone(request):
    # Pages show times in the workspace's zone, as its operators live by it.
    if request.workspace is None:
        return contextlib.nullcontext()
    return timezone.override(zoneinfo.ZoneInfo(request.workspace.time_zone))


def role_required(role: Role):
    """Refuse (403) members whose role is below `role`; send anonymous users to sign in."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.membership is None or not request.membership.can(role):
                raise PermissionDenied(f"This needs the {Role(role).label} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def workspace_context(request):
    """Template context: the active workspace, the user's role and the other workspaces."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "workspace": membership.workspace,
        "membership": membership,
        "memberships": Membership.objects.filter(user=request.user).select_related("workspace"),
        # What the page may offer; the views check again on every request.
        "can_operate": membership.can(Role.OPERATOR),
        "can_admin": membership.can(Role.ADMIN),
    }
