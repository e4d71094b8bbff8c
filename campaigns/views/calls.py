from django.shortcuts import get_object_or_404, render

from callbacks.models import WebhookEvent
from campaigns import queries
from campaigns.forms import CallFilterForm
from campaigns.models import Call
from streams.models import Intervention, StreamSession
from tenancy.access import role_required, scoped
from tenancy.models import Role
from transfers import queries as transfer_queries


@role_required(Role.VIEWER)
def call_list(request):
    form = CallFilterForm(request.GET or None, workspace=request.workspace)
    calls = scoped(request, Call)
    if form.is_valid():
        calls = queries.filter_calls(calls, form.cleaned_data, tz=request.workspace.time_zone)
    page = queries.call_page(calls, request.GET.get("after", ""))
    query = request.GET.copy()
    query.pop("after", None)
    return render(request, "campaigns/calls.html", {"form": form, "page": page, "query": query.urlencode()})


@role_required(Role.VIEWER)
def call_detail(request, pk):
    call = get_object_or_404(scoped(request, Call).select_related("campaign", "contact", "variant"), pk=pk)
    webhooks = list(scoped(request, WebhookEvent).filter(call=call).order_by("received_at"))
    streams = list(scoped(request, StreamSession).filter(call=call).order_by("started_at"))
    interventions = list(scoped(request, Intervention).filter(call=call))
    return render(request, "campaigns/call.html", {
        "call": call, "streams": streams, "webhooks": webhooks,
        "timeline": queries.timeline(call, webhooks, streams, interventions, transfer_queries.moments(call)),
    })


@role_required(Role.OPERATOR)
def call_supervise(request, pk):
    """Listen to a live call, whisper to its bot, take it over (static/js/supervise.js, streams.supervision)."""
    call = get_object_or_404(scoped(request, Call).select_related("campaign", "variant"), pk=pk)
    bot = call.bot  # its A/B variant's, if it has one
    steps = [s["id"] for s in (bot.bot_settings or {}).get("steps", []) if isinstance(s, dict) and "id" in s]
    return render(request, "campaigns/supervise.html", {
        "call": call, "live": call.state in Call.LIVE_STATES, "steps": steps if bot.bot_kind == "script" else [],
    })
