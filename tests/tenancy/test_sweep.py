"""Walks every route as a hostile tenant would: nothing of acme may be reached, changed or shown.

charlie (owner of globex) requests every pattern of the URLconf, GET and POST, with each value he
could try: the ids of acme's rows for integer parameters; for string ones his own webhook token, his
test-stream token re-pointed at acme, acme's ids and slug. Staff of globex walk the admin in each
role (while only a viewer in acme), and the WebSocket routes are dialled with the same values.
No answer may contain acme's name, numbers, emails or tokens; a request that names acme's row by
id is refused; acme's rows end as they began. The WebSocket routes: test_sweep_websockets.py.
"""

import io
import itertools
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import override_settings
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from callbacks.models import WebhookEvent
from campaigns import imports
from campaigns.models import Campaign, CampaignEvent, CostRollup, DoNotCall, DoNotCallImport, Hold, Variant
from integrations import keys, outbox
from integrations.models import WebhookEndpoint
from streams import services as stream_services
from streams.models import Prompt, StreamServer, StreamSession, Voice
from tenancy import access
from tenancy.models import Exophone, Membership, Role, Workspace
from tests.conftest import (
    make_account,
    make_call,
    make_campaign,
    make_contact,
    make_user,
    make_workspace,
    signed_in,
)
from transfers.models import Agent, AgentGroup, GroupMember

TENANT_APPS = ["tenancy", "campaigns", "streams", "callbacks", "integrations", "transfers"]
REFUSED = {403, 404, 405}
PARAMETER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")
# Logging out would end the session the sweep walks with; nothing else is left out.
SKIPPED = {"logout/", "admin/logout/"}


