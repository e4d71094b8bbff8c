from django.shortcuts import get_object_or_404, render

from campaigns.models import Call, Campaign
from tenancy.access import role_required, scoped
from tenancy.models import Role


@role_required(Role.VIEWER)
def overview(request):
    running = scoped(request, Campaign).filter(state=Campaign.State.RUNNING)
    return render(request, "campaigns/overview.html", {"running": running})


@role_required(Role.VIEWER)
def campaign_list(request):
    campaigns = scoped(request, Campaign).select_related("account", "exophone")
    return render(request, "campaigns/list.html", {"campaigns": campaigns})


@role_required(Role.VIEWER)
def campaign_detail(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    return render(request, "campaigns/detail.html", {"campaign": campaign})


@role_required(Role.VIEWER)
def call_detail(request, pk):
    call = get_object_or_404(scoped(request, Call).select_related("campaign", "contact"), pk=pk)
    return render(request, "campaigns/call.html", {"call": call})
