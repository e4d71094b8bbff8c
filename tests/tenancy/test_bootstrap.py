import io

from django.core.management import call_command

from tenancy.models import Membership, Role, Workspace


def bootstrap(**options):
    out = io.StringIO()
    call_command("bootstrap", stdout=out, **options)
    return out.getvalue()


def test_it_creates_a_workspace_and_its_owner(db, client):
    assert "Created" in bootstrap(workspace="demo", email="owner@example.org", password="pw-123456")
    membership = Membership.objects.get(workspace__slug="demo")
    assert membership.role == Role.OWNER
    signed_in = client.post("/login/", {"username": "owner@example.org", "password": "pw-123456"})
    assert signed_in.status_code == 302 and client.session["_auth_user_id"] == str(membership.user_id)


def test_running_it_again_changes_nothing(db):
    bootstrap(workspace="demo", email="owner@example.org", password="pw-123456")
    assert "Kept" in bootstrap(workspace="demo", email="owner@example.org", password="other-password")
    assert Workspace.objects.count() == 1 and Membership.objects.count() == 1
    assert Membership.objects.get().user.check_password("pw-123456")