def routes(patterns=None, prefix=""):
    """Every pattern of the URLconf as its full route, regex groups written as <name>."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry.pattern, RegexPattern):
            route = prefix + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", str(entry.pattern)).strip("^$")
        if isinstance(entry, URLResolver):
            yield from routes(entry.url_patterns, route)
        elif route not in SKIPPED:
            yield route


def fill(route: str, values) -> list[str]:
    """The route with every combination of candidate values for its parameters."""
    def substitute(combination) -> str:
        chosen = iter(combination)
        return "/" + PARAMETER.sub(lambda _: str(next(chosen)), route)

    params = PARAMETER.findall(route)
    return [substitute(c) for c in itertools.product(*(values(route, kind, name) for kind, name in params))]


def tenant_models():
    # A stream server's heartbeat row belongs to the installation, not to a workspace.
    return [model for app in TENANT_APPS for model in apps.get_app_config(app).get_models()
            if model is not StreamServer]


def rows_of(workspace, model):
    if model is Workspace:
        return model.objects.filter(pk=workspace.pk)
    if model is get_user_model():
        return model.objects.filter(memberships__workspace=workspace)
    return model._default_manager.filter(workspace=workspace)


def snapshot(acme) -> dict:
    models = [*tenant_models(), get_user_model()]
    return {m._meta.label: list(rows_of(acme, m).order_by("pk").values()) for m in models}


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace") + response.headers.get("Location", "")


class Acme:
    """acme with a row in every tenant table, and what of it must never reach anyone outside."""

    def __init__(self, acme, globex, charlie):
        acme.name = "Acme Sweep Corp"
        acme.save()
        members = [make_user("alice@example.org", acme, Role.OWNER), make_user("bob@example.org", acme, Role.VIEWER)]
        account = make_account(acme, label="Acme Vault Line", account_sid="acmevault1")
        exophone = Exophone.objects.create(workspace=acme, account=account, number="+918047400777")
        # Running, with a disposition: on acme's wallboard, and a choice of its re-call form; an A/B variant.
        campaign = make_campaign(acme, name="Acme Renewals Sweep", account=account, exophones=[exophone],
                                 state="running")
        variant = Variant.objects.create(workspace=acme, campaign=campaign, name="Acme Vault Pitch",
                                         greeting_text="Hello from the Acme vault")
        contact = make_contact(campaign, name="Zenobia Quill", phone="+919900011122", variant=variant)
        self.call = make_call(campaign, contact=contact, exotel_sid="acmeexotelsid0001",
                              disposition="zenobia_wants_gold", variant=variant)
        CampaignEvent.objects.create(workspace=acme, campaign=campaign, action="started")
        DoNotCall.objects.create(workspace=acme, phone="+919812345678", reason="Zenobia asked")
        DoNotCallImport.objects.create(workspace=acme, source=DoNotCall.Source.UPLOAD, region="IN",
                                       reason="Acme vault opt-outs")
        Hold.objects.create(workspace=acme, campaign=campaign, contact=contact, phone=contact.phone,
                            reason=Hold.Reason.CAP, detail="Zenobia capped", at=self.call.created_at)
        StreamSession.objects.create(workspace=acme, call=self.call, stream_sid="MZacmestream01",
                                     started_at=self.call.created_at)
        WebhookEvent.objects.create(workspace=acme, kind=WebhookEvent.Kind.STATUS, method="POST", call=self.call,
                                    body="CallSid=acmeexotelsid0001&Status=completed")
        Prompt.objects.create(workspace=acme, name="acme-greeting", audio="prompts/acme-greeting.wav")
        acme_key, acme_plain = keys.create_key(acme, name="Acme ledger sync", scopes=["read", "write"], by=members[0])
        crm = WebhookEndpoint.objects.create(workspace=acme, url="https://acme-vault-crm.example.com/hooks",
                                             secret="whsec_acmevaultsecret", events=["call.ended"])
        outbox.call_ended(self.call)
        upload = imports.receive(campaign, io.BytesIO(b"phone\n+919900011133\n"), region="IN", user=members[0])
        imports.check_upload(upload.pk)
        self.workspace, self.globex, self.charlie = acme, globex, charlie
        self.secrets = [
            acme.name, acme.webhook_token, *(user.email for user in members), account.label, account.account_sid,
            exophone.number, campaign.name, contact.name, contact.phone, "+919812345678", self.call.token,
            "MZacmestream01", stream_services.test_stream_token(acme), "+919900011133", "Acme vault opt-outs",
            "Zenobia capped", "zenobia_wants_gold", variant.name, variant.greeting_text,
            acme_key.name, acme_key.prefix, acme_plain, crm.url, crm.secret,
        ]
        agent = Agent.objects.create(workspace=acme, name="Xanthe Relay", phone="+919900044455")
        group = AgentGroup.objects.create(workspace=acme, name="Acme Escalations Desk")
        GroupMember.objects.create(workspace=acme, group=group, agent=agent, position=1)
        voice = Voice.objects.create(workspace=acme, name="Acme Vault Voice", url="https://tts.acme-vault.example.com/say",
                                     voice_id="acme-vault-hi", token="acme-vault-tts-token")
        self.secrets += [agent.name, agent.phone, group.name, "acme-greeting", voice.name, voice.url, voice.voice_id,
                         voice.token]
        CostRollup.objects.create(workspace=acme, campaign=campaign, day=self.call.created_at.date(), calls=1,
                                  amount=Decimal("4321.9876"), billed_minutes=3)
        Campaign.objects.filter(pk=campaign.pk).update(budget=Decimal("7777.77"))
        self.secrets += ["4321.98", "4321.9876", "7777.77"]
        # What globex holds, so charlie's pages have rows of their own to show, and his API key: made
        # before the ids are drawn, so that none of his own rows is taken for one of acme's.
        other = make_campaign(globex, name="Globex winback")
        make_call(other, contact=make_contact(other, name="Gus", phone="+919811100001"))
        _, self.charlies_key = keys.create_key(globex, name="Globex CRM", scopes=["read", "write"], by=charlie)
        self.ids = {m: [row.pk for row in rows_of(acme, m)] for m in [*tenant_models(), get_user_model()]}
        globex_ids = {row.pk for m in tenant_models() for row in rows_of(globex, m)}
        self.any_ids = sorted({pk for pks in self.ids.values() for pk in pks} - globex_ids)
        globex_test_token = stream_services.test_stream_token(globex)
        # His own campaign's test-call token, re-pointed at acme's campaign.
        globex_call_token = stream_services.test_call_url(other).rsplit("/", 1)[1]
        self.strings = [globex.webhook_token, f"{acme.pk}:{globex_test_token.partition(':')[2]}",
                        f"{campaign.pk}:{globex_call_token.partition(':')[2]}",
                        str(self.call.pk), acme.slug, "caller", "bot"]
        self.secrets.append(stream_services.test_call_url(campaign).rsplit("/", 1)[1])
        self.form = {  # every form and webhook field a route reads, naming acme's rows
            "workspace": acme.pk, "post": "yes", "role": "owner", "phone": "+919811100002",
            "CallSid": self.call.exotel_sid, "CustomField": self.call.token, "Status": "completed",
        }

    def assert_hidden(self, response, url):
        shown = body(response)
        leaked = [secret for secret in self.secrets if secret in shown]
        assert not leaked, f"{url} ({response.status_code}) shows acme's {leaked}"


@pytest.fixture(scope="module")
def acme_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """acme and globex built once for the module's tests, in a transaction rolled back after the last:
    each test runs in a savepoint of it (pytest-django's `db`), so what one test changed the next never
    sees. The upload's files in a folder of the module's (they are stored by row id)."""
    media = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("sweep-media")))
    with django_db_blocker.unblock(), transaction.atomic(), media:
        globex = make_workspace("Globex", "globex")
        charlie = make_user("charlie@example.org", globex, Role.OWNER)
        yield Acme(make_workspace("Acme", "acme"), globex, charlie)
        transaction.set_rollback(True)


# The admin is walked by staff, below: charlie walks every other route, one test each.
CHARLIES_ROUTES = [route for route in routes() if not route.startswith("admin/")]


def charlies_value(acme: Acme):
    """For any parameter: acme's ids where an integer goes, else the strings charlie could try."""
    return lambda route, kind, name: acme.any_ids if kind == "int" else acme.strings


@pytest.mark.django_db
@pytest.mark.parametrize("route", CHARLIES_ROUTES)
def test_charlie_reaches_nothing_of_acme_on_the_route(route, acme_data):
    # His session and his own workspace's API key.
    charlie_client = signed_in(acme_data.charlie)
    charlie_client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {acme_data.charlies_key}"
    before = snapshot(acme_data.workspace)
    for url in fill(route, charlies_value(acme_data)):
        for response in (charlie_client.get(url), charlie_client.post(f"{url}?call={acme_data.call.token}",
                                                                      acme_data.form)):
            acme_data.assert_hidden(response, url)
            if "<int:" in route:
                assert response.status_code in REFUSED, f"{url} answered {response.status_code} to charlie"
    assert snapshot(acme_data.workspace) == before
    # One walk of every route carried charlie's session from route to route: a route that switched it to
    # acme showed in the routes after. Each route now starts a session of its own, so look at it here.
    assert charlie_client.session.get(access.SESSION_KEY) in (None, acme_data.globex.pk)


def test_the_sweep_walks_every_route():
    walked = list(routes())
    assert {"campaigns/<int:pk>/", "hooks/<slug:token>/status", "admin/<app_label>/"} <= set(walked)
    assert "admin/campaigns/call/<path:object_id>/change/" in walked
    [swept] = [mark.args[1] for mark in test_charlie_reaches_nothing_of_acme_on_the_route.pytestmark
               if mark.name == "parametrize"]
    assert sorted(swept) == sorted(route for route in walked if not route.startswith("admin/"))


def admin_model(route: str):
    parts = route.split("/")
    try:
        return apps.get_model(parts[1], parts[2])
    except (LookupError, IndexError, ValueError):
        return None


def action_names(model_admin) -> list[str]:
    return ["delete_selected", *(a if isinstance(a, str) else a.__name__ for a in model_admin.actions or [])]


def admin_requests(acme: Acme):
    """(method, url, data) for every admin route, plus add pages, filters, searches and lookups naming acme."""
    def values(route, kind, name):
        if name == "app_label":
            return sorted({model._meta.app_label for model in admin.site._registry})
        if name == "url":
            return ["no-such-page/"]
        if name == "content_type_id":
            return [ContentType.objects.get_for_model(model).pk for model in acme.ids if acme.ids[model]]
        model = admin_model(route)
        return [str(pk) for pk in acme.ids.get(model) or [0]] if model else acme.any_ids

    for route in routes():
        if route.startswith("admin/"):
            for url in fill(route, values):
                yield "get", url, {}
                if route.endswith(("add/", "change/", "delete/")):  # the admin's only writing forms
                    yield "post", url, acme.form
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        ids = acme.ids.get(model) or [0]
        for name in action_names(model_admin):
            yield "post", base, {"action": name, "_selected_action": ids, "post": "yes"}
        yield "get", f"{base}?q=Zenobia&workspace__id__exact={acme.workspace.pk}", {}
        for field in model._meta.fields:
            if field.many_to_one and field.related_model in acme.ids:
                for pk in acme.ids[field.related_model]:
                    yield "get", f"{base}add/?{field.name}={pk}", {}
        for field in model_admin.autocomplete_fields:
            yield "get", (f"/admin/autocomplete/?app_label={model._meta.app_label}&model_name="
                          f"{model._meta.model_name}&field_name={field}&term="), {}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_staff_of_another_workspace_see_nothing_of_acme_in_the_admin(role, acme_data, django_user_model):
    sam = django_user_model.objects.create_user("sam@example.org", email="sam@example.org", is_staff=True)
    sam.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=sam, workspace=acme_data.globex, role=role)
    Membership.objects.create(user=sam, workspace=acme_data.workspace, role=Role.VIEWER)  # no admin rights there
    client = signed_in(sam)
    before = snapshot(acme_data.workspace)
    for method, url, data in admin_requests(acme_data):
        acme_data.assert_hidden(getattr(client, method)(url, data), url)
    # sam's acme membership is a viewer's before and after: the snapshot covers it too.
    assert snapshot(acme_data.workspace) == before
