"""Webhook views: find the workspace by its secret, store the raw delivery, answer.

Exotel's callbacks carry no signature: the unguessable token in the URL is the authentication, so a
wrong token is a 404 that stores nothing (it is only logged). A status callback, Passthru or leg
event is applied to its call after the answer, by the applier (`callbacks.applier`); only a
malformed one is refused here. The stream-URL request is answered with its call's URL, so it is
applied in the request, after its raw record committed.
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


def _unknown(request, kind: str) -> Http404:
    log.warning("webhook %s with an unknown token from %s", kind, request.META.get("REMOTE_ADDR"))
    return Http404("No such webhook.")


def _deliver(request, token: str, kind: str) -> JsonResponse:
    answer = services.receive(token, kind, request)  # stored: nothing lost
    if answer is None:
        raise _unknown(request, kind)
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
    workspace = Workspace.objects.filter(webhook_token=token).only("pk").first()
    if workspace is None:
        raise _unknown(request, Kind.STREAM_URL)
    answer = services.answer_now(workspace, request)
    return JsonResponse(answer.body, status=answer.status)
