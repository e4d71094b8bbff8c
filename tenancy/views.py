from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from campaigns import accounts, breaker, links, rules
from exotel.errors import ExotelError
from streams import services as stream_services
from tenancy import access, members
from tenancy.access import role_required, scoped
from tenancy.forms import (
    CallingPolicyForm,
    ExophoneForm,
    ExotelAccountForm,
    InviteForm,
    NewAccountForm,
    RoleForm,
    StreamCredentialsForm,
)
from tenancy.models import Exophone, ExotelAccount, Invitation, Membership, Role, Workspace


@require_POST
@login_required
def switch(request):
    access.switch_workspace(request, int(request.POST.get("workspace", 0) or 0))
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


@role_required(Role.VIEWER)
def account_list(request):
    accounts = list(scoped(request, ExotelAccount).prefetch_related("exophones"))
    exophones = [exophone for account in accounts for exophone in account.exophones.all()]
    health = breaker.health_of(exophones, now=timezone.now())
    for exophone in exophones:
        exophone.health = health[exophone.pk]
    return render(request, "tenancy/accounts.html", {"accounts": accounts})


@role_required(Role.ADMIN)
def account_form(request, pk=None):
    account = get_object_or_404(scoped(request, ExotelAccount), pk=pk) if pk else None
    form = ExotelAccountForm(request.POST or None, instance=account, workspace=request.workspace)
    if form.is_valid():
        account = form.save()
        messages.success(request, f"Exotel account {account.label} saved. Test its connection below.")
        return redirect("tenancy:accounts")
    return render(request, "tenancy/account_form.html", {"form": form, "account": account})


@require_POST
@role_required(Role.ADMIN)
def account_test(request, pk):
    """Ask Exotel for the account's stream capacity; show the figures or what went wrong (never a remote body)."""
    account = get_object_or_404(scoped(request, ExotelAccount), pk=pk)
    try:
        accounts.refresh_stream_capacity(account)
    except ExotelError as exc:
        messages.error(request, f"{account.label}: {accounts.explain(exc)}")
    else:
        messages.success(
            request,
            f"{account.label}: connected. {account.active_streams} of {account.max_allowed_streams} streams in use.",
        )
    return redirect("tenancy:accounts")


@role_required(Role.ADMIN)
def exophone_form(request, pk=None):
    exophone = get_object_or_404(scoped(request, Exophone), pk=pk) if pk else None
    form = ExophoneForm(request.POST or None, instance=exophone, workspace=request.workspace,
                        initial={"account": request.GET.get("account")})
    if form.is_valid():
        exophone = form.save()
        messages.success(request, f"Exophone {exophone.number} saved.")
        return redirect("tenancy:accounts")
    return render(request, "tenancy/exophone_form.html", {"form": form, "exophone": exophone})


@require_POST
@role_required(Role.ADMIN)
def exophone_delete(request, pk):
    exophone = get_object_or_404(scoped(request, Exophone), pk=pk)
    if exophone.campaigns.exists():
        messages.error(request, f"{exophone.number} is used by a campaign: change the campaign first.")
    elif exophone.calls.exists():
        messages.error(request, f"{exophone.number} placed calls, whose records name it: it is kept.")
    else:
        exophone.delete()
        messages.success(request, f"Exophone {exophone.number} removed.")
    return redirect("tenancy:accounts")


@role_required(Role.ADMIN)
def member_list(request):
    form = InviteForm(request.POST or None)
    if form.is_valid():
        email = form.cleaned_data["email"].lower()
        try:
            members.invite(request.workspace, actor=request.membership, **form.cleaned_data)
        except members.MembershipRefused as exc:
            messages.error(request, str(exc))
        except OSError as exc:  # the mail server refused or is down; the invitation waits to be sent again
            messages.error(request, f"The invitation to {email} could not be mailed ({exc}): try again.")
        else:
            # The same answer whether an account has this address or not.
            messages.success(request, f"Invitation mailed to {email}. Its link works for "
                                      f"{members.INVITATION_LASTS.days} days, for that address only.")
            return redirect("tenancy:members")
    return render(request, "tenancy/members.html", {
        "form": form, "roles": Role.choices, "now": timezone.now(),
        "members": scoped(request, Membership).select_related("user").order_by("user__email"),
        "invitations": scoped(request, Invitation),
    })


