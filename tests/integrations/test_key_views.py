"""The API keys page: admins make keys (shown once) and revoke them; nobody else reaches it."""

import pytest

from integrations.models import ApiKey
from tenancy.models import Role
from tests.conftest import make_user, signed_in

pytestmark = pytest.mark.django_db


def test_an_admin_makes_a_key_sees_it_once_and_revokes_it(alice_client, acme):
    response = alice_client.post("/integrations/api-keys/", {"name": "CRM sync", "scopes": ["read", "write"]})
    plain = response.context["plain"]
    assert plain.startswith("as_") and plain.encode() in response.content
    key = ApiKey.objects.get(workspace=acme)
    assert (key.name, key.scopes) == ("CRM sync", ["read", "write"])
    assert plain.encode() not in alice_client.get("/integrations/api-keys/").content

    alice_client.post(f"/integrations/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_only_admins_reach_the_page(bob_client, acme):
    operator = signed_in(make_user("olga@example.org", acme, Role.OPERATOR))
    for client in (bob_client, operator):
        assert client.get("/integrations/api-keys/").status_code == 403
        assert client.post("/integrations/api-keys/", {"name": "x", "scopes": ["read"]}).status_code == 403
    assert not ApiKey.objects.exists()


def test_charlie_cannot_revoke_acmes_key(alice_client, charlie_client, acme):
    alice_client.post("/integrations/api-keys/", {"name": "Acme ledger", "scopes": ["read"]})
    key = ApiKey.objects.get(workspace=acme)
    assert charlie_client.post(f"/integrations/api-keys/{key.pk}/revoke/").status_code == 404
    assert key.prefix.encode() not in charlie_client.get("/integrations/api-keys/").content
    assert b"Acme ledger" not in charlie_client.get("/integrations/api-keys/").content
    key.refresh_from_db()
    assert key.revoked_at is None
