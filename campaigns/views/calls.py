from django.shortcuts import get_object_or_404, render

from callbacks.models import WebhookEvent
from campaigns import queries
from campaigns.forms import CallFilterForm
from campaigns.models import Call
from streams.models import StreamSession
from tenancy.access import role_required, scoped
from tenancy.models import Role


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
    call = get_object_or_404(scoped(request, Call).select_related("campaign", "contact"), pk=pk)
    webhooks = list(scoped(request, WebhookEvent).filter(call=call).order_by("received_at"))
    streams = list(scoped(request, StreamSession).filter(call=call).order_by("started_at"))
    return render(request, "campaigns/call.html", {
        "call": call, "streams": streams, "webhooks": webhooks,
        "timeline": queries.timeline(call, webhooks, streams),
    })
