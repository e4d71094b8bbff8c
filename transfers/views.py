from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenancy.access import role_required, scoped
from tenancy.models import Role
from transfers import services
from transfers.forms import AgentForm, AgentGroupForm
from transfers.models import Agent, AgentGroup


@role_required(Role.VIEWER)
def agent_list(request):
    groups = scoped(request, AgentGroup).prefetch_related("members__agent", "campaigns")
    return render(request, "transfers/agents.html", {"agents": scoped(request, Agent), "groups": groups})


@role_required(Role.OPERATOR)
def agent_form(request, pk=None):
    agent = get_object_or_404(scoped(request, Agent), pk=pk) if pk else None
    form = AgentForm(request.POST or None, instance=agent, workspace=request.workspace)
    if form.is_valid():
        agent = form.save()
        messages.success(request, f"Agent {agent.name} saved.")
        return redirect("transfers:agents")
    return render(request, "transfers/agent_form.html", {"form": form, "agent": agent})


@require_POST
@role_required(Role.OPERATOR)
def agent_delete(request, pk):
    agent = get_object_or_404(scoped(request, Agent), pk=pk)
    agent.delete()
    messages.success(request, f"Agent {agent.name} removed; their groups ring the others.")
    return redirect("transfers:agents")


@role_required(Role.OPERATOR)
def group_form(request, pk=None):
    group = get_object_or_404(scoped(request, AgentGroup), pk=pk) if pk else None
    form = AgentGroupForm(request.POST or None, instance=group, workspace=request.workspace)
    if form.is_valid():
        group = services.save_group(form.save(commit=False), form.cleaned_data["agents"])
        messages.success(request, f"Group {group.name} saved.")
        return redirect("transfers:agents")
    return render(request, "transfers/group_form.html", {"form": form, "group": group})


@require_POST
@role_required(Role.OPERATOR)
def group_delete(request, pk):
    group = get_object_or_404(scoped(request, AgentGroup), pk=pk)
    try:
        services.delete_group(group)
    except services.InUse as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Group {group.name} removed.")
    return redirect("transfers:agents")