@require_POST
@role_required(Role.ADMIN)
def invitation_withdraw(request, pk):
    invitation = get_object_or_404(scoped(request, Invitation), pk=pk)
    invitation.delete()
    messages.success(request, f"The invitation to {invitation.email} is withdrawn: its link no longer works.")
    return redirect("tenancy:members")


def invitation(request, token):
    """Where an invitation's link leads: accept it signed in as the invited address, or create that account."""
    invitation = members.find_invitation(token)
    if invitation is None:
        return render(request, "tenancy/invitation.html", {"invitation": None}, status=404)
    form = None if request.user.is_authenticated else NewAccountForm(request.POST or None)
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            if form is None:
                members.accept(invitation, request.user)
            else:
                user = members.join_with_new_account(invitation, form.cleaned_data["password1"])
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        except members.MembershipRefused as exc:
            messages.error(request, str(exc))
        else:
            access.switch_workspace(request, invitation.workspace_id)
            messages.success(request, f"Welcome to {invitation.workspace.name}: you are {invitation.role}.")
            return redirect("campaigns:overview")
    return render(request, "tenancy/invitation.html", {"invitation": invitation, "form": form})


@require_POST
@role_required(Role.ADMIN)
def member_role(request, pk):
    membership = get_object_or_404(scoped(request, Membership).select_related("user"), pk=pk)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise members.MembershipRefused("Choose a role.")
        members.change_role(membership, form.cleaned_data["role"], actor=request.membership)
    except members.MembershipRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.email} is now {membership.role}.")
    return redirect("tenancy:members")


@require_POST
@role_required(Role.ADMIN)
def member_remove(request, pk):
    membership = get_object_or_404(scoped(request, Membership).select_related("user"), pk=pk)
    try:
        members.remove_member(membership, actor=request.membership)
    except members.MembershipRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.email} removed from {request.workspace.name}.")
    return redirect("tenancy:members")


WEBHOOKS = [
    ("status", "Status callback (StatusCallback of calls/connect)"),
    ("passthru", "Passthru applet"),
    ("leg_event", "Leg events (Legs mode)"),
    ("stream_url", "Voicebot applet's dynamic URL (Flow mode)"),
]


@role_required(Role.VIEWER)
def endpoints(request):
    """Where Exotel reaches this workspace: the echo test stream for every member; for admins, the
    webhooks (whose token lets anyone report call outcomes) and the stream credentials."""
    is_admin = request.membership.can(Role.ADMIN)
    form = StreamCredentialsForm(instance=request.workspace)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Stream credentials need the admin role.")
        form = StreamCredentialsForm(request.POST, instance=request.workspace)
        if form.is_valid():
            form.save()
            messages.success(request, "Stream credentials saved.")
            return redirect("tenancy:endpoints")
    return render(request, "tenancy/endpoints.html", {
        "test_url": stream_services.test_stream_url(request.workspace),
        "webhooks": [(label, links.webhook_url(request.workspace, kind)) for kind, label in WEBHOOKS] if is_admin else [],
        "form": form,
    })


@require_POST
@role_required(Role.ADMIN)
def rotate_webhook_token(request):
    request.workspace.rotate_webhook_token()
    messages.success(request, "New webhook and test URLs made; the old ones stop working now. Update your Exotel flows.")
    return redirect("tenancy:endpoints")


@role_required(Role.VIEWER)
def calling_rules(request):
    """The workspace's calling policy: every member sees it, admins change it (or apply a preset)."""
    form = CallingPolicyForm(instance=request.workspace)
    if request.method == "POST":
        if not request.membership.can(Role.ADMIN):
            raise PermissionDenied("The calling rules need the admin role.")
        preset = rules.PRESETS.get(request.POST.get("preset", ""))
        form = CallingPolicyForm(request.POST or None, instance=request.workspace) if preset is None else None
        if preset is not None:
            Workspace.objects.filter(pk=request.workspace.pk).update(**preset[1])
            messages.success(request, f"Calling rules set to {preset[0]}.")
            return redirect("tenancy:calling_rules")
        if form.is_valid():
            form.save()
            messages.success(request, "Calling rules saved: the dispatcher applies them from its next tick.")
            return redirect("tenancy:calling_rules")
    return render(request, "tenancy/calling_rules.html", {
        "form": form, "presets": [(name, label) for name, (label, _) in rules.PRESETS.items()],
    })
