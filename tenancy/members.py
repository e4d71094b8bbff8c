"""Who belongs to a workspace and with which role; the rules that keep a workspace governable."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tenancy.models import Invitation, Membership, Role, Workspace

INVITATION_LASTS = timedelta(days=7)
INVITATION_SALT = "tenancy.invitation"


class MembershipRefused(Exception):
    """A change the rules do not allow; its message says why."""


def _check_owner_rules(actor: Membership, target_role: str, current_role: str | None = None) -> None:
    # Only an owner makes or unmakes owners: an admin cannot promote themself past their grant.
    if Role.OWNER in (target_role, current_role) and not actor.can(Role.OWNER):
        raise MembershipRefused("Only an owner can grant or take away the owner role.")


def _check_not_self(membership: Membership, actor: Membership) -> None:
    if membership.pk == actor.pk:
        raise MembershipRefused("Ask another admin to change your own membership: no one locks themself out.")


def _check_not_last_owner(membership: Membership) -> None:
    # Locked while counted: two concurrent demotions must not each see the other owner still there.
    owners = Membership.objects.select_for_update().filter(workspace=membership.workspace_id, role=Role.OWNER)
    if membership.role == Role.OWNER and len(owners) == 1:
        raise MembershipRefused("A workspace needs an owner: make someone else owner first.")


def invite(workspace: Workspace, *, email: str, role: str, actor: Membership) -> Invitation:
    """Invite an address and mail it the link. Whether an account has that address is neither used nor told:
    only its owner, signed in (or creating the account through the link), can accept."""
    _check_owner_rules(actor, role)
    email = email.strip().lower()
    if Membership.objects.filter(workspace=workspace, user__username__iexact=email).exists():
        raise MembershipRefused(f"{email} is already a member.")
    # Inviting again renews the link (and its role) instead of making a second one.
    invitation, _ = Invitation.objects.update_or_create(workspace=workspace, email=email, defaults={
        "role": role, "invited_by": actor.user, "expires_at": timezone.now() + INVITATION_LASTS,
    })
    link = settings.PUBLIC_BASE_URL + reverse("tenancy:invitation", args=[invitation_token(invitation)])
    send_mail(
        f"Join {workspace.name} on AgentStream",
        f"{actor.user.email or actor.user.username} invites you to the workspace {workspace.name} as {role}.\n\n"
        f"Accept within {INVITATION_LASTS.days} days, signed in with this address (or creating its account):\n"
        f"{link}\n",
        None, [email],
    )
    return invitation


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(invitation.pk, salt=INVITATION_SALT)


def find_invitation(token: str) -> Invitation | None:
    """The pending invitation a link names, or None if the link is forged, used, withdrawn or expired."""
    try:
        pk = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_LASTS)
    except signing.BadSignature:
        return None
    return Invitation.objects.select_related("workspace").filter(pk=pk, expires_at__gt=timezone.now()).first()


@transaction.atomic
def accept(invitation: Invitation, user) -> Membership:
    """Make the invited address's account a member with the invited role; the invitation is then used up."""
    invitation = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if invitation is None:
        raise MembershipRefused("This invitation was used or withdrawn meanwhile.")
    if user.username.lower() != invitation.email:
        raise MembershipRefused(f"This invitation is for {invitation.email}: sign in with that address to accept it.")
    membership, _ = Membership.objects.get_or_create(user=user, workspace_id=invitation.workspace_id,
                                                     defaults={"role": invitation.role})
    invitation.delete()
    return membership


@transaction.atomic
def join_with_new_account(invitation: Invitation, password: str):
    """Create the invited address's account (the link reached its mailbox) and accept; returns the user."""
    User = get_user_model()
    if User.objects.filter(username__iexact=invitation.email).exists():
        raise MembershipRefused(f"An account for {invitation.email} exists: sign in to accept.")
    user = User.objects.create_user(username=invitation.email, email=invitation.email, password=password)
    accept(invitation, user)
    return user


@transaction.atomic
def change_role(membership: Membership, role: str, *, actor: Membership) -> Membership:
    _check_not_self(membership, actor)
    _check_owner_rules(actor, role, membership.role)
    if role != Role.OWNER:
        _check_not_last_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, actor: Membership) -> None:
    _check_not_self(membership, actor)
    _check_owner_rules(actor, membership.role, membership.role)
    _check_not_last_owner(membership)
    membership.delete()
