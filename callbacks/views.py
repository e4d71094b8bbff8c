"""Webhook views: find the workspace by its secret, store the raw delivery, apply it, answer.

Exotel's callbacks carry no signature: the unguessable token in the URL is the authentication, so a
wrong token is a 404 that stores nothing (it is only logged). Deliveries are never made atomic with
their application: the raw record commits first, whatever happens next.
"""

import logging

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from callbacks import services
from callbacks.models import WebhookEvent
from tenancy.models import Workspace

log = logging.getLogger(__name__)
Kind = WebhookEvent.Kind


def _deliver(request, token: str, kind: str) -> JsonResponse:
    workspace = Workspace.objects.filter(webhook_token=token).only("pk").first()
    if workspace is None:
        log.warning("webhook %s with an unknown token from %s", kind, request.META.get("REMOTE_ADDR"))
        raise Http404("No such webhook.")
    event = services.record(workspace, kind, request)  # raw first: nothing lost
    answer = services.apply(event, request)
    return JsonResponse(answer.body, status=answer.status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def status(request, token):
    return _deliver(request, token, Kind.STATUS)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def passthru(request, token):
    return _deliver(request, token, Kind.PASSTHRU)


@csrf_exempt
@require_http_methods(["POST"])
def leg_event(request, token):
    return _deliver(request, token, Kind.LEG_EVENT)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def stream_url(request, token):
    return _deliver(request, token, Kind.STREAM_URL)
