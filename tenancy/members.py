"""Who belongs to a workspace and with which role; the rules that keep a workspace governable."""

from django.contrib.auth import get_user_model
from django.db import transaction

from tenancy.models import Membership, Role, Workspace


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


@transaction.atomic
def add_member(workspace: Workspace, *, email: str, role: str, actor: Membership, password: str = "") -> Membership:
    """Add a user (created with `password` if new) to the workspace."""
    _check_owner_rules(actor, role)
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(username__iexact=email).first()
    if user is None:
        if not password:
            raise MembershipRefused(f"No user {email} exists yet: give a first password to create one.")
        user = User.objects.create_user(username=email, email=email, password=password)
    membership, created = Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": role})
    if not created:
        raise MembershipRefused(f"{email} is already a member ({membership.role}).")
    return membership


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
