from django.contrib.auth import get_user_model
from django.db import transaction

from tenancy.models import Membership, Role, Workspace


@transaction.atomic
def bootstrap_workspace(*, slug: str, email: str, password: str, name: str = "") -> tuple[Workspace, bool]:
    """Create a workspace and its owner, or leave both as they are if they exist; returns (workspace, created)."""
    workspace, created = Workspace.objects.get_or_create(slug=slug, defaults={"name": name or slug.title()})
    User = get_user_model()
    user = User.objects.filter(username=email).first()
    if user is None:
        user = User.objects.create_user(username=email, email=email, password=password)
    Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": Role.OWNER})
    return workspace, created
