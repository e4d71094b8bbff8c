"""Walks the URLconf: every route that takes an object id must hide acme's rows from charlie.

For each such route, charlie requests it (GET and POST) with the id of every row acme owns; each
answer must be 404 (or 403 / 405) and no row anywhere may change.
"""

import itertools

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from callbacks.models import WebhookEvent
from campaigns.models import DoNotCall
from streams.models import StreamSession
from tests.conftest import make_call

TENANT_APPS = ["tenancy", "campaigns", "streams", "callbacks"]
REFUSED = {403, 404, 405}


def routes_with_ids(patterns=None, namespace=""):
    """(url name, [int kwargs]) for every named route with integer parameters, admin excluded."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from routes_with_ids(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = entry.pattern.converters
            ints = [name for name, conv in converters.items() if type(conv).__name__ == "IntConverter"]
            if ints and len(ints) == len(converters):
                yield f"{namespace}{entry.name}", ints


def snapshot():
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for app in TENANT_APPS
        for model in apps.get_app_config(app).get_models()
    }


@pytest.fixture
def acme_rows(acme, bob, campaign):
    call = make_call(campaign)
    DoNotCall.objects.create(workspace=acme, phone="+919812345678")
    StreamSession.objects.create(workspace=acme, call=call, stream_sid="MZ1", started_at=call.created_at)
    WebhookEvent.objects.create(workspace=acme, kind=WebhookEvent.Kind.STATUS, method="POST", call=call)
    return sorted(
        {row.pk for app in TENANT_APPS for model in apps.get_app_config(app).get_models() for row in model.objects.all()}
    )


def test_the_sweep_finds_routes_to_walk():
    assert len(list(routes_with_ids())) >= 2


def test_charlie_cannot_reach_any_of_acmes_rows(charlie_client, acme_rows):
    before = snapshot()
    for name, kwargs in routes_with_ids():
        for ids in itertools.product(acme_rows, repeat=len(kwargs)):
            url = reverse(name, kwargs=dict(zip(kwargs, ids, strict=True)))
            for method in (charlie_client.get, charlie_client.post):
                status = method(url).status_code
                assert status in REFUSED, f"{method.__name__.upper()} {url} answered {status} to charlie"
    assert snapshot() == before
