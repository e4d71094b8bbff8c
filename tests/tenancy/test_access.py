import logging

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.test import AsyncRequestFactory
from django.utils import timezone

from campaigns.models import Campaign
from tenancy.access import SESSION_KEY, WorkspaceMiddleware
from tenancy.models import Membership, Role, Workspace
from tests.conftest import make_campaign


def test_it_sends_anonymous_users_to_sign_in(client, acme):
    response = client.get("/campaigns/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_it_shows_only_the_active_workspaces_campaigns(alice_client, acme, globex):
    make_campaign(acme, name="Acme renewals")
    make_campaign(globex, name="Globex winback")
    page = alice_client.get("/campaigns/").content.decode()
    assert "Acme renewals" in page
    assert "Globex winback" not in page


def test_it_hides_other_workspaces_campaigns(charlie_client, campaign):
    assert charlie_client.get(f"/campaigns/{campaign.pk}/").status_code == 404


def test_a_member_of_two_workspaces_switches_between_them(alice, alice_client, globex):
    Membership.objects.create(user=alice, workspace=globex, role=Role.VIEWER)
    make_campaign(globex, name="Globex winback")
    response = alice_client.post("/workspaces/switch/", {"workspace": globex.pk, "next": "/campaigns/"})
    assert response.status_code == 302 and response.url == "/campaigns/"
    assert alice_client.session[SESSION_KEY] == globex.pk
    assert "Globex winback" in alice_client.get("/campaigns/").content.decode()


def test_it_refuses_to_switch_to_a_workspace_the_user_is_not_in(alice_client, acme, globex):
    response = alice_client.post("/workspaces/switch/", {"workspace": globex.pk})
    assert response.status_code == 404
    assert SESSION_KEY not in alice_client.session


def test_switching_never_redirects_off_site(alice, alice_client, globex):
    Membership.objects.create(user=alice, workspace=globex, role=Role.VIEWER)
    response = alice_client.post("/workspaces/switch/", {"workspace": globex.pk, "next": "https://evil.example/"})
    assert response.url == "/"


def test_a_user_without_a_workspace_is_refused(django_user_model, client):
    loner = django_user_model.objects.create_user("loner@example.org", password="x")
    client.force_login(loner)
    assert client.get("/campaigns/").status_code == 403
    assert Workspace.objects.count() == 0 and Campaign.objects.count() == 0


def test_the_asgi_middleware_stack_runs_without_a_thread_waiting_on_the_loop(caplog, settings):
    # A sync-only middleware makes Django park a thread in AsyncToSync for every request: such
    # threads hung daphne's exit on SIGTERM. Django logs each adaptation it makes (in DEBUG).
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG, logger="django.request")
    ASGIHandler()
    assert [r.message for r in caplog.records if "handler adapted for" in r.message] == []


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_it_sets_the_workspace_and_its_time_zone(alice, acme):
    await Workspace.objects.filter(pk=acme.pk).aupdate(time_zone="Asia/Singapore")

    async def view(request):
        return HttpResponse(f"{request.workspace.slug} {timezone.get_current_timezone_name()}")

    middleware = WorkspaceMiddleware(view)
    request = AsyncRequestFactory().get("/")
    request.user, request.session = alice, {}
    assert iscoroutinefunction(middleware)
    response = await middleware(request)
    assert response.content == b"acme Asia/Singapore"
